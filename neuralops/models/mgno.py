r"""MgNO: a neural operator whose linear operators are multigrid V-cycles (He, Liu, Xu, ICLR 2024,
arXiv 2310.19809; reference code xlliu2017/MgNO, MIT).

A layer is :math:`u \leftarrow \sigma(\mathrm{MgConv}(u) + W u + b)` with :math:`W` a 1x1 convolution;
the head is a bias-free 1x1 convolution ``width -> out_channels``. There is no lifting or projection MLP.

:class:`MgConv` (:math:`C_f \to C_u`, levels :math:`1 \dots L`, 1 finest) maps data :math:`f` to a state
:math:`u` with learned 3x3 convolutions: the "PDE operator" :math:`A: C_u \to C_f`, smoothers
:math:`S: C_f \to C_u`, restrictions :math:`\Pi` (of :math:`u`) and :math:`R` (of :math:`f`), 3x3 with
stride 2, and prolongations :math:`P`, stride-2 transposed convolutions (kernel 4 by default). No weight is
shared between steps or levels.

1. Finest level: :math:`u = S_0 f`, then :math:`\nu_1 - 1` steps :math:`u \leftarrow u + S(f - A u)`.
2. Descent :math:`\ell = 2 \dots L`: :math:`u_\ell = \Pi u_{\ell-1}`, :math:`f_\ell = R f_{\ell-1}` (or
   :math:`R(f_{\ell-1} - A u_{\ell-1})` with ``residual_restriction``), then :math:`\nu_\ell` smoothing steps.
3. Ascent :math:`\ell = L-1 \dots 1`: :math:`u_\ell \leftarrow N_\ell(u_\ell + P u_{\ell+1})` (:math:`N_\ell`
   the optional level norm), then :math:`\mu_\ell` smoothing steps. The level-1 :math:`u` is the output.

Boundary conditions are the padding of every convolution (``padding_mode``): ``"zeros"`` ~ homogeneous
Dirichlet, ``"circular"`` = periodic, ``"reflect"``/``"replicate"`` ~ Neumann. Every convolution pads
explicitly with ``F.pad`` and then runs unpadded, so all modes share one path; prolongation pads the coarse
grid by one cell in the same mode, applies the transposed convolution, and crops to the fine grid. So any grid
works (restriction gives ceil(n/2) points), as long as every side has at least :math:`2^{L-1}` points.

>>> model = MgNO(MgNOConfig(in_channels=1, width=8, n_layers=2, levels=3))
>>> model(torch.randn(2, 1, 17, 20)).shape
torch.Size([2, 1, 17, 20])
>>> MgNO(MgNOConfig.preset("darcy_rough")).num_parameters()
572661
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from neuralops.models.base import ModelConfig, PretrainedMixin, register_model

__all__ = ["MgConv", "MgNO", "MgNOConfig", "MGNO_PRESETS"]

PADDING_MODES = ("zeros", "circular", "reflect", "replicate")
LEVEL_NORMS = ("none", "group", "layer_chw")
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "gelu": nn.GELU,
    "relu": nn.ReLU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "identity": nn.Identity,
}
_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_CONV_T = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}


@dataclass(frozen=True)
class MgNOConfig(ModelConfig):
    """Hyperparameters of :class:`MgNO` (defaults: the reference Darcy-rough model, 572,661 parameters).

    Attributes:
        in_channels, out_channels: channels of the input and output functions.
        width: channels :math:`C_u` of every hidden function.
        n_layers: number of V-cycle layers.
        levels: grid levels :math:`L` of each V-cycle (every side needs :math:`\\ge 2^{L-1}` points).
        smoothing: ``levels`` pairs ``(pre, post)`` of smoothing steps, finest level first. ``None`` means
            ``((1, 0),) * (levels - 1) + ((2, 0),)``, the reference ``--num_iteration 10 ... 10 20``. The finest
            level needs ``pre >= 1`` (its first step is :math:`u = S_0 f`).
        padding_mode: ``"zeros"``, ``"circular"``, ``"reflect"`` or ``"replicate"``, the boundary condition.
        prolongation_kernels: kernel size (2-4) of the transposed convolution :math:`P`, one value for all
            levels or ``levels - 1`` values, finest first. The reference uses 4, and (3, 4, 3, 3, 4) for 211².
        residual_restriction: restrict the residual :math:`R(f - A u)` instead of :math:`R f`.
        smoother_bias: biases on the :math:`A` and :math:`S` convolutions.
        level_norm: ``"none"``; ``"group"`` (GroupNorm, one group, after each prolongation); ``"layer_chw"``
            (LayerNorm over (C, *spatial) with a per-pixel affine, as the reference NS model; needs
            ``grid_shape`` and fixes the resolution).
        pointwise: include the :math:`W u + b` 1x1 branch of each layer (the reference NS model omits it).
        activation: ``"gelu"``, ``"relu"``, ``"silu"``, ``"tanh"`` or ``"identity"``.
        global_residual: add the input to the output (needs ``in_channels == out_channels``).
        grid_shape: the training grid; required by ``level_norm="layer_chw"``, informative otherwise.
        spatial_dims: 1, 2 or 3 (the paper uses 2).
    """

    model_type: ClassVar[str] = "mgno"

    in_channels: int
    out_channels: int = 1
    width: int = 24
    n_layers: int = 4
    levels: int = 6
    smoothing: tuple[tuple[int, int], ...] | None = None
    padding_mode: str = "zeros"
    prolongation_kernels: int | tuple[int, ...] = 4
    residual_restriction: bool = False
    smoother_bias: bool = False
    level_norm: str = "none"
    pointwise: bool = True
    activation: str = "gelu"
    global_residual: bool = False
    grid_shape: tuple[int, ...] | None = None
    spatial_dims: int = 2

    def __post_init__(self) -> None:
        for name in ("in_channels", "out_channels", "width", "n_layers", "levels"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"MgNOConfig.{name} must be a positive integer, got {value!r}")
        if self.spatial_dims not in _CONV:
            raise ValueError(
                f"MgNOConfig.spatial_dims must be 1, 2 or 3, got {self.spatial_dims!r}"
            )
        L = self.levels
        smoothing = self.smoothing
        if smoothing is None:
            smoothing = ((1, 0),) * (L - 1) + ((2, 0),)
        smoothing = tuple(tuple(int(n) for n in pair) for pair in smoothing)
        if len(smoothing) != L or any(len(p) != 2 or min(p) < 0 for p in smoothing):
            raise ValueError(
                f"MgNOConfig.smoothing must hold levels={L} pairs (pre, post) of non-negative step "
                f"counts, got {self.smoothing!r}"
            )
        if smoothing[0][0] < 1:
            raise ValueError(
                "MgNOConfig.smoothing[0][0] must be >= 1: the finest level starts u = S0 f"
            )
        object.__setattr__(self, "smoothing", smoothing)
        kernels = self.prolongation_kernels
        if not isinstance(kernels, int):
            kernels = tuple(int(k) for k in kernels)
            object.__setattr__(self, "prolongation_kernels", kernels)
        per_level = self.level_kernels()
        if len(per_level) != L - 1 or any(k not in (2, 3, 4) for k in per_level):
            raise ValueError(
                f"MgNOConfig.prolongation_kernels must be one size in (2, 3, 4) or levels - 1 = {L - 1} "
                f"of them, got {self.prolongation_kernels!r}"
            )
        if self.padding_mode not in PADDING_MODES:
            raise ValueError(
                f"MgNOConfig.padding_mode must be one of {PADDING_MODES}, got {self.padding_mode!r}"
            )
        if self.level_norm not in LEVEL_NORMS:
            raise ValueError(
                f"MgNOConfig.level_norm must be one of {LEVEL_NORMS}, got {self.level_norm!r}"
            )
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"MgNOConfig.activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}"
            )
        if self.grid_shape is not None:
            shape = tuple(int(n) for n in self.grid_shape)
            if len(shape) != self.spatial_dims:
                raise ValueError(
                    f"MgNOConfig.grid_shape {shape} must have spatial_dims={self.spatial_dims} entries"
                )
            _check_grid(shape, L)
            object.__setattr__(self, "grid_shape", shape)
        elif self.level_norm == "layer_chw":
            raise ValueError(
                'MgNOConfig.level_norm="layer_chw" needs grid_shape (it fixes the grid)'
            )
        if self.global_residual and self.in_channels != self.out_channels:
            raise ValueError(
                f"MgNOConfig.global_residual needs in_channels == out_channels, got "
                f"{self.in_channels} and {self.out_channels}"
            )

    def level_kernels(self) -> tuple[int, ...]:
        """Prolongation kernel size per level transition, finest first (``levels - 1`` entries)."""
        k = self.prolongation_kernels
        return (k,) * (self.levels - 1) if isinstance(k, int) else tuple(k)

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> MgNOConfig:
        """A published configuration by name (see :data:`MGNO_PRESETS`), with optional field overrides.

        >>> MgNOConfig.preset("ns").width
        32
        """
        try:
            fields = MGNO_PRESETS[name]
        except KeyError:
            raise ValueError(
                f"unknown MgNO preset {name!r}; valid presets are {sorted(MGNO_PRESETS)}"
            ) from None
        return cls(**{**fields, **overrides})


_DARCY = dict(in_channels=1, out_channels=1, width=24, levels=6, padding_mode="zeros")

#: Reference configurations (xlliu2017/MgNO README commands) and their real parameter counts.
#: ``darcy_rough`` 572,661; ``multiscale`` (same command) 572,661; ``darcy_smooth`` (211² kernels)
#: 678,093; ``pipe`` 783,876; ``ns`` 2,885,194 (1,740,800 of them LayerNorm). The growing-channel Helmholtz
#: model (``MgNO_helm``) is not built.
MGNO_PRESETS: dict[str, dict[str, Any]] = {
    "darcy_rough": {**_DARCY, "n_layers": 4},
    "multiscale": {**_DARCY, "n_layers": 4},
    "darcy_smooth": {**_DARCY, "n_layers": 5, "prolongation_kernels": (3, 4, 3, 3, 4)},
    "pipe": {
        **_DARCY,
        "in_channels": 2,
        "n_layers": 5,
        "smoothing": ((1, 0),) * 4 + ((1, 1), (2, 0)),
    },
    "ns": dict(
        in_channels=1,
        out_channels=1,
        width=32,
        n_layers=5,
        levels=5,
        smoothing=((1, 0),) * 3 + ((2, 0),) * 2,
        padding_mode="circular",
        smoother_bias=True,
        level_norm="layer_chw",
        grid_shape=(64, 64),
        pointwise=False,
        global_residual=True,
    ),
}


def _check_grid(spatial: Sequence[int], levels: int) -> None:
    need = 2 ** (levels - 1)
    if min(spatial) < need:
        fits = int(math.floor(math.log2(min(spatial)))) + 1 if min(spatial) >= 1 else 0
        raise ValueError(
            f"MgNO with levels={levels} needs at least 2**(levels-1) = {need} points on every axis, "
            f"got grid {tuple(spatial)}; use a grid with every side >= {need} or levels <= {fits}"
        )


def _coarse_shapes(spatial: Sequence[int], levels: int) -> list[tuple[int, ...]]:
    shapes = [tuple(spatial)]
    for _ in range(levels - 1):
        shapes.append(tuple((n + 1) // 2 for n in shapes[-1]))
    return shapes


def _pad(x: torch.Tensor, width: int, mode: str, dims: int) -> torch.Tensor:
    """Pad every spatial axis by ``width`` on both sides; ``mode`` as ``Conv2d.padding_mode``."""
    if mode == "zeros":
        return F.pad(x, [width] * (2 * dims))
    if mode == "reflect" and min(x.shape[-dims:]) <= width:
        mode = "replicate"  # a 1-point axis cannot be mirrored; both agree on constants
    return F.pad(x, [width] * (2 * dims), mode=mode)


class _Conv(nn.Module):
    """3x3(x3) convolution with explicit boundary padding: (B, C_in, *n) -> (B, C_out, *ceil(n / stride))."""

    def __init__(
        self, c_in: int, c_out: int, *, stride: int, bias: bool, padding_mode: str, dims: int
    ) -> None:
        super().__init__()
        self.conv = _CONV[dims](c_in, c_out, 3, stride=stride, padding=0, bias=bias)
        self.padding_mode, self.dims = padding_mode, dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(_pad(x, 1, self.padding_mode, self.dims))


class _Prolong(nn.Module):
    """Stride-2 transposed convolution: (B, C, *m) -> (B, C, *n) with ``m = ceil(n / 2)``.

    The coarse grid is padded by one cell (``padding_mode``), convolved without padding, and cropped from
    offset 3 to the fine shape. With zero padding this equals ``ConvTranspose(kernel, stride=2, padding=1)``
    of the reference; with circular padding it is exactly periodic when ``n = 2 m``.
    """

    def __init__(self, channels: int, kernel: int, *, padding_mode: str, dims: int) -> None:
        super().__init__()
        self.conv = _CONV_T[dims](channels, channels, kernel, stride=2, padding=0, bias=False)
        self.padding_mode, self.dims = padding_mode, dims

    def forward(self, u: torch.Tensor, fine: Sequence[int]) -> torch.Tensor:
        y = self.conv(_pad(u, 1, self.padding_mode, self.dims))
        return y[(..., *(slice(3, 3 + n) for n in fine))]


class _Smooth(nn.Module):
    r"""One smoothing step :math:`u \leftarrow u + S(f - A u)`."""

    def __init__(self, c_f: int, c_u: int, *, bias: bool, padding_mode: str, dims: int) -> None:
        super().__init__()
        kw = dict(stride=1, bias=bias, padding_mode=padding_mode, dims=dims)
        self.A = _Conv(c_u, c_f, **kw)
        self.S = _Conv(c_f, c_u, **kw)

    def forward(self, u: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        return u + self.S(f - self.A(u))


class MgConv(nn.Module):
    """One multi-channel V-cycle, a linear operator ``in_channels`` (f) -> ``out_channels`` (u).

    It is linear in ``f`` unless ``config.smoother_bias`` or a level norm is set. Shapes: input
    (batch, in_channels, *spatial) -> output (batch, out_channels, *spatial), every side of ``spatial`` at
    least ``2**(levels - 1)``. Uses the V-cycle fields of ``config``; ``width`` is ignored.

    >>> cfg = MgNOConfig(in_channels=2, levels=3)
    >>> MgConv(2, 5, cfg)(torch.randn(1, 2, 9, 12)).shape
    torch.Size([1, 5, 9, 12])
    """

    def __init__(self, in_channels: int, out_channels: int, config: MgNOConfig) -> None:
        super().__init__()
        c_f, c_u, d, L = in_channels, out_channels, config.spatial_dims, config.levels
        self.levels, self.dims = L, d
        conv = dict(padding_mode=config.padding_mode, dims=d)
        smooth = dict(bias=config.smoother_bias, **conv)
        smoothing = config.smoothing
        assert smoothing is not None  # filled in by MgNOConfig.__post_init__
        self.init_smoother = _Conv(c_f, c_u, stride=1, **smooth)
        self.pre = nn.ModuleList(
            nn.ModuleList(_Smooth(c_f, c_u, **smooth) for _ in range(n - (lvl == 0)))
            for lvl, (n, _) in enumerate(smoothing)
        )
        self.post = nn.ModuleList(
            nn.ModuleList(_Smooth(c_f, c_u, **smooth) for _ in range(m)) for _, m in smoothing
        )
        self.restrict_u = nn.ModuleList(
            _Conv(c_u, c_u, stride=2, bias=False, **conv) for _ in range(L - 1)
        )
        self.restrict_f = nn.ModuleList(
            _Conv(c_f, c_f, stride=2, bias=False, **conv) for _ in range(L - 1)
        )
        self.residual = (
            nn.ModuleList(_Conv(c_u, c_f, stride=1, **smooth) for _ in range(L - 1))
            if config.residual_restriction
            else None
        )
        self.prolong = nn.ModuleList(
            _Prolong(c_u, k, padding_mode=config.padding_mode, dims=d)
            for k in config.level_kernels()
        )
        self.norms: nn.ModuleList | None = None
        if config.level_norm == "layer_chw":
            assert config.grid_shape is not None
            shapes = _coarse_shapes(config.grid_shape, L)[:-1]
            self.norms = nn.ModuleList(nn.LayerNorm([c_u, *s]) for s in shapes)
        elif config.level_norm == "group":
            self.norms = nn.ModuleList(nn.GroupNorm(1, c_u) for _ in range(L - 1))

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        """(batch, in_channels, *spatial) -> (batch, out_channels, *spatial)."""
        _check_grid(f.shape[2:], self.levels)
        u = self.init_smoother(f)
        for step in self.pre[0]:
            u = step(u, f)
        us, fs = [u], [f]
        for lvl in range(1, self.levels):
            if self.residual is not None:
                f = self.restrict_f[lvl - 1](f - self.residual[lvl - 1](u))
            else:
                f = self.restrict_f[lvl - 1](f)
            u = self.restrict_u[lvl - 1](u)
            for step in self.pre[lvl]:
                u = step(u, f)
            us.append(u)
            fs.append(f)
        for step in self.post[
            -1
        ]:  # post-smoothing on the coarsest level continues its pre-smoothing
            u = step(u, f)
        for lvl in range(self.levels - 2, -1, -1):
            u = us[lvl] + self.prolong[lvl](u, us[lvl].shape[2:])
            if self.norms is not None:
                u = self.norms[lvl](u)
            for step in self.post[lvl]:
                u = step(u, fs[lvl])
        return u


class _Layer(nn.Module):
    def __init__(self, c_in: int, c_out: int, config: MgNOConfig) -> None:
        super().__init__()
        self.mg = MgConv(c_in, c_out, config)
        self.pointwise = (
            _CONV[config.spatial_dims](c_in, c_out, 1, bias=True) if config.pointwise else None
        )
        self.act = ACTIVATIONS[config.activation]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.mg(x)
        if self.pointwise is not None:
            y = y + self.pointwise(x)
        return self.act(y)


@register_model
class MgNO(PretrainedMixin, nn.Module):
    r"""Multigrid neural operator: ``n_layers`` x :math:`\sigma(\mathrm{MgConv}(u) + W u + b)`, then a
    bias-free 1x1 head ``width -> out_channels`` (plus the input, with ``global_residual``).

    Shapes: ``forward(x, t=None)`` maps (batch, in_channels, *spatial) -> (batch, out_channels, *spatial),
    with ``len(spatial) == config.spatial_dims`` and every side at least ``2**(levels - 1)``; the lead time
    ``t`` is accepted and ignored. The parameter count does not depend on the grid unless
    ``level_norm="layer_chw"``, which fixes it to ``config.grid_shape``.

    >>> model = MgNO(MgNOConfig(in_channels=2, out_channels=3, width=4, n_layers=1, levels=2))
    >>> model(torch.randn(5, 2, 16, 16)).shape
    torch.Size([5, 3, 16, 16])
    """

    config_class = MgNOConfig

    def __init__(self, config: MgNOConfig | None = None, **overrides: Any) -> None:
        super().__init__()
        if config is None:
            config = MgNOConfig(**overrides)
        elif overrides:
            config = dataclasses.replace(config, **overrides)
        self.config = config
        w = config.width
        self.layers = nn.ModuleList(
            _Layer(config.in_channels if i == 0 else w, w, config) for i in range(config.n_layers)
        )
        self.head = _CONV[config.spatial_dims](w, config.out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:
        """(batch, in_channels, *spatial) -> (batch, out_channels, *spatial); ``t`` (batch,) is ignored."""
        c = self.config
        if x.ndim != c.spatial_dims + 2 or x.shape[1] != c.in_channels:
            raise ValueError(
                f"MgNO expects input (batch, {c.in_channels}, "
                f"{', '.join(['n'] * c.spatial_dims)}), got {tuple(x.shape)}"
            )
        _check_grid(x.shape[2:], c.levels)
        if c.level_norm == "layer_chw" and tuple(x.shape[2:]) != c.grid_shape:
            raise ValueError(
                f'MgNO with level_norm="layer_chw" is fixed to grid_shape {c.grid_shape}, '
                f"got grid {tuple(x.shape[2:])}"
            )
        u = x
        for layer in self.layers:
            u = layer(u)
        y = self.head(u)
        return y + x if c.global_residual else y

    def extra_repr(self) -> str:
        c = self.config
        return (
            f"width={c.width}, n_layers={c.n_layers}, levels={c.levels}, "
            f"padding_mode={c.padding_mode!r}, params={self.num_parameters():,}"
        )
