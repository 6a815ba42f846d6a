"""What the generation workers run: one unit of work is one sample, or one recycling chain.

Workers are spawned (never forked) with one BLAS/OpenMP thread each, so a sample's bits do not
depend on the number of workers. Each worker builds the family and the solver once from the
recipe text. A chain (Krylov recycling, SKR) is solved in its given order with a fresh GCRO-DR
recycle space, so re-running an interrupted chain from its start reproduces it exactly.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import time
from collections.abc import Iterator, Sequence

import numpy as np

from neuralops.data.errors import RecipeError
from neuralops.data.schema import FAILED, OK, SolverRecord
from neuralops.pde.recipe import Recipe, parse_recipe

__all__ = [
    "sample_rng",
    "build",
    "run_pool",
    "compute_unit",
    "compute_features",
    "single_threaded_env",
]

_THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)
_WORKER: dict[str, object] = {}


def sample_rng(seed: int, i: int) -> np.random.Generator:
    """The generator of sample ``i``: independent of worker, order and resume state."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(i,))))


def build(recipe: Recipe):
    """The family and the per-sample solver a recipe describes (validates the family tables)."""
    from neuralops.pde import get_family

    family_cls = get_family(recipe.dataset.pde)
    try:
        family = family_cls.from_config(recipe.dataset.grid, recipe.params, recipe.pde_options)
    except RecipeError as exc:
        raise RecipeError(f"{recipe.source}: {exc}") from None
    if recipe.solver.method in ("cg", "pcg") and not getattr(family, "spd_guaranteed", True):
        raise RecipeError(
            f"{recipe.source}: 'solver.method' = {recipe.solver.method!r} needs symmetric positive "
            f"definite systems, but {recipe.dataset.pde} systems can be indefinite; use "
            'method = "gmres" (with a preconditioner) or "direct"'
        )
    if recipe.solver.preconditioner == "amg":
        try:
            import pyamg  # noqa: F401
        except ImportError:
            raise RecipeError(
                f"{recipe.source}: 'solver.preconditioner = \"amg\"' needs pyamg: "
                "pip install 'neuralops-pde[bench]' (or choose ilu, ic0, jacobi)"
            ) from None
    return family, _solver(recipe, recycled=False)


def _solver(recipe: Recipe, *, recycled: bool):
    from neuralops.solvers import make_solver

    s = recipe.solver
    if recycled and s.recycle.k == 0:  # sorted chains, preconditioner reused, no Krylov space
        return make_solver(
            "gmres" if s.method == "gcrodr" else s.method,
            preconditioner=s.preconditioner,
            rtol=s.rtol,
            maxiter=s.maxiter,
            reuse_preconditioner=True,
            rebuild_growth=s.recycle.rebuild_growth,
        )
    if recycled:
        return make_solver(
            "gcrodr",
            preconditioner=s.preconditioner,
            rtol=s.rtol,
            maxiter=s.maxiter,
            m=s.recycle.m,
            k=s.recycle.k,
            reuse_preconditioner=s.recycle.reuse_preconditioner,
            rebuild_growth=s.recycle.rebuild_growth,
        )
    return make_solver(s.method, preconditioner=s.preconditioner, rtol=s.rtol, maxiter=s.maxiter)


def _init(text: str, source: str) -> None:
    recipe = parse_recipe(text, source)
    family, solver = build(recipe)
    _WORKER.update(recipe=recipe, family=family, solver=solver)


def _sample(i: int, solver) -> dict[str, np.ndarray]:
    """Sample ``i`` as staged arrays; any exception becomes a failed sample, never a crash."""
    recipe: Recipe = _WORKER["recipe"]  # type: ignore[assignment]
    family = _WORKER["family"]
    t0 = time.perf_counter()
    try:
        params = family.sample_params(sample_rng(recipe.dataset.seed, i))
        result = family.solve(params, solver)
        arrays = {f"f:{k}": np.asarray(v) for k, v in result.fields.items()}
        arrays.update({f"p:{k}": np.asarray(v) for k, v in result.params.items()})
        rec = result.record
        status, error = (FAILED, result.error) if result.failed else (OK, "")
    except Exception as exc:  # noqa: BLE001 - any failure of one sample is recorded, not raised
        arrays = {}
        rec = SolverRecord(seconds=time.perf_counter() - t0)
        status, error = FAILED, f"{type(exc).__name__}: {exc}"
    arrays.update(
        {
            "__status": np.asarray(status, np.uint8),
            "__error": np.asarray(error),
            "__iterations": np.asarray(rec.iterations, np.int64),
            "__residual": np.asarray(rec.residual, np.float64),
            "__seconds": np.asarray(rec.seconds, np.float64),
            "__converged": np.asarray(rec.converged, bool),
        }
    )
    return arrays


def compute_unit(unit: tuple[bool, tuple[int, ...]]) -> list[tuple[int, dict[str, np.ndarray]]]:
    """``(recycled, indices)``: independent samples, or one chain sharing a recycle space."""
    recycled, indices = unit
    if not recycled:
        return [(i, _sample(i, _WORKER["solver"])) for i in indices]
    solver = _solver(_WORKER["recipe"], recycled=True)  # a fresh recycle space per chain
    return [(i, _sample(i, solver)) for i in indices]


def compute_features(indices: tuple[int, ...]) -> list[tuple[int, np.ndarray]]:
    """Sort features (SKR) of samples ``indices``: cheap, parameters only, no solve."""
    recipe: Recipe = _WORKER["recipe"]  # type: ignore[assignment]
    family = _WORKER["family"]
    out = []
    for i in indices:
        params = family.sample_params(sample_rng(recipe.dataset.seed, i))
        out.append((i, np.asarray(family.sort_features(params), dtype=np.float64)))
    return out


@contextlib.contextmanager
def single_threaded_env() -> Iterator[None]:
    """One BLAS/OpenMP thread in processes started inside the block (the environment is restored)."""
    saved = {k: os.environ.get(k) for k in _THREAD_VARS}
    os.environ.update({k: "1" for k in _THREAD_VARS})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_pool(recipe: Recipe, fn, units: Sequence, workers: int, *, ordered=False) -> Iterator:
    """Map ``fn`` over ``units`` in spawned workers with one thread each; yields as they finish."""
    ctx = mp.get_context("spawn")
    with single_threaded_env():
        pool = ctx.Pool(
            max(1, min(workers, len(units))),
            initializer=_init,
            initargs=(recipe.text, recipe.source),
        )
    try:
        mapper = pool.imap if ordered else pool.imap_unordered
        yield from mapper(fn, units, chunksize=1)
        pool.close()
    finally:
        pool.terminate()
        pool.join()
