"""The GP-HM field on a tensor grid: latent values, per-axis factorisations, and prediction.

``_GridGP`` holds one GP's per-axis kernels and latent grid values ``U``; ``HMPredictor`` evaluates
``u(x) = sum_GPs k(x, grid) C^{-1} vec U`` and its derivatives on points or grids.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from neuralops.gp.kernels import (
    AbstractKernel1d,
    GaussianMixture1d,
    Matern1d,
    SE1d,
    StudentTMixture1d,
)
from neuralops.gp.kron import (
    SPDFactor,
    cholesky_factor,
    contract_points,
    mode_cholesky_solve,
    mode_product,
)

F64 = torch.float64


class _GridGP:
    """One GP on the grid: per-axis kernels, latent values, and their factorisations."""

    def __init__(self, kernels: Sequence[AbstractKernel1d], axes: Sequence[torch.Tensor], U):
        self.kernels = list(kernels)
        self.axes = list(axes)
        self.U = U
        self.h = [float(a[1] - a[0]) for a in axes]

    def kmat(self, j: int, n: int, toeplitz: bool) -> torch.Tensor:
        k, a = self.kernels[j], self.axes[j]
        return k.toeplitz(self.h[j], a.numel(), n) if toeplitz else k.matrix(a, a, n)

    def factorise(self, jitter: float, toeplitz: bool):
        """``C_j = K_j + jitter I`` with their Cholesky factors (:class:`SPDFactor`, closed-form
        gradients); None when one fails."""
        chols = []
        for j in range(len(self.axes)):
            C = self.kmat(j, 0, toeplitz).clone()
            C.diagonal().add_(jitter)
            L, info = torch.linalg.cholesky_ex(C.detach())
            if int(info) != 0 or not bool(torch.isfinite(L).all()):
                return None
            chols.append(SPDFactor(C, L))
        return chols

    def jet(self, chols, jet: Sequence[tuple[int, ...]], toeplitz: bool) -> list[torch.Tensor]:
        """Grid values of ``D^alpha u`` for each multi-index (order 0 along an axis = identity)."""
        out = []
        for alpha in jet:
            V = self.U
            for j, n in enumerate(alpha):
                if n == 0:
                    continue
                V = mode_product(mode_cholesky_solve(V, chols[j], j), self.kmat(j, n, toeplitz), j)
            out.append(V)
        return out


class HMPredictor:
    """``u(x) = sum_GPs k(x, grid) C^{-1} vec U``; ``__call__(points (N, d), alpha) -> (N,)``."""

    def __init__(
        self, gps: Sequence[_GridGP], chols: Sequence[Sequence[torch.Tensor]], jitter: float
    ):
        self.gps = list(gps)
        self.jitter = float(jitter)
        self.chols = [[cholesky_factor(L) for L in c] for c in chols]
        self.dim = len(self.gps[0].axes)

    def _factor(self, gp: _GridGP, L, j: int, x: torch.Tensor, n: int) -> torch.Tensor:
        Kx = gp.kernels[j].matrix(x, gp.axes[j], n)  # (N, M_j)
        return torch.cholesky_solve(Kx.T, L).T

    def __call__(self, points: torch.Tensor, derivative: tuple[int, ...]) -> torch.Tensor:
        points = points.to(self.gps[0].U.device)
        total = 0.0
        for gp, chols in zip(self.gps, self.chols):
            factors = [
                self._factor(gp, chols[j], j, points[:, j], derivative[j]) for j in range(self.dim)
            ]
            total = total + contract_points(factors, gp.U.detach())
        return total

    def on_grid(self, axes: Sequence[torch.Tensor], derivative: tuple[int, ...] | None = None):
        """Values on the tensor grid spanned by ``axes`` (``(len(a_1), ..., len(a_d))``)."""
        derivative = derivative or (0,) * self.dim
        total = 0.0
        for gp, chols in zip(self.gps, self.chols):
            V = gp.U.detach()
            for j in range(self.dim):
                V = mode_product(V, self._factor(gp, chols[j], j, axes[j], derivative[j]), j)
            total = total + V
        return total

    def state(self) -> dict[str, torch.Tensor]:
        out = {"jitter": torch.tensor([self.jitter], dtype=F64)}
        for g, gp in enumerate(self.gps):
            out[f"gp{g}.U"] = gp.U.detach()
            for j, (k, a) in enumerate(zip(gp.kernels, gp.axes)):
                out[f"gp{g}.axis{j}"] = a
                for name, p in k.named_parameters():
                    out[f"gp{g}.k{j}.{name}"] = p.detach()
            out[f"gp{g}.kinds"] = torch.tensor([_KIND[type(k)] for k in gp.kernels])
            out[f"gp{g}.nu"] = torch.tensor([getattr(k, "nu", 0.0) for k in gp.kernels], dtype=F64)
        return out


_KIND = {GaussianMixture1d: 0, StudentTMixture1d: 1, SE1d: 0, Matern1d: 1}


def _eye_chols(gps):
    return [torch.eye(a.numel(), dtype=F64, device=a.device) for a in gps[0].axes]


def _predictor_from(gps, jitter: float, toeplitz: bool) -> HMPredictor:
    chols_all = []
    for gp in gps:
        eps = jitter
        for _ in range(6):
            chols = gp.factorise(eps, toeplitz)
            if chols is not None:
                break
            eps *= 10
        chols_all.append(chols or _eye_chols([gp]))
    return HMPredictor(gps, chols_all, jitter)
