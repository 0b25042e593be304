"""Backbone classes of the generic families, resolved explicitly from the library the family names.

``AutoModel`` is not used: its mapping is shared by every library that registers with it, and fla registers
``mamba`` and ``mamba2`` with ``exist_ok=True``, so after ``import fla`` transformers' Auto classes return
fla's classes for those model types. Here each library's own table decides:

- ``transformers``: the class names of transformers' static tables (``MODEL_MAPPING_NAMES``,
  ``MODEL_FOR_CAUSAL_LM_MAPPING_NAMES``, ``CONFIG_MAPPING_NAMES``: never touched by registration) looked up
  in the ``transformers`` namespace;
- ``fla``: the classes exported by ``fla.models`` whose config has the model type (``<Name>Config``,
  ``<Name>Model``, ``<Name>ForCausalLM``).

Every resolved class is checked to come from that library's own modules.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

LIBRARIES = ("transformers", "fla")


class BackboneResolutionError(ValueError):
    """The library does not implement the model type (or the class named in a saved config)."""


@dataclass(frozen=True)
class BackboneClasses:
    library: str
    model_type: str
    config: type
    backbone: type
    causal_lm: type | None


def _check_library(library: str) -> None:
    if library not in LIBRARIES:
        raise BackboneResolutionError(f"unknown backbone library {library!r}; known: {', '.join(LIBRARIES)}")


def _own(library: str, cls: type, what: str) -> type:
    module = getattr(cls, "__module__", "")
    if module.split(".")[0] != library:
        raise BackboneResolutionError(f"{what}: {library} resolved to {module}.{cls.__name__}, not a class of {library}")
    return cls


def _transformers_tables():
    from transformers.models.auto import configuration_auto, modeling_auto

    return (configuration_auto.CONFIG_MAPPING_NAMES, modeling_auto.MODEL_MAPPING_NAMES,
            modeling_auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES)


def _fla_classes() -> dict[str, tuple[type, type, type | None]]:
    """fla's ``{model_type: (config class, base model class, causal LM class)}``."""
    models = importlib.import_module("fla.models")
    table = {}
    for name in dir(models):
        config = getattr(models, name)
        if not (isinstance(config, type) and name.endswith("Config") and getattr(config, "model_type", None)):
            continue
        stem = name[:-len("Config")]
        backbone = getattr(models, f"{stem}Model", None)
        if backbone is None:
            continue
        table.setdefault(config.model_type, (config, backbone, getattr(models, f"{stem}ForCausalLM", None)))
    return table


def resolve(library: str, model_type: str) -> BackboneClasses:
    """The config, base-model and causal-LM classes ``library`` implements ``model_type`` with."""
    _check_library(library)
    if library == "transformers":
        import transformers

        configs, bases, causal = _transformers_tables()
        if model_type not in bases or model_type not in configs:
            raise BackboneResolutionError(f"transformers implements no base model for model_type {model_type!r}")
        config = _own("transformers", getattr(transformers, configs[model_type]), model_type)
        backbone_name = bases[model_type]
        if not isinstance(backbone_name, str):  # a few types map to several classes: the first is the base model
            backbone_name = backbone_name[0]
        backbone = _own("transformers", getattr(transformers, backbone_name), model_type)
        causal_name = causal.get(model_type)
        causal_lm = _own("transformers", getattr(transformers, causal_name), model_type) if causal_name else None
        return BackboneClasses(library, model_type, config, backbone, causal_lm)
    table = _fla_classes()
    if model_type not in table:
        raise BackboneResolutionError(f"fla implements no model for model_type {model_type!r}; known: "
                                      f"{', '.join(sorted(table))}")
    config, backbone, causal_lm = (None if c is None else _own("fla", c, model_type) for c in table[model_type])
    return BackboneClasses(library, model_type, config, backbone, causal_lm)


def backbone_class(library: str, class_name: str) -> type:
    """A backbone class by the name a saved classifier config records (``backbone_class``)."""
    _check_library(library)
    namespace = importlib.import_module("transformers" if library == "transformers" else "fla.models")
    cls = getattr(namespace, class_name, None)
    if not isinstance(cls, type):
        raise BackboneResolutionError(f"{library} has no class {class_name!r} (saved as the classifier's backbone)")
    return _own(library, cls, class_name)


__all__ = ["LIBRARIES", "BackboneClasses", "BackboneResolutionError", "resolve", "backbone_class"]
