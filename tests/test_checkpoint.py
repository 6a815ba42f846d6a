"""Atomic safetensors + JSON checkpoints: round trip, sha256 verification, torn writes, pruning."""

import json
import random

import numpy as np
import pytest
import torch

from neuralops.models import FNO, FNOConfig
from neuralops.train.checkpoint import (
    CheckpointError,
    checkpoint_path,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    read_trainer_state,
    save_checkpoint,
)


def _objects(seed=0):
    torch.manual_seed(seed)
    model = FNO(
        FNOConfig(modes=(4, 4), width=8, lifting_channels=8, projection_channels=8, n_layers=2)
    )
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2, total_steps=10)
    model(torch.randn(2, 1, 8, 8)).square().mean().backward()
    opt.step()
    sched.step()
    return model, opt, sched


def test_round_trip_restores_everything(tmp_path):
    model, opt, sched = _objects()
    torch.manual_seed(123)
    np.random.seed(7)  # noqa: NPY002 (the legacy global state is what checkpoints restore)
    random.seed(5)
    path = save_checkpoint(
        tmp_path,
        12,
        model=model,
        optimizer=opt,
        scheduler=sched,
        state={"epoch": 1, "batch_index": 3},
    )
    assert path == checkpoint_path(tmp_path, 12) and path.name == "step_000000012"
    assert {p.name for p in path.iterdir()} == {
        "model.safetensors",
        "config.json",
        "optimizer.safetensors",
        "rng.safetensors",
        "trainer_state.json",
    }
    expect = (torch.rand(3), np.random.rand(3), random.random())  # noqa: NPY002

    model2, opt2, sched2 = _objects(seed=1)
    state = load_checkpoint(tmp_path, model=model2, optimizer=opt2, scheduler=sched2)
    assert state["global_step"] == 12 and state["epoch"] == 1 and state["batch_index"] == 3
    for a, b in zip(model.state_dict().values(), model2.state_dict().values()):
        assert torch.equal(a, b)
    s1, s2 = opt.state_dict(), opt2.state_dict()
    for pid in s1["state"]:
        for k, v in s1["state"][pid].items():
            assert torch.equal(v, s2["state"][pid][k])
    assert s1["param_groups"][0]["lr"] == s2["param_groups"][0]["lr"]
    assert sched2.state_dict() == json.loads(json.dumps(sched.state_dict()))
    got = (torch.rand(3), np.random.rand(3), random.random())  # noqa: NPY002
    assert (
        torch.equal(got[0], expect[0]) and np.array_equal(got[1], expect[1]) and got[2] == expect[2]
    )
    assert state["versions"]["torch"] == torch.__version__


def test_sha256_mismatch_is_a_clear_error(tmp_path):
    model, opt, _ = _objects()
    path = save_checkpoint(tmp_path, 1, model=model, optimizer=opt)
    original = (path / "optimizer.safetensors").read_bytes()
    data = bytearray(original)
    data[-1] ^= 0xFF
    (path / "optimizer.safetensors").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"optimizer.safetensors is corrupt: sha256"):
        load_checkpoint(path, model=model, optimizer=opt)
    (path / "optimizer.safetensors").write_bytes(original)
    (path / "rng.safetensors").unlink()
    with pytest.raises(CheckpointError, match="rng.safetensors is missing"):
        read_trainer_state(path)


def test_torn_tmp_dir_is_ignored_and_cleaned(tmp_path):
    model, opt, _ = _objects()
    good = save_checkpoint(tmp_path, 1, model=model, optimizer=opt)
    torn = tmp_path / "checkpoints" / "step_000000002.tmp-999999999"  # a crashed writer's folder
    torn.mkdir()
    (torn / "model.safetensors").write_bytes(b"partial")
    assert latest_checkpoint(tmp_path) == good
    assert list_checkpoints(tmp_path) == [good]
    load_checkpoint(tmp_path, model=model, optimizer=opt)
    save_checkpoint(tmp_path, 3, model=model, optimizer=opt)
    assert not torn.exists()


def test_failed_write_keeps_previous_checkpoint(tmp_path):
    model, opt, _ = _objects()
    good = save_checkpoint(tmp_path, 1, model=model, optimizer=opt)
    with pytest.raises(ValueError, match="not JSON-serialisable"):
        save_checkpoint(tmp_path, 2, model=model, optimizer=opt, state={"bad": object()})
    assert latest_checkpoint(tmp_path) == good
    assert {p.name for p in (tmp_path / "checkpoints").iterdir()} == {"latest", "step_000000001"}
    read_trainer_state(good)


def test_keep_last_pruning(tmp_path):
    model, opt, _ = _objects()
    for step in range(1, 6):
        save_checkpoint(tmp_path, step, model=model, optimizer=opt, keep_last=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_000000004", "step_000000005"]
    assert (tmp_path / "checkpoints" / "latest").read_text().strip() == "step_000000005"
    # the same step written twice replaces it in place
    save_checkpoint(tmp_path, 5, model=model, optimizer=opt, keep_last=2)
    assert len(list_checkpoints(tmp_path)) == 2


def test_missing_and_dangling(tmp_path):
    model, opt, _ = _objects()
    assert latest_checkpoint(tmp_path) is None
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path, model=model)
    save_checkpoint(tmp_path, 1, model=model, optimizer=opt)
    (tmp_path / "checkpoints" / "latest").write_text("step_000000009\n")
    with pytest.raises(CheckpointError, match="not a checkpoint folder"):
        latest_checkpoint(tmp_path)


def test_model_mismatch_lists_keys(tmp_path):
    model, opt, _ = _objects()
    path = save_checkpoint(tmp_path, 1, model=model, optimizer=opt)
    other = torch.nn.Linear(2, 2)
    with pytest.raises(CheckpointError, match=r"missing keys \['bias', 'weight'\]"):
        load_checkpoint(path, model=other)


def test_plain_module_without_config(tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Linear(3, 3))
    model[1].weight = model[0].weight  # tied weights are stored once
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.ones(3)).sum().backward()
    opt.step()
    path = save_checkpoint(tmp_path, 1, model=model, optimizer=opt)
    assert not (path / "config.json").exists()
    fresh = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Linear(3, 3))
    fresh[1].weight = fresh[0].weight
    opt2 = torch.optim.SGD(fresh.parameters(), lr=0.1, momentum=0.9)
    load_checkpoint(path, model=fresh, optimizer=opt2)
    assert torch.equal(fresh[1].weight, model[1].weight)
    assert torch.equal(
        opt2.state_dict()["state"][0]["momentum_buffer"],
        opt.state_dict()["state"][0]["momentum_buffer"],
    )


class _WithExtraState(torch.nn.Module):
    """A third-party style module whose state dict holds a non-tensor entry (like neuraloperator)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(3, 3)
        self.meta = {"n_modes": [4, 4], "name": "x"}

    def get_extra_state(self):
        return self.meta

    def set_extra_state(self, state):
        self.meta = state

    def forward(self, x):
        return self.lin(x)


def test_non_tensor_extra_state_round_trips_as_json(tmp_path):
    from neuralops.train.checkpoint import load_checkpoint, save_checkpoint

    model = _WithExtraState()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    path = save_checkpoint(
        tmp_path, 1, model=model, optimizer=opt, scheduler=None, scaler=None, state={}
    )
    other = _WithExtraState()
    other.meta = {}
    load_checkpoint(path, model=other, optimizer=None, scheduler=None, scaler=None)
    assert other.meta == {"n_modes": [4, 4], "name": "x"}
    assert torch.equal(other.lin.weight, model.lin.weight)
