"""Input checks shared by the solvers: shapes and finiteness, with messages that say what to fix."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["check_system"]


def check_system(A, b: np.ndarray, x0: np.ndarray | None = None) -> tuple[object, np.ndarray]:
    """Validate ``A`` (n, n) and ``b`` (n,); return ``A`` as CSR (or as given) and ``b`` as float."""
    shape = getattr(A, "shape", None)
    if shape is None or len(shape) != 2:
        raise TypeError(f"A must be a 2-D matrix or operator with .shape, got {type(A).__name__}")
    if shape[0] != shape[1]:
        raise ValueError(f"A must be square, got shape {shape}")
    b = np.asarray(b)
    if b.ndim != 1 or b.shape[0] != shape[0]:
        raise ValueError(f"b has shape {b.shape}, expected ({shape[0]},) to match A {shape}")
    if not np.all(np.isfinite(b)):
        raise ValueError("b contains NaN or Inf; check the right-hand side assembly")
    if sp.issparse(A):
        A = sp.csr_matrix(A)
        if not np.all(np.isfinite(A.data)):
            raise ValueError("A contains NaN or Inf entries; check the matrix assembly")
    elif isinstance(A, np.ndarray) and not np.all(np.isfinite(A)):
        raise ValueError("A contains NaN or Inf entries; check the matrix assembly")
    if x0 is not None:
        x0 = np.asarray(x0)
        if x0.shape != b.shape:
            raise ValueError(f"x0 has shape {x0.shape}, expected {b.shape}")
    dtype = np.result_type(getattr(A, "dtype", np.float64), b.dtype, np.float64)
    return A, b.astype(dtype, copy=False)
