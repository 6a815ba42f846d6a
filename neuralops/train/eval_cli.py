"""``neuralops eval MODEL [DATASET] [--split test] [--plot out.png] [--verify-card]``.

Loads a model saved by ``neuralops train`` (``load_pretrained``) with the ``normalizer.json`` beside it,
and prints the relative L2 and H1 errors (physical units, mean over samples) on one split of ``DATASET``.

``MODEL`` is a folder or a catalog name (``neuralops download --list``; fetched into the cache). For a
catalog model ``DATASET`` defaults to the output of the entry's dataset recipe (generated when missing),
and ``--verify-card`` checks that the dataset's ``content_sha256`` is the one the catalog records and
that the metrics reproduce the catalog's (relative tolerance ``--rtol``); exit status 1 when not.
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
    from neuralops.data.normalizer import normalizer_of
    from neuralops.models import load_pretrained
    from neuralops.train.metrics import rel_h1, rel_l2

    folder = Path(model_dir)
    model = load_pretrained(folder).eval()
    norm = normalizer_of(folder)
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


def _catalog_dataset(entry: Any) -> Path:
    """The dataset a catalog entry was evaluated on: its recipe's output, generated when missing."""
    from neuralops.pde.generate import generate
    from neuralops.pde.recipe import load_recipe

    recipe = entry.dataset.get("recipe")
    if not recipe:
        raise ValueError(f"catalog entry {entry.name} names no dataset recipe; pass DATASET")
    path = Path(recipe)
    if not path.is_file():  # recipes are relative to the repository (the catalog's parent folder)
        path = entry.base.parent / recipe
    out = Path(load_recipe(path).run.out)
    if not out.is_file():
        print(f"generating {out} from {path} (the dataset of {entry.name})", file=sys.stderr)
        out = Path(generate(path).path)
    return out


def verify_card(
    name: str, dataset: str | Path | None = None, *, rtol: float = 1e-3, **fetch_kw: Any
) -> tuple[bool, list[str]]:
    """Re-evaluate catalog model ``name`` on its recorded dataset; ``(ok, report lines)``.

    Checks the dataset's content digest against the catalog's ``dataset.content_sha256`` and every
    metric number of the catalog entry against a fresh :func:`evaluate` (relative tolerance ``rtol``).
    A DCDM network is checked by :func:`dcdm_metrics` instead (iteration counts may differ by one).
    """
    import h5py

    from neuralops.hub import download, load_catalog

    entry = load_catalog().get(name)
    folder = download(entry.name, entry.version, **fetch_kw)
    if entry.architecture == "dcdm":
        return _compare(dcdm_metrics(folder), entry.metrics, rtol, [], True)
    path = Path(dataset) if dataset is not None else _catalog_dataset(entry)
    lines, ok = [], True
    expected = entry.dataset.get("content_sha256")
    with h5py.File(path, "r") as f:
        found = f.attrs.get("content_sha256")
    if expected and found != expected:
        ok = False
        lines.append(
            f"dataset {path}: content_sha256 {found} differs from the catalog's {expected} "
            "(another recipe version, seed or generator: the numbers are not comparable)"
        )
    m = evaluate(folder, path, split=entry.metrics.get("split", "test"))
    return _compare(m, entry.metrics, rtol, lines, ok)


def _compare(
    found: dict[str, Any], catalog: dict[str, Any], rtol: float, lines: list[str], ok: bool
) -> tuple[bool, list[str]]:
    """Every numeric catalog metric against ``found``; iteration counts may differ by one."""
    for key, want in catalog.items():
        if key == "split" or not isinstance(want, int | float):
            continue
        if key not in found:
            ok = False
            lines.append(f"{key}: in the catalog, but neuralops eval does not compute it")
            continue
        slack = max(rtol * abs(want), 1.0 if "iterations" in key else 0.0)
        good = abs(found[key] - want) <= slack
        ok &= good
        lines.append(
            f"{key} {found[key]:.6g} (catalog {want:.6g}, diff {abs(found[key] - want):.2g}) "
            f"{'ok' if good else 'MISMATCH'}"
        )
    return ok, lines


def dcdm_metrics(folder: str | Path) -> dict[str, float]:
    """Mean DCDM and CG iterations on the held-out scenes of the recipe a DCDM network was trained
    with (recorded in its ``config.json``), at that recipe's ``[eval]`` tolerance."""
    from neuralops.models import load_pretrained
    from neuralops.train.dcdm_train import evaluate_dcdm, heldout_systems

    folder = Path(folder)
    meta = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("metadata", {})
    resolved = meta.get("recipe")
    if not isinstance(resolved, dict) or "eval" not in resolved:
        raise ValueError(f"{folder}: no DCDM recipe in config.json metadata; not a DCDM network?")
    ev = resolved["eval"]
    model = load_pretrained(folder).to(torch.float32).eval()
    rows = evaluate_dcdm(
        model, heldout_systems(resolved), rtol=float(ev["rtol"]), maxiter=int(ev["maxiter"])
    )
    return {
        "dcdm_iterations": float(np.mean([r["dcdm_iterations"] for r in rows])),
        "cg_iterations": float(np.mean([r["cg_iterations"] for r in rows])),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="neuralops eval", description="Evaluate a trained model.")
    p.add_argument(
        "model", help="a folder written by save_pretrained (e.g. runs/x/final) or a catalog name"
    )
    p.add_argument(
        "dataset",
        nargs="?",
        help="an .h5 dataset (default for a catalog model: its card's dataset)",
    )
    p.add_argument("--split", default="test")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--plot", help="write a PNG of input/truth/prediction/error of the first sample")
    p.add_argument(
        "--verify-card",
        action="store_true",
        help="check the catalog model's dataset digest and metrics against the catalog",
    )
    p.add_argument("--rtol", type=float, default=1e-3, help="tolerance of --verify-card")
    p.add_argument("--offline", action="store_true", help="use the cache only (no network)")
    a = p.parse_args(argv)
    from neuralops.hub import CatalogError, DownloadError

    try:
        if a.verify_card:
            ok, lines = verify_card(a.model, a.dataset, rtol=a.rtol, local_files_only=a.offline)
            print("\n".join(lines))
            print(f"card of {a.model}: {'reproduced' if ok else 'NOT reproduced'}")
            return 0 if ok else 1
        folder, dataset = Path(a.model), a.dataset
        if not folder.is_dir():
            from neuralops.hub import download, load_catalog

            entry = load_catalog().get(a.model)
            folder = download(entry.name, entry.version, local_files_only=a.offline)
            if entry.architecture == "dcdm":
                for key, value in dcdm_metrics(folder).items():
                    print(f"{key} {value:.6g}  (mean over the held-out scenes of its recipe)")
                return 0
            dataset = dataset or _catalog_dataset(entry)
        if dataset is None:
            p.error("DATASET is required for a model folder")
        m = evaluate(folder, dataset, split=a.split, batch_size=a.batch_size, plot=a.plot)
    except (FileNotFoundError, ValueError, CatalogError, DownloadError) as exc:
        print(f"neuralops eval: error: {exc}", file=sys.stderr)
        return 2
    print(f"rel_l2 {m['rel_l2']:.8g}")
    print(f"rel_h1 {m['rel_h1']:.8g}")
    print(f"samples {m['n']} ({a.split})")
    if "plot" in m:
        print(f"figure: {m['plot']}")
    return 0
