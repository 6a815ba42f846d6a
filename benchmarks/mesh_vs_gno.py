"""The mesh transformer against a graph neural operator on the irregular-domain heat data, in one run.

python benchmarks/mesh_vs_gno.py                          # 100 train / 100 test, 8 epochs, 1 thread
python benchmarks/mesh_vs_gno.py --models mesh,gno --n-train 1000 --epochs 50   # all rows, full budget
python benchmarks/mesh_vs_gno.py --quick                  # 16 train / 8 test, 1 epoch (smoke)

Data: ``pde_data/thermal_slot.toml`` (steady heat on a slotted square, P1 FEM, a new mesh of about
3,800 nodes per sample; inputs dirichlet and flux, which are zero except on their boundary edges, and
kappa; target T), generated on first use (about 3 minutes), read through the graph view with the
recipe's k = 8 nearest-neighbour edges (``j -> i``). Rows (exact real parameter counts are printed
and stored; all within 2 % of the mesh transformer's):

- ``train mean``: the constant train-split mean (a zero output in normalized units), for scale;
- ``mesh_transformer``: the ``train/transolver_thermal.toml`` model (hidden 64, 4 layers, 4 heads,
  32 slices, MLP ratio 2): 131,793 parameters. It ignores the edges;
- ``gno k8``: :class:`neuralops.models.GNO`, width 32, 4 iterations each with its own edge kernel
  (hidden 28): 129,857 parameters, on the data's k = 8 graph. Four iterations then reach about four
  mesh spacings (0.08), so most nodes never see the boundary data the solution depends on;
- ``gno ball``: the same model on a Nystrom-style graph as in Li et al. (arXiv 2003.03485): each
  node averages over 16 nodes drawn at random (with replacement, fixed per mesh) among the nodes
  within distance 0.2, a Monte Carlo estimate of the kernel integral over the ball (about 500 nodes);
  four iterations reach 0.8;
- ``gno shared`` (only with ``--models gno`` or ``--models "gno shared"``): the paper's weight sharing,
  one kernel layer applied 4 times (hidden 112, 133,025 parameters) on the k = 8 graph. At equal
  parameters it does four times the per-layer model's work: 149 s/epoch here at the default size,
  which is why it is not in the default run.

Everything else is the training recipe's, for every row: Gaussian normalization with the full train
split's statistics, relative L2 loss, AdamW (lr 1e-3, wd 1e-5), OneCycle per step, gradient clipping
at 1.0, batch 4, the same epochs and seed, through ``neuralops.train.Trainer``. Reported: test
relative L2 in physical units (mean over test meshes), the last logged training loss (relative L2 of
the normalized, i.e. centred, field), real parameter count, s/epoch, peak RSS, device.

Budget. On the 2-core development machine, shared with other jobs, with one thread, one epoch over
100 meshes takes about 17 s (mesh transformer), 43 s (GNO k8) and 60 s (GNO ball). The default
(100 training meshes, the first of the train split; 8 epochs, i.e. 200 optimizer steps; the first
100 test meshes) takes about 18 minutes. Every model is far from converged at this budget (the
recipe trains 50 epochs on 1,000 meshes); the table compares equal, small budgets. Samples are read
once and kept in memory, so s/epoch is compute only.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from _common import peak_rss_mb, save, table

from neuralops.models import GNO, GNOConfig
from neuralops.train import Trainer
from neuralops.train.metrics import rel_l2
from neuralops.train.recipe import build_data, build_model_for, load_train_recipe

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "train" / "transolver_thermal.toml"
DEFAULT_MODELS = ("mesh_transformer", "gno k8", "gno ball")
BALL_RADIUS, BALL_SAMPLES = 0.2, 16


def ball_graph(pos: np.ndarray, radius: float, m: int, rng: np.random.Generator) -> torch.Tensor:
    """``edge_index`` (2, n m), ``j -> i``: for each node ``i``, ``m`` nodes ``j`` drawn uniformly with
    replacement among the mesh nodes within ``radius`` of it (``i`` included: it is in the ball), so
    a mean over them is a Monte Carlo estimate of the mean over the ball."""
    from scipy.spatial import cKDTree

    n = len(pos)
    balls = cKDTree(pos).query_ball_point(pos, radius, return_sorted=False)
    sizes = np.fromiter((len(b) for b in balls), dtype=np.int64, count=n)
    flat = np.concatenate([np.asarray(b, dtype=np.int64) for b in balls])
    pick = (sizes.cumsum() - sizes)[:, None] + (rng.random((n, m)) * sizes[:, None]).astype(
        np.int64
    )
    return torch.from_numpy(np.stack([flat[pick].ravel(), np.repeat(np.arange(n), m)]))


def _with_ball_edges(graphs: list, seed: int) -> list:
    out = []
    for i, g in enumerate(graphs):
        g = g.clone()
        rng = np.random.default_rng([seed, i])
        g.edge_index = ball_graph(g.pos.double().numpy(), BALL_RADIUS, BALL_SAMPLES, rng)
        out.append(g)
    return out


def _mean_baseline(test: list, normalizer) -> float:
    """Test relative L2 of the constant train mean (zero in normalized units), mean over meshes."""
    errs = []
    for g in test:
        pred = normalizer.decode(torch.zeros_like(g.y), key="target", channels_last=True)
        errs.append(float(rel_l2(pred.T.unsqueeze(0), g.y.T.unsqueeze(0))))
    return sum(errs) / len(errs)


def _models(recipe, train, in_channels: int, out_channels: int) -> dict[str, tuple]:
    """Row name -> (model factory, edges: "k8" or "ball")."""

    def gno(**kw) -> Callable[[], torch.nn.Module]:
        return lambda: GNO(
            GNOConfig(in_channels=in_channels, out_channels=out_channels, width=32, depth=4, **kw)
        )

    return {
        "mesh_transformer": (lambda: build_model_for(recipe, train), "k8"),
        "gno k8": (gno(kernel_hidden=28, shared=False), "k8"),
        "gno ball": (gno(kernel_hidden=28, shared=False), "ball"),
        "gno shared": (gno(kernel_hidden=112, shared=True), "k8"),
    }


def run(
    n_train: int, n_test: int, epochs: int, seed: int, models: tuple[str, ...] = DEFAULT_MODELS
) -> tuple[list[dict], dict]:
    """Train and test every selected row; returns the rows and facts about the data."""
    recipe = load_train_recipe(RECIPE)
    data = build_data(recipe)  # generates pde_data/thermal_slot.h5 when it is missing
    train_split, test_split = data["train"], data["test"]
    t0 = time.perf_counter()
    train = [train_split[i] for i in range(min(n_train, len(train_split)))]
    test = [test_split[i] for i in range(min(n_test, len(test_split)))]
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ball = {"train": _with_ball_edges(train, seed), "test": _with_ball_edges(test, seed + 1)}
    ball_s = time.perf_counter() - t0
    ball_deg = [g.num_edges / g.num_nodes for g in ball["train"]]
    nodes = [g.num_nodes for g in train + test]
    info = {
        "dataset": str(data["path"]),
        "n_train": len(train),
        "n_test": len(test),
        "nodes_per_mesh": [min(nodes), round(sum(nodes) / len(nodes)), max(nodes)],
        "edges_per_node": int(train[0].num_edges / train[0].num_nodes),
        "inputs": list(train_split.input_channels),
        "targets": list(train_split.target_channels),
        "load_s": load_s,
        "ball_graph": {
            "radius": BALL_RADIUS,
            "samples": BALL_SAMPLES,
            "mean_in_degree": sum(ball_deg) / len(ball_deg),
            "build_s": ball_s,
        },
    }
    n_in, n_out = len(train_split.input_channels), len(train_split.target_channels)
    mean_err = _mean_baseline(test, data["normalizer"])
    rows = [{"model": "train mean", "params_real": 0, "test_rel_l2": mean_err, "device": "-"}]
    print(f"  {'train mean':18s} {0:>8,d} params  rel L2 {mean_err:.4f}", flush=True)
    for name, (make, edges) in _models(recipe, train_split, n_in, n_out).items():
        if not any(name.startswith(m) for m in models):
            continue
        train_g, test_g = (ball["train"], ball["test"]) if edges == "ball" else (train, test)
        torch.manual_seed(seed)
        model = make()
        with tempfile.TemporaryDirectory() as tmp:
            cfg = dataclasses.replace(
                recipe.config, max_epochs=epochs, seed=seed, out_dir=tmp, log_every=10_000
            )
            trainer = Trainer(
                model,
                cfg,
                train_data=train_g,
                normalizer=data["normalizer"],
                loss=recipe.loss,
                metrics=recipe.metrics,
            )
            t1 = time.perf_counter()
            result = trainer.fit(resume=None)
            seconds = time.perf_counter() - t1
            t2 = time.perf_counter()
            ev = trainer.evaluate(test_g)
            eval_s = time.perf_counter() - t2
        row = {
            "model": name,
            "edges": edges,
            "params_real": model.num_parameters(),
            "config": model.config.to_dict(),
            "test_rel_l2": ev["rel_l2"],
            "train_loss_last": float(result.get("train/loss", float("nan"))),
            "s_per_epoch": seconds / epochs,
            "test_eval_s": eval_s,
            "peak_rss_mb": peak_rss_mb(),
            "device": str(trainer.device),
        }
        rows.append(row)
        print(
            f"  {name:18s} {row['params_real']:>8,d} params  rel L2 {row['test_rel_l2']:.4f}  "
            f"{row['s_per_epoch']:.1f} s/epoch",
            flush=True,
        )
    return rows, info


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="16 train / 8 test meshes, 1 epoch")
    p.add_argument("--n-train", type=int, default=None, help="default 100 (quick: 16)")
    p.add_argument("--n-test", type=int, default=None, help="default 100 (quick: 8)")
    p.add_argument("--epochs", type=int, default=None, help="default 8 (quick: 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument(
        "--models",
        default=",".join(DEFAULT_MODELS),
        help="comma-separated name prefixes, e.g. mesh,gno for every row (default: %(default)s)",
    )
    p.add_argument("--name", default=None, help="results file name (default mesh_vs_gno)")
    args = p.parse_args(argv)
    n_train = args.n_train or (16 if args.quick else 100)
    n_test = args.n_test or (8 if args.quick else 100)
    epochs = args.epochs or (1 if args.quick else 8)
    torch.set_num_threads(args.threads)
    os.chdir(ROOT)  # the data recipe's run.out (pde_data/thermal_slot.h5) is relative to the root
    models = tuple(args.models.split(","))
    t0 = time.perf_counter()
    rows, info = run(n_train, n_test, epochs, args.seed, models)
    cols = ["model", "edges", "params_real", "test_rel_l2", "train_loss_last", "s_per_epoch"]
    cols += ["test_eval_s", "peak_rss_mb", "device"]
    print(table(rows, cols))
    path = save(
        args.name or ("mesh_vs_gno_quick" if args.quick else "mesh_vs_gno"),
        rows,
        epochs=epochs,
        seed=args.seed,
        threads=args.threads,
        total_s=time.perf_counter() - t0,
        **info,
        training=f"{RECIPE.relative_to(ROOT)} settings: AdamW lr 1e-3 wd 1e-5, OneCycle per step, "
        "grad clip 1.0, batch 4, relative L2 loss on Gaussian-normalized targets; test metric in "
        "physical units, mean over meshes",
        note="peak_rss_mb is the process peak so far (rows run in order in one process)",
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
