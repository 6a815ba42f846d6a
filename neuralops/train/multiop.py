"""Multi-operator pretraining and fine-tuning (models.md §5.2): :func:`fit_multi`, :func:`pretrain`,
:func:`finetune`, per-family evaluation and checkpoints.

A :class:`~neuralops.models.multiop.MultiOperatorModel` trains on several PDE families at once. Each
batch holds one family (:class:`~neuralops.train.family_sampler.FamilyBatchSampler`, families drawn
``∝ n_f ** T``); inputs are encoded and the loss compares the output with the **normalized** target,
with each family's own normalizer; metrics compare decoded outputs with targets in physical units, per
family: the loss, relative L2 and Poseidon's median relative L1 in percent (``rel_l1_median_pct``).

Training runs on :class:`~neuralops.train.Trainer`, which takes the families' datasets as a mapping:
its settings come from a :class:`~neuralops.train.TrainConfig` (seed, length, batch size, optimizer,
schedule, clipping, precision, NaN policy, logging, checkpoints with exact resume, also in the middle
of an epoch), and DDP under torchrun splits each epoch's single-family batches between the ranks.

Learning rates come in the groups of models.md §3.3 (:class:`LRGroups`): backbone, adapters + heads
(+ embeddings), the backbone's norms (no weight decay), and LoRA adapters when present.
:func:`pretrain` uses one learning rate for all; :func:`finetune` adds a family
(:func:`~neuralops.models.multiop.prepare_finetune`, ``mode="full"`` or ``"lora"``) and uses
Poseidon's fine-tuning rates.

>>> import tempfile
>>> from neuralops.models import build_model
>>> from neuralops.models.multiop import FamilySpec, MultiOperatorModel
>>> from neuralops.train import TrainConfig
>>> bb = build_model("mgno", in_channels=4, out_channels=4, width=4, n_layers=1, levels=2)
>>> model = MultiOperatorModel.from_backbone(bb, {"a": FamilySpec(1, 1), "b": FamilySpec(2, 1)})
>>> data = {"a": [{"input": torch.randn(1, 8, 8), "target": torch.randn(1, 8, 8)}] * 4,
...         "b": [{"input": torch.randn(2, 8, 8), "target": torch.randn(1, 8, 8)}] * 4}
>>> cfg = TrainConfig(max_epochs=1, batch_size=2, out_dir=tempfile.mkdtemp(), device="cpu")
>>> result = pretrain(model, data, cfg, val=data)
>>> result["step"], sorted(result["val"])[:2]
(4, ['a/loss', 'a/rel_l1_median_pct'])
"""

from __future__ import annotations

import copy
import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from neuralops.models.lora import merge_lora
from neuralops.models.multiop import FamilySpec, MultiOperatorModel, prepare_finetune
from neuralops.train.config import TrainConfig
from neuralops.train.metrics import METRICS, MeanMetric, get_metric, rel_l1

__all__ = [
    "LRGroups",
    "evaluate_families",
    "family_normalizers",
    "family_spec_of",
    "finetune",
    "fit_multi",
    "optimizer_groups",
    "pretrain",
    "save_multiop",
]

log = logging.getLogger(__name__)

Loss = str | Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
_AMP = {"bf16": torch.bfloat16}


@dataclass(frozen=True)
class LRGroups:
    """Learning rates of the parameter groups; the defaults are Poseidon's fine-tuning values
    (models.md §3.3): backbone 5e-5, adapters + heads 5e-4, norms 5e-4 without weight decay,
    weight decay 1e-6. ``lora`` (default: ``heads``) is for LoRA adapters on the backbone."""

    backbone: float = 5e-5
    heads: float = 5e-4
    norm: float = 5e-4
    lora: float | None = None
    weight_decay: float = 1e-6

    def __post_init__(self) -> None:
        for name in ("backbone", "heads", "norm", "lora"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                raise ValueError(f"LRGroups.{name} must be a finite number > 0, got {v!r}")
        if not self.weight_decay >= 0:
            raise ValueError(f"LRGroups.weight_decay must be >= 0, got {self.weight_decay!r}")

    @classmethod
    def uniform(cls, lr: float, weight_decay: float = 0.0) -> LRGroups:
        """One learning rate everywhere (pretraining); norms still without weight decay."""
        return cls(backbone=lr, heads=lr, norm=lr, lora=lr, weight_decay=weight_decay)


def optimizer_groups(model: MultiOperatorModel, lrs: LRGroups) -> list[dict[str, Any]]:
    """The trainable parameters of ``model`` as optimizer groups named ``backbone``, ``heads``,
    ``norm`` (weight decay 0) and ``lora`` (LoRA adapters, if any); empty groups are left out."""
    groups = model.param_groups(
        lr_backbone=lrs.backbone,
        lr_heads=lrs.heads,
        lr_norm=lrs.norm,
        weight_decay=lrs.weight_decay,
    )
    lora_ids = {
        id(p)
        for n, p in model.named_parameters()
        if p.requires_grad and (".lora_A." in n or ".lora_B." in n)
    }
    if not lora_ids:
        return groups
    out = []
    lora: list[torch.nn.Parameter] = []
    for g in groups:
        keep = [p for p in g["params"] if id(p) not in lora_ids]
        lora += [p for p in g["params"] if id(p) in lora_ids]
        if keep:
            out.append({**g, "params": keep})
    lr = lrs.lora if lrs.lora is not None else lrs.heads
    out.append({"params": lora, "lr": lr, "weight_decay": lrs.weight_decay, "name": "lora"})
    return out


def family_spec_of(dataset: Any, *, embedding: bool = False) -> FamilySpec:
    """A family's channel layout read from its first item (``input`` ``(C_in, *S)``, ``target``
    ``(C_out, *S)``)."""
    item = dataset[0]
    return FamilySpec(
        in_channels=int(item["input"].shape[0]),
        out_channels=int(item["target"].shape[0]),
        embedding=embedding,
    )


def _make_optimizer(groups: list[dict[str, Any]], config: TrainConfig) -> torch.optim.Optimizer:
    if not groups:
        raise ValueError("the model has no trainable parameters")
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, betas=config.betas)
    if config.optimizer == "adam":
        return torch.optim.Adam(groups, betas=config.betas)
    return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)


