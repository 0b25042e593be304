"""Benchmarks print their measured ratios as one JSON object on the last line (never asserting times)."""

import json
import subprocess
import sys

from workflow_helpers import REPO


def test_bench_kernels_last_line_is_json_of_ratios():
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_kernels.py"), "--repeats", "1", "--seq-len", "128",
         "--model-seq-len", "64", "--model-repeats", "1"],
        capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ratios = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {"gla_chunk_vs_recurrent_L128", "hgrn_chunk_vs_recurrent_L128",
            "gla_recurrent_vs_chunk_matmuls_only_L128"} <= set(ratios)
    assert all(value > 0 for value in ratios.values())
    # Recurrent families keep a constant decode state; the Transformer++ KV cache grows with the context.
    assert ratios["decode_state_growth_2048_vs_128_gla"] == 1.0
    assert ratios["decode_state_growth_2048_vs_128_mmfree"] == 1.0
    assert ratios["decode_state_growth_2048_vs_128_transformer_pp"] > 1.0
