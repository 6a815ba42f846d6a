"""Neural operators. ``neuralops.models`` imports nothing else from neuralops."""

from neuralops.models.fno import FNO, FNOConfig
from neuralops.models.spectral_conv import SpectralConv

__all__ = ["FNO", "FNOConfig", "SpectralConv"]
