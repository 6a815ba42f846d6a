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

import hashlib
import logging
import multiprocessing as mp
import os
import shutil
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neuralops.data.errors import DataError, RecipeError
from neuralops.data.schema import FAILED, OK, DatasetWriter, SolverRecord, open_file
from neuralops.pde.recipe import Recipe, flatten, load_recipe, parse_recipe

__all__ = ["generate", "GenerateReport", "GenerationError", "sample_rng", "split_indices"]

log = logging.getLogger(__name__)

_THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)


class GenerationError(DataError):
    """Generation cannot start or continue (existing output from another recipe, ...)."""


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


def sample_rng(seed: int, i: int) -> np.random.Generator:
    """The generator of sample ``i``: independent of worker, order and resume state."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(i,))))


def split_indices(seed: int, n: int, splits: dict[str, int]) -> dict[str, np.ndarray]:
    """Fixed, seeded assignment of sample indices to splits (sorted int64 arrays)."""
    perm = np.random.default_rng([seed, 0x5E11]).permutation(n)
    out, start = {}, 0
    for name in ("train", "val", "test"):
        k = int(splits.get(name, 0))
        out[name] = np.sort(perm[start : start + k]).astype(np.int64)
        start += k
    return out


# ---------------------------------------------------------------------------- workers
_WORKER: dict[str, object] = {}


def _build(recipe: Recipe):
    from neuralops.pde import get_family
    from neuralops.solvers import make_solver

    family_cls = get_family(recipe.dataset.pde)
    try:
        family = family_cls.from_config(recipe.dataset.grid, recipe.params, recipe.pde_options)
    except RecipeError as exc:
        raise RecipeError(f"{recipe.source}: {exc}") from None
    s = recipe.solver
    solver = make_solver(s.method, preconditioner=s.preconditioner, rtol=s.rtol, maxiter=s.maxiter)
    return family, solver


def _worker_init(text: str, source: str) -> None:
    recipe = parse_recipe(text, source)
    family, solver = _build(recipe)
    _WORKER.update(recipe=recipe, family=family, solver=solver)


def _compute(i: int) -> tuple[int, dict[str, np.ndarray]]:
    """Compute sample ``i`` in a worker; exceptions become a failed sample, never a crash."""
    recipe: Recipe = _WORKER["recipe"]  # type: ignore[assignment]
    family = _WORKER["family"]
    t0 = time.perf_counter()
    try:
        params = family.sample_params(sample_rng(recipe.dataset.seed, i))
        result = family.solve(params, _WORKER["solver"])
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
    return i, arrays


# ---------------------------------------------------------------------------- staging
def _digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for key in sorted(arrays):
        a = np.ascontiguousarray(arrays[key])
        h.update(key.encode() + str(a.dtype).encode() + str(a.shape).encode() + a.tobytes())
    return h.hexdigest()


def _unit_path(staging: Path, i: int) -> Path:
    return staging / f"unit-{i:08d}.npz"


def _write_atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        write(fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _commit_unit(staging: Path, i: int, arrays: dict[str, np.ndarray], recipe_sha: str) -> None:
    payload = dict(arrays, __recipe_sha256=np.asarray(recipe_sha))
    payload["__data_sha256"] = np.asarray(_digest(payload))
    _write_atomic(_unit_path(staging, i), lambda fh: np.savez(fh, **payload))


def _load_unit(path: Path, recipe_sha: str) -> dict[str, np.ndarray] | None:
    """The unit's arrays, or None when it is unreadable, from another recipe or corrupt."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception:  # noqa: BLE001 - any unreadable unit is recomputed
        return None
    stored = str(arrays.pop("__data_sha256", ""))
    if str(arrays.get("__recipe_sha256", "")) != recipe_sha or _digest(arrays) != stored:
        return None
    return arrays


