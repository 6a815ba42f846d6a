"""The DCDM network: a convolutional approximate inverse of the pressure Laplacian (Kaneda et al.,
ICML 2023, arXiv 2205.10763; code ayano721/2023_DCDM).

Architecture (``levels=1`` is the reference code's)::

    x --conv3x3 (linear, 1 -> width)--> conv+ReLU --[blocks_fine residual blocks]--> conv+ReLU = f0
    f0 --avgpool 2--> [blocks_coarse residual blocks] = c
    upsample_nearest(c) + f0 --> [blocks_up residual blocks] --conv1x1 (width -> 1)--> y

A residual block is ``h <- ReLU(conv(ReLU(conv(h)))) + h`` with 3x3(x3) convolutions. With
``levels > 1`` the coarse stage repeats (pool, blocks) on every coarser level and the up path adds
each level's features back (a U-Net with additive skips). The network is fully convolutional, so
one set of weights applies to any grid; a size not divisible by ``2**levels`` is zero-padded at the
high end and the output cropped back (:meth:`DCDMNet.padding_for` says how much).
Reference sizes (3-D, width 16): :meth:`DCDMConfig.preset` ``("ref64")`` has 14 hidden convolutions
and 97,457 parameters, ``("ref128")`` 22 and 152,881, as the paper's 64^3 and 128^3 models.

Shapes: input ``(batch, 1, *grid)`` -> output ``(batch, 1, *grid)``; ``mask`` ``(batch, 1, *grid)``
or ``grid`` (1 = unknown) zeroes the masked-out cells of input and output.

>>> net = DCDMNet(DCDMConfig(dim=2, width=4))
>>> net(torch.randn(2, 1, 12, 12)).shape
torch.Size([2, 1, 12, 12])
>>> DCDMNet(DCDMConfig.preset("ref64")).num_parameters()
97457
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from neuralops.models.base import ModelConfig, PretrainedMixin, register_model

__all__ = ["DCDMConfig", "DCDMNet", "DCDM_PRESETS"]

#: the reference code's two 3-D models (hidden 3x3x3 convolutions: 14 and 22)
DCDM_PRESETS = {
    "ref64": dict(dim=3, width=16, levels=1, blocks_fine=1, blocks_coarse=3, blocks_up=2),
    "ref128": dict(dim=3, width=16, levels=1, blocks_fine=2, blocks_coarse=5, blocks_up=3),
}


@dataclass(frozen=True)
class DCDMConfig(ModelConfig):
    """Hyperparameters of :class:`DCDMNet`: spatial ``dim`` (2 or 3), channel ``width``, pooling
    ``levels`` and the number of residual blocks (two convolutions each) per stage. ``bias=False``
    drops every bias, which makes the network positively homogeneous, ``f(c r) = c f(r)`` for
    c > 0, so its output does not depend on how the residual was scaled (the reference has biases;
    with them a network trained on unit-norm vectors of one grid sees smaller entries on a finer
    grid)."""

    model_type: ClassVar[str] = "dcdm"

    dim: int = 3
    width: int = 16
    levels: int = 1
    blocks_fine: int = 1
    blocks_coarse: int = 3
    blocks_up: int = 2
    bias: bool = True

    def __post_init__(self) -> None:
        if self.dim not in (2, 3):
            raise ValueError(f"DCDMConfig.dim must be 2 or 3, got {self.dim!r}")
        for name in ("width", "levels"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"DCDMConfig.{name} must be >= 1, got {getattr(self, name)!r}")
        for name in ("blocks_fine", "blocks_coarse", "blocks_up"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"DCDMConfig.{name} must be >= 0, got {getattr(self, name)!r}")

    @classmethod
    def preset(cls, name: str, **overrides) -> DCDMConfig:
        """A named configuration from :data:`DCDM_PRESETS` with ``overrides`` applied."""
        if name not in DCDM_PRESETS:
            raise ValueError(f"unknown DCDM preset {name!r}; choose one of {sorted(DCDM_PRESETS)}")
        return cls(**{**DCDM_PRESETS[name], **overrides})


class _ResidualBlock(nn.Module):
    """``h + ReLU(conv(ReLU(conv(h))))``: (batch, width, *S) -> (batch, width, *S)."""

    def __init__(self, conv: Any, width: int) -> None:
        super().__init__()
        self.conv1 = conv(width, width, 3)
        self.conv2 = conv(width, width, 3)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv2(F.relu(self.conv1(h)))) + h


@register_model
class DCDMNet(PretrainedMixin, nn.Module):
    """The DCDM approximate inverse ``q = f(r)``: (batch, 1, *grid) -> (batch, 1, *grid)."""

    config_class = DCDMConfig

    def __init__(self, config: DCDMConfig | None = None) -> None:
        super().__init__()
        config = config or DCDMConfig()
        self.config = config
        base = nn.Conv3d if config.dim == 3 else nn.Conv2d
        conv = partial(base, padding="same", bias=config.bias)
        w = config.width
        self.lift = conv(1, w, 3)  # linear
        self.fine_in = conv(w, w, 3)
        self.fine = nn.Sequential(*[_ResidualBlock(conv, w) for _ in range(config.blocks_fine)])
        self.fine_out = conv(w, w, 3)
        self.down = nn.ModuleList(
            nn.Sequential(*[_ResidualBlock(conv, w) for _ in range(config.blocks_coarse)])
            for _ in range(config.levels)
        )
        self.up = nn.ModuleList(
            nn.Sequential(*[_ResidualBlock(conv, w) for _ in range(config.blocks_up)])
            for _ in range(config.levels)
        )
        self.project = conv(w, 1, 1)
        self._pool = F.avg_pool3d if config.dim == 3 else F.avg_pool2d

    def padding_for(self, grid_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Zero cells added at the high end of each axis so that ``2**levels`` divides it."""
        m = 2**self.config.levels
        return tuple((-int(s)) % m for s in grid_shape)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` (batch, 1, *grid), optional ``mask`` (1 = unknown) -> (batch, 1, *grid)."""
        d = self.config.dim
        if x.ndim != d + 2 or x.shape[1] != 1:
            raise ValueError(
                f"DCDMNet(dim={d}) takes (batch, 1, *grid) with {d} grid axes, got {tuple(x.shape)}"
            )
        if mask is not None:
            mask = mask.to(x.dtype)
            x = x * mask
        grid = x.shape[2:]
        pad = self.padding_for(tuple(grid))
        if any(pad):
            x = F.pad(x, [p for axis in reversed(pad) for p in (0, axis)])
        h = F.relu(self.fine_in(self.lift(x)))
        h = F.relu(self.fine_out(self.fine(h)))
        skips = []
        for stage in self.down:
            skips.append(h)
            h = stage(self._pool(h, 2))
        for stage, skip in zip(reversed(self.up), reversed(skips), strict=True):
            h = stage(F.interpolate(h, scale_factor=2, mode="nearest") + skip)
        y = self.project(h)
        if any(pad):
            y = y[(slice(None), slice(None), *(slice(0, s) for s in grid))]
        return y if mask is None else y * mask

    def __repr__(self) -> str:
        c = self.config
        return (
            f"DCDMNet(dim={c.dim}, width={c.width}, levels={c.levels}, blocks=({c.blocks_fine}, "
            f"{c.blocks_coarse}, {c.blocks_up}), parameters={self.num_parameters():,})"
        )
