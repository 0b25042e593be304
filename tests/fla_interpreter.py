"""Run fla's triton kernels on CPU tensors under triton's interpreter (``TRITON_INTERPRET=1``), for tests.

Import this in a fresh interpreter started with ``TRITON_INTERPRET=1`` and call :func:`install` before the
first kernel runs. Everything here works around limits of the *interpreter* (triton 3.6 to 3.9), not of
fla or of the GPU path; none of it is needed, or used, on CUDA:

* **Autotuning**: fla times its candidate configurations with ``triton.testing.do_bench``, which needs a
  GPU driver. Every kernel keeps one configuration (the product's own limit,
  :func:`kernels.ops.autotune.limit_autotune`) and a "timing" that only runs the kernel once.
* **Loop indices**: the interpreter runs a kernel as Python, so a builtin ``range`` in fla's kernels
  yields Python ints, which lack the tensor methods fla calls on them (``i_t.to(tl.int64)``: "'int'
  object has no attribute 'to'"; triton 3.6: "only 0-dimensional arrays can be converted"). Inside
  fla's jitted kernels (and only there: host code keeps the builtin) ``range`` yields interpreter tensors.
* **Masks**: ``mask & (scalar comparison)`` comes out of the interpreter as an int32/int64 array, and its
  ``load`` / ``store`` reject non-bool masks ("mask has unsupported dtype"); they get the same mask as bool.
* **bfloat16**: the interpreter keeps bf16 values as their raw uint16 bit patterns, so arithmetic and
  ``tl.dot`` on bf16 operands compute on integers (garbage). Such operands are widened to fp32 (exact)
  and results that are bf16 rounded back to bf16 (round to nearest even), as the GPU's bf16 arithmetic
  rounds; triton 3.6 also lacks the interpreter's bf16 constant builder, added here.

fp32 ``tl.dot`` under the interpreter is numpy's fp32 matmul: triton's default TF32 (which fla's fp32
kernels use on CUDA) is not emulated, so fp32 comparisons here can be as tight as fp32 allows.
"""

from __future__ import annotations

import builtins
import sys

import numpy as np

_installed = False
_kernel_names: set[tuple[str, str]] = set()


def install() -> None:
    """Apply every workaround (idempotent); then import fla's ops and mark its kernels for ``range``."""
    global _installed
    if _installed:
        return
    import triton.language as tl
    import triton.runtime.autotuner as autotuner
    import triton.runtime.interpreter as interpreter

    from kernels.ops.autotune import limit_autotune

    limit_autotune(1)
    autotuner.Autotuner.do_bench = property(_run_once)
    _patch_masks(interpreter, tl)
    _patch_bf16(interpreter, tl)
    import fla.ops.gla  # noqa: F401 - the kernels whose modules get the interpreter's range
    import fla.ops.hgrn  # noqa: F401

    _patch_ranges(interpreter, tl)
    _installed = True


def _run_once(self):
    """Stands in for ``Autotuner.do_bench``: run the configuration once, report a constant time."""
    def bench(kernel_call, quantiles=None, **_):
        kernel_call()
        return [1.0, 1.0, 1.0] if quantiles else 1.0
    return bench


# ------------------------------------------------------------------------------------------- range

def _patch_ranges(interpreter, tl) -> None:
    def ints(args):
        values = []
        for arg in args:
            arg = getattr(arg, "value", arg)  # tl.constexpr
            if isinstance(arg, tl.tensor):
                arg = arg.handle.data.item()
            values.append(int(arg))
        return values

    def kernel_range(*args):
        # the interpreter recompiles each kernel from its source, so kernels are known by file and name
        code = sys._getframe(1).f_code
        if (code.co_filename, code.co_name) not in _kernel_names:
            return builtins.range(*args)
        return (interpreter._implicit_cvt(i) for i in builtins.range(*ints(args)))

    for name, module in list(sys.modules.items()):
        if not name.startswith("fla.") or module is None:
            continue
        found = False
        for obj in list(vars(module).values()):
            while hasattr(obj, "fn") and not hasattr(obj, "__code__"):  # Autotuner / Heuristics / JITFunction
                obj = obj.fn
            code = getattr(obj, "__code__", None)
            if code is not None and getattr(obj, "__module__", None) == name:
                _kernel_names.add((code.co_filename, code.co_name))
                found = True
        if found:
            module.__dict__["range"] = kernel_range


