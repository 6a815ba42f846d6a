"""MgNO: preset parameter counts, shapes, boundary-condition semantics, linearity, gradients, overfitting."""

from __future__ import annotations

import json

import pytest
import torch
from torch.nn import functional as F

from neuralops.models import MGNO_PRESETS, MgConv, MgNO, MgNOConfig


def tiny(**kw) -> MgNOConfig:
    return MgNOConfig(**{"in_channels": 1, "width": 4, "n_layers": 2, "levels": 3, **kw})


# ---------------------------------------------------------------- parameter counts (spec §1.2)
@pytest.mark.parametrize(
    "name, count",
    [
        ("darcy_rough", 572_661),
        ("multiscale", 572_661),
        ("darcy_smooth", 678_093),
        ("pipe", 783_876),
        ("ns", 2_885_194),
    ],
)
def test_preset_parameter_counts(name: str, count: int) -> None:
    model = MgNO(MgNOConfig.preset(name))
    assert model.num_parameters() == count
    assert model.n_params() == count


def test_darcy_rough_breakdown() -> None:
    model = MgNO(MgNOConfig.preset("darcy_rough"))

    def n(module: torch.nn.Module) -> int:
        return sum(p.numel() for p in module.parameters())

    assert n(model.layers[0].mg) == 74_853
    assert n(model.layers[0].pointwise) == 48
    for layer in model.layers[1:]:
        assert n(layer.mg) == 165_312
        assert n(layer.pointwise) == 600
    assert n(model.head) == 24


def test_ns_layernorm_share() -> None:
    model = MgNO(MgNOConfig.preset("ns"))
    norms = sum(
        p.numel()
        for m in model.modules()
        if isinstance(m, torch.nn.LayerNorm)
        for p in m.parameters()
    )
    assert norms == 1_740_800


def test_unknown_preset_lists_names() -> None:
    with pytest.raises(ValueError, match="darcy_rough"):
        MgNOConfig.preset("darcy_rugh")
    assert set(MGNO_PRESETS) >= {"darcy_rough", "darcy_smooth", "pipe", "ns", "multiscale"}


def test_preset_overrides_and_resolution_independence() -> None:
    cfg = MgNOConfig.preset("darcy_rough", width=4, levels=3)
    assert cfg.smoothing == ((1, 0), (1, 0), (2, 0))
    model = MgNO(cfg)
    for shape in [(16, 16), (32, 24)]:
        assert model(torch.randn(1, 1, *shape)).shape == (1, 1, *shape)


# ---------------------------------------------------------------- shapes and errors
@pytest.mark.parametrize("spatial", [(16, 16), (24, 16), (17, 19), (33, 20)])
def test_shapes_2d(spatial: tuple[int, int]) -> None:
    model = MgNO(tiny(in_channels=2, out_channels=3))
    y = model(torch.randn(2, 2, *spatial), t=torch.zeros(2))
    assert y.shape == (2, 3, *spatial)


@pytest.mark.parametrize("spatial", [(33,), (9, 10, 11)])
def test_shapes_1d_3d(spatial: tuple[int, ...]) -> None:
    model = MgNO(tiny(spatial_dims=len(spatial), width=3, n_layers=1))
    assert model(torch.randn(2, 1, *spatial)).shape == (2, 1, *spatial)


def test_grid_too_small_names_sizes() -> None:
    model = MgNO(tiny(levels=5))
    with pytest.raises(ValueError, match=r"16 points.*\(15, 20\).*levels <= 4"):
        model(torch.randn(1, 1, 15, 20))
    assert model(torch.randn(1, 1, 16, 20)).shape == (1, 1, 16, 20)


