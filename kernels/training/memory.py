"""A memory plan made before a fine-tune starts: its estimated peak, and on CUDA whether it fits.

Full fine-tuning with AdamW holds, per parameter, the weight, its gradient and two optimizer
moments (all in the parameter dtype), and, per token of the largest micro-batch, what every decoder
layer saves for backward. The estimate::

    peak = params + grads + optimizer state
           + layers x per-token activations x tokens + layers x per-layer fixed part   (no checkpointing)
           + layers x block input x tokens + one layer's activations x tokens          (checkpointing)
           + working memory of backward (gradients of about half a layer's activations; none with
             checkpointing, whose peak is in the recomputed first block, see ``activation_bytes``)

``per-token activations`` and the ``fixed part`` (weight copies a layer saves, e.g. bf16 casts under
autocast) are *measured*, not counted by hand: ``probe_layer`` runs the model's last decoder block on
two short inputs on the CPU, under the job's autocast, and adds up the bytes of every tensor
autograd keeps (each storage once, parameters excluded); the difference between the two lengths is
the per-token part. How the block is run is the model's family's (kernels.families): the native families'
blocks are called alone on random hidden states (``probe_backbone_block``); any other backbone's last block is
called again on the inputs a hook captured while the whole classifier ran (``probe_captured_layer``), which
needs no rule of the library's (fla's blocks are probed on CUDA: they are triton kernels). The probe runs the pure-PyTorch kernels; fla's triton kernels on CUDA save
similar tensors, so on GPUs the estimate is an approximation (it leaves out the CUDA context, which
``torch.cuda.mem_get_info`` has already taken from the free memory it reports).

Tokens of the largest micro-batch: ``batch_size x longest example`` (bucketed batches put the longest
examples together), or at most ``max_tokens_per_step`` padded tokens when gradient accumulation by
token budget is on (``kernels.training.loop.split_batch``).

On CUDA, ``check_fits`` compares the estimate with the device's free memory and stops the job at once
with a ``MemoryPlanError`` naming the estimate, the device memory and the config keys that would make it
fit, instead of running out of memory hours later.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import weakref
from dataclasses import asdict, dataclass
from typing import Any, Callable

import torch

GIB = 2 ** 30
ADAMW_MOMENTS = 2            # exp_avg and exp_avg_sq, each the size of the parameter
PROBE_TOKENS = (64, 128)     # two lengths (at least one GLA chunk) whose difference gives the per-token bytes
WORKING_LAYER_FRACTION = 0.5  # working memory of backward, as a fraction of one layer's activations
# Suggested token budgets are rounded down to a multiple of this (and are never below max_length).
BUDGET_GRANULARITY = 256


class MemoryPlanError(RuntimeError):
    """The fine-tune's estimated peak memory does not fit the device."""


@dataclass(frozen=True)
class LayerActivations:
    """What one decoder block saves for backward: ``bytes_per_token * tokens + fixed_bytes``."""

    bytes_per_token: float        # activations saved per token (all of the block's inputs and intermediates)
    fixed_bytes: float            # independent of the tokens (e.g. bf16 copies of the weights under autocast)
    input_bytes_per_token: float  # the block's input hidden state: all a checkpointed block keeps


@dataclass(frozen=True)
class ModelMemory:
    """Parameter-side memory of full fine-tuning with AdamW."""

    params_bytes: int
    grads_bytes: int
    optimizer_bytes: int
    num_layers: int


# ------------------------------------------------------------------------------ measuring a layer

class _Saved:
    """What the pack hook hands autograd: alive exactly as long as the graph node that saved it."""

    __slots__ = ("tensor", "__weakref__")

    def __init__(self, tensor: torch.Tensor):
        self.tensor = tensor


