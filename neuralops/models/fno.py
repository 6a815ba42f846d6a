"""Fourier neural operator (Li et al., arXiv 2010.08895), the baseline of the model zoo."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from neuralops.models.base import ModelConfig, PretrainedMixin, register_model
from neuralops.models.spectral_conv import SpectralConv

__all__ = ["FNO", "FNOConfig"]


@dataclass(frozen=True)
class FNOConfig(ModelConfig):
    """Hyperparameters of :class:`FNO` (defaults: the FNO paper's 2D Darcy model)."""

    model_type: ClassVar[str] = "fno"

    in_channels: int = 1
    out_channels: int = 1
    modes: tuple[int, ...] = (12, 12)
    width: int = 32
    n_layers: int = 4
    lifting_channels: int = 128
    projection_channels: int = 128
    positional_embedding: bool = True
    padding: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "modes", tuple(int(m) for m in self.modes))


@register_model
class FNO(PretrainedMixin, nn.Module):
    """Lift -> ``n_layers`` x (spectral conv + 1x1 conv, GELU) -> project.

    Shapes: input (batch, in_channels, *spatial) -> output (batch, out_channels, *spatial),
    with ``len(spatial) == len(config.modes)``. With ``positional_embedding`` the grid
    coordinates in [0, 1] are appended to the input channels. ``padding`` zero-pads every spatial
    axis on the high side before the Fourier layers (for non-periodic problems) and crops after.

    >>> model = FNO(FNOConfig(modes=(4, 4), width=8, lifting_channels=16, projection_channels=16))
    >>> model(torch.zeros(2, 1, 16, 16)).shape
    torch.Size([2, 1, 16, 16])
    """

    config_class = FNOConfig

    def __init__(self, config: FNOConfig | None = None, **overrides) -> None:
        super().__init__()
        config = config or FNOConfig()
        if overrides:
            config = FNOConfig(**{**asdict(config), **overrides})
        self.config = config
        d = len(config.modes)
        conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[d]
        c_in = config.in_channels + (d if config.positional_embedding else 0)
        self.lift = nn.Sequential(
            conv(c_in, config.lifting_channels, 1),
            nn.GELU(),
            conv(config.lifting_channels, config.width, 1),
        )
        self.spectral = nn.ModuleList(
            SpectralConv(config.width, config.width, config.modes) for _ in range(config.n_layers)
        )
        self.pointwise = nn.ModuleList(
            conv(config.width, config.width, 1) for _ in range(config.n_layers)
        )
        self.project = nn.Sequential(
            conv(config.width, config.projection_channels, 1),
            nn.GELU(),
            conv(config.projection_channels, config.out_channels, 1),
        )

    def forward(self, x: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:
        """(batch, in_channels, *spatial) -> (batch, out_channels, *spatial); ``t`` is ignored."""
        d = len(self.config.modes)
        if x.ndim != d + 2 or x.shape[1] != self.config.in_channels:
            raise ValueError(
                f"expected input (batch, {self.config.in_channels}, "
                f"{', '.join(['n'] * d)}), got {tuple(x.shape)}"
            )
        if self.config.positional_embedding:
            x = torch.cat([x, _grid(x.shape[0], x.shape[2:], x)], dim=1)
        x = self.lift(x)
        p = self.config.padding
        if p:
            x = F.pad(x, [0, p] * d)
        for i, (spec, pw) in enumerate(zip(self.spectral, self.pointwise, strict=True)):
            x = spec(x) + pw(x)
            if i < len(self.spectral) - 1:
                x = F.gelu(x)
        if p:
            x = x[(..., *[slice(0, -p)] * d)]
        return self.project(x)

    def extra_repr(self) -> str:
        return f"params={self.n_params():,}"


def _grid(batch: int, spatial: torch.Size, like: torch.Tensor) -> torch.Tensor:
    axes = [torch.linspace(0, 1, n, dtype=like.dtype, device=like.device) for n in spatial]
    mesh = torch.stack(torch.meshgrid(*axes, indexing="ij"))
    return mesh.unsqueeze(0).expand(batch, *mesh.shape)
