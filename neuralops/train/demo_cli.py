"""``neuralops demo quickstart``: generate a small Darcy set, train MgNO, evaluate, plot.

Runs on CPU in a few minutes. Every step uses the public API a user script would use:
:func:`neuralops.pde.generate.generate`, :class:`neuralops.data.PDEDataset` and its normalizer,
:class:`neuralops.models.MgNO` and :class:`neuralops.train.Trainer` (checkpoints in ``<out>/run``;
an interrupted demo resumes where it stopped).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch

__all__ = ["main", "quickstart", "relative_l2"]

log = logging.getLogger(__name__)

DEMO_RECIPE = Path(__file__).resolve().parents[2] / "pde_data" / "darcy_demo.toml"


def relative_l2(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Per-sample ``||pred - true||_2 / ||true||_2`` over all non-batch axes; shape (batch,)."""
    dims = tuple(range(1, pred.ndim))
    return torch.linalg.vector_norm(pred - true, dim=dims) / torch.linalg.vector_norm(
        true, dim=dims
    )


def quickstart(
    *,
    recipe: str | Path = DEMO_RECIPE,
    data: str | Path | None = None,
    out: str | Path = "demo_out",
    epochs: int = 30,
    batch_size: int = 16,
    lr: float = 3e-3,
    resume: bool = True,
    workers: int | None = None,
    seed: int = 0,
    plot: bool = True,
) -> dict:
    """Run the quickstart; returns metrics (also written to ``<out>/metrics.json``)."""
    from neuralops.data import PDEDataset
    from neuralops.models import MgNO, MgNOConfig
    from neuralops.pde.generate import generate
    from neuralops.train import TrainConfig, Trainer

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    report = generate(recipe, out=data, workers=workers)
    log.info("%s", report.summary())
    path = report.path

    torch.manual_seed(seed)
    train = PDEDataset(path, "train")
    test = PDEDataset(path, "test")
    norm = train.normalizer("gaussian")  # from the file's train-split statistics
    levels = max(1, min(4, int(np.log2(min(train.input_shape[1:]))) - 1))
    config = MgNOConfig(
        in_channels=len(train.input_channels),
        out_channels=len(train.target_channels),
        width=24,
        n_layers=4,
        levels=levels,
    )
    model = MgNO(config)
    train_config = TrainConfig(
        max_epochs=epochs,
        batch_size=batch_size,
        optimizer="adamw",
        lr=lr,
        weight_decay=1e-4,
        scheduler="onecycle",
        seed=seed,
        log_every=max(1, (len(train) // batch_size) * 5),
        out_dir=str(out / "run"),
    )
    log.info(
        "training MgNO (%s parameters, %d levels) on %d samples for %d epochs",
        f"{model.n_params():,}",
        levels,
        len(train),
        epochs,
    )
    t_train = time.perf_counter()
    trainer = Trainer(model, train_config, train_data=train, normalizer=norm, metrics=("rel_l2",))
    trainer.fit(resume="auto" if resume else None)
    train_seconds = time.perf_counter() - t_train

    model.eval()
    errors, first = [], None
    with torch.no_grad():
        for batch in torch.utils.data.DataLoader(test, batch_size=batch_size):
            pred = norm.decode(model(norm.encode(batch["input"], key="input")), key="target")
            errors.append(relative_l2(pred, batch["target"]))
            if first is None:
                first = (batch["input"][0, 0], batch["target"][0, 0], pred[0, 0])
    err = torch.cat(errors)
    metrics = {
        "dataset": str(path),
        "n_train": len(train),
        "n_test": len(test),
        "resolution": list(train.input_shape[1:]),
        "model": "MgNO",
        "levels": levels,
        "parameters": model.n_params(),
        "epochs": epochs,
        "test_relative_l2": float(err.mean()),
        "test_relative_l2_std": float(err.std()),
        "train_seconds": train_seconds,
        "total_seconds": time.perf_counter() - t0,
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    if plot and first is not None:
        metrics["figure"] = str(_plot(out / "darcy_prediction.png", *first))
    return metrics


def _plot(path: Path, a: torch.Tensor, u: torch.Tensor, pred: torch.Tensor) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("input a(x, y)", a, "viridis"),
        ("truth u", u, "magma"),
        ("prediction", pred, "magma"),
        ("|error|", (pred - u).abs(), "inferno"),
    ]
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.4), constrained_layout=True)
    vmax = float(u.max())
    for ax, (title, img, cmap) in zip(axes, panels, strict=True):
        kw = {"vmin": 0.0, "vmax": vmax} if title in ("truth u", "prediction") else {}
        im = ax.imshow(np.asarray(img).T, origin="lower", extent=(0, 1, 0, 1), cmap=cmap, **kw)
        ax.set_title(title)
        fig.colorbar(im, ax=ax, shrink=0.8)
    rel = float(relative_l2(pred[None], u[None]))
    fig.suptitle(f"Darcy flow, MgNO test sample: relative L2 error {rel:.3%}")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["smoke"]:  # its own options: neuralops demo smoke --help
        from neuralops.pde.smoke_demo import main as smoke

        return smoke(argv[1:])
    p = argparse.ArgumentParser(prog="neuralops demo", description="End-to-end demos.")
    p.add_argument(
        "name", choices=["quickstart", "smoke"], help="which demo (smoke: see demo smoke --help)"
    )
    p.add_argument("--out", default="demo_out", help="folder for metrics.json and the figure")
    p.add_argument("--recipe", default=str(DEMO_RECIPE), help="dataset recipe to generate")
    p.add_argument("--data", help="dataset path (default: the recipe's run.out)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--workers", type=int, help="generation workers")
    p.add_argument(
        "--restart", action="store_true", help="train afresh instead of resuming <out>/run"
    )
    a = p.parse_args(argv)
    m = quickstart(
        recipe=a.recipe,
        data=a.data,
        out=a.out,
        epochs=a.epochs,
        workers=a.workers,
        resume=not a.restart,
    )
    print(
        f"test relative L2 error: {m['test_relative_l2']:.4f} "
        f"(+- {m['test_relative_l2_std']:.4f}) on {m['n_test']} test samples at "
        f"{'x'.join(map(str, m['resolution']))}; MgNO with {m['parameters']:,} parameters, "
        f"{m['epochs']} epochs in {m['train_seconds']:.0f} s"
    )
    if "figure" in m:
        print(f"figure: {m['figure']}")
    return 0
