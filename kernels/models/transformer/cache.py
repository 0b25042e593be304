"""A preallocated (static) KV cache for Transformer++ decoding.

The default decode state of :class:`~kernels.models.transformer.modeling_transformer.TransformerModel` is a
list of ``(key, value)`` tuples that every step grows with ``torch.cat``: each new token copies the whole
cache, so a decode step costs O(context) in memory traffic on top of attention itself. A
:class:`StaticLayerCache` instead holds one buffer per layer for ``max_length`` positions, allocated at the
first update (in the dtype and on the device of the first keys), and writes each step's keys and values in
place; attention reads the filled prefix as a view. Pass :func:`static_cache` as ``past_state`` to the first
(prefill) call; each call returns the same cache objects as its new state.
"""

from __future__ import annotations

import torch


class StaticLayerCache:
    """Keys and values of one attention layer, ``[batch, max_length, kv_heads, head_dim]``, filled up to
    ``length`` (after rotary, like the tuple cache)."""

    def __init__(self, max_length: int):
        if max_length < 1:
            raise ValueError(f"StaticLayerCache: max_length must be >= 1, got {max_length}")
        self.max_length = int(max_length)
        self.length = 0
        self.key: torch.Tensor | None = None
        self.value: torch.Tensor | None = None

    def update(self, key: torch.Tensor, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append ``key``/``value`` (``[batch, new, kv_heads, head_dim]``); returns views of every cached
        position, the new ones included."""
        new = key.shape[1]
        end = self.length + new
        if end > self.max_length:
            raise ValueError(f"StaticLayerCache: {end} positions exceed its max_length {self.max_length}; "
                             "allocate it for the prompt plus every token to decode")
        if self.key is None:
            shape = (key.shape[0], self.max_length, *key.shape[2:])
            self.key = key.new_empty(shape)
            self.value = value.new_empty((value.shape[0], self.max_length, *value.shape[2:]))
        self.key[:, self.length:end] = key
        self.value[:, self.length:end] = value
        self.length = end
        return self.key[:, :end], self.value[:, :end]


def static_cache(num_layers: int, max_length: int) -> list[StaticLayerCache]:
    """An empty static cache for a ``num_layers`` model that will hold ``max_length`` positions."""
    return [StaticLayerCache(max_length) for _ in range(num_layers)]


def cache_length(past) -> int:
    """Positions already in a layer's cache: a :class:`StaticLayerCache` or a ``(key, value)`` tuple."""
    if isinstance(past, StaticLayerCache):
        return past.length
    return past[0].shape[1]
