"""Planning recycled generation (SKR): sort the samples, cut the order into chains.

With ``[solver] recycle = { enabled = true, ... }`` the pipeline draws every sample's parameters
(cheap, no solve), computes the family's sort features (low Fourier modes of the coefficient),
orders the samples greedily by nearest neighbour (``neuralops.solvers.skr_order``) and cuts the
order into chains of ``chain_length``. A chain is the unit of work: one worker solves it in order
with one GCRO-DR instance, so the recycle space carries from one system to the next; results go
back to their sample indices. The chains depend only on the recipe, not on the worker count, and
an interrupted chain is recomputed from its start, so the file is the same however it was run.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from neuralops.pde import _staging, _workers
from neuralops.pde.recipe import Recipe

__all__ = ["plan_chains", "sort_order"]

log = logging.getLogger(__name__)


def sort_order(recipe: Recipe, staging: Path, workers: int) -> np.ndarray:
    """The solve order of all samples (cached features, computed in parallel when missing)."""
    n = recipe.dataset.n_samples
    if recipe.solver.recycle.sort == "none":
        return np.arange(n)
    from neuralops.solvers.sorting import skr_order

    t0 = time.perf_counter()
    features = _staging.load_features(staging, recipe.sha256, n)
    if features is None:
        blocks = [tuple(range(j, min(n, j + 32))) for j in range(0, n, 32)]
        rows: dict[int, np.ndarray] = {}
        for part in _workers.run_pool(recipe, _workers.compute_features, blocks, workers):
            rows.update(part)
        features = np.stack([rows[i] for i in range(n)])
        _staging.save_features(staging, features, recipe.sha256)
    order = np.asarray(skr_order(features), dtype=np.int64)
    log.info("SKR: sorted %d samples in %.2f s", n, time.perf_counter() - t0)
    return order


def plan_chains(recipe: Recipe, staging: Path, workers: int) -> list[tuple[int, ...]]:
    """Chains of sample indices in solve order; each is solved with one recycle space."""
    order = sort_order(recipe, staging, workers)
    length = recipe.solver.recycle.chain_length
    return [tuple(int(i) for i in order[j : j + length]) for j in range(0, len(order), length)]
