#!/usr/bin/env bash
# Validate the GPU path on a CUDA machine in under 9 minutes, compilation included. The last line is one
# JSON object saying how far the check got and what it measured, however the steps end (failure, time
# limit, no CUDA, an interrupt); the exit status is 0 only when the GPU path was validated.
#
#   bash benchmarks/gpu_check.sh [WORKDIR]
#
# Needs what a typical offline GPU node has (a CUDA build of torch with its own triton, transformers,
# pytest, pandas) plus the `gpu` extra's wheels: README, "The GPU check on an offline node". Steps, each
# under its own time limit and all within GPU_CHECK_BUDGET_S (default 510 s; the JSON line comes after):
#   env         what the machine offers (benchmarks/gpu_check_env.py): device, versions, fla importable
#   gpu_tests   the `gpu`-marked tests (fla's kernels against our pure-PyTorch ops on CUDA; IEEE fp32 dots)
#   gpu_step    benchmarks/bench_gpu_step.py: the real 1.3B fine-tuning step per family, memory vs the plan
#               (on a machine without CUDA: skipped, and the same script runs at tiny sizes on the CPU)
#   fla_layers  benchmarks/bench_fla_layers.py: our GLA / HGRN-bit layers against fla's own
#   rehearsal   optional: the Snakemake paper rehearsal on CUDA with fla required, only where the
#               workflow's own dependencies import and enough of the budget is left
#   zoo         optional, likewise (after the rehearsal, whose inputs it reuses): the zoo rehearsal on CUDA
#               (config/zoo.yaml + tests/configs/zoo_rehearsal.yaml + benchmarks/gpu_zoo.yaml): fla-hub's
#               RetNet and HGRN2 stand-ins on fla's triton kernels beside transformers' Mamba; the summary checks
#               that every fla model's outputs name fla's triton kernels as their implementation
# fla's kernels ship without tuned configurations: KERNELS_AUTOTUNE_CONFIGS (default 1 here) bounds the
# candidates compiled per kernel, the same for our layers and fla's (kernels/ops/autotune.py).
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d)}
mkdir -p "$work"
work=$(cd "$work" && pwd)
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
export KERNELS_AUTOTUNE_CONFIGS=${KERNELS_AUTOTUNE_CONFIGS:-1}
budget=${GPU_CHECK_BUDGET_S:-510}
start=$(date +%s)
python=${PYTHON:-python}
rm -f "$work/steps.jsonl" "$work/finished"

summary() {
    # the JSON line, whatever happened before (the summary needs only Python's standard library)
    trap - EXIT INT TERM
    "$python" "$repo/benchmarks/gpu_check_summary.py" "$work" "$start" ||
        { rc=$?; [ "$rc" = 1 ] || echo '{"ok": false, "summary_error": "gpu_check_summary.py failed"}'; exit 1; }
}
trap summary EXIT
trap 'exit 130' INT TERM

record() {  # NAME STATUS SECONDS LIMIT RC REASON: one line of steps.jsonl
    "$python" -c 'import json, sys
name, status, seconds, limit, rc, reason = sys.argv[1:]
print(json.dumps({"name": name, "status": status, "seconds": int(seconds), "limit_s": int(limit) if limit else None,
                  "rc": int(rc) if rc else None, "reason": reason or None}))' "$@" >>"$work/steps.jsonl"
}

time_left() { echo $((budget - ($(date +%s) - start))); }

run_step() {  # NAME MAX_SECONDS COMMAND...: run COMMAND with a time limit, its output in WORKDIR/NAME.log
    local name=$1 limit=$2 left rc status t0
    shift 2
    left=$(($(time_left) - 5))
    if [ "$left" -lt 15 ]; then
        record "$name" skipped 0 "" "" "not enough of the ${budget} s budget left (${left} s)"
        return 1
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    echo "gpu_check: $name (limit ${limit} s)"
    t0=$(date +%s)
    timeout --kill-after=10 "$limit" "$@" >"$work/$name.log" 2>&1
    rc=$?
    case $rc in
        0) status=ok ;;
        124 | 137) status=timeout ;;
        *) status=failed ;;
    esac
    record "$name" "$status" $(($(date +%s) - t0)) "$limit" "$rc" ""
    tail -n 3 "$work/$name.log"
    return "$rc"
}

skip() { record "$1" skipped 0 "" "" "$2"; echo "gpu_check: $1 skipped: $2"; }

# 0. the machine
run_step env 150 "$python" "$repo/benchmarks/gpu_check_env.py" "$work"
CUDA=0 REHEARSAL_READY=0 REHEARSAL_MISSING=unknown
[ -f "$work/env.sh" ] && . "$work/env.sh"

