"""Efficiency profiling of tiny models of every family: one CSV row per grid point with plausible numbers,
decode state constant for recurrent families and growing with the context for the Transformer, an
out-of-memory point recorded without stopping the sweep, and slope fits on synthetic data."""

from __future__ import annotations

import importlib.metadata
import math
import os
import runpy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from kernels.profiling import (COLUMNS, TABLE_COLUMNS, ModelSpec, SettingsError, build_model,  # noqa: E402
                               combine_efficiency, fit_loglog, fit_slopes, flops_per_token, profile_model,
                               settings_from_dict)

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[1]
VOCAB = 256
ARCHS = {
    "transformer_pp": {"hidden_size": 32, "num_hidden_layers": 2, "num_heads": 2, "hidden_ratio": 4},
    "gla": {"hidden_size": 32, "num_hidden_layers": 2, "num_heads": 2, "expand_k": 0.5, "expand_v": 1,
            "hidden_ratio": 4},
    "mmfree": {"hidden_size": 32, "num_hidden_layers": 2, "hidden_ratio": 4},
}
SEQ_LENS = [16, 64]
QUICK = {"modes": ["train", "prefill", "decode"], "seq_lens": SEQ_LENS, "batch_sizes": [1, 2], "decode_tokens": 3,
         "warmup": 1, "min_repeats": 2, "max_repeats": 3, "time_budget_s": 0.05, "threads": 1, "device": "cpu",
         "dtype": "float32"}
SCRIPTS = REPO / "workflow_scripts"


def script_main(name: str):
    """The ``main`` of a workflow script, loaded without running it (no snakemake object, not __main__)."""
    return runpy.run_path(str(SCRIPTS / name), run_name="workflow_script")["main"]


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory) -> dict[str, Path]:
    """One CSV per family. The Transformer's is written by the workflow script as the Snakemake rule runs
    it (fork server in a fresh process); the others fork from this process, which skips starting a server."""
    directory = tmp_path_factory.mktemp("efficiency")
    paths = {family: directory / f"{family}.csv" for family in ARCHS}
    # As rules/profile.smk passes them: the profile section (with its threads; the rule itself reserves every
    # core) and the fine-tuning recipe.
    script_main("profile_model.py")(csv=str(paths["transformer_pp"]), family="transformer_pp",
                                    arch=ARCHS["transformer_pp"], vocab_size=VOCAB, settings=QUICK,
                                    model_name="tiny_transformer_pp", threads=2,
                                    recipe={"lr": 1e-3, "weight_decay": 0.01, "max_grad_norm": 1.0})
    for family in ("gla", "mmfree"):
        spec = ModelSpec(family=family, arch=ARCHS[family], vocab_size=VOCAB)
        profile_model(spec, settings_from_dict(QUICK), f"tiny_{family}", in_process=True).to_csv(
            paths[family], index=False)
    return paths


