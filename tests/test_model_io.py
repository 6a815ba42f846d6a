"""save_pretrained / from_pretrained (safetensors + JSON), the registry and build_model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from neuralops.models import (
    FNO,
    MODELS,
    FNOConfig,
    MgNO,
    MgNOConfig,
    build_model,
    load_pretrained,
)
from neuralops.models.base import CONFIG_NAME, FORMAT_VERSION, WEIGHTS_NAME


def small_models() -> list[torch.nn.Module]:
    torch.manual_seed(0)
    return [
        FNO(FNOConfig(modes=(4, 4), width=6, lifting_channels=8, projection_channels=8)),
        MgNO(MgNOConfig(in_channels=2, out_channels=1, width=4, n_layers=2, levels=3)),
        MgNO(
            MgNOConfig(
                in_channels=1,
                width=4,
                n_layers=2,
                levels=3,
                smoothing=((1, 1), (1, 0), (2, 0)),
                padding_mode="circular",
                smoother_bias=True,
                level_norm="layer_chw",
                grid_shape=(16, 16),
                pointwise=False,
                global_residual=True,
                prolongation_kernels=(3, 4),
            )
        ),
    ]


def randomize(model: torch.nn.Module) -> None:
    """Move every tensor off its initial value, so that a load that silently skipped one would show."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))


@pytest.mark.parametrize("index", [0, 1, 2])
def test_round_trip_is_bitwise(tmp_path: Path, index: int) -> None:
    model = small_models()[index].eval()
    randomize(model)
    folder = model.save_pretrained(tmp_path / "ckpt", metadata={"note": "test"})
    assert sorted(p.name for p in folder.iterdir()) == [CONFIG_NAME, WEIGHTS_NAME]
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]  # no temporary folder left behind
    payload = json.loads((folder / CONFIG_NAME).read_text())
    assert set(payload) == {
        "format_version",
        "model_type",
        "config",
        "neuralops_version",
        "normalizer",
        "metadata",
    }
    assert payload["format_version"] == FORMAT_VERSION
    assert payload["metadata"] == {"note": "test"}
    with safe_open(str(folder / WEIGHTS_NAME), framework="pt") as fh:
        assert fh.metadata()["model_type"] == payload["model_type"]

    again = type(model).from_pretrained(folder).eval()
    assert again.config == model.config
    ours, theirs = model.state_dict(), again.state_dict()
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert torch.equal(ours[key], theirs[key]), key
    x = torch.randn(2, model.config.in_channels, 16, 16)
    assert torch.equal(model(x), again(x))
    assert type(load_pretrained(folder)) is type(model)


def test_overwrite_existing_folder_and_normalizer(tmp_path: Path) -> None:
    first, second = small_models()[1], small_models()[1]
    randomize(second)

    class Norm:
        def to_dict(self) -> dict:
            return {"kind": "gaussian", "mean": 0.5}

    first.save_pretrained(tmp_path / "ckpt")
    second.save_pretrained(tmp_path / "ckpt", normalizer=Norm())
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]
    payload = json.loads((tmp_path / "ckpt" / CONFIG_NAME).read_text())
    assert payload["normalizer"] == {"kind": "gaussian", "mean": 0.5}
    loaded = MgNO.from_pretrained(tmp_path / "ckpt")
    for a, b in zip(loaded.parameters(), second.parameters(), strict=True):
        assert torch.equal(a, b)


def test_missing_and_unexpected_keys_are_listed(tmp_path: Path) -> None:
    model = small_models()[1]
    folder = model.save_pretrained(tmp_path / "ckpt")
    weights = folder / WEIGHTS_NAME
    state = load_file(str(weights))
    dropped = "layers.1.pointwise.bias"
    del state[dropped]
    state["layers.9.extra.weight"] = torch.zeros(3)
    save_file(state, str(weights), metadata={"model_type": "mgno", "format_version": "1"})
    with pytest.raises(ValueError, match="missing keys") as err:
        MgNO.from_pretrained(folder)
    assert dropped in str(err.value) and "layers.9.extra.weight" in str(err.value)
    loose = MgNO.from_pretrained(folder, strict=False)  # the rest is loaded
    assert torch.equal(loose.head.weight, model.head.weight)


def test_shape_mismatch_is_named(tmp_path: Path) -> None:
    folder = small_models()[1].save_pretrained(tmp_path / "ckpt")
    state = load_file(str(folder / WEIGHTS_NAME))
    state["head.weight"] = torch.zeros(1, 5, 1, 1)
    save_file(state, str(folder / WEIGHTS_NAME))
    with pytest.raises(ValueError, match="head.weight"):
        MgNO.from_pretrained(folder)


def test_wrong_model_type_is_refused(tmp_path: Path) -> None:
    folder = small_models()[1].save_pretrained(tmp_path / "ckpt")
    with pytest.raises(ValueError, match="'mgno' model, not 'fno'"):
        FNO.from_pretrained(folder)


def test_newer_format_and_unknown_config_key(tmp_path: Path) -> None:
    folder = small_models()[0].save_pretrained(tmp_path / "ckpt")
    path = folder / CONFIG_NAME
    payload = json.loads(path.read_text())
    path.write_text(json.dumps({**payload, "format_version": FORMAT_VERSION + 1}))
    with pytest.raises(ValueError, match="newer"):
        FNO.from_pretrained(folder)
    payload["config"]["mode"] = [3, 3]
    path.write_text(json.dumps(payload))
    with pytest.raises(ValueError, match="'mode'"):
        FNO.from_pretrained(folder)
    with pytest.raises(FileNotFoundError, match=CONFIG_NAME):
        FNO.from_pretrained(tmp_path)


def test_fno_config_json_round_trip() -> None:
    cfg = FNOConfig(modes=(6, 5), width=8)
    data = json.loads(json.dumps(cfg.to_dict()))
    assert data["modes"] == [6, 5]
    assert FNOConfig.from_dict(data) == cfg


def test_registry_and_build_model() -> None:
    assert MODELS["fno"] is FNO and MODELS["mgno"] is MgNO
    model = build_model("mgno", in_channels=1, width=4, n_layers=1, levels=2)
    assert isinstance(model, MgNO) and model.config.width == 4
    assert isinstance(build_model(FNOConfig(modes=(4, 4), width=4)), FNO)
    assert build_model(MgNOConfig(in_channels=1), width=6).config.width == 6
    with pytest.raises(ValueError, match=r"'mgn0'.*valid model types are \[.*'fno'.*'mgno'"):
        build_model("mgn0", in_channels=1)
    with pytest.raises(ValueError, match="widht"):
        build_model("mgno", in_channels=1, widht=4)


def test_num_parameters_counts_complex_twice() -> None:
    model = small_models()[0]
    numel = sum(p.numel() for p in model.parameters())
    complex_numel = sum(p.numel() for p in model.parameters() if p.is_complex())
    assert complex_numel > 0
    assert model.num_parameters(real=False) == numel
    assert model.num_parameters() == model.n_params() == numel + complex_numel
