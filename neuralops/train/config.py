"""``TrainConfig``: every setting of a :class:`~neuralops.train.Trainer` run in one frozen dataclass.

The fields are also the ``[train]``, ``[optim]`` and ``[schedule]`` tables of a recipe
(:meth:`TrainConfig.from_dict` merges them and rejects unknown keys, suggesting the nearest valid one).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = ["OPTIMIZERS", "PRECISIONS", "SCHEDULERS", "TrainConfig"]

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULERS = ("onecycle", "cosine", "step", "plateau", "none")
PRECISIONS = ("fp32", "bf16", "fp16")
_UNITS = ("step", "epoch")
_NAN_POLICIES = ("stop", "skip")


def _choice(name: str, value: Any, valid: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value.lower() not in valid:
        raise ValueError(f"TrainConfig.{name} must be one of {list(valid)}, got {value!r}")
    return value.lower()


def _positive_int(name: str, value: Any, *, allow_none: bool = False, minimum: int = 1) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        what = "None or an integer" if allow_none else "an integer"
        raise ValueError(f"TrainConfig.{name} must be {what} >= {minimum}, got {value!r}")


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run; validated on construction.

    Run: ``device`` ("auto" = ``cuda:$LOCAL_RANK`` if CUDA is present, else ``cpu``), ``precision``
    (fp32, bf16 autocast, fp16 autocast + GradScaler), ``seed``, ``deterministic``,
    ``find_unused_parameters`` (passed to ``DistributedDataParallel`` under ``torchrun``).
    Length: ``max_epochs`` and/or ``max_steps`` (the run stops at whichever comes first), ``batch_size``
    (per rank), ``num_workers``. Optimizer: ``optimizer``, ``lr``, ``weight_decay``, ``betas`` (Adam/AdamW;
    ``momentum`` for SGD), ``param_groups``: ``({"pattern": "encoder.*", "lr": 1e-5}, ...)``, glob patterns on
    parameter names, first match wins, unmatched parameters use the defaults. Schedule: ``scheduler``,
    ``scheduler_args`` (keyword arguments of the torch scheduler), ``scheduler_unit``. Stability:
    ``grad_clip_norm``, ``nan_policy``, ``max_bad_steps``. Logging: ``log_every`` (steps),
    ``eval_every_epochs``, ``checkpoint_every_steps`` (None: epoch ends and run end only), ``keep_last``,
    ``out_dir``.

    >>> TrainConfig(max_epochs=2, optimizer="adamw", lr=1e-3).scheduler
    'none'
    """

    device: str = "auto"
    precision: str = "fp32"
    seed: int = 0
    deterministic: bool = False
    find_unused_parameters: bool = False
    max_epochs: int | None = None
    max_steps: int | None = None
    batch_size: int = 8
    num_workers: int = 0
    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    momentum: float = 0.0
    param_groups: tuple[Mapping[str, Any], ...] = ()
    scheduler: str = "none"
    scheduler_args: Mapping[str, Any] = field(default_factory=dict)
    scheduler_unit: str = "step"
    grad_clip_norm: float | None = None
    nan_policy: str = "stop"
    max_bad_steps: int = 10
    log_every: int = 50
    eval_every_epochs: int = 1
    checkpoint_every_steps: int | None = None
    keep_last: int = 3
    out_dir: str = "runs/default"

    def __post_init__(self) -> None:
        object.__setattr__(self, "precision", _choice("precision", self.precision, PRECISIONS))
        object.__setattr__(self, "optimizer", _choice("optimizer", self.optimizer, OPTIMIZERS))
        object.__setattr__(self, "scheduler", _choice("scheduler", self.scheduler, SCHEDULERS))
        object.__setattr__(
            self, "scheduler_unit", _choice("scheduler_unit", self.scheduler_unit, _UNITS)
        )
        object.__setattr__(
            self, "nan_policy", _choice("nan_policy", self.nan_policy, _NAN_POLICIES)
        )
        if not isinstance(self.device, str) or not self.device:
            raise ValueError(
                f"TrainConfig.device must be 'auto', 'cpu' or 'cuda:N', got {self.device!r}"
            )
        if self.max_epochs is None and self.max_steps is None:
            raise ValueError("TrainConfig needs max_epochs or max_steps (or both); got neither")
        _positive_int("max_epochs", self.max_epochs, allow_none=True)
        _positive_int("max_steps", self.max_steps, allow_none=True)
        _positive_int("batch_size", self.batch_size)
        _positive_int("num_workers", self.num_workers, minimum=0)
        _positive_int("max_bad_steps", self.max_bad_steps)
        _positive_int("log_every", self.log_every)
        _positive_int("eval_every_epochs", self.eval_every_epochs)
        _positive_int("checkpoint_every_steps", self.checkpoint_every_steps, allow_none=True)
        _positive_int("keep_last", self.keep_last)
        _positive_int("seed", self.seed, minimum=0)
        if not (isinstance(self.lr, int | float) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"TrainConfig.lr must be a finite number > 0, got {self.lr!r}")
        if not (isinstance(self.weight_decay, int | float) and self.weight_decay >= 0):
            raise ValueError(f"TrainConfig.weight_decay must be >= 0, got {self.weight_decay!r}")
        betas = tuple(float(b) for b in self.betas)
        if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"TrainConfig.betas must be two numbers in [0, 1), got {self.betas!r}")
        object.__setattr__(self, "betas", betas)
        if self.grad_clip_norm is not None and not self.grad_clip_norm > 0:
            raise ValueError(
                f"TrainConfig.grad_clip_norm must be None or > 0, got {self.grad_clip_norm!r}"
            )
        groups = tuple(dict(g) for g in self.param_groups)
        for g in groups:
            if not isinstance(g.get("pattern"), str):
                raise ValueError(
                    "TrainConfig.param_groups entries need a 'pattern' (a glob on parameter names), "
                    f"got {g!r}"
                )
        object.__setattr__(self, "param_groups", groups)
        object.__setattr__(self, "scheduler_args", dict(self.scheduler_args))
        if self.scheduler == "plateau" and self.scheduler_unit != "epoch":
            # Plateau steps on the validation loss, which exists once per evaluation.
            object.__setattr__(self, "scheduler_unit", "epoch")
        if self.scheduler_unit == "epoch" and self.scheduler != "none" and self.max_epochs is None:
            raise ValueError(
                f"TrainConfig.scheduler_unit='epoch' (scheduler {self.scheduler!r}) needs max_epochs"
            )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of every field (tuples as lists)."""
        d = asdict(self)
        d["betas"] = list(self.betas)
        d["param_groups"] = [dict(g) for g in self.param_groups]
        d["scheduler_args"] = dict(self.scheduler_args)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], **overrides: Any) -> TrainConfig:
        """Build from a flat mapping (e.g. the merged ``[train]``/``[optim]``/``[schedule]`` tables).

        Unknown keys raise ``ValueError`` naming the nearest valid key.
        """
        merged = {**data, **overrides}
        names = [f.name for f in fields(cls)]
        for key in merged:
            if key not in names:
                near = difflib.get_close_matches(key, names, n=1)
                hint = f"; did you mean {near[0]!r}?" if near else f"; valid keys: {names}"
                raise ValueError(f"unknown TrainConfig key {key!r}{hint}")
        return cls(**merged)
