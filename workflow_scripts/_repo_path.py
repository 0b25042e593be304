"""Makes the checkout's ``kernels`` package importable from every workflow script.

Snakemake puts this folder on ``sys.path`` when it runs a script, but not the repository root, and the
per-rule conda environments (``--software-deployment-method conda``) do not have the package installed.
An installed ``kernels`` (``pip install -e .``) is the same code, so nothing changes there.
"""

import sys
from pathlib import Path

REPO_ROOT = str(Path(__file__).resolve().parents[1])
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)