@pytest.mark.parametrize("family", list(ARCHS))
def test_sweep_rows_and_values(sweeps, family):
    frame = pd.read_csv(sweeps[family])
    assert list(frame.columns) == COLUMNS
    expected = {(m, b, s) for m in QUICK["modes"] for b in QUICK["batch_sizes"] for s in SEQ_LENS}
    assert set(zip(frame["mode"], frame["batch_size"], frame["seq_len"])) == expected
    assert len(frame) == len(expected)
    assert (frame["status"] == "ok").all()
    assert (frame["model"] == f"tiny_{family}").all() and (frame["device"] == "cpu").all()
    assert (frame["median_ms"] > 0).all()
    assert (frame["p10_ms"] <= frame["median_ms"]).all() and (frame["median_ms"] <= frame["p90_ms"]).all()
    assert (frame["repeats"] >= QUICK["min_repeats"]).all() and (frame["repeats"] <= QUICK["max_repeats"]).all()
    assert frame["peak_mem_mb"].notna().all() and (frame["peak_mem_mb"] >= 0).all()
    model = build_model(ModelSpec(family=family, arch=ARCHS[family], vocab_size=VOCAB))
    assert (frame["params"] == sum(p.numel() for p in model.parameters())).all()
    train = frame[frame["mode"] == "train"]
    np.testing.assert_allclose(train["tokens_per_s"], train["batch_size"] * train["seq_len"] / train["median_ms"] * 1e3)
    decode = frame[frame["mode"] == "decode"]
    np.testing.assert_allclose(decode["tokens_per_s"], decode["batch_size"] / decode["median_ms"] * 1e3)
    np.testing.assert_allclose(frame["achieved_gflops"], frame["flops_per_token"] * frame["tokens_per_s"] / 1e9)
    # One matmul peak per sweep, measured before the points; MFU of every real point against it.
    assert frame["peak_gflops"].nunique() == 1 and (frame["peak_gflops"] > 0).all()
    assert ((frame["mfu"] > 0) & (frame["mfu"] < 1.5)).all()
    np.testing.assert_allclose(frame["mfu"], frame["achieved_gflops"] / frame["peak_gflops"])
    assert frame.loc[frame["mode"] != "decode", "state_mb"].isna().all()
    # which kernels produced the numbers (CPU: this package's torch ops), with the installed versions
    assert (frame["kernels"] == "torch").all() and (frame["threads"] == 1).all()
    assert (frame["fla_kernel_calls"] == 0).all()  # counted per point: fla's kernels never ran here
    for column, package in (("fla_version", "fla-core"), ("triton_version", "triton")):
        try:
            installed = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            installed = None
        values = frame[column].dropna().astype(str).unique().tolist()
        assert values == ([installed] if installed else []), column


def test_decode_state_grows_only_for_transformer(sweeps):
    for family, path in sweeps.items():
        decode = pd.read_csv(path).query("mode == 'decode'").sort_values(["batch_size", "seq_len"])
        # Per sequence: the batch size must not change it.
        for seq_len, group in decode.groupby("seq_len"):
            assert group["state_mb"].nunique() == 1, (family, seq_len)
        sizes = decode.groupby("seq_len")["state_mb"].first()
        assert (sizes > 0).all()
        if family == "transformer_pp":
            # KV cache: 2 (k, v) x layers x hidden x fp32 bytes per token, linear in the context; preallocated
            # for the prompt and every decoded token.
            per_token = 2 * 2 * 32 * 4 / 2**20
            np.testing.assert_allclose(sizes.to_numpy(), per_token * (np.array(SEQ_LENS) + QUICK["decode_tokens"]))
        else:
            assert sizes.nunique() == 1, family


def test_flops_formula_context_dependence():
    configs = {f: build_model(ModelSpec(family=f, arch=a, vocab_size=VOCAB)).config for f, a in ARCHS.items()}
    short = {f: flops_per_token(f, c, "prefill", 64, 8) for f, c in configs.items()}
    long = {f: flops_per_token(f, c, "prefill", 4096, 8) for f, c in configs.items()}
    assert long["transformer_pp"] > short["transformer_pp"]
    assert long["gla"] == short["gla"] and long["mmfree"] == short["mmfree"]
    for family, config in configs.items():
        assert flops_per_token(family, config, "train", 64, 8) == 3 * short[family]
        # The classifier's matrices dominate: FLOPs per token are about 2 x non-embedding parameters.
        model = build_model(ModelSpec(family=family, arch=ARCHS[family], vocab_size=VOCAB))
        matrices = sum(p.numel() for n, p in model.named_parameters() if p.dim() == 2 and "embed" not in n)
        assert 0.9 * 2 * matrices < short[family] < 1.3 * 2 * matrices, family


