"""Fine-tuning benchmarks, each reported as one ratio.

- ``finetune_vs_padded_eager``: throughput of our loop (length-bucketed dynamic padding) against a plain
  loop that pads every batch to ``max_length``, on the same model, the same real SST-2 sentences and the
  same number of optimizer steps. Tokens/s counts real (non-padding) tokens in both.
- ``train_step_mfu``: model FLOPs utilisation of one training step (forward, backward, gradient clipping,
  AdamW: the fine-tuning loop's own step) of the demo model with the most FLOPs per token in
  config/config.yaml, on a full ``batch_size x max_length`` batch, against the dense matmul peak measured
  on this device with the same dtype and thread count. FLOPs are the analytic count of
  ``kernels.profiling.flops`` (train = 3 x forward). Also printed: where the step's time goes (phases;
  matrix products vs the rest, from torch.profiler) and how MFU changes with batch size and length.

- ``transformer_pp_vs_hf_llama_finetune``: fine-tuning throughput of our Transformer++ classifier against
  transformers' ``LlamaForSequenceClassification`` of the same shape and the same weights (what a user would
  otherwise pick), on the same bucketed SST-2 batches, both through the fine-tuning loop's own optimizer step.
  Rounds alternate between the two models and the median round counts, so that load from other processes
  hits both alike. Goal >= 1.0 (ours at least as fast).

Last stdout line: ``{"finetune_vs_padded_eager": <ours / plain tokens per second>, "train_step_mfu": <MFU>,
"transformer_pp_vs_hf_llama_finetune": <ours / Llama tokens per second>}`` (``--only`` keeps a subset).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kernels.data.glue import read_bundled_glue  # noqa: E402
from kernels.models import build_classifier  # noqa: E402
from kernels.tokenization import train_tokenizer  # noqa: E402
from kernels.training import FinetuneHyperparams, encode_examples, train_classifier  # noqa: E402
from kernels.training.batching import pad_batch  # noqa: E402
from kernels.profiling import flops_per_token, measure_matmul_peak_gflops  # noqa: E402
from kernels.training.loop import optimizer_step, parameter_groups  # noqa: E402

ARCH = {"hidden_size": 128, "num_hidden_layers": 4, "num_heads": 4, "hidden_ratio": 4}  # config.yaml default


def padded_eager_loop(model, encoded, hp: FinetuneHyperparams, steps: int, pad_id: int) -> tuple[int, float]:
    """The baseline: random batches, every one padded to max_length. Returns (real tokens, seconds)."""
    rng = np.random.default_rng(hp.seed)
    optimizer = torch.optim.AdamW(parameter_groups(model, hp.weight_decay), lr=hp.lr)
    model.train()
    order = rng.permutation(len(encoded))
    tokens, start = 0, time.perf_counter()
    for step in range(steps):
        rows = order[(step * hp.batch_size) % len(order):][:hp.batch_size]
        seqs = [encoded.input_ids[i] + [pad_id] * (hp.max_length - len(encoded.input_ids[i])) for i in rows]
        ids, _ = pad_batch(seqs, pad_id)
        mask = torch.zeros_like(ids)
        for r, i in enumerate(rows):
            mask[r, :len(encoded.input_ids[i])] = 1
        labels = torch.as_tensor(encoded.labels[rows])
        optimizer.zero_grad(set_to_none=True)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), hp.max_grad_norm)
        optimizer.step()
        tokens += int(mask.sum())
    return tokens, time.perf_counter() - start


def finetune_vs_padded_eager(args) -> float:
    """Tokens/s of our bucketed loop over the padded plain loop (see module docstring)."""
    frame = read_bundled_glue(REPO / "resources" / "data", "sst2", "train").head(args.examples)
    tokenizer = train_tokenizer(frame["text_a"].tolist(), vocab_size=4096, min_frequency=2)
    arch = dict(ARCH) if args.family != "mmfree" else {k: v for k, v in ARCH.items() if k != "num_heads"}
    hp = FinetuneHyperparams(epochs=args.steps * args.batch_size / len(frame), batch_size=args.batch_size,
                             max_length=args.max_length, checkpoint_every=10**9, log_every=10**9)
    encoded = encode_examples(tokenizer, frame, hp.max_length, source="sst2 train")
    pad_id = tokenizer.pad_token_id
    print(f"{args.family}, {len(frame)} SST-2 sentences, mean length {encoded.lengths.mean():.1f} tokens, "
          f"batch {hp.batch_size}, {args.steps} steps, max_length {hp.max_length}")

    def fresh():
        return build_classifier(args.family, arch, vocab_size=len(tokenizer), num_labels=2, pad_token_id=pad_id, seed=0)

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = train_classifier(fresh(), encoded, hp, pad_token_id=pad_id, checkpoint_dir=Path(tmp) / "ckpt",
                                  progress=False)
        ours_s = time.perf_counter() - start
    ours_tokens = result.tokens
    base_tokens, base_s = padded_eager_loop(fresh(), encoded, hp, result.steps, pad_id)
    ours, base = ours_tokens / ours_s, base_tokens / base_s
    print(f"bucketed dynamic padding: {ours:,.0f} tokens/s ({result.steps} steps in {ours_s:.2f} s)")
    print(f"padded to max_length:     {base:,.0f} tokens/s ({result.steps} steps in {base_s:.2f} s)")
    return ours / base


# ---------------------------------------------------------------------------------------------------
# train_step_mfu

# Matrix-product kernels as torch.profiler names them (forward and backward both call these).
MATMUL_OPS = {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::addbmm", "aten::_addmm_activation"}
# Fused attention kernels: matrix products with softmax inside, counted apart from plain products.
ATTENTION_OPS = {"aten::_scaled_dot_product_flash_attention_for_cpu",
                 "aten::_scaled_dot_product_flash_attention_for_cpu_backward"}


def largest_demo_model(config_path: Path, seq_len: int) -> tuple[str, str, dict, int, float]:
    """(name, family, arch, vocab size, train FLOPs per token) of the config's from-scratch model with the
    most training FLOPs per token at ``seq_len``."""
    with open(config_path, encoding="utf-8") as handle:
        config = yaml.safe_load(handle)
    vocab = int(config["tokenizer"]["vocab_size"])
    candidates = []
    for name, model_cfg in config["models"].items():
        if model_cfg.get("pretrained"):
            continue  # a checkpoint is not a demo model
        model = build_classifier(model_cfg["family"], model_cfg["arch"], vocab_size=vocab, num_labels=2,
                                 pad_token_id=0, seed=0)
        flops = flops_per_token(model_cfg["family"], model.config, "train", seq_len, decode_tokens=1)
        candidates.append((flops, name, model_cfg["family"], dict(model_cfg["arch"])))
    if not candidates:
        raise ValueError(f"{config_path}: field 'models' has no from-scratch model to benchmark")
    flops, name, family, arch = max(candidates)
    return name, family, arch, vocab, flops


class TrainStep:
    """The fine-tuning loop's own optimizer step on a fixed full-length random batch (no padding)."""

    def __init__(self, model, hp: FinetuneHyperparams, batch_size: int, seq_len: int, vocab: int):
        generator = torch.Generator().manual_seed(0)
        self.model, self.hp = model.train(), hp
        self.optimizer = torch.optim.AdamW(parameter_groups(model, hp.weight_decay), lr=hp.lr)
        self.batch = {"input_ids": torch.randint(1, vocab, (batch_size, seq_len), generator=generator),
                      "attention_mask": torch.ones(batch_size, seq_len, dtype=torch.long),
                      "labels": torch.randint(0, 2, (batch_size,), generator=generator)}
        self.tokens = batch_size * seq_len

    def __call__(self) -> None:
        optimizer_step(self.model, self.optimizer, self.batch, self.hp, torch.device("cpu"), step=0)

    def seconds(self, warmup: int, min_repeats: int, budget_s: float) -> float:
        """Median seconds per step after ``warmup`` steps: at least ``min_repeats`` steps, more while the
        budget lasts."""
        for _ in range(warmup):
            self()
        times, start = [], time.perf_counter()
        while len(times) < min_repeats or time.perf_counter() - start < budget_s:
            begin = time.perf_counter()
            self()
            times.append(time.perf_counter() - begin)
        return float(np.median(times))


