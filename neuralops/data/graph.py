"""Graph view of a sample: ``torch_geometric.data.Data(pos, x, y, edge_index, params)``.

Grid samples become point clouds (one node per grid point, C-order); mesh samples use their own nodes. Edges
connect each node to its neighbours within ``radius`` (at most ``max_neighbors``, the nearest kept) or to its
``k`` nearest neighbours, found with :class:`scipy.spatial.cKDTree` (``torch_cluster``/``pyg-lib`` are not
needed). Neighbourhoods are cached per mesh, so a grid dataset builds its edges once.

Shapes of the returned ``Data``:

- ``pos`` ``(n_nodes, d)``; ``x`` ``(n_nodes, C_in)`` or ``(n_nodes, T_in, C_in)`` for time series;
  ``y`` likewise with ``C_out``;
- ``edge_index`` ``(2, n_edges)`` int64, row 0 the neighbour (source) and row 1 the centre (target), PyG's
  ``source_to_target`` flow; both directions of a radius edge are present;
- ``params`` ``(1, P)`` (graph-level, so a batch stacks to ``(B, P)``); ``time`` as in the grid view.

torch_geometric is imported inside :func:`to_data` only (its import takes seconds).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if (
    TYPE_CHECKING
):  # torch_geometric takes seconds to import; only the function that builds Data does
    from torch_geometric.data import Data

__all__ = ["GraphSpec", "GraphBuilder", "neighbours", "to_data"]


@dataclass(frozen=True)
class GraphSpec:
    """How edges are built: exactly one of ``radius`` or ``k``.

    Parameters
    ----------
    radius:
        Connect nodes at distance ``<= radius`` (in coordinate units).
    k:
        Connect each node to its ``k`` nearest other nodes.
    max_neighbors:
        With ``radius``: keep at most this many neighbours per node, the nearest ones.
    loop:
        Add a self-loop to every node.
    """

    radius: float | None = None
    k: int | None = None
    max_neighbors: int = 32
    loop: bool = False

    def __post_init__(self) -> None:
        if (self.radius is None) == (self.k is None):
            raise ValueError(
                f"graph needs exactly one of radius or k, got radius={self.radius!r}, k={self.k!r}; "
                "e.g. graph=dict(radius=0.1, max_neighbors=32) or graph=dict(k=8)"
            )
        if self.radius is not None and not self.radius > 0:
            raise ValueError(f"graph radius must be > 0, got {self.radius!r}")
        if self.k is not None and (isinstance(self.k, bool) or int(self.k) < 1):
            raise ValueError(f"graph k must be a positive int, got {self.k!r}")
        if int(self.max_neighbors) < 1:
            raise ValueError(f"graph max_neighbors must be >= 1, got {self.max_neighbors!r}")

    @classmethod
    def coerce(cls, value: GraphSpec | Mapping[str, Any] | None) -> GraphSpec:
        """A :class:`GraphSpec` from itself, a dict of its fields, or None (``k=8``)."""
        if value is None:
            return cls(k=8)
        if isinstance(value, cls):
            return value
        if isinstance(value, Mapping):
            unknown = sorted(set(value) - {"radius", "k", "max_neighbors", "loop"})
            if unknown:
                raise ValueError(
                    f"unknown graph option(s) {unknown}; valid: radius, k, max_neighbors, loop"
                )
            return cls(**value)
        raise TypeError(f"graph must be a dict or GraphSpec, got {type(value).__name__}")


def neighbours(pos: np.ndarray, spec: GraphSpec) -> np.ndarray:
    """``edge_index`` ``(2, n_edges)`` int64 for node positions ``pos`` ``(n_nodes, d)``.

    Edges are sorted by centre node, then distance. Row 0 holds neighbours, row 1 centres.
    """
    from scipy.spatial import cKDTree

    pos = np.asarray(pos, dtype=np.float64)
    n = len(pos)
    tree = cKDTree(pos)
    if spec.k is not None:
        k = min(int(spec.k), n - 1)
        if k < 1:
            centre = nbr = np.zeros(0, dtype=np.int64)
        else:
            _, idx = tree.query(pos, k=k + 1)
            idx = idx.reshape(n, k + 1)
            keep = idx != np.arange(n)[:, None]
            keep &= np.cumsum(keep, axis=1) <= k  # a duplicate point may displace self
            centre = np.broadcast_to(np.arange(n)[:, None], idx.shape)[keep]
            nbr = idx[keep]
    else:
        pairs = tree.query_pairs(float(spec.radius), output_type="ndarray").astype(np.int64)
        centre = np.concatenate([pairs[:, 0], pairs[:, 1]])
        nbr = np.concatenate([pairs[:, 1], pairs[:, 0]])
        dist = np.linalg.norm(pos[centre] - pos[nbr], axis=1)
        order = np.lexsort((nbr, dist, centre))
        centre, nbr = centre[order], nbr[order]
        start = np.searchsorted(centre, centre, side="left")
        keep = np.arange(len(centre)) - start < int(spec.max_neighbors)
        centre, nbr = centre[keep], nbr[keep]
    if spec.loop:
        ar = np.arange(n, dtype=np.int64)
        centre, nbr = np.concatenate([ar, centre]), np.concatenate([ar, nbr])
        order = np.argsort(centre, kind="stable")
        centre, nbr = centre[order], nbr[order]
    return np.stack([nbr, centre]).astype(np.int64)


class GraphBuilder:
    """Builds edges for positions, caching the last ``cache_size`` meshes by content."""

    def __init__(self, spec: GraphSpec, cache_size: int = 16) -> None:
        self.spec = spec
        self.cache_size = int(cache_size)
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()

    def edges(self, pos: np.ndarray) -> torch.Tensor:
        """``edge_index`` ``(2, n_edges)`` for ``pos`` ``(n_nodes, d)``, from the cache when seen before."""
        pos = np.ascontiguousarray(pos)
        key = hashlib.blake2b(pos.tobytes(), digest_size=16)
        key.update(str((pos.shape, pos.dtype.str)).encode())
        digest = key.hexdigest()
        hit = self._cache.get(digest)
        if hit is not None:
            self._cache.move_to_end(digest)
            return hit
        edge_index = torch.from_numpy(neighbours(pos, self.spec))
        self._cache[digest] = edge_index
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return edge_index

    def __repr__(self) -> str:
        return f"GraphBuilder({self.spec}, cached={len(self._cache)})"


def _node_first(t: torch.Tensor, spatial_ndim: int) -> torch.Tensor:
    """``(..., C, *S)`` -> ``(n_nodes, ..., C)`` with nodes in C order of ``S``."""
    lead = t.shape[: t.ndim - spatial_ndim]
    flat = t.reshape(*lead, -1)
    return flat.movedim(-1, 0).contiguous()


def to_data(
    sample: Mapping[str, torch.Tensor], pos: np.ndarray, builder: GraphBuilder, spatial_ndim: int
) -> Data:
    """Turn a grid-view sample dict into a ``torch_geometric.data.Data``.

    ``sample["input"]`` is ``([T,] C_in, *S)`` and ``pos`` ``(n_nodes, d)`` with ``n_nodes = prod(S)`` in C
    order (grid) or the mesh nodes (``spatial_ndim = 1``).
    """
    from torch_geometric.data import Data

    pos_t = torch.as_tensor(np.ascontiguousarray(pos))
    out: dict[str, Any] = {
        "pos": pos_t.to(sample["input"].dtype),
        "x": _node_first(sample["input"], spatial_ndim),
        "y": _node_first(sample["target"], spatial_ndim),
        "edge_index": builder.edges(pos),
    }
    if "params" in sample:
        out["params"] = sample["params"].reshape(1, -1)
    if "time" in sample:
        out["time"] = sample["time"].reshape(1, *sample["time"].shape)
    for key, value in sample.items():
        if key not in ("input", "target", "coords", "params", "time"):
            out[key] = value
    return Data(**out)
