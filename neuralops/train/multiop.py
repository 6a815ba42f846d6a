"""Multi-operator pretraining and fine-tuning (models.md §5.2): :func:`fit_multi`, :func:`pretrain`,
:func:`finetune`, per-family evaluation and checkpoints.

A :class:`~neuralops.models.multiop.MultiOperatorModel` trains on several PDE families at once. Each
batch holds one family (:class:`~neuralops.train.family_sampler.FamilyBatchSampler`, families drawn
``∝ n_f ** T``); inputs are encoded and the loss compares the output with the **normalized** target,
with each family's own normalizer; metrics compare decoded outputs with targets in physical units, per
family: the loss, relative L2 and Poseidon's median relative L1 in percent (``rel_l1_median_pct``).

The loop is :class:`~neuralops.train.Trainer`'s in miniature, built from the same parts: a
:class:`~neuralops.train.TrainConfig` for its settings (seed, length, batch size, optimizer,
schedule, clipping, NaN policy, logging, checkpoints), ``seed_everything``, ``build_scheduler``, the
atomic safetensors checkpoints of :mod:`neuralops.train.checkpoint` (exact resume, also in the middle
of an epoch) and ``metrics.csv``. It runs in one process (no DDP) in fp32 or bf16 autocast.

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
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch

from neuralops.models.lora import merge_lora
from neuralops.models.multiop import FamilySpec, MultiOperatorModel, prepare_finetune
from neuralops.train._build import (
    IndexedDataset,
    NonFiniteLossError,
    _seed_worker,
    build_scheduler,
    collate,
    resolve_device,
    seed_everything,
)
from neuralops.train.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from neuralops.train.config import TrainConfig
from neuralops.train.family_sampler import FamilyBatchSampler, FamilyDataset
from neuralops.train.logger import MetricsLogger
from neuralops.train.metrics import METRICS, MeanMetric, get_metric, rel_l1
from neuralops.train.sampler import mix_seed

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


def _loader(data: FamilyDataset, sampler: Any, config: TrainConfig, epoch: int) -> Any:
    gen = torch.Generator()
    gen.manual_seed(mix_seed(config.seed, epoch, 2**31 - 1))
    return torch.utils.data.DataLoader(
        IndexedDataset(data),
        batch_sampler=sampler,
        num_workers=config.num_workers,
        worker_init_fn=partial(_seed_worker, config.seed, epoch) if config.num_workers else None,
        generator=gen,
        collate_fn=collate,
    )


def _family(batch: Mapping[str, Any]) -> str:
    names = set(batch["family"])
    if len(names) != 1:
        raise ValueError(f"a batch mixes families {sorted(names)}; batches must hold one family")
    return names.pop()


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
    batches_per_epoch: int | None = None,
    resume: str | Path | None = "auto",
) -> dict[str, Any]:
    """Train ``model`` on the families of ``train`` (``{name: dataset}``; every name must be a family of
    the model) as ``config`` says; returns ``step``, ``epoch``, ``checkpoint``, ``train/loss`` (mean
    over the last log window) and ``val`` (``"<family>/<metric>"`` -> value, when ``val`` is given).

    ``normalizers``: ``{family: normalizer}`` (``encode(x, key)``/``decode(y, key)``), families without
    one train on raw values. ``lrs``: the learning-rate groups (default: ``LRGroups.uniform(config.lr,
    config.weight_decay)``); parameters with ``requires_grad=False`` are left out. ``temperature``: the
    family weights ``∝ n_f ** T``. ``resume``: ``"auto"`` continues from ``config.out_dir``'s latest
    checkpoint when there is one, a path resumes from that checkpoint, None starts afresh. The model
    must be in the state it was checkpointed in (same families, LoRA applied or not).
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    unknown = [f for f in list(train) + list(val or {}) if f not in model.config.families]
    if unknown:
        raise ValueError(
            f"families {sorted(set(unknown))} are not in the model, which has {model.families}; "
            "add them first (model.add_family or prepare_finetune)"
        )
    if config.precision == "fp16":
        raise ValueError(
            "fit_multi runs in fp32 or bf16 autocast (no fp16 gradient scaling); use precision='bf16'"
        )
    normalizers = dict(normalizers or {})
    device = resolve_device(config.device)
    model.to(device)
    data = FamilyDataset(train)
    sampler = FamilyBatchSampler(
        data.sizes,
        config.batch_size,
        seed=config.seed,
        temperature=temperature,
        batches_per_epoch=batches_per_epoch,
    )
    per_epoch = sampler.batches_per_epoch
    steps = [config.max_steps] if config.max_steps else []
    if config.max_epochs:
        steps.append(config.max_epochs * per_epoch)
    total = min(steps)
    lrs = lrs or LRGroups.uniform(config.lr, config.weight_decay)
    optimizer = _make_optimizer(optimizer_groups(model, lrs), config)
    units = config.max_epochs if config.scheduler_unit == "epoch" else total
    scheduler = build_scheduler(optimizer, config, total_steps=units or 1)
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        raise ValueError(
            "scheduler 'plateau' is not supported by fit_multi; use cosine or onecycle"
        )
    loss_fn = get_metric(loss)
    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    step = epoch = batch_index = bad = 0
    ckpt = latest_checkpoint(out_dir) if resume == "auto" else resume
    if ckpt is not None:
        state = load_checkpoint(ckpt, model=model, optimizer=optimizer, scheduler=scheduler)
        step, epoch = int(state["global_step"]), int(state["epoch"])
        batch_index = int(state["batch_index"])
        if state.get("families") != data.sizes or state.get("batches_per_epoch") != per_epoch:
            log.warning(
                "resuming with families %s (%d batches/epoch); the checkpoint had %s (%s)",
                data.sizes,
                per_epoch,
                state.get("families"),
                state.get("batches_per_epoch"),
            )
        log.info("resumed from %s at step %d (epoch %d, batch %d)", ckpt, step, epoch, batch_index)
    else:
        seed_everything(config.seed)

    def position() -> dict[str, Any]:
        return {
            "epoch": epoch,
            "batch_index": batch_index,
            "sampler_seed": config.seed,
            "temperature": temperature,
            "families": data.sizes,
            "batches_per_epoch": per_epoch,
            "config": config.to_dict(),
        }

    saved_at = -1
    last_ckpt: Path | None = None

    def checkpoint() -> None:
        nonlocal saved_at, last_ckpt
        if saved_at != step:
            last_ckpt = save_checkpoint(
                out_dir,
                step,
                model=model,
                optimizer=optimizer,
                scheduler=scheduler,
                state=position(),
                keep_last=config.keep_last,
            )
            saved_at = step

    def evaluate() -> dict[str, float]:
        values = evaluate_families(
            model,
            val or {},
            normalizers=normalizers,
            loss=loss,
            metrics=metrics,
            batch_size=config.batch_size,
            device=device,
            precision=config.precision,
        )
        return _flat(values)

    logger = MetricsLogger(out_dir)
    log.info(
        "multi-operator training: families %s, %d batches/epoch (%s), %d steps on %s",
        data.sizes,
        per_epoch,
        sampler.counts,
        total,
        device,
    )
    params = [p for g in optimizer.param_groups for p in g["params"]]
    window: list[float] = []
    last_loss: float | None = None
    val_values: dict[str, float] = {}
    t0 = time.perf_counter()
    deterministic = torch.are_deterministic_algorithms_enabled()
    if config.deterministic:
        torch.use_deterministic_algorithms(True)
    try:
        while step < total:
            sampler.set_epoch(epoch, start_batch=batch_index)
            model.train()
            for indices, batch in _loader(data, sampler, config, epoch):
                family = _family(batch)
                pred, y_n, _ = _forward(
                    model, batch, family, normalizers.get(family), device, config.precision
                )
                value_t = loss_fn(pred, y_n)
                optimizer.zero_grad(set_to_none=True)
                value_t.backward()
                norm_t = (
                    torch.nn.utils.clip_grad_norm_(params, config.grad_clip_norm)
                    if config.grad_clip_norm is not None
                    else None
                )
                value = float(value_t.detach())
                finite = math.isfinite(value) and (norm_t is None or bool(torch.isfinite(norm_t)))
                step += 1
                batch_index += 1
                if not finite:
                    optimizer.zero_grad(set_to_none=True)
                    bad += 1
                    err = NonFiniteLossError(
                        step=step,
                        epoch=epoch,
                        indices=indices.tolist(),
                        loss=value,
                        lr=float(optimizer.param_groups[0]["lr"]),
                        what=f"loss or gradient norm (family {family!r})",
                    )
                    if config.nan_policy == "stop" or bad >= config.max_bad_steps:
                        raise err
                    log.warning("skipping step: %s", err)
                else:
                    bad = 0
                    optimizer.step()
                    if scheduler is not None and config.scheduler_unit == "step":
                        scheduler.step()
                    window.append(value)
                if step % config.log_every == 0 and window:
                    last_loss = sum(window) / len(window)
                    logger.log(
                        {"loss": last_loss, "lr": float(optimizer.param_groups[0]["lr"])},
                        step=step,
                        epoch=epoch,
                        split="train",
                    )
                    log.info("step %d/%d epoch %d: loss %.4g", step, total, epoch, last_loss)
                    window = []
                every = config.checkpoint_every_steps
                if every and step % every == 0:
                    checkpoint()
                if step >= total:
                    break
            if batch_index >= per_epoch:
                epoch, batch_index = epoch + 1, 0
                if scheduler is not None and config.scheduler_unit == "epoch":
                    if scheduler.last_epoch < (config.max_epochs or 0):
                        scheduler.step()
                if val and (epoch % config.eval_every_epochs == 0 or step >= total):
                    val_values = evaluate()
                    logger.log(val_values, step=step, epoch=epoch, split="val")
                    log.info(
                        "epoch %d: %s",
                        epoch,
                        ", ".join(f"{k} {v:.4g}" for k, v in val_values.items()),
                    )
                checkpoint()
        if val and not val_values:  # the run ended mid-epoch
            val_values = evaluate()
            logger.log(val_values, step=step, epoch=epoch, split="val")
        checkpoint()
    finally:
        torch.use_deterministic_algorithms(deterministic)
        logger.close()
    if window:
        last_loss = sum(window) / len(window)
    result: dict[str, Any] = {
        "step": step,
        "epoch": epoch,
        "checkpoint": str(last_ckpt),
        "seconds": time.perf_counter() - t0,
    }
    if last_loss is not None:
        result["train/loss"] = last_loss
    if val_values:
        result["val"] = val_values
    return result


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
