"""scOT against FNO and MgNO on a time-dependent dataset, trained on all2all pairs, in one run.

python benchmarks/scot_time.py --threads 1         # 100 trajectories (6,600 pairs), 8 epochs
python benchmarks/scot_time.py --epochs 2 --n-train 40 --name scot_time_quick   # smoke

Data: ``pde_data/ns2d_small.toml`` (2-D incompressible Navier-Stokes in vorticity form, nu = 1e-3, the
FNO forcing; 64^2 solves stored at 32^2; 11 snapshots over t in [0, 10]; generated on first use).
Training samples are Poseidon's all2all pairs (every (t_i, t_j), i <= j, of a trajectory: 66 per
trajectory; the first 100 training trajectories by default, a CPU budget) with lead time
``(t_j - t_i) / 10``; evaluation starts from snapshot 0 of each test trajectory and predicts lead steps 1, 2, 5 and 10 **directly** (one call with the lead time) and by
**rollout** (repeated calls of lead time 0.1).

Rows (similar budgets, 1.2-1.3 M real parameters):

- ``scot``: :class:`neuralops.models.ScOT` at its native 32^2 (patch 2, 3 levels, width 32, windows
  of 8, time-conditioned norms);
- ``fno``: our FNO (neuraloperator-2 block style, width 32, 16 x 16 modes) with the lead time as an
  extra constant input channel;
- ``mgno``: MgNO (the ``ns`` preset at 32^2: 4 levels, width 32, circular padding) with the lead time
  as an input channel.

Same data, Gaussian normalization, training loss (Poseidon's relative L1), AdamW (lr 1e-3, wd 1e-6),
OneCycle per epoch, batch 16, epochs and seed, all through :class:`neuralops.train.Trainer`.
Reported: relative L2 and Poseidon's median relative L1 (%) per lead step and mode, real parameters,
s/epoch, device.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
from _common import Head, save, scot_cpu_config, table
from torch import nn

from neuralops.data import PDEDataset
from neuralops.models import FNO, MgNO, ScOT
from neuralops.models.fno import FNOConfig
from neuralops.models.mgno import MGNO_PRESETS, MgNOConfig
from neuralops.pde.generate import generate
from neuralops.train import TrainConfig, Trainer
from neuralops.train.rollout import lead_time_errors

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "pde_data" / "ns2d_small.toml"
T_NORM = 10.0  # snapshot times 0..10: lead times in [0, 1]
LEADS = (1, 2, 5, 10)


class TimeChannel(nn.Module):
    """Feed the lead time to a model without time conditioning as a constant extra input channel."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:
        if t is None:
            t = torch.ones(x.shape[0], dtype=x.dtype, device=x.device)
        tt = (
            t.to(x.dtype).reshape(-1, 1, *([1] * (x.dim() - 2))).expand(x.shape[0], 1, *x.shape[2:])
        )
        return self.model(torch.cat([x, tt], dim=1))

    def num_parameters(self) -> int:
        return self.model.num_parameters()


def make_models(size: int) -> dict[str, nn.Module]:
    scot = ScOT(scot_cpu_config(in_channels=1, out_channels=1, image_size=size))
    fno = FNO(FNOConfig.preset("neuralop2", in_channels=2, width=32, modes=(8, 9)))
    mg = {**MGNO_PRESETS["ns"], "in_channels": 2, "grid_shape": (size, size), "levels": 4}
    mg.update(smoothing=((1, 0), (1, 0), (2, 0), (2, 0)), global_residual=False)
    mgno = MgNO(MgNOConfig(**mg))
    return {"scot": scot, "fno": TimeChannel(fno), "mgno": TimeChannel(mgno)}


def run(
    path: Path,
    n_train: int,
    n_test: int,
    epochs: int,
    seed: int,
    only: tuple[str, ...] | None,
    *,
    field: str | None = None,
    t_norm: float = T_NORM,
    leads: tuple[int, ...] = LEADS,
) -> list[dict]:
    """Train every model on the first ``n_train`` trajectories' all2all pairs; lead-time errors."""
    fields = {"inputs": field, "targets": field} if field else {}
    train_full = PDEDataset(
        path, "train", time="all2all", time_options={"t_norm": t_norm}, **fields
    )
    pairs_per_traj = train_full.time.count(train_full.n_time)
    norm = train_full.normalizer("gaussian")
    train = Head(train_full, n_train * pairs_per_traj)  # pairs are ordered trajectory by trajectory
    test = PDEDataset(path, "test", time="trajectory", **fields)
    test = [test[i] for i in range(min(n_test, len(test)))]
    size = int(test[0]["input"].shape[-1])
    rows = []
    for name, model in make_models(size).items():
        if only and name not in only:
            continue
        torch.manual_seed(seed)
        model = make_models(size)[name]  # same seed for every model's initialisation
        with tempfile.TemporaryDirectory() as tmp:
            cfg = TrainConfig(
                max_epochs=epochs,
                batch_size=16,
                optimizer="adamw",
                lr=1e-3,
                weight_decay=1e-6,
                scheduler="onecycle",
                scheduler_unit="epoch",
                grad_clip_norm=5.0,
                seed=seed,
                log_every=10_000,
                out_dir=tmp,
            )
            trainer = Trainer(
                model, cfg, train_data=train, normalizer=norm, loss="rel_l1", metrics=("rel_l2",)
            )
            t0 = time.perf_counter()
            trainer.fit(resume=None)
            seconds = time.perf_counter() - t0
        errs = lead_time_errors(model, test, leads, t_norm=t_norm, normalizer=norm)
        base = {
            "model": name,
            "params_real": model.num_parameters(),
            "s_per_epoch": seconds / epochs,
            "train_pairs": len(train),
        }
        for e in errs:
            rows.append({**base, **e})
        summary = "  ".join(f"{e['mode'][0]}{e['lead_steps']} {e['rel_l2']:.3f}" for e in errs)
        print(
            f"  {name:5s} {base['params_real']:>9,d} params  {base['s_per_epoch']:.0f} s/epoch  {summary}",
            flush=True,
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--n-train", type=int, default=100, help="training trajectories (66 pairs each)")
    p.add_argument("--n-test", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--models", default=None, help="comma-separated subset of scot,fno,mgno")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--name", default="scot_time")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    report = generate(RECIPE, progress=False)
    only = tuple(args.models.split(",")) if args.models else None
    rows = run(report.path, args.n_train, args.n_test, args.epochs, args.seed, only)
    cols = [
        "model",
        "params_real",
        "mode",
        "lead_steps",
        "rel_l2",
        "rel_l1_median_pct",
        "s_per_epoch",
    ]
    print(table(rows, cols))
    path = save(
        args.name,
        rows,
        epochs=args.epochs,
        n_train_trajectories=args.n_train,
        n_test=args.n_test,
        data="pde_data/ns2d_small.toml: NS vorticity nu 1e-3, 32^2, 11 snapshots over [0, 10]",
        training="all2all pairs (t_norm 10), Poseidon relative L1 loss on Gaussian-normalized targets, "
        "AdamW lr 1e-3 wd 1e-6, OneCycle per epoch, batch 16, clip 5",
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
