"""Linear (P1) finite elements on triangle meshes: the small toolkit behind the irregular-domain family.

A mesh is ``nodes`` ``(N, 2)`` and ``tris`` ``(M, 3)`` (counter-clockwise). :func:`slotted_mesh`
builds the unit square minus a rectangular slot from a jittered grid and a Delaunay triangulation;
:func:`stiffness` and :func:`load` assemble ``int kappa grad u . grad v`` and ``int q v`` (edge-midpoint
quadrature, exact for quadratics); :func:`edge_load` adds ``int_edge h v ds`` (2-point Gauss);
:func:`errors` measures L2 and H1-seminorm errors against an exact solution.

>>> nodes, tris = slotted_mesh(8, slot=(0.375, 0.625, 0.5, 1.0), jitter=0.0)
>>> bool(abs(areas(nodes, tris).sum() - (1 - 0.25 * 0.5)) < 1e-12)
True
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

__all__ = [
    "areas",
    "boundary_edges",
    "edge_load",
    "errors",
    "gradients",
    "load",
    "slotted_mesh",
    "stiffness",
]

_GAUSS2 = (0.5 - 0.5 / np.sqrt(3.0), 0.5 + 0.5 / np.sqrt(3.0))


def _in_slot(x: np.ndarray, y: np.ndarray, slot: tuple[float, float, float, float]) -> np.ndarray:
    x0, x1, y0, y1 = slot
    eps = 1e-12
    return (x > x0 + eps) & (x < x1 - eps) & (y > y0 + eps) & (y < y1 - eps)


def slotted_mesh(
    n: int,
    slot: tuple[float, float, float, float] = (0.4, 0.6, 0.3, 1.0),
    jitter: float = 0.25,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Triangulate the unit square minus the open slot ``(x0, x1, y0, y1)`` with ``n`` cells a side.

    Grid nodes inside the slot are dropped; nodes not on the outer boundary or the slot's edges move
    by up to ``jitter`` cell widths; triangles with a centroid in the slot are removed. Slot edges
    should lie on grid lines (multiples of ``1/n``) so they are resolved exactly.
    """
    from scipy.spatial import Delaunay

    h = 1.0 / n
    g = np.linspace(0.0, 1.0, n + 1)
    X, Y = np.meshgrid(g, g, indexing="ij")
    x, y = X.ravel(), Y.ravel()
    keep = ~_in_slot(x, y, slot)
    x, y = x[keep], y[keep]
    x0, x1, y0, y1 = slot
    tol = 1e-9
    on_edge = (
        (np.abs(x) < tol)
        | (np.abs(x - 1) < tol)
        | (np.abs(y) < tol)
        | (np.abs(y - 1) < tol)
        | (((np.abs(x - x0) < tol) | (np.abs(x - x1) < tol)) & (y >= y0 - tol) & (y <= y1 + tol))
        | ((np.abs(y - y0) < tol) & (x >= x0 - tol) & (x <= x1 + tol))
    )
    if jitter and rng is not None:
        move = rng.uniform(-jitter * h, jitter * h, size=(len(x), 2))
        move[on_edge] = 0.0
        x, y = x + move[:, 0], y + move[:, 1]
    nodes = np.column_stack([x, y])
    tris = Delaunay(nodes).simplices
    c = nodes[tris].mean(axis=1)
    tris = tris[~_in_slot(c[:, 0], c[:, 1], slot)]
    a = _signed_areas(nodes, tris)
    tris = tris[np.abs(a) > 1e-14 * h * h]
    flip = _signed_areas(nodes, tris) < 0
    tris[flip] = tris[flip][:, [0, 2, 1]]
    used = np.unique(tris)
    remap = np.full(len(nodes), -1)
    remap[used] = np.arange(len(used))
    return nodes[used], remap[tris]


def _signed_areas(nodes: np.ndarray, tris: np.ndarray) -> np.ndarray:
    p = nodes[tris]
    return 0.5 * (
        (p[:, 1, 0] - p[:, 0, 0]) * (p[:, 2, 1] - p[:, 0, 1])
        - (p[:, 2, 0] - p[:, 0, 0]) * (p[:, 1, 1] - p[:, 0, 1])
    )


def areas(nodes: np.ndarray, tris: np.ndarray) -> np.ndarray:
    """Triangle areas (M,)."""
    return np.abs(_signed_areas(nodes, tris))


