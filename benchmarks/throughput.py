"""Forward and forward+backward throughput (samples/s) of MgNO, FNO, scOT-T and the mesh transformer.

python benchmarks/throughput.py                 # the device torch finds (CUDA if present), fp32 (+ bf16 on GPU)
python benchmarks/throughput.py --quick         # smaller batches and fewer runs (a CPU smoke)

Fixed shapes (models.md §7.2): MgNO ``darcy_rough`` and FNO ``neuralop2`` on (B, 1, 64, 64); scOT-T on
(B, 4, 128, 128) at its native grid with a lead time per sample; the mesh transformer (the
``transolver_thermal`` recipe's size) on B graphs of 4,000 random points. Each number is the median
over 20 timed runs after 5 warm-ups (``--quick``: 5 after 2), with ``torch.cuda.synchronize`` around
each run on a GPU. bf16 rows use ``torch.autocast`` and run on a GPU only (CPU bf16 autocast is
slower than fp32 on most CPUs and is not what anyone would deploy). The device is recorded in the JSON.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
from _common import save, table

from neuralops.models import FNO, MgNO, ScOT, ScOTConfig
from neuralops.models.fno import FNOConfig
from neuralops.models.mgno import MgNOConfig


def _mesh(batch: int, nodes: int, device: torch.device):
    from torch_geometric.data import Batch, Data

    from neuralops.models import MeshTransformer, MeshTransformerConfig

    cfg = MeshTransformerConfig(
        in_channels=1, out_channels=1, hidden=64, layers=4, heads=4, slices=32, mlp_ratio=2
    )
    gen = torch.Generator().manual_seed(0)
    graphs = [
        Data(x=torch.randn(nodes, 1, generator=gen), pos=torch.rand(nodes, 2, generator=gen))
        for _ in range(batch)
    ]
    data = Batch.from_data_list(graphs).to(device)
    return MeshTransformer(cfg), (data,), data.x.shape[0]


def cases(batch: dict[str, int], device: torch.device) -> dict[str, tuple]:
    b = batch
    x64 = torch.randn(b["grid"], 1, 64, 64, device=device)
    x128 = torch.randn(b["scot"], 4, 128, 128, device=device)
    t = torch.rand(b["scot"], device=device)
    mesh, mesh_args, _ = _mesh(b["mesh"], 4000, device)
    return {
        "mgno darcy_rough 64^2": (MgNO(MgNOConfig.preset("darcy_rough")), (x64,), b["grid"]),
        "fno neuralop2 64^2": (FNO(FNOConfig.preset("neuralop2")), (x64,), b["grid"]),
        "scot-T 128^2": (ScOT(ScOTConfig.preset("T")), (x128, t), b["scot"]),
        "mesh transformer 4k nodes": (mesh, mesh_args, b["mesh"]),
    }


def _time(fn, device: torch.device, runs: int, warmup: int) -> float:
    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(model, args, n: int, device: torch.device, dtype, runs: int, warmup: int) -> dict:
    model = model.to(device)
    autocast = torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)

    def forward() -> None:
        with torch.no_grad(), autocast:
            model(*args)

    def train_step() -> None:
        model.zero_grad(set_to_none=True)
        with autocast:
            out = model(*args)
        out.float().square().mean().backward()

    fwd = _time(forward, device, runs, warmup)
    step = _time(train_step, device, runs, warmup)
    return {
        "fwd_samples_s": n / fwd,
        "fwd_bwd_samples_s": n / step,
        "fwd_ms": 1e3 * fwd,
        "fwd_bwd_ms": 1e3 * step,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    p.add_argument("--name", default=None)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    gpu = device.type == "cuda"
    runs, warmup = (5, 2) if args.quick else (20, 5)
    batch = {"grid": 32, "scot": 8, "mesh": 4} if gpu else {"grid": 8, "scot": 2, "mesh": 2}
    if args.quick:
        batch = {k: max(1, v // 2) for k, v in batch.items()}
    precisions = [("fp32", None)] + ([("bf16", torch.bfloat16)] if gpu else [])
    rows = []
    torch.manual_seed(0)
    for name, (model, inputs, n) in cases(batch, device).items():
        for prec, dtype in precisions:
            r = measure(model, inputs, n, device, dtype, runs, warmup)
            row = {
                "model": name,
                "precision": prec,
                "batch": n,
                "params": model.num_parameters(),
                **r,
            }
            rows.append(row)
            print(
                f"  {name:28s} {prec}  fwd {r['fwd_samples_s']:8.1f}/s  fwd+bwd {r['fwd_bwd_samples_s']:8.1f}/s",
                flush=True,
            )
    print(
        table(rows, ["model", "precision", "batch", "params", "fwd_samples_s", "fwd_bwd_samples_s"])
    )
    dev = torch.cuda.get_device_name(device) if gpu else "cpu"
    path = save(
        args.name or (f"throughput_{device.type}" + ("_quick" if args.quick else "")),
        rows,
        device=dev,
        threads=torch.get_num_threads(),
        runs=runs,
        warmup=warmup,
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
