"""Normalizers: map physical-unit tensors to a training scale and back.

A normalizer holds statistics per sample key (``"input"``, ``"target"``), each shaped ``(C, 1, ..., 1)``
(per channel) or ``(C, *S)`` (pointwise), so they broadcast from the right over channels-first tensors with or
without batch and time axes: ``(C, *S)``, ``(batch, C, *S)``, ``(batch, T, C, *S)``. Graph features ``(n_nodes,
C)`` use ``channels_last=True``.

Datasets return physical units; the model wrapper encodes inputs and decodes outputs in train and eval alike.
Statistics are float64 and cast to the tensor's dtype and device on use.

>>> import torch
>>> norm = GaussianNormalizer({"input": [1.0, -2.0]}, {"input": [2.0, 0.5]}, eps=0.0, spatial_ndim=2)
>>> x = torch.ones(4, 2, 8, 8)
>>> torch.allclose(norm.decode(norm.encode(x), "input"), x)
True

Saved as ``normalizer.json`` (kind, eps, per-channel values inline); pointwise arrays go to
``normalizer.safetensors`` beside it. Nothing is pickled.
"""

from __future__ import annotations

import abc
import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

__all__ = [
    "Normalizer",
    "GaussianNormalizer",
    "RangeNormalizer",
    "IdentityNormalizer",
    "FORMAT",
    "normalizer_of",
]

FORMAT = "neuralops-normalizer/1"
ArrayLike = torch.Tensor | np.ndarray | Iterable[float]


def _stat(values: ArrayLike, spatial_ndim: int | None, what: str) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(values, dtype=np.float64))
    if t.ndim == 0:
        t = t.reshape(1)
    if t.ndim == 1:
        if spatial_ndim is None:
            raise ValueError(
                f"{what} has shape {tuple(t.shape)}: pass spatial_ndim=d to broadcast per-channel "
                f"statistics over (C, *S) tensors, or give them the shape ({t.shape[0]}, 1, ..., 1)"
            )
        t = t.reshape(-1, *([1] * spatial_ndim))
    return t.contiguous()


