"""Multi-operator training recipes: the ``[families.<name>]`` and ``[multiop]`` tables, and the run.

``neuralops train RECIPE`` hands a recipe with ``[model] type = "multi_operator"`` to :func:`fit_recipe`:
each family's data are built as a one-family ``[data]`` table would be (generated from its
``pde_data`` recipe when missing), the model is built from ``[model]`` and the families' channel
counts, or loaded from ``multiop.init_from`` and given the recipe's new families
(:func:`~neuralops.models.multiop.prepare_finetune`, ``multiop.mode`` full or LoRA), trained with
:func:`~neuralops.train.multiop.fit_multi`, evaluated per family on the test splits and saved to
``OUT/final`` (LoRA merged; per-family normalizers in the metadata). See :mod:`neuralops.train.recipe`
for the table layout.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from neuralops.data.errors import RecipeError
from neuralops.pde.recipe import _get, check_keys
from neuralops.train.recipe import (
    DATA_KEYS,
    DataSpec,
    TrainRecipe,
    _data_table,
    _resolve,
    _suggest,
    build_split_data,
    dump_toml,
)

__all__ = [
    "FAMILY_KEYS",
    "MULTIOP_KEYS",
    "FamilyData",
    "MultiOpSpec",
    "build_families",
    "build_multiop_model",
    "fit_recipe",
    "lr_groups",
    "parse_families",
    "parse_multiop",
]

log = logging.getLogger(__name__)

#: keys of a ``[families.<name>]`` table: the data keys and the family's own
FAMILY_KEYS = (*DATA_KEYS, "embedding", "n_train")
MULTIOP_KEYS = (
    "temperature",
    "init_from",
    "mode",
    "rank",
    "alpha",
    "targets",
    "lr_backbone",
    "lr_heads",
    "lr_norm",
    "lr_lora",
)


@dataclass(frozen=True)
class FamilyData:
    """One ``[families.<name>]`` table of a multi-operator recipe: its data, whether it has a learned
    family embedding, and ``n_train`` (None: the whole train split)."""

    data: DataSpec
    embedding: bool = False
    n_train: int | None = None


@dataclass(frozen=True)
class MultiOpSpec:
    """The ``[multiop]`` table. ``init_from``: a pretrained multi-operator folder to fine-tune (None:
    train from scratch); the ``lr_*`` left None default to ``optim.lr`` when pretraining and to
    Poseidon's groups (models.md §3.3) when fine-tuning."""

    temperature: float = 1.0
    init_from: str | None = None
    mode: str = "full"
    rank: int = 8
    alpha: float = 16.0
    targets: tuple[str, ...] | None = None
    lr_backbone: float | None = None
    lr_heads: float | None = None
    lr_norm: float | None = None
    lr_lora: float | None = None


def parse_families(
    families: Any, defaults: Mapping[str, Any], base: Path | None
) -> dict[str, FamilyData]:
    """The ``[families.<name>]`` tables, each merged over the ``[data]`` defaults (``base``: the recipe's
    folder, for relative paths)."""
    if not isinstance(families, Mapping) or not families:
        raise RecipeError(
            "a multi_operator recipe needs [families.<name>] tables, one per PDE family, each with "
            'its data (path = "x.h5" or recipe = "pde_data/x.toml")'
        )
    for key in ("path", "recipe"):
        if key in defaults:
            raise RecipeError(
                f"'data.{key}' names one dataset; a multi_operator recipe names each family's data "
                f"in its [families.<name>] table ([data] holds defaults shared by the families)"
            )
    check_keys(defaults, DATA_KEYS, "data")
    out: dict[str, FamilyData] = {}
    for name, table in families.items():
        where = f"families.{name}"
        if not isinstance(table, Mapping):
            raise RecipeError(f"[{where}] must be a table, got {table!r}")
        if not name.isidentifier():
            raise RecipeError(
                f"family name {name!r} must be an identifier (letters, digits, _): it names the "
                "family's adapter and head weights"
            )
        check_keys(table, FAMILY_KEYS, where)
        embedding = table.get("embedding", False)
        if not isinstance(embedding, bool):
            raise RecipeError(f"'{where}.embedding' must be true or false, got {embedding!r}")
        n_train = table.get("n_train")
        if n_train is not None and (
            isinstance(n_train, bool) or not isinstance(n_train, int) or n_train < 1
        ):
            raise RecipeError(f"'{where}.n_train' must be an integer >= 1, got {n_train!r}")
        merged = {**defaults, **{k: v for k, v in table.items() if k in DATA_KEYS}}
        try:
            data = _data_table(merged, base)
        except RecipeError as exc:
            raise RecipeError(f"[{where}]: {exc}") from None
        out[name] = FamilyData(data=data, embedding=embedding, n_train=n_train)
    return out


