"""Shared package of the workflow: models, ops, data, training, evaluation, profiling, report.

``import kernels`` is light on purpose: the data, scoring, table and report jobs import only what they
use, so they start in a fraction of a second instead of paying the torch and transformers imports
(about 5 s per job, which added minutes to the demo).

``import kernels.models`` (which every model job does) registers the three model families
(``transformer``, ``gla``, ``hgrn_bit``) with transformers' Auto classes, as ``import fla`` does for fla's:
after it, ``AutoConfig`` / ``AutoModelForCausalLM`` / ``AutoModelForSequenceClassification`` load their
checkpoints without ``trust_remote_code``. ``kernels.models`` is also reachable as an attribute of this
package (imported on first use).

Name clash note: Hugging Face ships an unrelated package also imported as ``kernels``.
transformers only uses it when ``importlib.metadata`` reports a version >= 0.18.2 for the
distribution providing ``kernels``; ours is distributed as ``resilient-efficient-llms`` 0.1.x,
so transformers never takes this package for that one (see tests/test_kernels_name.py).
"""

import importlib

__version__ = "0.1.0"


def __getattr__(name: str):
    # PEP 562: `kernels.models` (and any other subpackage) imported on first attribute access.
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as error:
        if error.name != f"{__name__}.{name}":
            raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
