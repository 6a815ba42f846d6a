"""Multi-operator models (models.md §5.2): routing, new families, LoRA and full fine-tuning, save/load
with every head, the family-mixing weights, and a two-family toy that actually trains."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from neuralops.models import MultiOperatorModel, ScOT, ScOTConfig, load_pretrained
from neuralops.models.lora import merge_lora
from neuralops.models.multiop import FamilySpec, family_weights, prepare_finetune


def scot_backbone(width: int = 8) -> ScOT:
    return ScOT(
        ScOTConfig(
            in_channels=width,
            out_channels=width,
            image_size=16,
            patch_size=2,
            embed_dim=16,
            depths=(1, 1),
            num_heads=(2, 4),
            skip_connections=(1, 0),
            window_size=4,
            resample="pad",
        )
    )


def two_family_model() -> MultiOperatorModel:
    torch.manual_seed(0)
    return MultiOperatorModel.from_backbone(
        scot_backbone(), {"poisson": FamilySpec(1, 1), "heat": FamilySpec(3, 1, embedding=True)}
    )


def toy_batch(
    family: str, n: int, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Exact operators on the periodic 16^2 grid: Poisson -Lap u = f (f -> u) and heat
    u(t) = exp(t kappa Lap) u0 with a per-sample scalar conductivity and the time as constant channels
    (so that backbones without time conditioning see t too)."""
    k = torch.fft.fftfreq(16, d=1 / 16)
    k2 = (2 * torch.pi) ** 2 * (k[:, None] ** 2 + k[None, :] ** 2)
    modes = torch.zeros(n, 16, 16, dtype=torch.complex64)
    modes[:, 1:4, 1:4] = torch.randn(n, 3, 3, generator=gen) + 1j * torch.randn(
        n, 3, 3, generator=gen
    )
    field = torch.fft.ifft2(modes).real * 16
    t = torch.rand(n, generator=gen)
    if family == "poisson":
        inv = torch.where(k2 > 0, 1 / k2.clamp_min(1e-12), torch.zeros_like(k2)) * 40
        u = torch.fft.ifft2(torch.fft.fft2(field) * inv).real
        return field[:, None], u[:, None], torch.ones(n)
    kappa = 0.005 + 0.01 * torch.rand(n, generator=gen)
    u = torch.fft.ifft2(
        torch.fft.fft2(field) * torch.exp(-kappa[:, None, None] * t[:, None, None] * k2)
    ).real
    x = torch.stack(
        [field, kappa[:, None, None].expand(n, 16, 16) * 100, t[:, None, None].expand(n, 16, 16)],
        dim=1,
    )
    return x, u[:, None], t


def test_routing_shapes_and_unknown_family() -> None:
    model = two_family_model()
    assert model(torch.randn(2, 1, 16, 16), torch.rand(2), family="poisson").shape == (2, 1, 16, 16)
    assert model(torch.randn(2, 3, 16, 16), torch.rand(2), family="heat").shape == (2, 1, 16, 16)
    with pytest.raises(
        ValueError, match=r"unknown family 'wave'; this model has \['poisson', 'heat'\]"
    ):
        model(torch.randn(2, 1, 16, 16), family="wave")
    with pytest.raises(ValueError, match="pass family=NAME"):
        model(torch.randn(2, 1, 16, 16))
    with pytest.raises(ValueError, match=r"takes x of shape \(batch, 3, H, W\)"):
        model(torch.randn(2, 1, 16, 16), family="heat")
    with pytest.raises(ValueError, match="at least one"):
        MultiOperatorModel.from_backbone(scot_backbone(), {})