def test_out_of_memory_point_is_recorded_and_sweep_goes_on():
    settings = settings_from_dict(dict(QUICK, modes=["train", "prefill"], seq_lens=[16, 4096], batch_sizes=[4],
                                       memory_limit_mb=24, warmup=0, min_repeats=1, max_repeats=1))
    frame = profile_model(ModelSpec(family="transformer_pp", arch=ARCHS["transformer_pp"], vocab_size=VOCAB),
                          settings, "tiny", in_process=True)
    status = {(r.mode, r.seq_len): r.status for r in frame.itertuples()}
    assert status[("train", 4096)] == "oom"
    assert status[("train", 16)] == "ok" and status[("prefill", 16)] == "ok"
    oom = frame[frame["status"] == "oom"]
    assert oom["median_ms"].isna().all() and (oom["params"] > 0).all()
    assert oom["mfu"].isna().all() and (oom["peak_gflops"] > 0).all()


def test_tables_script_concatenates_and_fits(sweeps, tmp_path):
    script_main("tables_efficiency.py")(csvs=[str(p) for p in sweeps.values()],
                                         efficiency=str(tmp_path / "efficiency.csv"),
                                         slopes=str(tmp_path / "slopes.csv"))
    combined = pd.read_csv(tmp_path / "efficiency.csv")
    assert len(combined) == 3 * 3 * 2 * 2 and list(combined.columns) == TABLE_COLUMNS
    # one MFU denominator for all three jobs: the highest peak any of them measured
    assert combined["mfu_peak_gflops"].nunique() == 1
    assert combined["mfu_peak_gflops"].iloc[0] == combined["peak_gflops"].max()
    np.testing.assert_allclose(combined["mfu"], combined["achieved_gflops"] / combined["mfu_peak_gflops"])
    slopes = pd.read_csv(tmp_path / "slopes.csv")
    assert len(slopes) == 3 * 3 * 2  # model x mode x batch size
    assert slopes["slope"].notna().all() and (slopes["n_points"] == 2).all()
    assert ((slopes["median_mfu"] > 0) & (slopes["median_mfu"] <= slopes["max_mfu"])).all()
    assert (slopes["max_mfu"] < 1.5).all() and (slopes["peak_gflops"] > 0).all()