def saved_tensor_bytes(run: Callable[[], Any], exclude: set[int] | None = None) -> int:
    """Bytes of every distinct storage that autograd holds for backward once ``run()`` has returned.

    Only tensors of graph nodes still reachable from the result count (a graph built and dropped inside
    ``run``, e.g. under a ``.detach()``, does not); storages in ``exclude`` (data pointers, e.g. the
    parameters') are left out; a storage saved by several operations (or as several views) counts once.
    """
    exclude = exclude or set()
    saved: list[weakref.ref] = []

    def pack(tensor: torch.Tensor) -> _Saved:
        holder = _Saved(tensor.detach())  # as autograd keeps outputs: no cycle through grad_fn
        saved.append(weakref.ref(holder))
        return holder

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda holder: holder.tensor):
        result = run()
    storages: dict[int, int] = {}
    for ref in saved:
        holder = ref()
        if holder is None or holder.tensor.device.type == "meta":
            continue
        storage = holder.tensor.untyped_storage()
        if storage.data_ptr() not in exclude:
            storages[storage.data_ptr()] = storage.nbytes()
    del result
    return sum(storages.values())


def _autocast(device_type: str, dtype: str):
    if dtype == "bfloat16":
        return torch.autocast(device_type=device_type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def can_plan(model: torch.nn.Module) -> bool:
    """Whether ``model`` is a classifier of a registered family (kernels.families) whose blocks can be probed."""
    try:
        return len(_family_of(model).decoder_layers(model)) > 0
    except (ValueError, AttributeError, TypeError):
        return False


def _family_of(model: torch.nn.Module):
    from kernels.families import family_of_model

    return family_of_model(model)


def _fit_two_lengths(measure: Callable[[int], int], tokens: tuple[int, int], device: torch.device) -> tuple[float, float]:
    """Saved bytes per token and the token-independent part, from ``measure`` at the two lengths ``tokens``.
    The global random streams are restored afterwards: a block with dropout (or any random op) run here
    would otherwise shift the training run that follows the plan."""
    rng_devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=rng_devices):
        short, long = (measure(n) for n in tokens)
    per_token = max(0.0, (long - short) / (tokens[1] - tokens[0]))
    return per_token, max(0.0, short - per_token * tokens[0])


def probe_layer(model: torch.nn.Module, dtype: str = "float32") -> LayerActivations:
    """Measure what one decoder block of ``model`` saves for backward, on the model's device (the CPU when a
    job plans: before the model moves), under the autocast of ``dtype`` (``float32`` or ``bfloat16``), without
    activation checkpointing; the model's family decides how (kernels.families: ``probe_layer``)."""
    return _family_of(model).probe_layer(model, dtype)


def probe_backbone_block(model: torch.nn.Module, dtype: str = "float32",
                         tokens: tuple[int, int] = PROBE_TOKENS) -> LayerActivations:
    """The native families' rule: the last decoder block of ``model`` (a classifier or backbone of
    kernels.models), run alone on random hidden states of two lengths."""
    backbone = getattr(model, "model", model)
    layers = backbone.layers
    block = layers[len(layers) - 1]
    extra_inputs = backbone.per_layer_inputs()
    hidden_size = backbone.config.hidden_size
    hidden_dtype = backbone.embeddings.weight.dtype
    parameters = {p.untyped_storage().data_ptr() for p in model.parameters()}
    device = backbone.embeddings.weight.device
    was_training, was_checkpointing = block.training, getattr(block, "gradient_checkpointing", False)
    block.train()
    block.gradient_checkpointing = False  # measure the block's own activations

    def measure(length: int) -> int:
        # its own generator: the probe must not move the training run's random stream
        generator = torch.Generator().manual_seed(length)
        hidden = torch.randn(1, length, hidden_size, generator=generator, dtype=hidden_dtype).to(device)
        hidden.requires_grad_(True)
        mask = torch.ones(1, length, dtype=torch.long, device=device)
        extra = () if extra_inputs is None else (extra_inputs[len(layers) - 1].detach(),)

        def run():
            with torch.enable_grad(), _autocast(device.type, dtype):
                return block(hidden, mask, None, False, *extra)

        # the block's input counts: in a stack it is the previous block's output, kept alive for this one
        return saved_tensor_bytes(run, exclude=parameters)

    try:
        per_token, fixed = _fit_two_lengths(measure, tokens, device)
    finally:
        block.train(was_training)
        block.gradient_checkpointing = was_checkpointing
    input_per_token = hidden_size * torch.empty((), dtype=hidden_dtype).element_size()
    return LayerActivations(per_token, fixed, float(input_per_token))


