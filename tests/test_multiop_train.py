"""Multi-operator training (models.md §5.2): the family-mixing sampler (weights ~ n_f^T, single-family
batches, deterministic, resumable), ``fit_multi``/``finetune`` on two families with exact operators
(it trains, resumes bitwise, round-trips with every head, LoRA merges), and the recipes."""

from __future__ import annotations

import copy
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _files import DT, make_grid_file, make_timeseries_file

from neuralops.data import RecipeError
from neuralops.models import MultiOperatorModel, ScOT, ScOTConfig, build_model, load_pretrained
from neuralops.models.multiop import FamilySpec, family_weights
from neuralops.train import TrainConfig
from neuralops.train.checkpoint import checkpoint_path
from neuralops.train.family_sampler import FamilyBatchSampler, FamilyDataset, allocate
from neuralops.train.multiop import (
    LRGroups,
    evaluate_families,
    family_normalizers,
    finetune,
    fit_multi,
    optimizer_groups,
    save_multiop,
)
from neuralops.train.recipe import load_train_recipe, parse_train_recipe
from neuralops.train.train_cli import run

ROOT = Path(__file__).resolve().parents[1]
S = 32  # grid side


# --------------------------------------------------------------------------------------- sampler


def test_sampler_counts_follow_n_to_the_t() -> None:
    sizes = {"poisson": 64, "heat": 192}
    s = FamilyBatchSampler(sizes, 8, seed=0)  # T = 1: 32 batches, 8 and 24
    assert s.counts == {"poisson": 8, "heat": 24} and len(s) == 32
    seen = sorted(i for b in s for i in b)
    assert seen == list(range(256))  # T = 1, sizes divisible by the batch: every sample once
    for temperature in (0.0, 0.5, 2.0):
        s = FamilyBatchSampler(sizes, 8, seed=1, temperature=temperature)
        p = family_weights(sizes, temperature)
        assert s.counts == allocate(32, p)
        for f, c in s.counts.items():
            assert abs(c - 32 * p[f]) < 1
        labels = [f for f, _ in s.epoch_batches(0)]
        assert {f: labels.count(f) for f in sizes} == s.counts
    assert FamilyBatchSampler(sizes, 8, seed=0, temperature=0.0).counts == {
        "poisson": 16,
        "heat": 16,
    }
    # empirical frequency over many epochs with an uneven split: within rounding of N p_f
    s = FamilyBatchSampler({"a": 10, "b": 33, "c": 7}, 4, seed=3, temperature=0.5)
    p = family_weights({"a": 10, "b": 33, "c": 7}, 0.5)
    labels = [f for e in range(20) for f, _ in s.epoch_batches(e)]
    for f in p:
        assert abs(labels.count(f) / len(labels) - p[f]) < 1 / s.batches_per_epoch


def test_sampler_single_family_deterministic_and_resumable() -> None:
    data = FamilyDataset(
        {
            "a": [{"input": torch.zeros(1, 2, 2), "target": torch.zeros(1, 2, 2)}] * 10,
            "b": [{"input": torch.zeros(3, 2, 2), "target": torch.zeros(1, 2, 2)}] * 3,
        }
    )
    s = FamilyBatchSampler(data.sizes, 4, seed=7)
    for family, batch in s.epoch_batches(2):
        assert {data.locate(i)[0] for i in batch} == {family}
        assert {data[i]["family"] for i in batch} == {family}
        assert len(batch) == (4 if family == "a" else 3)  # a family smaller than the batch
    again = FamilyBatchSampler(data.sizes, 4, seed=7)
    assert again.epoch_batches(2) == s.epoch_batches(2)
    assert s.epoch_batches(3) != s.epoch_batches(2)
    assert FamilyBatchSampler(data.sizes, 4, seed=8).epoch_batches(2) != s.epoch_batches(2)
    s.set_epoch(2, start_batch=2)
    assert list(s) == [b for _, b in again.epoch_batches(2)][2:] and len(s) == 2
    with pytest.raises(ValueError, match="outside the epoch"):
        s.set_epoch(0, start_batch=5)
    with pytest.raises(ValueError, match="empty"):
        FamilyDataset({"a": []})
    with pytest.raises(ValueError, match="at least one sample"):
        FamilyBatchSampler({"a": 0}, 4, seed=0)
    # every batch of a training loader holds one family
    loader = torch.utils.data.DataLoader(
        data, batch_sampler=FamilyBatchSampler(data.sizes, 4, seed=0)
    )
    for batch in loader:
        assert len(set(batch["family"])) == 1
        assert batch["input"].shape[1] == (1 if batch["family"][0] == "a" else 3)


