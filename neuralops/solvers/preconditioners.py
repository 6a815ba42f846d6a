"""Preconditioners ``z = M r`` built from a matrix."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

__all__ = ["Jacobi", "make_preconditioner", "PRECONDITIONERS"]


@dataclass(frozen=True)
class Jacobi:
    """Diagonal scaling ``z = r / diag(A)``."""

    inv_diag: np.ndarray

    @classmethod
    def from_matrix(cls, A) -> Jacobi:
        d = np.asarray(A.diagonal(), dtype=np.float64)
        if np.any(d == 0):
            raise ValueError(f"Jacobi needs a nonzero diagonal; A has {int((d == 0).sum())} zeros")
        return cls(1.0 / d)

    def __call__(self, r: np.ndarray) -> np.ndarray:
        return self.inv_diag * r


class _AMG:
    """Smoothed-aggregation AMG V-cycle (pyamg, optional ``bench`` extra)."""

    def __init__(self, A) -> None:
        try:
            import pyamg
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "preconditioner 'amg' needs pyamg: pip install 'neuralops-pde[bench]'"
            ) from exc
        self.ml = pyamg.smoothed_aggregation_solver(sp.csr_matrix(A))
        self._m = self.ml.aspreconditioner(cycle="V")

    def __call__(self, r: np.ndarray) -> np.ndarray:
        return self._m @ r


PRECONDITIONERS = {"none": None, "jacobi": Jacobi.from_matrix, "amg": _AMG}


def make_preconditioner(name: str, A):
    """Build the named preconditioner for ``A`` (names: ``none``, ``jacobi``, ``amg``)."""
    if name not in PRECONDITIONERS:
        raise ValueError(
            f"unknown preconditioner {name!r}; choose one of {sorted(PRECONDITIONERS)}"
        )
    factory = PRECONDITIONERS[name]
    return None if factory is None else factory(A)
