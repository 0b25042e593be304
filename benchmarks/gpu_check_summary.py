"""Last step of benchmarks/gpu_check.sh: one JSON line saying how far the check got and what it measured.

Reads what the steps left in WORKDIR (``steps.jsonl``: one record per step with its status, seconds and
reason; ``env.json``; the ``gpu`` tests' JUnit XML; the benchmarks' last JSON lines; the rehearsal's
outputs, the zoo rehearsal's) and prints one JSON object. Exit status 0 when the GPU path was validated (CUDA present, every
step that ran passed, the optional rehearsal and zoo steps passed or were skipped), 1 otherwise. Needs only the standard
library: it must speak even when everything else failed.

    python benchmarks/gpu_check_summary.py WORKDIR START_EPOCH_SECONDS
"""

from __future__ import annotations

import glob
import json
import sys
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

REQUIRED_STEPS = ("env", "gpu_tests", "gpu_step", "fla_layers")
STEP_FIELDS = ("status", "seconds", "limit_s", "rc", "reason")
GPU_STEP_FIELDS = ("status", "checkpointing", "planner_gib", "planner_device_probe_gib", "peak_gib",
                   "peak_over_planner", "peak_over_device_probe", "step_s", "tokens_per_s", "model_tflops", "mfu",
                   "mfu_vs_nominal", "losses_finite", "fla_kernel_calls", "error")


