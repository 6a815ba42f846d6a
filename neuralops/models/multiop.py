"""Multi-operator models: one shared backbone, per-family input adapters and output heads.

Poseidon-style pretraining on several PDE families and fine-tuning on an unseen one (models.md §5.2).
A family is a PDE with its own channel layout (Navier-Stokes vorticity: 1 -> 1; heat with a
conductivity: [kappa, u] -> u). Each family gets a pointwise input adapter (C_in -> width, plus an
optional learned family embedding added to every point) and a pointwise output head
(width -> C_out); the backbone is any registered grid model built with ``in_channels = out_channels
= width`` (scOT, FNO, MgNO) and takes the lead time ``t``. A batch holds one family (channel counts
differ), named by ``family=``.

A new family is added with :meth:`MultiOperatorModel.add_family` (fresh adapter and head: Poseidon's
embedding/recovery re-initialisation) and fine-tuned either fully (three learning-rate groups,
:meth:`~MultiOperatorModel.param_groups`) or with LoRA on the backbone (:func:`prepare_finetune`).
The whole model, every family included, round-trips through ``save_pretrained``/``from_pretrained``.

>>> from neuralops.models import build_model
>>> bb = build_model("fno", in_channels=8, out_channels=8, width=8, modes=(4, 4),
...                  lifting_channels=16, projection_channels=16)
>>> model = MultiOperatorModel.from_backbone(bb, {"ns": FamilySpec(1, 1), "heat": FamilySpec(2, 1)})
>>> model(torch.randn(3, 2, 16, 16), family="heat").shape
torch.Size([3, 1, 16, 16])
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from neuralops.models.base import MODELS, ModelConfig, PretrainedMixin, register_model

__all__ = [
    "FamilySpec",
    "MultiOperatorConfig",
    "MultiOperatorModel",
    "family_weights",
    "prepare_finetune",
]

#: parameter-name fragments of time-conditioned norms (scOT's alpha(t), beta(t)) and plain norms
_NORM_PARTS = (".alpha.", ".beta.", "norm")


@dataclass(frozen=True)
class FamilySpec:
    """Channel layout of one PDE family; ``embedding`` adds a learned per-family vector to the
    adapter's output."""

    in_channels: int
    out_channels: int
    embedding: bool = False

    def __post_init__(self) -> None:
        for name in ("in_channels", "out_channels"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"FamilySpec.{name} must be an integer >= 1, got {v!r}")

    @classmethod
    def coerce(cls, value: FamilySpec | Mapping[str, Any] | Sequence[int]) -> FamilySpec:
        if isinstance(value, FamilySpec):
            return value
        if isinstance(value, Mapping):
            unknown = sorted(set(value) - {f.name for f in dataclasses.fields(cls)})
            if unknown:
                raise ValueError(
                    f"FamilySpec: unknown keys {unknown}; valid: in_channels, out_channels, embedding"
                )
            return cls(**value)
        return cls(*value)


@dataclass(frozen=True)
class MultiOperatorConfig(ModelConfig):
    """The backbone (its ``model_type`` and config fields) and the families, by name."""

    model_type: ClassVar[str] = "multi_operator"

    backbone_type: str = "scot"
    backbone: Mapping[str, Any] = field(default_factory=dict)
    families: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.backbone_type not in MODELS or self.backbone_type == self.model_type:
            raise ValueError(
                f"MultiOperatorConfig.backbone_type {self.backbone_type!r} is not a grid model type; "
                f"choose one of {sorted(k for k in MODELS if k != self.model_type)}"
            )
        fams = {
            str(k): dataclasses.asdict(FamilySpec.coerce(v)) for k, v in dict(self.families).items()
        }
        if not fams:
            raise ValueError(
                "MultiOperatorConfig.families is empty; give at least one {name: FamilySpec}"
            )
        object.__setattr__(self, "families", fams)
        object.__setattr__(self, "backbone", dict(self.backbone))

    @property
    def width(self) -> int:
        return int(self.backbone_config().in_channels)

    def backbone_config(self) -> ModelConfig:
        return MODELS[self.backbone_type].config_class.from_dict(self.backbone)  # type: ignore[attr-defined]

    def to_dict(self) -> dict[str, Any]:
        return {
            "backbone_type": self.backbone_type,
            "backbone": self.backbone_config().to_dict(),
            "families": {k: dict(v) for k, v in self.families.items()},
        }