def _prepare_staging(staging: Path, recipe: Recipe, restart: bool) -> None:
    if restart and staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True, exist_ok=True)
    saved = staging / "recipe.toml"
    if saved.exists():
        old = saved.read_text()
        if old != recipe.text:
            try:
                a, b = flatten(parse_recipe(old).as_dict()), flatten(recipe.as_dict())
                diff = [
                    f"  {k}: {a.get(k, '<absent>')!r} -> {b.get(k, '<absent>')!r}"
                    for k in sorted(set(a) | set(b))
                    if a.get(k) != b.get(k)
                ]
            except RecipeError:
                diff = ["  (the staged recipe no longer parses)"]
            raise GenerationError(
                f"{staging} holds units of a different recipe; changed keys:\n"
                + ("\n".join(diff) or "  (formatting only)")
                + "\nrerun with --restart to discard them, or restore the recipe to resume"
            )
        return
    _write_atomic(saved, lambda fh: fh.write(recipe.text.encode()))


def _scan_staging(staging: Path, n: int, recipe_sha: str) -> set[int]:
    done: set[int] = set()
    for p in staging.glob("unit-*.npz"):
        try:
            i = int(p.stem.split("-")[1])
        except (IndexError, ValueError):
            continue
        if 0 <= i < n and _load_unit(p, recipe_sha) is not None:
            done.add(i)
        else:
            log.warning("discarding unreadable or foreign staged unit %s", p.name)
            p.unlink(missing_ok=True)
    for p in staging.glob(".*.tmp-*"):
        p.unlink(missing_ok=True)  # a write that was cut short
    return done


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


def _run_units(recipe: Recipe, todo: list[int], workers: int) -> Iterable[tuple[int, dict]]:
    """Compute ``todo`` in spawned workers with one thread each; yields as units finish."""
    ctx = mp.get_context("spawn")
    saved = {k: os.environ.get(k) for k in _THREAD_VARS}
    os.environ.update({k: "1" for k in _THREAD_VARS})
    try:
        pool = ctx.Pool(
            min(workers, len(todo)), initializer=_worker_init, initargs=(recipe.text, recipe.source)
        )
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    try:
        yield from pool.imap_unordered(_compute, todo, chunksize=1)
        pool.close()
    finally:
        pool.terminate()
        pool.join()


def _assemble(recipe: Recipe, family, out: Path, staging: Path) -> tuple[str, dict[str, int]]:
    d = recipe.dataset
    partial = out.with_name(out.name + ".partial")
    counts = {"ok": 0, "failed": 0, "pending": 0}
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
        fletcher32=recipe.run.fletcher32,
        compression=recipe.run.compression,
    )
    with writer:
        for i in range(d.n_samples):
            path = _unit_path(staging, i)
            arrays = _load_unit(path, recipe.sha256) if path.exists() else None
            if arrays is None:
                counts["pending"] += 1
                continue
            status = int(arrays["__status"])
            counts["ok" if status == OK else "failed"] += 1
            writer.write_sample(
                i,
                fields={k[2:]: v for k, v in arrays.items() if k.startswith("f:")}
                if status == OK
                else None,
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
) -> GenerateReport:
    """Generate (or resume) the dataset a recipe describes; returns a :class:`GenerateReport`.

    ``limit`` computes at most that many more samples; ``assemble`` writes the file from
    whatever is staged (the rest pending); ``stop_after`` stops after that many committed units,
    as a kill would (a test hook). Staged units are removed once the complete file is written,
    unless ``keep_staging``.
    """
    t0 = time.perf_counter()
    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe)
    family, _ = _build(recipe)  # validates the family tables before any work
    d = recipe.dataset
    out = Path(out or recipe.run.out)
    workers = int(workers or recipe.run.workers)
    if workers < 1:
        raise RecipeError(f"workers must be >= 1, got {workers}")
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
    _prepare_staging(staging, recipe, restart)
    done = _scan_staging(staging, d.n_samples, recipe.sha256)
    todo = [i for i in range(d.n_samples) if i not in done]
    if limit is not None:
        todo = todo[: max(0, int(limit))]
    if stop_after is not None:
        todo = todo[: max(0, int(stop_after))]
    log.info(
        "generate %s: %d samples, %d staged, %d to compute with %d workers",
        d.name,
        d.n_samples,
        len(done),
        len(todo),
        workers,
    )

    computed = 0
    bar = _Progress(d.n_samples, len(done), progress)
    try:
        if todo:
            for i, arrays in _run_units(recipe, todo, workers):
                _commit_unit(staging, i, arrays, recipe.sha256)
                computed += 1
                bar.update(failed=int(arrays["__status"]) == FAILED)
    finally:
        bar.close()
    remaining = d.n_samples - len(done) - computed
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
