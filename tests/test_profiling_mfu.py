"""The measured matmul peak (the MFU denominator) and the MFU summary of the slopes table."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from kernels.profiling import MFU_SUMMARY_COLUMNS, fit_slopes, measure_matmul_peak_gflops, mfu_summary  # noqa: E402
from kernels.profiling.peak import matmul_gflops  # noqa: E402

torch.set_num_threads(1)


def test_peak_is_positive_and_the_best_of_its_sizes():
    sizes = (64, 128)
    peak = measure_matmul_peak_gflops("cpu", "float32", threads=1, sizes=sizes, warmup=1, repeats=3)
    assert np.isfinite(peak) and peak > 0
    # The peak is the best of its sizes, so no single (noisy) re-measurement of one size is far above it.
    again = max(matmul_gflops(n, torch.device("cpu"), torch.float32, warmup=1, repeats=3) for n in sizes)
    assert again < 3 * peak
    # Not tested with threads > 1 here: starting OpenMP's pool in this process would break the forked
    # children of the in-process profiling tests (see kernels.profiling.worker).
    assert torch.get_num_threads() == 1


def test_peak_beats_a_plainly_slower_product():
    # A 16 x 16 product is dominated by call overhead: the default sizes must reach a clearly higher rate.
    tiny = matmul_gflops(16, torch.device("cpu"), torch.float32, warmup=1, repeats=5)
    assert measure_matmul_peak_gflops(threads=1, repeats=3) > 2 * tiny


@pytest.mark.parametrize("kwargs, message", [({"sizes": ()}, "sizes"), ({"sizes": (0,)}, "sizes"),
                                              ({"repeats": 0}, "repeats")])
def test_peak_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        measure_matmul_peak_gflops(**kwargs)


def _points(mfus, peak=100.0, status="ok"):
    return pd.DataFrame([dict(model="m", device="cpu", mode="train", batch_size=1, seq_len=64 * 2**i,
                              median_ms=1.0 + i, status=status, mfu=mfu, peak_gflops=peak)
                         for i, mfu in enumerate(mfus)])


def test_mfu_summary_median_max_and_peak():
    summary = mfu_summary(_points([0.1, 0.4, 0.2, np.nan]))
    assert summary == {"median_mfu": pytest.approx(0.2), "max_mfu": pytest.approx(0.4), "peak_gflops": 100.0}


def test_slopes_table_carries_mfu_summary_and_tolerates_old_tables():
    fits = fit_slopes(_points([0.3, 0.5, 0.1]))
    assert fits[MFU_SUMMARY_COLUMNS].iloc[0].tolist() == pytest.approx([0.3, 0.5, 100.0])
    old = fit_slopes(_points([0.3, 0.5, 0.1]).drop(columns=["mfu", "peak_gflops"]))
    assert len(old) == 1 and old[MFU_SUMMARY_COLUMNS].isna().all(axis=None)


def _bench_module():
    # benchmarks/ is not a package: load bench_finetune.py by path (its main() is not run).
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_finetune.py"
    spec = importlib.util.spec_from_file_location("bench_finetune", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_picks_model_with_most_flops_and_measures_its_step(tmp_path):
    bench = _bench_module()
    config = {"tokenizer": {"vocab_size": 128},
              "models": {"small": {"family": "gla", "arch": {"hidden_size": 16, "num_hidden_layers": 1,
                                                             "num_heads": 2}},
                         "big": {"family": "mmfree", "arch": {"hidden_size": 32, "num_hidden_layers": 2}},
                         "ckpt": {"family": "transformer_pp", "arch": {}, "pretrained": "some/hub-id"}}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    name, family, arch, vocab, flops = bench.largest_demo_model(path, seq_len=32)
    assert (name, family, vocab) == ("big", "mmfree", 128) and flops > 0
    model = bench.build_classifier(family, arch, vocab_size=vocab, num_labels=2, pad_token_id=0, seed=0)
    step = bench.TrainStep(model, bench.FinetuneHyperparams(batch_size=4, max_length=32), 4, 32, vocab)
    seconds = step.seconds(warmup=1, min_repeats=2, budget_s=0.0)
    mfu = flops * step.tokens / seconds / 1e9 / measure_matmul_peak_gflops(threads=1, repeats=3)
    assert 0 < mfu < 1.5
    assert bench.parse_grid("8x128, 32x64") == [(8, 128), (32, 64)]
    path.write_text(yaml.safe_dump({"tokenizer": {"vocab_size": 128}, "models": {"ckpt": config["models"]["ckpt"]}}))
    with pytest.raises(ValueError, match="config.yaml.*'models'"):
        bench.largest_demo_model(path, seq_len=32)