# --------------------------------------------------------------------------------- toy families


def toy_family(family: str, n: int, seed: int) -> list[dict[str, torch.Tensor]]:
    """Exact operators on the periodic 32^2 grid from band-limited random fields: Poisson f -> u with
    -Lap u = f (steady, no lead time) and one heat step u(0) -> u(t) = exp(t Lap / 40) u(0) with lead
    time t = 0.25 (the time-conditioned variant, t drawn per pair, is the recipes' all2all data)."""
    gen = torch.Generator().manual_seed(seed)
    k = torch.fft.fftfreq(S, d=1 / S)
    k2 = (2 * torch.pi) ** 2 * (k[:, None] ** 2 + k[None, :] ** 2)
    modes = torch.zeros(n, S, S, dtype=torch.complex64)
    modes[:, 1:4, 1:4] = torch.randn(n, 3, 3, generator=gen) + 1j * torch.randn(
        n, 3, 3, generator=gen
    )
    field = torch.fft.ifft2(modes).real * S * S / 3  # O(1) values
    if family == "poisson":
        inv = torch.where(k2 > 0, 1 / k2.clamp_min(1e-12), torch.zeros_like(k2)) * 40
        u = torch.fft.ifft2(torch.fft.fft2(field) * inv).real
        return [{"input": field[i, None], "target": u[i, None]} for i in range(n)]
    t = torch.full((n,), 0.25)
    u = torch.fft.ifft2(torch.fft.fft2(field) * torch.exp(-t[:, None, None] * k2 / 40)).real
    return [{"input": field[i, None], "target": u[i, None], "time": t[i]} for i in range(n)]


def tiny_model(families: dict[str, FamilySpec], backbone: str = "fno") -> MultiOperatorModel:
    """A 12-channel FNO (spectral, learns the toy operators in seconds; ignores t) or a tiny scOT
    (time-conditioned norms, for LoRA)."""
    torch.manual_seed(0)
    if backbone == "fno":
        bb = build_model(
            "fno",
            in_channels=12,
            out_channels=12,
            width=12,
            modes=(6, 6),
            n_layers=2,
            lifting_channels=0,
            projection_channels=24,
        )
    else:
        bb = ScOT(
            ScOTConfig(
                in_channels=12,
                out_channels=12,
                image_size=S,
                patch_size=4,
                embed_dim=16,
                depths=(1, 1),
                num_heads=(2, 4),
                skip_connections=(1, 0),
                window_size=8,
                resample="pad",
            )
        )
    return MultiOperatorModel.from_backbone(bb, families)


FAMILIES = {"poisson": FamilySpec(1, 1, embedding=True), "heat": FamilySpec(1, 1)}


