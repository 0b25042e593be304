"""The family registry: the one place that knows what a model family is, how its config is checked and
which code builds, loads, measures and describes its models. Stages ask it; none branches on a family's name.

A *family* is the value of ``models.<name>.family`` in the workflow config. Five are registered:

============== ========== ================================================================================
family         kind       models
============== ========== ================================================================================
transformer_pp native     Transformer++ (``kernels.models.transformer``)
gla            native     GLA (``kernels.models.gla``, ``kernels.ops.gla``)
mmfree         native     MatMul-Free LM / HGRN-bit (``kernels.models.hgrn_bit``)
hf             generic    any causal LM that transformers implements natively (Mamba, Mamba2, FalconMamba,
                          RecurrentGemma, xLSTM, Llama, ...): ``pretrained:`` a hub id or directory, or from
                          scratch ``arch: {model_type: mamba2, ...}`` (``AutoConfig.for_model``)
fla            generic    fla's model zoo (``flash-linear-attention``, the ``fla`` extra): RetNet, HGRN,
                          HGRN2, DeltaNet, GSA, Mamba, ... the same two ways
============== ========== ================================================================================

Two layers
----------
1. **Plan time, torch-free** (this module and :mod:`kernels.families.sources`; importable without torch or
   transformers, and loadable from its directory by ``rules/common.smk`` as a package of its own):
   :data:`DECLARATIONS` (one :class:`Declaration` per family: names, the library it needs, the config keys
   it accepts, where its implementation lives) and :func:`model_errors`, which checks one
   ``models.<name>`` entry when Snakemake starts: the family's library is installed
   (``models.<name>.family``), ``arch`` holds only fields the family's config class accepts and keeps its
   structural rules (``models.<name>.arch.<key>``; native families: :mod:`kernels.models.arch_rules`;
   generic ones: the model type exists in the library and each key is a field of its config class, read
   from the library's source files with ``ast``), and a local ``pretrained`` directory holds a
   ``config.json`` of a model type the family can load, without remote code (``models.<name>.pretrained``).
2. **Job time** (:func:`family`): the family's implementation object, imported lazily from
   ``Declaration.implementation`` (``kernels.families.native``, ``kernels.families.generic``), a
   :class:`kernels.families.base.Family`. Its interface, which every stage uses:

   building and loading
     ``build(arch, vocab_size=, num_labels=, pad_token_id=, seed=, bos_token_id=, eos_token_id=)``,
     ``load_pretrained(source, num_labels=, revision=, allow_pickle=, torch_dtype=, config_overrides=)``
     (safetensors only, never remote code, every backbone tensor accounted for in
     ``model.checkpoint_loading_info``: loaded / new (only ``score.*``) / unused), ``load_finetuned(model_dir)``
     (the fine-tuning job's output directory, float32), ``parameter_counts(fields)`` (classifier and causal
     LM on the meta device, for the disk planner), ``meta_classifier(fields)`` (for the compute planner)
   structure
     ``backbone(model)``, ``decoder_layers(model)`` (the stack of blocks), ``supports_checkpointing(model)``,
     ``check_checkpointing(model, where)`` (a clear error naming ``finetune.gradient_checkpointing`` where
     activation checkpointing is not supported)
   efficiency
     ``forward_flops_per_token(config, context)`` (analytic formula, or ``None`` where none exists: the
     profiler then counts the timed step with ``torch.utils.flop_counter.FlopCounterMode``),
     ``decode_head(model)`` (the LM head a decoded token goes through), ``initial_decode_state(backbone,
     max_length)``, ``decode_forward(backbone, input_ids, state, position)`` -> ``(last_hidden, state)``
     (through the model's own cache), ``state_nbytes(state)`` (bytes of the cache's tensors),
     ``probe_layer(model, dtype)`` (the memory planner's measurement of one decoder block; a rule per
     native family, a family-agnostic capture-and-replay of the last block for generic ones)
   provenance
     ``implementation(model, device)``: library, version, backbone class, and which path ran (this package's
     ops or fla's kernels for native families; transformers' CUDA kernels or its pure-PyTorch slow path; fla's
     triton kernels), recorded in ``finetune_info.json``, ``metrics.json`` and ``efficiency.csv`` (as
     ``implementation_label``) and labelled in the report.

   :func:`family_of_model` finds the family of a built classifier (the memory planner and benchmarks, which
   get a model, not a config entry). Where the families differ is only in these methods: native ones subclass
   :class:`kernels.families.native.NativeFamily` (formula, decode head, cache), generic ones
   :class:`kernels.families.generic.GenericFamily` (their library's classes, resolved by
   ``classes(model_type)``).

Adding a family is one :class:`Declaration` here and one implementation class; the schema's enum of
families is checked against :data:`DECLARATIONS` by the tests.

The generic families share one classifier of ours (:mod:`kernels.models.generic`): any causal-LM
backbone (the library's base-model class, resolved explicitly from the library the family names, never
through ``AutoModel``'s mapping, which ``import fla`` rewrites for ``mamba`` / ``mamba2``), a new linear
``score`` head on the final ``</s>`` of the input template (:mod:`kernels.tokenization`), and a config class
that nests the backbone config and records the backbone's library and class, so that ``save_pretrained`` /
``from_pretrained`` round-trip.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:  # a package (kernels.families, or rules/common.smk's standalone copy)
    from . import sources
except ImportError:  # pragma: no cover - loaded as a lone file
    import sources  # type: ignore[no-redef]

HERE = Path(__file__).resolve().parent
# Config keys the workflow sets itself from the tokenizer and the task: never architecture.
SET_BY_WORKFLOW = ("vocab_size", "pad_token_id", "bos_token_id", "eos_token_id", "num_labels")


@dataclass(frozen=True)
class Declaration:
    """What the workflow knows about a family before importing anything heavy."""

    name: str
    kind: str                      # "native" (this package's code) or "generic" (a library's model classes)
    title: str                     # what the report and README call it
    implementation: str            # "module:Class" of its kernels.families.base.Family
    library: str                   # the Python package its models come from ("kernels", "transformers", "fla")
    distribution: str | None = None  # the pip distribution that provides it (for the error message)
    install_hint: str | None = None  # how to install it
    # native families: module and class names of the model code (kernels.models' own table is built from these)
    module: str | None = None
    classes: dict[str, str] = field(default_factory=dict)  # config, backbone, classifier, causal_lm
    model_type: str | None = None  # native: the model_type of its config class and checkpoints


DECLARATIONS: dict[str, Declaration] = {d.name: d for d in (
    Declaration("transformer_pp", "native", "Transformer++", "kernels.families.native:TransformerPPFamily", "kernels",
                module="kernels.models.transformer", model_type="transformer",
                classes={"config": "TransformerConfig", "backbone": "TransformerModel",
                         "classifier": "TransformerForSequenceClassification", "causal_lm": "TransformerForCausalLM"}),
    Declaration("gla", "native", "GLA", "kernels.families.native:GLAFamily", "kernels",
                module="kernels.models.gla", model_type="gla",
                classes={"config": "GLAConfig", "backbone": "GLAModel", "classifier": "GLAForSequenceClassification",
                         "causal_lm": "GLAForCausalLM"}),
    Declaration("mmfree", "native", "MatMul-Free LM", "kernels.families.native:MMFreeFamily", "kernels",
                module="kernels.models.hgrn_bit", model_type="hgrn_bit",
                classes={"config": "HGRNBitConfig", "backbone": "HGRNBitModel",
                         "classifier": "HGRNBitForSequenceClassification", "causal_lm": "HGRNBitForCausalLM"}),
    Declaration("hf", "generic", "transformers model", "kernels.families.generic:TransformersFamily",
                "transformers", distribution="transformers", install_hint="pip install -e . (a core dependency)"),
    Declaration("fla", "generic", "fla model", "kernels.families.generic:FlaFamily", "fla",
                distribution="flash-linear-attention",
                install_hint="pip install -e '.[fla]' (flash-linear-attention 0.6 with fla-core, einops, triton)"),
)}


def names() -> list[str]:
    """Every registered family, in declaration order."""
    return list(DECLARATIONS)


def declaration(name: str) -> Declaration:
    if name not in DECLARATIONS:
        raise ValueError(f"unknown model family {name!r}; known: {', '.join(DECLARATIONS)}")
    return DECLARATIONS[name]


def native_family_for_model_type(model_type: str) -> str:
    """The native family whose checkpoints carry ``model_type`` (``transformer``, ``gla``, ``hgrn_bit``)."""
    for name, d in DECLARATIONS.items():
        if d.kind == "native" and d.model_type == model_type:
            return name
    known = {d.model_type: n for n, d in DECLARATIONS.items() if d.kind == "native"}
    raise ValueError(f"unknown model_type {model_type!r}; known: {known}")


# --------------------------------------------------------------------------------- job time

_IMPLEMENTATIONS: dict[str, Any] = {}


def family(name: str):
    """The implementation of family ``name`` (a :class:`kernels.families.base.Family`; imports torch)."""
    if name not in _IMPLEMENTATIONS:
        decl = declaration(name)
        module, _, cls = decl.implementation.partition(":")
        _IMPLEMENTATIONS[name] = getattr(importlib.import_module(module), cls)(decl)
    return _IMPLEMENTATIONS[name]


def family_of_model(model) -> Any:
    """The family of a built classifier: generic ones by the library their config records, native ones by
    their config's model_type."""
    config = getattr(model, "config", None)
    model_type = getattr(config, "model_type", None)
    if model_type == "backbone_classifier":
        library = getattr(config, "backbone_library", None)
        for name, decl in DECLARATIONS.items():
            if decl.kind == "generic" and decl.library == library:
                return family(name)
        raise ValueError(f"no family runs backbones of library {library!r}")
    return family(native_family_for_model_type(model_type))


