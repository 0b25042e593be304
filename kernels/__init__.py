"""Shared package of the workflow: models, ops, data, training, evaluation, profiling, report.

Submodules are imported lazily by the workflow scripts; importing ``kernels`` itself stays cheap.

Name clash note: Hugging Face ships an unrelated package also imported as ``kernels``.
transformers only uses it when ``importlib.metadata`` reports a version >= 0.18.2 for the
distribution providing ``kernels``; ours is distributed as ``resilient-efficient-llms`` 0.1.x,
so transformers never takes this package for that one (see tests/test_kernels_name.py).
"""

__version__ = "0.1.0"
