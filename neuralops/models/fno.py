"""Fourier neural operator (Li et al., arXiv 2010.08895), the baseline of the model zoo.

Two block styles:

- ``"li2020"`` (default): the original Darcy script, ``x <- GELU(K x + W x + b)``;
- ``"neuralop2"``: neuraloperator 2.0's default FNO block, ``x <- GELU(K x + b_K + W_skip x)`` then
  ``x <- MLP(x) + g * x`` (a channel MLP of expansion 0.5 and a soft-gating skip ``g``, one weight per
  channel), with bias-free linear Fourier skips and lifting/projection MLPs of ratio 2.
  :meth:`FNOConfig.preset` ``("neuralop2")`` has exactly the ``numel`` of ``neuralop.models.FNO(n_modes=
  (16, 16), hidden_channels=32)`` (602,977; 1,192,801 real scalars).

Mode counting: ``modes[k]`` positive **and** ``modes[k]`` negative frequencies on every axis but the last,
``modes[-1]`` non-negative ones on the last (real FFT) axis. neuraloperator's ``n_modes=(16, 16)`` is our
``modes=(8, 9)``; the original paper's ``modes=12`` is our ``(12, 12)``.
"""

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
    """Hyperparameters of :class:`FNO` (defaults: the FNO paper's 2D Darcy model; ``lifting_channels=0``
    makes the lift a single linear map; ``style`` picks the block, see the module docstring)."""

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
    style: str = "li2020"

    def __post_init__(self) -> None:
        object.__setattr__(self, "modes", tuple(int(m) for m in self.modes))
        if self.style not in FNO_STYLES:
            raise ValueError(f"FNOConfig.style must be one of {FNO_STYLES}, got {self.style!r}")

    @classmethod
    def preset(cls, name: str, **overrides) -> FNOConfig:
        """A named configuration (:data:`FNO_PRESETS`) with ``overrides`` applied.

        >>> FNOConfig.preset("neuralop2").modes, FNO(FNOConfig.preset("neuralop2")).num_parameters(real=False)
        ((8, 9), 602977)
        """
        if name not in FNO_PRESETS:
            raise ValueError(f"unknown FNO preset {name!r}; choose one of {sorted(FNO_PRESETS)}")
        return cls(**{**FNO_PRESETS[name], **overrides})


FNO_STYLES = ("li2020", "neuralop2")


def _neuralop2(width: int, modes: tuple[int, ...]) -> dict:
    return dict(
        modes=modes,
        width=width,
        n_layers=4,
        lifting_channels=2 * width,
        projection_channels=2 * width,
        style="neuralop2",
    )


#: ``neuralop2``: neuraloperator 2.0's default FNO, ``n_modes=(16, 16)``, width 32 (602,977 numel);
#: ``neuralop2_w28``: width 28, ``n_modes=(12, 12)`` (537,013 numel: within 10 % of MgNO ``darcy_rough``);
#: ``li2020``: the original Darcy script (modes 12, width 32, 1,188,353 numel).
FNO_PRESETS: dict[str, dict] = {
    "neuralop2": _neuralop2(32, (8, 9)),
    "neuralop2_w28": _neuralop2(28, (6, 7)),
    "li2020": dict(
        modes=(12, 12), width=32, n_layers=4, lifting_channels=0, projection_channels=128
    ),
}


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
        if config.lifting_channels:
            self.lift = nn.Sequential(
                conv(c_in, config.lifting_channels, 1),
                nn.GELU(),
                conv(config.lifting_channels, config.width, 1),
            )
        else:  # a single linear lift (the original script's fc0)
            self.lift = conv(c_in, config.width, 1)
        self.spectral = nn.ModuleList(
            SpectralConv(config.width, config.width, config.modes) for _ in range(config.n_layers)
        )
        w, n = config.width, config.n_layers
        if config.style == "li2020":
            self.pointwise = nn.ModuleList(conv(w, w, 1) for _ in range(n))
        else:  # neuralop2: bias-free Fourier skip + spectral bias, channel MLP with soft gating
            self.pointwise = nn.ModuleList(conv(w, w, 1, bias=False) for _ in range(n))
            self.spectral_bias = nn.ParameterList(
                nn.Parameter(torch.zeros(1, w, *[1] * d)) for _ in range(n)
            )
            self.channel_mlp = nn.ModuleList(
                nn.Sequential(conv(w, w // 2, 1), nn.GELU(), conv(w // 2, w, 1)) for _ in range(n)
            )
            self.gates = nn.ParameterList(
                nn.Parameter(torch.ones(1, w, *[1] * d)) for _ in range(n)
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
        last = len(self.spectral) - 1
        for i, (spec, pw) in enumerate(zip(self.spectral, self.pointwise, strict=True)):
            if self.config.style == "li2020":
                x = spec(x) + pw(x)
                if i < last:
                    x = F.gelu(x)
                continue
            gated = self.gates[i] * x
            x = F.gelu(spec(x) + self.spectral_bias[i] + pw(x))
            x = self.channel_mlp[i](x) + gated
            if i < last:
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
