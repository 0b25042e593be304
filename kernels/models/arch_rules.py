"""Architecture rules of the three families in plain Python (no torch, no transformers), so that the
workflow can check every ``models.<name>.arch`` when it starts, before any job runs, with the same rules
the model classes apply when they are built (one source of truth; the modeling files call these).

- Known fields: the keyword arguments of the family's config class ``__init__``, read from its source
  file with ``ast`` (importing it would load torch and transformers just to plan the workflow).
- Fields the workflow sets itself (vocabulary, special tokens, labels) are not architecture.
- Structural constraints: head divisibility and expand ratios, as below.
"""

from __future__ import annotations

import ast
import math
from functools import lru_cache
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONFIG_SOURCES = {  # family -> (config source file, class name)
    "transformer_pp": ("transformer/configuration_transformer.py", "TransformerConfig"),
    "gla": ("gla/configuration_gla.py", "GLAConfig"),
    "mmfree": ("hgrn_bit/configuration_hgrn_bit.py", "HGRNBitConfig"),
}
SET_BY_WORKFLOW = ("vocab_size", "pad_token_id", "bos_token_id", "eos_token_id", "num_labels")


@lru_cache(maxsize=None)
def config_defaults(family: str) -> dict:
    """``{field: default}`` of the family's config class (defaults that are not literals map to None)."""
    if family not in CONFIG_SOURCES:
        raise ValueError(f"unknown model family {family!r}; known: {sorted(CONFIG_SOURCES)}")
    relative, class_name = CONFIG_SOURCES[family]
    tree = ast.parse((HERE / relative).read_text(encoding="utf-8"))
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name)
    init = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
    args = init.args.args[1:]  # without self
    defaults = [None] * (len(args) - len(init.args.defaults)) + list(init.args.defaults)
    values = {}
    for arg, default in zip(args, defaults):
        try:
            values[arg.arg] = ast.literal_eval(default) if default is not None else None
        except ValueError:
            values[arg.arg] = None
    return values


def unknown_arch_keys(family: str, arch: dict) -> list[str]:
    known = set(config_defaults(family)) - set(SET_BY_WORKFLOW)
    return sorted(key for key in arch if key not in known)


def structural_errors(family: str, values: dict) -> list[str]:
    """What is wrong with a full set of config values (defaults filled in) for ``family``."""
    heads = values.get("num_heads") or 1
    kv_heads = values.get("num_kv_heads") or heads
    errors = []
    if family == "transformer_pp":
        if values["hidden_size"] % heads:
            errors.append(f"TransformerConfig: hidden_size {values['hidden_size']} is not divisible by num_heads {heads}")
        if heads % kv_heads:
            errors.append(f"TransformerConfig: num_heads {heads} is not divisible by num_kv_heads {kv_heads}")
    elif family == "gla":
        for name, ratio in (("hidden_size * expand_k", values["expand_k"]), ("hidden_size * expand_v", values["expand_v"])):
            dim = values["hidden_size"] * ratio
            if not math.isclose(dim, round(dim)) or round(dim) % heads:
                errors.append(f"GLAConfig: {name} = {dim} must be an integer divisible by num_heads {heads}")
        if heads % kv_heads:
            errors.append(f"GLAConfig: num_heads {heads} is not divisible by num_kv_heads {kv_heads}")
    elif family == "mmfree":
        input_dim = values["hidden_size"] * (values.get("expand_ratio") or 1)
        if not math.isclose(input_dim, round(input_dim)):
            errors.append(f"HGRNBitConfig: hidden_size * expand_ratio = {input_dim} must be an integer")
        elif values["hidden_size"] % heads or round(input_dim) % heads:
            errors.append(f"HGRNBitConfig: hidden_size {values['hidden_size']} (expanded {int(input_dim)}) is not "
                          f"divisible by num_heads {heads}")
    return errors


def arch_errors(family: str, arch: dict, where: str) -> list[str]:
    """Errors of a config's ``arch`` block, each naming ``where`` (e.g. ``models.gla.arch``) and the key."""
    unknown = unknown_arch_keys(family, arch)
    if unknown:
        known = sorted(set(config_defaults(family)) - set(SET_BY_WORKFLOW))
        return [f"{where}.{key}: unknown field of family {family!r}; known fields: {', '.join(known)}"
                for key in unknown]
    return [f"{where}: {message}" for message in structural_errors(family, {**config_defaults(family), **arch})]


def raise_structural_errors(family: str, config) -> None:
    """The model classes' check of a built config (a ``PretrainedConfig``), with the rules above."""
    errors = structural_errors(family, {**config_defaults(family), **config.to_dict()})
    if errors:
        raise ValueError("; ".join(errors))