def _forward(
    model: torch.nn.Module,
    batch: Mapping[str, Any],
    family: str,
    normalizer: Any,
    device: torch.device,
    precision: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(output, normalized target, target)``, ``(batch, C_out, *S)`` each."""
    x = batch["input"].to(device)
    y = batch["target"].to(device)
    y_n = y
    if normalizer is not None:
        x = normalizer.encode(x, key="input")
        y_n = normalizer.encode(y, key="target")
    t = batch["time"].to(device) if "time" in batch else None
    dtype = _AMP.get(precision)
    with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
        pred = model(x, t, family=family)
    return pred.to(y.dtype), y_n, y


@torch.no_grad()
def evaluate_families(
    model: MultiOperatorModel,
    data: Mapping[str, Any],
    *,
    normalizers: Mapping[str, Any] | None = None,
    loss: Loss = "rel_l2",
    metrics: Sequence[str] = ("rel_l2",),
    batch_size: int = 16,
    device: str | torch.device | None = None,
    precision: str = "fp32",
) -> dict[str, dict[str, float]]:
    """Per family: ``loss`` (on normalized targets), each of ``metrics`` (mean over samples, physical
    units) and ``rel_l1_median_pct``, Poseidon's median over samples of ``||pred - y||_1 / ||y||_1``
    in percent. ``data`` maps family names to datasets of dict items."""
    normalizers = normalizers or {}
    device = torch.device(device) if device is not None else next(model.parameters()).device
    loss_fn = get_metric(loss)
    metric_fns = {name: get_metric(name) for name in metrics}
    was_training = model.training
    model.eval()
    out: dict[str, dict[str, float]] = {}
    for family, dataset in data.items():
        acc = {name: MeanMetric() for name in ("loss", *metric_fns)}
        l1: list[torch.Tensor] = []
        loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
        norm = normalizers.get(family)
        for batch in loader:
            pred, y_n, y = _forward(model, batch, family, norm, device, precision)
            if loss_fn in METRICS.values():
                acc["loss"].update(loss_fn(pred, y_n, reduction="none"))
            else:  # a custom batch-mean loss: weight it by the batch size
                acc["loss"].update(loss_fn(pred, y_n).detach().expand(pred.shape[0]))
            phys = pred if norm is None else norm.decode(pred, key="target")
            for name, fn in metric_fns.items():
                acc[name].update(fn(phys, y, reduction="none"))
            l1.append(rel_l1(phys, y, reduction="none").cpu())
        out[family] = {name: a.compute() for name, a in acc.items()}
        out[family]["rel_l1_median_pct"] = 100.0 * float(torch.cat(l1).median())
    model.train(was_training)
    return out


def _flat(values: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    return {f"{f}/{k}": v for f, d in values.items() for k, v in d.items()}


def fit_multi(
    model: MultiOperatorModel,
    train: Mapping[str, Any],
    config: TrainConfig,
    *,
    val: Mapping[str, Any] | None = None,
    normalizers: Mapping[str, Any] | None = None,
    loss: Loss = "rel_l2",
    metrics: Sequence[str] = ("rel_l2",),
    temperature: float = 1.0,
    lrs: LRGroups | None = None,
    resume: str | Path | None = "auto",
    callbacks: Sequence[Any] = (),
) -> dict[str, Any]:
    """Train ``model`` on the families of ``train`` (``{name: dataset}``; every name must be a family of
    the model) with :class:`~neuralops.train.Trainer` as ``config`` says (AMP, clipping, schedules,
    DDP under torchrun, atomic checkpoints with exact resume, callbacks).

    ``normalizers``: ``{family: normalizer}`` (``encode(x, key)``/``decode(y, key)``), families without
    one train on raw values. ``lrs``: the learning-rate groups (default: ``LRGroups.uniform(config.lr,
    config.weight_decay)``); parameters with ``requires_grad=False`` are left out. ``temperature``: the
    family weights ``∝ n_f ** T``. ``resume``: ``"auto"`` continues from ``config.out_dir``'s latest
    checkpoint when there is one, a path resumes from that checkpoint, None starts afresh. The model
    must be in the state it was checkpointed in (same families, LoRA applied or not).

    Returns the Trainer's result (``step``, ``epoch``, ``checkpoint``, ``train/loss``, ...) with the
    last validation as ``val``: ``{"<family>/<metric>": value}`` and ``loss``, the families' mean.
    """
    from neuralops.train.trainer import Trainer

    lrs = lrs or LRGroups.uniform(config.lr, config.weight_decay)
    trainer = Trainer(
        model,
        config,
        train_data=dict(train),
        val_data=dict(val) if val else None,
        loss=loss,
        metrics=metrics,
        normalizer=dict(normalizers or {}),
        optimizer=_make_optimizer(optimizer_groups(model, lrs), config),
        callbacks=callbacks,
        family_temperature=temperature,
    )
    result = trainer.fit(resume=resume)
    values = {k[4:]: v for k, v in result.items() if k.startswith("val/")}
    out = {k: v for k, v in result.items() if not k.startswith("val/")}
    if values:
        out["val"] = values
    return out


def pretrain(
    model: MultiOperatorModel,
    train: Mapping[str, Any],
    config: TrainConfig,
    **kwargs: Any,
) -> dict[str, Any]:
    """:func:`fit_multi` with one learning rate (``config.lr``) for every parameter group, unless
    ``lrs`` is given."""
    return fit_multi(model, train, config, **kwargs)


def finetune(
    model: MultiOperatorModel,
    family: str,
    train: Any,
    config: TrainConfig,
    *,
    spec: FamilySpec | Mapping[str, Any] | None = None,
    mode: str = "full",
    rank: int = 8,
    alpha: float = 16.0,
    targets: Sequence[str] | None = None,
    lrs: LRGroups | None = None,
    val: Any = None,
    normalizer: Any = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Fine-tune ``model`` in place on one (usually new) ``family`` with data ``train``.

    The family is added unless the model has it (``spec`` defaults to the channel counts of
    ``train[0]``; Poseidon's fresh embedding/recovery), then ``mode="full"`` trains everything with
    Poseidon's learning-rate groups (:class:`LRGroups` defaults), ``mode="lora"`` trains rank-``rank``
    LoRA adapters on the backbone, the family's adapter and head and the backbone's norms
    (:func:`~neuralops.models.multiop.prepare_finetune`). Afterwards ``merge_lora(model)`` gives a
    plain model for ``save_pretrained``. Other keywords go to :func:`fit_multi`.
    """
    if spec is None:
        spec = (
            FamilySpec(**model.config.families[family])
            if family in model.config.families
            else family_spec_of(train)
        )
    prepare_finetune(model, family, spec, mode=mode, rank=rank, alpha=alpha, targets=targets)
    return fit_multi(
        model,
        {family: train},
        config,
        val=None if val is None else {family: val},
        normalizers=None if normalizer is None else {family: normalizer},
        lrs=lrs or LRGroups(),
        **kwargs,
    )


def save_multiop(
    model: MultiOperatorModel,
    folder: str | Path,
    *,
    normalizers: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """``save_pretrained`` of a plain copy of ``model`` (LoRA adapters merged into it; ``model`` itself
    is left as it is) with the per-family normalizers in the metadata (``"normalizers"``; read them
    back with :func:`family_normalizers`). Returns the folder."""
    plain = model
    if any(".lora_A." in n for n, _ in model.named_parameters()):
        plain = merge_lora(copy.deepcopy(model))
    meta = dict(metadata or {})
    if normalizers:
        meta["normalizers"] = {
            name: n if isinstance(n, Mapping) else n.to_dict() for name, n in normalizers.items()
        }
    device = next(plain.parameters()).device
    folder = plain.to("cpu").save_pretrained(folder, metadata=meta)
    plain.to(device)
    return folder


def family_normalizers(folder: str | Path) -> dict[str, Any]:
    """The per-family normalizers :func:`save_multiop` stored with a model (``{}`` when none)."""
    from neuralops.data.normalizer import Normalizer

    payload = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    stored = (payload.get("metadata") or {}).get("normalizers") or {}
    return {name: Normalizer.from_dict(d) for name, d in stored.items()}
