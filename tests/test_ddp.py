"""DDP through torchrun: 2 CPU processes on the gloo backend against serial runs (training spec §3)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _ddp_worker import (
    N_TRAIN,
    family_eval_vector,
    make_config,
    make_data,
    make_family_data,
    make_model,
    make_multi,
)
from safetensors.torch import load_file

from neuralops.train import Trainer, list_checkpoints
from neuralops.train.distributed import DistEnv, init_distributed

WORKER = Path(__file__).with_name("_ddp_worker.py")


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    """Launch the worker on 2 ranks once; every test below reads what it wrote."""
    out = tmp_path_factory.mktemp("ddp")
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    proc = subprocess.run(
        [*cmd, str(WORKER), str(out)], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ranks = [load_file(str(out / f"rank{r}.safetensors")) for r in (0, 1)]
    return out, ranks


def _serial(out_dir, batch_size):
    t = Trainer(
        make_model(), make_config(str(out_dir), batch_size), train_data=make_data(N_TRAIN, 1)
    )
    t.fit(resume=None)
    return t


def test_parameters_identical_on_both_ranks(ddp_run):
    _, (r0, r1) = ddp_run
    keys = [k for k in r0 if k.startswith(("a.", "b."))]
    assert keys
    for k in keys:
        assert torch.equal(r0[k], r1[k]), k


def test_two_ranks_of_batch_4_match_one_process_of_batch_8(ddp_run, tmp_path):
    _, (r0, _) = ddp_run
    serial = _serial(tmp_path, 8).model.state_dict()
    init = make_model().state_dict()
    for name, value in serial.items():
        assert not torch.allclose(value, init[name])  # training moved every tensor
        torch.testing.assert_close(r0[f"a.{name}"], value, rtol=0, atol=1e-10)


def test_exactly_one_checkpoint_directory(ddp_run):
    out, _ = ddp_run
    # 40 samples / (4 per rank x 2 ranks) = 5 steps = one epoch: one checkpoint, written once
    ckpts = list_checkpoints(out / "a")
    assert [p.name for p in ckpts] == ["step_000000005"]
    leftovers = [p.name for p in (out / "a" / "checkpoints").iterdir()]
    assert sorted(leftovers) == ["latest", "step_000000005"]


def test_kill_and_resume_reproduces_the_uninterrupted_run(ddp_run):
    out, ranks = ddp_run
    for r in ranks:
        assert int(r["b_stopped_at"]) == 2  # both ranks stopped at the same step
    assert int(ranks[0]["b_exit"]) == 130  # the signalled rank exits with 130
    assert "b_exit" not in ranks[1]
    assert (out / "b" / "checkpoints" / "step_000000002").is_dir()
    for r in ranks:
        for k in (k for k in r if k.startswith("a.")):
            assert torch.equal(r[k], r["b." + k[2:]]), k


def test_all_reduced_eval_equals_single_process(ddp_run, tmp_path):
    _, (r0, r1) = ddp_run
    assert torch.equal(r0["eval"], r1["eval"])
    model = make_model()
    model.load_state_dict({k[2:]: v for k, v in r0.items() if k.startswith("a.")})
    t = Trainer(model, make_config(str(tmp_path), 4), train_data=make_data(4, 0))
    ev = t.evaluate(make_data(13, 2))  # 13 samples: uneven over 2 ranks, no padding duplicates
    expected = torch.tensor([ev["loss"], ev["rel_l2"], ev["rel_h1"]], dtype=torch.float64)
    torch.testing.assert_close(r0["eval"], expected, rtol=1e-12, atol=0)


def test_multi_family_training_under_ddp(ddp_run, tmp_path):
    """Batches of one family per rank (families p and q): the ranks stay identical, training moves
    the backbone and both families' adapters, and the per-family evaluation (including the median
    relative L1, gathered across ranks) equals a single process's."""
    _, (r0, r1) = ddp_run
    keys = [k for k in r0 if k.startswith("c.")]
    for k in keys:
        assert torch.equal(r0[k], r1[k]), k
    init = make_multi().state_dict()
    moved = {k[2:] for k in keys if not torch.equal(r0[k], init[k[2:]])}
    assert {"adapters.p.weight", "adapters.q.weight", "heads.p.weight"} <= moved
    assert any(k.startswith("backbone.") for k in moved)
    model = make_multi()
    model.load_state_dict({k[2:]: v for k, v in r0.items() if k.startswith("c.")})
    t = Trainer(model, make_config(str(tmp_path), 4), train_data=make_family_data(4, 0))
    expected = family_eval_vector(t.evaluate(make_family_data(7, 4)))
    torch.testing.assert_close(r0["c_eval"], expected, rtol=1e-12, atol=0)


def test_environment_mapping_torchrun_then_slurm():
    env = {"RANK": "1", "LOCAL_RANK": "0", "WORLD_SIZE": "2", "SLURM_PROCID": "5"}
    assert DistEnv.from_env(env) == DistEnv(rank=1, local_rank=0, world_size=2)
    slurm = {"SLURM_PROCID": "5", "SLURM_LOCALID": "1", "SLURM_NTASKS": "8"}
    assert DistEnv.from_env(slurm) == DistEnv(rank=5, local_rank=1, world_size=8)
    with pytest.raises(ValueError, match="0 <= rank < world size"):
        DistEnv.from_env({"RANK": "2", "WORLD_SIZE": "2"})
    with pytest.raises(ValueError, match="must be integers"):
        DistEnv.from_env({"RANK": "x", "WORLD_SIZE": "2"})


def test_missing_rendezvous_address_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    monkeypatch.delenv("MASTER_PORT", raising=False)
    with pytest.raises(RuntimeError, match="MASTER_ADDR.*torchrun"):
        init_distributed(DistEnv(rank=0, local_rank=0, world_size=2), torch.device("cpu"))


def test_neuralops_train_under_torchrun(tmp_path):
    """`torchrun --nproc_per_node 2 -m neuralops train RECIPE`: one final model, logs from rank 0 only."""
    from _files import make_grid_file
    from test_train_cli import RECIPE

    data = make_grid_file(tmp_path / "d.h5", n=8, s=16)
    out = tmp_path / "run"
    recipe = tmp_path / "r.toml"
    recipe.write_text(RECIPE.format(data=data, out=out).replace("max_epochs = 5", "max_epochs = 2"))
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    proc = subprocess.run(
        [*cmd, "-m", "neuralops", "train", str(recipe)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.count("final model:") == 1  # rank 0 prints, rank 1 is quiet
    assert "batch 2 per rank x 2 rank(s) = 4 global" in proc.stdout + proc.stderr
    assert (out / "final" / "model.safetensors").is_file()
    assert (out / "recipe.resolved.toml").is_file()
    rows = (out / "metrics.csv").read_text().splitlines()
    steps = [r.split(",")[0] for r in rows[1:] if ",train,loss," in r]
    assert steps == sorted(set(steps), key=int)  # one writer: no duplicated rows
