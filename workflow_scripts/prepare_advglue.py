"""Snakemake script: the six AdvGLUE dev sets, annotated with attack level and method, as parquet.

Run by the `script:` directive (a global `snakemake` object), or by hand:
    python workflow_scripts/prepare_advglue.py --out-dir results/data/advglue
"""


import argparse
from pathlib import Path

import _repo_path  # noqa: F401  (the checkout's kernels package, also in conda envs)
from kernels.data import ADVGLUE_SETS, prepare_advglue
from kernels.io import log_to


def main(
    outputs: list[str],
    source: str,
    bundled_dir: str | None,
    hub_dataset: str | None,
    annotations_url: str | None,
    revision: str | None,
    log: str | None = None,
    annotations_sha256: str | None = None,
) -> None:
    with log_to(log, outputs=outputs):
        prepare_advglue(
            list(outputs),
            source=source,
            bundled_dir=bundled_dir,
            hub_dataset=hub_dataset,
            annotations_url=annotations_url,
            revision=revision,
            annotations_sha256=annotations_sha256,
        )


def _parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", required=True, help="writes <out-dir>/<set>.parquet for each AdvGLUE set")
    parser.add_argument("--source", choices=("bundled", "hub"), default="bundled")
    parser.add_argument("--bundled-dir", default="resources/data")
    parser.add_argument("--hub-dataset", default="AI-Secure/adv_glue")
    parser.add_argument(
        "--annotations-url", default="https://adversarialglue.github.io/dataset/dev_ann.json"
    )
    parser.add_argument("--revision", default=None)
    parser.add_argument("--annotations-sha256", default=None, help="pinned SHA-256 of the annotation file")
    return parser.parse_args(argv)


if "snakemake" in globals():
    smk = globals()["snakemake"]
    main(
        outputs=list(smk.output),
        source=smk.params.source,
        bundled_dir=smk.params.get("bundled_dir"),
        hub_dataset=smk.params.get("hub_dataset"),
        annotations_url=smk.params.get("annotations_url"),
        revision=smk.params.get("revision"),
        log=smk.log[0] if len(smk.log) else None,
        annotations_sha256=smk.params.get("annotations_sha256"),
    )
elif __name__ == "__main__":
    args = _parse_args()
    main(
        outputs=[str(Path(args.out_dir) / f"{name}.parquet") for name in ADVGLUE_SETS],
        source=args.source,
        bundled_dir=args.bundled_dir,
        hub_dataset=args.hub_dataset,
        annotations_url=args.annotations_url,
        revision=args.revision,
        annotations_sha256=args.annotations_sha256,
    )
