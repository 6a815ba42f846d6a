"""Pressure-Poisson systems of incompressible flow on a cell-centred grid with solid obstacles.

The pressure projection of a MAC-grid fluid solver solves ``-Δp = -div u*`` on the fluid cells:
a 5-point (2-D) / 7-point (3-D) Laplacian over the cells where ``fluid`` is True, with

- no flux through solid cells and through *wall* sides of the box (Neumann),
- ``p = 0`` in a ghost layer outside *open* sides of the box (Dirichlet; fluid may leave there).

The matrix is returned **scaled by h²** (integer stencil: the diagonal counts the fluid and open
neighbours, -1 per fluid neighbour) on the unknowns = the fluid cells in C order. It is symmetric
positive definite when every fluid cell connects to an open side; :func:`reachable_fluid` drops
pockets that do not (they would make it singular). The last array axis points up: ``"top"`` is
its high end.

>>> fluid = np.ones((4, 4), dtype=bool); fluid[1:3, 1:3] = False
>>> A = pressure_poisson(fluid, open_sides="top")
>>> A.shape, int(A.diagonal().sum())
((12, 12), 28)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.ndimage as ndi
import scipy.sparse as sp

__all__ = ["pressure_poisson", "open_side_list", "reachable_fluid", "obstacle_scene"]

Sides = str | Sequence[tuple[int, int]]


def open_side_list(ndim: int, open_sides: Sides) -> list[tuple[int, int]]:
    """``"top"`` (high end of the last axis), ``"all"``, ``"none"`` or (axis, 0 | 1) pairs."""
    if isinstance(open_sides, str):
        if open_sides == "top":
            return [(ndim - 1, 1)]
        if open_sides == "all":
            return [(ax, side) for ax in range(ndim) for side in (0, 1)]
        if open_sides == "none":
            return []
        raise ValueError(
            f"open_sides must be 'top', 'all', 'none' or (axis, 0|1) pairs, got {open_sides!r}"
        )
    sides = [(int(ax), int(side)) for ax, side in open_sides]
    bad = [s for s in sides if not (0 <= s[0] < ndim and s[1] in (0, 1))]
    if bad:
        raise ValueError(f"open_sides {bad} are not (axis < {ndim}, 0 | 1) pairs")
    return sides


def _check_fluid(fluid: np.ndarray) -> np.ndarray:
    fluid = np.asarray(fluid)
    if fluid.dtype != bool:
        raise ValueError(f"fluid must be a boolean mask (True = fluid cell), got {fluid.dtype}")
    if fluid.ndim not in (2, 3):
        raise ValueError(f"fluid must be a 2-D or 3-D mask, got shape {fluid.shape}")
    return fluid


def pressure_poisson(fluid: np.ndarray, *, open_sides: Sides = "top") -> sp.csr_matrix:
    """``h² (-Δ)`` on the fluid cells, shape (n, n) with n = fluid.sum() (C order), CSR float64.

    Raises ``ValueError`` when some fluid cells do not connect to an open side (the matrix would
    be singular): pass ``reachable_fluid(fluid, open_sides)`` instead.
    """
    fluid = _check_fluid(fluid)
    sides = open_side_list(fluid.ndim, open_sides)
    reach = reachable_fluid(fluid, sides)
    if int(reach.sum()) != int(fluid.sum()):
        raise ValueError(
            f"{int(fluid.sum() - reach.sum())} fluid cells do not connect to an open side "
            f"{sides}, so the pressure matrix would be singular; use "
            "reachable_fluid(fluid, open_sides) as the fluid mask (or open more sides)"
        )
    n = int(fluid.sum())
    index = np.full(fluid.shape, -1, dtype=np.int64)
    index[fluid] = np.arange(n)
    diag = np.zeros(fluid.shape)
    rows, cols = [], []
    d = fluid.ndim
    for ax in range(d):
        lo = [slice(None)] * d
        hi = [slice(None)] * d
        lo[ax], hi[ax] = slice(None, -1), slice(1, None)
        both = fluid[tuple(lo)] & fluid[tuple(hi)]  # an open face between two fluid cells
        diag[tuple(lo)] += both
        diag[tuple(hi)] += both
        a, c = index[tuple(lo)][both], index[tuple(hi)][both]
        rows += [a, c]
        cols += [c, a]
        for side in (0, 1):
            if (ax, side) in sides:
                edge = [slice(None)] * d
                edge[ax] = -1 if side else 0
                diag[tuple(edge)] += 1.0  # ghost cell with p = 0
    r = np.concatenate([*rows, np.arange(n)])
    c = np.concatenate([*cols, np.arange(n)])
    v = np.concatenate([-np.ones(sum(len(x) for x in rows)), diag[fluid]])
    A = sp.csr_matrix((v, (r, c)), shape=(n, n))
    A.sort_indices()
    return A


def reachable_fluid(fluid: np.ndarray, open_sides: Sides = "top") -> np.ndarray:
    """The fluid cells connected (face neighbours) to an open side; other pockets become solid."""
    fluid = _check_fluid(fluid)
    sides = open_side_list(fluid.ndim, open_sides)
    labels, _ = ndi.label(fluid)
    keep = set()
    for ax, side in sides:
        edge = [slice(None)] * fluid.ndim
        edge[ax] = -1 if side else 0
        keep.update(np.unique(labels[tuple(edge)]).tolist())
    keep.discard(0)
    return np.isin(labels, sorted(keep)) & fluid


def obstacle_scene(
    shape: Sequence[int],
    seed: int | np.random.Generator = 0,
    *,
    count: tuple[int, int] = (2, 4),
    size: tuple[float, float] = (0.08, 0.16),
    shapes: tuple[str, ...] = ("box", "ball"),
    clear_bottom: float = 0.25,
    open_sides: Sides = "top",
) -> np.ndarray:
    """A fluid mask with random solid boxes/balls (as :func:`neuralops.pde.poisson.random_obstacles`)
    above the bottom ``clear_bottom`` fraction of the box (kept free for a smoke source); pockets cut
    off from the open sides are made solid, so :func:`pressure_poisson` is SPD."""
    from neuralops.pde.poisson import random_obstacles

    shape = tuple(int(s) for s in shape)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    solid = random_obstacles(rng, shape, count, size, shapes)
    height = np.arange(shape[-1]) < clear_bottom * shape[-1]
    solid[..., height] = False
    return reachable_fluid(~solid, open_sides)
