"""Neural operators. ``neuralops.models`` imports nothing else from neuralops (but its version string).

Every model is an ``nn.Module`` built from a frozen config dataclass with a ``model_type``, registered in
:data:`MODELS`, and saved as safetensors + JSON with ``save_pretrained``/``from_pretrained``.
"""

from neuralops.models.base import (
    MODELS,
    ModelConfig,
    PretrainedMixin,
    build_model,
    load_pretrained,
    register_model,
)
from neuralops.models.dcdm import DCDM_PRESETS, DCDMConfig, DCDMNet
from neuralops.models.fno import FNO, FNOConfig
from neuralops.models.gno import GNO, GNOConfig
from neuralops.models.mgno import MGNO_PRESETS, MgConv, MgNO, MgNOConfig
from neuralops.models.multiop import FamilySpec, MultiOperatorConfig, MultiOperatorModel
from neuralops.models.scot import SCOT_PRESETS, ScOT, ScOTConfig, load_poseidon
from neuralops.models.spectral_conv import SpectralConv
from neuralops.models.transolver import MeshTransformer, MeshTransformerConfig

__all__ = [
    "DCDM_PRESETS",
    "DCDMConfig",
    "DCDMNet",
    "FNO",
    "MGNO_PRESETS",
    "MODELS",
    "FNOConfig",
    "GNO",
    "GNOConfig",
    "MgConv",
    "MgNO",
    "MgNOConfig",
    "MeshTransformer",
    "MeshTransformerConfig",
    "ModelConfig",
    "PretrainedMixin",
    "SCOT_PRESETS",
    "ScOT",
    "FamilySpec",
    "MultiOperatorConfig",
    "MultiOperatorModel",
    "ScOTConfig",
    "SpectralConv",
    "load_poseidon",
    "build_model",
    "load_pretrained",
    "register_model",
]
