"""``neuralops hub entry FOLDER --name NAME [--version V] [--url BASE] [--set KEY=VALUE ...]``.

Prints a ready ``[[model]]`` catalog table for a ``save_pretrained`` folder: the architecture from
its ``config.json`` and, for every file, the exact size, the full sha256 and the URL ``BASE/file``
(default: the file's path). ``--set`` adds fields given as TOML values, e.g.
``--set 'metrics={split="test", rel_l2=0.01}'``.
"""

from __future__ import annotations

import argparse
import sys
import tomllib

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="neuralops hub", description="Model-zoo maintenance.")
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("entry", help="print a catalog entry for a save_pretrained folder")
    e.add_argument("folder")
    e.add_argument("--name", required=True, help="catalog name, [a-z0-9-]")
    e.add_argument("--version", default="1.0")
    e.add_argument(
        "--url", dest="url_base", help="base URL (or catalog-relative folder) of the files"
    )
    e.add_argument("--set", dest="fields", action="append", default=[], metavar="KEY=VALUE")
    a = p.parse_args(argv)

    from neuralops.hub import catalog_entry

    fields = {}
    for item in a.fields:
        key, sep, value = item.partition("=")
        if not sep:
            p.error(f"--set {item!r}: expected KEY=VALUE (VALUE a TOML literal)")
        try:
            fields[key.strip()] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            fields[key.strip()] = value  # a bare string
    try:
        text = catalog_entry(a.folder, a.name, a.version, url_base=a.url_base, **fields)
    except (FileNotFoundError, KeyError, ValueError) as exc:
        print(f"neuralops hub: error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0
