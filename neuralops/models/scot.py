"""scOT, the scalable operator transformer of Poseidon: a time-conditioned SwinV2 U-Net.

After Herde et al., "Poseidon: Efficient Foundation Models for PDEs" (NeurIPS 2024, arXiv 2405.19101).
The model maps a field ``x`` (B, C_in, H, W) and a lead time ``t`` (B,) to the field at ``t`` later:

1. **patch embedding**: a p x p stride-p convolution C_in -> E, then a norm (no position embedding);
2. **encoder**: stages of width E 2^s with windowed multi-head attention (SwinV2: scaled-cosine scores
   with a learned per-head logit scale, a continuous relative position bias from an MLP over
   log-spaced offsets, post-norm residual blocks); blocks alternate unshifted and half-window-shifted
   windows; windows are clamped to the token grid; between stages a 2 x 2 patch merging of the
   stage's output plus its input;
3. **skips**: ConvNeXt blocks per level (depthwise 7 x 7, norm, MLP, layer scale) on the encoder's
   stage outputs, **added** to the decoder's input at the same level;
4. **decoder**: the encoder mirrored, with patch unmerging (Linear d -> 2d, pixel shuffle, norm, mixup);
5. **recovery**: a stride-p transposed convolution E -> C_out and a 5 x 5 bias-free "mixup" convolution.

**Time conditioning**: every norm is a conditional layer norm ``alpha(t) * xhat + beta(t)`` with
``alpha``/``beta`` affine in ``t``; the variance is computed as E[x^2] - E[x]^2 as in the Poseidon
checkpoints. ``t`` enters the network nowhere else. Steady problems use ``t = 1`` (the default).

**Resolution** (``ScOTConfig.resample``): ``"spectral"`` (Poseidon) resamples each axis of an
off-native input to ``image_size`` by FFT truncation or zero padding and the output back;
``"pad"`` runs at the input's own resolution, zero-padding right/bottom to the next size the
patch/merge/window hierarchy divides; ``"none"`` runs at the input resolution and rejects sizes the
hierarchy does not divide, naming the nearest sizes that work.

Unlike the reference, shifted-window masks use ``-inf`` (tokens never see across the wrap seam;
the reference adds -100) and relative position tables are computed for whatever window a block
gets, so a model runs at any token grid.

>>> cfg = ScOTConfig(in_channels=1, out_channels=1, image_size=32, embed_dim=16, depths=(1, 1),
...                  num_heads=(2, 4), skip_connections=(1, 0), window_size=4)
>>> model = ScOT(cfg)
>>> model(torch.randn(2, 1, 32, 32), torch.tensor([0.25, 0.5])).shape
torch.Size([2, 1, 32, 32])
>>> ScOT(ScOTConfig.preset("T"), device="meta").num_parameters()
20774444
"""

from __future__ import annotations

import contextlib
import math
import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from neuralops.models.base import ModelConfig, PretrainedMixin, register_model

__all__ = [
    "SCOT_PRESETS",
    "ConditionalLayerNorm",
    "ScOT",
    "ScOTConfig",
    "WindowAttention",
    "load_poseidon",
    "poseidon_key_map",
    "spectral_resample",
    "valid_sizes",
]

#: Poseidon's sizes (patch 4, window 16, heads 3/6/12/24, ConvNeXt skips 2/2/2/0, 4 -> 4 channels).
SCOT_PRESETS: dict[str, dict[str, Any]] = {
    "T": dict(embed_dim=48, depths=(4, 4, 4, 4)),
    "B": dict(embed_dim=96, depths=(8, 8, 8, 8)),
    "L": dict(embed_dim=192, depths=(8, 8, 8, 8)),
}

RESAMPLE_MODES = ("spectral", "pad", "none")


