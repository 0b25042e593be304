"""Config of the generic families' classifier: any causal-LM backbone of a library, plus our ``score`` head."""

from __future__ import annotations

from typing import Any

from transformers import PretrainedConfig

# Where configs keep the hidden size and the vocabulary under other names (GPT-2 style, T5 style).
HIDDEN_SIZE_KEYS = ("hidden_size", "d_model", "n_embd", "dim", "embedding_dim")
# Bookkeeping fields of a saved config.json that are not the backbone's architecture.
NOT_ARCHITECTURE = ("model_type", "architectures", "auto_map", "transformers_version", "_name_or_path",
                    "_commit_hash", "id2label", "label2id", "num_labels")


def backbone_fields(config: dict[str, Any]) -> dict[str, Any]:
    """The architecture fields of a backbone ``config.json`` (bookkeeping fields dropped)."""
    return {key: value for key, value in config.items() if key not in NOT_ARCHITECTURE}


class BackboneClassifierConfig(PretrainedConfig):
    """A sequence classifier around a backbone that ``backbone_library`` implements.

    ``backbone_library``: ``transformers`` or ``fla``; ``backbone_class``: the backbone's class name in that
    library (e.g. ``Mamba2Model``), resolved by name there, never through the Auto mappings;
    ``backbone_model_type``: its model type; ``backbone_config``: the backbone config's fields (nested, so
    that ``config.json`` holds everything ``from_pretrained`` needs). ``hidden_size`` and ``vocab_size`` are
    read from the backbone config (for the head and the profiler)."""

    model_type = "backbone_classifier"

    def __init__(self, backbone_library: str = "transformers", backbone_class: str | None = None,
                 backbone_model_type: str | None = None, backbone_config: dict[str, Any] | None = None,
                 initializer_range: float = 0.02, **kwargs):
        self.backbone_library = backbone_library
        self.backbone_class = backbone_class
        self.backbone_model_type = backbone_model_type
        self.backbone_config = dict(backbone_config or {})
        self.initializer_range = initializer_range
        self.hidden_size = next((self.backbone_config[k] for k in HIDDEN_SIZE_KEYS
                                 if self.backbone_config.get(k) is not None), None)
        self.vocab_size = self.backbone_config.get("vocab_size")
        for key in ("hidden_size", "vocab_size"):  # derived: never taken from the outer kwargs
            kwargs.pop(key, None)
        super().__init__(**kwargs)


__all__ = ["BackboneClassifierConfig", "backbone_fields", "HIDDEN_SIZE_KEYS"]
