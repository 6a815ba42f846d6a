"""Poseidon checkpoints (Hugging Face layout) -> :class:`~neuralops.models.scot.ScOT`, without unpickling.

The published Poseidon weights (CC-BY-NC-4.0) keep the reference's SwinV2 module names; this module maps
them and the config onto our scOT. Tested against the reference implementation's own output
(``tests/fixtures/poseidon/``).
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

import torch

from neuralops.models.scot import ScOT, ScOTConfig

__all__ = ["load_poseidon", "poseidon_key_map"]


_CONFIG_FIELDS = {
    "image_size": "image_size",
    "patch_size": "patch_size",
    "num_channels": "in_channels",
    "num_out_channels": "out_channels",
    "embed_dim": "embed_dim",
    "depths": "depths",
    "num_heads": "num_heads",
    "skip_connections": "skip_connections",
    "window_size": "window_size",
    "mlp_ratio": "mlp_ratio",
    "qkv_bias": "qkv_bias",
    "layer_norm_eps": "layer_norm_eps",
    "use_conditioning": "use_conditioning",
    "learn_residual": "learn_residual",
}

_KEY_RULES = [
    (r"^embeddings\.patch_embeddings\.projection\.", "embed.proj."),
    (r"^embeddings\.norm\.", "embed.norm."),
    (r"^encoder\.layers\.(\d+)\.downsample\.", r"encoder.\1.merge."),
    (r"^decoder\.layers\.(\d+)\.upsample\.upsample\.", r"decoder.\1.unmerge.expand."),
    (r"^decoder\.layers\.(\d+)\.upsample\.", r"decoder.\1.unmerge."),
    (r"^(en|de)coder\.layers\.(\d+)\.blocks\.", r"\1coder.\2.blocks."),
    (r"\.attention\.self\.query\.", ".attn.q."),
    (r"\.attention\.self\.key\.", ".attn.k."),
    (r"\.attention\.self\.value\.", ".attn.v."),
    (r"\.attention\.self\.logit_scale$", ".attn.logit_scale"),
    (r"\.attention\.self\.continuous_position_bias_mlp\.", ".attn.cpb."),
    (r"\.attention\.output\.dense\.", ".attn.proj."),
    (r"\.layernorm_before\.", ".norm1."),
    (r"\.layernorm_after\.", ".norm2."),
    (r"\.intermediate\.dense\.", ".mlp.fc1."),
    (r"\.output\.dense\.", ".mlp.fc2."),
    (r"^residual_blocks\.(\d+)\.(\d+)\.pwconv1\.", r"skips.\1.\2.fc1."),
    (r"^residual_blocks\.(\d+)\.(\d+)\.pwconv2\.", r"skips.\1.\2.fc2."),
    (r"^residual_blocks\.(\d+)\.(\d+)\.weight$", r"skips.\1.\2.gamma"),
    (r"^residual_blocks\.", "skips."),
    (r"^patch_recovery\.projection\.", "recovery.proj."),
    (r"^patch_recovery\.mixup\.", "recovery.mixup."),
    # conditional norms hold alpha/beta as Linear layers named weight/bias
    (r"(norm[12]?)\.weight\.(weight|bias)$", r"\1.alpha.\2"),
    (r"(norm[12]?)\.bias\.(weight|bias)$", r"\1.beta.\2"),
]

#: buffers the reference may store that we recompute (relative position tables, masks)
_DERIVED = re.compile(r"(relative_coords_table|relative_position_index|attn_mask)$")


def poseidon_key_map(key: str) -> str:
    """The :class:`ScOT` parameter name of a Poseidon (Hugging Face SwinV2-style) checkpoint key.

    >>> poseidon_key_map("encoder.layers.1.blocks.0.attention.self.query.weight")
    'encoder.1.blocks.0.attn.q.weight'
    >>> poseidon_key_map("decoder.layers.0.upsample.norm.weight.bias")
    'decoder.0.unmerge.norm.alpha.bias'
    """
    for pattern, repl in _KEY_RULES:
        key = re.sub(pattern, repl, key)
    return key


def _strip_prefix(keys: list[str]) -> str:
    """A common top-level prefix (e.g. ``"scot."``) in front of the reference's module names, or ''."""
    roots = ("embeddings.", "encoder.", "decoder.", "residual_blocks.", "patch_recovery.")
    for key in keys:
        for root in roots:
            i = key.find(root)
            if i > 0 and key[i - 1] == ".":
                prefix = key[:i]
                if all(k.startswith(prefix) for k in keys):
                    return prefix
        if key.startswith(roots):
            return ""
    return ""


