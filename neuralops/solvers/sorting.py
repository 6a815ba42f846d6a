"""SKR: sort a sequence of linear systems so neighbours are similar, then solve it with recycling.

``skr_order`` is the greedy nearest-neighbour tour of "Accelerating Data Generation for Neural
Operators via Krylov Subspace Recycling" (Wang et al., ICLR 2024): start at one system and
repeatedly move to the unvisited system whose parameter array (coefficient field, source, or
their low-mode coefficients) is closest. ``solve_sequence`` solves the systems in that order with
one solver (a :class:`~neuralops.solvers.recycling.GCRODR` carries its recycle space from one
system to the next) and writes every result back at its original index, so the data set does
not depend on the solve order.

>>> from neuralops.solvers import gallery
>>> from neuralops.solvers.recycling import GCRODR
>>> skr_order(np.array([[0.0], [3.0], [1.0], [2.0]])).tolist()
[0, 2, 3, 1]
>>> A0 = gallery.convection_diffusion(12, eps=0.1)  # (144, 144)
>>> t = [0.0, 3.0, 1.0, 2.0]  # one parameter per system
>>> systems = [(A0 * (1 + 0.01 * ti), np.ones(144)) for ti in t]
>>> result = solve_sequence(systems, solver=GCRODR(m=20, k=5), features=np.array(t)[:, None])
>>> result.order.tolist(), result.converged_count
([0, 2, 3, 1], 4)
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from neuralops.solvers._backend import is_torch
from neuralops.solvers.operators import as_operator
from neuralops.solvers.recycling import RecycleSpace
from neuralops.solvers.solution import Solution

__all__ = ["skr_order", "solve_sequence", "SequenceResult", "METRICS"]

log = logging.getLogger("neuralops.solvers")

#: names accepted by ``skr_order(metric=...)``: distances between flattened parameter arrays
METRICS = ("fro", "l1", "linf")

Metric = str | Callable[[np.ndarray, np.ndarray], float]


def _check_finite(items: Sequence[Any]) -> None:
    """Raise ``ValueError`` naming the first system whose features hold NaN or Inf."""
    for i, f in enumerate(items):
        try:
            values = np.asarray(f, dtype=np.float64)
        except (TypeError, ValueError):
            continue  # not numeric: only a callable metric can compare it
        if not np.isfinite(values).all():
            raise ValueError(
                f"features of system {i} contain NaN or Inf; check the parameter arrays of "
                f"system {i} before sorting"
            )


def _feature_matrix(items: Sequence[Any]) -> np.ndarray:
    """(N, p) float64 array of the flattened features; a ragged shape names the index."""
    arrays = [np.asarray(f, dtype=np.float64) for f in items]
    for i, a in enumerate(arrays):
        if a.shape != arrays[0].shape:
            raise ValueError(
                f"features of system {i} have shape {a.shape}, expected {arrays[0].shape} like "
                "system 0; pass features of one shape (e.g. low-mode coefficients)"
            )
    return np.stack([a.reshape(-1) for a in arrays])


def _distances(
    X: np.ndarray | None,
    cur: int,
    metric: Metric,
    raw: Sequence[Any] | None,
    sq: np.ndarray | None = None,
) -> np.ndarray:
    """Distances (N,) from item ``cur`` to every item: rows of X (N, p) or, for a callable
    metric, the items ``raw``. "fro" returns squared distances (same order, cheaper)."""
    if metric == "fro":
        sq = np.einsum("ij,ij->i", X, X) if sq is None else sq
        return np.maximum(sq - 2.0 * (X @ X[cur]) + sq[cur], 0.0)
    if metric == "l1":
        return np.abs(X - X[cur]).sum(axis=1)
    if metric == "linf":
        return np.abs(X - X[cur]).max(axis=1)
    return np.array([metric(raw[cur], item) for item in raw], dtype=np.float64)


def _greedy(
    X: np.ndarray | None, start: int, metric: Metric, raw: Sequence[Any] | None
) -> np.ndarray:
    """Greedy nearest-neighbour tour from ``start`` over the rows of X (N, p), or over the
    items ``raw`` with a callable metric."""
    N = len(raw) if raw is not None else X.shape[0]
    visited = np.zeros(N, dtype=bool)
    tour = np.empty(N, dtype=np.int64)
    sq = np.einsum("ij,ij->i", X, X) if metric == "fro" else None
    cur = start
    for pos in range(N):
        tour[pos] = cur
        visited[cur] = True
        if pos == N - 1:
            break
        d = _distances(X, cur, metric, raw, sq)
        d[visited] = np.inf
        cur = int(np.argmin(d))
    return tour


def _leading_component(X: np.ndarray) -> np.ndarray:
    """Scores (N,) of the rows of X on their leading principal component."""
    Xc = X - X.mean(axis=0)
    N, p = Xc.shape
    if p <= 1024:
        _, vecs = np.linalg.eigh(Xc.T @ Xc)
        v = vecs[:, -1]
    else:  # power iteration from the row of largest norm (deterministic)
        v = Xc[int(np.argmax(np.einsum("ij,ij->i", Xc, Xc)))].copy()
        for _ in range(100):
            w = Xc.T @ (Xc @ v)
            nw = np.linalg.norm(w)
            if nw == 0:
                break
            w /= nw
            done = np.linalg.norm(w - v) < 1e-10
            v = w
            if done:
                break
    return Xc @ v


def skr_order(
    features: Sequence[Any] | np.ndarray,
    *,
    start: int = 0,
    metric: Metric = "fro",
    block: int = 2000,
) -> np.ndarray:
    """Greedy nearest-neighbour order of N systems by the distance of their parameter arrays.

    ``features``: N arrays of one shape (any shape; flattened to p values), or an (N, ...) array.
    ``metric``: ``"fro"`` (Euclidean / Frobenius norm of the difference), ``"l1"``, ``"linf"``,
    or a callable ``(f_i, f_j) -> float`` on the arrays as given. Cost O(N² p); for N > ``block``
    the systems are first ordered by their score on the leading principal component and cut
    into contiguous blocks of at most ``block``; the tour starts in the block holding ``start``,
    runs through the later blocks and then the earlier ones, each block entered at its system
    nearest to the last one visited. Returns the permutation (N,) int64, ``order[0] == start``.
    Raises ``ValueError`` naming the system whose features hold NaN/Inf or differ in shape.

    >>> skr_order([[0.0, 0.0], [5.0, 5.0], [1.0, 0.0]], metric="l1").tolist()
    [0, 2, 1]
    """
    if not (isinstance(metric, str) and metric in METRICS) and not callable(metric):
        raise ValueError(f"metric must be one of {METRICS} or a callable, got {metric!r}")
    if not isinstance(block, int | np.integer) or block < 2:
        raise ValueError(f"block must be an integer >= 2, got {block!r}")
    items = list(features)
    N = len(items)
    if N == 0:
        return np.empty(0, dtype=np.int64)
    if not isinstance(start, int | np.integer) or not 0 <= start < N:
        raise ValueError(f"start must be an index in [0, {N}), got {start!r}")
    _check_finite(items)
    raw = None if isinstance(metric, str) else items
    if raw is not None and N <= block:
        return _greedy(None, int(start), metric, raw)
    X = _feature_matrix(items)
    if N <= block:
        return _greedy(X, int(start), metric, None)
    by_score = np.argsort(_leading_component(X), kind="stable")
    nblocks = math.ceil(N / block)
    blocks = np.array_split(by_score, nblocks)
    first = next(b for b, idx in enumerate(blocks) if start in idx)
    if first >= nblocks / 2:  # walk towards the nearer end first
        blocks, first = blocks[::-1], nblocks - 1 - first
    sequence = list(range(first, nblocks)) + list(range(first - 1, -1, -1))
    tour: list[np.ndarray] = []
    for b in sequence:
        idx = blocks[b]
        if not tour:
            local_start = int(np.flatnonzero(idx == start)[0])
        else:
            cand = np.concatenate([[tour[-1][-1]], idx])  # the last system, then the block
            sub = None if raw is None else [raw[i] for i in cand]
            local_start = int(np.argmin(_distances(X[cand], 0, metric, sub)[1:]))
        sub_raw = None if raw is None else [raw[i] for i in idx]
        tour.append(idx[_greedy(X[idx], local_start, metric, sub_raw)])
    return np.concatenate(tour).astype(np.int64)


@dataclass(frozen=True)
class SequenceResult:
    """Solutions of a sequence of systems, in the systems' original order.

    ``solutions[i]`` solves system i whatever the solve order; ``order`` is the permutation
    used (``order[pos]`` = the system solved at position ``pos``); ``true_residuals[i]`` is
    ``||b_i - A_i x_i|| / ||b_i||`` recomputed here; ``seconds`` includes ``sort_seconds``.
    """

    solutions: tuple[Solution, ...]
    order: np.ndarray
    true_residuals: np.ndarray
    seconds: float
    sort_seconds: float = 0.0
    method: str = "given"
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def iterations(self) -> np.ndarray:
        """(N,) iterations per system, original order."""
        return np.array([s.iterations for s in self.solutions], dtype=np.int64)

    @property
    def total_iterations(self) -> int:
        return int(self.iterations.sum())

    @property
    def mean_iterations(self) -> float:
        return float(self.iterations.mean()) if self.solutions else 0.0

    @property
    def converged_count(self) -> int:
        return sum(bool(s.converged) for s in self.solutions)

    @property
    def max_residual(self) -> float:
        """Largest true relative residual over the sequence."""
        return float(self.true_residuals.max()) if self.true_residuals.size else 0.0

    @property
    def summary(self) -> dict[str, Any]:
        """Plain-JSON totals: seconds (incl. sort), iterations, matvecs, convergence."""
        matvecs = sum(int(s.info.get("matvecs", 0)) for s in self.solutions)
        return {
            "systems": len(self.solutions),
            "order": self.method,
            "seconds": self.seconds,
            "sort_seconds": self.sort_seconds,
            "total_iterations": self.total_iterations,
            "mean_iterations": self.mean_iterations,
            "total_matvecs": matvecs,
            "converged": self.converged_count,
            "max_true_residual": self.max_residual,
        }

    def __repr__(self) -> str:
        return (
            f"SequenceResult(systems={len(self.solutions)}, order={self.method!r}, "
            f"converged={self.converged_count}/{len(self.solutions)}, "
            f"mean_iterations={self.mean_iterations:.1f}, max_residual={self.max_residual:.2e}, "
            f"seconds={self.seconds:.3g})"
        )


def _unpack(system: Any, i: int) -> tuple[Any, Any]:
    if isinstance(system, tuple | list) and len(system) == 2:
        return system[0], system[1]
    try:
        return system.A, system.b
    except AttributeError:
        raise TypeError(
            f"system {i} must be an (A, b) pair or have .A and .b, got {type(system).__name__}"
        ) from None


def _default_features(systems: Sequence[Any]) -> list[np.ndarray]:
    """Matrix values and right-hand side of each system (all must share A's sparsity pattern)."""
    out, ref = [], None
    for i, system in enumerate(systems):
        A, b = _unpack(system, i)
        if sp.issparse(A):
            A = sp.csr_matrix(A)
            A.sort_indices()
            pattern = (A.shape, A.indptr.tobytes(), A.indices.tobytes())
            vals = A.data
        else:
            A = np.asarray(A)
            pattern, vals = (A.shape,), A.ravel()
        if ref is None:
            ref = pattern
        elif pattern != ref:
            raise ValueError(
                f"system {i} has another matrix size or sparsity pattern than system 0, so "
                "default SKR features (matrix values) are undefined; pass features= "
                "(e.g. the PDE family's sort_features(params))"
            )
        out.append(np.concatenate([np.asarray(vals, dtype=np.float64), np.ravel(b)]))
    return out


def _recycle_space(solver: Any) -> RecycleSpace | None:
    """The recycle space of a GCRODR (or of a wrapper holding one as ``.solver``)."""
    for obj in (solver, getattr(solver, "solver", None)):
        space = getattr(obj, "recycle", None)
        if isinstance(space, RecycleSpace):
            return space
    return None


def solve_sequence(
    systems: Sequence[Any],
    *,
    order: str | Sequence[int] | np.ndarray = "skr",
    solver: Any,
    features: Sequence[Any] | np.ndarray | None = None,
    rng: np.random.Generator | int | None = None,
    metric: Metric = "fro",
    start: int = 0,
    reset: bool = True,
) -> SequenceResult:
    """Solve N systems in SKR, given, random or explicit order with one ``solver``.

    ``systems``: a sequence (indexable, so it may assemble lazily) of ``(A, b)`` pairs or
    objects with ``.A`` (n, n) and ``.b`` (n,). ``solver``: any object with
    ``solve(A, b) -> Solution``; a :class:`~neuralops.solvers.recycling.GCRODR` (or a
    ``Preconditioned`` wrapper around one) carries its recycle space from system to system.
    ``order``: ``"skr"`` (:func:`skr_order` on ``features`` with ``metric``/``start``),
    ``"given"``, ``"random"`` (``rng`` seeds it), or an explicit permutation of range(N).
    ``features``: per-system parameter arrays for ``"skr"``, e.g. a PDE family's
    ``sort_features(params)`` (default: the matrix values and b, which must share one sparsity
    pattern; a lazy sequence is then assembled twice). ``reset``: empty the recycle space
    first, so each call is an independent chain; ``False`` continues from the current space.
    Results are written back at the original indices: ``solutions[i].x`` (n_i,) solves system
    i. For chains or a resumed run pass the subset, e.g. ``[systems[i] for i in chain]`` with
    ``order="given"``; its results come back in the subset's order.
    """
    t0 = time.perf_counter()
    N = len(systems)
    if isinstance(order, str):
        if order == "skr":
            feats = _default_features(systems) if features is None else features
            if len(feats) != N:
                raise ValueError(
                    f"features has {len(feats)} entries, expected one per system ({N})"
                )
            perm = skr_order(feats, start=start, metric=metric)
        elif order == "given":
            perm = np.arange(N, dtype=np.int64)
        elif order == "random":
            gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
            perm = gen.permutation(N).astype(np.int64)
        else:
            raise ValueError(
                f"order must be 'skr', 'given', 'random' or a permutation, got {order!r}"
            )
        method = order
    else:
        perm = np.asarray(order, dtype=np.int64).reshape(-1)
        if perm.shape != (N,) or not np.array_equal(np.sort(perm), np.arange(N)):
            raise ValueError(f"order must be a permutation of range({N}), got {order!r}")
        method = "explicit"
    sort_seconds = time.perf_counter() - t0
    space = _recycle_space(solver)
    if reset and space is not None:
        space.reset()
    solutions: list[Solution | None] = [None] * N
    residuals = np.full(N, np.nan)
    for pos, i in enumerate(perm.tolist()):
        A, b = _unpack(systems[i], i)
        try:
            sol = solver.solve(A, b)
        except Exception as exc:
            exc.add_note(f"while solving system {i} (position {pos} of the {method} order)")
            raise
        x = sol.x.detach().cpu().numpy() if is_torch(sol.x) else np.asarray(sol.x)
        bb = np.asarray(b, dtype=np.float64).reshape(-1)
        bnorm = float(np.linalg.norm(bb))
        r = float(np.linalg.norm(bb - np.asarray(as_operator(A).matvec(x)).reshape(-1)))
        residuals[i] = r / bnorm if bnorm > 0 else r
        solutions[i] = sol
        log.debug("system %d (position %d): %r", i, pos, sol)
    result = SequenceResult(
        solutions=tuple(solutions),  # type: ignore[arg-type]
        order=perm,
        true_residuals=residuals,
        seconds=time.perf_counter() - t0,
        sort_seconds=sort_seconds,
        method=method,
    )
    log.info("solve_sequence: %r", result)
    return result
