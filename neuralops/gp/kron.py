"""Kronecker-structured Gaussian algebra on tensor grids.

A field on an ``M_1 x ... x M_d`` grid is a tensor ``U`` of that shape; ``vec U`` is its C-order
flattening, so ``(A_1 kron ... kron A_d) vec U = vec(U x_1 A_1 ... x_d A_d)`` with the mode product
``x_j`` of :func:`mode_product`. Nothing here forms a Kronecker product except :func:`dense`
(used by tests and the small-grid polish).

>>> import torch
>>> A, B = torch.rand(3, 3, dtype=torch.float64), torch.rand(4, 4, dtype=torch.float64)
>>> U = torch.rand(3, 4, dtype=torch.float64)
>>> v = torch.kron(A, B) @ U.reshape(-1)
>>> bool(torch.allclose(v, kron_apply([A, B], U).reshape(-1)))
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__ = [
    "SPDFactor",
    "cholesky_factor",
    "mode_product",
    "mode_cholesky_solve",
    "mode_triangular_solve",
    "kron_apply",
    "kron_quadform",
    "kron_logdet",
    "dense",
    "contract_points",
]


class _SPDSolve(torch.autograd.Function):
    """``X = C^{-1} B`` with the Cholesky factor given; gradients in closed form:
    ``dB = C^{-1} dX`` and ``dC = -(C^{-1} dX) X^T``, O(M^2 k) for a ``(M, k)`` right-hand side
    instead of autograd's O(M^3) pass through the factorisation."""

    @staticmethod
    def forward(ctx, C, B, L):
        X = torch.cholesky_solve(B, L)
        ctx.save_for_backward(L, X)
        return X

    @staticmethod
    def backward(ctx, gX):
        L, X = ctx.saved_tensors
        Y = torch.cholesky_solve(gX, L)
        gC = torch.mm(Y.neg(), X.mT) if ctx.needs_input_grad[0] else None  # negate the thin side
        return gC, (Y if ctx.needs_input_grad[1] else None), None


class _SPDLogdet(torch.autograd.Function):
    """``log det C`` from its Cholesky factor; ``dC = C^{-1}`` (one ``cholesky_inverse``)."""

    @staticmethod
    def forward(ctx, C, L):
        ctx.save_for_backward(L)
        return 2.0 * torch.log(L.diagonal()).sum()

    @staticmethod
    def backward(ctx, g):
        (L,) = ctx.saved_tensors
        return torch.cholesky_inverse(L).mul_(g), None


class SPDFactor:
    """An SPD matrix ``C`` that carries autograd, with its Cholesky factor ``L`` (no graph).

    Solves and the log-determinant differentiate with respect to ``C`` in closed form, so a
    training step costs one Cholesky plus, for the log-determinant, one ``cholesky_inverse``;
    autograd through ``cholesky`` and ``cholesky_solve`` would add several O(M^3) products and
    triangular solves. Every function here that takes Cholesky factors also takes these.
    """

    __slots__ = ("C", "L")

    def __init__(self, C: torch.Tensor, L: torch.Tensor):
        self.C, self.L = C, L.detach()

    @property
    def shape(self):
        return self.L.shape

    def solve(self, B: torch.Tensor) -> torch.Tensor:
        """``C^{-1} B`` for ``B`` of shape ``(M, k)``."""
        return _SPDSolve.apply(self.C, B, self.L)

    def logdet(self) -> torch.Tensor:
        return _SPDLogdet.apply(self.C, self.L)


def cholesky_factor(F) -> torch.Tensor:
    """The plain Cholesky factor of ``F`` (an :class:`SPDFactor` or already a factor)."""
    return F.L if isinstance(F, SPDFactor) else F


def mode_product(U: torch.Tensor, A: torch.Tensor, axis: int) -> torch.Tensor:
    """``U x_axis A``: apply ``A`` (``(P, M_axis)``) along ``axis``; that axis becomes length P."""
    return torch.movedim(torch.tensordot(A, U, dims=([1], [axis])), 0, axis)


def _along(U: torch.Tensor, axis: int, fn) -> torch.Tensor:
    moved = torch.movedim(U, axis, 0)
    shape = moved.shape
    out = fn(moved.reshape(shape[0], -1))
    return torch.movedim(out.reshape(shape), 0, axis)


def mode_triangular_solve(U: torch.Tensor, L: torch.Tensor, axis: int) -> torch.Tensor:
    """``U x_axis L^{-1}`` for lower-triangular ``L``."""
    return _along(U, axis, lambda X: torch.linalg.solve_triangular(L, X, upper=False))


def mode_cholesky_solve(U: torch.Tensor, L, axis: int) -> torch.Tensor:
    """``U x_axis C^{-1}`` with ``C = L L^T`` (``L`` a factor or an :class:`SPDFactor`)."""
    if isinstance(L, SPDFactor):
        return _along(U, axis, L.solve)
    return _along(U, axis, lambda X: torch.cholesky_solve(X, L))


def kron_apply(mats: Sequence[torch.Tensor | None], U: torch.Tensor) -> torch.Tensor:
    """``(A_1 kron ... kron A_d) vec U`` as a grid tensor; ``None`` factors are identities."""
    for j, A in enumerate(mats):
        if A is not None:
            U = mode_product(U, A, j)
    return U


def kron_quadform(chols: Sequence, U: torch.Tensor) -> torch.Tensor:
    """``vec(U)^T (C_1 kron ... kron C_d)^{-1} vec(U)`` from the Cholesky factors ``L_j`` (or
    :class:`SPDFactor` s, which take the closed-form gradient)."""
    if any(isinstance(L, SPDFactor) for L in chols):
        V = U
        for j, L in enumerate(chols):
            V = mode_cholesky_solve(V, L, j)
        return (U * V).sum()
    for j, L in enumerate(chols):
        U = mode_triangular_solve(U, L, j)
    return (U * U).sum()


def kron_logdet(chols: Sequence) -> torch.Tensor:
    """``log det(C_1 kron ... kron C_d) = sum_j (M / M_j) log det C_j``."""
    sizes = [L.shape[0] for L in chols]
    m = math.prod(sizes)
    return sum(
        (m // mj)
        * (L.logdet() if isinstance(L, SPDFactor) else 2.0 * torch.log(L.diagonal()).sum())
        for L, mj in zip(chols, sizes)
    )


def dense(mats: Sequence[torch.Tensor]) -> torch.Tensor:
    """The explicit Kronecker product (tests and small grids only)."""
    out = mats[0]
    for A in mats[1:]:
        out = torch.kron(out, A)
    return out


def contract_points(factors: Sequence[torch.Tensor], U: torch.Tensor) -> torch.Tensor:
    """``u_n = sum_i prod_j F_j[n, i_j] U[i]`` for N scattered points: ``F_j`` is ``(N, M_j)``.

    Cost O(N M), never the ``(N, M)`` interpolation matrix.
    """
    T = factors[0] @ U.reshape(U.shape[0], -1)  # (N, M_2 ... M_d)
    for j in range(1, len(factors)):
        T = T.reshape(T.shape[0], factors[j].shape[1], -1)
        T = torch.einsum("nk...,nk->n...", T, factors[j])
    return T.reshape(-1)