def test_wrong_channels_and_layer_chw_grid() -> None:
    with pytest.raises(ValueError, match="expects input"):
        MgNO(tiny())(torch.randn(1, 2, 16, 16))
    model = MgNO(tiny(level_norm="layer_chw", grid_shape=(16, 16)))
    with pytest.raises(ValueError, match="grid_shape"):
        model(torch.randn(1, 1, 32, 32))


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"padding_mode": "periodic"}, "circular"),
        ({"smoothing": ((1, 0), (1, 0))}, "levels=3"),
        ({"smoothing": ((0, 1), (1, 0), (1, 0))}, "smoothing"),
        ({"level_norm": "layer_chw"}, "grid_shape"),
        ({"activation": "swish"}, "gelu"),
        ({"prolongation_kernels": (4, 5)}, "prolongation_kernels"),
        ({"global_residual": True, "out_channels": 2}, "in_channels == out_channels"),
        ({"width": 0}, "width"),
    ],
)
def test_config_validation(kw: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        tiny(**kw)


def test_config_json_round_trip() -> None:
    cfg = MgNOConfig.preset("darcy_smooth")
    again = MgNOConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    with pytest.raises(ValueError, match="widht"):
        MgNOConfig.from_dict({**cfg.to_dict(), "widht": 3})
    with pytest.raises(ValueError, match="in_channels"):
        MgNOConfig.from_dict({"width": 3})


def test_repr_shows_size() -> None:
    assert "params=572,661" in repr(MgNO(MgNOConfig.preset("darcy_rough")))


# ---------------------------------------------------------------- semantics
def test_matches_reference_conv_formulation() -> None:
    """With zero padding the V-cycle equals the reference's ``Conv2d(padding=1)`` /
    ``ConvTranspose2d(padding=1)`` formulation on a grid where those fit (53 -> 27 -> 14 -> 7)."""
    torch.manual_seed(0)
    cfg = tiny(levels=4, smoothing=((1, 1), (1, 0), (1, 1), (2, 0)), prolongation_kernels=(3, 3, 4))
    mg = MgConv(2, 3, cfg).double()
    f = torch.randn(2, 2, 53, 53, dtype=torch.float64)

    def conv(c: torch.nn.Module, x: torch.Tensor, stride: int = 1) -> torch.Tensor:
        return F.conv2d(x, c.conv.weight, c.conv.bias, stride=stride, padding=1)

    def smooth(steps, u, f):
        for s in steps:
            u = u + conv(s.S, f - conv(s.A, u))
        return u

    u = smooth(mg.pre[0], conv(mg.init_smoother, f), f)
    us, fs = [u], [f]
    for lvl in range(1, 4):
        f, u = conv(mg.restrict_f[lvl - 1], f, 2), conv(mg.restrict_u[lvl - 1], u, 2)
        u = smooth(mg.pre[lvl], u, f)
        us.append(u)
        fs.append(f)
    u = us[-1]
    for lvl in (2, 1, 0):
        up = F.conv_transpose2d(u, mg.prolong[lvl].conv.weight, stride=2, padding=1)
        u = smooth(mg.post[lvl], us[lvl] + up, fs[lvl])
    torch.testing.assert_close(mg(fs[0]), u, rtol=0, atol=1e-12)


def test_circular_commutes_with_roll() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 1, 16, 24)
    shifts, dims = (4, -8), (2, 3)  # multiples of 2**(levels - 1)
    periodic = MgNO(tiny(padding_mode="circular")).eval()
    torch.testing.assert_close(
        periodic(torch.roll(x, shifts, dims)),
        torch.roll(periodic(x), shifts, dims),
        atol=1e-5,
        rtol=0,
    )
    zeros = MgNO(tiny(padding_mode="zeros")).eval()
    zeros.load_state_dict(periodic.state_dict())
    diff = zeros(torch.roll(x, shifts, dims)) - torch.roll(zeros(x), shifts, dims)
    assert diff.abs().max() > 1e-3


def test_reflect_mirror_symmetry() -> None:
    """Mirror-symmetric weights + reflect padding on odd grids (17 -> 9 -> 5): mirroring commutes."""
    torch.manual_seed(0)
    model = MgNO(tiny(padding_mode="reflect", prolongation_kernels=3)).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 4:
                p.copy_(0.5 * (p + p.flip(-1)))
    x = torch.randn(2, 1, 12, 17)
    torch.testing.assert_close(model(x.flip(-1)), model(x).flip(-1), atol=1e-5, rtol=0)


