"""DCDM training data: right-hand sides built from Ritz vectors of one pressure matrix.

Following Kaneda et al. (ICML 2023; code ayano721/2023_DCDM, ``datasetcreate.py``):

1. run ``m`` Lanczos steps on the training matrix ``A`` from ``A @ randn`` with **full
   re-orthogonalisation** (two Gram-Schmidt passes per step), giving ``A V^T = V^T T + beta_m
   v_{m+1} e_m^T`` with ``V`` (m, n) orthonormal and ``T`` tridiagonal;
2. Ritz pairs ``(theta_i, y_i = V^T s_i)`` from ``T s_i = theta_i s_i``; the residual of each pair is
   ``||A y_i - theta_i y_i|| = beta_m |s_{m,i}|`` (:attr:`RitzPairs.residual_bounds`). Ritz values below
   ``1e-8 theta_max`` are dropped (the reference drops the zero modes of empty cells);
3. each right-hand side is ``b = sum_i c_i y_i`` with ``c_i ~ N(0, 9^2)`` for the lowest
   ``m/2 + theta`` Ritz vectors and ``N(0, 1)`` for the rest, normalised to ``||b|| = 1``
   (reference: m = 10 000, theta = 500, 20 000 vectors at 64^3 and 128^3).

The vectors are stored as float32 grid fields (zero outside the fluid) in an HDF5 file of schema
``neuralops-pde/1`` (field ``rhs``, role ``input,target``) that :class:`neuralops.data.PDEDataset`
opens; the fluid mask and boundary sides ride along as file attributes, so
:func:`training_system` rebuilds the matrix the loss needs.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from neuralops.data.schema import DatasetWriter, FieldSpec, SolverRecord
from neuralops.pde.pressure import open_side_list, pressure_poisson

__all__ = [
    "LanczosResult",
    "RitzPairs",
    "lanczos",
    "ritz_rhs",
    "write_ritz_dataset",
    "training_system",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RitzPairs:
    """Ritz values (k,) ascending, Ritz vectors (k, n) orthonormal rows, and the residual norms
    ``||A y_i - theta_i y_i||`` predicted by the Lanczos relation (k,)."""

    values: np.ndarray
    vectors: np.ndarray
    residual_bounds: np.ndarray


@dataclass(frozen=True)
class LanczosResult:
    """``V`` (m, n) orthonormal Lanczos vectors, ``alpha`` (m,) and ``beta`` (m,) with ``beta[j]``
    coupling ``v_j`` to ``v_{j+1}``; ``beta[-1]`` is the residual coupling beta_m (0 when an
    invariant subspace was found, in which case m is smaller than asked)."""

    V: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray

    @property
    def steps(self) -> int:
        return len(self.alpha)

    def tridiagonal(self) -> np.ndarray:
        """The (m, m) tridiagonal matrix T = V A V^T."""
        return np.diag(self.alpha) + np.diag(self.beta[:-1], 1) + np.diag(self.beta[:-1], -1)

    def ritz(self, *, drop_below: float = 1e-8) -> RitzPairs:
        """Ritz pairs, dropping values below ``drop_below * theta_max``."""
        theta, S = sla.eigh_tridiagonal(self.alpha, self.beta[:-1])
        keep = theta > drop_below * theta.max()
        theta, S = theta[keep], S[:, keep]
        Y = S.T @ self.V
        bounds = abs(self.beta[-1]) * np.abs(S[-1, :])
        return RitzPairs(theta, Y, bounds)


def lanczos(A: Any, m: int, *, v0: np.ndarray | None = None, seed: int = 0) -> LanczosResult:
    """``m`` Lanczos steps on the symmetric ``A`` (n, n) with full re-orthogonalisation.

    ``v0`` defaults to ``A @ randn(n)`` (the reference's start). Stops early at an invariant
    subspace (then ``beta[-1] = 0``). Memory: m n float64.
    """
    n = A.shape[0]
    if A.shape != (n, n):
        raise ValueError(f"A must be square, got shape {A.shape}")
    if not (isinstance(m, int | np.integer) and 1 <= m):
        raise ValueError(f"m (Lanczos steps) must be an integer >= 1, got {m!r}")
    m = min(int(m), n)
    if v0 is None:
        v0 = A @ np.random.default_rng(seed).standard_normal(n)
    v = np.asarray(v0, dtype=np.float64).reshape(n)
    if not np.isfinite(v).all() or not np.linalg.norm(v) > 0:
        raise ValueError("v0 must be a finite nonzero vector")
    V = np.empty((m, n))
    alpha, beta = np.zeros(m), np.zeros(m)
    V[0] = v / np.linalg.norm(v)
    scale = 0.0
    steps = m
    for j in range(m):
        w = np.asarray(A @ V[j], dtype=np.float64).reshape(n)
        alpha[j] = V[j] @ w
        for _ in range(2):  # full re-orthogonalisation, twice is enough
            w -= V[: j + 1].T @ (V[: j + 1] @ w)
        beta[j] = np.linalg.norm(w)
        scale = max(scale, abs(alpha[j]) + beta[j])
        if beta[j] <= 1e-12 * scale:
            beta[j] = 0.0
            steps = j + 1
            break
        if j + 1 < m:
            V[j + 1] = w / beta[j]
    return LanczosResult(V[:steps], alpha[:steps], beta[:steps])


def ritz_rhs(
    ritz: RitzPairs, count: int, *, theta: int, rng: np.random.Generator, weight: float = 9.0
) -> np.ndarray:
    """``count`` unit-norm right-hand sides (count, n): Gaussian combinations of the Ritz vectors
    with standard deviation ``weight`` on the lowest ``k/2 + theta`` (k = number of Ritz vectors
    before dropping, as the reference) and 1 on the others."""
    k = len(ritz.values)
    cut = min(k, k // 2 + int(theta))
    C = rng.standard_normal((count, k))
    C[:, :cut] *= weight
    B = C @ ritz.vectors
    return B / np.linalg.norm(B, axis=1, keepdims=True)


def _axes(shape: Sequence[int]) -> dict[str, np.ndarray]:
    names = ("x", "y", "z")[: len(shape)]
    return {a: (np.arange(s) + 0.5) / s for a, s in zip(names, shape, strict=True)}


def write_ritz_dataset(
    path: str | os.PathLike[str],
    fluid: np.ndarray,
    *,
    open_sides: str | Sequence[tuple[int, int]] = "top",
    lanczos_steps: int = 1000,
    samples: int = 2000,
    theta: int | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
    recipe_text: str = "",
    chunk: int = 200,
) -> dict[str, Any]:
    """Build the training matrix on ``fluid``, its Ritz vectors and ``samples`` right-hand sides;
    write them to ``path`` (written as ``path.partial``, renamed when complete). ``theta`` defaults
    to ``lanczos_steps // 20`` (the reference's 500 for 10 000). The last ``val_fraction`` of the
    samples form a disjoint ``val`` split. Returns a summary (also stored as file attributes)."""
    fluid = np.asarray(fluid)
    if fluid.dtype != bool or fluid.ndim not in (2, 3):
        raise ValueError(
            f"fluid must be a 2-D or 3-D boolean mask, got {fluid.dtype} {fluid.shape}"
        )
    if samples < 2 or not 0.0 < val_fraction < 1.0:
        raise ValueError(
            f"need samples >= 2 and 0 < val_fraction < 1, got {samples}, {val_fraction}"
        )
    theta = lanczos_steps // 20 if theta is None else int(theta)
    path = Path(path)
    A = pressure_poisson(fluid, open_sides=open_sides)
    t0 = time.perf_counter()
    lz = lanczos(A, lanczos_steps, seed=seed)
    ritz = lz.ritz()
    lanczos_seconds = time.perf_counter() - t0
    log.info(
        "Lanczos: %d steps on n = %d in %.1f s; %d Ritz values in [%.3g, %.3g]",
        lz.steps,
        A.shape[0],
        lanczos_seconds,
        len(ritz.values),
        ritz.values.min(),
        ritz.values.max(),
    )
    sides = open_side_list(fluid.ndim, open_sides)
    summary = {
        "dcdm_grid": list(fluid.shape),
        "dcdm_open_sides": json.dumps(sides),
        "dcdm_unknowns": int(A.shape[0]),
        "dcdm_lanczos_steps": int(lz.steps),
        "dcdm_theta": int(theta),
        "dcdm_ritz_count": int(len(ritz.values)),
        "dcdm_ritz_min": float(ritz.values.min()),
        "dcdm_ritz_max": float(ritz.values.max()),
        "dcdm_max_ritz_residual_bound": float(ritz.residual_bounds.max()),
        "dcdm_lanczos_seconds": float(lanczos_seconds),
    }
    dims = ("sample", *("x", "y", "z")[: fluid.ndim])
    spec = FieldSpec(
        "rhs",
        "input,target",
        tuple(fluid.shape),
        dims,
        description="unit-norm right-hand side from Ritz vectors of the training matrix",
    )
    partial = path.with_name(path.name + ".partial")
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed + 1)
    attrs = {**summary, "dcdm_fluid_packed": np.packbits(fluid.reshape(-1))}
    with DatasetWriter(
        partial,
        pde="dcdm_ritz",
        n_samples=samples,
        fields=[spec],
        spatial_dims=list(dims[1:]),
        coords=_axes(fluid.shape),
        seed=seed,
        recipe_text=recipe_text,
        extra_attrs=attrs,
    ) as w:
        grid = np.zeros(fluid.shape, dtype=np.float32)
        for start in range(0, samples, chunk):
            B = ritz_rhs(ritz, min(chunk, samples - start), theta=theta, rng=rng)
            for i, b in enumerate(B):
                grid[fluid] = b
                w.write_sample(start + i, fields={"rhs": grid}, solver=SolverRecord(converged=True))
        n_val = max(1, int(round(val_fraction * samples)))
        w.write_splits(
            {"train": np.arange(samples - n_val), "val": np.arange(samples - n_val, samples)}
        )
        w.finalize()
    os.replace(partial, path)
    return {"path": str(path), **summary}


def training_system(path: str | os.PathLike[str]) -> tuple[sp.csr_matrix, np.ndarray]:
    """``(A, fluid)`` of a file written by :func:`write_ritz_dataset`: the training matrix (n, n)
    and the boolean fluid mask it lives on (n = fluid.sum())."""
    import h5py

    with h5py.File(path, "r") as f:
        if "dcdm_fluid_packed" not in f.attrs:
            raise ValueError(
                f"{path} is not a DCDM Ritz dataset (no 'dcdm_fluid_packed' attribute); write one "
                "with neuralops.train.dcdm_data.write_ritz_dataset"
            )
        shape = tuple(int(s) for s in f.attrs["dcdm_grid"])
        packed = np.asarray(f.attrs["dcdm_fluid_packed"], dtype=np.uint8)
        sides = [tuple(s) for s in json.loads(str(f.attrs["dcdm_open_sides"]))]
    fluid = np.unpackbits(packed, count=int(np.prod(shape))).astype(bool).reshape(shape)
    return pressure_poisson(fluid, open_sides=sides), fluid