def probe_captured_layer(model: torch.nn.Module, layers, dtype: str = "float32",
                         tokens: tuple[int, int] = PROBE_TOKENS) -> LayerActivations:
    """Family-agnostic measurement of one decoder block (the generic families' rule): the whole classifier
    runs once per length without gradients, a hook captures the last block's inputs (hidden states and
    whatever else the backbone passes it: masks, position embeddings), and the block alone is run again on
    them with gradients, counting what autograd saves (as ``probe_backbone_block`` does). The hidden-state
    input is the block's first tensor argument of shape ``[1, length, hidden]``."""
    block = layers[len(layers) - 1]
    parameters = {p.untyped_storage().data_ptr() for p in model.parameters()}
    embeddings = model.get_input_embeddings()
    device = embeddings.weight.device
    vocab = embeddings.weight.shape[0]
    captured: dict[str, Any] = {}

    def capture(module, args, kwargs):
        captured["args"], captured["kwargs"] = args, kwargs

    was_training = model.training
    was_checkpointing = {m: m.gradient_checkpointing for m in block.modules() if hasattr(m, "gradient_checkpointing")}

    def measure(length: int) -> int:
        generator = torch.Generator().manual_seed(length)
        ids = torch.randint(1, vocab, (1, length), generator=generator).to(device)
        handle = block.register_forward_pre_hook(capture, with_kwargs=True)
        try:
            with torch.no_grad(), _autocast(device.type, dtype):
                model(input_ids=ids, attention_mask=torch.ones_like(ids))
        finally:
            handle.remove()
        args, kwargs = list(captured["args"]), dict(captured["kwargs"])
        hidden_at = _hidden_argument(args, kwargs, length)
        original = args[hidden_at] if isinstance(hidden_at, int) else kwargs[hidden_at]
        hidden = original.detach().clone().requires_grad_(True)
        if isinstance(hidden_at, int):
            args[hidden_at] = hidden
        else:
            kwargs[hidden_at] = hidden

        def run():
            with torch.enable_grad(), _autocast(device.type, dtype):
                return block(*args, **kwargs)

        return saved_tensor_bytes(run, exclude=parameters)

    model.train()
    for module in was_checkpointing:
        module.gradient_checkpointing = False  # measure the block's own activations
    try:
        per_token, fixed = _fit_two_lengths(measure, tokens, device)
    finally:
        model.train(was_training)
        for module, value in was_checkpointing.items():
            module.gradient_checkpointing = value
    hidden_size = int(getattr(model.config, "hidden_size", None) or embeddings.embedding_dim)
    input_per_token = hidden_size * torch.empty((), dtype=embeddings.weight.dtype).element_size()
    return LayerActivations(per_token, fixed, float(input_per_token))


def _hidden_argument(args: list, kwargs: dict, length: int) -> int | str:
    """Where a block's call passes the hidden states: the first ``[1, length, d]`` tensor argument."""
    def is_hidden(value) -> bool:
        return isinstance(value, torch.Tensor) and value.dim() == 3 and value.shape[:2] == (1, length) \
            and value.is_floating_point()

    for index, value in enumerate(args):
        if is_hidden(value):
            return index
    for name in ("hidden_states", "hidden", "x"):
        if is_hidden(kwargs.get(name)):
            return name
    raise ValueError("memory probe: the decoder block was called without a [batch, time, hidden] tensor")


def model_memory(model: torch.nn.Module) -> ModelMemory:
    """Weights, gradients and AdamW moments of the trainable parameters (each shared tensor once)."""
    seen, params, trainable = set(), 0, 0
    for param in model.parameters():
        if id(param) in seen:
            continue
        seen.add(id(param))
        size = param.numel() * param.element_size()
        params += size
        if param.requires_grad:
            trainable += size
    return ModelMemory(params, trainable, ADAMW_MOMENTS * trainable, len(_family_of(model).decoder_layers(model)))


# ------------------------------------------------------------------------------- the estimate

def micro_batch_tokens(batch_size: int, longest: int, max_tokens_per_step: int | None) -> int:
    """Padded tokens of the largest micro-batch: the full batch of the longest examples, or at most
    the token budget (a single example longer than the budget still runs on its own)."""
    full = batch_size * longest
    if max_tokens_per_step is None:
        return full
    return min(full, max(int(max_tokens_per_step), longest))