# 1. the gpu-marked tests: every test file that marks any (only these are imported, so the node needs none
#    of the workflow's own dependencies); IEEE fp32 dots so that fp32 comparisons are not TF32's
mapfile -t gpu_test_files < <(grep -l -E '^\s*(@|pytestmark\s*=\s*\[?\s*)?pytest\.mark\.gpu\b' "$repo"/tests/test_*.py)
if [ "${#gpu_test_files[@]}" -gt 0 ]; then
    (cd "$repo" && export TRITON_F32_DEFAULT=ieee &&
        run_step gpu_tests 200 "$python" -m pytest -m gpu -q -rs -p no:cacheprovider \
            --junitxml="$work/gpu_tests.xml" "${gpu_test_files[@]}")
else
    record gpu_tests failed 0 "" "" "no test file under tests/ marks a test with pytest.mark.gpu"
fi

# 2. the real 1.3B step
if [ "$CUDA" = 1 ]; then
    run_step gpu_step 260 "$python" "$repo/benchmarks/bench_gpu_step.py" --gla-without-checkpointing
else
    skip gpu_step "CUDA is not available"
    # the same script on the CPU, tiny: it runs with this machine's packages (one family: every family's
    # module is imported either way)
    run_step gpu_step_cpu_smoke 150 "$python" "$repo/benchmarks/bench_gpu_step.py" --tiny --device cpu \
        --families gla --batch 2 --seq-len 16 --warmup 0 --steps 1
fi

# 3. our layers against fla's
if [ "$CUDA" = 1 ]; then
    run_step fla_layers 120 "$python" "$repo/benchmarks/bench_fla_layers.py"
else
    skip fla_layers "CUDA is not available"
fi

# 4. optional: the paper rehearsal through Snakemake on CUDA with fla's kernels required
if [ "$CUDA" != 1 ]; then
    skip rehearsal "CUDA is not available"
elif [ "$REHEARSAL_READY" != 1 ]; then
    skip rehearsal "optional, needs the workflow's dependencies; not importable here: $REHEARSAL_MISSING"
elif [ "$(time_left)" -lt 200 ]; then
    skip rehearsal "optional, not enough of the ${budget} s budget left ($(time_left) s; GPU_CHECK_BUDGET_S raises it)"
elif (cd "$work" && "$python" -m kernels.rehearsal rehearsal >"$work/rehearsal_inputs.log" 2>&1); then
    run_step rehearsal $(($(time_left) - 10)) "$python" -m snakemake -s "$repo/Snakefile" --directory "$work" \
        --cores 8 --resources gpu=1 report --configfile "$repo/config/paper.yaml" \
        "$repo/tests/configs/paper_rehearsal.yaml" "$repo/benchmarks/gpu_rehearsal.yaml"
else
    record rehearsal failed 0 "" "" "its inputs could not be written (rehearsal_inputs.log)"
fi

# 5. optional: the zoo rehearsal on CUDA (the paper rehearsal's tokenizer and data, fla-hub's stand-ins)
if [ "$CUDA" != 1 ]; then
    skip zoo "CUDA is not available"
elif [ "$REHEARSAL_READY" != 1 ]; then
    skip zoo "optional, needs the workflow's dependencies; not importable here: $REHEARSAL_MISSING"
elif [ ! -f "$work/rehearsal/tokenizer/tokenizer.json" ]; then
    skip zoo "optional, needs the paper rehearsal's inputs, which step rehearsal did not write"
elif [ "$(time_left)" -lt 200 ]; then
    skip zoo "optional, not enough of the ${budget} s budget left ($(time_left) s; GPU_CHECK_BUDGET_S raises it)"
elif (mkdir -p "$work/zoo" && ln -sfn "$work/rehearsal" "$work/zoo/rehearsal" && cd "$work/zoo" &&
    "$python" -m kernels.rehearsal.zoo rehearsal >"$work/zoo_inputs.log" 2>&1); then
    run_step zoo $(($(time_left) - 10)) "$python" -m snakemake -s "$repo/Snakefile" --directory "$work/zoo" \
        --cores 8 --resources gpu=1 report --configfile "$repo/config/paper.yaml" "$repo/config/zoo.yaml" \
        "$repo/tests/configs/paper_rehearsal.yaml" "$repo/tests/configs/zoo_rehearsal.yaml" \
        "$repo/benchmarks/gpu_zoo.yaml"
else
    record zoo failed 0 "" "" "its inputs could not be written (zoo_inputs.log)"
fi
touch "$work/finished"
