"""Snakemake script: efficiency sweep of one model -> results/efficiency/{model}.csv.

The sweep first measures the device's dense matmul peak (same device, dtype and threads as the points):
every row carries it as ``peak_gflops`` and its ``mfu = achieved_gflops / peak_gflops``.

input: (code only); output: ``csv``; params: ``family``, ``arch``, ``pretrained``, ``revision``,
``vocab_size`` (None for a pretrained checkpoint), ``settings`` (the profile section, with the threads the
points compute with and the train points' lr, weight_decay and max_grad_norm), ``recipe`` (optional: overrides
of those three), ``model_name``, ``force_torch``; threads: used only when the settings give no
``threads`` (the rule reserves every local core so that nothing runs beside the job, see rules/profile.smk).
"""


import argparse
import json
import os

import _repo_path  # noqa: F401  (the checkout's kernels package, also in conda envs)
from kernels.io import log_to
from kernels.io import write_csv
from kernels.ops.backend import FORCE_TORCH_ENV, set_force_torch
from kernels.ops.backend import require_fla as check_fla
from kernels.pretrained import local_checkpoint_dir
from kernels.profiling import ModelSpec, profile_model, settings_from_dict
from kernels.profiling.sweep import resolve_device  # imports torch only for 'auto' / 'cuda'


def as_bool(value) -> bool:
    return value if isinstance(value, bool) else str(value).strip().lower() in ("1", "true", "yes", "on")


def main(csv: str, family: str, arch: dict, vocab_size: int | None, settings: dict, model_name: str,
         pretrained: str | None = None, revision: str | None = None, threads: int | None = None,
         force_torch: bool = False, recipe: dict | None = None, require_fla: bool = False) -> None:
    if force_torch:
        # config kernels.force_torch: never use fla's triton kernels. The environment variable also
        # reaches the CPU fork server, which is a separate process.
        set_force_torch(True)
        os.environ[FORCE_TORCH_ENV] = "1"
    settings = {**dict(settings or {}), **dict(recipe or {})}
    if threads is not None and "threads" not in settings:
        settings["threads"] = int(threads)
    parsed = settings_from_dict(settings, source=f"profile settings of model {model_name!r}")
    if require_fla:  # config kernels.require_fla: no efficiency number from the reference ops
        check_fla(resolve_device(parsed.device))
    if pretrained:  # a local copy (a hub id fails fast when the hub cannot answer)
        pretrained = local_checkpoint_dir(pretrained, revision)
    spec = ModelSpec(family=family, arch=dict(arch or {}),
                     vocab_size=None if vocab_size is None else int(vocab_size),
                     pretrained=pretrained, revision=revision, seed=parsed.seed)
    write_csv(csv, profile_model(spec, parsed, model_name))


if "snakemake" in globals():
    smk = globals()["snakemake"]
    with log_to(smk.log[0] if len(smk.log) else None, outputs=smk.output):
        main(csv=smk.output.csv, family=smk.params.family, arch=smk.params.arch, vocab_size=smk.params.vocab_size,
             settings=smk.params.settings, model_name=smk.params.model_name, pretrained=smk.params.pretrained,
             revision=smk.params.revision, threads=smk.threads,
             force_torch=as_bool(smk.params.get("force_torch", False)), recipe=dict(smk.params.get("recipe", {})),
             require_fla=as_bool(smk.params.get("require_fla", False)))
elif __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", required=True)
    parser.add_argument("--family", required=True)
    parser.add_argument("--arch", default="{}", help="architecture as JSON")
    parser.add_argument("--vocab-size", type=int, help="omit for a pretrained checkpoint")
    parser.add_argument("--settings", default="{}", help="profile settings as JSON")
    parser.add_argument("--model-name", required=True)
    parser.add_argument("--pretrained")
    parser.add_argument("--revision")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--force-torch", action="store_true", help="never use fla's triton kernels")
    parser.add_argument("--recipe", default="{}", help="fine-tuning lr, weight_decay, max_grad_norm as JSON")
    parser.add_argument("--require-fla", action="store_true", help="fail unless fla's triton kernels will run")
    args = parser.parse_args()
    main(csv=args.csv, family=args.family, arch=json.loads(args.arch), vocab_size=args.vocab_size,
         settings=json.loads(args.settings), model_name=args.model_name, pretrained=args.pretrained,
         revision=args.revision, threads=args.threads, force_torch=args.force_torch, recipe=json.loads(args.recipe),
         require_fla=args.require_fla)
