"""Preconditioners ``z = M r ≈ A^{-1} r`` behind one interface.

Classical, algebraic-multigrid and learned preconditioners all implement
:class:`AbstractPreconditioner`, so ``pcg(A, b, M=amg)`` and ``pcg(A, b, M=network)`` are the
same call. Vectors are numpy float64 of shape (n,); set-up happens in the constructor and its
wall time is kept in ``setup_seconds``.

>>> from neuralops.solvers import gallery
>>> A = gallery.poisson((16, 16))
>>> M = make_preconditioner("ic0", A)
>>> M.name, M.symmetric, M.apply(np.ones(256)).shape
('ic0', True, (256,))
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from neuralops.solvers.operators import as_operator

__all__ = [
    "AbstractPreconditioner",
    "Identity",
    "Jacobi",
    "IC0",
    "ILU",
    "ASM",
    "AMG",
    "NetworkPreconditioner",
    "PRECONDITIONERS",
    "make_preconditioner",
]

from neuralops.solvers._pcbase import (  # noqa: E402  (re-exported)
    AbstractPreconditioner,
    _csr,
)
from neuralops.solvers.amg import AMG  # noqa: E402


class Identity(AbstractPreconditioner):
    """``z = r`` (returns ``r`` itself, no copy). ``A``: a matrix/operator or its size n."""

    name = "identity"
    accepts_torch = True

    def __init__(self, A: Any) -> None:
        self.n = int(A) if isinstance(A, int | np.integer) else int(A.shape[0])

    def apply(self, r: np.ndarray) -> np.ndarray:
        return r

    def apply_block(self, R: np.ndarray) -> np.ndarray:
        return np.array(R, dtype=np.float64)


class Jacobi(AbstractPreconditioner):
    """Diagonal scaling ``z = r / diag(A)``; ``A`` needs a nonzero diagonal.

    >>> Jacobi(np.diag([2.0, 4.0])).apply(np.array([2.0, 2.0]))
    array([1. , 0.5])
    """

    name = "jacobi"

    def __init__(self, A: Any) -> None:
        t0 = time.perf_counter()
        d = np.asarray(as_operator(A).diagonal(), dtype=np.float64)
        bad = ~np.isfinite(d) | (d == 0)
        if bad.any():
            raise ValueError(
                f"Jacobi needs a finite nonzero diagonal; A has {int(bad.sum())} zero/non-finite "
                f"diagonal entries (first at row {int(np.argmax(bad))})"
            )
        self.inv_diag = 1.0 / d
        self.symmetric = True
        self.setup_seconds = time.perf_counter() - t0

    def apply(self, r: np.ndarray) -> np.ndarray:
        return self.inv_diag * r if r.ndim == 1 else self.inv_diag[:, None] * r

    apply_block = apply


def _ic0_factor(A: sp.csr_matrix, shift: float) -> sp.csc_matrix:
    """Lower factor L (CSC) of IC(0): ``L L^T ≈ A`` on the pattern of ``tril(A)``.

    Right-looking column algorithm. The update triples (target entry, two source entries) are
    built vectorised; the sequential part is a plain loop over columns and triples.
    """
    n = A.shape[0]
    L = sp.csc_matrix(sp.tril(A))
    L.sort_indices()
    indptr, rows = L.indptr.astype(np.int64), L.indices.astype(np.int64)
    counts = np.diff(indptr)
    cols_of = np.repeat(np.arange(n, dtype=np.int64), counts)
    has_diag = (counts > 0) & (rows[np.minimum(indptr[:-1], max(len(rows) - 1, 0))] == np.arange(n))
    if not has_diag.all():
        raise ValueError(
            f"IC(0) needs a nonzero diagonal; row {int(np.argmin(has_diag))} of A has none"
        )
    data = L.data.astype(np.float64)
    if shift:
        data[indptr[:-1]] *= 1.0 + shift
    # pairs (e, f) of off-diagonal entries of one column k, rows i = rows[e] >= l = rows[f]
    local = np.arange(len(rows), dtype=np.int64) - indptr[cols_of]
    e_off = np.flatnonzero(local > 0)
    reps = local[e_off]
    E = np.repeat(e_off, reps)
    first = np.repeat(indptr[cols_of[e_off]] + 1, reps)
    within = np.arange(len(E), dtype=np.int64) - np.repeat(np.cumsum(reps) - reps, reps)
    F = first + within
    keys = cols_of * n + rows  # sorted: CSC with sorted row indices
    want = rows[F] * n + rows[E]  # entry (i, l) lives in column l = rows[F]
    pos = np.searchsorted(keys, want)
    pos_c = np.minimum(pos, len(keys) - 1)
    found = keys[pos_c] == want
    T, E, F = pos_c[found], E[found], F[found]
    tptr = np.searchsorted(cols_of[E], np.arange(n + 1)).tolist()
    d, ip = data.tolist(), indptr.tolist()
    Tl, El, Fl = T.tolist(), E.tolist(), F.tolist()
    sqrt = math.sqrt
    for k in range(n):
        s, e = ip[k], ip[k + 1]
        piv = d[s]
        if not piv > 0.0:
            raise ValueError(
                f"IC(0) broke down at row {k} (pivot {piv:.3e} <= 0): A is not SPD or not "
                "diagonally dominant enough; try IC0(A, shift=0.01) or 'ilu'"
            )
        piv = sqrt(piv)
        d[s] = piv
        inv = 1.0 / piv
        for q in range(s + 1, e):
            d[q] *= inv
        for t in range(tptr[k], tptr[k + 1]):
            d[Tl[t]] -= d[El[t]] * d[Fl[t]]
    return sp.csc_matrix((np.asarray(d), L.indices, L.indptr), shape=(n, n))


class IC0(AbstractPreconditioner):
    """Incomplete Cholesky with zero fill: ``M = L L^T`` with L on the pattern of ``tril(A)``.

    Implemented here (no numba): the update pattern is built vectorised, the elimination is a
    loop over columns (about 0.3 s for a 2-D Poisson matrix with n = 1e5). ``apply`` does both
    triangular solves in one call of SuperLU's compiled ``gstrs``. ``shift`` factors
    ``A + shift * diag(A)`` (Manteuffel) when plain IC(0) breaks down. ``L`` is the factor (CSR).

    >>> import scipy.sparse as sp
    >>> A = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(4, 4))
    >>> L = IC0(A).L.toarray()
    >>> bool(np.allclose(L @ L.T, A.toarray()))  # tridiagonal: no fill, IC(0) is exact
    True
    """

    name = "ic0"
    symmetric = True

    def __init__(self, A: Any, *, shift: float = 0.0) -> None:
        t0 = time.perf_counter()
        if shift < 0:
            raise ValueError(f"shift must be >= 0, got {shift}")
        Acsr = _csr(A, "IC0")
        Lc = _ic0_factor(Acsr, shift)
        self.L = Lc.tocsr()
        n = Acsr.shape[0]
        dg = Lc.diagonal()
        # SuperLU convention: L unit lower (strict part stored) with U's diagonal (d^2) on its
        # diagonal; U = strictly upper part of D L^T.  L L^T = (L D^-1) (D L^T).
        Lu = sp.csc_matrix(sp.tril(Lc @ sp.diags(1.0 / dg), -1) + sp.diags(dg * dg))
        Uu = sp.csc_matrix(sp.triu(sp.diags(dg) @ Lc.T, 1))
        Lu.sort_indices()
        Uu.sort_indices()
        self._n, self._Lu, self._Uu = n, Lu, Uu
        self._idx = [m.indices.astype(np.intc) for m in (Lu, Uu)]
        self._ptr = [m.indptr.astype(np.intc) for m in (Lu, Uu)]
        try:
            from scipy.sparse.linalg._dsolve import _superlu

            self._gstrs = _superlu.gstrs
        except ImportError:  # pragma: no cover - private scipy API moved
            self._gstrs = None
        self.setup_seconds = time.perf_counter() - t0

    def apply(self, r: np.ndarray) -> np.ndarray:
        r = np.array(r, dtype=np.float64)  # gstrs overwrites its right-hand side
        if self._gstrs is None:  # pragma: no cover
            y = spla.spsolve_triangular(self.L, r, lower=True)
            return spla.spsolve_triangular(sp.csr_matrix(self.L.T), y, lower=False)
        (li, ui), (lp, up) = self._idx, self._ptr
        n, Lu, Uu = self._n, self._Lu, self._Uu
        z, info = self._gstrs("N", n, Lu.nnz, Lu.data, li, lp, n, Uu.nnz, Uu.data, ui, up, r)
        return z

    def apply_block(self, R: np.ndarray) -> np.ndarray:
        if self._gstrs is None:  # pragma: no cover
            return super().apply_block(R)
        Z = np.array(R, dtype=np.float64, order="F")  # one compiled call for all k columns
        (li, ui), (lp, up) = self._idx, self._ptr
        n, Lu, Uu = self._n, self._Lu, self._Uu
        Z, info = self._gstrs("N", n, Lu.nnz, Lu.data, li, lp, n, Uu.nnz, Uu.data, ui, up, Z)
        return Z

    def __repr__(self) -> str:
        return f"IC0(n={self._n}, nnz(L)={self.L.nnz}, setup_seconds={self.setup_seconds:.3g})"


class ILU(AbstractPreconditioner):
    """Incomplete LU from scipy's ``spilu`` (SuperLU ILUTP, with row pivoting and column
    permutation, so ``M`` is not symmetric). ``drop_tol``/``fill_factor`` as in scipy."""

    name = "ilu"
    symmetric = False

    def __init__(self, A: Any, *, drop_tol: float = 1e-4, fill_factor: float = 10.0) -> None:
        t0 = time.perf_counter()
        Acsc = sp.csc_matrix(_csr(A, "ILU"))
        try:
            self._lu = spla.spilu(Acsc, drop_tol=drop_tol, fill_factor=fill_factor)
        except RuntimeError as exc:
            raise ValueError(
                f"ILU factorisation of A failed ({exc}); A is singular or needs a smaller "
                "drop_tol / larger fill_factor"
            ) from exc
        self.drop_tol, self.fill_factor = drop_tol, fill_factor
        self.setup_seconds = time.perf_counter() - t0

    def apply(self, r: np.ndarray) -> np.ndarray:
        return self._lu.solve(np.asarray(r, dtype=np.float64))

    apply_block = apply  # SuperLU solves a block of right-hand sides in one call

    def __repr__(self) -> str:
        nnz = self._lu.L.nnz + self._lu.U.nnz
        return (
            f"ILU(n={self._lu.shape[0]}, nnz(L+U)={nnz}, drop_tol={self.drop_tol:g}, "
            f"fill_factor={self.fill_factor:g}, setup_seconds={self.setup_seconds:.3g})"
        )


class ASM(AbstractPreconditioner):
    """Additive Schwarz: ``M = sum_i R_i^T A_i^{-1} R_i`` over overlapping subdomains.

    The unknowns are split into ``n_subdomains`` contiguous index blocks (strips of a grid in
    natural ordering; pass ``labels`` (n,) to give your own partition), each grown by ``overlap``
    layers of matrix-graph neighbours; ``A_i = R_i A R_i^T`` is factorised once (SuperLU, exact
    subdomain solves; ``sub_solver="ilu0"``: an incomplete LU with no room for fill per
    subdomain, PETSc's default sub-solver). ``restricted=True`` is restricted additive Schwarz
    (RAS, PETSc's default ``PCASM`` type): the prolongation keeps only each subdomain's own, non-overlapping unknowns,
    which converges faster in GMRES but is not symmetric; the default (classical ASM) is
    symmetric for symmetric ``A`` and usable in PCG. There is no coarse space, so iteration
    counts grow with the number of subdomains: a one-level method, as in the SKR paper's runs.

    >>> from neuralops.solvers import gallery
    >>> A = gallery.poisson((12, 12))
    >>> M = ASM(A, n_subdomains=1)            # one subdomain: the exact inverse
    >>> bool(np.allclose(A @ M.apply(np.ones(144)), 1.0))
    True
    >>> ASM(A, n_subdomains=4, overlap=2).sizes    # 36 own unknowns + 2 layers on each inner side
    [60, 84, 84, 60]
    """

    name = "asm"

    def __init__(
        self,
        A: Any,
        *,
        n_subdomains: int = 8,
        overlap: int = 1,
        restricted: bool = False,
        labels: np.ndarray | None = None,
        sub_solver: str = "lu",
    ) -> None:
        t0 = time.perf_counter()
        if sub_solver not in ("lu", "ilu0"):
            raise ValueError(
                f"ASM sub_solver must be 'lu' (exact subdomain solves) or 'ilu0' (PETSc's "
                f"default: incomplete LU without fill), got {sub_solver!r}"
            )
        Acsr = _csr(A, "ASM")
        n = Acsr.shape[0]
        if labels is None:
            if not isinstance(n_subdomains, int | np.integer) or not 1 <= n_subdomains <= n:
                raise ValueError(
                    f"ASM n_subdomains must be an integer in [1, n={n}], got {n_subdomains!r}"
                )
            labels = np.minimum(np.arange(n) * n_subdomains // n, n_subdomains - 1)
        labels = np.asarray(labels)
        if labels.shape != (n,) or labels.dtype.kind not in "iu":
            raise ValueError(
                f"ASM labels must be integers of shape ({n},), got {labels.dtype} {labels.shape}"
            )
        if not isinstance(overlap, int | np.integer) or overlap < 0:
            raise ValueError(f"ASM overlap must be an integer >= 0, got {overlap!r}")
        graph = (abs(Acsr) + abs(Acsr.T)).tocsr().astype(bool)
        self._parts: list[tuple[np.ndarray, np.ndarray, Any]] = []
        for lab in np.unique(labels):
            own = np.flatnonzero(labels == lab)
            mask = np.zeros(n, dtype=bool)
            mask[own] = True
            for _ in range(int(overlap)):
                mask = _neighbours(graph, mask)
            idx = np.flatnonzero(mask)
            sub = Acsr[idx][:, idx].tocsc()
            try:
                if sub_solver == "lu":
                    lu = spla.splu(sub)
                else:
                    lu = spla.spilu(sub, drop_tol=0.0, fill_factor=1.0)
            except RuntimeError as exc:
                raise ValueError(
                    f"ASM: the subdomain block {lab} ({idx.size} unknowns) is singular ({exc}); "
                    "use more overlap or fewer subdomains"
                ) from exc
            keep = np.isin(idx, own) if restricted else None
            self._parts.append((idx, keep, lu))
        self.n, self.overlap, self.restricted = n, int(overlap), bool(restricted)
        self.sub_solver = sub_solver
        self.symmetric = not restricted
        self.name = "ras" if restricted else "asm"
        self.setup_seconds = time.perf_counter() - t0

    @property
    def sizes(self) -> list[int]:
        """Unknowns per subdomain, overlap included."""
        return [int(idx.size) for idx, _, _ in self._parts]

    def apply(self, r: np.ndarray) -> np.ndarray:
        r = np.asarray(r, dtype=np.float64)
        z = np.zeros_like(r)
        for idx, keep, lu in self._parts:
            zi = lu.solve(r[idx])
            if keep is None:
                z[idx] += zi
            else:
                z[idx[keep]] += zi[keep]
        return z

    apply_block = apply  # the subdomain LU solves take a block

    def __repr__(self) -> str:
        return (
            f"ASM(n={self.n}, subdomains={len(self._parts)}, overlap={self.overlap}, "
            f"restricted={self.restricted}, setup_seconds={self.setup_seconds:.3g})"
        )


def _neighbours(graph: sp.csr_matrix, mask: np.ndarray) -> np.ndarray:
    """``mask`` grown by one layer of graph neighbours."""
    return mask | (graph.T @ mask.astype(np.int8) > 0)


class NetworkPreconditioner(AbstractPreconditioner):
    """A torch module used as ``M``: ``z = net(r)`` on the grid.

    ``module`` maps (batch, 1, *grid_shape) -> (batch, 1, *grid_shape); vectors are the
    flattened grid, shape (n,) with n = prod(grid_shape), C order. ``mask`` (grid_shape, bool,
    True = unknown) zeroes inactive cells in input and output. With ``normalize`` the input is
    scaled to unit norm and the output scaled back, so ``M`` is positively homogeneous even for a
    nonlinear network. Not symmetric: use flexible GMRES (``GMRES(flexible=True)``) or DCDM.
    numpy in -> numpy float64 out; torch in -> torch out (same device and dtype). The module is
    used as given (call ``module.eval()`` first); it runs under ``torch.no_grad()``.
    """

    name = "network"
    symmetric = False
    accepts_torch = True

    def __init__(
        self,
        module: Any,
        grid_shape: tuple[int, ...],
        *,
        mask: np.ndarray | None = None,
        normalize: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        import torch

        t0 = time.perf_counter()
        if not callable(module):
            raise TypeError(f"module must be a callable torch module, got {type(module).__name__}")
        self.grid_shape = tuple(int(s) for s in grid_shape)
        if not self.grid_shape or min(self.grid_shape) < 1:
            raise ValueError(f"grid_shape must be positive sizes, got {grid_shape}")
        self.n = math.prod(self.grid_shape)
        param = next(iter(module.parameters()), None) if hasattr(module, "parameters") else None
        self.device = (
            torch.device(device)
            if device is not None
            else (param.device if param is not None else torch.device("cpu"))
        )
        self.dtype = dtype or (param.dtype if param is not None else torch.float64)
        self._mask = None
        if mask is not None:
            mask = np.asarray(mask, dtype=bool)
            if mask.shape != self.grid_shape:
                raise ValueError(
                    f"mask has shape {mask.shape}, expected grid_shape {self.grid_shape}"
                )
            self._mask = torch.as_tensor(mask.reshape(-1), device=self.device)
        self.module, self.normalize = module, normalize
        self.setup_seconds = time.perf_counter() - t0

    def apply(self, r: Any) -> Any:
        import torch

        numpy_in = not isinstance(r, torch.Tensor)
        t = torch.as_tensor(np.asarray(r) if numpy_in else r)
        out_device, out_dtype = t.device, (torch.float64 if numpy_in else t.dtype)
        if t.shape != (self.n,):
            raise ValueError(
                f"r has shape {tuple(t.shape)}, expected ({self.n},) = grid {self.grid_shape}"
            )
        t = t.to(device=self.device, dtype=self.dtype)
        if self._mask is not None:
            t = t * self._mask
        scale = float(torch.linalg.vector_norm(t)) if self.normalize else 1.0
        if scale == 0.0:
            z = torch.zeros_like(t)
        else:
            with torch.no_grad():
                y = self.module((t / scale).reshape(1, 1, *self.grid_shape))
            if tuple(y.shape) != (1, 1, *self.grid_shape):
                raise ValueError(
                    f"module output has shape {tuple(y.shape)}, expected {(1, 1, *self.grid_shape)} "
                    "(the network must map the grid to itself)"
                )
            z = y.reshape(self.n) * scale
        if self._mask is not None:
            z = z * self._mask
        z = z.to(device=out_device, dtype=out_dtype)
        return z.cpu().numpy() if numpy_in else z

    def __repr__(self) -> str:
        masked = "" if self._mask is None else f", active={int(self._mask.sum())}"
        return (
            f"NetworkPreconditioner({type(self.module).__name__}, grid={self.grid_shape}"
            f"{masked}, device={self.device}, dtype={self.dtype})"
        )


def _relax(cls_name: str) -> Callable[..., AbstractPreconditioner]:
    def build(A: Any, **kw: Any) -> AbstractPreconditioner:
        import importlib

        try:
            relax = importlib.import_module("neuralops.solvers.relax")
        except ImportError as exc:
            raise ImportError(f"{cls_name} lives in neuralops.solvers.relax: {exc}") from exc
        if not hasattr(relax, cls_name):
            raise ImportError(f"neuralops.solvers.relax does not define {cls_name} yet")
        return getattr(relax, cls_name)(A, **kw)

    build.__name__ = f"build_{cls_name}"
    return build


#: name -> factory ``(A, **options) -> preconditioner``; "none" is the identity.
PRECONDITIONERS: dict[str, Callable[..., AbstractPreconditioner]] = {
    "none": Identity,
    "identity": Identity,
    "jacobi": Jacobi,
    "ic0": IC0,
    "ilu": ILU,
    "asm": ASM,
    "ras": lambda A, **kw: ASM(A, restricted=True, **kw),
    "amg": AMG,
    "sor": _relax("SORPreconditioner"),
    "ssor": _relax("SSORPreconditioner"),
}


def make_preconditioner(name: str, A: Any, **kw: Any) -> AbstractPreconditioner:
    """Build the preconditioner ``name`` (see :data:`PRECONDITIONERS`) for the matrix ``A``;
    keywords go to its constructor (``drop_tol=`` for ILU, ``kind="rs"`` for AMG, ...)."""
    if name not in PRECONDITIONERS:
        raise ValueError(f"unknown preconditioner {name!r}; choose one of {list(PRECONDITIONERS)}")
    return PRECONDITIONERS[name](A, **kw)
