"""The three native architectures as transformers config/model classes, and one entry point to build or load
a sequence classifier of any of them (the family registry, :mod:`kernels.families`, declares them and is what
stages ask; the generic families ``hf`` / ``fla`` use :mod:`kernels.models.generic`'s classifier instead).

Families (``config["models"][name]["family"]``):
- ``transformer_pp``: Llama-style Transformer++ (``kernels.models.transformer``, model_type ``transformer``)
- ``gla``: Gated Linear Attention Transformer (``kernels.models.gla``, model_type ``gla``)
- ``mmfree``: MatMul-Free LM / HGRN-bit (``kernels.models.hgrn_bit``, model_type ``hgrn_bit``)

Every classifier: ``forward(input_ids, attention_mask=None, labels=None)`` returns a transformers
``SequenceClassifierOutput``; the logits pool the hidden state of the last non-padding token
(padding must be on the right). The backbone is ``model.model``; its ``forward(input_ids,
attention_mask=None, past_state=None, use_cache=False)`` returns ``BaseModelOutputWithPast`` whose
``past_key_values`` is the per-layer state (KV cache or recurrent state), for decoding.

``load_classifier`` builds a classifier from a pretrained causal-LM checkpoint in the upstream layout
(``model.*`` backbone, ``lm_head.*``), loading every backbone weight and initialising only ``score``.

``import kernels.models`` (this package) imports the three family subpackages, which register with
transformers' Auto classes (``AutoConfig``, ``AutoModel``,
``AutoModelForCausalLM``, ``AutoModelForSequenceClassification``) under their model types, without
``trust_remote_code`` and with ``exist_ok=True``. ``import kernels`` alone does not: it is kept light for the
jobs that need no model (``kernels.models`` is imported on first attribute access). If fla (or mmfreelm) is
imported first, its classes may own those model types in the Auto mappings; this registry (``config_class``,
``classifier_class``, ...) and ``load_classifier`` always use ours, so nothing here depends on import order.
mmfreelm registers ``hgrn_bit`` without ``exist_ok``, so ours stays out of the Auto mapping when mmfreelm is
installed.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
from typing import Any

from kernels.families import DECLARATIONS as _DECLARATIONS

logger = logging.getLogger(__name__)

# family -> (module, config class, backbone class, classifier class, causal LM class) of the native families,
# as the family registry declares them (kernels.families: the one place that lists families).
FAMILIES = {name: (d.module, d.classes["config"], d.classes["backbone"], d.classes["classifier"], d.classes["causal_lm"])
            for name, d in _DECLARATIONS.items() if d.kind == "native"}


def _family_attr(family: str, index: int):
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; known: {sorted(FAMILIES)}")
    entry = FAMILIES[family]
    return getattr(importlib.import_module(entry[0]), entry[index])


def config_class(family: str):
    return _family_attr(family, 1)


def classifier_class(family: str):
    return _family_attr(family, 3)


def causal_lm_class(family: str):
    return _family_attr(family, 4)


def backbone_class(family: str):
    return _family_attr(family, 2)


def family_for_model_type(model_type: str) -> str:
    """The family whose config has this ``model_type`` (``transformer``, ``gla``, ``hgrn_bit``)."""
    for family in FAMILIES:
        if config_class(family).model_type == model_type:
            return family
    known = {config_class(f).model_type: f for f in FAMILIES}
    raise ValueError(f"unknown model_type {model_type!r}; known: {known}")


def build_classifier(family: str, arch: dict[str, Any], *, vocab_size: int, num_labels: int,
                     pad_token_id: int, seed: int | None = None, bos_token_id: int | None = None,
                     eos_token_id: int | None = None):
    """A randomly initialised classifier of ``family`` with architecture ``arch`` (config kwargs).

    Special-token ids default to the config class's; pass the tokenizer's so the saved config agrees with it.
    """
    import torch

    if seed is not None:
        torch.manual_seed(seed)
    special = {k: v for k, v in (("bos_token_id", bos_token_id), ("eos_token_id", eos_token_id)) if v is not None}
    cfg = config_class(family)(vocab_size=vocab_size, num_labels=num_labels,
                               pad_token_id=pad_token_id, **special, **arch)
    return classifier_class(family)(cfg)


@contextlib.contextmanager
def _default_dtype(dtype):
    """Build parameters directly in ``dtype`` (halves peak memory for bf16 1.3B checkpoints)."""
    import torch

    if dtype is None:
        yield
        return
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def load_classifier(family: str, source: str | os.PathLike, *, num_labels: int, revision: str | None = None,
                    allow_pickle: bool = False, torch_dtype=None, config_overrides: dict[str, Any] | None = None):
    """A ``family`` classifier whose backbone comes from a pretrained causal-LM checkpoint.

    ``source``: a local directory (or, at paper scale, a hub id fetched with ``snapshot_download`` at
    ``revision``) holding ``config.json`` (model_type ``transformer``/``gla``/``hgrn_bit``) and
    ``model.safetensors`` or a sharded ``model.safetensors.index.json``. Pickled ``pytorch_model.bin``
    weights are refused unless ``allow_pickle`` (then read with ``torch.load(weights_only=True)``).
    Remote code is never run. Every backbone weight must be present with the configured shape, otherwise a
    ``CheckpointError`` names the file and the keys; only ``score`` is newly initialised (logged, together with
    checkpoint keys that are not used, such as ``lm_head.*``, and kept as ``model.checkpoint_loading_info``).
    ``config_overrides`` (e.g. ``pad_token_id``)
    are applied to the checkpoint's config. ``torch_dtype``: dtype of the returned model (default fp32).
    """
    import torch

    from kernels.models.common import (CheckpointError, add_backbone_prefix, checkpoint_weight_files,
                                       load_backbone_weights, read_checkpoint_config, read_state_dict,
                                       resolve_checkpoint_dir, split_fused_gated_mlp)

    directory = resolve_checkpoint_dir(source, revision, allow_pickle=allow_pickle)
    raw_config = read_checkpoint_config(directory)
    cfg_class = config_class(family)
    if raw_config["model_type"] != cfg_class.model_type:
        raise CheckpointError(f"{directory / 'config.json'}: field 'model_type' is {raw_config['model_type']!r}, "
                              f"but family {family!r} needs {cfg_class.model_type!r}")
    fields = {k: v for k, v in raw_config.items() if k not in ("model_type", "architectures", "auto_map")}
    fields.update(config_overrides or {})
    fields["num_labels"] = num_labels
    # Checkpoints store their own label maps (or none): rebuild them for num_labels.
    fields.pop("id2label", None)
    fields.pop("label2id", None)
    config = cfg_class(**fields)
    files, pickled = checkpoint_weight_files(directory, allow_pickle=allow_pickle)
    state, origin = read_state_dict(files, pickled)
    state = add_backbone_prefix(state)
    if isinstance(torch_dtype, str):
        if not isinstance(getattr(torch, torch_dtype, None), torch.dtype):
            raise ValueError(f"load_classifier: torch_dtype {torch_dtype!r} is not a torch dtype name")
        torch_dtype = getattr(torch, torch_dtype)
    with _default_dtype(torch_dtype if torch_dtype in (torch.float16, torch.bfloat16, torch.float32) else None):
        model = classifier_class(family)(config)
    where = files[0] if len(files) == 1 else directory
    if family != "mmfree":  # HGRN-bit's gate_proj is fused (2I rows) by design, not a legacy layout
        state = split_fused_gated_mlp(state, model.state_dict())
    # What was loaded and what is new, for the fine-tune job's record (finetune_info.json).
    loading_info = load_backbone_weights(model, state, origin, where)
    if torch_dtype is not None:
        model = model.to(torch_dtype)
    model.checkpoint_loading_info = loading_info
    return model


def _register_families() -> None:
    """Import every family subpackage: each registers itself with the Auto classes on import (the generic
    families' classifier too, as model type ``backbone_classifier``)."""
    for module, *_ in FAMILIES.values():
        importlib.import_module(module)
    importlib.import_module("kernels.models.generic")


_register_families()
