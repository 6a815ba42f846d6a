"""Second-order finite differences on a uniform grid, a baseline of the GP-HM benchmark, and the
observed order under grid refinement."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse as sp
import torch
from scipy.interpolate import make_interp_spline

from neuralops.gp.baselines._common import (
    TEST_GRID,
    BaselineResult,
    FDRefinement,
    _Assembled,
    _check_newton,
    _check_spec,
    _Interpolant,
    _keep,
    _kron,
    _result,
    _solve,
    _unknowns,
)
from neuralops.pde.spec import PDESpec, tensor_points

__all__ = ["fd_refinement", "finite_differences"]


def _fd_matrices(m: int, h: float) -> list[sp.csr_array]:
    """Identity, D1, D2 (central; second-order one-sided end rows), sparse ``(m, m)``."""
    D1 = sp.diags_array([-0.5 / h, 0.0, 0.5 / h], offsets=[-1, 0, 1], shape=(m, m)).tolil()
    D2 = sp.diags_array([1 / h**2, -2 / h**2, 1 / h**2], offsets=[-1, 0, 1], shape=(m, m)).tolil()
    for D in (D1, D2):
        D[0, :] = 0.0
        D[m - 1, :] = 0.0
    D1[0, :3] = np.array([-3.0, 4.0, -1.0]) / (2 * h)
    D1[m - 1, m - 3 :] = np.array([1.0, -4.0, 3.0]) / (2 * h)
    D2[0, :4] = np.array([2.0, -5.0, 4.0, -1.0]) / h**2
    D2[m - 1, m - 4 :] = np.array([-1.0, 4.0, -5.0, 2.0]) / h**2
    return [sp.eye_array(m, format="csr"), D1.tocsr(), D2.tocsr()]


def finite_differences(
    spec: PDESpec,
    n: int | Sequence[int],
    *,
    tol: float = 1e-12,
    max_iter: int = 50,
    eval_grid: int | Sequence[int] | None = None,
    test_grid: int = TEST_GRID,
) -> BaselineResult:
    """Second-order finite differences on a uniform grid with ``n`` nodes per axis.

    Second-order problems: central differences (5-point Laplacian in 2-D) at every node without
    Dirichlet data, second-order one-sided stencils on faces without data; sparse LU (``spsolve``)
    for linear problems, Newton (same rules as :func:`chebyshev_collocation`) otherwise.
    First-order problems (advection): the second-order *box scheme* (Keller/Preissmann) in space-time
    -- the PDE is collocated at cell centres with every jet entry averaged over the cell's corners --
    with data on the inflow faces only; it has as many cells as unknown nodes.
    """
    t0 = time.perf_counter()
    d, sizes, faces, note = _check_spec(spec, n, "finite_differences")
    _check_newton(tol, max_iter)
    axes = [a.numpy() for a in spec.domain.axes(sizes)]
    hs = [L / (m - 1) for L, m in zip(spec.domain.lengths, sizes)]
    keep = _keep(sizes, faces)
    unk = _unknowns(keep, sizes)
    if max(sum(a) for a in spec.jet) == 1:
        if len(unk) != math.prod(m - 1 for m in sizes):
            raise ValueError(
                f"finite_differences: the box scheme for {spec.name!r} needs one inflow face per axis, "
                f"got faces {faces}"
            )
        avg = [sp.diags_array([0.5, 0.5], offsets=[0, 1], shape=(m - 1, m)) for m in sizes]
        dif = [
            sp.diags_array([-1 / h, 1 / h], offsets=[0, 1], shape=(m - 1, m))
            for m, h in zip(sizes, hs)
        ]
        K = [_kron([(avg, dif)[a[j]][j] for j in range(d)], sparse=True) for a in spec.jet]
        x_eq = tensor_points([torch.from_numpy(0.5 * (x[1:] + x[:-1])) for x in axes])
        scheme = "box scheme (cell-centred, inflow data)"
    else:
        mats = [_fd_matrices(m, h) for m, h in zip(sizes, hs)]
        K = [_kron([mats[j][a[j]] for j in range(d)], sparse=True)[unk] for a in spec.jet]
        x_eq = None
        scheme = "central differences, one-sided on faces without data"
    disc = _Assembled(K, axes, keep, sparse=True, x_eq=x_eq)
    u, iters, ok, hist, info = _solve(spec, disc, axes, tol, max_iter)
    seconds = time.perf_counter() - t0
    interp = _Interpolant(u.reshape(sizes), [_spline_basis(x) for x in axes])
    info.update(faces=[list(f) for f in faces], note=note, scheme=scheme)
    if spec.exact is not None:
        ref = spec.exact(tensor_points([torch.from_numpy(x) for x in axes])).detach().numpy()
        info["nodal_rel_l2"] = float(np.linalg.norm(u - ref) / np.linalg.norm(ref))
    return _result("fd", spec, sizes, interp, seconds, iters, ok, hist, info, eval_grid, test_grid)


def fd_refinement(spec: PDESpec, sizes: Sequence[int], **kwargs) -> FDRefinement:
    """:func:`finite_differences` at each ``n`` in ``sizes``; the order is the least-squares slope of
    log(relative L2 error) against log h, h = L / (n - 1) on the first axis."""
    if spec.exact is None:
        raise ValueError(
            f"fd_refinement: {spec.name!r} has no exact solution to measure errors against"
        )
    sizes = [int(m) for m in sizes]
    if len(set(sizes)) < 2:
        raise ValueError(f"fd_refinement: need at least two distinct sizes, got {sizes}")
    results = tuple(finite_differences(spec, m, **kwargs) for m in sizes)
    h = np.array([spec.domain.lengths[0] / (m - 1) for m in sizes])
    err = np.array([r.rel_l2 for r in results])
    order = float(np.polyfit(np.log(h), np.log(err), 1)[0])
    return FDRefinement(tuple(zip(sizes, err.tolist())), order, results)


def _spline_basis(x: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    spline = make_interp_spline(x, np.eye(len(x)), k=3)
    return lambda t: spline(np.asarray(t, dtype=np.float64))
