"""The shipped model zoo: every catalog entry loads offline, has a complete card whose numbers are the
catalog's, and predicts Darcy samples it has never seen about as well as its card says."""

import re
import socket
from pathlib import Path

import pytest

from neuralops.hub import from_pretrained, list_models
from neuralops.hub.catalog import REPOSITORY_CATALOG

ENTRIES = list_models(REPOSITORY_CATALOG)
OPERATORS = [e for e in ENTRIES if e.architecture != "dcdm"]  # field-to-field surrogates
DCDM_NETS = [e for e in ENTRIES if e.architecture == "dcdm"]  # learned solver directions
SECTIONS = (
    "Model",
    "Training data",
    "Training",
    "Metrics",
    "Intended use",
    "Limitations",
    "License",
    "Citation",
)
ROOT = REPOSITORY_CATALOG.parent.parent


def _sections(text: str) -> dict[str, str]:
    parts = re.split(r"^## +(.+?)\s*$", text, flags=re.M)
    return {parts[k]: parts[k + 1] for k in range(1, len(parts) - 1, 2)}


def test_the_zoo_has_mgno_and_fno_for_smooth_and_rough_darcy():
    have = {(e.architecture, e.dataset.get("recipe")) for e in ENTRIES}
    for arch in ("mgno", "fno"):
        for family in ("smooth", "rough"):
            assert (arch, f"pde_data/bench_darcy_{family}_64.toml") in have


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_card_has_every_section_and_the_catalog_numbers(entry):
    assert entry.card, f"{entry.name}: no card"
    text = (entry.base / entry.card).read_text(encoding="utf-8")
    sections = _sections(text)
    missing = [s for s in SECTIONS if s not in sections]
    assert not missing, f"{entry.card}: missing sections {missing}"
    metrics = sections["Metrics"]
    for key, value in entry.metrics.items():
        if key == "split":
            continue
        found = re.search(rf"^\|\s*{key}\s*\|\s*([-+0-9.eE]+)\s*\|", metrics, flags=re.M)
        assert found, f"{entry.card}: no '| {key} | value |' row in Metrics"
        assert float(found.group(1)) == value, f"{entry.card}: {key} differs from the catalog"
    assert f"neuralops eval {entry.name} --verify-card" in metrics
    assert entry.dataset["content_sha256"] in sections["Training data"]
    assert entry.train_recipe in sections["Training"] and (ROOT / entry.train_recipe).is_file()
    assert (ROOT / entry.dataset["recipe"]).is_file()


@pytest.fixture()
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a shipped model opened a socket")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setenv("NEURALOPS_OFFLINE", "1")


def _fresh_samples(recipe: Path, out: Path, n: int = 12, seed: int = 20261204) -> Path:
    """The card's dataset recipe with another seed and ``n`` test samples only."""
    from neuralops.pde.generate import generate
    from neuralops.pde.recipe import parse_recipe

    text = recipe.read_text()
    text = re.sub(r"(?m)^n_samples = \d+", f"n_samples = {n}", text)
    text = re.sub(r"(?m)^seed = \d+", f"seed = {seed}", text)
    text = re.sub(r"(?m)^splits = .*$", f"splits = {{ train = 0, val = 0, test = {n} }}", text)
    text = re.sub(r"(?m)^workers = \d+", "workers = 1", text)
    return Path(generate(parse_recipe(text, str(recipe)), out=out, progress=False).path)


@pytest.mark.parametrize("entry", OPERATORS, ids=lambda e: e.name)
def test_shipped_model_loads_offline_and_predicts_unseen_samples(entry, tmp_path, no_network):
    import torch

    from neuralops.train.eval_cli import evaluate

    model = from_pretrained(entry.name, cache_dir=tmp_path / "cache")
    assert model.catalog_entry == entry and model.normalizer is not None and model.card
    data = _fresh_samples(ROOT / entry.dataset["recipe"], tmp_path / "fresh.h5")
    cached = tmp_path / "cache" / "models" / entry.name / entry.version
    with torch.no_grad():
        m = evaluate(cached, data, split="test")
    # 12 unseen samples from the training distribution: the card's test error, up to sampling noise
    card = entry.metrics["rel_l2"]
    assert m["rel_l2"] < 2.0 * card + 0.005, (m, entry.metrics)


@pytest.mark.parametrize("entry", DCDM_NETS, ids=lambda e: e.name)
def test_shipped_dcdm_network_reproduces_its_card_offline(entry, tmp_path, no_network):
    """The card's held-out iteration counts, recomputed (DCDM with the shipped network and CG on
    the recipe's held-out obstacle scenes), within one iteration."""
    from neuralops.train.eval_cli import dcdm_metrics

    net = from_pretrained(entry.name, cache_dir=tmp_path / "cache")
    assert net.card and net.config.dim in (2, 3)
    found = dcdm_metrics(tmp_path / "cache" / "models" / entry.name / entry.version)
    for key in ("dcdm_iterations", "cg_iterations"):
        assert abs(found[key] - entry.metrics[key]) <= 1.0, (key, found, entry.metrics)


@pytest.mark.slow
def test_verify_card_reproduces_the_catalog_metrics(tmp_path):
    """The full card check: regenerate the card's dataset, match its digest, re-evaluate (~2 min)."""
    from neuralops.train.eval_cli import verify_card

    entry = next(e for e in ENTRIES if e.architecture == "mgno")
    ok, lines = verify_card(entry.name, cache_dir=tmp_path / "cache", local_files_only=True)
    assert ok, lines