def synthetic_efficiency(slopes: dict[tuple[str, str], float], noise: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    rows = []
    for (model, mode), slope in slopes.items():
        for seq_len in (64, 128, 256, 512, 1024):
            median = 0.3 * seq_len ** slope * math.exp(noise * rng.standard_normal())
            rows.append(dict(model=model, device="cpu", mode=mode, batch_size=1, seq_len=seq_len,
                             median_ms=median, status="ok"))
    return pd.DataFrame(rows)


def test_slope_fit_recovers_known_slopes():
    truth = {("a", "train"): 1.0, ("a", "decode"): 0.0, ("b", "prefill"): 2.0, ("b", "decode"): 0.5}
    fits = fit_slopes(synthetic_efficiency(truth)).set_index(["model", "mode"])
    for key, slope in truth.items():
        assert fits.loc[key, "slope"] == pytest.approx(slope, abs=1e-9)
        assert fits.loc[key, "intercept"] == pytest.approx(math.log(0.3), abs=1e-9)
        assert fits.loc[key, "r2"] == pytest.approx(1.0)
    noisy = fit_slopes(synthetic_efficiency(truth, noise=0.05)).set_index(["model", "mode"])
    for key, slope in truth.items():
        assert abs(noisy.loc[key, "slope"] - slope) < 0.1


def test_unreliable_fits_are_flagged():
    # The case: a decode curve whose first length is a noisy outlier (median 14.9 ms where the others
    # take ~7 ms) gives a negative "exponent" of about -0.3 with a standard error of about 0.2: flagged.
    frame = synthetic_efficiency({("a", "decode"): 0.0, ("a", "train"): 1.0, ("b", "decode"): 0.0})
    outlier = (frame["model"] == "a") & (frame["mode"] == "decode")
    frame.loc[outlier, "median_ms"] = [14.9, 6.8, 7.0, 7.2, 7.1]
    # a clean flat decode curve: r^2 is ~0 (nothing to explain), yet the slope 0 is well determined
    flat = frame["model"] == "b"
    frame.loc[flat, "median_ms"] = [7.0, 7.1, 6.9, 7.0, 7.05]
    fits = fit_slopes(frame).set_index(["model", "mode"])
    noisy = fits.loc[("a", "decode")]
    assert noisy["slope"] < -0.2 and noisy["slope_se"] > 0.1 and not noisy["reliable"]
    assert fits.loc[("a", "train"), "slope_se"] == pytest.approx(0.0, abs=1e-9) and fits.loc[("a", "train"), "reliable"]
    clean = fits.loc[("b", "decode")]
    assert clean["r2"] < 0.5 and clean["slope_se"] < 0.02 and clean["reliable"]
    two = fit_slopes(frame[frame["seq_len"].isin([64, 128])]).set_index(["model", "mode"])
    assert two.loc[("a", "train"), "r2"] == pytest.approx(1.0) and not two.loc[("a", "train"), "reliable"]


def test_slope_fit_skips_oom_and_single_length():
    frame = synthetic_efficiency({("a", "train"): 1.5})
    frame.loc[frame["seq_len"] == 1024, ["median_ms", "status"]] = [np.nan, "oom"]
    single = dict(frame.iloc[0], mode="prefill")
    fits = fit_slopes(pd.concat([frame, pd.DataFrame([single])], ignore_index=True))
    assert len(fits) == 1 and fits["max_seq_len"].iloc[0] == 512
    assert fits["slope"].iloc[0] == pytest.approx(1.5)
    slope, _, _ = fit_loglog([1, 10, 100], [5, 50, 500])
    assert slope == pytest.approx(1.0)


def test_timed_samples_counts_samples_and_honours_bounds():
    from kernels.profiling.measure import timed_samples

    calls = []

    def step():
        calls.append(1)
        return [1.0, 2.0, 3.0, 4.0]  # one decode run of four tokens

    no_budget = settings_from_dict({"warmup": 2, "min_repeats": 5, "max_repeats": 6, "time_budget_s": 0})
    assert len(timed_samples(step, no_budget)) == 8 and len(calls) == 2 + 2
    calls.clear()
    generous = settings_from_dict({"warmup": 0, "min_repeats": 1, "max_repeats": 9, "time_budget_s": 60})
    assert len(timed_samples(step, generous)) == 12 and len(calls) == 3


def test_in_process_needs_one_thread():
    from kernels.profiling import ProfilingError

    spec = ModelSpec(family="gla", arch=ARCHS["gla"], vocab_size=VOCAB)
    with pytest.raises(ProfilingError, match="threads == 1"):
        profile_model(spec, settings_from_dict(dict(QUICK, threads=2)), "tiny", in_process=True)


def test_settings_errors_name_the_field():
    with pytest.raises(SettingsError, match="unknown field.*'seq_len'"):
        settings_from_dict({"seq_len": [64]})
    with pytest.raises(SettingsError, match="'modes'.*'generate'"):
        settings_from_dict({"modes": ["generate"]})
    with pytest.raises(SettingsError, match="'batch_sizes'"):
        settings_from_dict({"batch_sizes": [0]})
    with pytest.raises(SettingsError, match="'max_repeats'"):
        settings_from_dict({"min_repeats": 5, "max_repeats": 2})


def test_malformed_efficiency_csv_names_file_and_column(tmp_path):
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"model": ["x"], "mode": ["train"]}).to_csv(bad, index=False)
    with pytest.raises(ValueError, match=r"bad\.csv.*'device'"):
        combine_efficiency([bad])


def _classifier(family: str) -> torch.nn.Module:
    return build_model(ModelSpec(family=family, arch=ARCHS[family], vocab_size=VOCAB))


