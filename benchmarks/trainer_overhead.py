"""Trainer overhead: ``neuralops.train.Trainer`` against a bare PyTorch loop, same model and data.

python benchmarks/trainer_overhead.py            # 200 timed steps after 20 warm-up, 2 rounds
python benchmarks/trainer_overhead.py --quick    # 30 timed steps after 5 warm-up, 1 round

Both loops see the same in-memory samples (8 x 1 x 64 x 64 batches), seed, Adam (lr 1e-3), fp32,
batch-mean relative L2 loss. The bare loop is ``DataLoader`` -> forward -> loss -> backward -> step;
the Trainer runs with its defaults (NaN guard, gradient norm, CSV log every 50 steps, no validation)
and checkpoints off, then again with a checkpoint every 100 steps (reported separately). Step times
are wall-clock intervals between consecutive step ends (a callback for the Trainer); the figure is
the median over the timed steps, and the runs alternate (bare, Trainer, bare, Trainer, ...) so load
from other processes on a shared machine hits both alike. Goal: overhead <= 3 %.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import torch
from _common import save, table

from neuralops.models import FNO, MgNO, MgNOConfig
from neuralops.models.fno import FNOConfig
from neuralops.train import TrainConfig, Trainer
from neuralops.train.metrics import rel_l2

MODELS = {
    "mgno_darcy_rough": lambda: MgNO(MgNOConfig.preset("darcy_rough")),
    "fno_neuralop2": lambda: FNO(FNOConfig.preset("neuralop2")),
}


def make_data(n: int, size: int = 64) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(n):
        x = torch.randn(1, size, size, generator=g)
        out.append({"input": x, "target": torch.tanh(torch.roll(x, 3, dims=-1))})
    return out


def bare_loop(model_name: str, data, steps: int, batch: int) -> list[float]:
    torch.manual_seed(0)
    model = MODELS[model_name]()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    stamps = [time.perf_counter()]
    done = 0
    while done < steps:
        loader = torch.utils.data.DataLoader(data, batch_size=batch, shuffle=True, generator=gen)
        for b in loader:
            loss = rel_l2(model(b["input"]), b["target"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            stamps.append(time.perf_counter())
            done += 1
            if done == steps:
                break
    return [b - a for a, b in zip(stamps, stamps[1:])]


class _Stamps:
    def __init__(self) -> None:
        self.t = [time.perf_counter()]

    def on_fit_start(self, trainer) -> None:
        self.t = [time.perf_counter()]

    def on_step_end(self, trainer, logs) -> None:
        self.t.append(time.perf_counter())


def trainer_loop(model_name: str, data, steps: int, batch: int, ckpt: int | None) -> list[float]:
    torch.manual_seed(0)
    model = MODELS[model_name]()
    stamps = _Stamps()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig(
            max_steps=steps,
            batch_size=batch,
            optimizer="adam",
            lr=1e-3,
            seed=0,
            checkpoint_every_steps=ckpt,
            out_dir=tmp,
        )
        Trainer(model, cfg, train_data=data, metrics=(), callbacks=[stamps]).fit(resume=None)
    return [b - a for a, b in zip(stamps.t, stamps.t[1:])]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--models", default=",".join(MODELS))
    args = p.parse_args(argv)
    warm, timed, rounds = (5, 30, 1) if args.quick else (20, 200, 2)
    steps, batch = warm + timed, 8
    data = make_data(64)
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    rows = []
    for name in args.models.split(","):
        runs: dict[str, list[float]] = {"bare": [], "trainer": [], "trainer_ckpt100": []}
        for r in range(rounds):
            for kind in (
                ("bare", "trainer", "trainer_ckpt100")
                if r % 2 == 0
                else ("trainer_ckpt100", "trainer", "bare")
            ):
                if kind == "bare":
                    dt = bare_loop(name, data, steps, batch)
                else:
                    dt = trainer_loop(
                        name, data, steps, batch, 100 if kind.endswith("100") else None
                    )
                runs[kind].append(dt[warm:])
                print(
                    f"{name} round {r} {kind}: median {1e3 * statistics.median(dt[warm:]):.1f} ms/step",
                    flush=True,
                )
        med = {
            k: statistics.median([statistics.median(v) for v in vals]) for k, vals in runs.items()
        }
        mean = {k: statistics.mean([statistics.mean(v) for v in vals]) for k, vals in runs.items()}
        rows.append(
            {
                "model": name,
                "params": MODELS[name]().n_params(),
                "bare_ms": 1e3 * med["bare"],
                "trainer_ms": 1e3 * med["trainer"],
                "overhead_pct": 100 * (med["trainer"] / med["bare"] - 1),
                "trainer_ckpt100_ms": 1e3 * med["trainer_ckpt100"],
                "overhead_ckpt100_pct": 100 * (med["trainer_ckpt100"] / med["bare"] - 1),
                "overhead_ckpt100_mean_pct": 100 * (mean["trainer_ckpt100"] / mean["bare"] - 1),
                "goal_met": med["trainer"] / med["bare"] - 1 <= 0.03,
            }
        )
    cols = ["model", "params", "bare_ms", "trainer_ms", "overhead_pct", "trainer_ckpt100_ms"]
    cols += ["overhead_ckpt100_pct", "overhead_ckpt100_mean_pct", "goal_met"]
    print(table(rows, cols))
    path = save(
        "trainer_overhead_quick" if args.quick else "trainer_overhead",
        rows,
        warmup_steps=warm,
        timed_steps=timed,
        rounds=rounds,
        batch="8 x 1 x 64 x 64",
        caveats=[
            "median ms/step over the timed steps, median over rounds; runs alternate bare/Trainer",
            "overhead_ckpt100_mean_pct uses means, so the checkpoint writes (every 100 steps) count",
            "2-core shared CPU, torch threads = 2",
        ],
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
