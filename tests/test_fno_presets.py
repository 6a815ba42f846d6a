"""FNO presets: parameter counts of the spec, the neuraloperator 2.0 architecture, gradients, overfit."""

import pytest
import torch

from neuralops.models import FNO
from neuralops.models.fno import FNOConfig


@pytest.mark.parametrize(
    "name, numel, real",
    [
        ("neuralop2", 602_977, 1_192_801),
        ("neuralop2_w28", 273_589, 537_013),
        ("li2020", 1_188_353, 2_368_001),
    ],
)
def test_preset_counts(name, numel, real):
    model = FNO(FNOConfig.preset(name))
    assert model.num_parameters(real=False) == numel and model.num_parameters() == real


def test_neuralop2_matches_neuraloperator_fno():
    neuralop = pytest.importorskip("neuralop")  # the `bench` extra; not installed in CI
    theirs = neuralop.models.FNO(
        n_modes=(16, 16), hidden_channels=32, in_channels=1, out_channels=1
    )
    ours = FNO(FNOConfig.preset("neuralop2"))
    assert sum(p.numel() for p in theirs.parameters()) == ours.num_parameters(real=False)
    x = torch.randn(2, 1, 40, 40)
    assert theirs(x).shape == ours(x).shape


def test_neuralop2_every_parameter_gets_a_gradient_and_overfits():
    torch.manual_seed(0)
    cfg = FNOConfig.preset("neuralop2", modes=(4, 5), width=12)
    model = FNO(cfg)
    x = torch.randn(4, 1, 16, 16)
    y = torch.tanh(torch.roll(x, 2, dims=-1))
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    for step in range(200):
        opt.zero_grad()
        loss = ((model(x) - y).flatten(1).norm(dim=1) / y.flatten(1).norm(dim=1)).mean()
        loss.backward()
        if step == 0:
            assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
        opt.step()
    assert loss.item() < 0.1


def test_bad_preset_and_style():
    with pytest.raises(ValueError, match="unknown FNO preset"):
        FNOConfig.preset("neuralop3")
    with pytest.raises(ValueError, match="style"):
        FNOConfig(style="x")