def load_poseidon(
    path: str | Path, *, strict: bool = True, dtype: torch.dtype = torch.float32, **overrides: Any
) -> ScOT:
    """Load a Poseidon checkpoint from a local Hugging Face folder (``config.json`` +
    ``model.safetensors``) into :class:`ScOT`; nothing is unpickled and nothing is downloaded.

    The Poseidon weights are licensed CC-BY-NC-4.0: neuralops never ships or fetches them on its own.
    ``overrides`` replace config fields (e.g. ``resample="pad"``). Missing or unexpected weights
    raise ``ValueError`` naming them (``strict=False`` loads what matches and warns).
    """
    from safetensors.torch import load_file

    folder = Path(path)
    cfg_path, weights = folder / "config.json", folder / "model.safetensors"
    for f in (cfg_path, weights):
        if not f.is_file():
            raise FileNotFoundError(
                f"{folder} is not a Poseidon checkpoint folder: {f.name} is missing "
                "(expected config.json and model.safetensors, as on the Hugging Face Hub)"
            )
    raw = json.loads(cfg_path.read_text(encoding="utf-8"))
    model_kind = raw.get("residual_model", "convnext")
    if model_kind != "convnext":
        raise ValueError(
            f"{cfg_path}: residual_model {model_kind!r} is not supported (only 'convnext')"
        )
    act = raw.get("hidden_act", "gelu")
    if act != "gelu":
        raise ValueError(f"{cfg_path}: hidden_act {act!r} is not supported (only 'gelu')")
    fields = {ours: raw[theirs] for theirs, ours in _CONFIG_FIELDS.items() if theirs in raw}
    if isinstance(fields.get("image_size"), list):
        fields["image_size"] = int(fields["image_size"][0])
    if isinstance(fields.get("patch_size"), list):
        fields["patch_size"] = int(fields["patch_size"][0])
    if "skip_connections" in fields:  # booleans in some configs: True -> 2 ConvNeXt blocks
        fields["skip_connections"] = tuple(
            int(v) if not isinstance(v, bool) else (2 if v else 0)
            for v in fields["skip_connections"]
        )
        # the reference adds a skip at every level; a shorter list (no deepest entry) means 0 there
        depth = len(fields.get("depths", ScOTConfig.depths))
        fields["skip_connections"] = tuple(fields["skip_connections"]) + (0,) * (
            depth - len(fields["skip_connections"])
        )
    config = ScOTConfig(**{**fields, **overrides})
    model = ScOT(config)

    state = load_file(str(weights))
    prefix = _strip_prefix(list(state))
    mapped: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if _DERIVED.search(key):
            continue
        mapped[poseidon_key_map(key[len(prefix) :])] = value
    own = model.state_dict()
    missing = sorted(set(own) - set(mapped))
    unexpected = sorted(set(mapped) - set(own))
    if missing or unexpected:
        msg = (
            f"{weights} does not match ScOT({config}): missing keys {missing[:20]}"
            f"{' ...' if len(missing) > 20 else ''} ({len(missing)}), unexpected keys {unexpected[:20]}"
            f"{' ...' if len(unexpected) > 20 else ''} ({len(unexpected)})"
        )
        if strict:
            raise ValueError(msg)
        warnings.warn(msg, stacklevel=2)
    bad = [
        f"{k}: checkpoint {tuple(mapped[k].shape)} vs model {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(mapped))
        if mapped[k].shape != own[k].shape
    ]
    if bad:
        raise ValueError(f"{weights}: shape mismatch for {bad[:20]}")
    model.load_state_dict({k: v for k, v in mapped.items() if k in own}, strict=False)
    return model.to(dtype)
