"""Train a DCDM network from a recipe: ``python -m neuralops.train.dcdm_train RECIPE [--out DIR]``.

The DCDM loss needs the training matrix, not a target field, so DCDM recipes have their own
tables; ``neuralops train train/dcdm_*.toml`` recognises them by their ``[scene]`` table (and takes
``--set TABLE.KEY=VALUE`` overrides)::

    [scene]  shape, seed, obstacles = [min, max], obstacle_size = [min, max], open_sides
             (the training matrix: the pressure Poisson matrix of one obstacle scene,
             :func:`neuralops.pde.pressure.obstacle_scene`)
    [data]   path, lanczos_steps, samples, theta, val_fraction, seed
             (Ritz-vector right-hand sides, :func:`neuralops.train.dcdm_data.write_ritz_dataset`;
             generated when the file is missing)
    [model]  preset = "ref64" | "ref128" and/or DCDMConfig fields (dim comes from the scene)
    [train]  TrainConfig fields (max_steps, batch_size, optimizer, lr, scheduler, ...)
    [log]    out_dir, log_every, checkpoint_every_steps, keep_last
    [eval]   scenes = [seeds], rtol, maxiter: DCDM vs CG iterations after training on
             held-out obstacle scenes of the training size

Writes ``OUT/final`` (``config.json`` + ``model.safetensors``; the metadata holds the recipe, the
training system, the final losses and the evaluation) and ``OUT/eval.json``. Checkpoints in
``OUT/checkpoints`` make an interrupted run resume.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import logging
import math
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neuralops.data.errors import RecipeError

__all__ = ["DCDMRecipe", "load_dcdm_recipe", "run", "evaluate_dcdm", "smooth_rhs", "main"]

log = logging.getLogger(__name__)

TABLES = {
    "scene": ("shape", "seed", "obstacles", "obstacle_size", "open_sides"),
    "data": ("path", "lanczos_steps", "samples", "theta", "val_fraction", "seed"),
    "model": ("preset", "bias", "width", "levels", "blocks_fine", "blocks_coarse", "blocks_up"),
    "train": None,  # TrainConfig fields (checked by TrainConfig.from_dict)
    "log": ("out_dir", "log_every", "checkpoint_every_steps", "keep_last"),
    "eval": ("scenes", "rtol", "maxiter"),
}
DEFAULTS: dict[str, dict[str, Any]] = {
    "scene": {"seed": 0, "obstacles": [2, 4], "obstacle_size": [0.08, 0.16], "open_sides": "top"},
    "data": {"lanczos_steps": 1000, "samples": 2000, "val_fraction": 0.1, "seed": 0},
    "model": {"preset": "ref64"},
    "train": {"batch_size": 10, "optimizer": "adam", "lr": 1e-4},
    "log": {"out_dir": "runs/dcdm", "log_every": 50},
    "eval": {"scenes": [101, 102], "rtol": 1e-6, "maxiter": 2000},
}


@dataclasses.dataclass(frozen=True)
class DCDMRecipe:
    """A parsed DCDM recipe: every table with its defaults filled in (``resolved``)."""

    resolved: dict[str, dict[str, Any]]
    source: str

    def table(self, name: str) -> dict[str, Any]:
        return self.resolved[name]

    def model_config(self) -> Any:
        from neuralops.models import DCDMConfig

        fields = dict(self.resolved["model"])
        preset = fields.pop("preset", None)
        dim = len(self.resolved["scene"]["shape"])
        if preset:
            return DCDMConfig.preset(preset, dim=dim, **fields)
        return DCDMConfig(dim=dim, **fields)

    def train_config(self, out_dir: str | None = None) -> Any:
        from neuralops.train.config import TrainConfig

        log_table = dict(self.resolved["log"])
        if out_dir is not None:
            log_table["out_dir"] = str(out_dir)
        return TrainConfig.from_dict({**self.resolved["train"], **log_table})


def load_dcdm_recipe(
    path: str | Path, overrides: dict[str, dict[str, Any]] | None = None
) -> DCDMRecipe:
    """Parse and validate a DCDM recipe (unknown tables or keys raise :class:`RecipeError`)."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(f"{path}: not valid TOML ({exc})") from exc
    for name, table in (overrides or {}).items():
        raw.setdefault(name, {}).update(table)
    unknown = sorted(set(raw) - set(TABLES))
    if unknown:
        raise RecipeError(f"{path}: unknown tables {unknown}; a DCDM recipe has {list(TABLES)}")
    resolved = {
        name: {**copy.deepcopy(DEFAULTS.get(name, {})), **raw.get(name, {})} for name in TABLES
    }
    for name, keys in TABLES.items():
        if keys is None:
            continue
        bad = sorted(set(resolved[name]) - set(keys))
        if bad:
            raise RecipeError(f"{path}: unknown keys {bad} in [{name}]; valid keys: {list(keys)}")
    shape = resolved["scene"].get("shape")
    if not (isinstance(shape, list) and len(shape) in (2, 3) and all(int(s) >= 8 for s in shape)):
        raise RecipeError(f"{path}: [scene] shape must be 2 or 3 sizes >= 8, got {shape!r}")
    if "path" not in resolved["data"]:
        raise RecipeError(f"{path}: [data] path (the Ritz dataset file) is required")
    rec = DCDMRecipe(resolved, str(path))
    rec.model_config()  # validate the model table now
    rec.train_config()
    return rec


