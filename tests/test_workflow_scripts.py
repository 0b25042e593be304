"""Static checks on the thin scripts the rules call."""

import ast
from pathlib import Path

from workflow_helpers import run_python

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


# Jobs that never touch a model: their process must not import torch or transformers (about 5 s each,
# which added minutes to the demo), and neither must the profile job's own process on CPU (its worker
# imports torch; two imports per job would be paid in the profile stage, where nothing else runs).
LIGHT_SCRIPTS = ["prepare_glue", "prepare_advglue", "advglue_score", "tables_eval", "tables_efficiency", "report",
                 "profile_model"]


def test_light_scripts_do_not_import_torch():
    template = ("import sys, runpy\n"
                "sys.argv = [{script!r}, '--help']\n"
                "sys.path.insert(0, sys.argv[0].rsplit('/', 1)[0])  # as `python script.py` does\n"
                "try:\n"
                "    runpy.run_path(sys.argv[0], run_name='__main__')\n"
                "except SystemExit:\n"
                "    pass\n"
                "heavy = sorted(m for m in ('torch', 'transformers', 'safetensors.torch') if m in sys.modules)\n"
                "print('HEAVY=' + ','.join(heavy))\n")
    for name in LIGHT_SCRIPTS:
        out = run_python(template.format(script=str(SCRIPTS[0].parent / f"{name}.py")))
        assert out.splitlines()[-1] == "HEAVY=", (name, out[-300:])


def test_import_kernels_is_light_and_its_subpackages_resolve():
    code = ("import sys, kernels\n"
            "assert 'torch' not in sys.modules\n"
            "import kernels.io, kernels.data, kernels.evaluation, kernels.profiling, kernels.report, kernels.ops\n"
            "assert 'torch' not in sys.modules, 'a light package imported torch'\n"
            "print(kernels.evaluation.with_ci.__module__, kernels.profiling.COLUMNS[0], kernels.ops.use_fla.__module__)\n"
            "print(type(kernels.models).__name__, 'torch' in sys.modules)\n"
            "try:\n"
            "    kernels.no_such_thing\n"
            "except AttributeError as error:\n"
            "    print('AttributeError', error)\n")
    out = run_python(code).splitlines()
    assert out[0] == "kernels.evaluation.metrics model kernels.ops.backend"
    assert out[1] == "module True"  # kernels.models imported on first use (and it needs torch)
    assert out[2].startswith("AttributeError") and "no_such_thing" in out[2]
