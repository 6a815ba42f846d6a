"""Dataset recipes: TOML files parsed into typed, validated dataclasses before any work starts.

A recipe has four fixed tables and one free table per family parameter::

    [dataset]  name, pde, n_samples, seed, splits = {train, val, test}, grid = {size, store_stride}
    [pde]      family options (for example ``forcing`` for Darcy); optional
    [params.X] one sampler table per random parameter X of the family
    [solver]   method, preconditioner, rtol, maxiter, recycle = {enabled, sort, chain_length, k, m,
               reuse_preconditioner}
    [run]      out, workers, max_failed_fraction, compression, fletcher32

Unknown keys, wrong types and out-of-range values raise :class:`~neuralops.data.RecipeError`
naming the key path, what was expected and the closest valid key.
"""

from __future__ import annotations

import difflib
import hashlib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neuralops.data.errors import RecipeError
from neuralops.pde.base import GridConfig

__all__ = [
    "Recipe",
    "DatasetConfig",
    "SolverConfig",
    "RecycleConfig",
    "RunConfig",
    "load_recipe",
    "parse_recipe",
    "check_keys",
    "flatten",
]


def _suggest(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def check_keys(table: Mapping[str, Any], valid: list[str] | tuple[str, ...], where: str) -> None:
    """Raise :class:`RecipeError` for the first key of ``table`` not in ``valid``."""
    for key in table:
        if key not in valid:
            path = f"{where}.{key}" if where else key
            raise RecipeError(
                f"unknown key {path!r}{_suggest(key, list(valid))} (valid keys in "
                f"[{where or 'recipe'}]: {', '.join(sorted(valid))})"
            )


def _get(table: Mapping[str, Any], key: str, kind: type | tuple, where: str, default: Any = ...):
    if key not in table:
        if default is ...:
            raise RecipeError(f"missing key '{where}.{key}' ({_kind_name(kind)} expected)")
        return default
    value = table[key]
    ok = isinstance(value, kind) and not (isinstance(value, bool) and bool not in _tuple(kind))
    if kind is float or (isinstance(kind, tuple) and float in kind):
        ok = ok or (isinstance(value, int) and not isinstance(value, bool))
    if not ok:
        raise RecipeError(
            f"'{where}.{key}' must be {_kind_name(kind)}, got {type(value).__name__} {value!r}"
        )
    return float(value) if kind is float else value


def _tuple(kind) -> tuple:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind) -> str:
    names = {
        int: "an integer",
        float: "a number",
        str: "a string",
        bool: "true/false",
        dict: "a table",
        list: "a list",
    }
    return " or ".join(names.get(k, k.__name__) for k in _tuple(kind))


@dataclass(frozen=True)
class DatasetConfig:
    name: str
    pde: str
    n_samples: int
    seed: int
    splits: Mapping[str, int]
    grid: GridConfig


@dataclass(frozen=True)
class RecycleConfig:
    enabled: bool = False
    sort: str = "greedy"
    chain_length: int = 64
    k: int = 20
    m: int = 40
    reuse_preconditioner: bool = False
    rebuild_growth: float | None = 2.0


@dataclass(frozen=True)
class SolverConfig:
    method: str = "direct"
    preconditioner: str = "none"
    rtol: float = 1e-10
    maxiter: int | None = None
    recycle: RecycleConfig = field(default_factory=RecycleConfig)


@dataclass(frozen=True)
class RunConfig:
    out: str
    workers: int = 1
    max_failed_fraction: float = 0.01
    compression: str | None = None
    fletcher32: bool = True


@dataclass(frozen=True)
class Recipe:
    """A parsed recipe. ``text`` is the exact TOML source, stored in every file it makes."""

    dataset: DatasetConfig
    params: Mapping[str, Mapping[str, Any]]
    pde_options: Mapping[str, Any]
    solver: SolverConfig
    run: RunConfig
    text: str
    source: str = "<string>"

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    def as_dict(self) -> dict[str, Any]:
        return tomllib.loads(self.text)


