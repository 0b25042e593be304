"""Snakemake script: normalise one GLUE task's train and evaluation splits to parquet.

Run by the `script:` directive (a global `snakemake` object), or by hand:
    python workflow_scripts/prepare_glue.py --task rte --out-dir results/data/glue/rte
"""


import argparse
from pathlib import Path

import _repo_path  # noqa: F401  (the checkout's kernels package, also in conda envs)
from kernels.data import get_task, prepare_glue
from kernels.io import log_to


def main(
    task: str,
    outputs: dict[str, str],
    source: str,
    bundled_dir: str | None,
    hub_dataset: str | None,
    revision: str | None,
    max_train_examples: int | None,
    max_eval_examples: int | None,
    subset_seed: int,
    log: str | None = None,
) -> None:
    with log_to(log, outputs=list(outputs.values())):
        prepare_glue(
            task,
            outputs,
            source=source,
            bundled_dir=bundled_dir,
            hub_dataset=hub_dataset,
            revision=revision,
            max_train_examples=max_train_examples,
            max_eval_examples=max_eval_examples,
            subset_seed=subset_seed,
        )


def _optional_int(value: str) -> int | None:
    return None if value.lower() in ("none", "null", "") else int(value)


def _parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", required=True)
    parser.add_argument("--out-dir", required=True, help="writes <out-dir>/<split>.parquet")
    parser.add_argument("--source", choices=("bundled", "hub"), default="bundled")
    parser.add_argument("--bundled-dir", default="resources/data")
    parser.add_argument("--hub-dataset", default="nyu-mll/glue")
    parser.add_argument("--revision", default=None)
    parser.add_argument("--max-train-examples", type=_optional_int, default=None)
    parser.add_argument("--max-eval-examples", type=_optional_int, default=None)
    parser.add_argument("--subset-seed", type=int, default=1234)
    return parser.parse_args(argv)


if "snakemake" in globals():
    smk = globals()["snakemake"]
    main(
        task=smk.wildcards.task,
        outputs={split: smk.output[split] for split in get_task(smk.wildcards.task).splits},
        source=smk.params.source,
        bundled_dir=smk.params.get("bundled_dir"),
        hub_dataset=smk.params.get("hub_dataset"),
        revision=smk.params.get("revision"),
        max_train_examples=smk.params.max_train_examples,
        max_eval_examples=smk.params.max_eval_examples,
        subset_seed=smk.params.subset_seed,
        log=smk.log[0] if len(smk.log) else None,
    )
elif __name__ == "__main__":
    args = _parse_args()
    main(
        task=args.task,
        outputs={split: str(Path(args.out_dir) / f"{split}.parquet") for split in get_task(args.task).splits},
        source=args.source,
        bundled_dir=args.bundled_dir,
        hub_dataset=args.hub_dataset,
        revision=args.revision,
        max_train_examples=args.max_train_examples,
        max_eval_examples=args.max_eval_examples,
        subset_seed=args.subset_seed,
    )
