"""Train points restore the initial weights on the model's own device (kernels.profiling.measure)."""

from __future__ import annotations

import torch

from kernels.profiling.measure import initial_weights_restored


def _model(device):
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3)).to(device)
    return model


def test_weights_and_buffers_come_back_in_place():
    model = _model("cpu")
    weight = model[0].weight
    before = {name: t.clone() for name, t in model.state_dict().items()}
    with initial_weights_restored(model):
        with torch.no_grad():
            model[0].weight.add_(1.0)
        model.train()
        model(torch.randn(5, 4)).sum().backward()  # updates BatchNorm's running stats, leaves grads
    assert model[0].weight is weight  # the same parameter objects (an optimizer built earlier stays valid)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, before[name]), name
    assert all(p.grad is None for p in model.parameters())


def test_the_copy_stays_on_the_model_s_device():
    """No round trip through the host: on the meta device (which has no data to copy to the host) the
    restore works; a host copy (``.to("cpu")``) cannot be made there."""
    model = _model("meta")
    with initial_weights_restored(model):
        pass
    assert all(p.device.type == "meta" for p in model.parameters())
