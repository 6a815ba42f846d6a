"""Self-supervised losses that need the system matrix, not a target field.

:class:`DCDMLoss` is the DCDM training loss (Kaneda et al., ICML 2023): for a right-hand side ``b``
and the network's direction ``q = f(b)``, take the energy-optimal scale ``s = q^T b / q^T A q`` and
penalise the residual of ``x = s q``::

    loss(q, b) = || b - s A q ||_2^2,   averaged over the batch.

It is invariant to the scale of ``q`` (``q -> c q`` leaves ``s A q`` unchanged) and zero when
``f = A^{-1}``. It is a ``(pred, target) -> scalar`` callable, so :class:`~neuralops.train.Trainer`
takes it as ``loss=`` with the right-hand side as both input and target.

>>> import scipy.sparse as sp
>>> A = sp.diags([2.0, 4.0]).tocsr()
>>> loss = DCDMLoss(A)
>>> b = torch.tensor([[1.0, 1.0]])
>>> float(loss(b / torch.tensor([2.0, 4.0]), b)), float(loss(b, b)) > 0
(0.0, True)
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

__all__ = ["DCDMLoss"]


class DCDMLoss:
    """``mean_batch ||b - s A q||^2`` with ``s = q^T b / q^T A q``.

    ``A``: the SPD system matrix (scipy sparse or dense), shape (n, n). ``fluid``: a boolean grid
    mask with ``fluid.sum() == n`` when A lives on the masked cells only (C order); ``None`` when
    A covers the whole grid. ``pred``/``target`` are ``(batch, 1, *grid)`` (or ``(batch, n)``);
    values outside the mask are ignored. ``eps`` guards ``q^T A q`` of an all-zero output.
    """

    __name__ = "dcdm"

    def __init__(self, A: Any, fluid: np.ndarray | None = None, *, eps: float = 1e-30) -> None:
        A = sp.csr_matrix(A, dtype=np.float64)
        if A.shape[0] != A.shape[1]:
            raise ValueError(f"A must be square, got shape {A.shape}")
        self.n = A.shape[0]
        self.index = None
        if fluid is not None:
            fluid = np.asarray(fluid)
            if fluid.dtype != bool:
                raise ValueError(f"fluid must be a boolean mask, got {fluid.dtype}")
            if int(fluid.sum()) != self.n:
                raise ValueError(
                    f"fluid has {int(fluid.sum())} True cells but A has {self.n} rows; pass the "
                    "mask A was assembled on"
                )
            self.index = np.flatnonzero(fluid.reshape(-1))
        self.grid_size = None if fluid is None else fluid.size
        self.A = A
        self.eps = eps
        self._cache: dict[tuple[Any, Any], tuple[torch.Tensor, torch.Tensor | None]] = {}

    def _on(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        key = (like.device, like.dtype)
        if key not in self._cache:
            A = self.A
            with warnings.catch_warnings():  # "sparse CSR support is in beta"
                warnings.simplefilter("ignore", UserWarning)
                At = torch.sparse_csr_tensor(
                    torch.as_tensor(A.indptr, dtype=torch.int64),
                    torch.as_tensor(A.indices, dtype=torch.int64),
                    torch.as_tensor(A.data, dtype=like.dtype),
                    size=A.shape,
                    check_invariants=False,
                ).to(like.device)
            idx = None if self.index is None else torch.as_tensor(self.index, device=like.device)
            self._cache[key] = (At, idx)
        return self._cache[key]

    def _flat(self, t: torch.Tensor, idx: torch.Tensor | None, name: str) -> torch.Tensor:
        flat = t.reshape(t.shape[0], -1)
        expected = self.n if idx is None else self.grid_size
        if flat.shape[1] != expected:
            raise ValueError(
                f"{name} has {flat.shape[1]} values per sample (shape {tuple(t.shape)}), expected "
                f"{expected} ({'the grid of the fluid mask' if idx is not None else 'rows of A'})"
            )
        return flat if idx is None else flat[:, idx]

    def per_sample(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Loss of every sample, shape (batch,)."""
        A, idx = self._on(pred)
        q = self._flat(pred, idx, "pred")
        b = self._flat(target.to(pred.dtype), idx, "target")
        Aq = (A @ q.T).T  # (batch, n)
        qAq = (q * Aq).sum(1)
        s = (q * b).sum(1) / qAq.clamp_min(self.eps)
        return (b - s[:, None] * Aq).square().sum(1)

    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Batch mean of :meth:`per_sample` (a scalar)."""
        return self.per_sample(pred, target).mean()

    def __repr__(self) -> str:
        masked = "" if self.index is None else f", grid cells={self.grid_size}"
        return f"DCDMLoss(n={self.n}, nnz={self.A.nnz}{masked}, eps={self.eps:g})"
