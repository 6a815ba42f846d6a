"""``Trainer``: epochs and steps with AMP, clipping, schedulers, a NaN guard, logging and exact resume.

>>> import tempfile
>>> from neuralops.train import Trainer, TrainConfig
>>> data = [{"input": torch.randn(1, 8), "target": torch.randn(1, 8)} for _ in range(4)]
>>> cfg = TrainConfig(max_steps=2, batch_size=2, out_dir=tempfile.mkdtemp(), log_every=1)
>>> result = Trainer(torch.nn.Conv1d(1, 1, 3, padding=1), cfg, train_data=data, metrics=()).fit()
>>> result["step"]
2
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from neuralops.train._build import (
    NonFiniteLossError,
    build_optimizer,
    build_scheduler,
    is_graph,
    make_loader,
    resolve_device,
    seed_everything,
)
from neuralops.train.checkpoint import (
    check_json_state,
    checkpoint_path,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
)
from neuralops.train.config import TrainConfig
from neuralops.train.distributed import DistEnv, barrier, init_distributed
from neuralops.train.logger import MetricsLogger
from neuralops.train.metrics import METRICS, MeanMetric, get_metric, rel_l1
from neuralops.train.sampler import ResumableSampler

__all__ = ["NonFiniteLossError", "Trainer"]

log = logging.getLogger(__name__)

Loss = str | Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
_AMP = {"bf16": torch.bfloat16, "fp16": torch.float16}


class Trainer:
    """Trains ``model`` on ``train_data`` as ``config`` says; see :class:`TrainConfig`.

    ``train_data``/``val_data``: map-style datasets of dict samples with ``input`` ``(C_in, *S)`` and
    ``target`` ``(C_out, *S)`` (e.g. :class:`neuralops.data.PDEDataset`), optionally ``time``. The model is
    called as ``model(input)`` (or ``model(input, time)`` when batches carry ``time``) on
    ``(batch, C_in, *S)`` and returns ``(batch, C_out, *S)``.

    ``loss`` is a metric name (``rel_l2``, ``rel_h1``) or a callable ``(pred, target) -> scalar``, always a
    batch **mean**. With a ``normalizer`` (``encode(x, key)``/``decode(y, key)``), inputs are encoded, the
    loss compares the output with the **normalized** target, and ``metrics`` compare the decoded output with
    the target in **physical units**.

    **Several PDE families** (multi-operator training, :mod:`neuralops.train.multiop`): give
    ``train_data`` (and ``val_data``) as ``{family: dataset}`` and a model with per-family routing
    (:class:`~neuralops.models.multiop.MultiOperatorModel`, called as ``model(x, t, family=name)``).
    Every batch then holds one family (:class:`~neuralops.train.family_sampler.FamilyBatchSampler`,
    families drawn ``∝ n_f ** family_temperature``), ``normalizer`` may be ``{family: normalizer}``,
    and evaluation reports ``<family>/<metric>`` for each family, its median relative L1 in percent
    (``<family>/rel_l1_median_pct``, Poseidon's metric) and ``loss``, the mean of the families' losses.

    ``optimizer``/``scheduler`` replace the ones ``config`` would build
    (the scheduler's state must be JSON-serialisable). ``callbacks`` are objects with any of
    ``on_fit_start(trainer)``, ``on_step_end(trainer, logs)``, ``on_epoch_end(trainer, logs)``,
    ``on_log(record)``, ``on_fit_end(trainer, result)``; ``trainer.request_stop()`` from a callback (or
    SIGINT/SIGTERM) finishes the step, writes a checkpoint and stops (a signal then exits with code 130).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        config: TrainConfig,
        *,
        train_data: Any,
        val_data: Any = None,
        loss: Loss = "rel_l2",
        metrics: Sequence[str] = ("rel_l2", "rel_h1"),
        normalizer: Any = None,
        optimizer: torch.optim.Optimizer | None = None,
        scheduler: Any = None,
        callbacks: Sequence[Any] = (),
        family_temperature: float = 1.0,
    ) -> None:
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        self.config = config
        self.dist = DistEnv.from_env()
        self.device = resolve_device(config.device)
        init_distributed(self.dist, self.device)
        if config.precision == "fp16" and self.device.type == "cpu":
            raise ValueError(
                "precision='fp16' is not supported on CPU (MKL FFT has no half-precision path); "
                "use precision='bf16' or 'fp32'"
            )
        #: family names in multi-family training (``train_data`` a mapping), else None
        self.families: list[str] | None = None
        if isinstance(train_data, Mapping):
            from neuralops.train.family_sampler import family_datasets

            train_data, val_data = family_datasets(model, train_data, val_data)
            self.families = list(train_data.sizes)
        if len(train_data) == 0:
            raise ValueError("train_data is empty")
        self.model = model.to(self.device)  # the unwrapped module: saved, evaluated, returned
        self.net: torch.nn.Module = (
            self.model
        )  # what training steps call (DDP-wrapped under torchrun)
        if self.dist.is_distributed:
            from torch.nn.parallel import DistributedDataParallel

            self.net = DistributedDataParallel(
                self.model,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
                # a batch of one family leaves the other families' adapters and heads unused
                find_unused_parameters=config.find_unused_parameters or self.families is not None,
            )
        self.train_data, self.val_data = train_data, val_data
        self.loss_name = loss if isinstance(loss, str) else getattr(loss, "__name__", "loss")
        self.loss_fn = get_metric(loss)
        #: PyG graph samples: the model is called as model(batch), losses and metrics per graph
        self.graph = is_graph(train_data[0])
        if self.graph and "rel_h1" in metrics:
            log.warning("rel_h1 needs gridded fields; graph data are evaluated with rel_l2 only")
            metrics = [m for m in metrics if m != "rel_h1"]
        if self.graph and loss in ("rel_h1", "rel_l1"):
            raise ValueError(f"loss {loss!r} needs gridded fields; use 'rel_l2' for graph data")
        self.metric_fns = {name: get_metric(name) for name in metrics}
        self.normalizer = normalizer
        self.callbacks = list(callbacks)
        self.out_dir = Path(config.out_dir)
        self.sampler: Any
        if self.families is not None:
            from neuralops.train.family_sampler import FamilyBatchSampler

            self.sampler = FamilyBatchSampler(
                train_data.sizes,
                config.batch_size,
                seed=config.seed,
                temperature=family_temperature,
                rank=self.dist.rank,
                world_size=self.dist.world_size,
            )
        else:
            self.sampler = ResumableSampler(
                len(train_data),
                seed=config.seed,
                batch_size=config.batch_size,
                rank=self.dist.rank,
                world_size=self.dist.world_size,
            )
        self.steps_per_epoch = self.sampler.batches_per_epoch
        steps = [config.max_steps] if config.max_steps else []
        if config.max_epochs:
            steps.append(config.max_epochs * self.steps_per_epoch)
        self.total_steps = min(steps)
        self.optimizer = optimizer or build_optimizer(self.model, config)
        units = config.max_epochs if config.scheduler_unit == "epoch" else self.total_steps
        self.scheduler = (
            scheduler
            if scheduler is not None
            else build_scheduler(self.optimizer, config, total_steps=units or 1)
        )
        self._plateau = isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
        if self._plateau and val_data is None:
            raise ValueError("scheduler 'plateau' steps on the validation loss; pass val_data")
        if self.scheduler is not None:
            try:
                check_json_state(self.scheduler.state_dict(), type(self.scheduler).__name__)
            except ValueError as exc:
                raise ValueError(f"unsupported scheduler: {exc}") from None
        self.scaler = torch.amp.GradScaler(self.device.type) if config.precision == "fp16" else None
        self.global_step = self.epoch = self.batch_index = 0
        self.best_metric: float | None = None
        self.bad_steps = self.total_bad_steps = self.scaler_skips = 0
        self._stop = False  # the collective decision, taken once per step
        self._stop_requested = False  # set any time by request_stop() or a signal, on any rank
        self._signal: int | None = None
        self._logger: MetricsLogger | None = None
        self.last_checkpoint: Path | None = None
        self._last_saved_step = -1

    # ----------------------------------------------------------------------------------------- public

    def request_stop(self) -> None:
        """Stop after the current step, writing a checkpoint first (under DDP: every rank stops)."""
        self._stop_requested = True

    def fit(self, resume: str | Path | None = "auto") -> dict[str, Any]:
        """Train until ``max_epochs``/``max_steps``; return the final metrics.

        ``resume``: ``"auto"`` continues from ``out_dir/checkpoints/latest`` when it exists, a path resumes
        from that checkpoint (a ``step_*`` folder or a run's ``out_dir``), None starts afresh. The result has
        ``step``, ``epoch``, ``interrupted``, ``checkpoint``, ``train/loss`` and ``val/<name>`` entries.
        """
        cfg = self.config
        self.out_dir.mkdir(parents=True, exist_ok=True)
        ckpt = latest_checkpoint(self.out_dir) if resume == "auto" else resume
        if ckpt is not None:
            self._restore(ckpt)
        else:
            if list_checkpoints(self.out_dir):
                log.warning(
                    "starting afresh in %s, which holds checkpoints of another run", self.out_dir
                )
            seed_everything(cfg.seed)
        deterministic = torch.are_deterministic_algorithms_enabled()
        if cfg.deterministic:
            torch.use_deterministic_algorithms(True)
        self._logger = (
            MetricsLogger(self.out_dir, callbacks=self.callbacks) if self.dist.is_main else None
        )
        result: dict[str, Any] = {}
        try:
            with self._signals():
                self._call("on_fit_start", self)
                result = self._run()
            self._call("on_fit_end", self, result)
        finally:
            torch.use_deterministic_algorithms(deterministic)
            if self._logger is not None:
                self._logger.close()
        if self._signal is not None:
            log.warning(
                "stopped by signal %d at step %d; exiting with 130", self._signal, self.global_step
            )
            raise SystemExit(130)
        return result

    @torch.no_grad()
    def evaluate(self, data: Any) -> dict[str, float]:
        """Mean loss (on normalized targets) and metrics (physical units) over ``data``, exact over samples.

        Returns ``{"loss": ..., "<metric>": ...}``; per-sample values are accumulated as (sum, count).
        Under DDP each rank evaluates every ``world_size``-th sample (no padding duplicates) and the
        (sum, count) pairs are all-reduced, so every rank must call this. ``data`` may be
        ``{family: dataset}`` (multi-family training): then every entry is ``<family>/<name>``, plus
        ``<family>/rel_l1_median_pct`` and ``loss``, the mean of the families' losses.
        """
        if isinstance(data, Mapping):
            out: dict[str, float] = {}
            for family, dataset in data.items():
                values = self._evaluate(dataset, family)
                out.update({f"{family}/{k}": v for k, v in values.items()})
            out["loss"] = sum(out[f"{f}/loss"] for f in data) / len(data)
            return out
        return self._evaluate(data)

    def _evaluate(self, data: Any, family: str | None = None) -> dict[str, float]:
        self.model.eval()
        loader = make_loader(
            data,
            batch_size=self.config.batch_size,
            sampler=range(self.dist.rank, len(data), self.dist.world_size),
            num_workers=self.config.num_workers,
            seed=self.config.seed,
            epoch=2**30,  # a stream of its own, never a training epoch
        )
        acc = {name: MeanMetric() for name in ("loss", *self.metric_fns)}
        l1: list[torch.Tensor] = []
        for _, batch in loader:
            pred, target_n, target, graph = self._forward(batch, self.model, family)
            kw = {} if graph is None else {"batch": graph}
            if self.loss_fn in METRICS.values():
                acc["loss"].update(self.loss_fn(pred, target_n, reduction="none", **kw))
            else:  # a custom batch-mean loss: weight it by the number of samples
                n = pred.shape[0] if graph is None else batch.num_graphs
                acc["loss"].update(self.loss_fn(pred, target_n).detach().expand(n))
            phys = self._decode(pred, family).to(target.dtype)
            for name, fn in self.metric_fns.items():
                acc[name].update(fn(phys, target, reduction="none", **kw))
            if family is not None:
                l1.append(rel_l1(phys, target, reduction="none").detach().cpu())
        for a in acc.values():
            a.all_reduce()
        out = {name: a.compute() for name, a in acc.items()}
        if family is not None:
            values = torch.cat(l1) if l1 else torch.zeros(0)
            if self.dist.is_distributed:
                import torch.distributed as dist

                parts: list[Any] = [None] * self.dist.world_size
                dist.all_gather_object(parts, values)
                values = torch.cat(parts)
            out["rel_l1_median_pct"] = 100.0 * float(values.median())
        return out

    # ------------------------------------------------------------------------------------------ loop

    def _run(self) -> dict[str, Any]:
        cfg = self.config
        world = self.dist.world_size
        self._info(
            "training %s: %d samples, batch %d per rank x %d rank(s) = %d global, %d steps/epoch, "
            "%d steps in total, on %s (%s)",
            type(self.model).__name__,
            len(self.train_data),
            cfg.batch_size,
            world,
            cfg.batch_size * world,
            self.steps_per_epoch,
            self.total_steps,
            self.device,
            cfg.precision,
        )
        bar = self._bar()
        window, t_window, n_window, norm = 0.0, time.perf_counter(), 0, None
        val: dict[str, float] = {}
        last_loss: float | None = None
        self._sync_stop()
        while self.global_step < self.total_steps and not self._stop:
            self.sampler.set_epoch(self.epoch, start_batch=self.batch_index)
            per_family = self.families is not None
            loader = make_loader(
                self.train_data,
                batch_size=cfg.batch_size,
                sampler=None if per_family else self.sampler,
                batch_sampler=self.sampler if per_family else None,
                num_workers=cfg.num_workers,
                seed=cfg.seed,
                epoch=self.epoch,
                pin_memory=self.device.type == "cuda",
            )
            for indices, batch in loader:
                loss, norm = self._step(indices.tolist(), batch)
                self.global_step += 1
                self.batch_index += 1
                window, n_window = window + loss, n_window + 1
                logs = {"loss": loss, "lr": self._lr()}
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss:.4g}", lr=f"{logs['lr']:.3g}")
                if self.global_step % cfg.log_every == 0:
                    rate = n_window / max(time.perf_counter() - t_window, 1e-9)
                    self._log_train(window / n_window, norm, rate, bar is None)
                    last_loss = window / n_window
                    window, t_window, n_window = 0.0, time.perf_counter(), 0
                self._call("on_step_end", self, logs)
                self._sync_stop()
                every = cfg.checkpoint_every_steps
                if every and self.global_step % every == 0:
                    self._checkpoint()
                if self._stop or self.global_step >= self.total_steps:
                    break
            if self.batch_index >= self.steps_per_epoch:
                val = self._end_epoch()
        if bar is not None:
            bar.close()
        if self.val_data is not None and not self._stop and not val:
            val = self.evaluate(self.val_data)  # the run ended mid-epoch (max_steps)
            self._log(val, "val")
        self._checkpoint()  # no-op when this step is already saved
        result: dict[str, Any] = {
            "step": self.global_step,
            "epoch": self.epoch,
            "interrupted": self._stop,
            "checkpoint": str(self.last_checkpoint),
            "bad_steps": self.total_bad_steps,
            "scaler_skips": self.scaler_skips,
        }
        if n_window:
            last_loss = window / n_window
        if last_loss is not None:
            result["train/loss"] = last_loss  # mean over the last log window
        result.update({f"val/{k}": v for k, v in val.items()})
        return result

    def _end_epoch(self) -> dict[str, float]:
        cfg = self.config
        self.epoch += 1
        self.batch_index = 0
        val: dict[str, float] = {}
        last = self.global_step >= self.total_steps
        if self.val_data is not None and (self.epoch % cfg.eval_every_epochs == 0 or last):
            val = self.evaluate(self.val_data)
            self._log(val, "val")
            self._info(
                "epoch %d step %d: val %s (loss on normalized targets, metrics in physical units)",
                self.epoch,
                self.global_step,
                ", ".join(f"{k} {v:.4g}" for k, v in val.items() if isinstance(v, float)),
            )
            if self.best_metric is None or val["loss"] < self.best_metric:
                self.best_metric = val["loss"]
        if self.scheduler is not None and cfg.scheduler_unit == "epoch":
            if self._plateau:
                if val:
                    self.scheduler.step(val["loss"])
            elif self.scheduler.last_epoch < (cfg.max_epochs or 0):
                self.scheduler.step()
        self._call("on_epoch_end", self, {"epoch": self.epoch, **val})
        self._sync_stop()
        self._checkpoint()
        return val

    def _step(self, indices: list[int], batch: dict[str, Any]) -> tuple[float, float | None]:
        """One optimizer step; returns the loss and the gradient norm (None when not computed)."""
        cfg = self.config
        self.net.train()
        pred, target_n, _, graph = self._forward(batch, self.net)
        builtin = graph is not None and self.loss_fn in METRICS.values()
        loss = (
            self.loss_fn(pred, target_n, batch=graph) if builtin else self.loss_fn(pred, target_n)
        )
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        params = [p for g in self.optimizer.param_groups for p in g["params"] if p.grad is not None]
        norm_t = None
        if cfg.grad_clip_norm is not None:
            norm_t = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip_norm)
        elif self.scaler is None:
            norm_t = torch.nn.utils.get_total_norm([p.grad for p in params])
        # the one host sync of the step: loss and gradient norm together (nothing has been
        # updated yet, so a non-finite value only costs the wasted backward)
        value, norm, finite = self._finite_check(loss, norm_t)
        if not math.isfinite(value) or not finite:
            return self._bad_step(indices, value, "loss"), None
        if self.scaler is None and norm is not None and not math.isfinite(norm):
            return self._bad_step(indices, value, "gradient norm"), norm
        if self.scaler is not None:
            scale = self.scaler.get_scale()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            if self.scaler.get_scale() < scale:
                self.scaler_skips += 1  # inf gradients under fp16: normal, not a NaN event
        else:
            self.optimizer.step()
        if self.scheduler is not None and cfg.scheduler_unit == "step" and not self._plateau:
            self.scheduler.step()
        self.bad_steps = 0
        return value, norm

    def _bad_step(self, indices: list[int], value: float, what: str) -> float:
        self.optimizer.zero_grad(set_to_none=True)
        self.bad_steps += 1
        self.total_bad_steps += 1
        err = NonFiniteLossError(
            step=self.global_step + 1,
            epoch=self.epoch,
            indices=indices,
            loss=value,
            lr=self._lr(),
            what=what,
        )
        if self.config.nan_policy == "stop" or self.bad_steps >= self.config.max_bad_steps:
            raise err
        log.warning("skipping step (%d consecutive): %s", self.bad_steps, err)
        return value

    def _finite_check(
        self, loss: torch.Tensor, norm: torch.Tensor | None
    ) -> tuple[float, float | None, bool]:
        """``(loss, gradient norm, loss finite on every rank)`` in one host transfer.

        The loss is the mean over ranks under DDP, where one all-reduce of (loss, non-finite flag)
        lets all ranks take the same decision, so none waits in a collective the others skip. The
        gradient norm is computed after DDP's gradient all-reduce, so it is the same on all ranks.
        """
        parts = [loss.detach().reshape(1).to(torch.float64)]
        if norm is not None:
            parts.append(norm.detach().reshape(1).to(device=loss.device, dtype=torch.float64))
        values = torch.cat(parts).tolist()
        value, gnorm = values[0], (values[1] if norm is not None else None)
        if not self.dist.is_distributed:
            return value, gnorm, math.isfinite(value)
        import torch.distributed as dist

        bad = not math.isfinite(value)
        buf = torch.tensor(
            [0.0 if bad else value, float(bad)], dtype=torch.float64, device=self.device
        )
        dist.all_reduce(buf)
        total, n_bad = buf.tolist()
        if n_bad:
            return (value if bad else math.nan), gnorm, False
        return total / self.dist.world_size, gnorm, True

    def _sync_stop(self) -> None:
        """Turn stop requests (a signal or ``request_stop()`` on any rank) into one decision for all."""
        if not self.dist.is_distributed:
            self._stop = self._stop_requested
            return
        import torch.distributed as dist

        flag = torch.tensor([float(self._stop_requested)], device=self.device)
        dist.all_reduce(flag)
        self._stop = bool(flag.item())

    def _forward(
        self, batch: Any, net: torch.nn.Module, family: str | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``(output, normalized target, target, graph index)``.

        Grid batches: ``(batch, C_out, *S)`` tensors and graph index None. PyG batches: node features
        ``(n_nodes, C_out)`` and ``batch.batch``; the model gets the whole batch with ``x`` encoded.
        Multi-family training: the batch's family (``family``, or its ``"family"`` entries, which
        must agree) routes the model and picks the normalizer.
        """
        dtype = _AMP.get(self.config.precision)
        if family is None and self.families is not None:
            from neuralops.train.family_sampler import batch_family

            family = batch_family(batch)
        norm = self._normalizer(family)
        if self.graph:
            batch = batch.to(self.device)
            y = batch.y
            y_n = y if norm is None else norm.encode(y, key="target", channels_last=True)
            if norm is not None:
                batch.x = norm.encode(batch.x, key="input", channels_last=True)
            with torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None):
                pred = net(batch)
            return pred.to(y.dtype), y_n, y, batch.batch
        x = batch["input"].to(self.device, non_blocking=True)
        y = batch["target"].to(self.device, non_blocking=True)
        y_n = y
        if norm is not None:
            x = norm.encode(x, key="input")
            y_n = norm.encode(y, key="target")
        kw = {} if family is None else {"family": family}
        with torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None):
            if "time" in batch:
                pred = net(x, batch["time"].to(self.device), **kw)
            else:
                pred = net(x, **kw)
        return pred.to(y.dtype), y_n, y, None

    def _normalizer(self, family: str | None) -> Any:
        if isinstance(self.normalizer, Mapping):
            return self.normalizer.get(family) if family is not None else None
        return self.normalizer

    def _decode(self, pred: torch.Tensor, family: str | None = None) -> torch.Tensor:
        norm = self._normalizer(family)
        if norm is None:
            return pred
        return norm.decode(pred, key="target", channels_last=self.graph)

    # ------------------------------------------------------------------------------ state and logging

    def _lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def _state(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "batch_index": self.batch_index,
            "epoch_samples": self.batch_index * self.config.batch_size * self.dist.world_size,
            "sampler_seed": self.sampler.seed,
            "world_size": self.sampler.world_size,
            **(
                {"families": self.sampler.sizes, "temperature": self.sampler.temperature}
                if self.families is not None
                else {}
            ),
            "best_metric": self.best_metric,
            "bad_steps": self.bad_steps,
            "total_bad_steps": self.total_bad_steps,
            "scaler_skips": self.scaler_skips,
            "config": self.config.to_dict(),
        }

    def _checkpoint(self) -> None:
        if self._last_saved_step == self.global_step and self.last_checkpoint is not None:
            return
        barrier()
        if self.dist.is_main:  # rank 0 writes; the others wait so nobody reads a half-written one
            self.last_checkpoint = save_checkpoint(
                self.out_dir,
                self.global_step,
                model=self.model,
                optimizer=self.optimizer,
                scheduler=self.scheduler,
                scaler=self.scaler,
                state=self._state(),
                keep_last=self.config.keep_last,
            )
            log.debug("checkpoint %s", self.last_checkpoint)
        else:
            self.last_checkpoint = checkpoint_path(self.out_dir, self.global_step)
        barrier()
        self._last_saved_step = self.global_step

    def _restore(self, path: str | Path) -> None:
        state = load_checkpoint(
            path,
            model=self.model,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            scaler=self.scaler,
        )
        self.global_step = int(state["global_step"])
        self.epoch, self.batch_index = int(state["epoch"]), int(state["batch_index"])
        self.best_metric = state.get("best_metric")
        self.bad_steps = int(state.get("bad_steps", 0))
        self.total_bad_steps = int(state.get("total_bad_steps", 0))
        self.scaler_skips = int(state.get("scaler_skips", 0))
        if state.get("sampler_seed", self.sampler.seed) != self.sampler.seed:
            log.warning(
                "resuming with sampler seed %d (checkpoint: %d)",
                self.sampler.seed,
                state["sampler_seed"],
            )
        if state.get("world_size", 1) != self.sampler.world_size:
            # positions count global samples: map the epoch position onto this run's global batch
            seen = int(state.get("epoch_samples", self.batch_index * self.config.batch_size))
            self.batch_index = seen // (self.config.batch_size * self.sampler.world_size)
            if self.batch_index >= self.steps_per_epoch:  # the old run had finished this epoch
                self.epoch, self.batch_index = self.epoch + 1, 0
            log.warning(
                "resuming a run of world size %d with world size %d: continuing at batch %d of epoch "
                "%d; bitwise equality with an uninterrupted run is not promised",
                state.get("world_size", 1),
                self.sampler.world_size,
                self.batch_index,
                self.epoch,
            )
        self._check_schedule_length()
        self.last_checkpoint, self._last_saved_step = Path(state["path"]), self.global_step
        self._info(
            "resumed from %s at step %d (epoch %d, batch %d)",
            state["path"],
            self.global_step,
            self.epoch,
            self.batch_index,
        )

    def _log_train(self, loss: float, norm: float | None, rate: float, line: bool) -> None:
        values = {"loss": loss, "lr": self._lr(), "it_per_s": rate}
        if norm is not None:
            values["grad_norm"] = norm
        self._log(values, "train")
        if line and self.dist.is_main:
            log.info(
                "step %d/%d epoch %d: loss %.4g, lr %.3g, grad norm %s, %.1f it/s",
                self.global_step,
                self.total_steps,
                self.epoch,
                loss,
                values["lr"],
                "-" if norm is None else f"{norm:.3g}",
                rate,
            )

    def _log(self, values: dict[str, float], split: str) -> None:
        if self._logger is not None:  # rank 0 only
            self._logger.log(values, step=self.global_step, epoch=self.epoch, split=split)

    def _info(self, msg: str, *args: Any) -> None:
        if self.dist.is_main:
            log.info(msg, *args)

    def _check_schedule_length(self) -> None:
        """A restored OneCycle schedule cannot be stretched: refuse a resume that would step past it."""
        sched = self.scheduler
        if not isinstance(sched, torch.optim.lr_scheduler.OneCycleLR):
            return
        cfg = self.config
        needed = cfg.max_epochs if cfg.scheduler_unit == "epoch" else self.total_steps
        if needed is not None and needed > sched.total_steps:
            unit = "epochs" if cfg.scheduler_unit == "epoch" else "steps"
            raise ValueError(
                f"the checkpoint's OneCycle schedule lasts {sched.total_steps} {unit}, but this run "
                f"asks for {needed}: a one-cycle schedule cannot be extended after the fact. Keep "
                "max_steps/max_epochs as in the checkpointed run, or start a new run from its weights "
                "(resume=None, loading the checkpoint's model.safetensors)"
            )

    def _bar(self) -> Any:
        if not self.dist.is_main or not sys.stderr.isatty():
            return None
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return None
        return tqdm(
            total=self.total_steps, initial=self.global_step, unit="step", dynamic_ncols=True
        )

    def _call(self, hook: str, *args: Any) -> None:
        for cb in self.callbacks:
            fn = getattr(cb, hook, None)
            if fn is not None:
                fn(*args)

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, frame: Any) -> None:
            log.warning("signal %d: finishing the step, then checkpointing", signum)
            self._signal = signum
            self._stop_requested = True

        old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, h in old.items():
                signal.signal(s, h)
