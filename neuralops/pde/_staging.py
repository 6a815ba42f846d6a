"""The staging folder of a generation run: one atomically written ``.npz`` per finished sample.

Each unit holds the recipe hash and a sha256 of its arrays; a unit that is torn, foreign or
corrupt is discarded and recomputed on resume.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from pathlib import Path

import numpy as np

from neuralops.data.errors import DataError, RecipeError
from neuralops.pde.recipe import Recipe, flatten, parse_recipe

__all__ = [
    "write_atomic",
    "commit_unit",
    "load_unit",
    "unit_path",
    "prepare_staging",
    "scan_staging",
    "GenerationError",
    "array_digest",
]

log = logging.getLogger(__name__)


class GenerationError(DataError):
    """Generation cannot start or continue (existing output or staging from another recipe)."""


def array_digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for key in sorted(arrays):
        a = np.ascontiguousarray(arrays[key])
        h.update(key.encode() + str(a.dtype).encode() + str(a.shape).encode() + a.tobytes())
    return h.hexdigest()


def unit_path(staging: Path, i: int) -> Path:
    return staging / f"unit-{i:08d}.npz"


def write_atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        write(fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def commit_unit(staging: Path, i: int, arrays: dict[str, np.ndarray], recipe_sha: str) -> None:
    payload = dict(arrays, __recipe_sha256=np.asarray(recipe_sha))
    payload["__data_sha256"] = np.asarray(array_digest(payload))
    write_atomic(unit_path(staging, i), lambda fh: np.savez(fh, **payload))


def _load_verified(path: Path, recipe_sha: str, prefix: str) -> dict[str, np.ndarray] | None:
    """Arrays of an ``.npz`` written with ``<prefix>recipe_sha256`` and ``<prefix>data_sha256``,
    or None when it is absent, torn, corrupt or from another recipe."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception:  # noqa: BLE001 - anything unreadable is recomputed
        return None
    stored = str(arrays.pop(f"{prefix}data_sha256", ""))
    if str(arrays.get(f"{prefix}recipe_sha256", "")) != recipe_sha:
        return None
    return arrays if array_digest(arrays) == stored else None


def load_unit(path: Path, recipe_sha: str) -> dict[str, np.ndarray] | None:
    """The unit's arrays, or None when it is unreadable, from another recipe or corrupt."""
    return _load_verified(path, recipe_sha, "__")


def prepare_staging(staging: Path, recipe: Recipe, restart: bool) -> None:
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
    write_atomic(saved, lambda fh: fh.write(recipe.text.encode()))


def scan_staging(staging: Path, n: int, recipe_sha: str) -> set[int]:
    done: set[int] = set()
    for p in staging.glob("unit-*.npz"):
        try:
            i = int(p.stem.split("-")[1])
        except (IndexError, ValueError):
            continue
        if 0 <= i < n and load_unit(p, recipe_sha) is not None:
            done.add(i)
        else:
            log.warning("discarding unreadable or foreign staged unit %s", p.name)
            p.unlink(missing_ok=True)
    for p in staging.glob(".*.tmp-*"):
        p.unlink(missing_ok=True)  # a write that was cut short
    return done


def save_features(staging: Path, features: np.ndarray, recipe_sha: str) -> None:
    """Cache the SKR sort features of every sample (recomputing them means redrawing all params)."""
    payload = {
        "features": np.asarray(features, np.float64),
        "recipe_sha256": np.asarray(recipe_sha),
    }
    payload["data_sha256"] = np.asarray(array_digest(payload))
    write_atomic(staging / "features.npz", lambda fh: np.savez(fh, **payload))


def load_features(staging: Path, recipe_sha: str, n: int) -> np.ndarray | None:
    """The cached features, or None when absent, torn or from another recipe."""
    arrays = _load_verified(staging / "features.npz", recipe_sha, "")
    if arrays is None or arrays["features"].shape[0] != n:
        return None
    return arrays["features"]
