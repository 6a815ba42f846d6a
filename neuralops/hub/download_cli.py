"""``neuralops download NAME [--version V] [--cache-dir D] [--offline] [--verify] [--accept-license]``
and ``--list``."""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="neuralops download", description="Fetch a pretrained model.")
    p.add_argument("name", nargs="?", help="catalog name (see --list)")
    p.add_argument("--list", action="store_true", help="list the catalog")
    p.add_argument("--version", help="a version (default: the newest)")
    p.add_argument(
        "--catalog", help="catalog TOML (default: models/catalog.toml, NEURALOPS_CATALOG)"
    )
    p.add_argument("--cache-dir", help="cache root (default: NEURALOPS_CACHE or the user cache)")
    p.add_argument("--offline", action="store_true", help="use the cache only; never the network")
    p.add_argument("--verify", action="store_true", help="re-hash cached files in full")
    p.add_argument(
        "--accept-license",
        action="store_true",
        help="accept the authors' licence of a model neuralops does not redistribute (e.g. Poseidon, "
        "CC-BY-NC-4.0); required to fetch one",
    )
    p.add_argument(
        "--all-shipped",
        action="store_true",
        help="fetch every model whose files ship with the catalog (no network needed)",
    )
    a = p.parse_args(argv)
    from neuralops.hub import CatalogError, DownloadError, download, list_models, load_catalog

    def fetch_one(name: str, version: str | None) -> None:
        entry = load_catalog(a.catalog).get(name, version)
        if not entry.redistributable and a.accept_license:
            print(
                f"{entry.name} {entry.version} is distributed by its authors under "
                f"{entry.license or 'their own terms'}, not by neuralops: by downloading it you "
                "accept that licence",
                file=sys.stderr,
            )
        path = download(
            entry.name,
            entry.version,
            catalog=a.catalog,
            cache_dir=a.cache_dir,
            local_files_only=a.offline,
            verify="full" if a.verify else "auto",
            accept_license=a.accept_license,
        )
        print(path)

    try:
        if a.list:
            rows = list_models(a.catalog)
            if not rows:
                print("the catalog lists no models")
            for e in rows:
                metrics = ", ".join(f"{k} {v}" for k, v in e.metrics.items())
                print(
                    f"{e.name} {e.version}  {e.architecture}  {_size(e.size)}  {e.license or '?'}"
                    f"  {e.dataset.get('recipe', '')}  {metrics}"
                )
            return 0
        if a.all_shipped:
            shipped = [e for e in list_models(a.catalog) if e.shipped]
            if not shipped:
                print("the catalog ships no models")
            for e in shipped:
                fetch_one(e.name, e.version)
            return 0
        if not a.name:
            p.error("give a model NAME, --list or --all-shipped")
        fetch_one(a.name, a.version)
    except (CatalogError, DownloadError) as exc:
        print(f"neuralops download: error: {exc}", file=sys.stderr)
        return 1
    return 0
