"""Lead-time evaluation (direct and rollout) against the exact semigroup of the heat equation, and
Poseidon's relative L1 loss."""

from __future__ import annotations

import pytest
import torch

from neuralops.train.metrics import rel_l1
from neuralops.train.rollout import lead_time_errors


class HeatSemigroup(torch.nn.Module):
    """The exact solution operator of u_t = nu Lap u on the periodic unit square: exp(-nu |2 pi k|^2 s),
    with s = t * t_norm physical time units; ``scale`` != 1 makes it wrong on purpose."""

    def __init__(self, n: int, nu: float, t_norm: float, scale: float = 1.0) -> None:
        super().__init__()
        k = torch.fft.fftfreq(n, d=1 / n, dtype=torch.float64)
        self.k2 = (2 * torch.pi) ** 2 * (k[:, None] ** 2 + k[None, :] ** 2)
        self.nu, self.t_norm, self.scale = nu, t_norm, scale

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        s = t.reshape(-1, 1, 1, 1) * self.t_norm
        decay = torch.exp(-self.nu * self.scale * self.k2 * s)
        return torch.fft.ifft2(torch.fft.fft2(x) * decay).real


def _trajectories(n: int, nu: float, n_time: int, count: int) -> list[dict[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(0)
    exact = HeatSemigroup(n, nu, t_norm=1.0)
    out = []
    for _ in range(count):
        u0 = torch.randn(1, 1, n, n, generator=gen, dtype=torch.float64)
        u0 = exact(u0, torch.tensor([0.002]))  # smooth it
        frames = torch.cat([exact(u0, torch.tensor([float(i)])) for i in range(n_time)])
        out.append({"input": frames, "target": frames})
    return out


def test_exact_operator_has_zero_error_both_ways() -> None:
    n, nu, t_norm = 16, 0.002, 5.0
    trajs = _trajectories(n, nu, 6, 5)
    model = HeatSemigroup(n, nu, t_norm)  # lead time 1 step = 1 / t_norm
    rows = lead_time_errors(model, trajs, (1, 3, 5), t_norm=t_norm, batch_size=2)
    assert len(rows) == 6 and {r["mode"] for r in rows} == {"direct", "rollout"}
    assert max(r["rel_l2"] for r in rows) < 1e-12
    assert all(r["n"] == 5 for r in rows)


def test_a_wrong_operator_errs_more_at_longer_leads() -> None:
    n, nu, t_norm = 16, 0.002, 5.0
    trajs = _trajectories(n, nu, 6, 4)
    rows = lead_time_errors(HeatSemigroup(n, nu, t_norm, scale=1.5), trajs, (1, 5), t_norm=t_norm)
    err = {(r["mode"], r["lead_steps"]): r["rel_l2"] for r in rows}
    assert err[("direct", 5)] > err[("direct", 1)] > 1e-3
    # a semigroup composes exactly: rollout of the (wrong) semigroup equals its direct prediction
    assert err[("rollout", 5)] == pytest.approx(err[("direct", 5)], rel=1e-9)


def test_bad_lead_steps() -> None:
    trajs = _trajectories(8, 0.002, 3, 1)
    model = HeatSemigroup(8, 0.002, 1.0)
    with pytest.raises(ValueError, match="needs 4 snapshots"):
        lead_time_errors(model, trajs, (3,), t_norm=1.0)
    with pytest.raises(ValueError, match="positive integers"):
        lead_time_errors(model, trajs, (0,), t_norm=1.0)
    with pytest.raises(ValueError, match="unknown mode"):
        lead_time_errors(model, trajs, (1,), t_norm=1.0, modes=("teacher",))


def test_rel_l1_is_poseidons_grouped_loss() -> None:
    y = torch.randn(3, 4, 8, 8, dtype=torch.float64)
    p = y + 0.1 * torch.randn_like(y)
    groups = [0, 1, 3, 4]
    per_sample = rel_l1(p, y, groups=groups, reduction="none")
    for b in range(3):
        parts = [
            (p[b, a:c] - y[b, a:c]).abs().mean() / (y[b, a:c].abs().mean() + 1e-10)
            for a, c in zip(groups, groups[1:])
        ]
        assert per_sample[b] == pytest.approx(float(sum(parts) / 3), rel=1e-12)
    with pytest.raises(ValueError, match="groups must rise"):
        rel_l1(p, y, groups=[0, 2, 2, 4])