@register_model
class MultiOperatorModel(PretrainedMixin, nn.Module):
    """``forward(x, t=None, family=None)``: ``x`` (B, C_in of the family, *S) -> (B, C_out, *S)."""

    config_class = MultiOperatorConfig

    def __init__(self, config: MultiOperatorConfig) -> None:
        super().__init__()
        bcfg = config.backbone_config()
        if bcfg.in_channels != bcfg.out_channels:
            raise ValueError(
                f"the backbone must map width -> width channels; got in_channels={bcfg.in_channels}, "
                f"out_channels={bcfg.out_channels}"
            )
        self.config = config
        self.backbone = MODELS[config.backbone_type](bcfg)
        self.adapters = nn.ModuleDict()
        self.heads = nn.ModuleDict()
        self.embeddings = nn.ParameterDict()
        for name, spec in config.families.items():
            self._build_family(name, FamilySpec(**spec))

    @classmethod
    def from_backbone(
        cls, backbone: nn.Module, families: Mapping[str, FamilySpec | Mapping[str, Any]]
    ) -> MultiOperatorModel:
        """Wrap an existing backbone (its weights are kept) with fresh adapters and heads."""
        cfg = MultiOperatorConfig(
            backbone_type=type(backbone.config).model_type,  # type: ignore[attr-defined]
            backbone=backbone.config.to_dict(),  # type: ignore[attr-defined]
            families=families,
        )
        model = cls(cfg)
        model.backbone.load_state_dict(backbone.state_dict())
        return model

    @property
    def families(self) -> list[str]:
        return list(self.config.families)

    def _build_family(self, name: str, spec: FamilySpec) -> None:
        width = self.config.width
        self.adapters[name] = nn.Conv2d(spec.in_channels, width, 1)
        self.heads[name] = nn.Conv2d(width, spec.out_channels, 1)
        if spec.embedding:
            self.embeddings[name] = nn.Parameter(torch.zeros(width))

    def add_family(
        self, name: str, spec: FamilySpec | Mapping[str, Any], *, init_from: str | None = None
    ) -> None:
        """A new family with a freshly initialised adapter and head (the backbone is untouched), or,
        with ``init_from``, copies of an existing family's adapter, head and embedding (the channel
        counts must match)."""
        if name in self.config.families:
            raise ValueError(f"family {name!r} already exists; families: {self.families}")
        if not name.isidentifier():
            raise ValueError(
                f"family name {name!r} must be a Python identifier (letters, digits, _), as it "
                "names the adapter and head weights"
            )
        spec = FamilySpec.coerce(spec)
        if init_from is not None:
            if init_from not in self.config.families:
                raise ValueError(
                    f"init_from={init_from!r} is not a family of this model; families: {self.families}"
                )
            src = FamilySpec(**self.config.families[init_from])
            if (src.in_channels, src.out_channels) != (spec.in_channels, spec.out_channels):
                raise ValueError(
                    f"init_from={init_from!r} maps {src.in_channels} -> {src.out_channels} channels, "
                    f"family {name!r} {spec.in_channels} -> {spec.out_channels}; copy only between "
                    "families with the same channel counts, or leave init_from=None"
                )
        ref = next(self.backbone.parameters())
        self._build_family(name, spec)
        for module in (self.adapters[name], self.heads[name]):
            module.to(device=ref.device, dtype=ref.dtype)
        if name in self.embeddings:
            self.embeddings[name].data = self.embeddings[name].data.to(ref.device, ref.dtype)
        if init_from is not None:
            with torch.no_grad():
                for modules in (self.adapters, self.heads):
                    for p, q in zip(modules[name].parameters(), modules[init_from].parameters()):
                        p.copy_(q)
                if name in self.embeddings and init_from in self.embeddings:
                    self.embeddings[name].copy_(self.embeddings[init_from])
        fams = {**self.config.families, name: dataclasses.asdict(spec)}
        self.config = dataclasses.replace(self.config, families=fams)

    def forward(
        self, x: torch.Tensor, t: torch.Tensor | None = None, family: str | None = None
    ) -> torch.Tensor:
        if family is None:
            if len(self.config.families) != 1:
                raise ValueError(f"this model has families {self.families}; pass family=NAME")
            family = self.families[0]
        if family not in self.config.families:
            raise ValueError(
                f"unknown family {family!r}; this model has {self.families} (add_family adds one)"
            )
        spec = self.config.families[family]
        if x.dim() != 4 or x.shape[1] != spec["in_channels"]:
            raise ValueError(
                f"family {family!r} takes x of shape (batch, {spec['in_channels']}, H, W), got {tuple(x.shape)}"
            )
        h = self.adapters[family](x)
        if family in self.embeddings:
            h = h + self.embeddings[family].view(1, -1, 1, 1)
        return self.heads[family](self.backbone(h, t))

    def freeze_backbone(self) -> None:
        for p in self.backbone.parameters():
            p.requires_grad_(False)

    def param_groups(
        self,
        lr_backbone: float = 5e-5,
        lr_heads: float = 5e-4,
        lr_norm: float = 5e-4,
        weight_decay: float = 1e-6,
    ) -> list[dict[str, Any]]:
        """Poseidon's three fine-tuning groups (models.md §3.3): backbone, adapters + heads (+
        embeddings), and the backbone's norms (time-conditioned or not; no weight decay). Frozen
        parameters are left out."""
        groups: dict[str, list[nn.Parameter]] = {"backbone": [], "heads": [], "norm": []}
        for name, p in self.named_parameters():
            if not p.requires_grad:
                continue
            if not name.startswith("backbone."):
                groups["heads"].append(p)
            elif any(part in name for part in _NORM_PARTS):
                groups["norm"].append(p)
            else:
                groups["backbone"].append(p)
        spec = {
            "backbone": (lr_backbone, weight_decay),
            "heads": (lr_heads, weight_decay),
            "norm": (lr_norm, 0.0),
        }
        return [
            {"params": ps, "lr": spec[k][0], "weight_decay": spec[k][1], "name": k}
            for k, ps in groups.items()
            if ps
        ]


