"""Static checks on the thin scripts the rules call."""

import ast
from pathlib import Path

SCRIPTS = sorted((Path(__file__).resolve().parents[1] / "workflow_scripts").glob("[a-z]*.py"))


def test_scripts_have_no_future_imports():
    # Snakemake's `script:` directive prepends its preamble, so a `from __future__` import would no
    # longer be the first statement and the script would fail with a SyntaxError.
    offenders = [p.name for p in SCRIPTS if "from __future__" in p.read_text()]
    assert not offenders, offenders


def test_scripts_are_thin():
    # Logic lives in kernels/: every script stays a short wrapper around kernels calls.
    for path in SCRIPTS:
        tree = ast.parse(path.read_text())
        assert any(
            isinstance(node, (ast.Import, ast.ImportFrom))
            and "kernels" in ((getattr(node, "module", None) or "") + " ".join(a.name for a in node.names))
            for node in ast.walk(tree)
        ), f"{path.name} does not call into kernels"
        assert len(path.read_text().splitlines()) < 200, f"{path.name} is not thin"


def test_scripts_find_the_checkouts_kernels_package():
    # Per-rule conda environments do not install the package: each script puts the checkout on sys.path.
    missing = [p.name for p in SCRIPTS if "import _repo_path" not in p.read_text()]
    assert not missing, missing
