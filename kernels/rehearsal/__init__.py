"""Inputs for the paper-scale rehearsal: the real ``config/paper.yaml`` path, offline and on CPU.

The rehearsal runs ``snakemake report --configfile config/paper.yaml tests/configs/paper_rehearsal.yaml``:
everything comes from the paper config except *locations and sizes*. This package writes the local
stand-ins for what paper scale downloads, in the published layouts:

- ``hub/nyu-mll/glue`` and ``hub/AI-Secure/adv_glue``: dataset repositories laid out as on the Hugging
  Face hub (one parquet file per config and split, HF features with label names, README YAML
  ``configs:``), read by the same ``datasets.load_dataset`` call as at paper scale (``hub.py``);
- ``advglue/dev_ann.json``: the authors' annotation file, byte-identical to the one paper scale
  downloads (so the pinned checksum of ``config/paper.yaml`` holds);
- ``checkpoints/{transformer,gla,mmfree}``: tiny causal-LM checkpoints whose ``config.json`` carries the
  fields of the published 1.3B configs, bf16 safetensors weights (one checkpoint sharded with a
  ``model.safetensors.index.json``) and a Llama-style tokenizer (``checkpoints.py``, ``tokenizer.py``).

Build them with ``python -m kernels.rehearsal [DIR]`` (default ``rehearsal/`` in the working directory).
"""

from kernels._lazy import lazy_exports

# Lazy (imported on first use): ``kernels.rehearsal.checkpoints`` (the published configs) must import without
# the data stage's dependencies (pyarrow), e.g. in the GPU check on a node that has only torch's stack.
__getattr__, __dir__, __all__ = lazy_exports(__name__, {"build": ["build_rehearsal_inputs"]})
