"""Write a folder of files so that readers never see a partial one."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

__all__ = ["write_folder"]


def write_folder(folder: str | os.PathLike, writers: Mapping[str, Callable[[Path], None]]) -> Path:
    """Create ``folder`` holding one file per ``writers`` entry (``name -> write(path)``), atomically.

    The files are written to a temporary folder beside ``folder``, which is then renamed; when
    ``folder`` already exists its files are replaced one by one with ``os.replace``. On any error the
    temporary folder is removed and ``folder`` is left as it was.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    try:
        for name, write in writers.items():
            write(tmp / name)
        try:
            os.rename(tmp, folder)  # atomic when folder does not exist (or is empty)
        except OSError:
            if not folder.is_dir():
                raise
            for name in writers:
                os.replace(tmp / name, folder / name)
            tmp.rmdir()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder
