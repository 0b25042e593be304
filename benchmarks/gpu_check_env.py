"""Step 0 of benchmarks/gpu_check.sh: what this machine offers the GPU path, in ``WORKDIR/env.json``.

Also writes ``WORKDIR/env.sh`` (``CUDA=0|1``, ``REHEARSAL_READY=0|1``, ``REHEARSAL_MISSING=...``) for the
shell script to source. Never fails for a missing piece: whatever is absent is named in env.json, and the
steps that need it are skipped with that reason.

    python benchmarks/gpu_check_env.py WORKDIR
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import json
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# What the optional Snakemake rehearsal imports beyond the node's packages (the workflow's own dependencies).
REHEARSAL_MODULES = ("snakemake", "datasets", "pyarrow", "scipy", "altair", "vl_convert", "jsonschema", "yaml")
DISTRIBUTIONS = ("torch", "triton", "transformers", "pytest", "pandas", "fla-core", "flash-linear-attention",
                 "einops", "snakemake")


def version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def importable(module: str) -> bool:
    """Whether ``module`` is installed (found, not imported: the workflow's libraries are slow to import)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def import_error(module: str) -> str | None:
    try:
        importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - reported
        return f"{type(exc).__name__}: {exc}"[:300]
    return None


def main(work: Path) -> dict:
    import torch

    from kernels.ops.autotune import autotune_limit
    from kernels.ops.backend import fla_import_error, kernel_provenance

    cuda = torch.cuda.is_available()
    provenance = kernel_provenance("cuda" if cuda else "cpu")  # without CUDA: "torch", with the reason
    missing = [module for module in REHEARSAL_MODULES if not importable(module)]
    env = {
        "cuda": cuda,
        "device": torch.cuda.get_device_name(0) if cuda else None,
        "device_memory_gib": round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1) if cuda else None,
        "torch_cuda": torch.version.cuda,
        "python": sys.version.split()[0],
        "versions": {name: version(name) for name in DISTRIBUTIONS},
        "kernels": provenance["kernels"],
        "kernels_reason": provenance["kernels_reason"],
        "fla_ops_import_error": fla_import_error(),  # fla.ops.gla / fla.ops.hgrn (fla-core, einops, triton)
        "fla_layers_import_error": import_error("fla.layers"),  # flash-linear-attention (the layer comparison)
        "autotune_configs": autotune_limit(),
        "rehearsal_missing": missing,
    }
    (work / "env.json").write_text(json.dumps(env, indent=1) + "\n")
    (work / "env.sh").write_text(f"CUDA={int(cuda)}\nREHEARSAL_READY={int(not missing)}\n"
                                 f"REHEARSAL_MISSING={shlex.quote(' '.join(missing))}\n")
    print(f"gpu_check env: {json.dumps(env)}")
    return env


if __name__ == "__main__":
    main(Path(sys.argv[1]))
