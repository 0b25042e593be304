"""exp via exp2: the decays of the chunked kernels."""

from __future__ import annotations

import torch

from kernels.ops.fastmath import exp_base2


def test_fp32_relative_error_is_tiny_over_the_gate_range():
    x = torch.linspace(-88.0, 0.0, 200_001)
    exact = x.double().exp()
    relative = ((exp_base2(x).double() - exact) / exact).abs().max().item()
    assert relative < 1e-5, relative  # grows like |x| * 6e-8: ~5e-6 at x = -88


def test_fp64_is_torch_exp_and_out_may_alias_the_input():
    x = -10 * torch.rand(1000, dtype=torch.float64)
    assert torch.equal(exp_base2(x), x.exp())
    y = -10 * torch.rand(1000)
    expected = exp_base2(y)
    assert exp_base2(y, out=y) is y
    assert torch.equal(y, expected)


def test_gradient_without_out():
    x = (-5 * torch.rand(50, dtype=torch.float64)).float().requires_grad_()
    exp_base2(x).sum().backward()
    torch.testing.assert_close(x.grad, x.detach().exp(), rtol=1e-5, atol=0)


def test_half_types_are_computed_in_fp32():
    x = torch.linspace(-20.0, 0.0, 1001)
    for dtype in (torch.bfloat16, torch.float16):
        low = x.to(dtype)
        result = exp_base2(low)
        assert result.dtype == dtype
        torch.testing.assert_close(result, low.float().exp().to(dtype), rtol=0, atol=0)
