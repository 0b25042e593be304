"""Snakemake script: results/efficiency/*.csv -> results/tables/efficiency.csv and efficiency_slopes.csv.

input: ``csvs`` (list); output: ``efficiency``, ``slopes`` (log-log slope per model, mode and batch size, with
the median and best MFU of the same points and the matmul peak behind them: ``median_mfu``, ``max_mfu``,
``peak_gflops``).
"""


import argparse

import _repo_path  # noqa: F401  (the checkout's kernels package, also in conda envs)
from kernels.io import log_to
from kernels.io import write_csv
from kernels.profiling import combine_efficiency


def main(csvs: list[str], efficiency: str, slopes: str) -> None:
    combined, fits = combine_efficiency(csvs)
    write_csv(efficiency, combined)
    write_csv(slopes, fits)


if "snakemake" in globals():
    smk = globals()["snakemake"]
    with log_to(smk.log[0] if len(smk.log) else None, outputs=smk.output):
        main(csvs=list(smk.input.csvs), efficiency=smk.output.efficiency, slopes=smk.output.slopes)
elif __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csvs", nargs="+")
    parser.add_argument("--efficiency", required=True)
    parser.add_argument("--slopes", required=True)
    args = parser.parse_args()
    main(args.csvs, args.efficiency, args.slopes)