def prepare_finetune(
    model: MultiOperatorModel,
    family: str,
    spec: FamilySpec | Mapping[str, Any],
    *,
    mode: str = "full",
    rank: int = 8,
    alpha: float = 16.0,
    targets: Sequence[str] | None = None,
) -> list[str]:
    """Add ``family`` (unless the model has it already, with the same layout) and set what trains:
    ``"full"`` everything; ``"lora"`` LoRA adapters on the backbone's linear/convolution layers
    (default: all but the norms' ``alpha``/``beta`` and scOT's position-bias MLP) plus the family's
    adapter/head and the backbone's norms, everything else frozen. Returns the LoRA-adapted layer
    names (empty for ``"full"``)."""
    from neuralops.models.lora import apply_lora

    if mode not in ("full", "lora"):
        raise ValueError(f"mode must be 'full' or 'lora', got {mode!r}")
    spec = FamilySpec.coerce(spec)
    if family not in model.config.families:
        model.add_family(family, spec)
    elif FamilySpec(**model.config.families[family]) != spec:
        raise ValueError(
            f"family {family!r} exists with {model.config.families[family]}, not {spec}; give "
            "its existing layout to fine-tune it, or a new family name"
        )
    if mode == "full":
        for p in model.parameters():
            p.requires_grad_(True)
        return []
    names = apply_lora(
        model,
        rank=rank,
        alpha=alpha,
        targets=targets,
        exclude=["adapters*", "heads*", "*.alpha", "*.beta", "*.cpb*"],
        trainable=[
            f"adapters.{family}.*",
            f"heads.{family}.*",
            f"embeddings.{family}",
            "backbone.*alpha*",
            "backbone.*beta*",
            "backbone.*norm*",
        ],
    )
    return names


def family_weights(sizes: Mapping[str, int], temperature: float = 1.0) -> dict[str, float]:
    """Sampling probabilities of the families, proportional to ``n_f ** temperature`` (T = 1: every
    sample equally likely; T = 0: every family equally likely).

    >>> family_weights({"ns": 300, "heat": 100})
    {'ns': 0.75, 'heat': 0.25}
    """
    if not sizes or any(n < 1 for n in sizes.values()):
        raise ValueError(f"every family needs at least one sample, got {dict(sizes)}")
    raw = {k: float(n) ** float(temperature) for k, n in sizes.items()}
    total = sum(raw.values())
    return {k: v / total for k, v in raw.items()}
