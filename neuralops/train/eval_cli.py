"""``neuralops eval MODEL_DIR DATASET [--split test] [--plot out.png]``.

Loads a model saved by ``neuralops train`` (``load_pretrained``) with the ``normalizer.json`` beside it,
and prints the relative L2 and H1 errors (physical units, mean over samples) on one split of ``DATASET``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["evaluate", "main"]


def _load_normalizer(folder: Path) -> Any:
    from neuralops.data.normalizer import Normalizer

    if (folder / "normalizer.json").is_file():
        return Normalizer.load(folder)
    payload = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    if payload.get("normalizer"):
        return Normalizer.from_dict(payload["normalizer"])
    return None


@torch.no_grad()
def evaluate(
    model_dir: str | Path,
    dataset: str | Path,
    *,
    split: str = "test",
    batch_size: int = 16,
    plot: str | Path | None = None,
) -> dict[str, Any]:
    """``{"rel_l2", "rel_h1", "n"}`` of the model in ``model_dir`` on ``split`` of ``dataset``."""
    from neuralops.data import PDEDataset
    from neuralops.models import load_pretrained
    from neuralops.train.metrics import rel_h1, rel_l2

    folder = Path(model_dir)
    model = load_pretrained(folder).eval()
    norm = _load_normalizer(folder)
    meta = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("metadata", {})
    d = meta.get("data", {})
    sub = d.get("subsample", 1)
    ds = PDEDataset(
        dataset,
        split,
        inputs=d.get("inputs"),
        targets=d.get("targets"),
        subsample=tuple(sub) if isinstance(sub, list) else sub,
    )
    if len(ds) == 0:
        raise ValueError(f"{dataset}: split {split!r} is empty")
    values: dict[str, list[torch.Tensor]] = {"rel_l2": [], "rel_h1": []}
    first = None
    for batch in torch.utils.data.DataLoader(ds, batch_size=batch_size):
        x, y = batch["input"], batch["target"]
        xin = norm.encode(x, key="input") if norm is not None else x
        pred = model(xin, batch["time"]) if "time" in batch else model(xin)
        pred = pred.to(y.dtype)
        if norm is not None:
            pred = norm.decode(pred, key="target")
        values["rel_l2"].append(rel_l2(pred, y, reduction="none").double())
        values["rel_h1"].append(rel_h1(pred, y, reduction="none").double())
        if first is None:
            first = (x[0, 0], y[0, 0], pred[0, 0])
    out: dict[str, Any] = {k: float(torch.cat(v).mean()) for k, v in values.items()}
    out["n"] = len(ds)
    if plot is not None and first is not None:
        out["plot"] = str(_plot(Path(plot), *first, rel=out["rel_l2"]))
    return out


def _plot(path: Path, a: torch.Tensor, u: torch.Tensor, pred: torch.Tensor, rel: float) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("input", a), ("truth", u), ("prediction", pred), ("|error|", (pred - u).abs())]
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.4), constrained_layout=True)
    lo, hi = float(u.min()), float(u.max())
    for ax, (title, img) in zip(axes, panels, strict=True):
        kw = {"vmin": lo, "vmax": hi} if title in ("truth", "prediction") else {}
        im = ax.imshow(np.asarray(img).T, origin="lower", **kw)
        ax.set_title(title)
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.suptitle(f"first sample; mean relative L2 error over the split {rel:.3%}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="neuralops eval", description="Evaluate a trained model.")
    p.add_argument("model_dir", help="a folder written by save_pretrained (e.g. runs/x/final)")
    p.add_argument("dataset", help="an .h5 dataset")
    p.add_argument("--split", default="test")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--plot", help="write a PNG of input/truth/prediction/error of the first sample")
    a = p.parse_args(argv)
    try:
        m = evaluate(a.model_dir, a.dataset, split=a.split, batch_size=a.batch_size, plot=a.plot)
    except (FileNotFoundError, ValueError) as exc:
        print(f"neuralops eval: error: {exc}", file=sys.stderr)
        return 2
    print(f"rel_l2 {m['rel_l2']:.8g}")
    print(f"rel_h1 {m['rel_h1']:.8g}")
    print(f"samples {m['n']} ({a.split})")
    if "plot" in m:
        print(f"figure: {m['plot']}")
    return 0