def activation_bytes(layer: LayerActivations, num_layers: int, tokens: int, checkpointing: bool) -> dict[str, float]:
    """Saved activations of the whole stack and the working memory of the backward pass."""
    one_layer = layer.bytes_per_token * tokens + layer.fixed_bytes
    if checkpointing:
        # every block keeps only its input; backward re-runs one block at a time, holding its activations
        saved = num_layers * layer.input_bytes_per_token * tokens + one_layer
    else:
        saved = num_layers * one_layer
    # the final norm keeps the last hidden state
    saved += layer.input_bytes_per_token * tokens
    # Without checkpointing, backward holds the gradients of the activations of the layer it is in, freeing
    # them as it goes: about half a layer at once (measured on CPU). With checkpointing the peak comes at the
    # end of backward, in the recomputed first block, whose saved tensors are freed as fast as its gradients
    # are made: the live tensors there were one block's activations and a few block inputs, nothing more
    # (measured on CPU with kernels.profiling.tensor_memory: a working share on top overstated the peak by 20-25%).
    working = 0.0 if checkpointing else WORKING_LAYER_FRACTION * float(one_layer)
    return {"activations_bytes": float(saved), "working_bytes": working}


def estimate_peak(memory: ModelMemory, layer: LayerActivations, tokens: int, checkpointing: bool) -> dict[str, float]:
    """The estimate's parts and its sum ``peak_bytes`` (see the module docstring)."""
    parts = {"params_bytes": float(memory.params_bytes), "grads_bytes": float(memory.grads_bytes),
             "optimizer_bytes": float(memory.optimizer_bytes)}
    parts.update(activation_bytes(layer, memory.num_layers, tokens, checkpointing))
    parts["peak_bytes"] = sum(parts.values())
    return parts


def plan_memory(model: torch.nn.Module, *, batch_size: int, longest: int, max_tokens_per_step: int | None,
                gradient_checkpointing: bool, dtype: str, device: str,
                layer: LayerActivations | None = None) -> dict[str, Any]:
    """The memory plan of a fine-tune of ``model`` (a JSON-able dict; ``peak_gib`` is the estimate).

    ``layer`` defaults to ``probe_layer(model, dtype)``; pass a measured one to plan other sizes."""
    layer = layer or probe_layer(model, dtype)
    memory = model_memory(model)
    tokens = micro_batch_tokens(batch_size, longest, max_tokens_per_step)
    parts = estimate_peak(memory, layer, tokens, gradient_checkpointing)
    return {
        "device": device, "dtype": dtype, "num_layers": memory.num_layers,
        "batch_size": batch_size, "longest_example": longest, "micro_batch_tokens": tokens,
        "max_tokens_per_step": max_tokens_per_step, "gradient_checkpointing": bool(gradient_checkpointing),
        "layer": asdict(layer), **parts, "peak_gib": parts["peak_bytes"] / GIB,
        "device_free_bytes": None, "device_total_bytes": None, "fits": None,
    }


# --------------------------------------------------------------------------------- does it fit

