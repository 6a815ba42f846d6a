"""``MetricsLogger``: ``metrics.csv`` always, TensorBoard when installed, and callbacks' ``on_log``."""

from __future__ import annotations

import csv
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["MetricsLogger"]

log = logging.getLogger(__name__)

_WARNED = False  # the missing-tensorboard warning is given once per process
COLUMNS = ("step", "epoch", "split", "name", "value", "wall_time")


class MetricsLogger:
    """Appends rows ``step, epoch, split, name, value, wall_time`` to ``out_dir/metrics.csv``.

    ``wall_time`` is seconds since the Unix epoch. TensorBoard scalars go to ``out_dir/tensorboard`` if
    ``torch.utils.tensorboard`` imports (one warning otherwise). Every record is also passed as a dict to
    each callback's ``on_log`` method, the hook for a user's own logger.
    """

    def __init__(
        self, out_dir: str | Path, *, callbacks: Sequence[Any] = (), tensorboard: bool = True
    ) -> None:
        self.path = Path(out_dir) / "metrics.csv"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists() or self.path.stat().st_size == 0
        self._fh = open(self.path, "a", newline="", encoding="utf-8")  # noqa: SIM115
        self._csv = csv.writer(self._fh)
        if new:
            self._csv.writerow(COLUMNS)
            self._fh.flush()
        self.callbacks = [c for c in callbacks if hasattr(c, "on_log")]
        self._tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                global _WARNED
                if not _WARNED:
                    _WARNED = True
                    log.warning(
                        "tensorboard is not installed; logging to %s only (pip install tensorboard)",
                        self.path,
                    )
            else:
                self._tb = SummaryWriter(str(Path(out_dir) / "tensorboard"))

    def log(self, values: Mapping[str, float], *, step: int, epoch: int, split: str) -> None:
        """Record ``values`` (name -> number) of ``split`` ("train", "val") at ``step``."""
        now = time.time()
        for name, value in values.items():
            self._csv.writerow((step, epoch, split, name, repr(float(value)), f"{now:.3f}"))
            if self._tb is not None:
                self._tb.add_scalar(f"{split}/{name}", float(value), step)
        self._fh.flush()
        record = {"step": step, "epoch": epoch, "split": split, **values}
        for cb in self.callbacks:
            cb.on_log(record)

    def close(self) -> None:
        """Flush and close the files."""
        self._fh.close()
        if self._tb is not None:
            self._tb.close()
