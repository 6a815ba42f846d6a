"""Time-dependent evaluation: errors at several lead times, by direct prediction and by rollout.

A model trained on all2all pairs (Poseidon) maps a snapshot and a lead time ``t`` to the snapshot ``t``
later, so the state at ``k`` steps can be predicted in two ways:

- **direct**: one call, ``u_k = G(u_0, k dt / t_norm)``;
- **rollout**: ``k`` calls of one step each, ``u_{i+1} = G(u_i, dt / t_norm)`` (autoregressive; the
  only option for a model trained on consecutive pairs).

:func:`lead_time_errors` evaluates both on whole trajectories (``PDEDataset(time="trajectory")``) and
reports, per lead step, the mean relative L2 error and Poseidon's metric (the median relative L1 in
percent). Inputs and targets go through the training normalizer, if any: a rolled-out prediction is
decoded to physical units and encoded again before the next step, exactly as a user would chain calls.

>>> import torch
>>> class Shift(torch.nn.Module):      # exact solution operator of u_t = 0: the identity
...     def forward(self, x, t=None):
...         return x
>>> traj = [{"input": torch.ones(5, 1, 4, 4), "target": torch.ones(5, 1, 4, 4)}]
>>> rows = lead_time_errors(Shift(), traj, lead_steps=(1, 4), t_norm=4.0)
>>> [(r["lead_steps"], r["mode"], r["rel_l2"]) for r in rows]
[(1, 'direct', 0.0), (4, 'direct', 0.0), (1, 'rollout', 0.0), (4, 'rollout', 0.0)]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch

from neuralops.train.metrics import rel_l1_median, rel_l2

__all__ = ["lead_time_errors", "predict_lead", "rollout"]


def _call(
    model: torch.nn.Module, x: torch.Tensor, t: torch.Tensor, normalizer: Any
) -> torch.Tensor:
    if normalizer is not None:
        x = normalizer.encode(x, key="input")
    y = model(x, t)
    return normalizer.decode(y, key="target") if normalizer is not None else y


@torch.no_grad()
def predict_lead(
    model: torch.nn.Module, x0: torch.Tensor, lead: float, *, normalizer: Any = None
) -> torch.Tensor:
    """Direct prediction ``G(x0, lead)`` for a batch ``x0`` (B, C, *S) in physical units."""
    t = torch.full((x0.shape[0],), float(lead), dtype=x0.dtype, device=x0.device)
    return _call(model, x0, t, normalizer)


@torch.no_grad()
def rollout(
    model: torch.nn.Module,
    x0: torch.Tensor,
    steps: int,
    *,
    step_time: float,
    normalizer: Any = None,
) -> torch.Tensor:
    """``steps`` autoregressive calls of lead time ``step_time``; returns (steps, B, C, *S)."""
    t = torch.full((x0.shape[0],), float(step_time), dtype=x0.dtype, device=x0.device)
    out, x = [], x0
    for _ in range(steps):
        x = _call(model, x, t, normalizer)
        out.append(x)
    return torch.stack(out)


@torch.no_grad()
def lead_time_errors(
    model: torch.nn.Module,
    trajectories: Iterable[dict[str, torch.Tensor]],
    lead_steps: Sequence[int],
    *,
    t_norm: float,
    dt: float = 1.0,
    modes: Sequence[str] = ("direct", "rollout"),
    normalizer: Any = None,
    batch_size: int = 16,
    device: torch.device | str = "cpu",
) -> list[dict[str, Any]]:
    """Errors at ``lead_steps`` from snapshot 0 of each trajectory.

    ``trajectories`` yields dicts with ``input`` and ``target`` of shape (T, C, *S) (a
    ``PDEDataset(..., time="trajectory")``); the input channels of snapshot 0 start the prediction and
    the target channels of snapshot ``k`` are the truth. One step is ``dt`` in snapshot units and the
    model's lead time for ``k`` steps is ``k dt / t_norm`` (the training ``t_norm``). Returns one row per
    (mode, lead step): ``rel_l2`` (mean over trajectories), ``rel_l1_median_pct`` (Poseidon's metric)
    and ``n``.
    """
    for mode in modes:
        if mode not in ("direct", "rollout"):
            raise ValueError(f"unknown mode {mode!r}; use 'direct' and/or 'rollout'")
    steps = sorted({int(k) for k in lead_steps})
    if not steps or steps[0] < 1:
        raise ValueError(f"lead_steps must be positive integers, got {list(lead_steps)}")
    if not t_norm > 0:
        raise ValueError(f"t_norm must be > 0, got {t_norm}")
    model = model.eval()
    preds: dict[tuple[str, int], list[torch.Tensor]] = {(m, k): [] for m in modes for k in steps}
    truth: dict[int, list[torch.Tensor]] = {k: [] for k in steps}

    def flush(batch: list[dict[str, torch.Tensor]]) -> None:
        x0 = torch.stack([b["input"][0] for b in batch]).to(device)
        n_time = batch[0]["target"].shape[0]
        if steps[-1] >= n_time:
            raise ValueError(
                f"lead step {steps[-1]} needs {steps[-1] + 1} snapshots; trajectories have {n_time}"
            )
        for k in steps:
            truth[k].append(torch.stack([b["target"][k] for b in batch]))
        if "direct" in modes:
            for k in steps:
                preds[("direct", k)].append(
                    predict_lead(model, x0, k * dt / t_norm, normalizer=normalizer).cpu()
                )
        if "rollout" in modes:
            path = rollout(model, x0, steps[-1], step_time=dt / t_norm, normalizer=normalizer)
            for k in steps:
                preds[("rollout", k)].append(path[k - 1].cpu())

    batch: list[dict[str, torch.Tensor]] = []
    for item in trajectories:
        batch.append(item)
        if len(batch) == batch_size:
            flush(batch)
            batch = []
    if batch:
        flush(batch)
    if not truth[steps[0]]:
        raise ValueError("no trajectories to evaluate")
    rows = []
    for mode in modes:
        for k in steps:
            p, y = torch.cat(preds[(mode, k)]).float(), torch.cat(truth[k]).float()
            rows.append(
                {
                    "mode": mode,
                    "lead_steps": k,
                    "lead_time": k * dt / t_norm,
                    "rel_l2": float(rel_l2(p, y)),
                    "rel_l1_median_pct": 100 * float(rel_l1_median(p, y)),
                    "n": int(y.shape[0]),
                }
            )
    return rows
