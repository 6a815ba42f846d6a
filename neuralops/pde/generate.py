"""``neuralops generate``: recipe -> parallel, resumable, bit-reproducible HDF5 dataset.

Pipeline (data.md section 4):

1. The recipe is parsed and the family validates its tables before any work starts.
2. Sample ``i`` draws from ``Generator(PCG64(SeedSequence(seed, spawn_key=(i,))))``, whatever
   the worker, the order or the resume state. Workers are *spawned* with one BLAS/OpenMP thread,
   so the bits do not depend on the number of workers.
3. Workers compute; the main process is the only writer. Each finished sample is committed to
   ``<out>.staging/unit-<i>.npz`` (temporary name, fsync, ``os.replace``) with the recipe hash and
   a sha256 of its arrays inside.
4. When every unit is staged, the assembler streams them in index order into ``<out>.partial``,
   computes train statistics and the content digest, sets ``complete`` and renames the file to
   ``<out>``. A killed run leaves only whole staged units behind; a rerun skips them.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neuralops.data.errors import DataError, RecipeError
from neuralops.data.schema import FAILED, OK, DatasetWriter, SolverRecord, open_file
from neuralops.pde._staging import (
    GenerationError,
    commit_unit,
    load_unit,
    prepare_staging,
    scan_staging,
    unit_path,
)
from neuralops.pde._workers import build, compute_unit, run_pool, sample_rng
from neuralops.pde.recipe import Recipe, load_recipe

__all__ = ["generate", "GenerateReport", "GenerationError", "sample_rng", "split_indices"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GenerateReport:
    """What a ``generate`` call did. ``exit_code`` is 0, or 3 when failures exceed the limit."""

    path: Path
    n_samples: int
    n_ok: int
    n_failed: int
    n_pending: int
    computed: int
    seconds: float
    complete: bool
    content_sha256: str | None
    max_failed_fraction: float
    interrupted: bool = False
    skipped: bool = False

    @property
    def exit_code(self) -> int:
        if self.n_failed > self.max_failed_fraction * self.n_samples:
            return 3
        return 0

    def summary(self) -> str:
        state = (
            "already complete, nothing to do"
            if self.skipped
            else "complete"
            if self.complete
            else f"interrupted, {self.n_pending} pending: run again to resume"
            if self.interrupted
            else f"{self.n_pending} pending"
        )
        line = (
            f"{self.path}: {self.n_ok} ok, {self.n_failed} failed of {self.n_samples} "
            f"({state}); computed {self.computed} in {self.seconds:.1f} s"
        )
        if self.exit_code == 3:
            line += (
                f"\nfailed fraction {self.n_failed / self.n_samples:.3f} exceeds "
                f"run.max_failed_fraction = {self.max_failed_fraction}; see /error in the file"
            )
        return line


def split_indices(seed: int, n: int, splits: dict[str, int]) -> dict[str, np.ndarray]:
    """Fixed, seeded assignment of sample indices to splits (sorted int64 arrays)."""
    perm = np.random.default_rng([seed, 0x5E11]).permutation(n)
    out, start = {}, 0
    for name in ("train", "val", "test"):
        k = int(splits.get(name, 0))
        out[name] = np.sort(perm[start : start + k]).astype(np.int64)
        start += k
    return out


# ---------------------------------------------------------------------------- running
class _Progress:
    """tqdm bar on a terminal, a log line every 5 % otherwise."""

    def __init__(self, total: int, initial: int, enabled: bool | None) -> None:
        self.total, self.done, self.failed = total, initial, 0
        self.t0 = time.perf_counter()
        self.start = initial
        self.next_log = 0.05
        tty = sys.stderr.isatty() if enabled is None else enabled
        self.bar = None
        if tty:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=initial, unit="sample", desc="generate")

    def update(self, failed: bool) -> None:
        self.done += 1
        self.failed += int(failed)
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(failed=self.failed)
        elif self.done / self.total >= self.next_log or self.done == self.total:
            rate = (self.done - self.start) / max(time.perf_counter() - self.t0, 1e-9)
            eta = (self.total - self.done) / rate if rate > 0 else float("inf")
            log.info(
                "generate: %d/%d samples (%d failed), %.2f samples/s, ETA %.0f s",
                self.done,
                self.total,
                self.failed,
                rate,
                eta,
            )
            while self.next_log <= self.done / self.total:
                self.next_log += 0.05

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _assemble(recipe: Recipe, family, out: Path, staging: Path) -> tuple[str, dict[str, int]]:
    d = recipe.dataset
    partial = out.with_name(out.name + ".partial")
    counts = {"ok": 0, "failed": 0, "pending": 0}
    ragged = bool(getattr(family, "ragged", False))  # mesh families: fields per node + /mesh/pos
    writer = DatasetWriter(
        partial,
        pde=d.pde,
        n_samples=d.n_samples,
        fields=family.field_specs(),
        spatial_dims=family.spatial_dims,
        coords=family.coords(),
        params=family.param_specs(),
        seed=d.seed,
        recipe_text=recipe.text,
        extra_attrs={"solver_config": _solver_config(recipe)},
        fletcher32=recipe.run.fletcher32,
        compression=recipe.run.compression,
        ragged=ragged,
        mesh_dim=len(family.spatial_dims) if ragged else None,
    )
    with writer:
        for i in range(d.n_samples):
            path = unit_path(staging, i)
            arrays = load_unit(path, recipe.sha256) if path.exists() else None
            if arrays is None:
                counts["pending"] += 1
                continue
            status = int(arrays["__status"])
            counts["ok" if status == OK else "failed"] += 1
            fields = {k[2:]: v for k, v in arrays.items() if k.startswith("f:")}
            pos = fields.pop("pos", None) if ragged else None
            writer.write_sample(
                i,
                fields=fields if status == OK else None,
                pos=pos if status == OK else None,
                params={k[2:]: v for k, v in arrays.items() if k.startswith("p:")},
                solver=SolverRecord(
                    int(arrays["__iterations"]),
                    float(arrays["__residual"]),
                    float(arrays["__seconds"]),
                    bool(arrays["__converged"]),
                ),
                status=status,
                error=str(arrays["__error"]),
            )
        writer.write_splits(split_indices(d.seed, d.n_samples, dict(d.splits)))
        digest = writer.finalize()
    with open(partial, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(partial, out)
    return digest, counts


def _check_existing(out: Path, recipe: Recipe, overwrite: bool) -> bool:
    """True when ``out`` is already the complete result of this recipe."""
    if not out.exists() or overwrite:
        return False
    try:
        with open_file(out) as f:
            same = f.attrs.get("recipe_sha256") == recipe.sha256
            complete = bool(f.attrs.get("complete", False))
    except DataError:
        same, complete = False, False
    if not same:
        raise GenerationError(
            f"{out} exists and was not made from this recipe ({recipe.source}); "
            "pass --overwrite to replace it or choose another --out"
        )
    return complete


def _plan(recipe: Recipe, staging: Path, workers: int, done: set[int]) -> list:
    """Units of work still to do: ``(False, (i,))`` per sample, or ``(True, chain)``."""
    n = recipe.dataset.n_samples
    if not recipe.solver.recycle.enabled:
        return [(False, (i,)) for i in range(n) if i not in done]
    from neuralops.pde.recycled import plan_chains

    # a chain is atomic: any missing sample means the whole chain is solved again from its start
    return [(True, c) for c in plan_chains(recipe, staging, workers) if not set(c) <= done]


def _solver_config(recipe: Recipe) -> str:
    s = recipe.solver
    config = {
        "method": s.method,
        "preconditioner": s.preconditioner,
        "rtol": s.rtol,
        "maxiter": s.maxiter,
    }
    if s.recycle.enabled:
        config.update(method="gcrodr", recycle=vars(s.recycle))
    return json.dumps(config, sort_keys=True)


def generate(
    recipe: str | os.PathLike | Recipe,
    *,
    out: str | os.PathLike | None = None,
    workers: int | None = None,
    restart: bool = False,
    overwrite: bool = False,
    limit: int | None = None,
    assemble: bool = False,
    keep_staging: bool = False,
    progress: bool | None = None,
    stop_after: int | None = None,
    dask: str | None = None,
) -> GenerateReport:
    """Generate (or resume) the dataset a recipe describes; returns a :class:`GenerateReport`.

    ``limit`` computes at most that many more samples; ``assemble`` writes the file from
    whatever is staged (the rest pending); ``stop_after`` stops after that many committed units,
    as a kill would (a test hook). Staged units are removed once the complete file is written,
    unless ``keep_staging``. ``dask="local"`` or ``"tcp://HOST:PORT"`` computes the units on a Dask
    cluster (extra ``distributed``); this process stays the only writer and the file is the same.
    """
    t0 = time.perf_counter()
    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe)
    family, _ = build(recipe)  # validates the family tables and the solver before any work
    d = recipe.dataset
    out = Path(out or recipe.run.out)
    workers = int(recipe.run.workers if workers is None else workers)
    if workers < 1:
        raise RecipeError(f"--workers must be >= 1, got {workers}")
    staging = out.with_name(out.name + ".staging")
    base = dict(path=out, n_samples=d.n_samples, max_failed_fraction=recipe.run.max_failed_fraction)

    if _check_existing(out, recipe, overwrite):
        with open_file(out) as f:
            st = f["status"][...]
            digest = str(f.attrs.get("content_sha256"))
        return GenerateReport(
            **base,
            n_ok=int((st == OK).sum()),
            n_failed=int((st == FAILED).sum()),
            n_pending=0,
            computed=0,
            seconds=time.perf_counter() - t0,
            complete=True,
            content_sha256=digest,
            skipped=True,
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    prepare_staging(staging, recipe, restart)
    done = scan_staging(staging, d.n_samples, recipe.sha256)
    units = _plan(recipe, staging, workers, done)
    budget = min(
        int(limit) if limit is not None else d.n_samples,
        int(stop_after) if stop_after is not None else d.n_samples,
    )
    chosen, n_todo = [], 0
    for unit in units:
        if n_todo >= budget:
            break
        chosen.append(unit)
        n_todo += len(unit[1])
    log.info(
        "generate %s: %d samples, %d staged, %d to compute with %d workers%s",
        d.name,
        d.n_samples,
        len(done),
        n_todo,
        workers,
        f" (Krylov recycling, chains of {recipe.solver.recycle.chain_length})"
        if recipe.solver.recycle.enabled
        else "",
    )

    computed = 0
    fresh: set[int] = set()
    bar = _Progress(d.n_samples, len(done), progress)
    try:
        if chosen:
            if dask:
                from neuralops.pde._dask import run_dask

                stream = run_dask(recipe, "compute_unit", chosen, dask, workers)
            else:
                stream = run_pool(recipe, compute_unit, chosen, workers)
            for results in stream:
                for i, arrays in results:
                    commit_unit(staging, i, arrays, recipe.sha256)
                    computed += 1
                    if i not in done:
                        fresh.add(i)
                        bar.update(failed=int(arrays["__status"]) == FAILED)
    finally:
        bar.close()
    done |= fresh
    remaining = d.n_samples - len(done)
    if remaining and not assemble:
        return GenerateReport(
            **base,
            n_ok=0,
            n_failed=0,
            n_pending=remaining,
            computed=computed,
            seconds=time.perf_counter() - t0,
            complete=False,
            content_sha256=None,
            interrupted=True,
        )
    digest, counts = _assemble(recipe, family, out, staging)
    complete = counts["pending"] == 0
    if complete and not keep_staging:
        shutil.rmtree(staging, ignore_errors=True)
    return GenerateReport(
        **base,
        n_ok=counts["ok"],
        n_failed=counts["failed"],
        n_pending=counts["pending"],
        computed=computed,
        seconds=time.perf_counter() - t0,
        complete=complete,
        content_sha256=digest,
        interrupted=not complete,
    )
