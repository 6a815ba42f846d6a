"""``neuralops train RECIPE [--set K=V ...] [--out DIR] [--resume auto|PATH|none]``.

Builds the data, normalizer, model and :class:`~neuralops.train.Trainer` of a training recipe
(:mod:`neuralops.train.recipe`), fits, writes ``OUT/final`` (``save_pretrained`` plus ``normalizer.json``)
and ``OUT/recipe.resolved.toml``, and prints the final metrics.

Data-parallel: ``torchrun --nproc_per_node N -m neuralops train RECIPE ...`` (``batch_size`` is per rank).
Rank 0 generates a missing dataset, writes the resolved recipe, checkpoints and the final model; the
other ranks wait at barriers.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

__all__ = ["main", "run"]

log = logging.getLogger(__name__)


def run(
    recipe: str | Path,
    overrides: list[str] | tuple[str, ...] = (),
    *,
    out: str | Path | None = None,
    resume: str | None = "auto",
) -> dict[str, Any]:
    """Train as ``recipe`` says; returns ``{"fit": ..., "val": ..., "test": ..., "final": path}``
    (multi-operator recipes: metrics keyed ``"<family>/<metric>"``)."""
    from neuralops.train._build import resolve_device
    from neuralops.train.distributed import DistEnv, barrier, destroy, init_distributed
    from neuralops.train.recipe import load_train_recipe

    overrides = list(overrides)
    if out is not None:
        overrides.append(f"log.out_dir={json.dumps(str(out))}")
    rec = load_train_recipe(recipe, overrides)
    env = DistEnv.from_env()
    owns_group = init_distributed(env, resolve_device(rec.config.device))
    try:
        if rec.model_type == "multi_operator":  # several families: neuralops.train.multiop_recipe
            from neuralops.train.multiop_recipe import fit_recipe

            return fit_recipe(rec, recipe, resume)
        return _fit(rec, recipe, resume, env)
    finally:
        if owns_group:
            barrier()
            destroy()


def _fit(rec: Any, recipe: str | Path, resume: str | None, env: Any) -> dict[str, Any]:
    from neuralops.train.distributed import barrier
    from neuralops.train.recipe import build_data, build_model_for, dump_toml
    from neuralops.train.trainer import Trainer

    if env.is_main:
        rec.data.dataset_path(generate=True)  # rank 0 generates a missing dataset, once
    barrier()
    data = build_data(rec, generate=False)
    model = build_model_for(rec, data["train"])
    out_dir = Path(rec.config.out_dir)
    if env.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "recipe.resolved.toml").write_text(dump_toml(rec.resolved), encoding="utf-8")
    barrier()
    log.info(
        "training %s (%s parameters) on %d samples of %s -> %s",
        rec.model_type,
        f"{model.n_params():,}",
        len(data["train"]),
        data["path"],
        out_dir,
    )
    trainer = Trainer(
        model,
        rec.config,
        train_data=data["train"],
        val_data=data["val"],
        normalizer=data["normalizer"],
        loss=rec.loss,
        metrics=rec.metrics,
    )
    fit = trainer.fit(resume=None if resume in (None, "none") else resume)
    result: dict[str, Any] = {"fit": fit}
    for role in ("val", "test"):
        if data[role] is not None:
            result[role] = trainer.evaluate(data[role])
    spec = rec.data
    final_dir = out_dir / "final"
    result["final"] = str(final_dir)
    if not env.is_main:
        barrier()  # wait for rank 0 to write the final model
        return result
    final = trainer.model.to("cpu").save_pretrained(
        out_dir / "final",
        normalizer=data["normalizer"],
        metadata={
            "recipe": str(recipe),
            "world_size": env.world_size,
            "data": {
                "path": str(data["path"]),
                "inputs": data["train"].inputs,
                "targets": data["train"].targets,
                "subsample": spec.subsample,
            },
            "step": fit.get("step"),
        },
    )
    data["normalizer"].save(final)
    barrier()
    return result


def _fmt(metrics: dict[str, Any]) -> str:
    return "  ".join(
        f"{k} {v:.6g}" if isinstance(v, float) else f"{k} {v}"
        for k, v in metrics.items()
        if isinstance(v, int | float | str)
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="neuralops train", description="Train a model from a recipe.")
    p.add_argument("recipe", help="training recipe (train/*.toml)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="K=V",
        help="override a recipe key, e.g. --set optim.lr=1e-3 (value as a TOML literal)",
    )
    p.add_argument("--out", help="output folder (overrides log.out_dir)")
    p.add_argument(
        "--resume", default="auto", help="auto (latest checkpoint in --out), none, or a path"
    )
    a = p.parse_args(argv)
    from neuralops.data.errors import RecipeError
    from neuralops.train import dcdm_train

    if dcdm_train.is_dcdm_recipe(a.recipe):  # a [scene] table: the DCDM loss needs the matrix
        try:
            rec = dcdm_train.load_dcdm_recipe(a.recipe, dcdm_train.overrides_from(a.overrides))
            summary = dcdm_train.run(rec, out=a.out, resume=a.resume)
        except (RecipeError, FileNotFoundError, ValueError) as exc:
            print(f"neuralops train: error: {exc}", file=sys.stderr)
            return 2
        dcdm_train.report(summary)
        return 0
    try:
        r = run(a.recipe, a.overrides, out=a.out, resume=a.resume)
    except (RecipeError, FileNotFoundError) as exc:
        print(f"neuralops train: error: {exc}", file=sys.stderr)
        return 2
    from neuralops.train.distributed import DistEnv

    if not DistEnv.from_env().is_main:
        return 0
    print(f"fit: {_fmt(r['fit'])}")
    for role in ("val", "test"):
        if role in r:
            print(f"{role}: {_fmt(r[role])}")
    print(f"final model: {r['final']}")
    return 0