class Normalizer(abc.ABC):
    """Base of the normalizers: per-key statistics, :meth:`encode`/:meth:`decode`, JSON round trip.

    Subclasses name their statistics in ``stat_names`` and implement ``_encode``/``_decode`` on tensors whose
    statistics have already been broadcast.
    """

    kind: ClassVar[str]
    stat_names: ClassVar[tuple[str, ...]]
    _registry: ClassVar[dict[str, type[Normalizer]]] = {}

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        Normalizer._registry[cls.kind] = cls

    def __init__(
        self, stats: Mapping[str, Mapping[str, ArrayLike]], spatial_ndim: int | None
    ) -> None:
        self.stats: dict[str, dict[str, torch.Tensor]] = {}
        for key, group in stats.items():
            missing = [s for s in self.stat_names if s not in group]
            if missing:
                raise ValueError(f"{type(self).__name__}: statistics of {key!r} lack {missing}")
            self.stats[key] = {
                s: _stat(group[s], spatial_ndim, f"{s}[{key!r}]") for s in self.stat_names
            }
            shapes = {tuple(t.shape) for t in self.stats[key].values()}
            if len(shapes) > 1:
                raise ValueError(
                    f"{type(self).__name__}: statistics of {key!r} differ in shape: {shapes}"
                )
        self._cache: dict[tuple, dict[str, torch.Tensor]] = {}

    # ------------------------------------------------------------------ apply
    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self.stats)

    @property
    def pointwise(self) -> bool:
        """True if any statistic varies over space (shape ``(C, *S)`` with some ``S`` > 1)."""
        return any(t.shape[1:].numel() > 1 for g in self.stats.values() for t in g.values())

    def _get(self, x: torch.Tensor, key: str, channels_last: bool) -> dict[str, torch.Tensor]:
        if key not in self.stats:
            raise KeyError(
                f"{type(self).__name__} has no statistics for {key!r}; it has {list(self.stats)}"
            )
        cache_key = (key, x.device, x.dtype, channels_last)
        hit = self._cache.get(cache_key)
        if hit is None:
            group = self.stats[key]
            if channels_last:
                group = {s: t.reshape(t.shape[0], -1).T for s, t in group.items()}
            hit = {s: t.to(device=x.device, dtype=x.dtype) for s, t in group.items()}
            self._cache[cache_key] = hit
        ref = next(iter(hit.values()))
        try:
            torch.broadcast_shapes(ref.shape, x.shape)
        except RuntimeError:
            raise ValueError(
                f"{type(self).__name__}: statistics of {key!r} have shape {tuple(ref.shape)} and do not "
                f"broadcast over a tensor of shape {tuple(x.shape)}; expected channels-first "
                "(batch, [T,] C, *S) (graph features: channels_last=True) at the resolution the "
                "statistics were computed for"
            ) from None
        return hit

    def encode(
        self, x: torch.Tensor, key: str = "input", *, channels_last: bool = False
    ) -> torch.Tensor:
        """Physical units -> normalized. ``x``: ``([batch,] [T,] C, *S)``, or ``(n_nodes, [T,] C)`` with
        ``channels_last=True``. Returns the same shape."""
        return self._encode(x, self._get(x, key, channels_last))

    def decode(
        self, x: torch.Tensor, key: str = "target", *, channels_last: bool = False
    ) -> torch.Tensor:
        """Normalized -> physical units; the inverse of :meth:`encode`. Same shapes."""
        return self._decode(x, self._get(x, key, channels_last))

    @abc.abstractmethod
    def _encode(self, x: torch.Tensor, s: dict[str, torch.Tensor]) -> torch.Tensor: ...

    @abc.abstractmethod
    def _decode(self, x: torch.Tensor, s: dict[str, torch.Tensor]) -> torch.Tensor: ...

    # ------------------------------------------------------------------ serialisation
    def _options(self) -> dict[str, Any]:
        return {}

    def to_dict(self, *, arrays_inline: bool = True) -> dict[str, Any]:
        """A JSON-able description. With ``arrays_inline=False`` statistics keep only their shapes (the values
        go to safetensors, see :meth:`save`)."""
        stats = {
            key: {
                s: {
                    "shape": list(t.shape),
                    **({"data": t.flatten().tolist()} if arrays_inline else {}),
                }
                for s, t in group.items()
            }
            for key, group in self.stats.items()
        }
        return {"format": FORMAT, "kind": self.kind, **self._options(), "stats": stats}

    @classmethod
    def from_dict(
        cls, d: Mapping[str, Any], arrays: Mapping[str, torch.Tensor] | None = None
    ) -> Normalizer:
        """Rebuild from :meth:`to_dict`; ``arrays`` (``"input.mean"`` -> tensor) supplies values not inline."""
        if d.get("format") != FORMAT:
            raise ValueError(f"normalizer format {d.get('format')!r} is not {FORMAT!r}")
        stats: dict[str, dict[str, torch.Tensor]] = {}
        for key, group in d.get("stats", {}).items():
            stats[key] = {}
            for s, entry in group.items():
                if "data" in entry:
                    value = torch.tensor(entry["data"], dtype=torch.float64)
                elif arrays is not None and f"{key}.{s}" in arrays:
                    value = arrays[f"{key}.{s}"].to(torch.float64)
                else:
                    raise ValueError(
                        f"normalizer statistic {key}.{s} has no values (missing safetensors?)"
                    )
                stats[key][s] = value.reshape(entry["shape"])
        options = {k: v for k, v in d.items() if k not in ("format", "kind", "stats")}
        return Normalizer.build(d.get("kind"), stats, **options)

    @staticmethod
    def kinds() -> tuple[str, ...]:
        """The registered kinds: ``("gaussian", "identity", "range")``."""
        return tuple(sorted(Normalizer._registry))

    @staticmethod
    def build(
        kind: str, stats: Mapping[str, Mapping[str, ArrayLike]], **options: Any
    ) -> Normalizer:
        """A normalizer of ``kind`` from ``{key: {stat: array}}`` (``mean``/``std`` or ``min``/``max``,
        shaped ``(C, 1, ..., 1)`` or ``(C, *S)``; other statistics are ignored) and its options."""
        sub = Normalizer._registry.get(kind)
        if sub is None:
            raise ValueError(f"unknown normalizer kind {kind!r}; known: {list(Normalizer.kinds())}")
        return sub._build(stats, **options)

    @classmethod
    def _build(cls, stats: Mapping[str, Mapping[str, ArrayLike]], **options: Any) -> Normalizer:
        args = [{k: g[s] for k, g in stats.items()} for s in cls.stat_names]
        return cls(*args, **options)

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``normalizer.json`` into the folder ``path`` (or to ``path`` if it ends in ``.json``);
        pointwise statistics go to a ``.safetensors`` file of the same stem. Returns the JSON path."""
        from safetensors.torch import save_file

        path = Path(path)
        target = path if path.suffix == ".json" else path / "normalizer.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        d = self.to_dict(arrays_inline=not self.pointwise)
        if self.pointwise:
            blob = target.with_suffix(".safetensors")
            tensors = {
                f"{k}.{s}": t.contiguous() for k, g in self.stats.items() for s, t in g.items()
            }
            save_file(tensors, str(blob), metadata={"format": FORMAT})
            d["arrays"] = blob.name
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(json.dumps(d, indent=1))
        os.replace(tmp, target)
        return target

    @classmethod
    def load(cls, path: str | os.PathLike) -> Normalizer:
        """Read a normalizer written by :meth:`save` (a folder or the JSON file)."""
        from safetensors.torch import load_file

        path = Path(path)
        target = path if path.suffix == ".json" else path / "normalizer.json"
        d = json.loads(target.read_text())
        arrays = load_file(str(target.parent / d.pop("arrays"))) if "arrays" in d else None
        return cls.from_dict(d, arrays)

    # ------------------------------------------------------------------ fitting
    @classmethod
    def fit(
        cls,
        dataset,
        kind: str | None = None,
        *,
        keys: Iterable[str] = ("input", "target"),
        pointwise: bool = False,
        spatial_ndim: int | None = None,
        **options: Any,
    ) -> Normalizer:
        """Statistics streamed over every item of a map-style dataset of dict samples, in float64.

        ``kind`` defaults to the class's own (``GaussianNormalizer.fit(ds)``); on :class:`Normalizer` it is
        required. ``spatial_ndim`` defaults to ``dataset.spatial_ndim``. Per channel, leading axes (time)
        and space are reduced; pointwise, only leading axes and samples. Memory holds one sample.
        """
        kind = kind or getattr(cls, "kind", None)
        if kind not in Normalizer._registry:
            raise ValueError(f"kind must be one of {list(Normalizer.kinds())}, got {kind!r}")
        d = spatial_ndim if spatial_ndim is not None else getattr(dataset, "spatial_ndim", None)
        if d is None:
            raise ValueError(
                "pass spatial_ndim: the dataset does not say how many spatial axes it has"
            )
        acc = {key: _Moments() for key in keys}
        for i in range(len(dataset)):
            sample = dataset[i]
            for key, m in acc.items():
                x = torch.as_tensor(sample[key]).to(torch.float64)
                c_axis = x.ndim - d - 1
                x = x.reshape(-1, *x.shape[c_axis:])  # (L, C, *S)
                if not pointwise:
                    x = x.movedim(1, 0).reshape(x.shape[1], -1).T  # (L*prod(S), C)
                    x = x.reshape(x.shape[0], x.shape[1], *([1] * d))
                m.add(x)
        if not acc or any(m.n == 0 for m in acc.values()):
            raise ValueError("cannot fit a normalizer on an empty dataset")
        return Normalizer.build(kind, {key: m.result() for key, m in acc.items()}, **options)

    def __repr__(self) -> str:
        parts = [f"{k}: {next(iter(g.values())).shape[0]} ch" for k, g in self.stats.items()]
        opts = ", ".join(f"{k}={v}" for k, v in self._options().items())
        mode = "pointwise" if self.pointwise else "per-channel"
        return f"{type(self).__name__}({', '.join(parts)}; {mode}{', ' + opts if opts else ''})"


class _Moments:
    """Streaming count, mean, M2, min and max over the leading axis (Chan's parallel update)."""

    def __init__(self) -> None:
        self.n = 0
        self.mean = self.m2 = self.lo = self.hi = None

    def add(self, x: torch.Tensor) -> None:
        k = x.shape[0]
        mu = x.mean(0)
        s2 = ((x - mu) ** 2).sum(0)
        lo, hi = x.amin(0), x.amax(0)
        if self.mean is None:
            self.n, self.mean, self.m2, self.lo, self.hi = k, mu, s2, lo, hi
            return
        tot = self.n + k
        delta = mu - self.mean
        self.mean = self.mean + delta * (k / tot)
        self.m2 = self.m2 + s2 + delta**2 * (self.n * k / tot)
        self.lo, self.hi = torch.minimum(self.lo, lo), torch.maximum(self.hi, hi)
        self.n = tot

    def result(self) -> dict[str, torch.Tensor]:
        return {
            "mean": self.mean,
            "std": torch.sqrt(self.m2 / self.n),
            "min": self.lo,
            "max": self.hi,
        }


class GaussianNormalizer(Normalizer):
    """``(x - mean) / (std + eps)``.

    Parameters
    ----------
    mean, std:
        Per key (``{"input": ..., "target": ...}``), shaped ``(C, 1, ..., 1)`` or ``(C, *S)``; 1-D ``(C,)``
        arrays need ``spatial_ndim``.
    eps:
        Added to ``std`` so constant channels do not divide by zero.
    """

    kind = "gaussian"
    stat_names = ("mean", "std")

    def __init__(
        self,
        mean: Mapping[str, ArrayLike],
        std: Mapping[str, ArrayLike],
        eps: float = 1e-6,
        *,
        spatial_ndim: int | None = None,
    ) -> None:
        if set(mean) != set(std):
            raise ValueError(
                f"mean and std need the same keys, got {sorted(mean)} and {sorted(std)}"
            )
        self.eps = float(eps)
        super().__init__({k: {"mean": mean[k], "std": std[k]} for k in mean}, spatial_ndim)

    def _options(self) -> dict[str, Any]:
        return {"eps": self.eps}

    def _encode(self, x, s):
        return (x - s["mean"]) / (s["std"] + self.eps)

    def _decode(self, x, s):
        return x * (s["std"] + self.eps) + s["mean"]


class RangeNormalizer(Normalizer):
    """Affine map of ``[min, max]`` onto ``[low, high]`` (default ``[0, 1]``), per channel or pointwise.

    ``eps`` is added to ``max - min``, so a constant channel maps to ``low`` instead of dividing by zero.
    """

    kind = "range"
    stat_names = ("min", "max")

    def __init__(
        self,
        min: Mapping[str, ArrayLike],
        max: Mapping[str, ArrayLike],
        *,
        low: float = 0.0,
        high: float = 1.0,
        eps: float = 1e-12,
        spatial_ndim: int | None = None,
    ) -> None:
        if set(min) != set(max):
            raise ValueError(f"min and max need the same keys, got {sorted(min)} and {sorted(max)}")
        if not (math.isfinite(low) and math.isfinite(high) and high > low):
            raise ValueError(f"RangeNormalizer needs finite low < high, got low={low}, high={high}")
        self.low, self.high, self.eps = float(low), float(high), float(eps)
        super().__init__({k: {"min": min[k], "max": max[k]} for k in min}, spatial_ndim)

    def _options(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "eps": self.eps}

    def _scale(self, s):
        return (self.high - self.low) / (s["max"] - s["min"] + self.eps)

    def _encode(self, x, s):
        return (x - s["min"]) * self._scale(s) + self.low

    def _decode(self, x, s):
        return (x - self.low) / self._scale(s) + s["min"]


class IdentityNormalizer(Normalizer):
    """Leaves tensors unchanged (every key is accepted)."""

    kind = "identity"
    stat_names = ()

    def __init__(self) -> None:
        super().__init__({}, None)

    @classmethod
    def _build(cls, stats, **options):
        return cls()

    def _get(self, x, key, channels_last):
        return {}

    def _encode(self, x, s):
        return x

    def _decode(self, x, s):
        return x


def normalizer_of(folder: str | os.PathLike) -> Normalizer | None:
    """The normalizer saved with a model folder: ``normalizer.json`` beside the weights, else the
    ``normalizer`` field of its ``config.json``; None when it has neither."""
    folder = Path(folder)
    if (folder / "normalizer.json").is_file():
        return Normalizer.load(folder)
    config = folder / "config.json"
    if config.is_file():
        payload = json.loads(config.read_text(encoding="utf-8"))
        if payload.get("normalizer"):
            return Normalizer.from_dict(payload["normalizer"])
    return None