def gradients(nodes: np.ndarray, tris: np.ndarray) -> np.ndarray:
    """Gradients of the three barycentric basis functions per triangle: (M, 3, 2)."""
    p = nodes[tris]
    B = np.stack([p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]], axis=2)  # (M, 2, 2): columns e1, e2
    Binv_T = np.linalg.inv(B).transpose(0, 2, 1)
    ref = np.array([[-1.0, -1.0], [1.0, 0.0], [0.0, 1.0]])
    return np.einsum("mij,kj->mki", Binv_T, ref)


def stiffness(nodes: np.ndarray, tris: np.ndarray, kappa_tri: np.ndarray) -> sp.csr_matrix:
    """``K_ij = sum_T kappa_T |T| grad phi_i . grad phi_j`` (symmetric, positive semidefinite)."""
    G = gradients(nodes, tris)
    local = np.einsum("mki,mli->mkl", G, G) * (areas(nodes, tris) * kappa_tri)[:, None, None]
    rows = np.repeat(tris, 3, axis=1).ravel()
    cols = np.tile(tris, (1, 3)).ravel()
    n = len(nodes)
    return sp.coo_matrix((local.ravel(), (rows, cols)), shape=(n, n)).tocsr()


def load(nodes: np.ndarray, tris: np.ndarray, q: Callable | np.ndarray) -> np.ndarray:
    """``b_i = int q phi_i``: edge-midpoint rule (exact for quadratic integrands). ``q`` is a function
    of ``(x, y)`` or nodal values (interpolated linearly)."""
    p = nodes[tris]
    mids = 0.5 * (p[:, [0, 1, 2]] + p[:, [1, 2, 0]])  # midpoints of edges 01, 12, 20
    if callable(q):
        qm = q(mids[..., 0], mids[..., 1])
    else:
        qv = np.asarray(q)[tris]
        qm = 0.5 * (qv[:, [0, 1, 2]] + qv[:, [1, 2, 0]])
    a = areas(nodes, tris)[:, None] / 3.0
    # phi_k is 1/2 at the midpoints of the two edges touching vertex k
    contrib = a * 0.5 * np.stack([qm[:, 0] + qm[:, 2], qm[:, 0] + qm[:, 1], qm[:, 1] + qm[:, 2]], 1)
    return np.bincount(tris.ravel(), contrib.ravel(), minlength=len(nodes))


def boundary_edges(tris: np.ndarray) -> np.ndarray:
    """Edges that belong to one triangle only, oriented as in their (counter-clockwise) triangle,
    so the outward normal of edge ``(a, b)`` is ``(y_b - y_a, x_a - x_b) / length``: (E, 2)."""
    e = np.concatenate([tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [2, 0]]])
    key = np.sort(e, axis=1)
    _, inverse, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    return e[counts[inverse.ravel()] == 1]


def edge_load(nodes: np.ndarray, edges: np.ndarray, h: Callable[..., np.ndarray]) -> np.ndarray:
    """``b_i = int_edges h phi_i ds`` by 2-point Gauss quadrature on every (oriented) edge;
    ``h(x, y, nx, ny)`` gets the points and the outward unit normal."""
    a, b = nodes[edges[:, 0]], nodes[edges[:, 1]]
    d = b - a
    length = np.linalg.norm(d, axis=1)
    nx, ny = d[:, 1] / length, -d[:, 0] / length
    out = np.zeros(len(nodes))
    for t in _GAUSS2:
        pt = a + t * d
        w = 0.5 * length * h(pt[:, 0], pt[:, 1], nx, ny)
        np.add.at(out, edges[:, 0], w * (1 - t))
        np.add.at(out, edges[:, 1], w * t)
    return out


def errors(
    nodes: np.ndarray,
    tris: np.ndarray,
    u_h: np.ndarray,
    u: Callable,
    grad_u: Callable,
) -> tuple[float, float]:
    """``(||u_h - u||_L2, |u_h - u|_H1)`` with 3-point (edge-midpoint) quadrature per triangle."""
    p = nodes[tris]
    a = areas(nodes, tris)
    uh = u_h[tris]
    mids = 0.5 * (p[:, [0, 1, 2]] + p[:, [1, 2, 0]])
    uh_m = 0.5 * (uh[:, [0, 1, 2]] + uh[:, [1, 2, 0]])
    l2 = np.sum(a[:, None] / 3 * (uh_m - u(mids[..., 0], mids[..., 1])) ** 2)
    G = gradients(nodes, tris)
    guh = np.einsum("mk,mki->mi", uh, G)  # constant per triangle
    gx, gy = grad_u(mids[..., 0], mids[..., 1])
    h1 = np.sum(a[:, None] / 3 * ((guh[:, None, 0] - gx) ** 2 + (guh[:, None, 1] - gy) ** 2))
    return float(np.sqrt(l2)), float(np.sqrt(h1))
