"""The training benchmarks' core functions on tiny inputs (so they do not rot between full runs)."""

import sys
from pathlib import Path

import pytest
import torch
from _files import make_grid_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import mgno_vs_fno  # noqa: E402
import trainer_overhead  # noqa: E402


def test_trainer_overhead_loops(monkeypatch):
    tiny = lambda: torch.nn.Conv2d(1, 1, 3, padding=1)  # noqa: E731
    monkeypatch.setitem(trainer_overhead.MODELS, "tiny", tiny)
    data = trainer_overhead.make_data(8, size=16)
    bare = trainer_overhead.bare_loop("tiny", data, steps=5, batch=4)
    ours = trainer_overhead.trainer_loop("tiny", data, steps=5, batch=4, ckpt=None)
    assert len(bare) == 5 and len(ours) == 5 and min(bare + ours) > 0


def test_mgno_vs_fno_case(tmp_path):
    path = make_grid_file(tmp_path / "d.h5", n=12, s=33)
    rows = mgno_vs_fno.run_case("tiny", path, n_train=4, n_test=4, epochs=1, seed=0)
    trained = [r for r in rows if "test_rel_l2" in r]
    assert trained[0]["model"].startswith("mgno") and trained[0]["params_real"] == 572_661
    assert all(r["test_rel_l2"] > 0 and r["s_per_epoch"] > 0 for r in trained)
    fno = [r for r in trained if r["model"].startswith("ours FNO")][0]
    assert fno["params_real"] == 537_013 and "mgno_over_this_l2" in fno
    if any(r.get("note") for r in rows):  # neuraloperator missing: the row says how to get it
        assert "pip install neuraloperator" in [r["note"] for r in rows if r.get("note")][0]
    else:
        pytest.importorskip("neuralop")


def test_scot_time_case(tmp_path):
    import scot_time
    import throughput
    from _files import DT, make_timeseries_file

    path = make_timeseries_file(tmp_path / "ts.h5", n=8, t=4, s=32)
    rows = scot_time.run(path, 2, 2, 1, 0, ("scot", "fno"), field="w", t_norm=3 * DT, leads=(1, 3))
    assert {r["model"] for r in rows} == {"scot", "fno"}
    assert len(rows) == 2 * 2 * 2  # models x modes x leads
    assert all(r["rel_l2"] > 0 and r["s_per_epoch"] > 0 and r["train_pairs"] == 20 for r in rows)
    scot = [r for r in rows if r["model"] == "scot"]
    assert scot[0]["params_real"] == 1_275_762
    tiny = torch.nn.Conv2d(1, 1, 3, padding=1)
    r = throughput.measure(
        tiny, (torch.randn(2, 1, 8, 8),), 2, torch.device("cpu"), None, runs=2, warmup=1
    )
    assert r["fwd_samples_s"] > 0 and r["fwd_bwd_samples_s"] > 0


def test_sample_efficiency_fine_tune_modes(tmp_path, one_thread):
    """The three runs of benchmarks/sample_efficiency.py on a fixture series: scratch trains
    everything, LoRA trains ~1/8 of it and leaves the pretrained families' weights alone."""
    import sample_efficiency as se
    from _files import DT, make_timeseries_file

    from neuralops.data import PDEDataset
    from neuralops.models.multiop import FamilySpec, MultiOperatorModel

    path = make_timeseries_file(tmp_path / "ts.h5", n=4, t=4, s=32)
    data = PDEDataset(
        path, "train", inputs="w", targets="w", time="all2all", time_options={"t_norm": 3 * DT}
    )
    norm = data.normalizer("gaussian")
    pre = MultiOperatorModel.from_backbone(se.backbone(), {"ns": FamilySpec(1, 1)})
    before = {k: v.clone() for k, v in pre.state_dict().items()}
    test = se.evaluate(pre, "ns", data, norm)  # any family's head: shape and metric plumbing
    assert 0 < test["test_rel_l2"] and 0 < test["final_rel_l1_median_pct"]
    counts = {}
    for mode in ("scratch", "full", "lora"):
        model, counts[mode] = se.fine_tune(pre, mode, data, norm, 2, 0, str(tmp_path / mode))
        assert model.families == (["ac"] if mode == "scratch" else ["ns", "ac"])
    assert counts["full"] > counts["scratch"] > 7 * counts["lora"] > 0
    for k, v in pre.state_dict().items():  # fine-tuning works on copies
        assert torch.equal(v, before[k]), k
