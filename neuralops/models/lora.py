"""LoRA: low-rank adapters on linear and convolution layers, mergeable and saved apart from the model.

After Hu et al., "LoRA: Low-Rank Adaptation of Large Language Models" (arXiv 2106.09685). An adapted
layer computes ``W x + (alpha / r) B A x`` with the base weight ``W`` frozen, ``A`` random
(std ``1/sqrt(r)``) and ``B = 0``, so an adapted model **equals the base model bitwise** until it is
trained. Targets:

- ``nn.Linear``: ``A`` (r x in), ``B`` (out x r);
- ``nn.Conv1d/2d/3d`` with ``groups == 1`` as a channel low rank: ``A`` a k x k convolution
  C_in -> r with the base's stride, padding and dilation, ``B`` a 1 x 1 convolution r -> C_out
  (covers 1 x 1 convolutions and MgNO's smoothing/restriction convolutions). Transposed
  convolutions and spectral (Fourier) weights are not adapted: freeze or train them fully.

``merge_lora`` folds ``(alpha / r) B A`` into ``W`` and returns the plain model (savable with
``save_pretrained``); ``save_adapter``/``load_adapter`` store only the adapters
(``adapter.safetensors`` + ``adapter_config.json``, with the sha256 of the base weights they were
trained on).

>>> import torch
>>> from torch import nn
>>> base = nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.Linear(8, 2))
>>> x = torch.randn(3, 4)
>>> y = base(x)
>>> names = apply_lora(base, rank=2)
>>> names, torch.equal(base(x), y), trainable_parameters(base)
(['0', '2'], True, 44)
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

__all__ = [
    "LoRAConv",
    "LoRALinear",
    "apply_lora",
    "base_sha256",
    "load_adapter",
    "lora_parameters",
    "merge_lora",
    "save_adapter",
    "trainable_parameters",
]

ADAPTER_WEIGHTS = "adapter.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


class LoRALinear(nn.Module):
    """``base(x) + (alpha / rank) * B(A(x))`` for a frozen ``nn.Linear`` base."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float) -> None:
        super().__init__()
        self.base, self.rank, self.alpha = base, int(rank), float(alpha)
        self.scale = self.alpha / self.rank
        kw = {"device": base.weight.device, "dtype": base.weight.dtype}
        self.lora_A = nn.Linear(base.in_features, rank, bias=False, **kw)
        self.lora_B = nn.Linear(rank, base.out_features, bias=False, **kw)
        nn.init.normal_(self.lora_A.weight, std=1.0 / rank**0.5)
        nn.init.zeros_(self.lora_B.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.scale * self.lora_B(self.lora_A(x))

    def delta(self) -> torch.Tensor:
        """The weight update ``(alpha / r) B A`` (out x in)."""
        return self.scale * (self.lora_B.weight @ self.lora_A.weight)


class LoRAConv(nn.Module):
    """``base(x) + (alpha / rank) * B(A(x))``: A a k x k convolution C_in -> r shaped like the base,
    B a 1 x 1 convolution r -> C_out."""

    def __init__(self, base: nn.Conv1d | nn.Conv2d | nn.Conv3d, rank: int, alpha: float) -> None:
        super().__init__()
        if base.groups != 1:
            raise ValueError(
                f"LoRA on a grouped convolution (groups={base.groups}) is not supported"
            )
        self.base, self.rank, self.alpha = base, int(rank), float(alpha)
        self.scale = self.alpha / self.rank
        cls = type(base)
        kw = {"device": base.weight.device, "dtype": base.weight.dtype}
        self.lora_A = cls(
            base.in_channels,
            rank,
            base.kernel_size,
            stride=base.stride,
            padding=base.padding,
            dilation=base.dilation,
            bias=False,
            padding_mode=base.padding_mode,
            **kw,
        )
        self.lora_B = cls(rank, base.out_channels, 1, bias=False, **kw)
        nn.init.normal_(self.lora_A.weight, std=1.0 / rank**0.5)
        nn.init.zeros_(self.lora_B.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.scale * self.lora_B(self.lora_A(x))

    def delta(self) -> torch.Tensor:
        """The weight update (C_out, C_in, *k): ``scale * sum_r B[o, r] A[r, i, ...]``."""
        B = self.lora_B.weight.flatten(1)  # (out, r)
        A = self.lora_A.weight  # (r, in, *k)
        return self.scale * torch.einsum("or,r...->o...", B, A)


_Adapted = (LoRALinear, LoRAConv)


def _matches(name: str, patterns: Sequence[str] | None) -> bool:
    return patterns is not None and any(fnmatch.fnmatchcase(name, p) for p in patterns)


def _set_child(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


def apply_lora(
    model: nn.Module,
    rank: int = 8,
    alpha: float = 16.0,
    *,
    targets: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    trainable: Sequence[str] = (),
) -> list[str]:
    """Wrap the target layers of ``model`` in place with LoRA adapters; returns their names.

    ``targets``: glob patterns on module names (default: every ``nn.Linear`` and ``groups == 1``
    convolution); ``exclude``: patterns never adapted (e.g. ``"head.*"``). All base parameters are
    frozen except those whose names match ``trainable`` (e.g. new per-family heads); adapters
    train. The model's outputs are unchanged until the adapters are trained.
    """
    if not isinstance(rank, int) or rank < 1:
        raise ValueError(f"LoRA rank must be an integer >= 1, got {rank!r}")
    if any(isinstance(m, _Adapted) for m in model.modules()):
        raise ValueError("the model already has LoRA adapters; merge_lora() it first")
    chosen = []
    for name, module in model.named_modules():
        if not name or _matches(name, exclude):
            continue
        eligible = isinstance(module, nn.Linear) or (
            isinstance(module, _CONVS) and module.groups == 1
        )
        if (targets is None and eligible) or (targets is not None and _matches(name, targets)):
            if not eligible:
                raise ValueError(
                    f"LoRA target {name!r} is a {type(module).__name__}; only nn.Linear and "
                    "Conv1d/2d/3d with groups=1 can be adapted"
                )
            chosen.append(name)
    if not chosen:
        raise ValueError(
            f"no layer matches the LoRA targets {targets}; module names are e.g. "
            f"{[n for n, _ in model.named_modules() if n][:8]}"
        )
    for name, p in model.named_parameters():
        p.requires_grad_(_matches(name, trainable))
    for name in chosen:
        base = model.get_submodule(name)
        wrapper = LoRALinear if isinstance(base, nn.Linear) else LoRAConv
        _set_child(model, name, wrapper(base, rank, alpha))
    return chosen


def lora_parameters(model: nn.Module) -> dict[str, torch.Tensor]:
    """The adapter tensors, by their names in ``model.state_dict()``."""
    return {k: v for k, v in model.state_dict().items() if ".lora_A." in k or ".lora_B." in k}


def trainable_parameters(model: nn.Module) -> int:
    """How many parameters require gradients."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold every adapter into its base weight and unwrap it, in place; returns the plain model.

    Parameters are left trainable (``requires_grad=True``) so the merged model is an ordinary one.
    """
    for name, module in list(model.named_modules()):
        if isinstance(module, _Adapted):
            with torch.no_grad():
                module.base.weight += module.delta().to(module.base.weight.dtype)
            _set_child(model, name, module.base)
    for p in model.parameters():
        p.requires_grad_(True)
    return model


def base_sha256(model: nn.Module) -> str:
    """sha256 over the base (non-adapter) tensors in name order, adapter wrappers looked through."""
    h = hashlib.sha256()
    for key, value in sorted(model.state_dict().items()):
        if ".lora_A." in key or ".lora_B." in key:
            continue
        key = key.replace(".base.", ".")
        t = value.detach().to("cpu").contiguous()
        h.update(key.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def save_adapter(model: nn.Module, folder: str | os.PathLike[str]) -> Path:
    """Write ``adapter.safetensors`` and ``adapter_config.json`` (rank, alpha, adapted layers, the
    base model's type and sha256) into ``folder``; the base weights are not written."""
    adapted = {n: m for n, m in model.named_modules() if isinstance(m, _Adapted)}
    if not adapted:
        raise ValueError("the model has no LoRA adapters to save (apply_lora first)")
    ranks = {m.rank for m in adapted.values()}
    alphas = {m.alpha for m in adapted.values()}
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "format_version": 1,
        "rank": ranks.pop() if len(ranks) == 1 else None,
        "alpha": alphas.pop() if len(alphas) == 1 else None,
        "layers": {n: {"rank": m.rank, "alpha": m.alpha} for n, m in adapted.items()},
        "base_model_type": getattr(getattr(model, "config_class", None), "model_type", None),
        "base_sha256": base_sha256(model),
    }
    tensors = {k: v.detach().contiguous() for k, v in lora_parameters(model).items()}
    tmp = folder / f".{ADAPTER_WEIGHTS}.tmp-{os.getpid()}"
    save_file(tensors, str(tmp), metadata={"format": "neuralops-lora"})
    os.replace(tmp, folder / ADAPTER_WEIGHTS)
    tmp = folder / f".{ADAPTER_CONFIG}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(config, indent=2), encoding="utf-8")
    os.replace(tmp, folder / ADAPTER_CONFIG)
    return folder


def load_adapter(
    model: nn.Module, folder: str | os.PathLike[str], *, check_base: bool = True
) -> nn.Module:
    """Add the adapters saved in ``folder`` to ``model`` (a plain base model), in place.

    With ``check_base`` the base weights must hash to the ``base_sha256`` the adapters were trained
    on; a mismatch raises ``ValueError`` (pass ``check_base=False`` to load anyway).
    """
    folder = Path(folder)
    cfg_path = folder / ADAPTER_CONFIG
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{folder} holds no LoRA adapter: {ADAPTER_CONFIG} is missing")
    config: dict[str, Any] = json.loads(cfg_path.read_text(encoding="utf-8"))
    if check_base and config.get("base_sha256") != base_sha256(model):
        raise ValueError(
            f"the adapters in {folder} were trained on other base weights (sha256 "
            f"{str(config.get('base_sha256'))[:12]}..., this model {base_sha256(model)[:12]}...); "
            "load the base model they were trained on, or pass check_base=False"
        )
    layers = config["layers"]
    missing = [n for n in layers if n not in dict(model.named_modules())]
    if missing:
        raise ValueError(f"adapter layers {missing} do not exist in this model")
    for name, spec in layers.items():
        base = model.get_submodule(name)
        wrapper = LoRALinear if isinstance(base, nn.Linear) else LoRAConv
        _set_child(model, name, wrapper(base, int(spec["rank"]), float(spec["alpha"])))
    tensors = load_file(str(folder / ADAPTER_WEIGHTS))
    expected = set(lora_parameters(model))
    if set(tensors) != expected:
        raise ValueError(
            f"adapter tensors do not match the layers: missing {sorted(expected - set(tensors))}, "
            f"unexpected {sorted(set(tensors) - expected)}"
        )
    model.load_state_dict(tensors, strict=False)
    for name, p in model.named_parameters():
        p.requires_grad_(".lora_A." in name or ".lora_B." in name)
    return model