def smooth_rhs(fluid: np.ndarray, seed: int, *, width: float = 2.0) -> np.ndarray:
    """A smooth random right-hand side on the fluid cells (n,): Gaussian-filtered white noise,
    mean-free, unit norm; a stand-in for a velocity divergence field."""
    from scipy.ndimage import gaussian_filter

    noise = np.random.default_rng(seed).standard_normal(fluid.shape)
    b = gaussian_filter(noise, width)[fluid]
    b -= b.mean()
    return b / np.linalg.norm(b)


def scene_of(resolved: dict[str, dict[str, Any]], seed: int) -> np.ndarray:
    """The fluid mask of obstacle scene ``seed`` with the recipe's ``[scene]`` settings."""
    from neuralops.pde.pressure import obstacle_scene

    scene = resolved["scene"]
    return obstacle_scene(
        tuple(int(s) for s in scene["shape"]),
        seed,
        count=tuple(scene["obstacles"]),
        size=tuple(scene["obstacle_size"]),
        open_sides=scene["open_sides"],
    )


def heldout_systems(
    resolved: dict[str, dict[str, Any]],
) -> list[tuple[Any, np.ndarray, np.ndarray]]:
    """``(A, fluid, b)`` of the recipe's ``[eval] scenes``: pressure matrices of held-out obstacle
    scenes with a smooth right-hand side each."""
    from neuralops.pde.pressure import pressure_poisson

    out = []
    for seed in resolved["eval"]["scenes"]:
        f = scene_of(resolved, int(seed))
        A = pressure_poisson(f, open_sides=resolved["scene"]["open_sides"])
        out.append((A, f, smooth_rhs(f, int(seed))))
    return out


def evaluate_dcdm(
    model: torch.nn.Module,
    systems: list[tuple[Any, np.ndarray, np.ndarray]],
    *,
    rtol: float,
    maxiter: int,
) -> list[dict[str, Any]]:
    """DCDM with ``model`` and plain CG on ``(A, fluid, b)`` systems; iterations and seconds."""
    from neuralops.solvers import CG, DCDM

    rows = []
    model.eval()
    for A, fluid, b in systems:
        d = DCDM(model, mask=fluid, rtol=rtol, maxiter=maxiter, check_spd=False).solve(A, b)
        c = CG(rtol=rtol, maxiter=maxiter, check_spd=False).solve(A, b)
        rows.append(
            {
                "grid": list(fluid.shape),
                "unknowns": int(A.shape[0]),
                "dcdm_iterations": d.iterations,
                "dcdm_converged": d.converged,
                "dcdm_fallbacks": d.info["fallbacks"],
                "dcdm_cg_switch": d.info["cg_switch_iteration"],
                "dcdm_seconds": d.seconds,
                "cg_iterations": c.iterations,
                "cg_seconds": c.seconds,
            }
        )
    return rows


