"""Configs, the model registry, and weights as safetensors + JSON (``save_pretrained``/``from_pretrained``).

A checkpoint is a folder with exactly two files:

- ``config.json``: ``{"format_version": 1, "model_type": ..., "config": {...}, "neuralops_version": ...,
  "normalizer": ... | null, "metadata": {...}}``;
- ``model.safetensors``: the state dict (contiguous tensors, tensors that share storage stored once), with
  ``model_type`` and ``format_version`` in the header metadata.

Nothing is ever unpickled. Loading is strict by default: missing and unexpected keys are listed in the error.
``neuralops.models`` imports nothing from neuralops but its version string (:mod:`neuralops._version`).

>>> from neuralops.models import build_model
>>> model = build_model("mgno", in_channels=1, width=4, n_layers=1, levels=2)
>>> import tempfile, torch
>>> with tempfile.TemporaryDirectory() as tmp:
...     _ = model.save_pretrained(f"{tmp}/ckpt")
...     again = type(model).from_pretrained(f"{tmp}/ckpt")
>>> x = torch.randn(1, 1, 8, 8)
>>> torch.equal(model(x), again(x))
True
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Self

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from neuralops._atomic import write_folder
from neuralops._version import __version__

__all__ = [
    "dedup_state_dict",
    "CONFIG_NAME",
    "FORMAT_VERSION",
    "MODELS",
    "WEIGHTS_NAME",
    "ModelConfig",
    "PretrainedMixin",
    "build_model",
    "load_pretrained",
    "register_model",
]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"

#: ``model_type`` -> model class; filled by :func:`register_model`.
MODELS: dict[str, type[nn.Module]] = {}


def _tuplify(value: Any) -> Any:
    """JSON lists back to (nested) tuples, the only sequence type configs use."""
    if isinstance(value, list | tuple):
        return tuple(_tuplify(v) for v in value)
    return value


def _listify(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_listify(v) for v in value]
    return value


class ModelConfig:
    """Mixin for frozen config dataclasses: a ``model_type`` tag and a JSON round trip.

    Tuples become lists in :meth:`to_dict` and lists become tuples again in :meth:`from_dict`, so
    ``type(c).from_dict(json.loads(json.dumps(c.to_dict()))) == c``.
    """

    model_type: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-able field values (tuples as lists)."""
        return {f.name: _listify(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Build from :meth:`to_dict` output; unknown or missing keys raise ``ValueError`` naming them."""
        fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - set(fields))
        required = {
            name
            for name, f in fields.items()
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        }
        missing = sorted(required - set(data))
        if unknown or missing:
            raise ValueError(
                f"{cls.__name__}.from_dict: unknown keys {unknown}, missing keys {missing}; "
                f"valid keys are {sorted(fields)}"
            )
        return cls(**{k: _tuplify(v) for k, v in data.items()})


def register_model(cls: type[nn.Module]) -> type[nn.Module]:
    """Class decorator: enter ``cls`` in :data:`MODELS` under ``cls.config_class.model_type``."""
    name = cls.config_class.model_type  # type: ignore[attr-defined]
    if not name:
        raise ValueError(f"{cls.__name__}.config_class has an empty model_type")
    if name in MODELS and MODELS[name] is not cls:
        raise ValueError(f"model_type {name!r} is already registered to {MODELS[name].__name__}")
    MODELS[name] = cls
    return cls


def _lookup(model_type: str) -> type[nn.Module]:
    try:
        return MODELS[model_type]
    except KeyError:
        raise ValueError(
            f"unknown model_type {model_type!r}; valid model types are {sorted(MODELS)}"
        ) from None


def build_model(config: ModelConfig | str, **kwargs: Any) -> nn.Module:
    """Build a registered model from a config object, or from a ``model_type`` name and config fields.

    ``build_model(MgNOConfig(in_channels=1))`` and ``build_model("mgno", in_channels=1)`` are equivalent.
    An unknown name raises ``ValueError`` listing the valid ones; unknown fields raise ``ValueError``
    naming them.
    """
    if isinstance(config, str):
        cls = _lookup(config)
        return cls(cls.config_class.from_dict(kwargs))  # type: ignore[attr-defined]
    if kwargs:
        config = dataclasses.replace(config, **kwargs)  # type: ignore[type-var]
    return _lookup(type(config).model_type)(config)


def _read_config(folder: Path) -> dict[str, Any]:
    path = folder / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{folder} is not a neuralops checkpoint: {CONFIG_NAME} is missing")
    with open(path, encoding="utf-8") as fh:
        payload = json.load(fh)
    version = payload.get("format_version")
    if not isinstance(version, int):
        raise ValueError(f"{path}: format_version must be an integer, got {version!r}")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{path} has format_version {version}, newer than {FORMAT_VERSION} which this neuralops "
            f"({__version__}) reads; upgrade neuralops (the file was written by neuralops "
            f"{payload.get('neuralops_version', '?')})"
        )
    for key in ("model_type", "config"):
        if key not in payload:
            raise ValueError(f"{path}: the key {key!r} is missing")
    return payload


def load_pretrained(folder: str | os.PathLike[str], **kwargs: Any) -> nn.Module:
    """Load any registered model from a local folder, dispatching on its ``model_type``."""
    payload = _read_config(Path(folder))
    return _lookup(payload["model_type"]).from_pretrained(folder, **kwargs)  # type: ignore[attr-defined]


class PretrainedMixin:
    """``save_pretrained``/``from_pretrained`` and parameter counting for an ``nn.Module`` built as
    ``cls(config)``, with ``config_class`` a :class:`ModelConfig` dataclass and ``self.config`` its instance."""

    config_class: ClassVar[type[ModelConfig]]
    config: ModelConfig

    def num_parameters(self, real: bool = True) -> int:
        """Number of scalars; with ``real=True`` a complex entry counts as 2 (the package-wide convention)."""
        return sum(
            p.numel() * (2 if real and p.is_complex() else 1)
            for p in self.parameters()  # type: ignore[attr-defined]
        )

    def n_params(self) -> int:
        """Real scalar count, ``num_parameters(real=True)``."""
        return self.num_parameters(real=True)

    def save_pretrained(
        self,
        folder: str | os.PathLike[str],
        *,
        normalizer: Any = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Path:
        """Write ``config.json`` and ``model.safetensors`` to ``folder`` atomically; return the folder.

        ``normalizer`` is a JSON-able mapping or an object with ``to_dict()`` (e.g.
        :class:`neuralops.data.Normalizer`); ``metadata`` is free JSON-able information. The files are
        written to a temporary folder beside ``folder``, which is then renamed (or whose files replace
        those of an existing ``folder`` with ``os.replace``), so readers never see a partial checkpoint.
        """
        folder = Path(folder)
        if normalizer is not None and not isinstance(normalizer, Mapping):
            normalizer = normalizer.to_dict()
        model_type = self.config_class.model_type
        payload = {
            "format_version": FORMAT_VERSION,
            "model_type": model_type,
            "config": self.config.to_dict(),
            "neuralops_version": __version__,
            "normalizer": normalizer,
            "metadata": dict(metadata or {}),
        }
        text = json.dumps(payload, indent=2, sort_keys=False)  # fails early if not JSON-able
        tensors, aliases = dedup_state_dict(self.state_dict())  # type: ignore[attr-defined]
        header = {"model_type": model_type, "format_version": str(FORMAT_VERSION)}
        if aliases:
            header["aliases"] = json.dumps(aliases)

        return write_folder(
            folder,
            {
                WEIGHTS_NAME: lambda p: save_file(tensors, str(p), metadata=header),
                CONFIG_NAME: lambda p: p.write_text(text + "\n", encoding="utf-8"),
            },
        )

    @classmethod
    def from_pretrained(
        cls,
        folder: str | os.PathLike[str],
        map_location: str | torch.device = "cpu",
        strict: bool = True,
    ) -> Self:
        """Load a model saved by :meth:`save_pretrained` from a local folder (no pickle).

        Raises ``ValueError`` for another ``model_type``, a newer ``format_version``, unknown config
        keys, and (with ``strict=True``) missing or unexpected weights, all listed by name.
        """
        folder = Path(folder)
        payload = _read_config(folder)
        expected = cls.config_class.model_type
        if payload["model_type"] != expected:
            raise ValueError(
                f"{folder} holds a {payload['model_type']!r} model, not {expected!r} "
                f"({cls.__name__}); load it with {MODELS.get(payload['model_type'], cls).__name__}"
                f".from_pretrained or neuralops.models.load_pretrained"
            )
        model = cls(cls.config_class.from_dict(payload["config"]))  # type: ignore[call-arg]
        weights = folder / WEIGHTS_NAME
        if not weights.is_file():
            raise FileNotFoundError(f"{folder}: {WEIGHTS_NAME} is missing")
        state = load_file(str(weights), device=str(map_location))
        with safe_open(str(weights), framework="pt") as fh:
            header = fh.metadata() or {}
        for alias, source in json.loads(header.get("aliases", "{}")).items():
            state[alias] = state[source]
        own = model.state_dict()  # type: ignore[attr-defined]
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        if strict and (missing or unexpected):
            raise ValueError(
                f"{weights} does not match {cls.__name__}({payload['config']}): "
                f"missing keys {missing}, unexpected keys {unexpected}"
            )
        if missing or unexpected:
            logger.warning(
                "%s: missing keys %s, unexpected keys %s (strict=False)",
                weights,
                missing,
                unexpected,
            )
        mismatched = [
            f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
            for k in sorted(set(own) & set(state))
            if state[k].shape != own[k].shape
        ]
        if mismatched:
            raise ValueError(f"{weights}: shape mismatch for {mismatched}")
        # keep the stored precision (a float64 model comes back float64, bitwise)
        stored = {v.dtype for v in state.values() if v.is_floating_point()}
        built = {v.dtype for v in own.values() if v.is_floating_point()}
        if len(stored) == 1 and stored != built:
            dtype = stored.pop()  # real tensors only: complex (spectral) weights keep their type
            model._apply(lambda t: t.to(dtype) if t.is_floating_point() else t)  # type: ignore[attr-defined]
        model.load_state_dict(  # type: ignore[attr-defined]
            {k: v for k, v in state.items() if k in own}, strict=False
        )
        return model.to(map_location)  # type: ignore[attr-defined]


def dedup_state_dict(
    state: Mapping[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Contiguous CPU copies with tensors that share storage (tied weights) stored once.

    Returns the tensors to write and ``alias -> stored name`` for the dropped duplicates.
    """
    tensors: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    seen: dict[tuple[int, int, tuple[int, ...], tuple[int, ...], torch.dtype], str] = {}
    for name, t in state.items():
        key = (
            t.untyped_storage().data_ptr(),
            t.storage_offset(),
            tuple(t.shape),
            t.stride(),
            t.dtype,
        )
        if t.numel() and key in seen:
            aliases[name] = seen[key]
            continue
        seen[key] = name
        tensors[name] = t.detach().to("cpu").contiguous().clone()
    return tensors, aliases