def phase_seconds(step: TrainStep, repeats: int = 3) -> dict[str, float]:
    """Median seconds of forward, backward and clip + AdamW, timed separately on the same batch."""
    phases = {"forward": [], "backward": [], "clip+adamw": []}
    model, batch, hp = step.model, step.batch, step.hp
    for _ in range(repeats):
        step.optimizer.zero_grad(set_to_none=True)
        t0 = time.perf_counter()
        loss = model(**batch).loss
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(model.parameters(), hp.max_grad_norm)
        step.optimizer.step()
        t3 = time.perf_counter()
        for name, seconds in zip(phases, (t1 - t0, t2 - t1, t3 - t2)):
            phases[name].append(seconds)
    return {name: float(np.median(values)) for name, values in phases.items()}


def profiler_shares(step: TrainStep, steps: int = 2) -> dict[str, float]:
    """Shares of the profiled steps' wall time: matrix products, fused attention, other aten operators
    (element-wise, norms, reductions, copies, optimizer maths), and the rest (Python and dispatch)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        for _ in range(steps):
            step()
        wall_us = (time.perf_counter() - start) * 1e6
    matmul = attention = other = 0.0
    for event in prof.key_averages():
        if event.key in MATMUL_OPS:
            matmul += event.self_cpu_time_total
        elif event.key in ATTENTION_OPS:
            attention += event.self_cpu_time_total
        elif event.key.startswith("aten::"):
            other += event.self_cpu_time_total
    rest = max(0.0, wall_us - matmul - attention - other)
    return {"matmul": matmul / wall_us, "attention": attention / wall_us, "other_ops": other / wall_us,
            "python_dispatch": rest / wall_us}


def train_step_mfu(args) -> float:
    """MFU of the fine-tuning step of the largest demo model (see module docstring); prints what limits it."""
    name, family, arch, vocab, flops = largest_demo_model(REPO / "config" / "config.yaml", args.max_length)
    hp = FinetuneHyperparams(batch_size=args.batch_size, max_length=args.max_length)
    model = build_classifier(family, arch, vocab_size=vocab, num_labels=2, pad_token_id=0, seed=0)
    params = sum(p.numel() for p in model.parameters())
    # Peak measured before and after the steps; the higher one is kept, so that a burst of load from
    # other processes during one measurement cannot inflate the MFU.
    peak_before = measure_matmul_peak_gflops("cpu", "float32", threads=args.threads)

    step = TrainStep(model, hp, args.batch_size, args.max_length, vocab)
    seconds = step.seconds(warmup=2, min_repeats=5, budget_s=args.mfu_budget_s)
    phases = phase_seconds(step)
    shares = profiler_shares(step)

    rates = []
    for batch_size, seq_len in args.mfu_grid:
        point_flops = flops_per_token(family, model.config, "train", seq_len, decode_tokens=1)
        point = TrainStep(model, hp, batch_size, seq_len, vocab)
        point_s = point.seconds(warmup=1, min_repeats=3, budget_s=args.mfu_budget_s / 4)
        rates.append((batch_size, seq_len, point_flops * point.tokens / point_s / 1e9))
    peak = max(peak_before, measure_matmul_peak_gflops("cpu", "float32", threads=args.threads))

    achieved = flops * step.tokens / seconds / 1e9
    mfu = achieved / peak
    print(f"train_step_mfu: {name} ({family}, {params / 1e6:.2f}M params, {flops / 1e6:.2f} MFLOP per token "
          f"trained at length {args.max_length}), batch {args.batch_size} x {args.max_length}, "
          f"{args.threads} thread(s), float32")
    print(f"  matmul peak {peak:.1f} GFLOP/s (before {peak_before:.1f}); step {seconds * 1e3:.1f} ms = "
          f"{achieved:.1f} GFLOP/s -> MFU {mfu:.3f}")
    total = sum(phases.values())
    print("  phases: " + ", ".join(f"{k} {v * 1e3:.1f} ms ({v / total:.0%})" for k, v in phases.items()))
    print("  profiler share of step time: " + ", ".join(f"{k} {v:.0%}" for k, v in shares.items()))
    print("  MFU by batch x length: " + ", ".join(f"{b}x{t}: {r / peak:.3f}" for b, t, r in rates))
    if mfu < 0.30:
        print(f"  below the 0.30 goal: matrix products take {shares['matmul']:.0%} of the step; the rest is "
              "element-wise work, the optimizer and Python overhead, which earn no FLOPs at hidden size "
              f"{arch.get('hidden_size')}")
    return mfu


# ---------------------------------------------------------------------------------------------------
# transformer_pp_vs_hf_llama_finetune

LLAMA_RENAMES = [("model.embeddings.", "model.embed_tokens."), (".attn_norm.", ".input_layernorm."),
                 (".mlp_norm.", ".post_attention_layernorm."), (".attn.", ".self_attn.")]


def llama_twin(ours: torch.nn.Module) -> torch.nn.Module:
    """transformers' ``LlamaForSequenceClassification`` with our Transformer++ classifier's shape and weights."""
    from transformers import LlamaConfig, LlamaForSequenceClassification

    config = ours.config
    layer = ours.model.layers[0]
    llama = LlamaForSequenceClassification(LlamaConfig(
        vocab_size=config.vocab_size, hidden_size=config.hidden_size,
        intermediate_size=layer.mlp.gate_proj.out_features, num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_heads, num_key_value_heads=config.num_kv_heads or config.num_heads,
        rms_norm_eps=config.norm_eps, rope_theta=config.rope_theta or 10000.0, hidden_act="silu",
        max_position_embeddings=4096, tie_word_embeddings=False, attention_bias=False, mlp_bias=False,
        num_labels=config.num_labels, pad_token_id=config.pad_token_id))
    state = {}
    for key, value in ours.state_dict().items():
        for old, new in LLAMA_RENAMES:
            key = key.replace(old, new)
        state[key] = value
    missing, unexpected = llama.load_state_dict(state, strict=False)
    if unexpected or any("rotary" not in k for k in missing):
        raise RuntimeError(f"Llama twin: weights do not map (missing {missing}, unexpected {unexpected})")
    return llama


def timed_round(model, optimizer, batches, hp: FinetuneHyperparams) -> float:
    start = time.perf_counter()
    for step, batch in enumerate(batches, 1):
        optimizer_step(model, optimizer, batch, hp, torch.device("cpu"), step)
    return time.perf_counter() - start


def transformer_pp_vs_hf_llama_finetune(args) -> float:
    """Tokens/s of our Transformer++ over transformers' Llama classifier, same shape, weights and batches."""
    from kernels.training.batching import collate, plan_batches

    frame = read_bundled_glue(REPO / "resources" / "data", "sst2", "train").head(args.examples)
    tokenizer = train_tokenizer(frame["text_a"].tolist(), vocab_size=4096, min_frequency=2)
    hp = FinetuneHyperparams(batch_size=args.batch_size, max_length=args.max_length)
    encoded = encode_examples(tokenizer, frame, hp.max_length, source="sst2 train")
    pad_id = tokenizer.pad_token_id
    plan = plan_batches(encoded.lengths, hp.batch_size, hp.bucket_batches, hp.seed, 0)[:args.steps]
    batches = [collate(encoded, rows, pad_id) for rows in plan]
    tokens = sum(int(b["attention_mask"].sum()) for b in batches)
    ours = build_classifier("transformer_pp", ARCH, vocab_size=len(tokenizer), num_labels=2, pad_token_id=pad_id,
                            seed=0)
    llama = llama_twin(ours)
    with torch.no_grad():  # same function: the comparison is of implementations, not of models
        probe = batches[0]
        torch.testing.assert_close(ours.eval()(**probe).logits, llama.eval()(**probe).logits, rtol=1e-4, atol=1e-4)
    models = {"ours": ours.train(), "llama": llama.train()}
    optimizers = {name: torch.optim.AdamW(parameter_groups(m, hp.weight_decay), lr=hp.lr) for name, m in models.items()}
    for name, model in models.items():  # warm-up
        timed_round(model, optimizers[name], batches[:2], hp)
    rounds = {name: [] for name in models}
    for _ in range(args.rounds):
        for name, model in models.items():
            rounds[name].append(timed_round(model, optimizers[name], batches, hp))
    seconds = {name: float(np.median(values)) for name, values in rounds.items()}
    print(f"peer: Transformer++ (ours) vs transformers LlamaForSequenceClassification, {ARCH}, {len(batches)} "
          f"bucketed SST-2 batches of {hp.batch_size} ({tokens:,} real tokens), median of {args.rounds} rounds")
    for name, label in (("ours", "ours"), ("llama", "HF Llama")):
        print(f"  {label:8s}: {tokens / seconds[name]:,.0f} tokens/s ({seconds[name] * 1e3:.0f} ms per round)")
    return seconds["llama"] / seconds["ours"]