# ------------------------------------------------------------------------------------------- masks

def _patch_masks(interpreter, tl) -> None:
    builder = interpreter.InterpreterBuilder
    load, store = builder.create_masked_load, builder.create_masked_store

    def as_bool(mask):
        if mask.data.dtype == np.bool_:
            return mask
        return interpreter.TensorHandle(mask.data.astype(np.bool_), tl.int1)

    def create_masked_load(self, ptrs, mask, other, *args):
        return load(self, ptrs, as_bool(mask), other, *args)

    def create_masked_store(self, ptrs, value, mask, *args):
        return store(self, ptrs, value, as_bool(mask), *args)

    builder.create_masked_load, builder.create_masked_store = create_masked_load, create_masked_store


# ---------------------------------------------------------------------------------------- bfloat16

def _patch_bf16(interpreter, tl) -> None:
    builder = interpreter.InterpreterBuilder
    Handle, BF16, FP32 = interpreter.TensorHandle, tl.bfloat16, tl.float32

    def is_bf16(handle):
        return isinstance(handle, Handle) and handle.dtype == BF16

    def widen(handle):
        if not is_bf16(handle):
            return handle
        return Handle((np.asarray(handle.data).astype(np.uint32) << 16).view(np.float32), FP32)

    def narrow(data):
        bits = np.ascontiguousarray(data, dtype=np.float32).view(np.uint32)
        rounded = (bits + (((bits >> 16) & 1) + 0x7FFF)) >> 16
        rounded = np.where(np.isnan(data), (bits >> 16) | 0x40, rounded)  # NaN stays NaN
        return Handle(rounded.astype(np.uint16), BF16)

    def result(handle, bf16_out):
        if bf16_out and isinstance(handle, Handle):
            if handle.data.dtype == np.float32:
                return narrow(handle.data)
            if handle.data.dtype == np.bool_:  # a comparison: keep the label the interpreter would give
                return Handle(handle.data, BF16)
        return handle

    binary, ternary, unary = builder.binary_op, builder.ternary_op, builder.unary_op
    fma, dot = builder.create_fma, builder.create_dot

    def binary_op(self, lhs, rhs, op):
        if not (is_bf16(lhs) or is_bf16(rhs)):
            return binary(self, lhs, rhs, op)
        return result(binary(self, widen(lhs), widen(rhs), op), is_bf16(lhs))  # result type: lhs's

    def ternary_op(self, lhs, rhs, other, op):
        if not any(map(is_bf16, (lhs, rhs, other))):
            return ternary(self, lhs, rhs, other, op)
        return result(ternary(self, widen(lhs), widen(rhs), widen(other), op), is_bf16(other))

    def unary_op(self, arg, op):
        if not is_bf16(arg):
            return unary(self, arg, op)
        return result(unary(self, widen(arg), op), True)

    def create_fma(self, x, y, z):
        if not any(map(is_bf16, (x, y, z))):
            return fma(self, x, y, z)
        return result(fma(self, widen(x), widen(y), widen(z)), is_bf16(z))

    def create_dot(self, a, b, d, *args):
        if not any(map(is_bf16, (a, b, d))):
            return dot(self, a, b, d, *args)
        return result(dot(self, widen(a), widen(b), widen(d), *args), is_bf16(d))  # accumulates in fp32

    builder.binary_op, builder.ternary_op, builder.unary_op = binary_op, ternary_op, unary_op
    builder.create_fma, builder.create_dot = create_fma, create_dot
    if not hasattr(builder, "get_bf16"):  # triton 3.6
        builder.get_bf16 = lambda self, value: narrow(np.array([value], dtype=np.float32))


def force_fla_dispatch() -> None:
    """Let kernels.ops hand CPU tensors to fla (as it does CUDA tensors), unless the torch ops are forced
    (``kernels.ops.backend.set_force_torch(True)``), so that one model can run either path."""
    import importlib

    from kernels.ops import backend

    for name in ("kernels.ops.gla.chunk", "kernels.ops.gla.fused_recurrent",
                 "kernels.ops.hgrn.chunk", "kernels.ops.hgrn.fused_recurrent"):
        importlib.import_module(name).use_fla = lambda *tensors: not backend.torch_forced()
