import os
import sys
from pathlib import Path

import pytest

# Tests share 2 cores with each other and with Snakemake jobs: one intra-op thread keeps them predictable.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]

# Tests import workflow scripts by path; like Snakemake, make their folder importable (for _repo_path).
sys.path.append(str(REPO / "workflow_scripts"))


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


def snakemake_cmd(*args: str) -> list[str]:
    """Run the repository's workflow with the same interpreter as the tests."""
    return [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), *args]
