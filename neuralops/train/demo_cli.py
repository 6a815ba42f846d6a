"""``neuralops demo quickstart``: generate a small Darcy set, train an FNO, evaluate, plot.

Runs on CPU in a few minutes. Every step uses the public API a user script would use:
:func:`neuralops.pde.generate.generate`, :class:`neuralops.data.PDEDataset`, its normalizer and
:class:`neuralops.models.FNO`.
"""

from __future__ import annotations

import argparse
import json
import logging
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
    workers: int | None = None,
    seed: int = 0,
    plot: bool = True,
) -> dict:
    """Run the quickstart; returns metrics (also written to ``<out>/metrics.json``)."""
    from neuralops.data import PDEDataset
    from neuralops.models import FNO, FNOConfig
    from neuralops.pde.generate import generate

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
    loader = torch.utils.data.DataLoader(train, batch_size=batch_size, shuffle=True)
    config = FNOConfig(
        in_channels=len(train.input_channels),
        out_channels=len(train.target_channels),
        modes=(min(10, min(train.input_shape[1:]) // 2),) * 2,
        width=24,
        lifting_channels=64,
        projection_channels=64,
    )
    model = FNO(config)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * len(loader))
    log.info(
        "training FNO (%s parameters) on %d samples for %d epochs",
        f"{model.n_params():,}",
        len(train),
        epochs,
    )
    t_train = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        total = 0.0
        for batch in loader:
            pred = norm.decode(model(norm.encode(batch["input"], key="input")), key="target")
            loss = relative_l2(pred, batch["target"]).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(batch["input"])
        if epoch % 5 == 4 or epoch == epochs - 1:
            log.info("epoch %3d  train relative L2 %.4f", epoch + 1, total / len(train))
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
        "model": "FNO",
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
    fig.suptitle(f"Darcy flow, FNO test sample: relative L2 error {rel:.3%}")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="neuralops demo", description="End-to-end demos.")
    p.add_argument("name", choices=["quickstart"], help="which demo")
    p.add_argument("--out", default="demo_out", help="folder for metrics.json and the figure")
    p.add_argument("--recipe", default=str(DEMO_RECIPE), help="dataset recipe to generate")
    p.add_argument("--data", help="dataset path (default: the recipe's run.out)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--workers", type=int, help="generation workers")
    a = p.parse_args(argv)
    m = quickstart(recipe=a.recipe, data=a.data, out=a.out, epochs=a.epochs, workers=a.workers)
    print(
        f"test relative L2 error: {m['test_relative_l2']:.4f} "
        f"(+- {m['test_relative_l2_std']:.4f}) on {m['n_test']} test samples at "
        f"{'x'.join(map(str, m['resolution']))}; FNO with {m['parameters']:,} parameters, "
        f"{m['epochs']} epochs in {m['train_seconds']:.0f} s"
    )
    if "figure" in m:
        print(f"figure: {m['figure']}")
    return 0
