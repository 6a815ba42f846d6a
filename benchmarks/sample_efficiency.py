"""Sample efficiency of multi-operator pretraining (Poseidon-style), and LoRA against full fine-tuning.

python benchmarks/sample_efficiency.py --threads 2          # the run quoted in the README
python benchmarks/sample_efficiency.py --quick              # a 2-minute smoke

One scOT backbone (the 1.3 M-parameter CPU configuration of ``train/scot_ns_small.toml``, run at each
family's own grid with ``resample="pad"``) inside a :class:`neuralops.models.multiop.MultiOperatorModel`
is **pretrained** on two families with different channel layouts:

- ``ns``: 2-D Navier-Stokes vorticity, nu = 1e-3 (``pde_data/ns2d_small.toml``, 32^2, 1 -> 1 channel);
- ``heat``: transient heat with a random conductivity (``pde_data/heat_small.toml``, 33^2,
  [kappa, u] -> u);

then **fine-tuned** on an unseen family, 2-D Allen-Cahn (``pde_data/allen_cahn_2d_small.toml``, 32^2),
with 16, 64 and 256 training trajectories, against the same model trained **from scratch** on the same
trajectories. All samples are all2all pairs (lead time (t_j - t_i) / t_end); every run takes the
same number of optimizer steps (AdamW, cosine schedule, batch 16, clip 5, Poseidon's relative L1 loss
on Gaussian-normalised targets). Fine-tuning follows Poseidon's recipe: a new input adapter and
output head for the family, and either (a) **full**: everything trains, with learning rates 5e-4
for the new adapter/head and the conditional norms and 1e-4 for the rest of the backbone, or (b)
**lora**: rank-8 LoRA on the backbone's attention and MLP layers plus the new adapter/head and the
conditional norms. From-scratch runs use 1e-3 throughout.

All training goes through the library (``neuralops.train.multiop.pretrain``/``finetune``: batches of
one family, drawn in proportion to the families' sizes). Reported per run: test relative L2 over
all2all pairs, Poseidon's median relative L1 (%) of a direct prediction at the final time from
t = 0, trainable parameters, the memory of their gradients and AdamW moments (12 bytes each), the
peak memory a fine-tuning run adds on top of the loaded model and
data (measured once per mode in a fresh process), seconds. The goal (issue):
the pretrained model reaches the from-scratch model's 256-trajectory error with at most a quarter of
the data (64 trajectories); the efficiency gain EG is read off the table as Poseidon does.
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from _common import peak_rss_mb, save, scot_cpu_config, table

from neuralops.data import PDEDataset
from neuralops.models import ScOT
from neuralops.models.multiop import FamilySpec, MultiOperatorModel, prepare_finetune
from neuralops.pde.generate import generate
from neuralops.train import TrainConfig
from neuralops.train.metrics import rel_l1_median, rel_l2
from neuralops.train.multiop import LRGroups, finetune, optimizer_groups, pretrain

ROOT = Path(__file__).resolve().parents[1]
WIDTH = 32


@dataclass
class Family:
    name: str
    recipe: str
    t_norm: float

    def load(self, split: str, n_traj: int | None = None):
        path = generate(ROOT / self.recipe, progress=False).path
        data = PDEDataset(path, split, time="all2all", time_options={"t_norm": self.t_norm})
        if n_traj is not None:
            per = data.time.count(data.n_time)
            data = torch.utils.data.Subset(data, range(min(len(data), n_traj * per)))
        return data


FAMILIES = {
    "ns": Family("ns", "pde_data/ns2d_small.toml", 10.0),
    "heat": Family("heat", "pde_data/heat_small.toml", 0.05),
    "ac": Family("ac", "pde_data/allen_cahn_2d_small.toml", 2.0),
}


def backbone() -> ScOT:
    return ScOT(scot_cpu_config(in_channels=WIDTH, out_channels=WIDTH, resample="pad"))


def spec_of(data) -> FamilySpec:
    base = data.dataset if isinstance(data, torch.utils.data.Subset) else data
    return FamilySpec(in_channels=len(base.input_channels), out_channels=len(base.target_channels))


def normalizer_of(data):
    base = data.dataset if isinstance(data, torch.utils.data.Subset) else data
    return base.normalizer("gaussian")


def _batch(data, idx, norm):
    items = [data[int(i)] for i in idx]
    x = norm.encode(torch.stack([it["input"] for it in items]), key="input")
    y = torch.stack([it["target"] for it in items])
    t = torch.stack([it["time"] for it in items]).reshape(-1)
    return x, y, t


@torch.no_grad()
def evaluate(model, family: str, test, norm, n_max: int = 480) -> dict:
    """Relative L2 over (up to ``n_max``) all2all test pairs, and the median relative L1 (%) of a direct
    prediction from t = 0 to the final snapshot (Poseidon's metric)."""
    model.eval()
    per = test.time.count(test.n_time)
    pairs = range(0, min(len(test), n_max))
    preds, ys = [], []
    for start in range(0, len(pairs), 32):
        idx = list(pairs[start : start + 32])
        x, y, t = _batch(test, idx, norm)
        preds.append(norm.decode(model(x, t, family=family), key="target"))
        ys.append(y)
    l2 = float(rel_l2(torch.cat(preds), torch.cat(ys)))
    # pair index of (0, K) within each trajectory: pairs are ordered by i then j, so it is K
    k = test.time.steps(test.n_time)
    finals = [traj * per + k for traj in range(len(test) // per)]
    x, y, t = _batch(test, finals, norm)
    final = norm.decode(model(x, t, family=family), key="target")
    return {"test_rel_l2": l2, "final_rel_l1_median_pct": 100 * float(rel_l1_median(final, y))}


def config(steps: int, lr: float, out_dir: str, seed: int) -> TrainConfig:
    """The schedule every run shares: AdamW, cosine, batch 16, clipping at 5, ``steps`` steps."""
    return TrainConfig(
        max_steps=steps,
        batch_size=16,
        lr=lr,
        weight_decay=1e-6,
        scheduler="cosine",
        grad_clip_norm=5.0,
        seed=seed,
        device="cpu",
        out_dir=out_dir,
        log_every=max(steps // 10, 1),
        keep_last=1,
    )


def fine_tune(pretrained, mode: str, train_ac, norm, steps: int, seed: int, out_dir: str):
    """One run on the new family: ``scratch`` (a fresh model), or ``full``/``lora`` fine-tuning of a
    copy of ``pretrained``. Returns the trained model and its number of trainable parameters."""
    spec = spec_of(train_ac)
    torch.manual_seed(seed)
    if mode == "scratch":
        model = MultiOperatorModel.from_backbone(backbone(), {"ac": spec})
        trainable = sum(p.numel() for p in model.parameters())
        pretrain(
            model,
            {"ac": train_ac},
            config(steps, 1e-3, out_dir, seed),
            normalizers={"ac": norm},
            loss="rel_l1",
            resume=None,
        )
        return model, trainable
    model = copy.deepcopy(pretrained)
    lrs = LRGroups(backbone=1e-4, heads=5e-4, norm=5e-4, lora=5e-4)
    prepare_finetune(model, "ac", spec, mode=mode, rank=8, alpha=16)
    trainable = sum(p.numel() for g in optimizer_groups(model, lrs) for p in g["params"])
    finetune(
        model,
        "ac",
        train_ac,
        config(steps, 5e-4, out_dir, seed),
        lrs=lrs,
        normalizer=norm,
        loss="rel_l1",
        resume=None,
    )
    return model, trainable


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def memory_probe(mode: str, steps: int = 4) -> dict:
    """Peak memory a fine-tuning run adds on top of the loaded model and data: run in a fresh
    process (``--probe MODE``), ``steps`` steps on 16 trajectories."""
    torch.set_num_threads(1)
    pre = MultiOperatorModel.from_backbone(
        backbone(), {"ns": FamilySpec(1, 1), "heat": FamilySpec(2, 1)}
    )
    train_ac = FAMILIES["ac"].load("train", 16)
    norm = normalizer_of(train_ac)
    train_ac[0]
    before = _rss_mb()
    with tempfile.TemporaryDirectory() as tmp:
        _, trainable = fine_tune(pre, mode, train_ac, norm, steps, 0, tmp)
    peak = peak_rss_mb()
    return {"mode": mode, "trainable_params": trainable, "extra_peak_rss_mb": peak - before}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pretrain-steps", type=int, default=2000)
    p.add_argument("--finetune-steps", type=int, default=600)
    p.add_argument("--sizes", default="16,64,256")
    p.add_argument("--modes", default="scratch,full,lora")
    p.add_argument("--quick", action="store_true", help="100 / 50 steps, sizes 16,64")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", default=None)
    p.add_argument("--probe", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.probe:
        print(json.dumps(memory_probe(args.probe)))
        return 0
    torch.set_num_threads(args.threads)
    if args.quick:
        args.pretrain_steps, args.finetune_steps, args.sizes = 100, 50, "16,64"
    sizes = [int(s) for s in args.sizes.split(",")]
    modes = args.modes.split(",")

    pre = {f: FAMILIES[f].load("train") for f in ("ns", "heat")}
    pre_norms = {f: normalizer_of(d) for f, d in pre.items()}
    ac_test = FAMILIES["ac"].load("test")
    rows = []

    torch.manual_seed(args.seed)
    pretrained = MultiOperatorModel.from_backbone(
        backbone(), {f: spec_of(d) for f, d in pre.items()}
    )
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        pretrain(
            pretrained,
            pre,
            config(args.pretrain_steps, 1e-3, tmp, args.seed),
            normalizers=pre_norms,
            loss="rel_l1",
            resume=None,
        )
    seconds = time.perf_counter() - t0
    for f, d in pre.items():
        ev = evaluate(pretrained, f, FAMILIES[f].load("test"), pre_norms[f])
        rows.append(
            {
                "run": f"pretrain ({f})",
                "n_traj": len(d) // d.time.count(d.n_time),
                **ev,
                "seconds": seconds,
            }
        )
        print(f"  pretrain {f}: {ev}", flush=True)

    memory = {}
    for mode in modes:  # each in a fresh process, so the peaks do not mask one another
        out = subprocess.run(
            [sys.executable, __file__, "--probe", mode],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        memory[mode] = json.loads(out.strip().splitlines()[-1])
        print(f"  memory {memory[mode]}", flush=True)

    for n in sizes:
        train_ac = FAMILIES["ac"].load("train", n)
        norm = normalizer_of(train_ac)
        for mode in modes:
            t0 = time.perf_counter()
            with tempfile.TemporaryDirectory() as tmp:
                model, trainable = fine_tune(
                    pretrained, mode, train_ac, norm, args.finetune_steps, args.seed + n, tmp
                )
            seconds = time.perf_counter() - t0
            ev = evaluate(model, "ac", ac_test, norm)
            row = {
                "run": mode,
                "n_traj": n,
                "trainable_params": trainable,
                **ev,
                "seconds": seconds,
                # fp32 gradient + AdamW's two moments per trainable parameter
                "grad_adam_state_mb": 12 * trainable / 2**20,
                "extra_peak_rss_mb": memory[mode]["extra_peak_rss_mb"],
            }
            rows.append(row)
            print(
                f"  ac n={n:4d} {mode:8s} rel L2 {ev['test_rel_l2']:.4f}  trainable {trainable:,d}",
                flush=True,
            )
    cols = [
        "run",
        "n_traj",
        "trainable_params",
        "test_rel_l2",
        "final_rel_l1_median_pct",
        "grad_adam_state_mb",
        "extra_peak_rss_mb",
        "seconds",
    ]
    print(table(rows, cols))
    path = save(
        args.name or ("sample_efficiency_quick" if args.quick else "sample_efficiency"),
        rows,
        pretrain_steps=args.pretrain_steps,
        finetune_steps=args.finetune_steps,
        batch=16,
        backbone="scOT 1.3M (patch 2, 3 levels, width 32, windows of 8, resample pad)",
        goal="pretrained error at 64 trajectories <= scratch error at 256 trajectories",
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