def largest_fitting_budget(plan: dict[str, Any], free_bytes: float, checkpointing: bool, max_length: int) -> int | None:
    """The largest ``max_tokens_per_step`` (a multiple of 256, at least ``max_length``) under which the
    plan fits ``free_bytes`` with the given checkpointing, or None when even ``max_length`` does not."""
    layer = LayerActivations(**plan["layer"])
    memory = ModelMemory(int(plan["params_bytes"]), int(plan["grads_bytes"]), int(plan["optimizer_bytes"]),
                         int(plan["num_layers"]))

    def fits(tokens: int) -> bool:
        return estimate_peak(memory, layer, tokens, checkpointing)["peak_bytes"] <= free_bytes

    if not fits(max_length):
        return None
    # the estimate is linear in the tokens: solve for the largest, then round down
    at_zero = estimate_peak(memory, layer, 0, checkpointing)["peak_bytes"]
    slope = estimate_peak(memory, layer, 1, checkpointing)["peak_bytes"] - at_zero
    limit = math.floor((free_bytes - at_zero) / slope) if slope > 0 else plan["micro_batch_tokens"]
    budget = max(max_length, (limit // BUDGET_GRANULARITY) * BUDGET_GRANULARITY)
    return int(budget if fits(budget) else max_length)


def fit_suggestions(plan: dict[str, Any], free_bytes: float, max_length: int) -> list[str]:
    """Config settings (``finetune.*``, or per model ``models.<name>.finetune.*``) under which it fits."""
    suggestions = []
    if not plan["gradient_checkpointing"]:
        layer = LayerActivations(**plan["layer"])
        memory = ModelMemory(int(plan["params_bytes"]), int(plan["grads_bytes"]), int(plan["optimizer_bytes"]),
                             int(plan["num_layers"]))
        with_checkpointing = estimate_peak(memory, layer, plan["micro_batch_tokens"], True)["peak_bytes"]
        if with_checkpointing <= free_bytes:
            suggestions.append(f"finetune.gradient_checkpointing: true (estimate {with_checkpointing / GIB:.1f} GiB)")
    for checkpointing in ([False, True] if not plan["gradient_checkpointing"] else [True]):
        budget = largest_fitting_budget(plan, free_bytes, checkpointing, max_length)
        if budget is not None and budget < plan["micro_batch_tokens"]:
            keys = f"finetune.max_tokens_per_step: {budget}"
            if checkpointing and not plan["gradient_checkpointing"]:
                keys += " with finetune.gradient_checkpointing: true"
            suggestions.append(keys)
    return suggestions


def check_fits(plan: dict[str, Any], free_bytes: float, total_bytes: float, max_length: int,
               where: str = "fine-tune") -> dict[str, Any]:
    """Record the device memory in ``plan``; raise ``MemoryPlanError`` when the estimate exceeds it."""
    plan = {**plan, "device_free_bytes": float(free_bytes), "device_total_bytes": float(total_bytes)}
    plan["fits"] = bool(plan["peak_bytes"] <= free_bytes)
    if plan["fits"]:
        return plan
    suggestions = fit_suggestions(plan, free_bytes, max_length)
    fixed = plan["params_bytes"] + plan["grads_bytes"] + plan["optimizer_bytes"]
    advice = ("; ".join(suggestions) if suggestions else
              f"none of finetune.gradient_checkpointing / finetune.max_tokens_per_step suffices: weights, "
              f"gradients and AdamW state alone take {fixed / GIB:.1f} GiB; use a device with more memory")
    raise MemoryPlanError(
        f"{where}: estimated peak memory {plan['peak_gib']:.1f} GiB does not fit the device's "
        f"{free_bytes / GIB:.1f} GiB free (of {total_bytes / GIB:.1f} GiB): weights {plan['params_bytes'] / GIB:.1f}, "
        f"gradients {plan['grads_bytes'] / GIB:.1f}, AdamW state {plan['optimizer_bytes'] / GIB:.1f}, activations "
        f"{(plan['activations_bytes'] + plan['working_bytes']) / GIB:.1f} GiB for micro-batches of "
        f"{plan['micro_batch_tokens']} tokens (gradient_checkpointing={plan['gradient_checkpointing']}, "
        f"max_tokens_per_step={plan['max_tokens_per_step']}). Settings that fit: {advice} "
        f"(per model: models.<name>.finetune.<key>)")


def check_device_memory(plan: dict[str, Any], device: torch.device, max_length: int) -> dict[str, Any]:
    """On CUDA: ``check_fits`` against ``torch.cuda.mem_get_info``; elsewhere the plan is returned as is."""
    if device.type != "cuda":
        return plan
    free, total = torch.cuda.mem_get_info(device)
    return check_fits(plan, free, total, max_length)


def log_plan(plan: dict[str, Any]) -> None:
    """One line on stderr (the job's log) with the whole plan as JSON."""
    print("memory plan: " + json.dumps(plan, sort_keys=True), file=sys.stderr, flush=True)


__all__ = ["MemoryPlanError", "LayerActivations", "ModelMemory", "saved_tensor_bytes", "can_plan", "probe_layer",
           "probe_backbone_block", "probe_captured_layer",
           "model_memory", "micro_batch_tokens", "activation_bytes", "estimate_peak", "plan_memory",
           "largest_fitting_budget", "fit_suggestions", "check_fits", "check_device_memory", "log_plan"]
