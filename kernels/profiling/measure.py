"""Measuring one grid point (mode x batch size x sequence length) of one model, in the current process.

CPU memory is the growth of the process' peak resident set size over its size just before the point
(the caller runs each point in its own forked process, see :mod:`kernels.profiling.worker`). CUDA
memory is the growth of ``torch.cuda.max_memory_allocated`` over the memory allocated before it.
"""

from __future__ import annotations

import importlib
import inspect
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from kernels.profiling.flops import flops_per_token
from kernels.profiling.settings import ProfileSettings

NUM_LABELS = 2
PAD_TOKEN_ID = 0
# Builds the model from a model spec; "module:function" so that a forked worker can import it.
DEFAULT_BUILDER = "kernels.profiling.measure:build_model"


@dataclass(frozen=True)
class ModelSpec:
    """What to profile: a family with an architecture, or a pretrained checkpoint of that family."""

    family: str
    arch: dict[str, Any]
    vocab_size: int | None  # None for a pretrained checkpoint: its own vocabulary is used
    pretrained: str | None = None
    revision: str | None = None
    seed: int = 0
    builder: str = DEFAULT_BUILDER


def build_llama_reference(spec: ModelSpec) -> torch.nn.Module:
    """transformers' own Llama classifier: a reference Transformer++ to check the profiler against."""
    from transformers import LlamaConfig, LlamaForSequenceClassification

    torch.manual_seed(spec.seed)
    config = LlamaConfig(vocab_size=spec.vocab_size, num_labels=NUM_LABELS, pad_token_id=PAD_TOKEN_ID,
                         **spec.arch)
    return LlamaForSequenceClassification(config)


def _load_pretrained(spec: ModelSpec) -> torch.nn.Module:
    # kernels.models.load_classifier reads safetensors only and never runs remote code.
    from kernels.models import load_classifier

    return load_classifier(spec.family, spec.pretrained, num_labels=NUM_LABELS, revision=spec.revision,
                           config_overrides={"pad_token_id": PAD_TOKEN_ID})


def build_model(spec: ModelSpec) -> torch.nn.Module:
    """The classifier to profile: our family built from ``arch`` (seeded), or loaded from ``pretrained``."""
    if spec.family == "llama_reference":
        return build_llama_reference(spec)
    if spec.pretrained:
        return _load_pretrained(spec)
    from kernels.models import build_classifier

    if spec.vocab_size is None:
        raise ValueError(f"model family {spec.family!r} built from scratch needs a vocab_size")
    return build_classifier(spec.family, spec.arch, vocab_size=spec.vocab_size, num_labels=NUM_LABELS,
                            pad_token_id=PAD_TOKEN_ID, seed=spec.seed)


def resolve_builder(path: str) -> Callable[[ModelSpec], torch.nn.Module]:
    module, _, name = path.partition(":")
    if not name:
        raise ValueError(f"model builder must be 'module:function', got {path!r}")
    return getattr(importlib.import_module(module), name)


def state_nbytes(state: Any) -> int:
    """Bytes held by the tensors of a decoding state (KV cache or recurrent state), any nesting."""
    try:
        from kernels.models.common import state_nbytes as family_state_nbytes
    except ImportError:
        family_state_nbytes = None
    if family_state_nbytes is not None and not _is_transformers_cache(state):
        return int(family_state_nbytes(state))
    return _walk_nbytes(state, set())


def _is_transformers_cache(state: Any) -> bool:
    return type(state).__module__.startswith("transformers.")


def _walk_nbytes(obj: Any, seen: set[int]) -> int:
    # transformers' Cache objects keep tensors in attributes of per-layer objects, so walk attributes too.
    if obj is None or id(obj) in seen:
        return 0
    seen.add(id(obj))
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(_walk_nbytes(value, seen) for value in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_walk_nbytes(value, seen) for value in obj)
    if hasattr(obj, "__dict__") and not isinstance(obj, (type, torch.nn.Module)):
        return sum(_walk_nbytes(value, seen) for value in vars(obj).values())
    return 0


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