def parse_grid(text: str) -> list[tuple[int, int]]:
    """"8x128,32x64" -> [(8, 128), (32, 64)]."""
    points = []
    for item in filter(None, text.split(",")):
        batch, _, length = item.strip().partition("x")
        points.append((int(batch), int(length)))
    return points


BENCHMARKS = {"finetune_vs_padded_eager": (finetune_vs_padded_eager, 2), "train_step_mfu": (train_step_mfu, 3),
              "transformer_pp_vs_hf_llama_finetune": (transformer_pp_vs_hf_llama_finetune, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--examples", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--family", default="transformer_pp")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--mfu-budget-s", type=float, default=4.0, help="time budget of the headline MFU step")
    parser.add_argument("--mfu-grid", type=parse_grid, default=parse_grid("1x128,8x128,32x16,32x64,32x256"),
                        help="batch x length points for the MFU-vs-shape line, e.g. 8x128,32x64")
    parser.add_argument("--rounds", type=int, default=5, help="alternating timed rounds of the peer comparison")
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), default=list(BENCHMARKS),
                        help="run only these benchmarks")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    ratios = {}
    for key in args.only:
        function, digits = BENCHMARKS[key]
        ratios[key] = round(function(args), digits)
    print(json.dumps(ratios))


if __name__ == "__main__":
    main()
