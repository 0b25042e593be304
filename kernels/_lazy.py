"""Lazy package exports (PEP 562), so that a light job importing one submodule does not pay for the
torch and transformers imports of its siblings."""

from __future__ import annotations

import importlib


def lazy_exports(package: str, exports: dict[str, str]):
    """Return ``(__getattr__, __dir__)`` for ``package``: ``exports`` maps a public name to the submodule
    (relative to ``package``) that defines it; the submodule is imported on first access."""

    def __getattr__(name: str):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
        globals_of_package = importlib.import_module(package).__dict__
        globals_of_package[name] = value  # later accesses skip __getattr__
        return value

    def __dir__():
        return sorted(set(importlib.import_module(package).__dict__) | set(exports))

    return __getattr__, __dir__