def test_one_level_padding_modes_agree_in_interior() -> None:
    torch.manual_seed(0)
    cfg = tiny(levels=1, smoothing=((2, 0),))  # receptive radius 1 + 2 = 3
    f = torch.randn(2, 1, 20, 20)
    ref = MgConv(1, 3, cfg)
    out = ref(f)
    for mode in ("circular", "reflect", "replicate"):
        other = MgConv(1, 3, MgNOConfig(**{**cfg.to_dict(), "padding_mode": mode}))
        other.load_state_dict(ref.state_dict())
        y = other(f)
        torch.testing.assert_close(y[..., 3:-3, 3:-3], out[..., 3:-3, 3:-3])
        assert (y - out).abs().max() > 1e-4


def test_mgconv_is_linear() -> None:
    torch.manual_seed(0)
    mg = MgConv(2, 3, tiny(activation="identity", smoothing=((1, 1), (2, 1), (2, 0)))).double()
    x, y = torch.randn(2, 2, 2, 20, 18, dtype=torch.float64)
    a, b = 0.7, -2.3
    torch.testing.assert_close(mg(a * x + b * y), a * mg(x) + b * mg(y), rtol=1e-12, atol=1e-12)


def test_every_parameter_gets_a_gradient() -> None:
    cfg = tiny(
        smoothing=((2, 1), (1, 1), (1, 1)),
        residual_restriction=True,
        smoother_bias=True,
        level_norm="group",
    )
    model = MgNO(cfg)
    model(torch.randn(2, 1, 16, 16)).square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    ns_like = MgNO(
        tiny(
            level_norm="layer_chw",
            grid_shape=(16, 16),
            pointwise=False,
            smoother_bias=True,
            global_residual=True,
            padding_mode="circular",
        )
    )
    ns_like(torch.randn(2, 1, 16, 16)).square().mean().backward()
    assert all(p.grad is not None for p in ns_like.parameters())


# ---------------------------------------------------------------- overfit
def poisson_pairs(n: int, k: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``k`` pairs (f, u) with -Lap u = f, zero Dirichlet, 5-point stencil on an n x n grid (exact)."""
    g = torch.Generator().manual_seed(seed)
    m, h = n - 2, 1.0 / (n - 1)
    j = torch.arange(1, m + 1, dtype=torch.float64)
    modes = torch.arange(1, 6, dtype=torch.float64)
    sines = torch.sin(torch.pi * j[:, None] * modes[None] * h)
    c = torch.randn(k, 5, 5, generator=g, dtype=torch.float64)
    f = torch.einsum("ip,kpq,jq->kij", sines, c / (1 + modes[:, None] ** 2 + modes**2), sines)
    lam = (4 / h**2) * torch.sin(torch.pi * j * h / 2) ** 2  # eigenvalues of the 1-D Laplacian
    V = torch.sin(torch.pi * j[:, None] * j[None] * h) * (2 * h) ** 0.5  # orthonormal DST-I
    u = V @ ((V.T @ f @ V) / (lam[:, None] + lam)) @ V.T
    F_, U = torch.zeros(2, k, 1, n, n, dtype=torch.float64)
    F_[:, 0, 1:-1, 1:-1], U[:, 0, 1:-1, 1:-1] = f, u
    return (F_ / F_.std()).float(), (U / U.std()).float()


def test_overfits_tiny_poisson_batch() -> None:
    """Spec §1.4: 4 samples, 32², 3 levels, relative L2 < 1e-2 within 300 Adam steps (paper width 24)."""
    torch.manual_seed(0)
    x, y = poisson_pairs(32, 4)
    model = MgNO(MgNOConfig(in_channels=1, width=24, n_layers=2, levels=3))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    steps = 300
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)

    def rel_l2() -> torch.Tensor:
        return ((model(x) - y).flatten(1).norm(dim=1) / y.flatten(1).norm(dim=1)).mean()

    with torch.no_grad():
        start = rel_l2().item()
    for _ in range(steps):
        opt.zero_grad()
        loss = rel_l2()
        loss.backward()
        opt.step()
        sched.step()
    with torch.no_grad():
        end = rel_l2().item()
    assert end < 1e-2 < start / 10, (start, end)