@dataclass(frozen=True)
class ScOTConfig(ModelConfig):
    """Hyperparameters of :class:`ScOT` (defaults: Poseidon-T's architecture)."""

    model_type: ClassVar[str] = "scot"

    in_channels: int = 4
    out_channels: int = 4
    image_size: int = 128
    patch_size: int = 4
    embed_dim: int = 48
    depths: tuple[int, ...] = (4, 4, 4, 4)
    num_heads: tuple[int, ...] = (3, 6, 12, 24)
    skip_connections: tuple[int, ...] = (2, 2, 2, 0)
    window_size: int = 16
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    layer_norm_eps: float = 1e-5
    use_conditioning: bool = True
    learn_residual: bool = False
    resample: str = "spectral"
    time_range: tuple[float, float] = (0.0, 1.0)

    def __post_init__(self) -> None:
        for name in ("depths", "num_heads", "skip_connections"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        object.__setattr__(self, "time_range", tuple(float(v) for v in self.time_range))
        for name in (
            "in_channels",
            "out_channels",
            "image_size",
            "patch_size",
            "embed_dim",
            "window_size",
        ):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"ScOTConfig.{name} must be >= 1, got {getattr(self, name)}")
        stages = len(self.depths)
        if stages < 1 or len(self.num_heads) != stages or len(self.skip_connections) != stages:
            raise ValueError(
                f"ScOTConfig: depths {self.depths}, num_heads {self.num_heads} and skip_connections "
                f"{self.skip_connections} must have one entry per stage (the same length, at least 1)"
            )
        for s, heads in enumerate(self.num_heads):
            dim = self.embed_dim * 2**s
            if heads < 1 or dim % heads:
                raise ValueError(
                    f"ScOTConfig: stage {s} has width {dim}, not divisible by num_heads[{s}] = {heads}; "
                    f"pick heads dividing embed_dim * 2**stage"
                )
        if self.resample not in RESAMPLE_MODES:
            raise ValueError(
                f"ScOTConfig.resample must be one of {RESAMPLE_MODES}, got {self.resample!r}"
            )
        if len(self.time_range) != 2 or not self.time_range[0] <= self.time_range[1]:
            raise ValueError(f"ScOTConfig.time_range must be (low, high), got {self.time_range}")

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> ScOTConfig:
        """Poseidon's T/B/L sizes (:data:`SCOT_PRESETS`) with ``overrides`` applied."""
        key = name.upper().removeprefix("POSEIDON-").removeprefix("SCOT-")
        if key not in SCOT_PRESETS:
            raise ValueError(f"unknown scOT preset {name!r}; choose one of {sorted(SCOT_PRESETS)}")
        return cls(**{**SCOT_PRESETS[key], **overrides})


# ---------------------------------------------------------------------------------------------- pieces


class ConditionalLayerNorm(nn.Module):
    """``alpha(t) * (x - E x) / sqrt(Var x + eps) + beta(t)`` over the last axis, ``alpha``/``beta``
    ``Linear(1, dim)`` in the lead time. Initialised to ``alpha = 1 + O(0.02) t``, ``beta = O(0.02) t``.

    The variance is E[x^2] - E[x]^2 (the Poseidon checkpoints' formula)."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.alpha = nn.Linear(1, dim)
        self.beta = nn.Linear(1, dim)
        nn.init.normal_(self.alpha.weight, std=0.02)
        nn.init.ones_(self.alpha.bias)
        nn.init.normal_(self.beta.weight, std=0.02)
        nn.init.zeros_(self.beta.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=-1, keepdim=True)
        var = (x * x).mean(dim=-1, keepdim=True) - mean * mean
        xhat = (x - mean) * torch.rsqrt(var + self.eps)
        t = t.reshape(-1, 1).to(x.dtype)
        shape = (t.shape[0],) + (1,) * (x.dim() - 2) + (x.shape[-1],)
        return self.alpha(t).view(shape) * xhat + self.beta(t).view(shape)


class _LayerNorm(nn.LayerNorm):
    """``nn.LayerNorm`` that accepts (and ignores) the lead time: the unconditioned variant."""

    def forward(self, x: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:  # noqa: ARG002
        return super().forward(x)


def _norm(cfg: ScOTConfig, dim: int, eps: float | None = None) -> nn.Module:
    eps = cfg.layer_norm_eps if eps is None else eps
    return ConditionalLayerNorm(dim, eps) if cfg.use_conditioning else _LayerNorm(dim, eps=eps)


@lru_cache(maxsize=32)
def _relative_tables(window: int) -> tuple[torch.Tensor, torch.Tensor]:
    """SwinV2's log-spaced relative offsets ``(2w-1)^2 x 2`` and the ``w^2 x w^2`` index into them."""
    r = torch.arange(-(window - 1), window, dtype=torch.float32)
    table = torch.stack(torch.meshgrid(r, r, indexing="ij"), dim=-1)  # (2w-1, 2w-1, 2)
    if window > 1:
        table = table / (window - 1)
    table = table * 8
    table = torch.sign(table) * torch.log2(table.abs() + 1.0) / math.log2(8)
    coords = torch.stack(
        torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
    ).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
    index = rel[..., 0] * (2 * window - 1) + rel[..., 1]
    return table.reshape(-1, 2), index.reshape(-1)


