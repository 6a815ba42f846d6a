"""One linear-operator interface over scipy sparse, dense arrays, torch CSR and matvec callables.

Solvers program against :class:`AbstractOperator` (``shape``, ``dtype``, ``matvec``), never a
concrete matrix type. ``matvec`` accepts one vector (n,) or a block of right-hand sides (n, k);
numpy in gives numpy out, torch in gives torch out on the same device.
Structure tags (``is_symmetric``, ``is_spd``) are ``None`` when unknown; CG checks them.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

__all__ = [
    "AbstractOperator",
    "MatrixOperator",
    "TorchCSROperator",
    "CallableOperator",
    "as_operator",
    "check_finite",
]


class AbstractOperator(abc.ABC):
    """A square linear operator ``x -> A x``."""

    shape: tuple[int, int]
    dtype: np.dtype
    is_symmetric: bool | None = None
    is_spd: bool | None = None

    @abc.abstractmethod
    def matvec(self, x):
        """``A @ x`` for x of shape (n,) or (n, k)."""

    def __matmul__(self, x):
        return self.matvec(x)

    @property
    def n(self) -> int:
        return self.shape[0]

    def diagonal(self) -> np.ndarray:
        raise TypeError(
            f"{type(self).__name__} has no explicit diagonal; pass a matrix for Jacobi/SOR/ILU"
        )

    def __repr__(self) -> str:
        tags = [t for t, v in (("symmetric", self.is_symmetric), ("spd", self.is_spd)) if v]
        return f"{type(self).__name__}(shape={self.shape}, dtype={self.dtype}" + (
            f", {', '.join(tags)})" if tags else ")"
        )


def check_finite(name: str, values) -> None:
    """Raise ``ValueError`` naming ``name`` when ``values`` hold NaN or Inf."""
    arr = values.data if sp.issparse(values) else values
    if not bool(np.all(np.isfinite(np.asarray(arr)))):
        raise ValueError(f"{name} contains NaN or Inf; check how it was assembled")


@dataclass(eq=False)
class MatrixOperator(AbstractOperator):
    """A scipy sparse matrix (stored as CSR) or a dense numpy array."""

    A: sp.csr_matrix | np.ndarray
    is_symmetric: bool | None = None
    is_spd: bool | None = None

    def __post_init__(self) -> None:
        if sp.issparse(self.A):
            self.A = sp.csr_matrix(self.A)
        else:
            self.A = np.asarray(self.A)
        if self.A.ndim != 2 or self.A.shape[0] != self.A.shape[1]:
            raise ValueError(f"A must be a square matrix, got shape {self.A.shape}")
        check_finite("A", self.A)
        self.shape = tuple(self.A.shape)
        self.dtype = np.dtype(self.A.dtype)
        if self.is_spd:
            self.is_symmetric = True

    def matvec(self, x):
        if _is_torch(x):
            import torch

            return torch.as_tensor(self.A @ x.detach().cpu().numpy(), device=x.device)
        return self.A @ x

    def diagonal(self) -> np.ndarray:
        return np.asarray(self.A.diagonal())

    @property
    def nnz(self) -> int:
        return int(self.A.nnz) if sp.issparse(self.A) else int(np.count_nonzero(self.A))

    def symmetry_defect(self) -> float:
        """``||A - A^T||_F / ||A||_F`` (0 for a symmetric matrix)."""
        A = self.A
        if sp.issparse(A):
            d, a = sp.linalg.norm(A - A.T), sp.linalg.norm(A)
        else:
            d, a = np.linalg.norm(A - A.T), np.linalg.norm(A)
        return float(d / a) if a else 0.0

    def __repr__(self) -> str:
        kind = "sparse" if sp.issparse(self.A) else "dense"
        return f"MatrixOperator({kind}, shape={self.shape}, nnz={self.nnz}, dtype={self.dtype})"


class TorchCSROperator(AbstractOperator):
    """A ``torch.sparse_csr_tensor`` (COO is converted: its matvec is ~50x slower)."""

    def __init__(self, A, *, is_symmetric: bool | None = None, is_spd: bool | None = None):
        import torch

        if A.layout == torch.sparse_coo:
            A = A.to_sparse_csr()
        if A.layout != torch.sparse_csr or A.ndim != 2 or A.shape[0] != A.shape[1]:
            raise ValueError(f"expected a square 2-D torch CSR tensor, got {A.layout} {A.shape}")
        self.A = A
        self.shape = (int(A.shape[0]), int(A.shape[1]))
        self.dtype = np.dtype(str(A.dtype).removeprefix("torch."))
        self.is_symmetric = True if is_spd else is_symmetric
        self.is_spd = is_spd

    def matvec(self, x):
        import torch

        numpy_in = not _is_torch(x)
        xt = torch.as_tensor(x, device=self.A.device, dtype=self.A.dtype)
        y = self.A @ xt if xt.ndim == 2 else (self.A @ xt[:, None])[:, 0]
        return y.cpu().numpy() if numpy_in else y

    def diagonal(self) -> np.ndarray:
        crow = self.A.crow_indices().cpu().numpy()
        col = self.A.col_indices().cpu().numpy()
        val = self.A.values().cpu().numpy()
        return sp.csr_matrix((val, col, crow), shape=self.shape).diagonal()


@dataclass(eq=False)
class CallableOperator(AbstractOperator):
    """A matrix-free operator given by ``matvec(x)`` and its size ``n``."""

    fn: Callable
    n_rows: int
    dtype: np.dtype = np.dtype(np.float64)
    is_symmetric: bool | None = None
    is_spd: bool | None = None

    def __post_init__(self) -> None:
        if self.n_rows < 1:
            raise ValueError(f"n must be >= 1, got {self.n_rows}")
        self.shape = (int(self.n_rows), int(self.n_rows))
        self.dtype = np.dtype(self.dtype)
        if self.is_spd:
            self.is_symmetric = True

    def matvec(self, x):
        if getattr(x, "ndim", 1) == 2:
            cols = [self.fn(x[:, j]) for j in range(x.shape[1])]
            if _is_torch(x):
                import torch

                return torch.stack(cols, dim=1)
            return np.stack(cols, axis=1)
        return self.fn(x)


def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch")


def as_operator(
    A, *, n: int | None = None, symmetric: bool | None = None, spd: bool | None = None
) -> AbstractOperator:
    """Wrap ``A`` (scipy sparse, numpy 2-D array, torch CSR/COO tensor, an operator, or a
    callable ``matvec`` with ``n=``) in the operator interface; ``symmetric``/``spd`` tag it."""
    if isinstance(A, AbstractOperator):
        if symmetric is not None:
            A.is_symmetric = symmetric
        if spd is not None:
            A.is_spd = spd
            A.is_symmetric = A.is_symmetric or spd
        return A
    if sp.issparse(A) or isinstance(A, np.ndarray):
        return MatrixOperator(A, is_symmetric=symmetric, is_spd=spd)
    if _is_torch(A):
        import torch

        if A.layout in (torch.sparse_csr, torch.sparse_coo):
            return TorchCSROperator(A, is_symmetric=symmetric, is_spd=spd)
        return MatrixOperator(A.detach().cpu().numpy(), is_symmetric=symmetric, is_spd=spd)
    if isinstance(A, sp.linalg.LinearOperator):
        return CallableOperator(A.matvec, A.shape[0], A.dtype, symmetric, spd)
    if callable(A):
        if n is None:
            raise ValueError("a matvec callable needs its size: as_operator(fn, n=...)")
        return CallableOperator(A, n, np.float64, symmetric, spd)
    raise TypeError(
        f"cannot use {type(A).__name__} as a linear operator; pass a scipy sparse matrix, a "
        "numpy array, a torch CSR tensor or a matvec callable with n="
    )