def test_two_families_train_resume_bitwise_and_round_trip(tmp_path: Path, one_thread) -> None:
    train = {f: toy_family(f, 48, seed=i) for i, f in enumerate(FAMILIES)}
    val = {f: toy_family(f, 16, seed=10 + i) for i, f in enumerate(FAMILIES)}
    model = tiny_model(FAMILIES)
    start = copy.deepcopy(model)
    before = evaluate_families(model, val)
    cfg = TrainConfig(
        max_epochs=6,
        batch_size=8,
        lr=1e-2,
        scheduler="cosine",
        grad_clip_norm=5.0,
        seed=0,
        device="cpu",
        out_dir=str(tmp_path / "a"),
        checkpoint_every_steps=17,  # 12 batches per epoch: step 17 is in the middle of epoch 1
        keep_last=20,
        log_every=6,
    )
    result = fit_multi(model, train, cfg, val=val)
    after = evaluate_families(model, val)
    assert result["step"] == 72 and result["epoch"] == 6
    for f in FAMILIES:
        assert after[f]["rel_l2"] < min(0.15, before[f]["rel_l2"] / 5), (f, before[f], after[f])
        assert result["val"][f"{f}/rel_l2"] == pytest.approx(after[f]["rel_l2"], rel=1e-6)
        assert 0 < after[f]["rel_l1_median_pct"] < 100
    # resume from the mid-epoch checkpoint of step 17: the same weights, bitwise
    b = tmp_path / "b"
    shutil.copytree(checkpoint_path(cfg.out_dir, 17), checkpoint_path(b, 17))
    resumed = copy.deepcopy(start)
    fit_multi(resumed, train, TrainConfig(**{**cfg.to_dict(), "out_dir": str(b)}), val=val)
    for (k, v), w in zip(model.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(v, w), k
    # save with every head and the normalizers; load back bitwise
    norms = {"poisson": _toy_normalizer(train["poisson"])}
    folder = save_multiop(model, tmp_path / "final", normalizers=norms)
    again = load_pretrained(folder).eval()
    model.eval()
    assert again.families == ["poisson", "heat"]
    for k, v in model.state_dict().items():
        assert torch.equal(v, again.state_dict()[k]), k
    x = torch.stack([d["input"] for d in val["heat"][:4]])
    t = torch.stack([d["time"] for d in val["heat"][:4]])
    with torch.no_grad():
        assert torch.equal(model(x, t, family="heat"), again(x, t, family="heat"))
        assert torch.equal(model(x, family="poisson"), again(x, family="poisson"))
    assert set(family_normalizers(folder)) == {"poisson"}
    with pytest.raises(ValueError, match=r"not in the model, which has \['poisson', 'heat'\]"):
        fit_multi(model, {"wave": train["heat"]}, cfg)


def _toy_normalizer(items):
    from neuralops.data.normalizer import GaussianNormalizer

    return GaussianNormalizer.fit(items, spatial_ndim=2)


def test_lora_finetune_trains_only_the_new_family_and_merges(tmp_path: Path, one_thread) -> None:
    model = tiny_model(FAMILIES, backbone="scot")
    frozen = {n: p.detach().clone() for n, p in model.named_parameters()}
    data = toy_family("heat", 32, seed=5)
    cfg = TrainConfig(max_epochs=2, batch_size=8, lr=1e-3, device="cpu", out_dir=str(tmp_path))
    finetune(model, "wave", data, cfg, mode="lora", rank=4, alpha=8, lrs=LRGroups(lora=5e-3))
    groups = {g["name"]: g for g in optimizer_groups(model, LRGroups(lora=5e-3))}
    assert groups["lora"]["lr"] == 5e-3 and groups["heads"]["lr"] == 5e-4
    assert "backbone" not in groups  # LoRA: no full backbone weight trains
    changed = {
        n
        for n, p in model.named_parameters()
        if n in frozen and not torch.equal(p, frozen[n].to(p.dtype))
    }
    # only the backbone norms may move among the old weights (Poseidon trains them)
    assert all("norm" in n or ".alpha." in n or ".beta." in n for n in changed), sorted(changed)
    assert not any(n.startswith(("adapters.poisson", "heads.heat", "embeddings.")) for n in changed)
    assert any(".lora_B." in n and p.abs().sum() > 0 for n, p in model.named_parameters())
    model.eval()
    x = torch.stack([d["input"] for d in data[:4]])
    t = torch.stack([d["time"] for d in data[:4]])
    with torch.no_grad():
        adapted = model(x, t, family="wave")
    folder = save_multiop(model, tmp_path / "merged")  # merges a copy
    merged = load_pretrained(folder).eval()
    assert merged.families == ["poisson", "heat", "wave"]
    assert not any("lora" in k for k in merged.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(merged(x, t, family="wave"), adapted, rtol=0, atol=1e-5)


# -------------------------------------------------------------------------------------- recipes


def _recipe(name: str) -> str:
    return (ROOT / "train" / name).read_text()


def test_multiop_recipes_parse_and_reject_mistakes() -> None:
    pre = load_train_recipe(ROOT / "train/multiop_pretrain_toy.toml")
    assert list(pre.families) == ["poisson", "heat"] and pre.multiop.temperature == 0.5
    assert pre.families["heat"].n_train == 24 and pre.families["heat"].data.time == "all2all"
    cfg = pre.multiop_config({"poisson": (4, 1), "heat": (2, 1)})
    assert cfg.families["poisson"] == {"in_channels": 4, "out_channels": 1, "embedding": True}
    ft = load_train_recipe(ROOT / "train/lora_finetune_example.toml")
    assert ft.multiop.mode == "lora" and ft.multiop.init_from.endswith("multiop_pretrain_toy/final")
    text = _recipe("multiop_pretrain_toy.toml")
    cases = [
        (text.replace("n_train = 24", "n_trian = 24"), "did you mean 'n_train'"),
        (text.replace("window_size = 8", "windw_size = 8"), "did you mean 'window_size'"),
        (text.replace("temperature = 0.5", "temprature = 0.5"), "did you mean 'temperature'"),
        (text.replace("temperature = 0.5", 'mode = "lora"'), "init_from"),
        (text.replace("[data]\n", '[data]\npath = "x.h5"\n'), "each family"),
        (text.replace("out_channels = 16", "out_channels = 8"), "in_channels = out_channels"),
        (text.replace("[families.heat]", "[families.heat-2d]"), "identifier"),
    ]
    for bad, match in cases:
        with pytest.raises(RecipeError, match=match):
            parse_train_recipe(bad)
    with pytest.raises(RecipeError, match="did you mean 'n_train'"):
        parse_train_recipe(text, ["families.heat.n_trian=3"])
    mgno = _recipe("mgno_darcy_smoke.toml") + "\n[multiop]\ntemperature = 1.0\n"
    with pytest.raises(RecipeError, match="multi_operator"):
        parse_train_recipe(mgno)


def _pretrain_recipe_on_fixtures(tmp_path: Path) -> Path:
    """train/multiop_pretrain_toy.toml reading small fixture files instead of the real data."""
    grid = make_grid_file(tmp_path / "steady.h5", n=16, s=S)
    series = make_timeseries_file(tmp_path / "series.h5", n=4, t=4, s=S)
    text = _recipe("multiop_pretrain_toy.toml")
    text = text.replace('recipe = "pde_data/poisson_2d_small.toml"', f'path = "{grid}"')
    text = text.replace(
        'recipe = "pde_data/heat_small.toml"\ninputs = ["kappa", "u"]',
        f'path = "{series}"\ninputs = ["f", "w"]',
    ).replace('targets = "u"', 'targets = "w"')
    text = text.replace("t_norm = 0.05", f"t_norm = {3 * DT}")
    (tmp_path / "pre.toml").write_text(text)
    return tmp_path / "pre.toml"


def test_multiop_recipe_under_torchrun(tmp_path: Path) -> None:
    """`torchrun --nproc_per_node 2 -m neuralops train` on a multi-operator recipe: each rank
    trains on its share of the single-family batches; rank 0 alone writes the final model."""
    recipe = _pretrain_recipe_on_fixtures(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    proc = subprocess.run(
        [
            *cmd,
            "-m",
            "neuralops",
            "train",
            str(recipe),
            "--set",
            "train.max_epochs=1",
            "--set",
            "families.heat.n_train=1",
            "--set",
            f'log.out_dir="{tmp_path / "run"}"',
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.count("final model:") == 1
    assert "x 2 rank(s)" in proc.stdout + proc.stderr
    final = load_pretrained(tmp_path / "run" / "final")
    assert final.families == ["poisson", "heat"]
    assert set(family_normalizers(tmp_path / "run" / "final")) == {"poisson", "heat"}


def test_pretrain_then_lora_finetune_recipes_run(tmp_path: Path, one_thread) -> None:
    r = run(
        _pretrain_recipe_on_fixtures(tmp_path),
        ["train.max_epochs=1", "families.heat.n_train=1"],
        out=tmp_path / "pre",
    )
    assert r["fit"]["epoch"] == 1 and math.isfinite(r["test"]["heat/rel_l2"])
    assert {"poisson/rel_l1_median_pct", "heat/loss"} <= set(r["val"])
    pre = load_pretrained(r["final"])
    assert pre.families == ["poisson", "heat"]
    assert pre.config.families["heat"]["in_channels"] == 2

    new = make_timeseries_file(tmp_path / "new.h5", n=4, t=4, s=S)
    ft = _recipe("lora_finetune_example.toml")
    ft = ft.replace('recipe = "pde_data/allen_cahn_2d_small.toml"', f'path = "{new}"')
    ft = ft.replace("[families.allen_cahn]", '[families.allen_cahn]\ninputs = "w"\ntargets = "w"')
    ft = ft.replace("t_norm = 2.0", f"t_norm = {3 * DT}").replace("n_train = 8", "n_train = 2")
    ft = ft.replace('init_from = "runs/multiop_pretrain_toy/final"', f'init_from = "{r["final"]}"')
    (tmp_path / "ft.toml").write_text(ft)
    out = run(tmp_path / "ft.toml", ["train.max_epochs=1"], out=tmp_path / "ft")
    final = load_pretrained(out["final"])
    assert final.families == ["poisson", "heat", "allen_cahn"]
    assert set(family_normalizers(out["final"])) == {"poisson", "heat", "allen_cahn"}
    # the pretrained families' weights that LoRA froze are untouched
    for name in ("adapters.heat.weight", "heads.poisson.weight", "embeddings.poisson"):
        assert torch.equal(final.state_dict()[name], pre.state_dict()[name]), name
    bad = ft.replace(f'init_from = "{r["final"]}"', f'init_from = "{tmp_path / "nothing"}"')
    (tmp_path / "bad.toml").write_text(bad)
    with pytest.raises(RecipeError, match="train the pretrained model first"):
        run(tmp_path / "bad.toml", out=tmp_path / "bad")
    mismatch = ft.replace("embed_dim = 16", "embed_dim = 24")
    (tmp_path / "mismatch.toml").write_text(mismatch)
    with pytest.raises(RecipeError, match="embed_dim: recipe 24 vs checkpoint 16"):
        run(tmp_path / "mismatch.toml", out=tmp_path / "mm")


def test_trainer_family_data_bad_input(tmp_path: Path) -> None:
    from neuralops.train import Trainer

    items = [{"input": torch.randn(1, 8, 8), "target": torch.randn(1, 8, 8)}] * 2
    cfg = TrainConfig(max_steps=1, batch_size=2, out_dir=str(tmp_path), device="cpu")
    with pytest.raises(TypeError, match="does not route families"):
        Trainer(torch.nn.Conv2d(1, 1, 1), cfg, train_data={"a": items})
    model = tiny_model(FAMILIES)
    with pytest.raises(TypeError, match="give val_data per family"):
        Trainer(model, cfg, train_data={"poisson": items}, val_data=items)
    with pytest.raises(ValueError, match=r"families \['wave'\] are not in the model"):
        Trainer(model, cfg, train_data={"poisson": items}, val_data={"wave": items})