def run(
    recipe: str | Path | DCDMRecipe, *, out: str | Path | None = None, resume: str | None = "auto"
) -> dict[str, Any]:
    """Generate the data (when missing), train, evaluate, save; returns a summary dict."""
    from neuralops.data import PDEDataset
    from neuralops.models import DCDMNet
    from neuralops.train.dcdm_data import training_system, write_ritz_dataset
    from neuralops.train.losses import DCDMLoss
    from neuralops.train.trainer import Trainer

    rec = recipe if isinstance(recipe, DCDMRecipe) else load_dcdm_recipe(recipe)
    scene, data_t, ev = rec.table("scene"), rec.table("data"), rec.table("eval")
    shape = tuple(int(s) for s in scene["shape"])

    def make_scene(seed: int) -> np.ndarray:
        return scene_of(rec.resolved, seed)

    data_path = Path(data_t["path"])
    if not data_path.exists():
        log.info("writing the Ritz dataset %s", data_path)
        write_ritz_dataset(
            data_path,
            make_scene(int(scene["seed"])),
            open_sides=scene["open_sides"],
            lanczos_steps=int(data_t["lanczos_steps"]),
            samples=int(data_t["samples"]),
            theta=data_t.get("theta"),
            val_fraction=float(data_t["val_fraction"]),
            seed=int(data_t["seed"]),
            recipe_text=Path(rec.source).read_text(encoding="utf-8")
            if Path(rec.source).is_file()
            else "",
        )
    A, fluid = training_system(data_path)
    train, val = PDEDataset(data_path, "train"), PDEDataset(data_path, "val")
    cfg = rec.train_config(None if out is None else str(out))
    torch.manual_seed(cfg.seed)
    model = DCDMNet(rec.model_config())
    loss = DCDMLoss(A, fluid)
    log.info(
        "training %r on %d right-hand sides of %s (n = %d)",
        model,
        len(train),
        data_path,
        A.shape[0],
    )
    t0 = time.perf_counter()
    trainer = Trainer(model, cfg, train_data=train, val_data=val, loss=loss, metrics=())
    initial = trainer.evaluate(val)["loss"]  # the freshly initialised network
    fit = trainer.fit(resume=None if resume in (None, "none") else resume)
    seconds = time.perf_counter() - t0
    val_metrics = trainer.evaluate(val)
    model = trainer.model.to("cpu").eval()

    systems = heldout_systems(rec.resolved)
    rows = evaluate_dcdm(model, systems, rtol=float(ev["rtol"]), maxiter=int(ev["maxiter"]))
    out_dir = Path(cfg.out_dir)
    summary = {
        "recipe": rec.source,
        "resolved": rec.resolved,
        "dataset": str(data_path),
        "training_unknowns": int(A.shape[0]),
        "parameters": model.num_parameters(),
        "steps": fit.get("step"),
        "train_loss": fit.get("train/loss"),
        "val_loss": val_metrics.get("loss"),
        "initial_val_loss": initial,
        "train_seconds": seconds,
        "eval": rows,
    }
    final = model.save_pretrained(
        out_dir / "final",
        metadata={
            "recipe": rec.resolved,
            "training_system": {
                "grid": list(shape),
                "scene_seed": int(scene["seed"]),
                "open_sides": scene["open_sides"],
                "unknowns": int(A.shape[0]),
            },
            "train_loss": summary["train_loss"],
            "val_loss": summary["val_loss"],
            "steps": summary["steps"],
            "eval": rows,
        },
    )
    summary["final"] = str(final)
    (out_dir / "eval.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return summary


def report(s: dict[str, Any]) -> None:
    """Print a training summary from :func:`run`."""
    print(
        f"{s['steps']} steps in {s['train_seconds']:.0f} s: val loss {s['initial_val_loss']:.4g} "
        f"(untrained) -> {s['val_loss']:.4g}, train loss {s['train_loss']:.4g}"
    )
    for r in s["eval"]:
        ratio = r["dcdm_iterations"] / max(r["cg_iterations"], 1)
        switch = "" if r["dcdm_cg_switch"] is None else f", CG took over at {r['dcdm_cg_switch']}"
        print(
            f"  held-out scene {'x'.join(map(str, r['grid']))}: DCDM {r['dcdm_iterations']} it "
            f"({r['dcdm_seconds']:.2f} s, fallbacks {r['dcdm_fallbacks']}{switch}), CG "
            f"{r['cg_iterations']} it ({r['cg_seconds']:.2f} s): ratio {ratio:.2f}"
        )
    print(f"final model: {s['final']}")


def is_dcdm_recipe(path: str | Path) -> bool:
    """Whether a recipe file is a DCDM recipe (it has a ``[scene]`` table)."""
    try:
        return "scene" in tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return False


def overrides_from(items: list[str]) -> dict[str, dict[str, Any]]:
    """``["train.max_steps=10", ...]`` (values as TOML literals) -> ``{"train": {"max_steps": 10}}``."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        table, dot, name = key.strip().partition(".")
        if not sep or not dot:
            raise RecipeError(f"override {item!r}: expected TABLE.KEY=VALUE, e.g. train.lr=1e-4")
        try:
            parsed = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            parsed = value
        out.setdefault(table, {})[name] = parsed
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m neuralops.train.dcdm_train",
        description="Train a DCDM network from a recipe.",
    )
    p.add_argument("recipe", help="DCDM recipe (train/dcdm/*.toml)")
    p.add_argument("--out", help="output folder (overrides [log] out_dir)")
    p.add_argument("--max-steps", type=int, help="override [train] max_steps")
    p.add_argument(
        "--resume", default="auto", help="auto (latest checkpoint in --out), none, or a path"
    )
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        over = {"train": {"max_steps": a.max_steps}} if a.max_steps else None
        s = run(load_dcdm_recipe(a.recipe, over), out=a.out, resume=a.resume)
    except (RecipeError, FileNotFoundError, ValueError) as exc:
        print(f"dcdm_train: error: {exc}", file=sys.stderr)
        return 2
    report(s)
    return 0 if all(r["dcdm_converged"] for r in s["eval"]) and math.isfinite(s["val_loss"]) else 1


if __name__ == "__main__":
    sys.exit(main())
