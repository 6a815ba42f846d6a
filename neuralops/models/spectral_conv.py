"""Spectral convolution: the Fourier layer of the Fourier neural operator (Li et al., 2021)."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["SpectralConv"]


class SpectralConv(nn.Module):
    """Multiply the lowest ``modes`` Fourier coefficients per axis by learned complex weights.

    Works in 1, 2 or 3 spatial dimensions; the last axis uses the real FFT, so it keeps
    ``modes[-1]`` non-negative frequencies and every other axis keeps ``modes[k]`` positive and
    ``modes[k]`` negative ones.

    Shapes: input (batch, in_channels, *spatial) -> output (batch, out_channels, *spatial).
    """

    def __init__(self, in_channels: int, out_channels: int, modes: tuple[int, ...]) -> None:
        super().__init__()
        if not 1 <= len(modes) <= 3 or any(m < 1 for m in modes):
            raise ValueError(f"modes must be 1-3 positive integers, got {modes}")
        self.in_channels, self.out_channels, self.modes = in_channels, out_channels, tuple(modes)
        d = len(modes)
        # one weight block per sign combination of the non-last axes
        n_blocks = 2 ** (d - 1)
        scale = 1.0 / (in_channels * out_channels)
        shape = (n_blocks, in_channels, out_channels, *modes)
        self.weight = nn.Parameter(scale * torch.randn(*shape, dtype=torch.cfloat))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = len(self.modes)
        spatial = x.shape[-d:]
        for n, m in zip(spatial[:-1], self.modes[:-1], strict=True):
            if 2 * m > n:
                raise ValueError(
                    f"grid {tuple(spatial)} too small for modes {self.modes}: "
                    f"need at least {2 * m} points on every axis but the last"
                )
        if self.modes[-1] > spatial[-1] // 2 + 1:
            raise ValueError(f"grid {tuple(spatial)} too small for modes {self.modes}")
        dims = tuple(range(-d, 0))
        xf = torch.fft.rfftn(x.float(), dim=dims, norm="ortho")
        out = torch.zeros(
            x.shape[0], self.out_channels, *xf.shape[-d:], dtype=xf.dtype, device=x.device
        )
        for b, region in enumerate(self._regions()):
            idx = (slice(None), slice(None), *region)
            out[idx] = torch.einsum("bi...,io...->bo...", xf[idx], self.weight[b])
        return torch.fft.irfftn(out, s=spatial, dim=dims, norm="ortho").to(x.dtype)

    def _regions(self) -> list[tuple[slice, ...]]:
        d = len(self.modes)
        regions = []
        for signs in range(2 ** (d - 1)):
            region = []
            for axis, m in enumerate(self.modes[:-1]):
                region.append(slice(None, m) if not (signs >> axis) & 1 else slice(-m, None))
            region.append(slice(None, self.modes[-1]))
            regions.append(tuple(region))
        return regions

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, modes={self.modes}"

    @staticmethod
    def n_params(in_channels: int, out_channels: int, modes: tuple[int, ...]) -> int:
        """Real parameter count (complex weights count twice)."""
        return 2 * 2 ** (len(modes) - 1) * in_channels * out_channels * math.prod(modes)
