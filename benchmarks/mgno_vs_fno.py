"""MgNO against FNO on the same generated Darcy data, same training budget, in one run.

python benchmarks/mgno_vs_fno.py                       # both datasets, 1000/100/100 at 64^2
python benchmarks/mgno_vs_fno.py --epochs 20 --datasets rough
python benchmarks/mgno_vs_fno.py --quick               # 200 train / 50 test, 2 epochs (smoke)

Data: ``pde_data/bench_darcy_{smooth,rough}_64.toml`` (127^2 solves stored at 64^2, generated on
first use with ``neuralops generate``). Rows:

- ``mgno``: the ``darcy_rough`` preset (572,661 parameters, 6 levels: 64^2 -> 2^2; the paper trains
  it at 256^2);
- ``neuralop.FNO``: ``neuralop.models.FNO(n_modes=(12, 12), hidden_channels=28)`` from the
  neuraloperator package (extra ``bench``; the row is skipped with a note when it is missing);
- ``ours.FNO neuralop2_w28``: our FNO with the same architecture and count (537,013 real scalars,
  within 10 % of MgNO's).

Same Gaussian normalization (train statistics), training loss (relative H1, batch mean), Adam
(lr 5e-4, wd 1e-4), OneCycle per epoch (div 2, final div 100, pct_start 0.2: the MgNO reference
schedule), batch 8, epochs and seed, all through ``neuralops.train.Trainer``. Reported: test relative
L2 and H1 in physical units, real parameter count, s/epoch, peak RSS, device; and the ratio
MgNO error / FNO error (the MgNO paper's claim: at most 0.5).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch
from _common import Head, save, table

from neuralops.data import PDEDataset
from neuralops.models import FNO, MgNO, MgNOConfig
from neuralops.models.fno import FNOConfig
from neuralops.pde.generate import generate
from neuralops.train import TrainConfig, Trainer

ROOT = Path(__file__).resolve().parents[1]
RECIPES = {
    "smooth": ROOT / "pde_data" / "bench_darcy_smooth_64.toml",
    "rough": ROOT / "pde_data" / "bench_darcy_rough_64.toml",
}


def _neuralop_fno():
    try:
        from neuralop.models import FNO as NeuralopFNO
    except Exception as exc:  # ImportError, or a broken optional dependency
        return (
            None,
            f"neuraloperator not importable ({type(exc).__name__}: {exc}); pip install neuraloperator",
        )
    return NeuralopFNO(n_modes=(12, 12), hidden_channels=28, in_channels=1, out_channels=1), ""


def _models() -> dict:
    return {
        "mgno darcy_rough": lambda: (MgNO(MgNOConfig.preset("darcy_rough")), ""),
        "neuralop.FNO n_modes=(12,12) w28": _neuralop_fno,
        "ours FNO neuralop2_w28": lambda: (FNO(FNOConfig.preset("neuralop2_w28")), ""),
    }


def _real_params(model: torch.nn.Module) -> int:
    return sum(p.numel() * (2 if p.is_complex() else 1) for p in model.parameters())


def run_case(
    dataset: str,
    path: Path,
    n_train: int,
    n_test: int,
    epochs: int,
    seed: int,
    models: tuple[str, ...] | None = None,
) -> list[dict]:
    train_full = PDEDataset(path, "train")
    norm = train_full.normalizer("gaussian")
    train = Head(train_full, n_train)
    test = Head(PDEDataset(path, "test"), n_test)
    rows = []
    for name, make in _models().items():
        if models is not None and not any(name.startswith(m) for m in models):
            continue
        torch.manual_seed(seed)
        model, note = make()
        if model is None:
            rows.append({"dataset": dataset, "model": name, "note": note})
            print(f"  {dataset:6s} {name}: skipped ({note})", flush=True)
            continue
        with tempfile.TemporaryDirectory() as tmp:
            cfg = TrainConfig(
                max_epochs=epochs,
                batch_size=8,
                optimizer="adam",
                lr=5e-4,
                weight_decay=1e-4,
                scheduler="onecycle",
                scheduler_unit="epoch",
                seed=seed,
                log_every=10_000,
                out_dir=tmp,
            )
            trainer = Trainer(
                model,
                cfg,
                train_data=train,
                normalizer=norm,
                loss="rel_h1",
                metrics=("rel_l2", "rel_h1"),
            )
            t0 = time.perf_counter()
            trainer.fit(resume=None)
            seconds = time.perf_counter() - t0
            ev = trainer.evaluate(test)
        row = {
            "dataset": dataset,
            "model": name,
            "params_real": _real_params(model),
            "test_rel_l2": ev["rel_l2"],
            "test_rel_h1": ev["rel_h1"],
            "s_per_epoch": seconds / epochs,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "note": note,
        }
        rows.append(row)
        print(
            f"  {dataset:6s} {name:34s} rel L2 {row['test_rel_l2']:.4f}  rel H1 {row['test_rel_h1']:.4f}"
            f"  {row['s_per_epoch']:.1f} s/epoch",
            flush=True,
        )
    mg = next((r for r in rows if r["model"].startswith("mgno")), None)
    for r in rows if mg is not None else ():
        if "test_rel_l2" in r and not r["model"].startswith("mgno"):
            r["mgno_over_this_l2"] = mg["test_rel_l2"] / r["test_rel_l2"]
            r["mgno_over_this_h1"] = mg["test_rel_h1"] / r["test_rel_h1"]
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="200 train / 50 test, 2 epochs")
    p.add_argument("--datasets", default="smooth,rough")
    p.add_argument("--epochs", type=int, default=None, help="default 15 (quick: 2)")
    p.add_argument("--n-train", type=int, default=None, help="default 1000 (quick: 200)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--models",
        default=None,
        help="comma-separated name prefixes, e.g. mgno,ours (default: all)",
    )
    p.add_argument("--name", default=None, help="results file name (default mgno_vs_fno)")
    args = p.parse_args(argv)
    models = tuple(args.models.split(",")) if args.models else None
    epochs = args.epochs or (2 if args.quick else 15)
    n_train = args.n_train or (200 if args.quick else 1000)
    n_test = 50 if args.quick else 100
    torch.set_num_threads(2)
    rows = []
    for ds in args.datasets.split(","):
        report = generate(RECIPES[ds], progress=False)
        rows += run_case(ds, report.path, n_train, n_test, epochs, args.seed, models)
    cols = ["dataset", "model", "params_real", "test_rel_l2", "test_rel_h1", "mgno_over_this_l2"]
    cols += ["mgno_over_this_h1", "s_per_epoch", "peak_rss_mb", "note"]
    print(table(rows, cols))
    path = save(
        args.name or ("mgno_vs_fno_quick" if args.quick else "mgno_vs_fno"),
        rows,
        epochs=epochs,
        n_train=n_train,
        n_test=n_test,
        resolution="64x64 (127^2 solves)",
        training="Adam lr 5e-4 wd 1e-4, OneCycle per epoch (div 2, final div 100, pct 0.2), batch 8, "
        "relative H1 loss on Gaussian-normalized targets; metrics in physical units",
        goal="MgNO error <= 0.5 x FNO error (MgNO paper)",
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
