"""Standard test matrices shared by tests, docs and benchmarks (in the spirit of pyamg.gallery).

Grid problems live on the interior points of a uniform grid on the unit square/cube with
homogeneous Dirichlet boundaries, unknowns in C (row-major) order; they are returned as scipy
CSR float64 matrices of shape (n, n), n = prod(shape), **scaled by h²** (stencil entries O(1),
like pyamg's ``poisson``). ``from_spec("poisson:64x64")`` builds one from a short string (CLI).

>>> A = poisson((3, 3))
>>> A.shape, A.diagonal()[0], A.nnz
((9, 9), np.float64(4.0), 33)
>>> from_spec("convection_diffusion:8x8,eps=0.1").shape
(64, 64)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

__all__ = [
    "poisson",
    "convection_diffusion",
    "anisotropic",
    "shifted_laplacian",
    "random_spd",
    "random_sparse",
    "spd_with_eigenvalues",
    "from_spec",
    "GALLERY",
]


def _shape(shape: int | Sequence[int], dims: tuple[int, ...] = (1, 2, 3)) -> tuple[int, ...]:
    s = (int(shape), int(shape)) if isinstance(shape, int | np.integer) else tuple(map(int, shape))
    if len(s) not in dims or min(s) < 1:
        raise ValueError(f"shape must be {dims}-dimensional with sizes >= 1, got {shape!r}")
    return s


def _second_difference(m: int) -> sp.csr_matrix:
    return sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(m, m), format="csr")


def _kron_sum(mats: list[sp.spmatrix]) -> sp.csr_matrix:
    """``sum_d I ⊗ ... ⊗ T_d ⊗ ... ⊗ I`` in C order (last axis fastest)."""
    sizes = [m.shape[0] for m in mats]
    total = sp.csr_matrix((math.prod(sizes), math.prod(sizes)))
    for d, T in enumerate(mats):
        left = sp.eye(math.prod(sizes[:d]), format="csr")
        right = sp.eye(math.prod(sizes[d + 1 :]), format="csr")
        total = total + sp.kron(sp.kron(left, T), right)
    return sp.csr_matrix(total)


def poisson(shape: int | Sequence[int]) -> sp.csr_matrix:
    """Negative Laplacian, 3/5/7-point stencil (2 d on the diagonal, -1 off), SPD.

    ``shape``: (nx,), (nx, ny), (nx, ny, nz) interior points, or an int for a square grid.
    """
    return _kron_sum([_second_difference(m) for m in _shape(shape)])


def convection_diffusion(
    n: int | Sequence[int], wind: Sequence[float] = (1.0, 0.5), eps: float = 0.01
) -> sp.csr_matrix:
    """``-eps Δu + w·∇u`` on an n x n grid, first-order upwind convection, times h² (nonsymmetric).

    ``wind`` (w_x, w_y) per axis; ``eps > 0`` the diffusion. Cell Péclet number |w| h / (2 eps).
    """
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    s = _shape(n, (2,))
    if len(wind) != 2:
        raise ValueError(f"wind must have 2 components, got {wind!r}")
    mats = []
    for m, w in zip(s, wind):
        h = 1.0 / (m + 1)
        T = eps * _second_difference(m)
        # upwind: w > 0 uses the backward difference (u_i - u_{i-1}) / h, times h^2
        if w >= 0:
            U = sp.diags([-w * h, w * h], [-1, 0], shape=(m, m))
        else:
            U = sp.diags([w * h, -w * h], [0, 1], shape=(m, m))
        mats.append(T + U)
    return _kron_sum(mats)


def anisotropic(n: int | Sequence[int], eps: float = 1e-3, theta: float = 0.0) -> sp.csr_matrix:
    """Rotated anisotropic diffusion ``-div(D ∇u)``, D = R(θ) diag(1, eps) R(θ)ᵀ, 9-point FD
    stencil times h² (symmetric; for θ = 0 the 5-point ``-u_xx - eps u_yy``)."""
    s = _shape(n, (2,))
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    C, S = math.cos(theta), math.sin(theta)
    a, b, c = C * C + eps * S * S, S * S + eps * C * C, (1.0 - eps) * C * S
    A = a * _kron_sum([_second_difference(s[0]), sp.csr_matrix((s[1], s[1]))])
    A = A + b * _kron_sum([sp.csr_matrix((s[0], s[0])), _second_difference(s[1])])
    if c != 0.0:
        # -2c u_xy with the central difference (u_{++} - u_{+-} - u_{-+} + u_{--}) / 4
        D0 = [sp.diags([-1.0, 1.0], [-1, 1], shape=(m, m)) for m in s]
        A = A - (c / 2.0) * sp.kron(D0[0], D0[1])
    return sp.csr_matrix(A)


def shifted_laplacian(shape: int | Sequence[int], k: float = 10.0) -> sp.csr_matrix:
    """Helmholtz-like ``-Δu - k² u`` (times h²): symmetric, indefinite once k² exceeds the
    smallest Laplacian eigenvalue (≈ d π²). Uses h = 1 / (nx + 1) of the first axis."""
    s = _shape(shape)
    h = 1.0 / (s[0] + 1)
    A = poisson(s)
    return sp.csr_matrix(A - (k * h) ** 2 * sp.eye(A.shape[0]))


def _rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def spd_with_eigenvalues(
    eigs: Sequence[float], rng: np.random.Generator | int | None = None
) -> np.ndarray:
    """Dense SPD ``Q diag(eigs) Qᵀ`` (n, n) with a random orthogonal Q; eigs must be > 0."""
    e = np.asarray(eigs, dtype=np.float64)
    if e.ndim != 1 or not np.all(e > 0):
        raise ValueError("eigs must be a 1-D array of positive eigenvalues")
    Q, R = np.linalg.qr(_rng(rng).standard_normal((e.size, e.size)))
    Q = Q * np.sign(np.diag(R))
    A = (Q * e) @ Q.T
    return (A + A.T) / 2.0


def random_spd(
    n: int, cond: float = 100.0, rng: np.random.Generator | int | None = None
) -> np.ndarray:
    """Dense SPD (n, n) with eigenvalues log-spaced in [1, cond] (condition number ``cond``)."""
    if n < 1 or not cond >= 1:
        raise ValueError(f"need n >= 1 and cond >= 1, got n={n}, cond={cond}")
    return spd_with_eigenvalues(np.geomspace(1.0, cond, n), rng)


def random_sparse(
    n: int,
    density: float = 0.01,
    *,
    symmetric: bool = False,
    dominance: float = 1.2,
    rng: np.random.Generator | int | None = None,
) -> sp.csr_matrix:
    """Random sparse (n, n) CSR, strictly diagonally dominant by the factor ``dominance`` > 1:
    nonsingular, and SPD when ``symmetric`` (positive diagonal)."""
    if not dominance > 1:
        raise ValueError(f"dominance must be > 1, got {dominance}")
    g = _rng(rng)
    B = sp.random(n, n, density=density, random_state=g, data_rvs=lambda k: g.uniform(-1, 1, k))
    B = sp.csr_matrix(B + B.T) if symmetric else sp.csr_matrix(B)
    B.setdiag(0.0)
    B.eliminate_zeros()
    rowsum = np.asarray(abs(B).sum(axis=1)).ravel()
    if not symmetric:
        rowsum = np.maximum(rowsum, np.asarray(abs(B).sum(axis=0)).ravel())
    return sp.csr_matrix(B + sp.diags(dominance * rowsum + 1.0))


#: name -> builder taking the grid shape and keyword options (for :func:`from_spec`)
GALLERY = {
    "poisson": poisson,
    "convection_diffusion": convection_diffusion,
    "anisotropic": anisotropic,
    "shifted_laplacian": shifted_laplacian,
}


def from_spec(spec: str) -> sp.csr_matrix:
    """Build a grid problem from ``"name:NXxNY[xNZ][,key=value...]"``, e.g.
    ``"poisson:64x64"``, ``"convection_diffusion:128x128,eps=0.005"``, ``"shifted_laplacian:32x32,k=20"``."""
    name, _, rest = spec.partition(":")
    if name not in GALLERY:
        raise ValueError(f"unknown gallery problem {name!r}; choose one of {list(GALLERY)}")
    parts = [p for p in rest.split(",") if p]
    if not parts:
        raise ValueError(f"gallery spec {spec!r} needs a grid size, e.g. {name}:64x64")
    try:
        shape = tuple(int(v) for v in parts[0].lower().split("x"))
        kw: dict[str, object] = {}
        for p in parts[1:]:
            key, _, val = p.partition("=")
            kw[key] = tuple(float(v) for v in val.split("/")) if "/" in val else float(val)
    except ValueError:
        raise ValueError(
            f"cannot parse gallery spec {spec!r}; expected name:NXxNY[,key=value], "
            "e.g. poisson:64x64 or convection_diffusion:64x64,wind=1/0.5"
        ) from None
    try:
        return GALLERY[name](shape, **kw)
    except TypeError as exc:
        raise ValueError(f"bad options in gallery spec {spec!r}: {exc}") from None
