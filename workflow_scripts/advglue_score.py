"""AdvGLUE predictions in the official format and the official-style score for one model and
seed (rule ``advglue_score``); see kernels/evaluation/advglue.py for the exact computation."""


import argparse

import _repo_path  # noqa: F401  (the checkout's kernels package, also in conda envs)
from kernels.io import log_to
from kernels.evaluation.advglue import score_prediction_files
from kernels.io import write_json


def main(predictions: list[str], dev: list[str], predictions_json: str, score: str,
         model: str | None = None, seed: int | None = None) -> dict:
    preds, result = score_prediction_files(list(predictions), list(dev))
    write_json(predictions_json, preds)
    write_json(score, {"model": model, "seed": seed, **result})
    return result


if "snakemake" in globals():
    sm = snakemake  # noqa: F821 - injected by Snakemake's script directive
    with log_to(sm.log[0] if len(sm.log) else None, outputs=sm.output):
        main(predictions=list(sm.input.predictions), dev=list(sm.input.dev), predictions_json=sm.output.predictions_json,
             score=sm.output.score, model=sm.wildcards.model, seed=int(sm.wildcards.seed))
elif __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--predictions", nargs="+", required=True, help="predictions.parquet files")
    parser.add_argument("--dev", nargs="+", required=True, help="AdvGLUE dev parquet files ({set}.parquet)")
    parser.add_argument("--predictions-json", required=True)
    parser.add_argument("--score", required=True)
    parser.add_argument("--model")
    parser.add_argument("--seed", type=int)
    args = parser.parse_args()
    print(main(args.predictions, args.dev, args.predictions_json, args.score, args.model, args.seed))
