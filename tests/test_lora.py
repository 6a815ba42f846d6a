"""LoRA adapters: identity at initialisation, exact merge, adapters saved apart from the base."""

import pytest
import torch
from torch import nn

from neuralops.models import FNO, FNOConfig, MgNO, MgNOConfig, load_pretrained
from neuralops.models.lora import (
    apply_lora,
    load_adapter,
    lora_parameters,
    merge_lora,
    save_adapter,
    trainable_parameters,
)


def _mgno(seed=0):
    torch.manual_seed(seed)
    return MgNO(MgNOConfig(in_channels=1, width=8, n_layers=2, levels=3)).double()


def _fno(seed=0):
    torch.manual_seed(seed)
    cfg = FNOConfig(modes=(4, 4), width=8, lifting_channels=8, projection_channels=8, n_layers=2)
    return FNO(cfg).double()


def _train(model, x, steps=15):
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    y = torch.tanh(x.roll(1, -1))
    for _ in range(steps):
        opt.zero_grad()
        ((model(x) - y) ** 2).mean().backward()
        opt.step()


@pytest.mark.parametrize("make", [_mgno, _fno])
def test_identity_at_init_then_exact_merge(make, tmp_path):
    model = make()
    x = torch.randn(2, 1, 16, 16, dtype=torch.float64)
    before = model(x)
    names = apply_lora(model, rank=4, alpha=8)
    assert names and torch.equal(model(x), before)  # B = 0: bitwise the base model
    adapters = lora_parameters(model)
    assert trainable_parameters(model) == sum(t.numel() for t in adapters.values())
    _train(model, x)
    adapted = model(x)
    assert not torch.allclose(adapted, before)
    merged = merge_lora(model)
    assert not any("lora" in k for k in merged.state_dict())
    torch.testing.assert_close(merged(x), adapted, rtol=1e-10, atol=1e-10)
    merged.save_pretrained(tmp_path / "merged")  # a plain model again
    torch.testing.assert_close(
        load_pretrained(tmp_path / "merged")(x), adapted, rtol=1e-10, atol=1e-10
    )


def test_conv_delta_is_the_low_rank_product():
    torch.manual_seed(1)
    conv = nn.Conv2d(3, 5, 3, padding=1, bias=True).double()
    model = nn.Sequential(conv)
    apply_lora(model, rank=2, alpha=4)
    nn.init.normal_(model[0].lora_B.weight)  # as if trained
    x = torch.randn(2, 3, 7, 7, dtype=torch.float64)
    y = model(x)
    torch.testing.assert_close(merge_lora(model)(x), y, rtol=1e-12, atol=1e-12)


def test_adapters_saved_apart_and_checked_against_the_base(tmp_path):
    model = _mgno()
    x = torch.randn(1, 1, 16, 16, dtype=torch.float64)
    apply_lora(model, rank=2, alpha=4, exclude=["lift*"], trainable=["proj*"])
    assert all(
        p.requires_grad == ("lora_" in n or n.startswith("proj"))
        for n, p in model.named_parameters()
    )
    _train(model, x, steps=5)
    frozen_proj = {k: v.clone() for k, v in model.state_dict().items() if k.startswith("proj")}
    save_adapter(model, tmp_path / "ad")
    assert sorted(p.name for p in (tmp_path / "ad").iterdir()) == [
        "adapter.safetensors",
        "adapter_config.json",
    ]
    fresh = _mgno()
    fresh.load_state_dict(frozen_proj, strict=False)  # the trainable head travels with the base
    # the base changed (a trained head) -> the adapters refuse it unless told otherwise
    with pytest.raises(ValueError, match="other base weights"):
        load_adapter(_mgno(seed=5), tmp_path / "ad")
    load_adapter(fresh, tmp_path / "ad", check_base=False)
    torch.testing.assert_close(fresh(x), model(x), rtol=0, atol=0)


def test_base_hash_round_trip(tmp_path):
    model = _fno()
    apply_lora(model, rank=2)
    _train(model, torch.randn(1, 1, 8, 8, dtype=torch.float64), steps=3)
    save_adapter(model, tmp_path / "ad")
    again = load_adapter(_fno(), tmp_path / "ad")  # same base weights: the hash matches
    x = torch.randn(1, 1, 8, 8, dtype=torch.float64)
    assert torch.equal(again(x), model(x))


def test_bad_input():
    model = _fno()
    with pytest.raises(ValueError, match="rank"):
        apply_lora(model, rank=0)
    with pytest.raises(ValueError, match="no layer matches"):
        apply_lora(model, targets=["nothing*"])
    spectral = [n for n, m in model.named_modules() if type(m).__name__ == "SpectralConv"][0]
    with pytest.raises(ValueError, match="only nn.Linear"):
        apply_lora(model, targets=[spectral])
    apply_lora(model)
    with pytest.raises(ValueError, match="already has LoRA"):
        apply_lora(model)
