"""Pretrained models: the catalog, a verified cache with resumable downloads, and ``from_pretrained``.

>>> from neuralops.hub import list_models
>>> isinstance(list_models(), list)
True
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from neuralops.hub.cache import DownloadError, OfflineError, cache_root, fetch
from neuralops.hub.catalog import Catalog, CatalogError, FileEntry, ModelEntry, load_catalog

__all__ = [
    "Catalog",
    "CatalogError",
    "DownloadError",
    "FileEntry",
    "LicenseNotAcceptedError",
    "ModelEntry",
    "OfflineError",
    "cache_root",
    "catalog_entry",
    "download",
    "fetch",
    "from_pretrained",
    "list_models",
    "load_catalog",
    "predict",
    "save_pretrained",
]


def list_models(catalog: str | os.PathLike | None = None) -> list[ModelEntry]:
    """Every catalog entry (name, version, architecture, size, licence, dataset, metrics)."""
    try:
        return list(load_catalog(catalog).entries)
    except CatalogError:
        if catalog is not None:
            raise
        return []


class LicenseNotAcceptedError(DownloadError):
    """A model that neuralops does not redistribute was asked for without accepting its licence."""


def _check_license(entry: ModelEntry, accept_license: bool) -> None:
    if entry.redistributable or accept_license:
        return
    raise LicenseNotAcceptedError(
        f"{entry.name} {entry.version} is distributed by its authors under "
        f"{entry.license or 'their own terms'}, not by neuralops: by downloading it you "
        "accept that licence. Read it, then pass accept_license=True (command line: "
        "--accept-license) to fetch it from its upstream location"
    )


def download(
    name: str,
    version: str | None = None,
    *,
    catalog: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    verify: str = "auto",
    accept_license: bool = False,
) -> Path:
    """The verified cache folder of catalog model ``name`` (downloaded when needed).

    Entries with ``redistributable = false`` (weights under the authors' own licence, e.g. Poseidon's
    CC-BY-NC-4.0) need ``accept_license=True``; otherwise :class:`LicenseNotAcceptedError`."""
    entry = load_catalog(catalog).get(name, version)
    _check_license(entry, accept_license)
    return fetch(entry, cache_dir=cache_dir, local_files_only=local_files_only, verify=verify)


def from_pretrained(
    name_or_path: str | os.PathLike,
    version: str | None = None,
    *,
    catalog: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    device: str = "cpu",
    strict: bool = True,
    accept_license: bool = False,
) -> Any:
    """A model from a local ``save_pretrained`` folder or a catalog name (safetensors + JSON only).

    A catalog model is fetched into the cache first (sha256-verified). The model carries
    ``normalizer`` (the :class:`~neuralops.data.Normalizer` it was trained with, or None; see
    :func:`predict`), ``card`` (its model card's text, or "") and, from the catalog, ``catalog_entry``.
    """
    from neuralops.data.normalizer import normalizer_of
    from neuralops.models import load_pretrained

    path = Path(name_or_path)
    entry = None
    if path.is_dir():
        folder = path
    else:
        entry = load_catalog(catalog).get(str(name_or_path), version)
        _check_license(entry, accept_license)
        folder = fetch(entry, cache_dir=cache_dir, local_files_only=local_files_only)
    model = load_pretrained(folder, map_location=device, strict=strict)
    model.normalizer = normalizer_of(folder)
    card = entry.base / entry.card if entry is not None and entry.card else folder / "README.md"
    model.card = card.read_text(encoding="utf-8") if card.is_file() else ""
    model.catalog_entry = entry
    return model


def predict(model: Any, x: Any, *args: Any) -> Any:
    """``model`` applied to ``x`` in physical units: inputs encoded and outputs decoded with the
    model's ``normalizer`` (as :func:`from_pretrained` attaches it) when it has one."""
    norm = getattr(model, "normalizer", None)
    if norm is None:
        return model(x, *args)
    x = norm.encode(x, key="input")
    return norm.decode(model(x, *args), key="target")


def save_pretrained(
    model: Any,
    folder: str | os.PathLike,
    *,
    normalizer: Any = None,
    card: str | os.PathLike | None = None,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write ``model.safetensors`` + ``config.json`` (the model's own ``save_pretrained``), the
    ``normalizer`` (``normalizer.json``) and the model card (a Markdown file, as ``README.md``):
    everything :func:`from_pretrained` and a catalog entry (:func:`catalog_entry`) need."""
    folder = Path(folder)
    model.save_pretrained(folder, normalizer=normalizer, metadata=metadata)
    if normalizer is not None and hasattr(normalizer, "save"):
        normalizer.save(folder)
    if card is not None:
        text = Path(card).read_text(encoding="utf-8")
        tmp = folder / "README.md.tmp"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, folder / "README.md")
    return folder


def catalog_entry(
    folder: str | os.PathLike,
    name: str,
    version: str = "1.0",
    *,
    url_base: str | None = None,
    **fields: Any,
) -> str:
    """A ready ``[[model]]`` TOML table for a ``save_pretrained`` folder: exact sizes and sha256 of
    its files, URLs ``{url_base}/{file}`` (default: the folder's path). ``fields`` adds keys such as
    ``license``, ``train_recipe``, ``intended_use``."""
    import hashlib
    import json

    from neuralops._toml import toml_key, toml_value

    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text())
    lines = ["[[model]]", f'name = "{name}"', f'version = "{version}"']
    lines.append(f'architecture = "{config["model_type"]}"')
    for key, value in fields.items():
        lines.append(f"{toml_key(key)} = {toml_value(value)}")
    lines.append("files = [")
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        url = f"{url_base.rstrip('/')}/{path.name}" if url_base else str(path)
        lines.append(
            f'  {{ name = "{path.name}", size = {path.stat().st_size}, sha256 = "{digest}", '
            f'urls = ["{url}"] }},'
        )
    lines.append("]")
    return "\n".join(lines) + "\n"