def last_json_line(path: Path) -> dict | None:
    """The last line of ``path`` that is a JSON object (benchmarks end with one), or None."""
    if not path.exists():
        return None
    for line in reversed(path.read_text(errors="replace").splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    return None


def read_steps(work: Path) -> dict[str, dict]:
    steps: dict[str, dict] = {}
    path = work / "steps.jsonl"
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                record = json.loads(line)
                name = record.pop("name")
                steps[name] = {k: v for k, v in record.items() if v is not None}
    return steps


def junit_counts(path: Path) -> dict:
    """Collected / passed / failed / skipped tests and the distinct skip reasons of a JUnit XML file."""
    if not path.exists():
        return {}
    root = ElementTree.parse(path).getroot()
    cases = root.findall(".//testcase")
    failed = sum(1 for case in cases if case.find("failure") is not None or case.find("error") is not None)
    skipped = [case.find("skipped") for case in cases]
    reasons = sorted({(s.get("message") or "").removeprefix("Skipped: ").strip() for s in skipped if s is not None})
    n_skipped = sum(1 for s in skipped if s is not None)
    return {"collected": len(cases), "passed": len(cases) - failed - n_skipped, "failed": failed,
            "skipped": n_skipped, "skip_reasons": reasons,
            "failures": sorted(case.get("name") for case in cases
                               if case.find("failure") is not None or case.find("error") is not None)}


def gpu_step_details(log: Path) -> dict:
    result = last_json_line(log)
    if result is None:
        return {}
    families = {name: {k: run[k] for k in GPU_STEP_FIELDS if k in run} for name, run in result["families"].items()}
    return {"complete": result.get("complete"), "all_ok": result.get("all_ok"), "tiny": result.get("tiny"),
            "matmul_peak_tflops": result.get("matmul_peak_tflops"), "families": families}


def rehearsal_details(work: Path) -> dict:
    """Which kernels the rehearsal's GLA and HGRN-bit numbers came from, and whether fla's really ran."""
    kernels, calls = set(), {}
    for path in glob.glob(str(work / "results/models/*/*/seed*/finetune_info.json")):
        info = json.loads(Path(path).read_text())
        if info.get("family") != "transformer_pp":
            kernels.add(info["provenance"]["kernels"])
            calls[path.split("/results/")[1]] = info["provenance"].get("fla_kernel_calls")
    for path in glob.glob(str(work / "results/eval/*/*/seed*/metrics.json")):
        provenance = json.loads(Path(path).read_text())["provenance"]
        if not path.split("/results/eval/")[1].startswith("transformer_pp/"):
            kernels.add(provenance["kernels"])
            calls[path.split("/results/")[1]] = provenance.get("fla_kernel_calls")
    return {"report": (work / "results/report/index.html").exists(), "kernels": sorted(kernels),
            "fla_kernels_ran": bool(calls) and all((n or 0) > 0 for n in calls.values())}


def zoo_details(work: Path) -> dict:
    """Which implementation ran each fla model of the zoo rehearsal: fla's triton kernels, or not."""
    paths = {}
    for path in glob.glob(str(work / "zoo/results/models/*/*/seed*/finetune_info.json")):
        info = json.loads(Path(path).read_text())
        if info.get("family") == "fla":
            paths[path.split("/results/")[1]] = (info.get("implementation") or {}).get("path")
    return {"report": (work / "zoo/results/report/index.html").exists(), "fla_paths": sorted(set(paths.values())),
            "fla_kernels_ran": bool(paths) and set(paths.values()) == {FLA_TRITON_PATH}}


# what kernels.families.generic records as the path of a model on fla's triton kernels
FLA_TRITON_PATH = "fla's triton kernels"


def summarize(work: Path, start: float) -> dict:
    steps = read_steps(work)
    env = json.loads((work / "env.json").read_text()) if (work / "env.json").exists() else {}
    if "gpu_tests" in steps:
        steps["gpu_tests"].update(junit_counts(work / "gpu_tests.xml"))
    for name in ("gpu_step", "gpu_step_cpu_smoke"):  # the smoke run: the same script at tiny sizes on the CPU
        if steps.get(name, {}).get("status", "skipped") != "skipped":
            steps[name].update(gpu_step_details(work / f"{name}.log"))
    if "fla_layers" in steps:
        steps["fla_layers"].update(last_json_line(work / "fla_layers.log") or {})
    if steps.get("rehearsal", {}).get("status") == "ok":
        steps["rehearsal"].update(rehearsal_details(work))
    if steps.get("zoo", {}).get("status") == "ok":
        steps["zoo"].update(zoo_details(work))
    cuda = bool(env.get("cuda"))
    fla = env.get("kernels") == "fla"
    ok = (cuda and fla and all(steps.get(name, {}).get("status") == "ok" for name in REQUIRED_STEPS)
          and steps["gpu_tests"].get("failed", 1) == 0 and steps["gpu_tests"].get("passed", 0) > 0
          and bool(steps["gpu_step"].get("all_ok"))
          and steps.get("rehearsal", {}).get("status", "skipped") in ("ok", "skipped")
          and (steps.get("rehearsal", {}).get("status") != "ok"
               or (steps["rehearsal"]["kernels"] == ["fla"] and steps["rehearsal"]["fla_kernels_ran"]))
          and steps.get("zoo", {}).get("status", "skipped") in ("ok", "skipped")
          and (steps.get("zoo", {}).get("status") != "ok" or steps["zoo"]["fla_kernels_ran"]))
    order = [name for name in ("env", "gpu_tests", "gpu_step", "gpu_step_cpu_smoke", "fla_layers", "rehearsal", "zoo")
             if name in steps]
    reached = next((name for name in reversed(order) if steps[name].get("status") != "skipped"), None)
    return {"ok": ok, "cuda": cuda, "device": env.get("device"), "kernels": env.get("kernels"),
            "kernels_reason": env.get("kernels_reason"), "autotune_configs": env.get("autotune_configs"),
            "versions": env.get("versions"), "reached": reached, "finished": (work / "finished").exists(),
            "steps": steps, "wall_s": round(time.time() - start, 1)}


def main(argv: list[str]) -> int:
    work, start = Path(argv[0]), float(argv[1])
    try:
        result = summarize(work, start)
    except Exception as exc:  # noqa: BLE001 - the check must end with its JSON line whatever happened
        result = {"ok": False, "summary_error": f"{type(exc).__name__}: {exc}", "wall_s": round(time.time() - start, 1)}
    print(json.dumps(result, sort_keys=False, default=str))
    return 0 if result.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