def test_train_points_start_from_the_same_weights():
    from kernels.profiling.measure import _run_point, run_point

    model = _classifier("gla")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    settings = settings_from_dict(dict(QUICK, warmup=1, min_repeats=2, max_repeats=2))
    spec = ModelSpec(family="gla", arch=ARCHS["gla"], vocab_size=VOCAB)
    run_point(model, spec, "train", 2, 16, settings, torch.device("cpu"))
    # the point put the initial weights back ...
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    # ... which its steps do change (what a point without the restore leaves behind)
    _run_point(model, spec, "train", 2, 16, settings, torch.device("cpu"), None)
    assert not all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_train_points_follow_the_finetuning_recipe_under_autocast():
    from kernels.profiling.measure import run_point, train_recipe

    model = _classifier("transformer_pp")
    settings = settings_from_dict(dict(QUICK, dtype="bfloat16", lr=0.002, weight_decay=0.1, max_grad_norm=0.5,
                                       warmup=0, min_repeats=1, max_repeats=1))
    recipe = train_recipe(settings)
    assert (recipe.lr, recipe.weight_decay, recipe.max_grad_norm, recipe.dtype) == (0.002, 0.1, 0.5, "bfloat16")
    seen = []
    hook = model.score.register_forward_hook(lambda module, args, out: seen.append((module.weight.dtype, out.dtype)))
    try:
        run_point(model, ModelSpec(family="transformer_pp", arch=ARCHS["transformer_pp"], vocab_size=VOCAB),
                  "train", 1, 16, settings, torch.device("cpu"))
    finally:
        hook.remove()
    # float32 master weights, bf16 compute (autocast), never a whole-model cast; rotary stays float32
    assert seen and all(pair == (torch.float32, torch.bfloat16) for pair in seen)
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    assert model.model.layers[0].attn.rotary.inv_freq.dtype == torch.float32
    with pytest.raises(SettingsError, match="'dtype' must be one of"):
        settings_from_dict(dict(QUICK, dtype="float16"))


@pytest.mark.parametrize("family,head_type", [("gla", "Linear"), ("mmfree", "BitLinear")])
def test_decode_goes_through_an_lm_head_every_token(family, head_type):
    from kernels.profiling.measure import Clock, _DecodeStep, _random_tokens

    model = _classifier(family)
    settings = settings_from_dict(QUICK)
    device = torch.device("cpu")
    spec = ModelSpec(family=family, arch=ARCHS[family], vocab_size=VOCAB)
    step = _DecodeStep(model, spec, _random_tokens(VOCAB, 2, 8, device, 0), _random_tokens(VOCAB, 2, 3, device, 1),
                       Clock(device), settings, device)
    assert type(step.head).__name__ == head_type
    assert (step.head.in_features, step.head.out_features) == (32, VOCAB)
    outputs = []
    step.head.register_forward_hook(lambda module, args, out: outputs.append(tuple(out.shape)))
    assert len(step()) == 3  # three timed decode steps
    assert outputs == [(2, 1, VOCAB)] * 4  # the prefill's last position, then every decoded token


def test_decode_memory_excludes_the_prefill():
    # GLA: prefilling 2,048 tokens needs megabytes of activations; decoding carries a state of kilobytes.
    settings = settings_from_dict(dict(QUICK, modes=["prefill", "decode"], seq_lens=[2048], batch_sizes=[4],
                                       warmup=0, min_repeats=1, max_repeats=1))
    # In a fresh worker process, as the workflow profiles: in this long-lived test process the allocator
    # keeps pages that earlier tests freed, so a prefill need not grow the resident set at all.
    frame = profile_model(ModelSpec(family="gla", arch=ARCHS["gla"], vocab_size=VOCAB), settings, "gla",
                          in_process=False).set_index("mode")
    state_total_mb = frame.loc["decode", "state_mb"] * 4
    assert frame.loc["prefill", "peak_mem_mb"] > 8
    assert state_total_mb <= frame.loc["decode", "peak_mem_mb"] < state_total_mb + 2


