"""Shared package of the workflow: models, ops, data, training, evaluation, profiling, report.

Importing ``kernels`` registers the three model families (``transformer``, ``gla``, ``hgrn_bit``) with
transformers' Auto classes, as ``import fla`` does for fla's: after ``import kernels``,
``AutoConfig`` / ``AutoModelForCausalLM`` / ``AutoModelForSequenceClassification`` load their checkpoints
without ``trust_remote_code``. That costs the torch and transformers imports (a few seconds), which
every model job pays anyway; the Snakefile reads the task table without importing this package.

Name clash note: Hugging Face ships an unrelated package also imported as ``kernels``.
transformers only uses it when ``importlib.metadata`` reports a version >= 0.18.2 for the
distribution providing ``kernels``; ours is distributed as ``resilient-efficient-llms`` 0.1.x,
so transformers never takes this package for that one (see tests/test_kernels_name.py).
"""

__version__ = "0.1.0"

from kernels import models as _models  # noqa: E402,F401  (registers the families; see above)
