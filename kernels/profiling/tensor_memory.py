"""Memory of a step measured from the tensors it creates (CPU), not from the process' resident set.

On CPU the growth of the resident set over a step is partly allocator history: glibc keeps freed pages or
returns large blocks to the system depending on its thresholds and on what ran before in the process, so
one model's decode "memory" read 9.0, ..., 7.3 and then 0.018 MiB at successive lengths while its recurrent
state was 0.002 MiB at every one. The bytes held by live tensors do not depend on that.
:class:`TensorMemoryMeter` is a torch dispatch mode: every storage an operation returns that is not one of
its inputs' storages (so neither a view nor an in-place result) and that it has not seen before is added
with its size, subtracted when the storage is freed, and the peak of the running sum is kept. Tensors
that existed before (weights, a KV cache written in place) count only through what is created from them.

What it cannot see: scratch memory an operator allocates and frees inside itself (BLAS packing buffers,
fused kernels' workspaces), which no tensor holds. That is why the resident-set growth is kept beside it
in efficiency.csv (``rss_peak_mb``), labelled as such.
"""

from __future__ import annotations

import weakref
from typing import Any, Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.weak import WeakIdKeyDictionary

MIB = 2**20


def _storages(values: Any) -> list[torch.UntypedStorage]:
    """The storages of the tensors in an operator's arguments or results (tensors, possibly in lists, tuples
    or dicts). A plain walk: torch's pytree flattening costs several times the operators of a small model."""
    found, pending = [], [values]
    while pending:
        value = pending.pop()
        if isinstance(value, torch.Tensor):
            try:
                found.append(value.untyped_storage())
            except (NotImplementedError, RuntimeError):  # sparse and other storage-less layouts
                continue
        elif isinstance(value, (list, tuple)):
            pending.extend(value)
        elif isinstance(value, dict):
            pending.extend(value.values())
    return found


class TensorMemoryMeter(TorchDispatchMode):
    """Bytes of the tensor storages created while active (see the module docstring): ``live_bytes`` now and
    ``peak_bytes``, the most that were alive at once."""

    def __init__(self):
        super().__init__()
        self.live_bytes = 0
        self.peak_bytes = 0
        self._seen: WeakIdKeyDictionary = WeakIdKeyDictionary()

    def _freed(self, nbytes: int) -> None:
        self.live_bytes -= nbytes

    def _created(self, storage: torch.UntypedStorage) -> None:
        nbytes = int(storage.nbytes())
        self._seen[storage] = nbytes
        # Storages keep their Python object while any tensor uses them, so this runs when the memory is freed.
        weakref.finalize(storage, self._freed, nbytes)
        self.live_bytes += nbytes
        self.peak_bytes = max(self.peak_bytes, self.live_bytes)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        unseen = [storage for storage in _storages(result) if storage not in self._seen]
        if unseen:
            inputs = {id(storage) for storage in _storages((args, kwargs))}
            for storage in unseen:
                if id(storage) not in inputs:
                    self._created(storage)
        return result


def peak_tensor_growth_mb(run: Callable[[], Any]) -> float:
    """Peak MiB of tensors created and alive at once during one call of ``run``."""
    meter = TensorMemoryMeter()
    with meter:
        run()
    return meter.peak_bytes / MIB


class TensorMemoryProbe:
    """The memory-probe protocol of kernels.profiling.measure (``start()``, ``peak_growth_mb()``) on tensors:
    the meter is active from ``start`` to ``peak_growth_mb``. Entering it costs a Python call per operation,
    so it is only used in an untimed run."""

    def __init__(self):
        self.meter: TensorMemoryMeter | None = None
        self.peak_mb = 0.0

    def start(self) -> None:
        self.meter = TensorMemoryMeter()
        self.meter.__enter__()

    def peak_growth_mb(self) -> float:
        if self.meter is not None:
            self.meter.__exit__(None, None, None)
            self.peak_mb = max(self.peak_mb, self.meter.peak_bytes / MIB)
            self.meter = None
        return self.peak_mb
