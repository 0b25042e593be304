"""Fine-tuning throughput: our loop (length-bucketed dynamic padding) against a plain loop that
pads every batch to ``max_length``, on the same model, the same real SST-2 sentences and the same
number of optimizer steps. Tokens/s counts real (non-padding) tokens in both.

Last stdout line: ``{"finetune_vs_padded_eager": <ours / plain tokens per second>}``.
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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kernels.data.glue import read_bundled_glue  # noqa: E402
from kernels.models import build_classifier  # noqa: E402
from kernels.tokenization import train_tokenizer  # noqa: E402
from kernels.training import FinetuneHyperparams, encode_examples, train_classifier  # noqa: E402
from kernels.training.batching import pad_batch  # noqa: E402
from kernels.training.loop import parameter_groups  # noqa: E402

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--examples", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--family", default="transformer_pp")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

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
    print(json.dumps({"finetune_vs_padded_eager": round(ours / base, 2)}))


if __name__ == "__main__":
    main()