class Clock:
    """Marks on the host clock (CPU) or as CUDA events; durations are read after synchronising."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"

    def mark(self) -> Any:
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        return time.perf_counter()

    def durations_ms(self, marks: list[Any]) -> list[float]:
        if self.cuda:
            torch.cuda.synchronize()
            return [a.elapsed_time(b) for a, b in zip(marks, marks[1:])]
        return [(b - a) * 1e3 for a, b in zip(marks, marks[1:])]


def _random_tokens(vocab_size: int, batch: int, length: int, device: torch.device, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    # Token 0 is padding: leave it out so that every position is a real token.
    return torch.randint(1, vocab_size, (batch, length), generator=generator).to(device)


def _train_step(model, tokens, clock: Clock, seed: int) -> Callable[[], list[float]]:
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    labels = torch.randint(0, NUM_LABELS, (tokens.shape[0],),
                           generator=torch.Generator().manual_seed(seed)).to(tokens.device)

    def step() -> list[float]:
        start = clock.mark()
        loss = model(input_ids=tokens, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return clock.durations_ms([start, clock.mark()])

    return step


def _prefill_step(model, tokens, clock: Clock) -> Callable[[], list[float]]:
    model.eval()

    def step() -> list[float]:
        with torch.inference_mode():
            start = clock.mark()
            model(input_ids=tokens)
            return clock.durations_ms([start, clock.mark()])

    return step


def _state_keyword(backbone: torch.nn.Module) -> str:
    # Our backbones take ``past_state``; transformers' own (the Llama reference) take ``past_key_values``.
    parameters = inspect.signature(backbone.forward).parameters
    if "past_state" in parameters:
        return "past_state"
    if "past_key_values" in parameters:
        return "past_key_values"
    raise TypeError(f"{type(backbone).__name__}.forward takes neither past_state nor past_key_values")


class _DecodeStep:
    """One repeat = prefill ``seq_len`` tokens (untimed), then ``decode_tokens`` timed single-token steps."""

    def __init__(self, model, tokens, next_tokens, clock: Clock):
        model.eval()
        self.backbone = model.model
        self.keyword = _state_keyword(self.backbone)
        self.tokens, self.next_tokens, self.clock = tokens, next_tokens, clock
        self.state_bytes: int | None = None

    def __call__(self) -> list[float]:
        with torch.inference_mode():
            state = self.backbone(input_ids=self.tokens, use_cache=True).past_key_values
            if self.state_bytes is None:
                self.state_bytes = state_nbytes(state)
            marks = [self.clock.mark()]
            for position in range(self.next_tokens.shape[1]):
                token = self.next_tokens[:, position:position + 1]
                state = self.backbone(input_ids=token, use_cache=True, **{self.keyword: state}).past_key_values
                marks.append(self.clock.mark())
            return self.clock.durations_ms(marks)


def timed_samples(step: Callable[[], list[float]], settings: ProfileSettings) -> list[float]:
    """Warm up, then repeat ``step`` until the time budget (warm-up included) is spent.

    Repeats are counted in timed samples (training steps, prefills, decoded tokens): at least
    ``min_repeats``, and no new run of ``step`` once ``max_repeats`` are reached, so one decode run of
    ``decode_tokens`` steps may go past it."""
    start = time.perf_counter()
    for _ in range(settings.warmup):
        step()
    samples: list[float] = []
    while len(samples) < settings.min_repeats or (
            len(samples) < settings.max_repeats and time.perf_counter() - start < settings.time_budget_s):
        samples.extend(step())
    return samples


def run_point(model: torch.nn.Module, spec: ModelSpec, mode: str, batch: int, seq_len: int,
              settings: ProfileSettings, device: torch.device) -> dict[str, Any]:
    """Time one grid point; returns the timing fields of its CSV row (memory is measured by the caller)."""
    clock = Clock(device)
    vocab_size = int(getattr(model.config, "vocab_size", spec.vocab_size))
    tokens = _random_tokens(vocab_size, batch, seq_len, device, settings.seed)
    decode = None
    if mode == "train":
        step = _train_step(model, tokens, clock, settings.seed)
    elif mode == "prefill":
        step = _prefill_step(model, tokens, clock)
    elif mode == "decode":
        next_tokens = _random_tokens(vocab_size, batch, settings.decode_tokens, device, settings.seed + 1)
        step = decode = _DecodeStep(model, tokens, next_tokens, clock)
    else:
        raise ValueError(f"unknown profiling mode {mode!r}")
    samples = timed_samples(step, settings)
    median = float(np.median(samples))
    tokens_per_sample = batch if mode == "decode" else batch * seq_len
    tokens_per_s = tokens_per_sample / (median / 1e3)
    flops = flops_per_token(spec.family, model.config, mode, seq_len, settings.decode_tokens)
    return {
        "median_ms": median,
        "p10_ms": float(np.percentile(samples, 10)),
        "p90_ms": float(np.percentile(samples, 90)),
        "tokens_per_s": tokens_per_s,
        "repeats": len(samples),
        "state_mb": (decode.state_bytes / batch / 2**20) if decode is not None else float("nan"),
        "flops_per_token": flops,
        "achieved_gflops": flops * tokens_per_s / 1e9,
    }


def is_out_of_memory(error: BaseException) -> bool:
    """True for allocation failures: torch's OOM error, Python's MemoryError, or the CPU allocator's error."""
    if isinstance(error, (torch.OutOfMemoryError, MemoryError)):
        return True
    message = str(error)
    return isinstance(error, RuntimeError) and (
        "can't allocate memory" in message or "out of memory" in message.lower())