def test_two_family_toy_trains_and_round_trips(tmp_path: Path, one_thread) -> None:
    from neuralops.models import build_model

    torch.manual_seed(0)
    backbone = build_model(
        "fno",
        in_channels=16,
        out_channels=16,
        width=16,
        modes=(5, 5),
        lifting_channels=32,
        projection_channels=32,
    )
    model = MultiOperatorModel.from_backbone(
        backbone, {"poisson": FamilySpec(1, 1), "heat": FamilySpec(3, 1, embedding=True)}
    )
    gen = torch.Generator().manual_seed(1)
    weights = family_weights({"poisson": 64, "heat": 64})
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    evals = {f: toy_batch(f, 16, torch.Generator().manual_seed(99)) for f in weights}

    def err() -> dict[str, float]:
        with torch.no_grad():
            return {
                f: float((model(x, t, family=f) - y).norm() / y.norm())
                for f, (x, y, t) in evals.items()
            }

    before = err()
    for step in range(200):
        f = list(weights)[step % 2]
        x, y, t = toy_batch(f, 8, gen)
        loss = ((model(x, t, family=f) - y) ** 2).mean() / (y**2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = err()
    assert all(after[f] < before[f] / 4 for f in before) and after["poisson"] < 0.15, (
        before,
        after,
    )

    model.eval()
    folder = model.save_pretrained(tmp_path / "multi")
    again = load_pretrained(folder).eval()
    assert isinstance(again, MultiOperatorModel) and again.families == ["poisson", "heat"]
    for k, v in model.state_dict().items():
        assert torch.equal(v, again.state_dict()[k]), k
    x, _, t = evals["heat"]
    assert torch.equal(model(x, t, family="heat"), again(x, t, family="heat"))


def test_lora_finetune_starts_equal_trains_only_adapters_and_merges(tmp_path: Path) -> None:
    model = two_family_model().eval()
    x = torch.randn(3, 1, 16, 16)
    t = torch.rand(3)
    with torch.no_grad():  # (autograd on or off can pick different attention kernels)
        base_poisson = model(x, t, family="poisson")
    names = prepare_finetune(model, "wave", FamilySpec(1, 1), mode="lora", rank=4, alpha=8)
    assert names and not any("alpha" in n or "beta" in n or "cpb" in n for n in names)
    # LoRA leaves every existing family's output bitwise unchanged
    with torch.no_grad():
        assert torch.equal(model(x, t, family="poisson"), base_poisson)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert all(
        n.startswith(("adapters.wave.", "heads.wave."))
        or "lora_" in n
        or any(part in n for part in ("alpha", "beta", "norm"))
        for n in trainable
    ), sorted(trainable)[:10]
    assert any(n.startswith("adapters.wave.") for n in trainable)
    assert not any(n.startswith(("adapters.poisson", "heads.heat")) for n in trainable)
    frozen_before = {
        n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad
    }
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    gen = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(5):
        xb, yb, tb = toy_batch("poisson", 4, gen)
        loss = ((model(xb, tb, family="wave") - yb) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert all(
        torch.equal(p, frozen_before[n]) for n, p in model.named_parameters() if n in frozen_before
    )
    model.eval()
    with torch.no_grad():
        adapted = model(x, t, family="wave")
        merged = merge_lora(model)
        torch.testing.assert_close(merged(x, t, family="wave"), adapted, rtol=0, atol=1e-5)
    folder = merged.save_pretrained(tmp_path / "merged")
    assert load_pretrained(folder).families == ["poisson", "heat", "wave"]


def test_full_finetune_groups() -> None:
    model = two_family_model()
    prepare_finetune(model, "wave", {"in_channels": 3, "out_channels": 2}, mode="full")
    groups = {
        g["name"]: g for g in model.param_groups(lr_backbone=1e-5, lr_heads=1e-3, lr_norm=5e-4)
    }
    assert set(groups) == {"backbone", "heads", "norm"}
    assert groups["norm"]["weight_decay"] == 0.0 and groups["backbone"]["lr"] == 1e-5
    n_groups = sum(p.numel() for g in groups.values() for p in g["params"])
    assert n_groups == model.num_parameters()
    ids = {id(p) for p in groups["heads"]["params"]}
    assert id(model.adapters["wave"].weight) in ids and id(model.heads["wave"].weight) in ids
    with pytest.raises(ValueError, match="already exists"):
        model.add_family("wave", FamilySpec(1, 1))
    with pytest.raises(ValueError, match="mode must be"):
        prepare_finetune(model, "x", FamilySpec(1, 1), mode="half")


def test_family_weights_follow_sizes_to_the_power_t() -> None:
    assert family_weights({"a": 300, "b": 100}) == {"a": 0.75, "b": 0.25}
    assert family_weights({"a": 300, "b": 100}, temperature=0.0) == {"a": 0.5, "b": 0.5}
    w = family_weights({"a": 400, "b": 100}, temperature=0.5)
    assert w["a"] == pytest.approx(2 / 3) and w["b"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="at least one sample"):
        family_weights({"a": 0})
