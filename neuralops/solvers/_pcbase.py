"""The preconditioner interface ``z = M r`` and the matrix conversion every preconditioner uses."""

from __future__ import annotations

import abc
from typing import Any

import numpy as np
import scipy.sparse as sp

from neuralops.solvers.operators import MatrixOperator, TorchCSROperator

_BENCH_HINT = "pip install 'neuralops-pde[bench]'"


class AbstractPreconditioner(abc.ABC):
    """``apply(r) -> z``; ``symmetric`` says whether ``M`` is symmetric (required by PCG);
    ``setup_seconds`` is the time spent building it; ``name`` identifies it in records;
    ``accepts_torch`` says whether ``apply`` also takes torch tensors (else solvers convert)."""

    name: str = "preconditioner"
    symmetric: bool = True
    setup_seconds: float = 0.0
    accepts_torch: bool = False

    @abc.abstractmethod
    def apply(self, r: np.ndarray) -> np.ndarray:
        """``z = M r`` for r of shape (n,) (or (n, k) where supported)."""

    def apply_block(self, R: np.ndarray) -> np.ndarray:
        """``Z = M R`` for a block R (n, k): column by column here; preconditioners whose
        solve takes several right-hand sides at once override it (GCRO-DR's refresh uses it)."""
        R = np.asarray(R, dtype=np.float64, order="F")  # contiguous columns
        return np.column_stack([self.apply(R[:, j]) for j in range(R.shape[1])])

    def __call__(self, r: np.ndarray) -> np.ndarray:
        return self.apply(r)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, setup_seconds={self.setup_seconds:.3g})"


def _csr(A: Any, who: str) -> sp.csr_matrix:
    """``A`` as a float64 CSR matrix (from scipy sparse, a dense array or a MatrixOperator)."""
    if isinstance(A, MatrixOperator | TorchCSROperator):
        A = A.A
    if type(A).__module__.startswith("torch"):
        A = A.to_dense().cpu().numpy() if not A.is_sparse_csr else _torch_csr_to_scipy(A)
    if not (sp.issparse(A) or isinstance(A, np.ndarray)):
        raise TypeError(
            f"{who} needs an explicit matrix (scipy sparse or numpy), got {type(A).__name__}"
        )
    A = sp.csr_matrix(A, dtype=np.float64)
    if A.shape[0] != A.shape[1]:
        raise ValueError(f"A must be square, got shape {A.shape}")
    A.sum_duplicates()
    return A


def _torch_csr_to_scipy(A: Any) -> sp.csr_matrix:
    return sp.csr_matrix(
        (A.values().cpu().numpy(), A.col_indices().cpu().numpy(), A.crow_indices().cpu().numpy()),
        shape=tuple(A.shape),
    )