def _dataset(t: Mapping[str, Any]) -> DatasetConfig:
    w = "dataset"
    check_keys(t, ["name", "pde", "n_samples", "seed", "splits", "grid"], w)
    n = _get(t, "n_samples", int, w)
    if n < 1:
        raise RecipeError(f"'dataset.n_samples' must be >= 1, got {n}")
    seed = _get(t, "seed", int, w, 0)
    if seed < 0:
        raise RecipeError(f"'dataset.seed' must be >= 0, got {seed}")
    splits = dict(_get(t, "splits", dict, w, {"train": n}))
    check_keys(splits, ["train", "val", "test"], "dataset.splits")
    for k, v in splits.items():
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise RecipeError(f"'dataset.splits.{k}' must be an integer >= 0, got {v!r}")
    if sum(splits.values()) > n:
        raise RecipeError(
            f"'dataset.splits' ask for {sum(splits.values())} samples but n_samples is {n}"
        )
    g = _get(t, "grid", dict, w)
    check_keys(g, ["size", "store_stride"], "dataset.grid")
    size = _get(g, "size", (list, int), "dataset.grid")
    size = [size] if isinstance(size, int) else size
    if not size or not all(isinstance(s, int) and not isinstance(s, bool) for s in size):
        raise RecipeError(f"'dataset.grid.size' must be a list of integers, got {size!r}")
    if any(s < 3 for s in size):
        raise RecipeError(f"'dataset.grid.size' must be >= 3 points per axis, got {size}")
    stride = _get(g, "store_stride", int, "dataset.grid", 1)
    if stride < 1:
        raise RecipeError(f"'dataset.grid.store_stride' must be >= 1, got {stride}")
    return DatasetConfig(
        name=_get(t, "name", str, w),
        pde=_get(t, "pde", str, w),
        n_samples=n,
        seed=seed,
        splits=splits,
        grid=GridConfig(tuple(size), stride),
    )


def _solver(t: Mapping[str, Any]) -> SolverConfig:
    from neuralops.solvers import PRECONDITIONERS, SOLVERS

    w = "solver"
    check_keys(t, ["method", "preconditioner", "rtol", "maxiter", "recycle"], w)
    method = _get(t, "method", str, w, "direct")
    if method not in SOLVERS:
        raise RecipeError(
            f"'solver.method' = {method!r} is unknown{_suggest(method, list(SOLVERS))}"
            f" (choose one of {', '.join(SOLVERS)})"
        )
    pre = _get(t, "preconditioner", str, w, "none")
    if pre not in PRECONDITIONERS:
        raise RecipeError(
            f"'solver.preconditioner' = {pre!r} is unknown"
            f"{_suggest(pre, list(PRECONDITIONERS))} (choose one of "
            f"{', '.join(PRECONDITIONERS)})"
        )
    rtol = _get(t, "rtol", float, w, 1e-10)
    if not 0 < rtol < 1:
        raise RecipeError(f"'solver.rtol' must be in (0, 1), got {rtol}")
    maxiter = _get(t, "maxiter", int, w, None)
    if maxiter is not None and maxiter < 1:
        raise RecipeError(f"'solver.maxiter' must be >= 1, got {maxiter}")
    r = _get(t, "recycle", dict, w, {})
    check_keys(
        r,
        ["enabled", "sort", "chain_length", "k", "m", "reuse_preconditioner", "rebuild_growth"],
        "solver.recycle",
    )
    w = "solver.recycle"
    recycle = RecycleConfig(
        enabled=_get(r, "enabled", bool, w, False),
        sort=_get(r, "sort", str, w, "greedy"),
        chain_length=_get(r, "chain_length", int, w, 64),
        k=_get(r, "k", int, w, 20),
        m=_get(r, "m", int, w, 40),
        reuse_preconditioner=_get(r, "reuse_preconditioner", bool, w, False),
        rebuild_growth=_get(r, "rebuild_growth", float, w, 2.0),
    )
    if recycle.sort not in ("greedy", "none"):
        raise RecipeError(
            f"'{w}.sort' must be 'greedy' (SKR order) or 'none', got {recycle.sort!r}"
        )
    if recycle.chain_length < 1:
        raise RecipeError(f"'{w}.chain_length' must be >= 1, got {recycle.chain_length}")
    if not 0 <= recycle.k < recycle.m:
        raise RecipeError(
            f"'{w}.k' (recycled vectors) must satisfy 0 <= k < m = {recycle.m}, got {recycle.k}"
        )
    if recycle.rebuild_growth is not None and not recycle.rebuild_growth >= 1.0:
        raise RecipeError(
            f"'{w}.rebuild_growth' must be >= 1 (rebuild the reused preconditioner when a "
            f"solve takes that many times the iterations of the first one), got "
            f"{recycle.rebuild_growth}"
        )
    if recycle.enabled and recycle.k == 0:
        if not recycle.reuse_preconditioner or pre == "none":
            raise RecipeError(
                f"'{w}.k = 0' (no recycled Krylov space) only reuses the preconditioner along "
                f"sorted chains: set '{w}.reuse_preconditioner = true' and a 'solver."
                "preconditioner' (amg, ic0, ilu, ...), or k >= 1 for GCRO-DR"
            )
        if method not in ("cg", "pcg", "gmres", "gcrodr"):
            raise RecipeError(
                f"'{w}.k = 0' solves each system with 'solver.method' and a reused "
                f"preconditioner; choose 'pcg' (SPD) or 'gmres', got {method!r}"
            )
    elif recycle.enabled and method not in ("gcrodr", "gmres"):
        raise RecipeError(
            f"'{w}.enabled = true' solves with GCRO-DR; set 'solver.method' to 'gcrodr' "
            f"(got {method!r}), or set '{w}.k = 0' with 'reuse_preconditioner = true' to "
            "solve sorted chains with a reused preconditioner"
        )
    return SolverConfig(method, pre, rtol, maxiter, recycle)


