"""Lazy package exports (PEP 562), so that a light job importing one submodule does not pay for the
torch and transformers imports of its siblings."""

from __future__ import annotations

import importlib


def lazy_exports(package: str, names_by_submodule: dict[str, list[str]]):
    """Return ``(__getattr__, __dir__, __all__)`` for ``package``: ``names_by_submodule`` lists the public
    names each submodule (relative to ``package``) defines; a submodule is imported on first access."""
    exports = {name: submodule for submodule, names in names_by_submodule.items() for name in names}

    def __getattr__(name: str):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
        globals_of_package = importlib.import_module(package).__dict__
        globals_of_package[name] = value  # later accesses skip __getattr__
        return value

    def __dir__():
        return sorted(set(importlib.import_module(package).__dict__) | set(exports))

    return __getattr__, __dir__, sorted(exports)
