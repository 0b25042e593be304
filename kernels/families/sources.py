"""What transformers and fla implement, read from their installed source files with ``ast`` (no import):
planning the workflow must not pay for importing torch or transformers (see :mod:`kernels.families`).

- ``model_types(library)``: the model types with a base-model class. transformers: the keys of
  ``MODEL_MAPPING_NAMES`` in ``models/auto/modeling_auto.py`` (its own classes, whatever ``import fla`` later
  registers); fla: the ``model_type`` of every config class under ``fla/models/*/configuration_*.py``.
- ``config_fields(library, model_type)``: the fields the model type's config class accepts (dataclass-style
  annotations or ``__init__`` arguments, with those of the base config class), or None where the class
  cannot be read from source (the job's config class then does the checking).

These readers only ever widen what is accepted when a source cannot be parsed, so a library release that
moves its tables makes the plan-time check weaker, never wrong; the job's own config class has the last word.
"""

from __future__ import annotations

import ast
import difflib
import importlib.metadata
import importlib.util
from functools import lru_cache
from pathlib import Path

# The distributions whose presence the families need (checked without importing the packages).
DISTRIBUTIONS = {"transformers": "transformers", "fla": "flash-linear-attention"}


@lru_cache(maxsize=None)
def package_dir(package: str) -> Path | None:
    """Where ``package`` is installed, found without importing it (None when it is not installed)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def library_problem(library: str) -> str | None:
    """Why ``library`` cannot provide models (not installed, or fla without its model zoo), or None."""
    root = package_dir(library)
    if root is None:
        return f"the Python package {library!r} is not installed"
    if library == "fla" and not (root / "models").is_dir():
        return "fla is installed without its model zoo (fla-core only; flash-linear-attention adds fla.models)"
    return None


def library_version(library: str) -> str | None:
    try:
        return importlib.metadata.version(DISTRIBUTIONS.get(library, library))
    except importlib.metadata.PackageNotFoundError:
        return None


def _parse(path: Path) -> ast.Module | None:
    try:
        return ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None


def _string_pairs(node: ast.AST) -> list[tuple[str, str]]:
    """``("a", "B")`` tuples anywhere inside ``node`` (how the Auto mappings are written)."""
    pairs = []
    for item in ast.walk(node):
        if isinstance(item, ast.Tuple) and len(item.elts) == 2 and all(
                isinstance(e, ast.Constant) and isinstance(e.value, str) for e in item.elts):
            pairs.append((item.elts[0].value, item.elts[1].value))
    return pairs


@lru_cache(maxsize=None)
def transformers_base_models() -> dict[str, str]:
    """transformers' ``{model_type: base model class name}`` (``MODEL_MAPPING_NAMES``)."""
    root = package_dir("transformers")
    tree = _parse(root / "models" / "auto" / "modeling_auto.py") if root else None
    if tree is None:
        return {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "MODEL_MAPPING_NAMES" for t in node.targets):
            return dict(_string_pairs(node.value))
    return {}


def _class_model_type(cls: ast.ClassDef) -> str | None:
    for node in cls.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        value = getattr(node, "value", None)
        if any(getattr(t, "id", None) == "model_type" for t in targets) and isinstance(value, ast.Constant):
            return value.value
    return None


def _class_fields(cls: ast.ClassDef) -> set[str]:
    """Annotated class attributes (transformers 5's dataclass configs) and ``__init__`` keyword arguments."""
    fields = set()
    for node in cls.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            annotation = ast.unparse(node.annotation)
            if "ClassVar" not in annotation:
                fields.add(node.target.id)
        elif isinstance(node, ast.FunctionDef) and node.name == "__init__":
            fields.update(a.arg for a in node.args.args[1:] + node.args.kwonlyargs)
    return fields


@lru_cache(maxsize=None)
def base_config_fields() -> frozenset[str]:
    """Fields of transformers' base config class, which every config accepts."""
    root = package_dir("transformers")
    tree = _parse(root / "configuration_utils.py") if root else None
    fields: set[str] = set()
    for node in (tree.body if tree else []):
        if isinstance(node, ast.ClassDef) and node.name in ("PreTrainedConfig", "PretrainedConfig"):
            fields |= _class_fields(node)
    # Generic PretrainedConfig keywords of every release (older ones read them from **kwargs).
    fields |= {"tie_word_embeddings", "use_cache", "torch_dtype", "dtype", "output_hidden_states",
               "output_attentions", "return_dict", "architectures", "initializer_range"}
    return frozenset(fields)


@lru_cache(maxsize=None)
def _fla_configs() -> dict[str, tuple[Path, str]]:
    """fla's ``{model_type: (configuration file, class name)}``."""
    root = package_dir("fla")
    found: dict[str, tuple[Path, str]] = {}
    if root is None or not (root / "models").is_dir():
        return found
    for path in sorted((root / "models").glob("*/configuration_*.py")):
        tree = _parse(path)
        for node in (tree.body if tree else []):
            if isinstance(node, ast.ClassDef):
                model_type = _class_model_type(node)
                if model_type:
                    found.setdefault(model_type, (path, node.name))
    return found


@lru_cache(maxsize=None)
def model_types(library: str) -> frozenset[str]:
    """Model types ``library`` implements with a base-model class (see the module docstring)."""
    if library == "transformers":
        return frozenset(transformers_base_models())
    if library == "fla":
        return frozenset(_fla_configs())
    raise ValueError(f"no model-type table for library {library!r}")


def _transformers_config_file(model_type: str) -> Path | None:
    root = package_dir("transformers")
    if root is None:
        return None
    module = model_type.replace("-", "_")
    candidates = [root / "models" / module / f"configuration_{module}.py"]
    base = transformers_base_models().get(model_type, "")
    candidates += sorted((root / "models").glob("*/configuration_*.py")) if base else []
    for path in candidates:
        if path.is_file():
            tree = _parse(path)
            if tree and any(isinstance(n, ast.ClassDef) and _class_model_type(n) == model_type for n in tree.body):
                return path
    return None


def _fields_in_file(path: Path, model_type: str | None = None, class_name: str | None = None) -> set[str] | None:
    tree = _parse(path)
    if tree is None:
        return None
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    target = classes.get(class_name) if class_name else next(
        (c for c in classes.values() if _class_model_type(c) == model_type), None)
    if target is None:
        return None
    fields = _class_fields(target)
    # configs that extend another config of the same file inherit its fields
    for base in target.bases:
        name = getattr(base, "id", None)
        if name in classes and classes[name] is not target:
            fields |= _class_fields(classes[name])
    return fields


@lru_cache(maxsize=None)
def config_fields(library: str, model_type: str) -> frozenset[str] | None:
    """Fields the config class of ``model_type`` accepts, or None when its source cannot be read."""
    if library == "transformers":
        path = _transformers_config_file(model_type)
        fields = _fields_in_file(path, model_type=model_type) if path else None
    elif library == "fla":
        entry = _fla_configs().get(model_type)
        fields = _fields_in_file(entry[0], class_name=entry[1]) if entry else None
    else:
        raise ValueError(f"no config source table for library {library!r}")
    if not fields:
        return None
    return frozenset(fields | base_config_fields())


def close_matches(word: str, choices) -> list[str]:
    return difflib.get_close_matches(word, sorted(choices), n=3, cutoff=0.6)


__all__ = ["package_dir", "library_problem", "library_version", "transformers_base_models", "model_types",
           "config_fields", "base_config_fields", "close_matches"]
