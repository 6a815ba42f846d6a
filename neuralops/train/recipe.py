"""Training recipes: a TOML file naming the model, the data and the :class:`TrainConfig`.

Tables (see ``docs``/``specs/training.md`` §4)::

    [model]     type = "fno" | "mgno" | ... plus the config-dataclass fields, and/or a preset
                (MgNO: "darcy_rough", "darcy_smooth", ...; FNO: "neuralop2", "neuralop2_w28", "li2020";
                scOT: "T", "B", "L");
                in_channels/out_channels default to the dataset's channel counts
    [data]      path = "x.h5" or recipe = "pde_data/x.toml" (its run.out, generated when missing);
                inputs, targets, subsample, normalization = "gaussian" | "range" | "identity",
                train_split, val_split, test_split, time = "all2all" (Poseidon pairs; options in
                time_options = {t_norm = ..., step = ..., max_steps = ...})
    [train] [optim] [schedule]   TrainConfig fields, merged; [train] also takes loss = "rel_l2" |
                "rel_h1" | "rel_l1" (the training loss) and metrics = [...] (evaluation)
    [log]       out_dir, log_every, eval_every_epochs, checkpoint_every_steps, keep_last

Multi-operator recipes (``[model] type = "multi_operator"``, with ``backbone_type`` and a ``backbone``
table whose ``in_channels = out_channels`` is the shared width) name their data per family::

    [families.<name>]   the [data] keys (path or recipe, inputs, targets, time, ...) plus
                        embedding = true|false and n_train (use the first n training samples);
                        channel counts come from the data. [data] then only holds defaults
                        shared by every family (normalization, splits, time, ...)
    [multiop]   temperature (family weights ~ n_f^T), init_from (a pretrained multi-operator
                folder to fine-tune), mode = "full" | "lora", rank, alpha, targets (LoRA),
                lr_backbone, lr_heads, lr_norm, lr_lora (Poseidon's groups)

``--set table.key=value`` overrides (the value is a TOML literal; a bare word is a string) are applied
before validation. Unknown tables, keys, model types and presets raise
:class:`~neuralops.data.RecipeError` suggesting the nearest valid name.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from neuralops._toml import dump_toml
from neuralops.data.errors import RecipeError
from neuralops.pde.recipe import check_keys
from neuralops.train.config import TrainConfig

if TYPE_CHECKING:
    from neuralops.train.multiop_recipe import FamilyData, MultiOpSpec

__all__ = [
    "DataSpec",
    "TrainRecipe",
    "apply_overrides",
    "build_data",
    "build_split_data",
    "build_model_for",
    "dump_toml",
    "load_train_recipe",
    "parse_train_recipe",
]

TABLES = ("model", "data", "train", "optim", "schedule", "log", "families", "multiop")
MULTI = "multi_operator"
DATA_KEYS = (
    "path",
    "recipe",
    "inputs",
    "targets",
    "subsample",
    "normalization",
    "train_split",
    "val_split",
    "test_split",
    "view",
    "graph",
    "time",
    "time_options",
)
LOG_KEYS = ("out_dir", "log_every", "eval_every_epochs", "checkpoint_every_steps", "keep_last")
NORMALIZATIONS = ("gaussian", "range", "identity")
#: ``[train]`` keys that are not TrainConfig fields: the training loss and the evaluation metrics
TRAINER_KEYS = ("loss", "metrics")
_TRAIN_FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig)) + TRAINER_KEYS


def _suggest(value: str, valid: Sequence[str]) -> str:
    close = difflib.get_close_matches(value, list(valid), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


@dataclass(frozen=True)
class DataSpec:
    """The ``[data]`` table. Exactly one of ``path`` and ``recipe`` is set (resolved paths)."""

    path: str | None = None
    recipe: str | None = None
    inputs: str | list[str] | None = None
    targets: str | list[str] | None = None
    subsample: int | list[int] = 1
    normalization: str = "gaussian"
    train_split: str = "train"
    val_split: str | None = "val"
    test_split: str | None = "test"
    view: str = "grid"
    graph: Mapping[str, Any] | None = None
    time: str | None = None
    time_options: Mapping[str, Any] | None = None

    def dataset_path(self, *, generate: bool = True) -> Path:
        """The .h5 file; with ``recipe``, its ``run.out``, generated first when missing."""
        if self.path is not None:
            return Path(self.path)
        from neuralops.pde.recipe import load_recipe

        out = Path(load_recipe(self.recipe).run.out)
        if not out.exists() and generate:
            from neuralops.pde.generate import generate as _generate

            out = Path(_generate(self.recipe).path)
        return out


@dataclass(frozen=True)
class TrainRecipe:
    """A parsed, validated training recipe. ``resolved`` is the recipe dict after overrides.

    Multi-operator recipes have ``families`` and ``multiop`` and no single ``data`` (None)."""

    model_type: str
    model: Mapping[str, Any]  # config fields (preset expanded), channels possibly missing
    data: DataSpec | None
    config: TrainConfig
    resolved: Mapping[str, Any]
    source: str = "<string>"
    loss: str = "rel_l2"
    metrics: tuple[str, ...] = ("rel_l2", "rel_h1")
    families: Mapping[str, FamilyData] = dataclasses.field(default_factory=dict)
    multiop: MultiOpSpec | None = None  # see neuralops.train.multiop_recipe

    def model_config(self, in_channels: int | None = None, out_channels: int | None = None):
        """The model's config dataclass; ``in/out_channels`` fill the fields the recipe leaves out
        (for a multi-operator recipe: the channels of every family, see :meth:`multiop_config`)."""
        if self.model_type == MULTI:
            return self.multiop_config(
                {name: (in_channels or 1, out_channels or 1) for name in self.families}
            )
        return _model_config(self.model_type, self.model, in_channels, out_channels)

    def multiop_config(self, channels: Mapping[str, tuple[int, int]]):
        """The :class:`~neuralops.models.multiop.MultiOperatorConfig` of a multi-operator recipe with
        ``channels[name] = (in, out)`` for each of its families."""
        families = {
            name: {
                "in_channels": int(channels[name][0]),
                "out_channels": int(channels[name][1]),
                "embedding": fam.embedding,
            }
            for name, fam in self.families.items()
        }
        return _model_config(self.model_type, {**self.model, "families": families}, None, None)


# ------------------------------------------------------------------------------------------ parsing


def _parse_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text  # a bare word, e.g. a path: a string


def _valid_keys(raw: Mapping[str, Any], table: str) -> list[str]:
    if table == "model":
        return _model_keys(raw.get("model", {}).get("type"))
    if table == "data":
        return list(DATA_KEYS)
    if table == "log":
        return list(LOG_KEYS)
    if table == "families":
        return list(raw.get("families", {}))
    if table == "multiop":
        from neuralops.train.multiop_recipe import MULTIOP_KEYS

        return list(MULTIOP_KEYS)
    return list(_TRAIN_FIELDS)


def apply_overrides(raw: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of ``raw`` with ``"table.key=value"`` overrides applied; unknown keys raise RecipeError."""
    out = copy.deepcopy(dict(raw))
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        parts = key.split(".")
        if not sep or len(parts) < 2 or not all(parts):
            raise RecipeError(
                f"override {item!r} must look like table.key=value (e.g. optim.lr=1e-3)"
            )
        table, name = parts[0], parts[1]
        check_keys({table: None}, TABLES, "")
        # the model type may itself be overridden; validate against the new one
        if table == "model" and name == "type":
            out.setdefault("model", {})["type"] = _parse_value(text.strip())
            continue
        check_keys({name: None}, _valid_keys(out, table), table)
        node = out.setdefault(table, {})
        for p in parts[1:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise RecipeError(f"override {key!r}: {p!r} is not a table")
        node[parts[-1]] = _parse_value(text.strip())
    return out


def _model_keys(model_type: Any) -> list[str]:
    from neuralops.models import MODELS

    keys = ["type", "preset"]
    if isinstance(model_type, str) and model_type in MODELS:
        cfg = MODELS[model_type].config_class  # type: ignore[attr-defined]
        keys += [f.name for f in dataclasses.fields(cfg)]
    return keys


def _model_table(t: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    from neuralops.models import MODELS

    t = dict(t)
    model_type = t.pop("type", None)
    preset = t.pop("preset", None)
    if model_type is None and preset is not None:
        model_type = "mgno"
    if not isinstance(model_type, str):
        raise RecipeError(f"'model.type' must be a string naming one of {sorted(MODELS)}")
    if model_type not in MODELS:
        raise RecipeError(
            f"'model.type' = {model_type!r} is unknown{_suggest(model_type, list(MODELS))} "
            f"(valid model types: {', '.join(sorted(MODELS))})"
        )
    if model_type == MULTI and "families" in t:
        raise RecipeError(
            "'model.families' is not set in [model]: give each family a [families.<name>] table "
            "with its data (the channel counts come from the data)"
        )
    check_keys(t, _model_keys(model_type), "model")
    if model_type == MULTI and isinstance(t.get("backbone"), Mapping):
        _check_backbone(t)
    fields: dict[str, Any] = {}
    if preset is not None:
        from neuralops.models.fno import FNO_PRESETS
        from neuralops.models.mgno import MGNO_PRESETS
        from neuralops.models.scot import SCOT_PRESETS

        presets = {"mgno": MGNO_PRESETS, "fno": FNO_PRESETS, "scot": SCOT_PRESETS}.get(model_type)
        if presets is None:
            raise RecipeError(
                f"'model.preset' is for MgNO, FNO and scOT only, not model type {model_type!r}"
            )
        if preset not in presets:
            raise RecipeError(
                f"'model.preset' = {preset!r} is unknown{_suggest(str(preset), list(presets))} "
                f"(valid {model_type} presets: {', '.join(sorted(presets))})"
            )
        fields.update(presets[preset])
    fields.update(t)
    return model_type, fields


def _check_backbone(t: Mapping[str, Any]) -> None:
    """Nearest-key errors for ``model.backbone`` of a multi-operator model."""
    from neuralops.models import MODELS

    kind = t.get("backbone_type", "scot")
    if kind not in MODELS or kind == MULTI:
        valid = sorted(k for k in MODELS if k != MULTI)
        raise RecipeError(
            f"'model.backbone_type' = {kind!r} is unknown{_suggest(str(kind), valid)} "
            f"(valid backbone types: {', '.join(valid)})"
        )
    fields = [f.name for f in dataclasses.fields(MODELS[kind].config_class)]  # type: ignore[attr-defined]
    check_keys(t["backbone"], fields, "model.backbone")


def _model_config(
    model_type: str,
    fields: Mapping[str, Any],
    in_channels: int | None,
    out_channels: int | None,
):
    from neuralops.models import MODELS

    cls = MODELS[model_type].config_class  # type: ignore[attr-defined]
    kw = {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}
    names = {f.name for f in dataclasses.fields(cls)}
    if in_channels is not None and "in_channels" in names:
        kw.setdefault("in_channels", in_channels)
    if out_channels is not None and "out_channels" in names:
        kw.setdefault("out_channels", out_channels)
    try:
        config = cls(**kw)
        if model_type == MULTI:
            bb = config.backbone_config()  # validates the backbone's fields
            if bb.in_channels != bb.out_channels:
                raise ValueError(
                    f"the backbone maps the shared width to itself: set model.backbone.in_channels "
                    f"= out_channels (got {bb.in_channels} and {bb.out_channels})"
                )
        return config
    except (TypeError, ValueError) as exc:
        raise RecipeError(f"[model] ({model_type}): {exc}") from None


def _data_table(t: Mapping[str, Any], base: Path | None) -> DataSpec:
    check_keys(t, DATA_KEYS, "data")
    has_path, has_recipe = "path" in t, "recipe" in t
    if has_path == has_recipe:
        raise RecipeError(
            "[data] needs exactly one of 'data.path' (an .h5 file) and 'data.recipe' "
            "(a pde_data/*.toml recipe)"
        )
    for key in ("path", "recipe", "normalization", "train_split"):
        if key in t and not isinstance(t[key], str):
            raise RecipeError(f"'data.{key}' must be a string, got {t[key]!r}")
    if t.get("view", "grid") not in ("grid", "graph"):
        raise RecipeError(f'\'data.view\' must be "grid" or "graph", got {t["view"]!r}')
    if t.get("time") not in (None, "all2all", "trajectory"):
        raise RecipeError(f'\'data.time\' must be "all2all" or "trajectory", got {t["time"]!r}')
    if "time_options" in t and (
        t.get("time") != "all2all" or not isinstance(t["time_options"], Mapping)
    ):
        raise RecipeError(
            "'data.time_options' is a table like {t_norm = 10.0, step = 1} and needs data.time = \"all2all\""
        )
    if "graph" in t and not isinstance(t["graph"], Mapping):
        raise RecipeError(f"'data.graph' must be a table like {{k = 8}}, got {t['graph']!r}")
    norm = t.get("normalization", "gaussian")
    if norm not in NORMALIZATIONS:
        raise RecipeError(
            f"'data.normalization' = {norm!r} is unknown{_suggest(norm, NORMALIZATIONS)} "
            f"(valid: {', '.join(NORMALIZATIONS)})"
        )
    sub = t.get("subsample", 1)
    subs = sub if isinstance(sub, list) else [sub]
    if not subs or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in subs):
        raise RecipeError(
            f"'data.subsample' must be an integer >= 1 or a list of them, got {sub!r}"
        )
    kw = {k: v for k, v in t.items() if k not in ("path", "recipe")}
    for key in ("val_split", "test_split"):
        if kw.get(key) == "":
            kw[key] = None  # "" turns a split off
    if has_path:
        kw["path"] = str(_resolve(t["path"], base))
    else:
        kw["recipe"] = str(_resolve(t["recipe"], base))
    return DataSpec(**kw)


def _resolve(path: str, base: Path | None) -> Path:
    """A relative path is taken from the working folder, else the recipe's folder or its parent."""
    p = Path(path)
    if p.is_absolute() or p.exists() or base is None:
        return p
    for root in (base, base.parent):
        if (root / p).exists():
            return root / p
    return p


def parse_train_recipe(
    raw: Mapping[str, Any] | str,
    overrides: Sequence[str] = (),
    *,
    source: str = "<string>",
    base: str | Path | None = None,
) -> TrainRecipe:
    """Validate a recipe (a TOML string or its dict) with ``overrides``; nothing is built or read."""
    if isinstance(raw, str):
        try:
            raw = tomllib.loads(raw)
        except tomllib.TOMLDecodeError as exc:
            raise RecipeError(f"{source}: not valid TOML: {exc}") from None
    check_keys(raw, TABLES, "")
    for name, table in raw.items():
        if not isinstance(table, dict):
            raise RecipeError(f"[{name}] must be a table, got {table!r}")
    resolved = apply_overrides(raw, overrides)
    for name in ("train", "optim", "schedule"):
        check_keys(resolved.get(name, {}), _TRAIN_FIELDS, name)
    check_keys(resolved.get("log", {}), LOG_KEYS, "log")
    if "model" not in resolved:
        raise RecipeError(f"{source}: the [model] table is missing")
    if "data" not in resolved and resolved["model"].get("type") != MULTI:
        raise RecipeError(f"{source}: the [data] table is missing")
    model_type, fields = _model_table(resolved["model"])
    base_dir = Path(base) if base is not None else None
    families: dict[str, FamilyData] = {}
    multiop: MultiOpSpec | None = None
    data: DataSpec | None = None
    if model_type == MULTI:
        from neuralops.train.multiop_recipe import parse_families, parse_multiop

        families = parse_families(resolved.get("families"), resolved.get("data", {}), base_dir)
        multiop = parse_multiop(resolved.get("multiop", {}), base_dir, source)
        if multiop.mode == "lora" and len(families) != 1:
            raise RecipeError(
                f"{source}: LoRA fine-tuning trains one family per run; list one "
                f"[families.<name>] table (got {sorted(families)})"
            )
        families_cfg = {
            name: {"in_channels": 1, "out_channels": 1, "embedding": f.embedding}
            for name, f in families.items()
        }
        _model_config(model_type, {**fields, "families": families_cfg}, None, None)
    else:
        for name in ("families", "multiop"):
            if name in resolved:
                raise RecipeError(
                    f'{source}: [{name}] is for model.type = "{MULTI}" (a shared backbone trained '
                    f"on several PDE families), not {model_type!r}"
                )
        _model_config(model_type, fields, 1, 1)  # validates the fields (channels filled in later)
        data = _data_table(resolved["data"], base_dir)
    merged: dict[str, Any] = {}
    for name in ("train", "optim", "schedule", "log"):
        for key, value in resolved.get(name, {}).items():
            if key in merged and merged[key] != value:
                raise RecipeError(f"'{name}.{key}' is set twice with different values")
            merged[key] = value
    loss = merged.pop("loss", "rel_l2")
    metrics = merged.pop("metrics", ["rel_l2", "rel_h1"])
    from neuralops.train.metrics import METRICS

    if loss not in METRICS:
        raise RecipeError(
            f"{source}: 'train.loss' = {loss!r} is not a loss{_suggest(str(loss), list(METRICS))} "
            f"(choose one of {sorted(METRICS)})"
        )
    if not isinstance(metrics, list) or any(m not in METRICS for m in metrics):
        raise RecipeError(
            f"{source}: 'train.metrics' must be a list of {sorted(METRICS)}, got {metrics!r}"
        )
    if "betas" in merged and isinstance(merged["betas"], list):
        merged["betas"] = tuple(merged["betas"])
    if "param_groups" in merged and isinstance(merged["param_groups"], list):
        merged["param_groups"] = tuple(merged["param_groups"])
    try:
        config = TrainConfig.from_dict(merged)
    except (TypeError, ValueError) as exc:
        raise RecipeError(f"{source}: {exc}") from None
    return TrainRecipe(
        model_type,
        fields,
        data,
        config,
        resolved,
        source,
        loss=loss,
        metrics=tuple(metrics),
        families=families,
        multiop=multiop,
    )


def load_train_recipe(path: str | Path, overrides: Sequence[str] = ()) -> TrainRecipe:
    """Read and validate the recipe file ``path`` (see :func:`parse_train_recipe`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"training recipe {path} does not exist")
    return parse_train_recipe(
        path.read_text(encoding="utf-8"), overrides, source=str(path), base=path.parent
    )


# ----------------------------------------------------------------------------------------- building


def build_data(recipe: TrainRecipe, *, generate: bool = True) -> dict[str, Any]:
    """``{"train", "val", "test"}`` PDEDatasets (None for a split turned off or absent) and ``normalizer``."""
    if recipe.data is None:
        raise RecipeError(
            f"{recipe.source} is a multi-operator recipe: its data are per family "
            "(neuralops.train.multiop_recipe.build_families)"
        )
    return build_split_data(recipe.data, generate=generate)


def build_split_data(spec: DataSpec, *, generate: bool = True) -> dict[str, Any]:
    """:func:`build_data` for one ``[data]`` table: ``path``, ``train``, ``val``, ``test``, ``normalizer``."""
    from neuralops.data import PDEDataset

    path = spec.dataset_path(generate=generate)
    kw = {"inputs": spec.inputs, "targets": spec.targets, "subsample": _stride(spec.subsample)}
    if spec.view == "graph":
        kw.update(view="graph", graph=dict(spec.graph or {"k": 8}))
    if (
        spec.time is not None
    ):  # all2all pairs everywhere: validation and test then score the same pairs
        kw.update(
            time=spec.time, time_options=dict(spec.time_options) if spec.time_options else None
        )
    out: dict[str, Any] = {"path": path, "train": PDEDataset(path, spec.train_split, **kw)}
    splits = out["train"].source.splits
    for role, name in (("val", spec.val_split), ("test", spec.test_split)):
        out[role] = (
            PDEDataset(path, name, **kw) if name and name in splits and len(splits[name]) else None
        )
    out["normalizer"] = out["train"].normalizer(spec.normalization)
    return out


def _stride(sub: int | list[int]) -> Any:
    return tuple(sub) if isinstance(sub, list) else sub


def build_model_for(recipe: TrainRecipe, train_data: Any):
    """The recipe's model with channel counts checked against (or taken from) ``train_data``."""
    from neuralops.models import build_model

    n_in, n_out = len(train_data.input_channels), len(train_data.target_channels)
    cfg = recipe.model_config(n_in, n_out)
    dims = len(getattr(train_data.source, "spatial_dims", ()))
    if hasattr(cfg, "space_dim") and "space_dim" not in recipe.model and dims:
        cfg = dataclasses.replace(cfg, space_dim=dims)  # point coordinates of a mesh model
    problems = []
    if cfg.in_channels != n_in:
        problems.append(
            f"model in_channels={cfg.in_channels} but the dataset's inputs "
            f"{train_data.input_channels} have {n_in} channel(s)"
        )
    if cfg.out_channels != n_out:
        problems.append(
            f"model out_channels={cfg.out_channels} but the dataset's targets "
            f"{train_data.target_channels} have {n_out} channel(s)"
        )
    if problems:
        raise RecipeError(f"{recipe.source}: " + "; ".join(problems))
    return build_model(cfg)