def parse_multiop(t: Mapping[str, Any], base: Path | None, source: str) -> MultiOpSpec:
    """The ``[multiop]`` table (empty: pretraining with the defaults)."""
    check_keys(t, MULTIOP_KEYS, "multiop")
    kw: dict[str, Any] = {}
    if "temperature" in t:
        kw["temperature"] = _get(t, "temperature", float, "multiop")
        if kw["temperature"] < 0:
            raise RecipeError(f"'multiop.temperature' must be >= 0, got {kw['temperature']}")
    if "init_from" in t:
        kw["init_from"] = str(_resolve(_get(t, "init_from", str, "multiop"), base))
    mode = t.get("mode", "full")
    if mode not in ("full", "lora"):
        raise RecipeError(
            f"'multiop.mode' = {mode!r} is unknown{_suggest(str(mode), ['full', 'lora'])} "
            '(valid: "full", "lora")'
        )
    kw["mode"] = mode
    if mode == "lora" and "init_from" not in t:
        raise RecipeError(
            f'{source}: multiop.mode = "lora" fine-tunes a pretrained model; set '
            "'multiop.init_from' to its folder (e.g. runs/multiop_pretrain_toy/final)"
        )
    if "rank" in t:
        kw["rank"] = _get(t, "rank", int, "multiop")
    if "alpha" in t:
        kw["alpha"] = _get(t, "alpha", float, "multiop")
    if "targets" in t:
        targets = t["targets"]
        if not isinstance(targets, list) or not all(isinstance(x, str) for x in targets):
            raise RecipeError(
                f"'multiop.targets' must be a list of glob patterns on backbone layer names, "
                f"got {targets!r}"
            )
        kw["targets"] = tuple(targets)
    for key in ("lr_backbone", "lr_heads", "lr_norm", "lr_lora"):
        if key in t:
            kw[key] = _get(t, key, float, "multiop")
            if not kw[key] > 0:
                raise RecipeError(f"'multiop.{key}' must be > 0, got {kw[key]}")
    return MultiOpSpec(**kw)


# ----------------------------------------------------------------------------------------- building


def build_families(recipe: TrainRecipe, *, generate: bool = True) -> dict[str, dict[str, Any]]:
    """Per family: ``path``, ``train`` (its first ``n_train`` samples when set), ``val``, ``test``
    (None when absent) and ``normalizer`` (from the file's train statistics, or fitted on the
    ``n_train`` samples used)."""
    from neuralops.data.normalizer import IdentityNormalizer, Normalizer

    out: dict[str, dict[str, Any]] = {}
    for name, fam in recipe.families.items():
        d = build_split_data(fam.data, generate=generate)
        if fam.n_train is not None:
            full = d["train"]
            if fam.n_train > full.n_samples:
                raise RecipeError(
                    f"'families.{name}.n_train' = {fam.n_train}, but the train split of {d['path']} "
                    f"has {full.n_samples} samples"
                )
            per = len(full) // full.n_samples  # items per sample (all2all pairs), sample-major
            d["train"] = torch.utils.data.Subset(full, range(fam.n_train * per))
            kind = fam.data.normalization
            d["normalizer"] = (
                IdentityNormalizer()
                if kind == "identity"
                else Normalizer.fit(d["train"], kind, spatial_ndim=full.spatial_ndim)
            )
        out[name] = d
    return out


def _differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    return [
        f"{k}: recipe {a.get(k)!r} vs checkpoint {b.get(k)!r}"
        for k in sorted(set(a) | set(b))
        if a.get(k) != b.get(k)
    ]


def build_multiop_model(
    recipe: TrainRecipe, families: Mapping[str, Mapping[str, Any]]
) -> tuple[Any, dict[str, Any]]:
    """The model and the per-family normalizers of a multi-operator recipe.

    Without ``multiop.init_from``: a fresh model from ``[model]`` and the families' channel counts
    (initialised from ``train.seed``). With it: the pretrained model (its ``[model]`` backbone, when
    the recipe states one, must match), its normalizers, and the recipe's families added or reused
    by :func:`~neuralops.models.multiop.prepare_finetune` in ``multiop.mode``.
    """
    from neuralops.models.multiop import MultiOperatorModel, prepare_finetune
    from neuralops.train.multiop import family_normalizers, family_spec_of

    spec = recipe.multiop
    specs = {
        name: family_spec_of(families[name]["train"], embedding=fam.embedding)
        for name, fam in recipe.families.items()
    }
    normalizers = {name: families[name]["normalizer"] for name in recipe.families}
    torch.manual_seed(recipe.config.seed)
    if spec is None or spec.init_from is None:
        channels = {n: (s.in_channels, s.out_channels) for n, s in specs.items()}
        return MultiOperatorModel(recipe.multiop_config(channels)), normalizers
    folder = Path(spec.init_from)
    if not (folder / "config.json").is_file():
        raise RecipeError(
            f"{recipe.source}: multiop.init_from = {str(folder)!r} is not a saved model folder; "
            "train the pretrained model first (e.g. neuralops train train/multiop_pretrain_toy.toml "
            "writes runs/multiop_pretrain_toy/final)"
        )
    model = MultiOperatorModel.from_pretrained(folder)
    if {"backbone", "backbone_type"} & set(recipe.model):
        ours = recipe.model_config().to_dict()
        theirs = model.config.to_dict()
        diff = _differences(
            {"backbone_type": ours["backbone_type"], **ours["backbone"]},
            {"backbone_type": theirs["backbone_type"], **theirs["backbone"]},
        )
        if diff:
            raise RecipeError(
                f"{recipe.source}: the [model] backbone differs from the one in {folder}: "
                + "; ".join(diff)
                + ". Make [model] match the pretraining recipe, or leave backbone out of [model]"
            )
    normalizers = {**family_normalizers(folder), **normalizers}
    for name, fam_spec in specs.items():
        try:
            prepare_finetune(
                model,
                name,
                fam_spec,
                mode=spec.mode,
                rank=spec.rank,
                alpha=spec.alpha,
                targets=spec.targets,
            )
        except ValueError as exc:
            raise RecipeError(f"{recipe.source}: family {name!r}: {exc}") from None
    return model, normalizers