def _run(t: Mapping[str, Any], name: str) -> RunConfig:
    w = "run"
    check_keys(t, ["out", "workers", "max_failed_fraction", "compression", "fletcher32"], w)
    workers = _get(t, "workers", int, w, 1)
    if workers < 1:
        raise RecipeError(f"'run.workers' must be >= 1, got {workers}")
    frac = _get(t, "max_failed_fraction", float, w, 0.01)
    if not 0 <= frac <= 1:
        raise RecipeError(f"'run.max_failed_fraction' must be in [0, 1], got {frac}")
    comp = _get(t, "compression", str, w, "none")
    if comp not in ("none", "gzip"):
        raise RecipeError(f"'run.compression' must be 'none' or 'gzip', got {comp!r}")
    return RunConfig(
        out=_get(t, "out", str, w, f"pde_data/{name}.h5"),
        workers=workers,
        max_failed_fraction=frac,
        compression=None if comp == "none" else comp,
        fletcher32=_get(t, "fletcher32", bool, w, True),
    )


def parse_recipe(text: str, source: str = "<string>") -> Recipe:
    """Parse and validate a recipe's TOML text (the family validates its own tables later)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(f"{source}: not valid TOML: {exc}") from exc
    try:
        check_keys(raw, ["dataset", "pde", "params", "solver", "run"], "")
        if "dataset" not in raw:
            raise RecipeError("the [dataset] table is missing")
        dataset = _dataset(raw["dataset"])
        params = raw.get("params", {})
        for key, table in params.items():
            if not isinstance(table, dict):
                raise RecipeError(f"'params.{key}' must be a table like [params.{key}]")
        recipe = Recipe(
            dataset=dataset,
            params=params,
            pde_options=raw.get("pde", {}),
            solver=_solver(raw.get("solver", {})),
            run=_run(raw.get("run", {}), dataset.name),
            text=text,
            source=source,
        )
    except RecipeError as exc:
        raise RecipeError(f"{source}: {exc}") from None
    return recipe


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate a recipe file."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"recipe {path} not found; recipes live in pde_data/*.toml")
    return parse_recipe(path.read_text(), str(path))


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}`` (used to show what changed between two recipes)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else k
        if isinstance(v, dict):
            out.update(flatten(v, key))
        else:
            out[key] = v
    return out
