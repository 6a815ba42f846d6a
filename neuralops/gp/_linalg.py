"""Jittered Cholesky with escalation, shared by both GP solvers."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

__all__ = ["GPConditioningWarning", "JitteredCholesky", "jittered_cholesky", "check_finite"]


class GPConditioningWarning(RuntimeWarning):
    """A Gram matrix needed more jitter than configured; the value used is recorded in ``info``."""


@dataclass(frozen=True)
class JitteredCholesky:
    """``L L^T = A + jitter * scale * I``; ``ok`` is False when escalation ran out (``L`` then holds
    the last attempt with non-finite entries replaced, so nothing downstream silently turns NaN)."""

    L: torch.Tensor
    jitter: float
    ok: bool
    tries: int


def jittered_cholesky(
    A: torch.Tensor,
    jitter: float,
    *,
    diag_scale: torch.Tensor | None = None,
    max_escalations: int = 4,
    factor: float = 10.0,
    what: str = "Gram matrix",
) -> JitteredCholesky:
    """Cholesky of ``A + jitter * diag(diag_scale)`` (identity when ``diag_scale`` is None).

    On failure the jitter is multiplied by ``factor`` up to ``max_escalations`` times, with one
    :class:`GPConditioningWarning` naming the final value. A zero jitter escalates from 1e-12 times
    the mean diagonal.
    """
    n = A.shape[-1]
    scale = torch.ones(n, dtype=A.dtype, device=A.device) if diag_scale is None else diag_scale
    eps = float(jitter)
    tries = 0
    while True:
        L, info = torch.linalg.cholesky_ex(A + torch.diag(eps * scale))
        if int(info) == 0 and bool(torch.isfinite(L).all()):
            if tries:
                warnings.warn(
                    f"{what}: Cholesky failed with jitter {jitter:g}; succeeded with {eps:g} "
                    f"after {tries} escalation(s) (recorded in info['jitter'])",
                    GPConditioningWarning,
                    stacklevel=3,
                )
            return JitteredCholesky(L, eps, True, tries)
        if tries >= max_escalations:
            warnings.warn(
                f"{what}: Cholesky still fails with jitter {eps:g} after {tries} escalations; the "
                "kernel is too smooth for these points (shorter length-scale, fewer points, or a "
                "larger jitter)",
                GPConditioningWarning,
                stacklevel=3,
            )
            return JitteredCholesky(torch.nan_to_num(L), eps, False, tries)
        tries += 1
        if eps == 0.0:
            eps = 1e-12 * float(A.diagonal().abs().mean().clamp_min(1e-300))
        else:
            eps *= factor


def check_finite(name: str, value: torch.Tensor) -> None:
    """Raise ``ValueError`` naming ``name`` when ``value`` has NaN or Inf."""
    bad = ~torch.isfinite(value)
    if bool(bad.any()):
        raise ValueError(
            f"{name}: {int(bad.sum())} non-finite value(s) (NaN/Inf) of {value.numel()}; "
            "fix the data or the function that produced them"
        )