@lru_cache(maxsize=64)
def _shift_mask(height: int, width: int, window: int, shift: int) -> torch.Tensor:
    """Boolean ``(n_windows, w^2, w^2)``: True where a shifted window's two tokens came from different
    regions of the unrolled grid (they must not attend to each other)."""
    region = torch.zeros(height, width, dtype=torch.int64)
    cuts = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    label = 0
    for hs in cuts:
        for ws in cuts:
            region[hs, ws] = label
            label += 1
    windows = _partition(region[None, :, :, None], window).reshape(-1, window * window)
    return windows[:, None, :] != windows[:, :, None]


def _partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """(B, H, W, C) -> (B * n_windows, w, w, C)."""
    b, h, w, c = x.shape
    x = x.view(b, h // window, window, w // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window, window, c)


def _unpartition(x: torch.Tensor, window: int, h: int, w: int) -> torch.Tensor:
    c = x.shape[-1]
    x = x.view(-1, h // window, w // window, window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, h, w, c)


class WindowAttention(nn.Module):
    """SwinV2 attention inside windows: ``softmax(s_h cos(q, k) + 16 sigmoid(B) + mask) v``, with a
    learned per-head logit scale ``s_h`` (at most 100) and a relative position bias ``B`` from an MLP
    (2 -> 512 -> heads) over log-spaced offsets, so the same weights serve any window size."""

    def __init__(self, dim: int, heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.k = nn.Linear(dim, dim, bias=False)
        self.v = nn.Linear(dim, dim, bias=qkv_bias)
        self.logit_scale = nn.Parameter(torch.full((heads, 1, 1), math.log(10.0)))
        self.cpb = nn.Sequential(
            nn.Linear(2, 512), nn.ReLU(inplace=True), nn.Linear(512, heads, bias=False)
        )
        self.proj = nn.Linear(dim, dim)

    def position_bias(self, window: int) -> torch.Tensor:
        """``(heads, w^2, w^2)`` relative position bias ``16 sigmoid(MLP(offsets))``."""
        table, index = _relative_tables(window)
        w = self.cpb[0].weight
        bias = self.cpb(table.to(device=w.device, dtype=w.dtype))[index.to(w.device)]
        return 16 * torch.sigmoid(bias.view(window * window, window * window, -1).permute(2, 0, 1))

    def forward(
        self, x: torch.Tensor, window: int, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``x`` (B * n_windows, w^2, C); ``mask`` (n_windows, w^2, w^2) boolean, True = blocked."""
        n, length, c = x.shape
        split = (n, length, self.heads, c // self.heads)
        q, k, v = (f(x).view(split).transpose(1, 2) for f in (self.q, self.k, self.v))
        scale = torch.clamp(self.logit_scale, max=math.log(100.0)).exp()
        q = F.normalize(q, dim=-1) * scale
        k = F.normalize(k, dim=-1)
        bias = self.position_bias(window).to(q.dtype)[None]  # (1, heads, L, L)
        if mask is not None:
            nw = mask.shape[0]
            bias = bias.expand(nw, -1, -1, -1).masked_fill(
                mask[:, None].to(q.device), float("-inf")
            )
            bias = bias.repeat(n // nw, 1, 1, 1)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=1.0)
        return self.proj(out.transpose(1, 2).reshape(n, length, c))


class _MLP(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class SwinBlock(nn.Module):
    """Post-norm SwinV2 block: ``h = x + N1(Attn(x))``, ``y = h + N2(MLP(h))``.

    ``shift`` is the configured half-window shift for odd blocks; the block clamps its window to the
    token grid and does not shift when one window covers the grid."""

    def __init__(self, cfg: ScOTConfig, dim: int, heads: int, shift: bool) -> None:
        super().__init__()
        self.window = cfg.window_size
        self.shift = cfg.window_size // 2 if shift else 0
        self.attn = WindowAttention(dim, heads, cfg.qkv_bias)
        self.norm1 = _norm(cfg, dim)
        self.mlp = _MLP(dim, int(dim * cfg.mlp_ratio))
        self.norm2 = _norm(cfg, dim)

    def geometry(self, height: int, width: int) -> tuple[int, int]:
        """``(window, shift)`` used on a ``height x width`` token grid."""
        window = min(self.window, height)  # the reference clamps by the first axis
        shift = self.shift if (height, width) > (window, window) else 0
        return window, shift

    def forward(self, x: torch.Tensor, hw: tuple[int, int], t: torch.Tensor) -> torch.Tensor:
        b, _, c = x.shape
        h, w = hw
        window, shift = self.geometry(h, w)
        grid = x.view(b, h, w, c)
        ph, pw = (-h) % window, (-w) % window
        if ph or pw:
            grid = F.pad(grid, (0, 0, 0, pw, 0, ph))
        hp, wp = h + ph, w + pw
        if shift:
            grid = torch.roll(grid, shifts=(-shift, -shift), dims=(1, 2))
        mask = _shift_mask(hp, wp, window, shift) if shift else None
        windows = _partition(grid, window).reshape(-1, window * window, c)
        out = self.attn(windows, window, mask)
        grid = _unpartition(out.view(-1, window, window, c), window, hp, wp)
        if shift:
            grid = torch.roll(grid, shifts=(shift, shift), dims=(1, 2))
        attn = grid[:, :h, :w].reshape(b, h * w, c)
        x = x + self.norm1(attn, t)
        return x + self.norm2(self.mlp(x), t)


class PatchMerging(nn.Module):
    """2 x 2 neighbourhood concat -> Linear(4d -> 2d, no bias) -> norm (odd grids zero-padded)."""

    def __init__(self, cfg: ScOTConfig, dim: int) -> None:
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = _norm(cfg, 2 * dim)

    def forward(self, x: torch.Tensor, hw: tuple[int, int], t: torch.Tensor) -> torch.Tensor:
        b, _, c = x.shape
        h, w = hw
        grid = x.view(b, h, w, c)
        if h % 2 or w % 2:
            grid = F.pad(grid, (0, 0, 0, w % 2, 0, h % 2))
        parts = [grid[:, 0::2, 0::2], grid[:, 1::2, 0::2], grid[:, 0::2, 1::2], grid[:, 1::2, 1::2]]
        merged = torch.cat(parts, dim=-1).reshape(b, -1, 4 * c)
        return self.norm(self.reduction(merged), t)


class PatchUnmerging(nn.Module):
    """Linear(d -> 2d, no bias) -> 2 x 2 pixel shuffle to d/2 channels -> crop -> norm -> Linear mixup."""

    def __init__(self, cfg: ScOTConfig, dim: int) -> None:
        super().__init__()
        self.expand = nn.Linear(dim, 2 * dim, bias=False)
        self.mixup = nn.Linear(dim // 2, dim // 2, bias=False)
        self.norm = _norm(cfg, dim // 2)

    def forward(
        self, x: torch.Tensor, hw: tuple[int, int], out_hw: tuple[int, int], t: torch.Tensor
    ) -> torch.Tensor:
        b, _, c = x.shape
        h, w = hw
        y = self.expand(x).view(b, h, w, 2, 2, c // 2).permute(0, 1, 3, 2, 4, 5)
        y = y.reshape(b, 2 * h, 2 * w, c // 2)[:, : out_hw[0], : out_hw[1]]
        return self.mixup(self.norm(y.reshape(b, -1, c // 2), t))


class ConvNeXtBlock(nn.Module):
    """Depthwise 7 x 7 -> norm -> Linear d -> 4d -> GELU -> Linear 4d -> d -> layer scale -> residual."""

    def __init__(self, cfg: ScOTConfig, dim: int, layer_scale: float = 1e-6) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = _norm(cfg, dim)
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.fc2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale))

    def forward(self, x: torch.Tensor, hw: tuple[int, int], t: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        y = self.dwconv(x.transpose(1, 2).reshape(b, c, *hw)).permute(0, 2, 3, 1)
        y = self.fc2(F.gelu(self.fc1(self.norm(y, t))))
        return x + (self.gamma * y).reshape(b, n, c)


class _Stage(nn.Module):
    """The Swin blocks of one level plus its merge (encoder) or unmerge (decoder)."""

    def __init__(self, cfg: ScOTConfig, level: int, *, decoder: bool) -> None:
        super().__init__()
        dim, depth = cfg.embed_dim * 2**level, cfg.depths[level]
        heads = cfg.num_heads[level]
        # encoder blocks alternate 0, shift, 0, ...; the decoder runs the same pattern backwards
        order = reversed(range(depth)) if decoder else range(depth)
        self.blocks = nn.ModuleList(SwinBlock(cfg, dim, heads, shift=i % 2 == 1) for i in order)
        last = len(cfg.depths) - 1
        if not decoder and level < last:
            self.merge = PatchMerging(cfg, dim)
        if decoder and level > 0:
            self.unmerge = PatchUnmerging(cfg, dim)

    def run(self, x: torch.Tensor, hw: tuple[int, int], t: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x, hw, t)
        return x


class ScOT(PretrainedMixin, nn.Module):
    """Poseidon's scOT (see the module docstring). ``forward(x, t=None)``: ``x`` (B, C_in, H, W),
    ``t`` (B,) or a scalar lead time (default 1, the steady-task convention)."""

    config_class = ScOTConfig

    def __init__(self, config: ScOTConfig, *, device: torch.device | str | None = None) -> None:
        super().__init__()
        self.config = cfg = config
        with torch.device(device) if device is not None else contextlib.nullcontext():
            levels = len(cfg.depths)
            self.embed = nn.Module()
            self.embed.proj = nn.Conv2d(
                cfg.in_channels, cfg.embed_dim, cfg.patch_size, cfg.patch_size
            )
            self.embed.norm = _norm(cfg, cfg.embed_dim, eps=1e-5)
            self.encoder = nn.ModuleList(_Stage(cfg, s, decoder=False) for s in range(levels))
            self.skips = nn.ModuleList(
                nn.ModuleList(ConvNeXtBlock(cfg, cfg.embed_dim * 2**s) for _ in range(n))
                for s, n in enumerate(cfg.skip_connections)
            )
            # decoder[0] is the deepest level (the reference's order, so checkpoints map one to one)
            self.decoder = nn.ModuleList(
                _Stage(cfg, s, decoder=True) for s in reversed(range(levels))
            )
            self.recovery = nn.Module()
            self.recovery.proj = nn.ConvTranspose2d(
                cfg.embed_dim, cfg.out_channels, cfg.patch_size, cfg.patch_size
            )
            self.recovery.mixup = nn.Conv2d(
                cfg.out_channels, cfg.out_channels, 5, padding=2, bias=False
            )
            if device is None or torch.device(device).type != "meta":
                self.apply(_init_weights)

    # ----------------------------------------------------------------------------------- resolution

    def _check_time(self, t: torch.Tensor) -> None:
        low, high = self.config.time_range
        if t.numel() and not torch.compiler.is_compiling():
            lo, hi = float(t.min()), float(t.max())
            if not math.isfinite(lo) or not math.isfinite(hi):
                raise ValueError(
                    f"ScOT: the lead time t has non-finite entries (min {lo}, max {hi})"
                )
            if lo < low - 1e-9 or hi > high + 1e-9:
                warnings.warn(
                    f"ScOT: lead times in [{lo:.4g}, {hi:.4g}] fall outside the trained range "
                    f"[{low:.4g}, {high:.4g}] (ScOTConfig.time_range); predictions there are extrapolations",
                    stacklevel=3,
                )

    def _token_multiple(self) -> int:
        return self.config.patch_size * 2 ** (len(self.config.depths) - 1)

    def forward(self, x: torch.Tensor, t: torch.Tensor | float | None = None) -> torch.Tensor:
        cfg = self.config
        if x.dim() != 4 or x.shape[1] != cfg.in_channels:
            raise ValueError(
                f"ScOT expects x of shape (batch, {cfg.in_channels}, H, W), got {tuple(x.shape)}"
            )
        b = x.shape[0]
        if t is None:
            t = torch.ones(b, dtype=x.dtype, device=x.device)
        else:
            t = torch.as_tensor(t, dtype=x.dtype, device=x.device).reshape(-1)
            if t.numel() == 1:
                t = t.expand(b)
            if t.numel() != b:
                raise ValueError(
                    f"ScOT: t must be a scalar or have one entry per sample ({b}), got {t.numel()}"
                )
            if cfg.use_conditioning:
                self._check_time(t)
        size = tuple(x.shape[-2:])
        if cfg.resample == "spectral":
            native = (cfg.image_size, cfg.image_size)
            inp = spectral_resample(x, native) if size != native else x
            out = self._core(inp, t)
            return spectral_resample(out, size) if size != native else out
        if cfg.resample == "none":
            bad = [n for n in size if n not in valid_sizes(cfg, max(size))]
            if bad:
                near = {n: _nearest_valid(cfg, n) for n in size}
                raise ValueError(
                    f"ScOT (resample='none'): a {size[0]}x{size[1]} grid does not fit patch {cfg.patch_size}, "
                    f"{len(cfg.depths)} levels and window {cfg.window_size}; sizes that work near it: "
                    + ", ".join(f"{n} -> {v}" for n, v in near.items())
                    + "; or set resample='pad' (zero-pads) or 'spectral' (resamples to image_size)"
                )
            return self._core(x, t)
        m = self._token_multiple()
        ph, pw = (-size[0]) % m, (-size[1]) % m
        inp = F.pad(x, (0, pw, 0, ph)) if ph or pw else x
        return self._core(inp, t)[..., : size[0], : size[1]]

    # ----------------------------------------------------------------------------------- the U-Net

    def _core(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        h, w = x.shape[-2:]
        p = cfg.patch_size
        ph, pw = (-h) % p, (-w) % p
        inp = F.pad(x, (0, pw, 0, ph)) if ph or pw else x
        tokens = self.embed.proj(inp)
        hw = (tokens.shape[-2], tokens.shape[-1])
        z = self.embed.norm(tokens.flatten(2).transpose(1, 2), t)

        skips, dims = [], []
        for stage in self.encoder:
            out = stage.run(z, hw, t)
            skips.append(out)
            dims.append(hw)
            if hasattr(stage, "merge"):
                z = stage.merge(out + z, hw, t)
                hw = ((hw[0] + 1) // 2, (hw[1] + 1) // 2)
        for level, blocks in enumerate(self.skips):
            for block in blocks:
                skips[level] = block(skips[level], dims[level], t)

        levels = len(cfg.depths)
        z = skips[-1]
        for i, stage in enumerate(self.decoder):
            level = levels - 1 - i
            if i:
                z = z + skips[level]
            z = stage.run(z, dims[level], t)
            if level > 0:
                z = stage.unmerge(z, dims[level], dims[level - 1], t)

        b, _, c = z.shape
        grid = z.transpose(1, 2).reshape(b, c, *dims[0])
        y = self.recovery.proj(grid)[..., :h, :w]
        y = self.recovery.mixup(y)
        if cfg.learn_residual:
            y = y + x[:, : cfg.out_channels]
        return y


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear | nn.Conv2d | nn.ConvTranspose2d):
        if isinstance(module, nn.Linear) and module.in_features == 1:
            return  # a conditional norm's alpha/beta, initialised by ConditionalLayerNorm
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


register_model(ScOT)


# ---------------------------------------------------------------------------------------- resolution


def spectral_resample(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resample the last two axes of a periodic field to ``size`` by FFT truncation (keeping the
    frequencies ``-m/2 .. (m-1)/2`` shared by both grids) or zero padding. Band-limited fields come back
    exactly: 128 -> 64 -> 128 of a field with modes below 32 is the identity to rounding.

    >>> import torch
    >>> g = torch.arange(16) / 16
    >>> f = torch.sin(2 * torch.pi * 3 * g)[:, None] * torch.cos(2 * torch.pi * g)[None, :]
    >>> down = spectral_resample(f[None, None].double(), (8, 8))
    >>> float((spectral_resample(down, (16, 16))[0, 0] - f).abs().max()) < 1e-6
    True
    """
    size = (int(size[0]), int(size[1]))
    if tuple(x.shape[-2:]) == size:
        return x
    spec = torch.fft.fft2(x.to(torch.promote_types(x.dtype, torch.float32)), norm="forward")
    for axis, n_new in zip((-2, -1), size, strict=True):
        spec = _truncate_or_pad(spec, n_new, axis % x.dim())
    # one real part at the end: the unpaired -m/2 (Nyquist) mode makes the per-axis results complex
    return torch.fft.ifft2(spec, norm="forward").real.to(x.dtype)


def _truncate_or_pad(spec: torch.Tensor, n_new: int, dim: int) -> torch.Tensor:
    """Keep the frequencies ``-m/2 .. (m-1)/2`` (``m`` the smaller size) of axis ``dim`` in a
    spectrum of ``n_new`` entries (FFT order)."""
    n = spec.shape[dim]
    if n == n_new:
        return spec
    m = min(n, n_new)
    freqs = torch.arange(-(m // 2), (m + 1) // 2, device=spec.device)
    shape = list(spec.shape)
    shape[dim] = n_new
    out = spec.new_zeros(shape)
    return out.index_copy_(dim, freqs % n_new, spec.index_select(dim, freqs % n))


def _fits(cfg: ScOTConfig, n: int) -> bool:
    if n % cfg.patch_size:
        return False
    g = n // cfg.patch_size
    for level in range(len(cfg.depths)):
        if g > cfg.window_size and g % cfg.window_size:
            return False
        if level < len(cfg.depths) - 1:
            if g % 2:
                return False
            g //= 2
    return True


def valid_sizes(cfg: ScOTConfig, up_to: int) -> list[int]:
    """Grid sizes ``<= up_to`` that the patch / merge / window hierarchy divides without padding."""
    return [n for n in range(1, up_to + 1) if _fits(cfg, n)]


def _nearest_valid(cfg: ScOTConfig, n: int) -> str:
    """The largest working size below ``n`` and the smallest above it (one of them always exists)."""
    below = valid_sizes(cfg, n)
    step = cfg.patch_size * 2 ** len(cfg.depths) * cfg.window_size
    above = next(v for v in range(n, n + step + 1) if _fits(cfg, v))
    return f"{below[-1]} or {above}" if below and below[-1] != above else str(above)


# Poseidon checkpoints live in their own module; re-exported here (the documented names).
from neuralops.models.poseidon import load_poseidon, poseidon_key_map  # noqa: E402
