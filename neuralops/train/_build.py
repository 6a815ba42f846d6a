"""Builders behind :class:`~neuralops.train.Trainer`: device, optimizer, scheduler, data loaders, errors."""

from __future__ import annotations

import fnmatch
import logging
import os
import random
from functools import partial
from typing import Any

import numpy as np
import torch

from neuralops.train.config import TrainConfig
from neuralops.train.sampler import mix_seed

__all__ = [
    "IndexedDataset",
    "NonFiniteLossError",
    "build_optimizer",
    "build_scheduler",
    "collate",
    "is_graph",
    "make_loader",
    "resolve_device",
    "seed_everything",
]

log = logging.getLogger(__name__)


class NonFiniteLossError(FloatingPointError):
    """The loss or the gradient norm became NaN/Inf (``nan_policy="stop"``, or too many skips).

    Attributes: ``step``, ``epoch``, ``indices`` (dataset indices of the batch), ``loss``, ``lr``.
    """

    def __init__(
        self, *, step: int, epoch: int, indices: list[int], loss: float, lr: float, what: str
    ) -> None:
        self.step, self.epoch, self.indices, self.loss, self.lr = step, epoch, indices, loss, lr
        super().__init__(
            f"non-finite {what} at step {step} (epoch {epoch}); loss={loss}, lr={lr:.3g}, batch sample "
            f"indices {indices}. Lower the lr, enable clipping (grad_clip_norm=1.0), switch "
            "precision fp16 -> bf16, or check those samples for NaN/Inf."
        )


def resolve_device(name: str) -> torch.device:
    """``"auto"``: ``cuda:$LOCAL_RANK`` when CUDA is present, else ``cpu``; an explicit name is honoured."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(
            f"TrainConfig.device {name!r} is not a device name (auto, cpu, cuda:N)"
        ) from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"TrainConfig.device={name!r}, but CUDA is not available on this machine"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(
                f"TrainConfig.device={name!r}, but only {torch.cuda.device_count()} CUDA devices exist"
            )
    return device


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), numpy's global generator and Python's ``random``."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (the global state user augmentations draw from)
    random.seed(seed)


def build_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer of ``config``; ``config.param_groups`` split parameters by glob on their names."""
    rules = [dict(r) for r in config.param_groups]
    buckets: list[list[torch.nn.Parameter]] = [[] for _ in rules]
    default: list[torch.nn.Parameter] = []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        for i, rule in enumerate(rules):
            if fnmatch.fnmatchcase(name, rule["pattern"]):
                buckets[i].append(p)
                break
        else:
            default.append(p)
    groups: list[dict[str, Any]] = [{"params": default}] if default else []
    for rule, params in zip(rules, buckets, strict=True):
        if not params:
            log.warning("param_groups pattern %r matches no trainable parameter", rule["pattern"])
            continue
        groups.append({"params": params, **{k: v for k, v in rule.items() if k != "pattern"}})
    if not groups:
        raise ValueError("the model has no trainable parameters")
    kw: dict[str, Any] = {"lr": config.lr, "weight_decay": config.weight_decay}
    if config.optimizer == "adam":
        return torch.optim.Adam(groups, betas=config.betas, **kw)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, betas=config.betas, **kw)
    return torch.optim.SGD(groups, momentum=config.momentum, **kw)


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig, *, total_steps: int
) -> Any:
    """The scheduler of ``config`` (None for ``"none"``).

    ``total_steps`` is the number of scheduler steps of the run: optimizer steps with
    ``scheduler_unit="step"``, epochs with ``"epoch"``. ``config.scheduler_args`` override the defaults;
    OneCycle per epoch defaults to the MgNO reference (div_factor 2, final_div_factor 100, pct_start 0.2).
    """
    sched = torch.optim.lr_scheduler
    args = dict(config.scheduler_args)
    name = config.scheduler
    if name == "none":
        return None
    if name == "onecycle":
        defaults: dict[str, Any] = {
            "max_lr": [g["lr"] for g in optimizer.param_groups],
            "total_steps": total_steps,
        }
        if config.scheduler_unit == "epoch":
            defaults.update(div_factor=2.0, final_div_factor=100.0, pct_start=0.2)
        kw = {"pct_start": 0.3, **defaults, **args}
        if abs(kw["pct_start"] * kw["total_steps"] - 1.0) < 1e-9:
            # torch's OneCycleLR divides by a zero-length warm-up (e.g. pct_start 0.2, 5 epochs)
            kw["pct_start"] += 0.5 / kw["total_steps"]
        return sched.OneCycleLR(optimizer, **kw)
    if name == "cosine":
        return sched.CosineAnnealingLR(optimizer, **{"T_max": total_steps, **args})
    if name == "step":
        return sched.StepLR(optimizer, **{"step_size": max(1, total_steps // 3), **args})
    return sched.ReduceLROnPlateau(optimizer, **args)


class IndexedDataset(torch.utils.data.Dataset):
    """Wraps a map-style dataset so each item is ``(index, sample)``: the Trainer knows the batch's
    sample indices (for the NaN report) without asking the dataset."""

    def __init__(self, data: Any) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, idx: int) -> tuple[int, Any]:
        return idx, self.data[idx]


def is_graph(sample: Any) -> bool:
    """Whether a sample is a PyTorch Geometric ``Data`` (checked without importing PyG)."""
    return hasattr(sample, "edge_index") and hasattr(sample, "num_nodes")


def collate(items: list[tuple[int, Any]]) -> tuple[torch.Tensor, Any]:
    """``(indices, batch)``: PyG ``Data`` samples become one ``Batch``; dict samples are stacked."""
    indices = torch.tensor([i for i, _ in items])
    samples = [s for _, s in items]
    if is_graph(samples[0]):
        from torch_geometric.data import Batch

        return indices, Batch.from_data_list(samples)
    return indices, torch.utils.data.default_collate(samples)


def _seed_worker(seed: int, epoch: int, worker_id: int) -> None:
    s = mix_seed(seed, epoch, worker_id)
    torch.manual_seed(s)
    np.random.seed(s % 2**32)  # noqa: NPY002
    random.seed(s)


def make_loader(
    data: Any,
    *,
    batch_size: int,
    sampler: torch.utils.data.Sampler | None,
    num_workers: int,
    seed: int,
    epoch: int,
    pin_memory: bool = False,
    batch_sampler: Any = None,
) -> torch.utils.data.DataLoader:
    """A DataLoader over ``IndexedDataset(data)`` whose workers are seeded from (seed, epoch, worker_id).

    It has its own generator, so creating it never draws from the global torch RNG (which would make a
    resumed run diverge from an uninterrupted one). A ``batch_sampler`` (yielding lists of indices)
    replaces ``batch_size`` and ``sampler``.
    """
    gen = torch.Generator()
    gen.manual_seed(mix_seed(seed, epoch, 2**31 - 1))
    batching: dict[str, Any] = (
        {"batch_sampler": batch_sampler}
        if batch_sampler is not None
        else {"batch_size": batch_size, "sampler": sampler, "shuffle": False, "drop_last": False}
    )
    return torch.utils.data.DataLoader(
        IndexedDataset(data),
        **batching,
        num_workers=num_workers,
        worker_init_fn=partial(_seed_worker, seed, epoch) if num_workers else None,
        generator=gen,
        collate_fn=collate,
        pin_memory=pin_memory,
    )