# --------------------------------------------------------------------------------- plan time

def _arch_rules():
    """kernels/models/arch_rules.py, torch-free; imported from its file so that kernels.models (torch) is not."""
    loaded = sys.modules.get("kernels.models.arch_rules") or sys.modules.get("_families_arch_rules")
    if loaded is not None:
        return loaded
    spec = importlib.util.spec_from_file_location("_families_arch_rules", HERE.parent / "models" / "arch_rules.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def library_error(decl: Declaration, where: str) -> str | None:
    """Why the family's library cannot be used, or None (checked without importing it)."""
    if decl.library == "kernels":
        return None
    problem = sources.library_problem(decl.library)
    if problem is None:
        return None
    return (f"{where}.family: family {decl.name!r} needs {decl.distribution} ({problem}); "
            f"install it with {decl.install_hint}")


def model_errors(name: str, entry: dict[str, Any], selected: bool = True) -> list[str]:
    """Everything wrong with config entry ``models.<name>`` that can be known before any job runs; each
    message names the key (``models.<name>.family`` / ``.arch.<key>`` / ``.pretrained``). A model left out by
    ``selected_models`` (``selected=False``) may name a library that is not installed here."""
    where = f"models.{name}"
    family_name = entry.get("family")
    if family_name not in DECLARATIONS:
        return [f"{where}.family: unknown model family {family_name!r}; known: {', '.join(DECLARATIONS)}"]
    decl = DECLARATIONS[family_name]
    problem = library_error(decl, where)
    if problem is not None:
        return [problem] if selected else []
    arch = dict(entry.get("arch") or {})
    pretrained = entry.get("pretrained")
    if decl.kind == "native":
        errors = _arch_rules().arch_errors(decl.name, arch, f"{where}.arch")
        return errors + _pretrained_errors(decl, pretrained, where)
    errors = [] if pretrained else _generic_arch_errors(decl, arch, f"{where}.arch")
    return errors + _pretrained_errors(decl, pretrained, where)


def _generic_arch_errors(decl: Declaration, arch: dict[str, Any], where: str) -> list[str]:
    """A from-scratch model of a generic family: a known ``model_type`` and fields its config class has."""
    model_type = arch.get("model_type")
    if not model_type:
        return [f"{where}.model_type: family {decl.name!r} built from scratch needs arch.model_type "
                f"(a model type of {decl.library}), or set models.<name>.pretrained"]
    types = sources.model_types(decl.library)
    if model_type not in types:
        close = sources.close_matches(model_type, types)
        return [f"{where}.model_type: {model_type!r} is not a model type {decl.library} implements"
                + (f" (did you mean {', '.join(close)}?)" if close else "")]
    fields = sources.config_fields(decl.library, model_type)
    if fields is None:  # the config class could not be read from source: the job's config class checks it
        return []
    errors = []
    for key in sorted(arch):
        if key == "model_type":
            continue
        if key in SET_BY_WORKFLOW:
            errors.append(f"{where}.{key}: set by the workflow (tokenizer and task), not by arch")
        elif key not in fields:
            errors.append(f"{where}.{key}: unknown field of the {model_type!r} config class ({decl.library}); known fields: "
                          f"{', '.join(sorted(set(fields) - sources.base_config_fields() - set(SET_BY_WORKFLOW)))}")
    return errors


def _pretrained_errors(decl: Declaration, pretrained: str | None, where: str) -> list[str]:
    """A local checkpoint directory must hold a config.json of a model type the family loads, without remote
    code. Hub ids are checked by the job (no network at plan time); missing paths are the path check's."""
    if not pretrained:
        return []
    directory = Path(pretrained)
    if not directory.is_dir() or not (directory / "config.json").is_file():
        return []
    try:
        config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        return [f"{where}.pretrained: {directory / 'config.json'} is not valid JSON ({error})"]
    model_type = config.get("model_type") if isinstance(config, dict) else None
    if model_type is None:
        return [f"{where}.pretrained: {directory / 'config.json'} has no field 'model_type'"]
    if decl.kind == "native":
        if model_type != decl.model_type:
            return [f"{where}.pretrained: {directory / 'config.json'} has model_type {model_type!r}, but family "
                    f"{decl.name!r} loads {decl.model_type!r} checkpoints"]
        return []
    if model_type not in sources.model_types(decl.library):
        remote = " (its auto_map points at remote code, which is never run)" if config.get("auto_map") else ""
        return [f"{where}.pretrained: {directory / 'config.json'} has model_type {model_type!r}, which "
                f"{decl.library} does not implement{remote}"]
    return []


__all__ = ["Declaration", "DECLARATIONS", "SET_BY_WORKFLOW", "names", "declaration",
           "native_family_for_model_type", "family", "family_of_model", "library_error", "model_errors"]
