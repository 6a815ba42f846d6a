"""One rank of the DDP tests (``tests/test_ddp.py``), launched by ``torchrun --nproc_per_node 2``.

Usage: ``python -m torch.distributed.run --standalone --nproc_per_node 2 tests/_ddp_worker.py OUT``.
Each rank writes ``OUT/rank<r>.safetensors`` (parameters after the uninterrupted run ``a``, after the
killed-and-resumed run ``b``, and the all-reduced evaluation metrics) so the pytest process can compare.
"""

from __future__ import annotations

import os
import signal
import sys

import torch
from torch import nn

from neuralops.train import TrainConfig, Trainer

N_TRAIN, N_VAL, SIZE = 40, 13, 16


class Smooth(nn.Module):
    """A small deterministic (no dropout) float64 model: equal data-parallel and serial steps."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(1, 4, 3, padding=1), nn.Tanh(), nn.Conv1d(4, 1, 3, padding=1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def make_model() -> nn.Module:
    torch.manual_seed(0)
    return Smooth().double()


def make_data(n: int, seed: int) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        x = torch.randn(1, SIZE, generator=g, dtype=torch.float64)
        out.append({"input": x, "target": torch.roll(x, 1, dims=-1) + 0.5})
    return out


FAMILIES = {"p": 1, "q": 2}  # multi-family run: input channels per family


def make_multi() -> nn.Module:
    """A float64 multi-operator model (tiny FNO backbone) with families ``p`` and ``q``."""
    from neuralops.models import build_model
    from neuralops.models.multiop import FamilySpec, MultiOperatorModel

    torch.manual_seed(0)
    bb = build_model(
        "fno",
        in_channels=4,
        out_channels=4,
        width=4,
        modes=(2, 2),
        n_layers=1,
        lifting_channels=0,
        projection_channels=8,
    )
    specs = {f: FamilySpec(c, 1) for f, c in FAMILIES.items()}
    return MultiOperatorModel.from_backbone(bb, specs).double()


def make_family_data(n: int, seed: int) -> dict[str, list[dict[str, torch.Tensor]]]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for f, c in FAMILIES.items():
        items = []
        for _ in range(n):
            x = torch.randn(c, 8, 8, generator=g, dtype=torch.float64)
            items.append({"input": x, "target": torch.roll(x.sum(0, keepdim=True), 1, dims=-1) + 1})
        out[f] = items
    return out


def family_eval_vector(ev: dict) -> torch.Tensor:
    keys = ["loss"] + [
        f"{f}/{k}" for f in FAMILIES for k in ("loss", "rel_l2", "rel_l1_median_pct")
    ]
    return torch.tensor([ev[k] for k in keys], dtype=torch.float64)


def make_config(out_dir: str, batch_size: int) -> TrainConfig:
    return TrainConfig(
        max_steps=5,
        batch_size=batch_size,
        optimizer="sgd",
        lr=0.1,
        seed=3,
        deterministic=True,
        log_every=1,
        keep_last=10,
        out_dir=out_dir,
    )


class KillAt:
    """Sends SIGTERM to this process after ``step`` (rank 0 only: the stop must still be collective)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, trainer: Trainer, logs: dict) -> None:
        if trainer.global_step == self.step and trainer.dist.rank == 0:
            os.kill(os.getpid(), signal.SIGTERM)


def params(model: nn.Module, prefix: str) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v.detach().clone().contiguous() for k, v in model.state_dict().items()}


def main(out: str) -> None:
    from safetensors.torch import save_file

    rank = int(os.environ["RANK"])
    train, val = make_data(N_TRAIN, 1), make_data(N_VAL, 2)
    tensors: dict[str, torch.Tensor] = {}

    a = Trainer(
        make_model(), make_config(f"{out}/a", 4), train_data=train, metrics=("rel_l2", "rel_h1")
    )
    a.fit(resume=None)
    tensors.update(params(a.model, "a"))
    ev = a.evaluate(val)
    tensors["eval"] = torch.tensor([ev["loss"], ev["rel_l2"], ev["rel_h1"]], dtype=torch.float64)

    b = Trainer(make_model(), make_config(f"{out}/b", 4), train_data=train, callbacks=[KillAt(2)])
    try:
        b.fit(resume=None)
    except SystemExit as exc:  # rank 0 received the signal: exit code 130 after checkpointing
        tensors["b_exit"] = torch.tensor([int(exc.code)])
    tensors["b_stopped_at"] = torch.tensor([b.global_step])
    resumed = Trainer(make_model(), make_config(f"{out}/b", 4), train_data=train)
    resumed.fit(resume="auto")
    tensors.update(params(resumed.model, "b"))

    # several families: each rank trains on batches of one family, DDP averages the gradients
    c = Trainer(make_multi(), make_config(f"{out}/c", 4), train_data=make_family_data(12, 3))
    c.fit(resume=None)
    tensors.update(params(c.model, "c"))
    tensors["c_eval"] = family_eval_vector(c.evaluate(make_family_data(7, 4)))
    save_file(tensors, f"{out}/rank{rank}.safetensors")
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
