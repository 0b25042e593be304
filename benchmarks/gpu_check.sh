#!/usr/bin/env bash
# Validate the GPU path on a CUDA machine in under 10 minutes, plus at most 4 for the zoo step; the last line is
# one JSON object.
#
#   bash benchmarks/gpu_check.sh [WORKDIR]
#
# 1. the `gpu`-marked tests (fla's triton kernels against our pure-PyTorch ops, on CUDA);
# 2. the paper-scale rehearsal on CUDA with fla's kernels required (config/paper.yaml +
#    tests/configs/paper_rehearsal.yaml + benchmarks/gpu_rehearsal.yaml), then checks that every GLA and
#    HGRN-bit number was produced by fla's kernels (finetune_info.json, metrics.json, efficiency CSVs);
# 3. benchmarks/bench_fla_layers.py: our GLA / HGRN-bit layers against fla's (differences, time ratios);
# 4. the zoo step: the zoo rehearsal (config/zoo.yaml + tests/configs/zoo_rehearsal.yaml + benchmarks/gpu_zoo.yaml)
#    on CUDA with fla-hub's RetNet and HGRN2 stand-ins on fla's kernels and transformers' Mamba, then checks that
#    every fla model's outputs name fla's triton kernels as their implementation.
# Needs the package with its `gpu` extra (fla-core, triton) and the CUDA build of torch.
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d)}
mkdir -p "$work"
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
start=$(date +%s)

python - <<'PY' || exit 2
import torch
from kernels.ops.backend import kernel_provenance
if not torch.cuda.is_available():
    raise SystemExit("gpu_check: CUDA is not available")
info = kernel_provenance("cuda")
print("gpu_check:", torch.cuda.get_device_name(0), info)
if info["kernels"] != "fla":
    raise SystemExit(f"gpu_check: fla's kernels would not run: {info['kernels_reason']}")
PY

timeout 240 python -m pytest -m gpu -q -p no:cacheprovider "$repo/tests" >"$work/gpu_tests.log" 2>&1
tests_rc=$?
tail -3 "$work/gpu_tests.log"

(cd "$work" && python -m kernels.rehearsal rehearsal >"$work/rehearsal_inputs.log" 2>&1) &&
    timeout 300 python -m snakemake -s "$repo/Snakefile" --directory "$work" --cores 8 --resources gpu=1 report \
        --configfile "$repo/config/paper.yaml" "$repo/tests/configs/paper_rehearsal.yaml" \
        "$repo/benchmarks/gpu_rehearsal.yaml" >"$work/rehearsal.log" 2>&1
rehearsal_rc=$?
tail -3 "$work/rehearsal.log"

timeout 180 python "$repo/benchmarks/bench_fla_layers.py" >"$work/layers.log" 2>&1
layers_rc=$?
tail -4 "$work/layers.log"

mkdir -p "$work/zoo" && ln -sfn "$work/rehearsal" "$work/zoo/rehearsal"
(cd "$work/zoo" && python -m kernels.rehearsal.zoo rehearsal >"$work/zoo_inputs.log" 2>&1) &&
    timeout 240 python -m snakemake -s "$repo/Snakefile" --directory "$work/zoo" --cores 8 --resources gpu=1 report \
        --configfile "$repo/config/paper.yaml" "$repo/config/zoo.yaml" "$repo/tests/configs/paper_rehearsal.yaml" \
        "$repo/tests/configs/zoo_rehearsal.yaml" "$repo/benchmarks/gpu_zoo.yaml" >"$work/zoo.log" 2>&1
zoo_rc=$?
tail -3 "$work/zoo.log"

python - "$work" "$tests_rc" "$rehearsal_rc" "$layers_rc" "$start" "$zoo_rc" <<'PY'
import glob, json, re, sys, time
from pathlib import Path

work, tests_rc, rehearsal_rc, layers_rc, start, zoo_rc = Path(sys.argv[1]), *map(int, sys.argv[2:])
log = (work / "gpu_tests.log").read_text()
count = lambda word: int(m.group(1)) if (m := re.search(rf"(\d+) {word}", log)) else 0
kernels = set()
for path in glob.glob(str(work / "results/models/*/*/seed*/finetune_info.json")):
    info = json.loads(Path(path).read_text())
    if info["family"] != "transformer_pp":
        kernels.add(info["provenance"]["kernels"])
for path in glob.glob(str(work / "results/eval/*/*/seed*/metrics.json")):
    kernels.add(json.loads(Path(path).read_text())["provenance"]["kernels"])
layers = {}
if layers_rc == 0:
    layers = json.loads((work / "layers.log").read_text().strip().splitlines()[-1])
zoo_paths = set()
for path in glob.glob(str(work / "zoo/results/models/*/*/seed*/finetune_info.json")):
    info = json.loads(Path(path).read_text())
    if info["family"] == "fla":
        zoo_paths.add(info["implementation"]["path"])
result = {"gpu_tests_rc": tests_rc, "gpu_tests_passed": count("passed"), "gpu_tests_failed": count("failed"),
          "gpu_tests_skipped": count("skipped"), "rehearsal_rc": rehearsal_rc,
          "rehearsal_report": (work / "results/report/index.html").exists(),
          "rehearsal_kernels": sorted(kernels), "layers_rc": layers_rc, **layers,
          "zoo_rc": zoo_rc, "zoo_fla_paths": sorted(zoo_paths),
          "wall_s": round(time.time() - start, 1)}
result["ok"] = (tests_rc == 0 and rehearsal_rc == 0 and layers_rc == 0 and kernels == {"fla"}
                and zoo_rc == 0 and zoo_paths == {"fla's triton kernels"})
print(json.dumps(result))
PY
