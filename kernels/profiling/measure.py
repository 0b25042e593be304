"""Measuring one grid point (mode x batch size x sequence length) of one model, in the current process.

CPU memory (``peak_mem_mb``) is measured from tensors: the peak of the bytes of the tensors a point's step
creates, in one untimed run of it (:mod:`kernels.profiling.tensor_memory`; decode adds the state carried
between steps). The growth of the process' peak resident set size over its size just before the point is
kept beside it as ``rss_peak_mb`` (the caller runs each point in its own forked process, see
:mod:`kernels.profiling.worker`), since it depends on what the allocator kept from earlier work. CUDA
memory is the growth of ``torch.cuda.max_memory_allocated`` over the memory allocated before it.

What each mode runs:

- ``train``: one fine-tuning step exactly as :mod:`kernels.training.loop` runs it (float32 master weights,
  forward under autocast in the profile dtype, AdamW over the same parameter groups, gradient clipping),
  from the same initial weights at every point (restored afterwards).
- ``prefill``: a forward pass of the classifier under autocast.
- ``decode``: after an untimed prefill, one token at a time through the backbone and an LM head (the
  model's own, or one of the family's type and shape), through the family's own cache (kernels.families:
  Transformer++ decodes into a preallocated KV cache, generic families into their library's cache object).
  Its memory is the state carried between steps plus the peak growth during the decode steps over the
  memory right after the prefill, so the prefill's activations do not count.

The model itself is never cast: its weights (and rotary frequency buffers) stay float32.

``flops_per_token`` is the family's analytic formula (kernels.profiling.flops) where it has one; otherwise
(the generic families) the timed step is run once more under ``torch.utils.flop_counter.FlopCounterMode``
and its count divided by the tokens the step processes (``flops_source`` says which). The counter sees every
matmul, convolution and attention that runs through torch (the backward pass too, for train points), none
that a triton kernel runs (fla's token mixers on CUDA), so there it is a lower bound.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import importlib
import itertools
import time
from typing import Any, Callable, Iterator

import numpy as np
import torch

from kernels.families import family as family_named
from kernels.ops.backend import fla_calls_since, fla_kernel_calls
from kernels.profiling.flops import flops_per_token
from kernels.profiling.settings import ProfileSettings
from kernels.profiling.spec import ModelSpec
from kernels.training.loop import FinetuneHyperparams, autocast_context, optimizer_step, parameter_groups

NUM_LABELS = 2
PAD_TOKEN_ID = 0


def _load_pretrained(spec: ModelSpec) -> torch.nn.Module:
    # The family's loader reads safetensors only and never runs remote code.
    return family_named(spec.family).load_pretrained(spec.pretrained, num_labels=NUM_LABELS, revision=spec.revision,
                                                     config_overrides={"pad_token_id": PAD_TOKEN_ID})


def build_model(spec: ModelSpec) -> torch.nn.Module:
    """The classifier to profile: the family's model built from ``arch`` (seeded), or loaded from ``pretrained``."""
    if spec.pretrained:
        return _load_pretrained(spec)
    if spec.vocab_size is None:
        raise ValueError(f"model family {spec.family!r} built from scratch needs a vocab_size")
    return family_named(spec.family).build(spec.arch, vocab_size=spec.vocab_size, num_labels=NUM_LABELS,
                                           pad_token_id=PAD_TOKEN_ID, seed=spec.seed)


def resolve_builder(path: str) -> Callable[[ModelSpec], torch.nn.Module]:
    module, _, name = path.partition(":")
    if not name:
        raise ValueError(f"model builder must be 'module:function', got {path!r}")
    return getattr(importlib.import_module(module), name)


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


