"""Trainer: exact resume, AMP, NaN guard, logging, schedulers, signals, config validation."""

import csv
import os
import signal

import pytest
import torch
from _files import make_grid_file
from torch import nn

from neuralops.data import PDEDataset
from neuralops.models import FNO, FNOConfig
from neuralops.train import NonFiniteLossError, TrainConfig, Trainer, list_checkpoints


class Tiny(nn.Module):
    """(batch, 1, S, S) -> (batch, 1, S, S), with dropout so that resume must restore the RNG."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 6, 3, padding=1), nn.GELU(), nn.Dropout(0.2), nn.Conv2d(6, 1, 3, padding=1)
        )

    def forward(self, x):
        return self.net(x)


def _data(n=18, s=8, seed=0, nan_at=()):
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        x = torch.randn(1, s, s, generator=g)
        y = torch.roll(x, 1, dims=-1) + 0.5 + 0.1 * torch.randn(1, s, s, generator=g)
        if i in nan_at:
            x = x.clone()
            x[0, 0, 0] = float("nan")
        out.append({"input": x, "target": y})
    return out


def _tiny_fno():
    return FNO(
        FNOConfig(modes=(4, 4), width=8, lifting_channels=8, projection_channels=8, n_layers=2)
    )


def _cfg(tmp_path, **kw):
    base = dict(
        max_epochs=3,
        batch_size=4,
        lr=5e-3,
        optimizer="adamw",
        weight_decay=1e-4,
        scheduler="onecycle",
        grad_clip_norm=1.0,
        deterministic=True,
        seed=11,
        log_every=2,
        out_dir=str(tmp_path),
    )
    return TrainConfig(**{**base, **kw})


class StopAt:
    def __init__(self, step):
        self.step = step

    def on_step_end(self, trainer, logs):
        if trainer.global_step == self.step:
            trainer.request_stop()


class RaiseAt:
    def __init__(self, step):
        self.step = step

    def on_step_end(self, trainer, logs):
        if trainer.global_step == self.step:
            raise KeyboardInterrupt("simulated crash")


def _train(tmp_path, *, callbacks=(), resume=None, model_seed=0, **kw):
    torch.manual_seed(model_seed)
    model = Tiny()
    trainer = Trainer(
        model,
        _cfg(tmp_path, **kw),
        train_data=_data(),
        val_data=_data(6, seed=1),
        callbacks=callbacks,
    )
    return trainer, trainer.fit(resume=resume)


def _assert_same(a: nn.Module, b: nn.Module):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    trainer, result = _train(tmp_path_factory.mktemp("ref"))
    return trainer, result


@pytest.mark.parametrize("k", [1, 7, 10])  # mid-epoch, mid-epoch in epoch 2, an epoch boundary
def test_exact_resume_after_stop_is_bitwise(tmp_path, reference, k):
    ref, ref_result = reference
    first, result = _train(tmp_path, callbacks=[StopAt(k)])
    assert result["interrupted"] and result["step"] == k
    # a fresh process: another initialisation, the global RNG scrambled
    torch.manual_seed(999)
    second, final = _train(tmp_path, resume="auto", model_seed=5)
    assert final["step"] == ref_result["step"] == 15 and not final["interrupted"]
    _assert_same(second.model, ref.model)
    sa, sb = second.optimizer.state_dict()["state"], ref.optimizer.state_dict()["state"]
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[i][n], sb[i][n]) for i in sa for n in sa[i])
    assert final["val/loss"] == ref_result["val/loss"]


def test_exact_resume_after_crash_with_epoch_schedule(tmp_path):
    kw = dict(scheduler="onecycle", scheduler_unit="epoch", checkpoint_every_steps=2, max_epochs=3)
    ref, _ = _train(tmp_path / "ref", **kw)
    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path / "run", callbacks=[RaiseAt(9)], **kw)
    assert list_checkpoints(tmp_path / "run")[-1].name == "step_000000008"
    resumed, final = _train(tmp_path / "run", resume="auto", model_seed=3, **kw)
    assert final["step"] == 15
    _assert_same(resumed.model, ref.model)


def test_bf16_autocast_step_on_cpu(tmp_path):
    torch.manual_seed(0)
    model = _tiny_fno()
    before = [p.detach().clone() for p in model.parameters()]
    cfg = _cfg(tmp_path, precision="bf16", max_epochs=None, max_steps=2, scheduler="none")
    result = Trainer(model, cfg, train_data=_data(8), metrics=("rel_l2",)).fit()
    assert result["step"] == 2 and torch.isfinite(torch.tensor(result["train/loss"]))
    assert all(p.dtype in (torch.float32, torch.complex64) for p in model.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_fp16_on_cpu_is_refused(tmp_path):
    with pytest.raises(ValueError, match="fp16.*not supported on CPU.*bf16"):
        Trainer(Tiny(), _cfg(tmp_path, precision="fp16"), train_data=_data())


def test_nan_stop_reports_step_and_samples(tmp_path):
    cfg = _cfg(tmp_path, scheduler="none", max_epochs=1, batch_size=18, deterministic=False)
    trainer = Trainer(Tiny(), cfg, train_data=_data(nan_at=(5,)))
    with pytest.raises(
        NonFiniteLossError, match=r"step 1 \(epoch 0\).*lr=0\.005.*Lower the lr"
    ) as e:
        trainer.fit(resume=None)
    assert e.value.step == 1 and 5 in e.value.indices and len(e.value.indices) == 18


def test_nan_skip_counts_and_continues(tmp_path):
    cfg = _cfg(tmp_path, nan_policy="skip", scheduler="none", max_epochs=2, batch_size=1)
    model = Tiny()
    result = Trainer(model, cfg, train_data=_data(6, nan_at=(2,))).fit(resume=None)
    assert result["bad_steps"] == 2 and result["step"] == 12  # one bad sample per epoch
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_nan_skip_stops_after_max_bad_steps(tmp_path):
    cfg = _cfg(tmp_path, nan_policy="skip", max_bad_steps=3, scheduler="none", batch_size=1)
    with pytest.raises(NonFiniteLossError) as e:
        Trainer(Tiny(), cfg, train_data=_data(6, nan_at=range(6))).fit(resume=None)
    assert e.value.step == 3


def test_metrics_csv_and_checkpoints(tmp_path):
    _, result = _train(tmp_path, keep_last=2, checkpoint_every_steps=4)
    with open(tmp_path / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert set(rows[0]) == {"step", "epoch", "split", "name", "value", "wall_time"}
    names = {(r["split"], r["name"]) for r in rows}
    assert {("train", "loss"), ("train", "lr"), ("train", "grad_norm"), ("val", "rel_h1")} <= names
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_000000012", "step_000000015"]
    assert result["checkpoint"].endswith("step_000000015")


def test_sigterm_checkpoints_and_exits_130(tmp_path):
    class Kill:
        def on_step_end(self, trainer, logs):
            if trainer.global_step == 2:
                os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(SystemExit) as e:
        _train(tmp_path, callbacks=[Kill()])
    assert e.value.code == 130
    assert list_checkpoints(tmp_path)[-1].name == "step_000000002"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_overfits_a_tiny_batch_with_normalizer(tmp_path):
    path = make_grid_file(tmp_path / "d.h5", n=8, s=16)
    ds = PDEDataset(path, "train")
    norm = ds.normalizer("gaussian")
    torch.manual_seed(0)
    model = _tiny_fno()
    cfg = TrainConfig(
        max_steps=150,
        batch_size=4,
        lr=1e-2,
        scheduler="none",
        log_every=50,
        out_dir=str(tmp_path / "r"),
    )
    trainer = Trainer(model, cfg, train_data=ds, val_data=ds, normalizer=norm, metrics=("rel_l2",))
    start = trainer.evaluate(ds)
    result = trainer.fit()
    # 4 random fields memorised by a 4-mode FNO: the normalized loss falls from ~1 to ~0.2
    assert result["val/loss"] < 0.3 * start["loss"]
    assert result["val/rel_l2"] < 0.5 * start["rel_l2"]  # metric in physical units


def test_plateau_needs_validation_and_bad_scheduler_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="plateau.*val_data"):
        Trainer(Tiny(), _cfg(tmp_path, scheduler="plateau"), train_data=_data())

    class Opaque(torch.optim.lr_scheduler.LRScheduler):
        def get_lr(self):
            return [g["lr"] for g in self.optimizer.param_groups]

        def state_dict(self):
            return {"fn": object()}

    opt = torch.optim.SGD(Tiny().parameters(), lr=0.1)
    with pytest.raises(ValueError, match="unsupported scheduler.*not JSON-serialisable"):
        Trainer(Tiny(), _cfg(tmp_path), train_data=_data(), optimizer=opt, scheduler=Opaque(opt))


def test_plateau_steps_on_validation_loss(tmp_path):
    cfg = _cfg(tmp_path, scheduler="plateau", scheduler_args={"patience": 0, "factor": 0.5})
    t = Trainer(Tiny(), cfg, train_data=_data(), val_data=_data(4, seed=2))
    t.fit(resume=None)
    assert t.scheduler.last_epoch == 3


def test_config_validation():
    with pytest.raises(ValueError, match=r"optimizer must be one of \['adam', 'adamw', 'sgd'\]"):
        TrainConfig(max_epochs=1, optimizer="lion")
    with pytest.raises(ValueError, match="scheduler must be one of.*onecycle"):
        TrainConfig(max_epochs=1, scheduler="linear")
    with pytest.raises(ValueError, match="max_epochs or max_steps"):
        TrainConfig()
    with pytest.raises(ValueError, match="did you mean 'max_epochs'"):
        TrainConfig.from_dict({"max_epoch": 3})
    cfg = TrainConfig.from_dict({"max_epochs": 2, "betas": [0.9, 0.99]})
    assert cfg.betas == (0.9, 0.99) and cfg.to_dict()["betas"] == [0.9, 0.99]


def test_param_groups_by_pattern(tmp_path):
    cfg = _cfg(tmp_path, scheduler="none", param_groups=({"pattern": "net.0.*", "lr": 1e-4},))
    t = Trainer(Tiny(), cfg, train_data=_data())
    assert [g["lr"] for g in t.optimizer.param_groups] == [5e-3, 1e-4]
    assert len(t.optimizer.param_groups[1]["params"]) == 2


def test_onecycle_cannot_be_stretched_on_resume(tmp_path):
    data = _data()
    Trainer(Tiny(), _cfg(tmp_path, max_epochs=None, max_steps=4), train_data=data).fit(resume=None)
    before = list_checkpoints(tmp_path)
    longer = Trainer(Tiny(), _cfg(tmp_path, max_epochs=None, max_steps=8), train_data=data)
    with pytest.raises(ValueError, match="OneCycle schedule lasts 4 steps.*asks for 8"):
        longer.fit(resume="auto")
    assert list_checkpoints(tmp_path) == before  # nothing written by the refused resume
    # a same-length resume is fine (and a no-op: the run is complete)
    again = Trainer(Tiny(), _cfg(tmp_path, max_epochs=None, max_steps=4), train_data=data)
    assert again.fit(resume="auto")["step"] == 4


def test_onecycle_per_epoch_with_five_epochs(tmp_path):
    # pct_start 0.2 x 5 epochs puts torch's warm-up end on step 0 (a division by zero upstream)
    cfg = _cfg(tmp_path, max_epochs=5, scheduler_unit="epoch", grad_clip_norm=None)
    result = Trainer(Tiny(), cfg, train_data=_data()).fit(resume=None)
    assert result["epoch"] == 5
