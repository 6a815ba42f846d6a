"""Shared benchmark plumbing: machine description, JSON results, side-by-side tables."""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"

__all__ = [
    "Head",
    "machine",
    "save",
    "scot_cpu_config",
    "table",
    "timeit",
    "peak_rss_mb",
    "RESULTS",
]


class Head:
    """The first ``n`` items of a dataset (a map-style view; nothing is copied)."""

    def __init__(self, data, n: int) -> None:
        self.data, self.n = data, min(n, len(data))

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return self.data[i]


def scot_cpu_config(**overrides):
    """The CPU-sized scOT of ``train/scot_ns_small.toml`` (one definition for the recipe and the
    benchmarks), with ``overrides`` applied."""
    from neuralops.models import ScOTConfig
    from neuralops.train.recipe import load_train_recipe

    recipe = load_train_recipe(Path(__file__).resolve().parents[1] / "train" / "scot_ns_small.toml")
    return ScOTConfig(**{**recipe.model, **overrides})


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict:
    """What the numbers were measured on: CPU, cores, memory, versions, accelerator."""
    import numpy
    import scipy

    info = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    try:
        import h5py
        import torch

        info["h5py"] = h5py.__version__
        info["torch"] = torch.__version__
        info["device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    except ImportError:
        info["device"] = "cpu"
    from neuralops import __version__

    info["neuralops"] = __version__
    return info


def timeit(fn: Callable[[], object], repeat: int = 5, warmup: int = 1) -> dict:
    """Median, min and max wall seconds of ``fn()`` over ``repeat`` runs after ``warmup``."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {
        "median": statistics.median(times),
        "min": min(times),
        "max": max(times),
        "runs": repeat,
    }


def peak_rss_mb() -> float:
    """Peak resident memory of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def save(name: str, rows: list[dict], **meta) -> Path:
    """Write ``benchmarks/results/<name>.json`` with the machine description."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {
        "benchmark": name,
        "machine": machine(),
        "command": " ".join(sys.argv),
        **meta,
        "rows": rows,
    }
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    os.replace(tmp, path)
    return path


def table(rows: list[dict], columns: list[str]) -> str:
    """A Markdown table of ``rows`` restricted to ``columns``."""

    def fmt(v):
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1e4 else f"{v:,.0f}"
        return str(v)

    head = "| " + " | ".join(columns) + " |"
    sep = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join([head, sep, *body])