def test_profile_jobs_run_alone(tmp_path):
    """Locally a profile job reserves every core (Snakemake starts nothing beside it); on SLURM it asks for an
    exclusive node; its computation keeps the configured profile threads."""
    from workflow_helpers import TINY, run_snakemake

    proc = run_snakemake(tmp_path, "--dry-run", "--cores", "2", "results/efficiency/gla.csv", "--configfile",
                         str(TINY))
    out = proc.stdout + proc.stderr
    block = out[out.index("rule profile:"):]
    block = block[:block.index("\n\n")]
    assert "threads: 2" in block, block
    assert "slurm_extra=--exclusive" in block, block


def test_sweeps_reach_the_crossover_lengths():
    """The demo profiles every mode to at least 4,096 tokens (where the linear-time models can overtake the
    Transformer++); paper scale to 16k; the tiny test overlay stays cheap."""
    import yaml

    def profile(name: str) -> dict:
        return yaml.safe_load((REPO / name).read_text())["profile"]

    demo, paper, tiny = profile("config/config.yaml"), profile("config/paper.yaml"), profile("tests/configs/tiny.yaml")
    assert set(demo["modes"]) == {"train", "prefill", "decode"} and max(demo["seq_lens"]) >= 4096
    assert max(paper["seq_lens"]) >= 16384
    assert max(tiny["seq_lens"]) <= 64
    for config in (demo, paper):
        settings_from_dict({k: v for k, v in config.items() if k != "resources"})  # valid as the rule passes it


def test_points_flush_subnormal_floats_on_cpu():
    """Decaying gradients of long sequences reach subnormal floats, which x86 computes 10-100x slower; points
    flush them (profile.flush_denormal), and the process goes back to torch's default afterwards."""
    from kernels.profiling.measure import subnormals_flushed

    subnormal = torch.tensor([1e-39])
    assert float(subnormal * 1.0) != 0.0
    with subnormals_flushed(True):
        if torch.set_flush_denormal(True):  # False where the CPU cannot (then nothing to test)
            assert float(torch.tensor([1e-39]) * 1.0) == 0.0
    assert float(torch.tensor([1e-39]) * 1.0) != 0.0
    assert settings_from_dict(QUICK).flush_denormal is True
    with pytest.raises(SettingsError, match="'flush_denormal' must be true or false"):
        settings_from_dict(dict(QUICK, flush_denormal="yes"))