class CudaMemoryProbe:
    """Peak CUDA memory allocated since :meth:`start`, over what was allocated then."""

    def __init__(self, device: torch.device):
        self.device = device
        self.baseline = 0

    def start(self) -> None:
        torch.cuda.synchronize(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        self.baseline = torch.cuda.memory_allocated(self.device)

    def peak_growth_mb(self) -> float:
        torch.cuda.synchronize(self.device)
        return (torch.cuda.max_memory_allocated(self.device) - self.baseline) / 2**20


def train_recipe(settings: ProfileSettings) -> FinetuneHyperparams:
    """The fine-tuning hyper-parameters a train point uses: the workflow's lr, weight decay and clipping, and
    the profile dtype as the autocast dtype (weights stay float32, as in fine-tuning)."""
    return FinetuneHyperparams(lr=settings.lr, weight_decay=settings.weight_decay,
                               max_grad_norm=settings.max_grad_norm, dtype=settings.dtype)


def _train_step(model, tokens, clock: Clock, settings: ProfileSettings, device) -> Callable[[], list[float]]:
    # The fine-tuning recipe itself (kernels.training.loop): AdamW over the same parameter groups on float32
    # master weights, forward under autocast, loss check, backward, gradient clipping, optimizer step.
    model.train()
    hp = train_recipe(settings)
    optimizer = torch.optim.AdamW(parameter_groups(model, hp.weight_decay), lr=hp.lr)
    labels = torch.randint(0, NUM_LABELS, (tokens.shape[0],),
                           generator=torch.Generator().manual_seed(settings.seed)).to(tokens.device)
    batch = {"input_ids": tokens, "attention_mask": torch.ones_like(tokens), "labels": labels}
    steps = itertools.count(1)

    def step() -> list[float]:
        start = clock.mark()
        optimizer_step(model, optimizer, batch, hp, device, next(steps))
        return clock.durations_ms([start, clock.mark()])

    return step


def _prefill_step(model, tokens, clock: Clock, settings: ProfileSettings, device) -> Callable[[], list[float]]:
    model.eval()

    def step() -> list[float]:
        with torch.inference_mode(), autocast_context(device, settings.dtype):
            start = clock.mark()
            model(input_ids=tokens)
            return clock.durations_ms([start, clock.mark()])

    return step


def decode_head(spec: ModelSpec, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The language-model head a decoded token goes through: the model's own ``lm_head`` where it has one;
    for a classifier, one of the family's type and shape (hidden -> vocabulary; a BitLinear for MatMul-Free,
    as upstream), seeded. Only its cost matters: decoding picks the given next tokens, not its argmax."""
    head = getattr(model, "lm_head", None)
    if head is not None:
        return head
    torch.manual_seed(spec.seed)
    return family_named(spec.family).decode_head(model).to(device).eval()


def initial_decode_state(spec: ModelSpec, backbone: torch.nn.Module, max_length: int) -> Any:
    """The state the family's decode starts from: Transformer++ a preallocated KV cache (written in place, see
    kernels.models.transformer.cache); the others None (recurrent: a state of fixed size; generic families:
    the library makes its own cache)."""
    return family_named(spec.family).initial_decode_state(backbone, max_length)


class _DecodeStep:
    """One repeat = prefill ``seq_len`` tokens (untimed), then ``decode_tokens`` timed single-token steps,
    each through the backbone and the LM head. Memory: the state carried between steps plus the peak growth
    during the decode steps over the memory right after the prefill (the prefill's own activations are not
    decode memory)."""

    def __init__(self, model, spec: ModelSpec, tokens, next_tokens, clock: Clock, settings: ProfileSettings,
                 device, probe=None):
        model.eval()
        self.family = family_named(spec.family)
        self.backbone = self.family.backbone(model)
        self.head = decode_head(spec, model, device)
        self.spec, self.settings, self.device = spec, settings, device
        self.tokens, self.next_tokens, self.clock, self.probe = tokens, next_tokens, clock, probe
        self.state_bytes: int | None = None
        self.growth_mb = 0.0
        self.counter = None  # a FlopCounterMode while the FLOPs of one run are counted

    def __call__(self) -> list[float]:
        steps = self.next_tokens.shape[1]
        with torch.inference_mode(), autocast_context(self.device, self.settings.dtype):
            state = initial_decode_state(self.spec, self.backbone, self.tokens.shape[1] + steps)
            hidden, state = self.family.decode_forward(self.backbone, self.tokens, state, 0)
            self.head(hidden[:, -1:])
            del hidden
            if self.probe is not None:
                self.probe.start()
            marks = [self.clock.mark()]
            with self.counter or contextlib.nullcontext():  # FLOPs of the decode steps only, when counted
                for position in range(steps):
                    token = self.next_tokens[:, position:position + 1]
                    hidden, state = self.family.decode_forward(self.backbone, token, state,
                                                               self.tokens.shape[1] + position)
                    self.head(hidden[:, -1:])
                    marks.append(self.clock.mark())
            durations = self.clock.durations_ms(marks)
            if self.probe is not None:
                self.growth_mb = max(self.growth_mb, self.probe.peak_growth_mb())
            self.state_bytes = self.family.state_nbytes(state)
            return durations

    def peak_mem_mb(self) -> float:
        return (self.state_bytes or 0) / 2**20 + self.growth_mb


def decode_step_tensor_growth_mb(decode: _DecodeStep) -> float:
    """The peak MiB of the tensors one decode step creates (CPU; kernels.profiling.tensor_memory), in an untimed
    prefill and first decode step of ``decode`` with a tensor probe. One step tells it: every step runs the
    same operations on a state of the same size (a recurrent state, or the KV cache preallocated for every
    decoded token; the state itself is added from the timed runs, :func:`tensor_memory_mb`). ``decode`` itself
    (its probe, what it measured) is left as it was."""
    from kernels.profiling.tensor_memory import TensorMemoryProbe

    probe = TensorMemoryProbe()
    first = copy.copy(decode)
    first.next_tokens, first.probe, first.growth_mb = decode.next_tokens[:, :1], probe, 0.0
    try:
        first()
        return first.growth_mb
    finally:
        if probe.meter is not None:  # the run failed between start() and peak_growth_mb()
            probe.meter.__exit__(None, None, None)


def tensor_memory_mb(step: Callable[[], list[float]], decode: _DecodeStep | None) -> Callable[[], float]:
    """A point's memory measured from tensors (CPU), from one untimed run of its step now: train and prefill,
    the peak of the tensors the step creates (activations, gradients, optimizer temporaries) over what existed
    before; decode, the state carried between steps (known once the timed runs are done) plus
    :func:`decode_step_tensor_growth_mb`. Returns a function that gives it after the timed runs."""
    from kernels.profiling.tensor_memory import peak_tensor_growth_mb

    if decode is None:
        peak = peak_tensor_growth_mb(step)
        return lambda: peak
    growth = decode_step_tensor_growth_mb(decode)
    return lambda: (decode.state_bytes or 0) / 2**20 + growth


@contextlib.contextmanager
def initial_weights_restored(model: torch.nn.Module) -> Iterator[None]:
    """Train points update the weights; every point (and the prefill and decode points after them) must
    start from the same initial weights, so a copy is put back afterwards. The copy stays on the model's
    device: a round trip through the host would move the whole state (~5 GB at 1.3B) twice per point."""
    tensors = dict(itertools.chain(model.named_parameters(), model.named_buffers()))
    saved = {name: tensor.detach().clone() for name, tensor in tensors.items()}
    try:
        yield
    finally:
        with torch.no_grad():
            for name, tensor in tensors.items():
                tensor.copy_(saved[name])
        del saved
        model.zero_grad(set_to_none=True)


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
              settings: ProfileSettings, device: torch.device, probe=None) -> dict[str, Any]:
    """Time one grid point; returns the fields of its CSV row. With a memory ``probe`` (``start()``,
    ``peak_growth_mb()``), also ``peak_mem_mb``: the peak growth over the memory before the point (train,
    prefill), or the decode memory of :class:`_DecodeStep`."""
    if mode not in ("train", "prefill", "decode"):
        raise ValueError(f"unknown profiling mode {mode!r}")
    calls_before = fla_kernel_calls()
    with subnormals_flushed(settings.flush_denormal):
        if mode == "train":
            with initial_weights_restored(model):
                row = _run_point(model, spec, mode, batch, seq_len, settings, device, probe)
        else:
            row = _run_point(model, spec, mode, batch, seq_len, settings, device, probe)
    # evidence that fla's kernels ran for this point (the row's `kernels` only says they were chosen)
    row["fla_kernel_calls"] = sum(fla_calls_since(calls_before).values())
    return row


@contextlib.contextmanager
def subnormals_flushed(enabled: bool) -> Iterator[None]:
    """CPU float mode with subnormals flushed to zero (see ProfileSettings.flush_denormal), then back to
    torch's default (not flushed)."""
    if not enabled:
        yield
        return
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def _run_point(model, spec, mode, batch, seq_len, settings, device, probe) -> dict[str, Any]:
    clock = Clock(device)
    vocab_size = int(getattr(model.config, "vocab_size", spec.vocab_size))
    tokens = _random_tokens(vocab_size, batch, seq_len, device, settings.seed)
    decode = None
    if mode == "decode":
        next_tokens = _random_tokens(vocab_size, batch, settings.decode_tokens, device, settings.seed + 1)
        step = decode = _DecodeStep(model, spec, tokens, next_tokens, clock, settings, device, probe)
    else:
        if probe is not None:
            probe.start()
        build = _train_step if mode == "train" else _prefill_step
        step = build(model, tokens, clock, settings, device)
    tensor_mb = None
    if probe is not None and device.type == "cpu":
        # CPU memory from tensors, not the resident set (kernels.profiling.tensor_memory); the untimed run
        # stands in for the first warm-up run.
        tensor_mb = tensor_memory_mb(step, decode)
        settings = dataclasses.replace(settings, warmup=max(settings.warmup - 1, 0))
    samples = timed_samples(step, settings)
    median = float(np.median(samples))
    tokens_per_sample = batch if mode == "decode" else batch * seq_len
    tokens_per_s = tokens_per_sample / (median / 1e3)
    # the memory of the timed samples, read before the step runs once more to count its FLOPs
    peak_mem_mb = None if probe is None else (decode.peak_mem_mb() if decode is not None else probe.peak_growth_mb())
    flops = flops_per_token(spec.family, model.config, mode, seq_len, settings.decode_tokens)
    flops_source = "formula"
    if flops is None:  # no formula for this family: count what the step runs
        flops, flops_source = counted_flops_per_token(step, decode, mode, batch, seq_len, settings), "FlopCounterMode"
    row = {
        "median_ms": median,
        "p10_ms": float(np.percentile(samples, 10)),
        "p90_ms": float(np.percentile(samples, 90)),
        "tokens_per_s": tokens_per_s,
        "repeats": len(samples),
        "state_mb": (decode.state_bytes / batch / 2**20) if decode is not None else float("nan"),
        "flops_per_token": flops,
        "achieved_gflops": flops * tokens_per_s / 1e9,
        "flops_source": flops_source,
        "implementation": family_named(spec.family).implementation_label(model, device),
    }
    if probe is not None:
        row["peak_mem_mb"], row["peak_mem_source"] = peak_mem_mb, "cuda_allocator"
        if tensor_mb is not None:  # CPU: the resident-set growth stays beside it, labelled
            row["rss_peak_mb"], row["peak_mem_mb"], row["peak_mem_source"] = row["peak_mem_mb"], tensor_mb(), "tensors"
    return row


def counted_flops_per_token(step: Callable[[], list[float]], decode: "_DecodeStep | None", mode: str, batch: int,
                            seq_len: int, settings: ProfileSettings) -> float:
    """FLOPs per processed token of one more run of ``step``, counted by torch's FlopCounterMode (train: the
    forward and backward of one step; prefill: one forward; decode: the ``decode_tokens`` steps, not the
    prefill before them)."""
    from kernels.profiling.counting import flop_counter

    counter = flop_counter()
    if decode is not None:
        decode.counter, probe, decode.probe = counter, decode.probe, None
        try:
            step()
        finally:
            decode.counter, decode.probe = None, probe
        return counter.get_total_flops() / (batch * settings.decode_tokens)
    with counter:
        step()
    return counter.get_total_flops() / (batch * seq_len)


def is_out_of_memory(error: BaseException) -> bool:
    """True for allocation failures: torch's OOM error, Python's MemoryError, or the CPU allocator's error."""
    if isinstance(error, (torch.OutOfMemoryError, MemoryError)):
        return True
    message = str(error)
    return isinstance(error, RuntimeError) and (
        "can't allocate memory" in message or "out of memory" in message.lower())
