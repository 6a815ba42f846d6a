"""A physics-informed network (tanh MLP, Adam) on the GP-HM collocation grid, a baseline of the
GP-HM benchmark."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import torch

from neuralops.gp.baselines._common import (
    F64,
    TEST_GRID,
    BaselineResult,
    _check_finite,
    _check_spec,
    _errors,
    _sizes,
    _test_axes,
)
from neuralops.pde.spec import PDESpec, tensor_points

__all__ = ["pinn"]


class _MLP(torch.nn.Module):
    """tanh MLP ``(N, d) -> (N,)``: inputs scaled to [-1, 1], or random Fourier features
    ``[cos 2 pi x B, sin 2 pi x B]`` of the raw coordinates with ``B ~ N(0, sigma^2)`` (cycles per
    unit length, as GP-HM's frequencies)."""

    def __init__(self, lower, upper, width, depth, rff, generator):
        super().__init__()
        d = len(lower)
        self.register_buffer("lo", torch.tensor(lower, dtype=F64))
        self.register_buffer("hi", torch.tensor(upper, dtype=F64))
        if rff is None:
            self.register_buffer("B", None)
            n_in = d
        else:
            nf, sigma = rff
            self.register_buffer("B", sigma * torch.randn(d, nf, dtype=F64, generator=generator))
            n_in = 2 * nf
        layers = []
        for k in range(depth + 1):
            lin = torch.nn.Linear(n_in if k == 0 else width, width if k < depth else 1, dtype=F64)
            torch.nn.init.xavier_normal_(lin.weight, generator=generator)
            torch.nn.init.zeros_(lin.bias)
            layers += [lin, torch.nn.Tanh()] if k < depth else [lin]
        self.net = torch.nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.B is None:
            z = 2 * (x - self.lo) / (self.hi - self.lo) - 1
        else:
            z = 2 * math.pi * x @ self.B
            z = torch.cat([torch.cos(z), torch.sin(z)], dim=1)
        return self.net(z).squeeze(-1)


def _net_jet(net, x: torch.Tensor, jet) -> torch.Tensor:
    """``D^alpha net`` at ``x`` by autograd, keeping the graph: ``(N, len(jet))``."""
    cache: dict = {}

    def deriv(alpha):
        if alpha not in cache:
            if sum(alpha) == 0:
                cache[alpha] = net(x)
            else:
                j = max(i for i, a in enumerate(alpha) if a > 0)
                prev = deriv(tuple(a - (i == j) for i, a in enumerate(alpha)))
                (g,) = torch.autograd.grad(prev.sum(), x, create_graph=True)
                cache[alpha] = g[:, j]
        return cache[alpha]

    return torch.stack([deriv(a) for a in jet], dim=1)


def pinn(
    spec: PDESpec,
    grid: int | Sequence[int],
    *,
    steps: int,
    lr: float = 1e-3,
    width: int = 100,
    depth: int = 4,
    boundary_weight: float = 200.0,
    seed: int = 0,
    rff: tuple[int, float] | None = None,
    eval_every: int | None = None,
    eval_grid: int | Sequence[int] | None = None,
    test_grid: int = TEST_GRID,
    device: str | torch.device = "cpu",
) -> BaselineResult:
    """Physics-informed network: a tanh MLP (``depth`` hidden layers of ``width``), float64, Adam.

    Loss: mean squared residual ``P(u) - f`` at all ``grid`` nodes per axis (the GP-HM collocation
    grid, boundary included) plus ``boundary_weight`` times the mean squared misfit at the nodes of
    ``spec.boundary_faces`` (corners twice, as GP-HM; for advection that is all four edges, the
    data GP-HM gets). Derivatives by autograd. Inputs are scaled to [-1, 1]; ``rff=(n_features,
    sigma)`` replaces that by fixed random Fourier features ``[cos 2 pi x B, sin 2 pi x B]`` of the raw
    coordinates, ``B ~ N(0, sigma^2)`` in cycles per unit length (GP-HM's unit for frequencies).
    The error on the test grid is recorded every ``eval_every`` (default ``steps // 20``) steps and
    at the end: ``rel_l2`` is the final one, ``info["oracle_min_error"]`` the minimum (selected with
    the exact solution). ``converged`` means all steps ran with a finite loss; on a non-finite loss
    training stops with the last finite parameters (``info["stopped"] == "non_finite"``).
    Thread count (``torch.set_num_threads``) is the caller's choice.
    """
    t0 = time.perf_counter()
    d, sizes, _, _ = _check_spec(spec, grid, "pinn", minimum=2)
    if not (isinstance(steps, int) and steps >= 1):
        raise ValueError(f"steps: expected an int >= 1, got {steps!r}")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr: expected a finite positive float, got {lr!r}")
    if not (isinstance(boundary_weight, (int, float)) and 0 <= boundary_weight < math.inf):
        raise ValueError(f"boundary_weight: expected a finite float >= 0, got {boundary_weight!r}")
    for name, v in (("width", width), ("depth", depth)):
        if not (isinstance(v, int) and v >= 1):
            raise ValueError(f"{name}: expected an int >= 1, got {v!r}")
    if rff is not None and not (len(rff) == 2 and int(rff[0]) >= 1 and float(rff[1]) > 0):
        raise ValueError(f"rff: expected (n_features >= 1, sigma > 0), got {rff!r}")
    rff = None if rff is None else (int(rff[0]), float(rff[1]))
    every = int(eval_every or max(1, steps // 20))
    dev = torch.device(device)
    gen = torch.Generator().manual_seed(int(seed))
    net = _MLP(spec.domain.lower, spec.domain.upper, width, depth, rff, gen).to(dev)
    axes = spec.domain.axes(sizes)
    X = tensor_points(axes)
    f = spec.source(X).to(F64).reshape(-1)
    _check_finite(f"{spec.name}: source f on the grid", f.numpy())
    flat = torch.arange(X.shape[0]).reshape(sizes)
    idx = torch.cat([flat.select(a, -1 if s else 0).reshape(-1) for a, s in spec.boundary_faces])
    g = spec.boundary(X[idx]).to(F64).reshape(-1)
    _check_finite(f"{spec.name}: boundary data g on the faces", g.numpy())
    X, f, g, Xb = X.to(dev), f.to(dev), g.to(dev), X[idx].to(dev)
    X.requires_grad_(True)
    test_sizes = _sizes(test_grid, d, "test_grid", 2)
    test_axes = _test_axes(spec, test_sizes)
    test_pts = tensor_points([torch.from_numpy(a) for a in test_axes]).to(dev)
    ref = None if spec.exact is None else spec.exact(test_pts.cpu()).detach().to(F64).reshape(-1)

    def evaluate():
        with torch.no_grad():
            pred = torch.cat([net(p) for p in test_pts.split(65536)]).cpu()
        return pred, None if ref is None else float(
            torch.linalg.norm(pred - ref) / torch.linalg.norm(ref)
        )

    opt = torch.optim.Adam(net.parameters(), lr=lr)
    history: dict = {"step": [], "loss": [], "eval_step": [], "error": []}
    stopped, step, last = "max_steps", 0, None
    while True:
        jet = _net_jet(net, X, spec.jet)
        res = spec.operator(jet, X) - f
        loss = (res**2).mean() + boundary_weight * ((net(Xb) - g) ** 2).mean()
        history["step"].append(step)
        history["loss"].append(float(loss.detach()))
        if not math.isfinite(history["loss"][-1]):
            stopped = "non_finite"
            if last is not None:  # back to the last parameters with a finite loss
                with torch.no_grad():
                    for p, q in zip(net.parameters(), last):
                        p.copy_(q)
            break
        if step % every == 0 or step == steps:
            history["eval_step"].append(step)
            history["error"].append(evaluate()[1])
        if step == steps:
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        last = [p.detach().clone() for p in net.parameters()]
        opt.step()
        step += 1
    seconds = time.perf_counter() - t0
    net.eval()
    errors = [e for e in history["error"] if e is not None]
    info = {
        "stopped": stopped,
        "final_error": errors[-1] if errors else None,
        "oracle_min_error": min(errors) if errors else None,
        "oracle_note": "oracle_min_error is the minimum over checkpoints, selected with the exact solution",
        "faces": [list(fc) for fc in spec.boundary_faces],
        "width": width,
        "depth": depth,
        "lr": lr,
        "boundary_weight": boundary_weight,
        "rff": None if rff is None else list(rff),
        "seed": int(seed),
        "device": str(dev),
        "parameters": sum(p.numel() for p in net.parameters()),
    }

    def predictor(points: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return net(points.to(dev)).cpu()

    pred, _ = evaluate()
    on_test = pred.reshape(test_sizes).numpy()
    rel, rms = _errors(spec, on_test, test_axes)
    eval_sizes = test_sizes if eval_grid is None else _sizes(eval_grid, d, "eval_grid", 2)
    if eval_sizes == test_sizes:
        values = torch.from_numpy(on_test)
    else:
        values = predictor(spec.domain.grid_points(eval_sizes)).reshape(eval_sizes)
    info["test_grid"] = list(test_sizes)
    return BaselineResult(
        method="pinn",
        name=spec.name,
        grid=sizes,
        values=values,
        eval_sizes=eval_sizes,
        rel_l2=rel,
        rms=rms,
        seconds=seconds,
        iterations=step,
        converged=stopped == "max_steps",
        history=history,
        info=info,
        predictor=predictor,
    )
