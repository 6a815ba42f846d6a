"""The model catalog (``models/catalog.toml``): which pretrained models exist and where their files are.

Every file of an entry has its exact size and full sha256, and a list of URLs tried in order
(relative URLs resolve against the catalog's folder, which is how weights shipped in the repository
are found). Lookup order: the ``catalog=`` argument, then ``NEURALOPS_CATALOG`` (a path, merged
over the default), then the repository's ``models/catalog.toml``, or, in an installed wheel without
the repository, the copy packaged as ``neuralops/hub/catalog.toml`` (a test keeps the two identical;
its entries' repository-relative files are not in the wheel, so they resolve only through their
http(s) URLs or ``NEURALOPS_MIRROR``).
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CatalogError",
    "FileEntry",
    "ModelEntry",
    "Catalog",
    "load_catalog",
    "DEFAULT_CATALOG",
    "PACKAGED_CATALOG",
    "REPOSITORY_CATALOG",
]

REPOSITORY_CATALOG = Path(__file__).resolve().parents[2] / "models" / "catalog.toml"
PACKAGED_CATALOG = Path(__file__).resolve().parent / "catalog.toml"
DEFAULT_CATALOG = REPOSITORY_CATALOG if REPOSITORY_CATALOG.is_file() else PACKAGED_CATALOG
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_SHA = re.compile(r"^[0-9a-f]{64}$")
_FILE_NAME = re.compile(r"^[A-Za-z0-9._-]+$")


class CatalogError(ValueError):
    """A catalog that cannot be used: bad syntax, a missing field, a bad name, size or checksum."""


@dataclass(frozen=True)
class FileEntry:
    name: str
    size: int
    sha256: str
    urls: tuple[str, ...]


@dataclass(frozen=True)
class ModelEntry:
    name: str
    version: str
    architecture: str
    files: tuple[FileEntry, ...]
    license: str = ""
    redistributable: bool = True
    intended_use: str = ""
    card: str = ""
    train_recipe: str = ""
    dataset: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    base: Path = Path(".")  # the catalog's folder: relative URLs resolve against it

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def shipped(self) -> bool:
        """Whether every file has a location next to the catalog (weights in the repository)."""
        return all(
            any(urllib.parse.urlparse(u).scheme not in ("http", "https", "file") for u in f.urls)
            for f in self.files
        )

    def file(self, name: str) -> FileEntry:
        for f in self.files:
            if f.name == name:
                return f
        raise CatalogError(f"{self.name} {self.version} has no file {name!r}")


def _entry(raw: dict[str, Any], where: str, base: Path) -> ModelEntry:
    for key in ("name", "version", "architecture", "files"):
        if key not in raw:
            raise CatalogError(f"{where}: the key {key!r} is missing")
    name, version = str(raw["name"]), str(raw["version"])
    if not _NAME.match(name):
        raise CatalogError(f"{where}: name {name!r} must be lower-case letters, digits and '-'")
    files = []
    for k, f in enumerate(raw["files"]):
        w = f"{where}.files[{k}]"
        fname = str(f.get("name", ""))
        if not _FILE_NAME.match(fname):  # never a path from a catalog or a server
            raise CatalogError(f"{w}: file name {fname!r} must be a plain name ([A-Za-z0-9._-])")
        size, sha = f.get("size"), str(f.get("sha256", "")).lower()
        if not isinstance(size, int) or size < 0:
            raise CatalogError(f"{w}: 'size' must be the exact byte count, got {size!r}")
        if not _SHA.match(sha):
            raise CatalogError(f"{w}: 'sha256' must be 64 hex digits, got {sha!r}")
        urls = tuple(str(u) for u in f.get("urls", ()))
        if not urls:
            raise CatalogError(f"{w}: 'urls' must list at least one location")
        files.append(FileEntry(fname, size, sha, urls))
    known = {"name", "version", "architecture", "files", "license", "redistributable"}
    known |= {"intended_use", "card", "train_recipe", "dataset", "metrics", "config"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise CatalogError(f"{where}: unknown keys {unknown} (valid: {sorted(known)})")
    return ModelEntry(
        name,
        version,
        str(raw["architecture"]),
        tuple(files),
        license=str(raw.get("license", "")),
        redistributable=bool(raw.get("redistributable", True)),
        intended_use=str(raw.get("intended_use", "")),
        card=str(raw.get("card", "")),
        train_recipe=str(raw.get("train_recipe", "")),
        dataset=dict(raw.get("dataset", {})),
        metrics=dict(raw.get("metrics", {})),
        base=base,
    )


@dataclass(frozen=True)
class Catalog:
    entries: tuple[ModelEntry, ...]
    sources: tuple[str, ...] = ()

    def get(self, name: str, version: str | None = None) -> ModelEntry:
        """The entry ``name`` (the highest version unless ``version`` is given)."""
        matches = [e for e in self.entries if e.name == name]
        if not matches:
            names = sorted({e.name for e in self.entries})
            close = difflib.get_close_matches(name, names, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise CatalogError(
                f"no model {name!r} in the catalog{hint} (available: {', '.join(names) or 'none'}; "
                f"catalogs read: {', '.join(self.sources) or 'none'})"
            )
        if version is not None:
            for e in matches:
                if e.version == version:
                    return e
            raise CatalogError(
                f"{name} has no version {version!r} (versions: {sorted(e.version for e in matches)})"
            )
        return max(
            matches, key=lambda e: tuple(int(p) if p.isdigit() else p for p in e.version.split("."))
        )


def _read(path: Path) -> list[ModelEntry]:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{path}: not valid TOML: {exc}") from None
    return [
        _entry(m, f"{path}: model[{k}]", path.parent) for k, m in enumerate(raw.get("model", []))
    ]


def load_catalog(catalog: str | os.PathLike | None = None) -> Catalog:
    """The catalog: ``catalog`` alone if given; else ``NEURALOPS_CATALOG`` merged over the default."""
    if catalog is not None:
        paths = [Path(catalog)]
    else:
        paths = [DEFAULT_CATALOG] if DEFAULT_CATALOG.is_file() else []
        env = os.environ.get("NEURALOPS_CATALOG")
        if env:
            paths.append(Path(env))
    entries: dict[tuple[str, str], ModelEntry] = {}
    for p in paths:
        if not p.is_file():
            raise CatalogError(f"catalog {p} does not exist")
        for e in _read(p):
            entries[(e.name, e.version)] = e  # later catalogs override
    return Catalog(tuple(entries.values()), tuple(str(p) for p in paths))