def _decode_step_flops(family: str, seq_len: int) -> tuple[float, float, torch.nn.Module]:
    """FLOPs torch's FlopCounterMode counts in one decode step (backbone and LM head, as the timed step runs
    them) after a prefill of ``seq_len`` tokens, and in the LM head alone."""
    from torch.utils.flop_counter import FlopCounterMode

    from kernels.families import family as family_named
    from kernels.profiling.measure import decode_head, initial_decode_state

    spec = ModelSpec(family=family, arch=ARCHS[family], vocab_size=VOCAB)
    model = build_model(spec).eval()
    behaviour = family_named(family)
    head, backbone = decode_head(spec, model, torch.device("cpu")), behaviour.backbone(model)
    tokens = torch.randint(1, VOCAB, (1, seq_len + 1), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        _, state = behaviour.decode_forward(backbone, tokens[:, :-1],
                                            initial_decode_state(spec, backbone, seq_len + 1), 0)
        step, head_only = FlopCounterMode(display=False), FlopCounterMode(display=False)
        with step:
            hidden, _ = behaviour.decode_forward(backbone, tokens[:, -1:], state, seq_len)
            head(hidden)
        with head_only:
            head(hidden)
    return step.get_total_flops(), head_only.get_total_flops(), model


@pytest.mark.parametrize("family", list(ARCHS))
def test_decode_flops_count_the_lm_head_the_step_runs(family):
    from kernels.profiling.flops import forward_flops_per_token, lm_head_flops_per_token, mode_context

    counted, head, model = _decode_step_flops(family, 16)
    config = model.config
    assert head == lm_head_flops_per_token(config) == 2 * 32 * VOCAB
    decode = flops_per_token(family, config, "decode", 16, 1)
    # the LM head replaces the classification head (which decoding does not run); train and prefill keep it
    assert decode == forward_flops_per_token(family, config, mode_context("decode", 16, 1)) - 2 * 32 * 2 + head
    if family == "transformer_pp":
        # FlopCounterMode does not see the attention over the KV cache of the decode step: the rest matches
        attention = config.num_hidden_layers * 2 * 2 * 32 * mode_context("decode", 16, 1)
        assert counted == decode - attention
    else:
        assert counted == decode  # every matrix product of the step, the LM head included


def test_tensor_meter_counts_new_storages_not_views_or_in_place_results():
    from kernels.profiling.tensor_memory import TensorMemoryMeter

    weights = torch.ones(1000)  # existed before: in-place updates of it cost nothing new
    with TensorMemoryMeter() as meter:
        a = weights * 2                  # 4,000 bytes
        view = a.view(10, 100)           # a view: no new memory
        weights.add_(1.0)                # in place: no new memory
        b = torch.empty(500, dtype=torch.float64)  # 4,000 bytes: 8,000 alive
        del a, view
        c = torch.zeros(250)             # 1,000 bytes: 5,000 alive
    assert meter.peak_bytes == 8_000 and meter.live_bytes == 5_000
    del b, c


def test_cpu_memory_is_measured_from_tensors_and_the_rss_kept_beside_it(sweeps):
    """Decode memory from tensors: the recurrent state plus the step's tensors, the same at every length for
    the recurrent families (the resident set read 9.0 ... 7.3 then 0.018 MiB for one of them), and the KV
    cache plus the step's tensors for the Transformer. The resident-set growth is its own labelled column."""
    for family, path in sweeps.items():
        frame = pd.read_csv(path)
        assert (frame["peak_mem_source"] == "tensors").all() and frame["rss_peak_mb"].notna().all()
        decode = frame[frame["mode"] == "decode"]
        for batch, rows in decode.groupby("batch_size"):
            state = rows["state_mb"] * batch
            assert (rows["peak_mem_mb"] >= state).all(), family
            if family != "transformer_pp":
                assert rows["peak_mem_mb"].nunique() == 1, (family, rows["peak_mem_mb"].tolist())
        for mode in ("train", "prefill"):  # activations grow with the length
            rows = frame[(frame["mode"] == mode) & (frame["batch_size"] == 1)].sort_values("seq_len")
            assert rows["peak_mem_mb"].is_monotonic_increasing and rows["peak_mem_mb"].iloc[-1] > 0, (family, mode)


def test_one_definition_of_a_reliable_slope_in_code_readme_and_report():
    """README, the module and the report state the rule the code applies (slope standard error, not r²)."""
    from kernels.profiling.slopes import RELIABLE_MAX_SE, RELIABLE_MIN_POINTS, is_reliable

    readme = (REPO / "README.md").read_text()
    assert (f"reliable: slope standard error ≤ {RELIABLE_MAX_SE} over ≥ {RELIABLE_MIN_POINTS} lengths"
            in readme)
    assert "r² ≥ 0.9" not in readme
    assert is_reliable(RELIABLE_MAX_SE, RELIABLE_MIN_POINTS) and not is_reliable(RELIABLE_MAX_SE * 1.01, 10)
    assert not is_reliable(0.0, RELIABLE_MIN_POINTS - 1)
    report = (REPO / "kernels" / "report" / "build.py").read_text()
    assert "standard error &gt; {RELIABLE_MAX_SE} or n &lt; {RELIABLE_MIN_POINTS}" in report
