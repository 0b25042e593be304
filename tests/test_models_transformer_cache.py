"""The preallocated (static) KV cache of Transformer++: same logits as the full forward and the tuple cache,
written in place instead of copied per token."""

from __future__ import annotations

import pytest
import torch

from kernels.models.transformer import TransformerConfig, TransformerForCausalLM
from kernels.models.transformer.cache import StaticLayerCache, static_cache

torch.set_num_threads(1)


def tiny_lm(**overrides) -> TransformerForCausalLM:
    torch.manual_seed(0)
    config = TransformerConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_heads=4, num_kv_heads=2,
                               **overrides)
    return TransformerForCausalLM(config).eval()


@pytest.mark.parametrize("prompt", [1, 5])
def test_static_cache_decode_equals_full_forward_and_tuple_cache(prompt):
    model = tiny_lm()
    ids = torch.randint(0, 64, (2, 9), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        reference = model(ids).logits
        cache = static_cache(model.config.num_hidden_layers, ids.shape[1])
        out = model(ids[:, :prompt], past_state=cache, use_cache=True)
        steps, state = [out.logits], out.past_key_values
        tuple_state = model(ids[:, :prompt], use_cache=True).past_key_values
        buffers = [layer.key.data_ptr() for layer in cache]
        for t in range(prompt, ids.shape[1]):
            out = model(ids[:, t:t + 1], past_state=state, use_cache=True)
            steps.append(out.logits)
            state = out.past_key_values
            tuple_out = model(ids[:, t:t + 1], past_state=tuple_state, use_cache=True)
            tuple_state = tuple_out.past_key_values
            torch.testing.assert_close(out.logits, tuple_out.logits)
    torch.testing.assert_close(torch.cat(steps, dim=1), reference, rtol=1e-4, atol=1e-4)
    # the same objects and buffers throughout: filled in place, never reallocated or copied
    assert all(a is b for a, b in zip(state, cache))
    assert [layer.key.data_ptr() for layer in cache] == buffers
    assert [layer.length for layer in cache] == [ids.shape[1]] * 2


def test_static_cache_refuses_to_overflow():
    layer = StaticLayerCache(3)
    keys = torch.zeros(1, 2, 1, 4)
    layer.update(keys, keys)
    with pytest.raises(ValueError, match="4 positions exceed its max_length 3"):
        layer.update(keys, keys)