def lr_groups(recipe: TrainRecipe) -> Any:
    """The :class:`~neuralops.train.multiop.LRGroups` of a recipe: ``optim.lr`` everywhere when
    pretraining, Poseidon's groups when fine-tuning (``multiop.init_from``); ``multiop.lr_*`` override;
    the weight decay is ``optim.weight_decay``."""
    from neuralops.train.multiop import LRGroups

    spec = recipe.multiop or MultiOpSpec()
    cfg = recipe.config
    given = {
        "backbone": spec.lr_backbone,
        "heads": spec.lr_heads,
        "norm": spec.lr_norm,
        "lora": spec.lr_lora,
    }
    base = (
        LRGroups(weight_decay=cfg.weight_decay)
        if spec.init_from is not None
        else LRGroups.uniform(cfg.lr, cfg.weight_decay)
    )
    return LRGroups(
        **{k: (v if v is not None else getattr(base, k)) for k, v in given.items()},
        weight_decay=cfg.weight_decay,
    )


def fit_recipe(
    recipe: TrainRecipe, source: str | Path, resume: str | Path | None = "auto"
) -> dict[str, Any]:
    """Train a multi-operator recipe; returns ``{"fit", "val", "test", "final"}`` with
    ``"<family>/<metric>"`` entries (see :mod:`neuralops.train.multiop_recipe`). Under torchrun
    (process group initialised by the caller) rank 0 generates missing data and writes the model."""
    from neuralops.train.distributed import DistEnv, barrier
    from neuralops.train.multiop import evaluate_families, fit_multi, save_multiop

    env = DistEnv.from_env()
    if env.is_main:
        build_families(recipe, generate=True)  # rank 0 generates missing data sets, once
    barrier()
    families = build_families(recipe, generate=False)
    model, normalizers = build_multiop_model(recipe, families)
    out_dir = Path(recipe.config.out_dir)
    if env.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "recipe.resolved.toml").write_text(dump_toml(recipe.resolved), encoding="utf-8")
    barrier()
    spec = recipe.multiop or MultiOpSpec()
    log.info(
        "training %s (%s parameters, %s trainable) on families %s -> %s",
        recipe.model_type,
        f"{model.num_parameters():,}",
        f"{sum(p.numel() for p in model.parameters() if p.requires_grad):,}",
        {n: len(f["train"]) for n, f in families.items()},
        out_dir,
    )
    metrics = [m for m in recipe.metrics if m != "rel_l1"]
    fit = fit_multi(
        model,
        {n: f["train"] for n, f in families.items()},
        recipe.config,
        val={n: f["val"] for n, f in families.items() if f["val"] is not None} or None,
        normalizers=normalizers,
        loss=recipe.loss,
        metrics=metrics,
        temperature=spec.temperature,
        lrs=lr_groups(recipe),
        resume=None if resume in (None, "none") else resume,
    )
    result: dict[str, Any] = {"val": fit.pop("val", {}), "fit": fit}
    tests = {n: f["test"] for n, f in families.items() if f["test"] is not None}
    if tests:
        values = evaluate_families(
            model,
            tests,
            normalizers=normalizers,
            loss=recipe.loss,
            metrics=metrics,
            batch_size=recipe.config.batch_size,
            precision=recipe.config.precision,
        )
        result["test"] = {f"{f}/{k}": v for f, d in values.items() for k, v in d.items()}
    result["final"] = str(out_dir / "final")
    if not env.is_main:
        barrier()  # wait for rank 0 to write the final model
        return result
    final = save_multiop(
        model,
        out_dir / "final",
        normalizers=normalizers,
        metadata={
            "recipe": str(source),
            "init_from": spec.init_from,
            "mode": spec.mode if spec.init_from else "pretrain",
            "data": {
                n: {
                    "path": str(f["path"]),
                    "n_train": recipe.families[n].n_train,
                    "time": recipe.families[n].data.time,
                }
                for n, f in families.items()
            },
            "step": fit.get("step"),
        },
    )
    result["final"] = str(final)
    barrier()
    return result
