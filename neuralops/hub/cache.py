"""Verified, resumable, lock-protected downloads into the cache; an offline switch that never opens a socket.

``fetch(entry)`` returns the local folder holding every file of a catalog entry, each checked against
its catalog size and full sha256. Per file:

1. a file already in the cache whose size and mtime match its manifest (or, failing that, whose
   sha256 matches) is used as it is: no network, offline or not;
2. offline (``local_files_only=True`` or ``NEURALOPS_OFFLINE=1``) no socket is opened: a missing
   file is copied (and verified) only from a source on this machine (weights shipped next to the
   catalog, ``file://``); with none, :class:`OfflineError` names the path, size, sha256 and URLs to
   copy it from by hand;
3. otherwise ``<file>.lock`` is taken (another process downloading the same file is waited for,
   then its result reused) and the sources are tried in order: ``NEURALOPS_MIRROR``
   (``{mirror}/{name}/{version}/{file}``), then the entry's URLs (``http(s)://``, ``file://``, plain
   or catalog-relative paths). A ``<file>.part`` left by an interrupted transfer is resumed with
   ``Range: bytes=N-`` (a server that ignores Range restarts it). Transfers stream into the part while
   hashing and stop as soon as they exceed the catalog size (an HTML error page); connection errors
   and 5xx are retried (3 tries, backoff); 404/403 move to the next source; a size or hash mismatch
   deletes the part and moves on. Success: fsync, ``os.replace`` into place, manifest written.
4. all sources failing raises :class:`DownloadError` listing every URL with its outcome.

The cache is never left holding a file that would later be read as valid.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import json
import logging
import os
import queue
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from neuralops.hub.catalog import FileEntry, ModelEntry

__all__ = ["DownloadError", "OfflineError", "cache_root", "fetch", "is_offline"]

log = logging.getLogger(__name__)

CHUNK = 1 << 20
FLUSH_EVERY = 4 << 20  # bytes between background fdatasync calls
RETRIES = 3
BACKOFF = (1.0, 2.0, 4.0)
TIMEOUT = 30.0


class DownloadError(RuntimeError):
    """Every source of a file failed; the message lists each URL and what happened."""


class OfflineError(DownloadError):
    """Offline mode and a file missing from the cache."""


def is_offline(local_files_only: bool = False) -> bool:
    return local_files_only or os.environ.get("NEURALOPS_OFFLINE", "") not in ("", "0", "false")


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """``cache_dir`` -> ``NEURALOPS_CACHE`` -> the platform's user cache folder (``neuralops``)."""
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("NEURALOPS_CACHE")
    if env:
        return Path(env)
    try:
        from platformdirs import user_cache_dir

        return Path(user_cache_dir("neuralops"))
    except ImportError:  # pragma: no cover - platformdirs is a dependency
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        return Path(base) / "neuralops"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _manifest_path(folder: Path) -> Path:
    return folder / "manifest.json"


def _read_manifest(folder: Path) -> dict[str, Any]:
    try:
        return json.loads(_manifest_path(folder).read_text())
    except (OSError, ValueError):
        return {}


def _write_manifest(folder: Path, name: str, record: dict[str, Any]) -> None:
    data = _read_manifest(folder)
    data[name] = record
    tmp = folder / f".manifest.json.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, _manifest_path(folder))


def _valid(path: Path, f: FileEntry, verify: str) -> bool:
    """Whether the cached ``path`` is ``f``: size always; sha256 unless the manifest vouches for it."""
    try:
        st = path.stat()
    except OSError:
        return False
    if st.st_size != f.size:
        return False
    rec = _read_manifest(path.parent).get(f.name, {})
    if verify != "full" and rec.get("sha256") == f.sha256 and rec.get("mtime") == st.st_mtime:
        return True
    if _sha256(path) != f.sha256:
        return False
    _write_manifest(
        path.parent, f.name, {**rec, "sha256": f.sha256, "size": f.size, "mtime": st.st_mtime}
    )
    return True


def _sources(entry: ModelEntry, f: FileEntry) -> list[str]:
    out = []
    mirror = os.environ.get("NEURALOPS_MIRROR")
    if mirror:
        out.append(f"{mirror.rstrip('/')}/{entry.name}/{entry.version}/{f.name}")
    for u in f.urls:
        scheme = urllib.parse.urlparse(u).scheme
        if scheme in ("http", "https", "file"):
            out.append(u)
        else:  # a path, relative to the catalog's folder
            p = Path(u)
            out.append(str(p if p.is_absolute() else entry.base / p))
    return out


class _Fail(Exception):
    def __init__(self, outcome: str, *, retry: bool = False, keep_part: bool = False) -> None:
        super().__init__(outcome)
        self.outcome, self.retry, self.keep_part = outcome, retry, keep_part


def _read_ahead(src: Any, depth: int = 4) -> Any:
    """The blocks ``src.read(CHUNK)`` returns, read by a helper thread up to ``depth`` blocks ahead, so
    the socket read overlaps the hashing and writing of earlier blocks (all three release the GIL).
    An error in the reader is raised here; leaving the loop early stops the reader."""
    blocks: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                blocks.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def pump() -> None:
        try:
            while put(block := src.read(CHUNK)) and block:
                pass
        except BaseException as exc:  # handed to the consumer, re-raised there
            put(exc)

    reader = threading.Thread(target=pump, name="neuralops-download", daemon=True)
    reader.start()
    try:
        while True:
            item = blocks.get()
            if isinstance(item, BaseException):
                raise item
            if not item:
                return
            yield item
    finally:
        stop.set()
        reader.join(timeout=5)


def _stream(src, part: Path, f: FileEntry, h: Any, mode: str) -> int:
    """Append ``src`` to ``part`` while hashing; refuse more bytes than the catalog size.

    The bytes are made durable while they arrive: every ``FLUSH_EVERY`` bytes a background
    ``fdatasync`` is started (if the previous one has finished), so the disk writes overlap the
    transfer and the final ``fsync`` only has the tail left.
    """
    have = part.stat().st_size if mode == "ab" and part.exists() else 0
    flusher: threading.Thread | None = None
    unflushed = 0
    with open(part, mode) as out:
        try:
            for block in _read_ahead(src):
                have += len(block)
                if have > f.size:
                    raise _Fail(f"more than the catalog size {f.size} bytes (an error page?)")
                h.update(block)
                try:
                    out.write(block)
                except OSError as exc:
                    if exc.errno == errno.ENOSPC:
                        raise _Fail(
                            f"disk full writing {part} ({exc}); free space or set NEURALOPS_CACHE"
                        ) from None
                    raise
                unflushed += len(block)
                if unflushed >= FLUSH_EVERY and (flusher is None or not flusher.is_alive()):
                    out.flush()
                    flusher = threading.Thread(target=_datasync, args=(out.fileno(),), daemon=True)
                    flusher.start()
                    unflushed = 0
            out.flush()
        finally:
            if flusher is not None:
                flusher.join()
        os.fsync(out.fileno())
    return have


def _datasync(fd: int) -> None:
    try:
        os.fdatasync(fd)
    except OSError:  # the final fsync reports a real failure
        pass


def _transfer(url: str, part: Path, f: FileEntry) -> str:
    """One attempt from ``url`` into ``part`` (resuming it over HTTP when it has bytes); returns the
    sha256 of the whole part, hashed while streaming (the bytes are read once)."""
    scheme = urllib.parse.urlparse(url).scheme
    if scheme not in ("http", "https"):
        path = Path(urllib.parse.urlparse(url).path) if scheme == "file" else Path(url)
        if not path.is_file():
            raise _Fail("no such file")
        h = hashlib.sha256()
        with open(path, "rb") as src:
            _stream(src, part, f, h, "wb")
        return h.hexdigest()
    h = hashlib.sha256()
    start = part.stat().st_size if part.exists() else 0
    if start >= f.size:
        part.unlink(missing_ok=True)
        start = 0
    if start:
        with open(part, "rb") as fh:
            for block in iter(lambda: fh.read(CHUNK), b""):
                h.update(block)
    req = urllib.request.Request(url, headers={"Range": f"bytes={start}-"} if start else {})
    try:
        resp = urllib.request.urlopen(req, timeout=TIMEOUT)  # noqa: S310 (http(s) only)
    except urllib.error.HTTPError as exc:
        if exc.code == 416:
            part.unlink(missing_ok=True)
            raise _Fail("HTTP 416 (range not satisfiable): restarting", retry=True) from None
        if exc.code >= 500:
            raise _Fail(f"HTTP {exc.code}", retry=True, keep_part=True) from None
        raise _Fail(f"HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise _Fail(f"connection failed ({exc})", retry=True, keep_part=True) from None
    with resp:
        if start and resp.status != 206:  # the server ignored Range: start over
            h = hashlib.sha256()
            mode, start = "wb", 0
        else:
            mode = "ab" if start else "wb"
        length = resp.headers.get("Content-Length")
        promised = start + int(length) if length and length.isdigit() else None
        try:
            have = _stream(resp, part, f, h, mode)
        except (OSError, urllib.error.URLError, http.client.HTTPException) as exc:
            raise _Fail(f"connection dropped ({exc})", retry=True, keep_part=True) from None
    if have < f.size:
        if promised is not None and have >= promised:  # a complete answer, but not this file
            raise _Fail(
                f"the server sent {have} bytes; the catalog size is {f.size} (an error page?)"
            )
        # the connection closed early: resume from here on the next attempt
        raise _Fail(f"transfer ended at {have} of {f.size} bytes", retry=True, keep_part=True)
    return h.hexdigest()


def _is_local(url: str) -> bool:
    return urllib.parse.urlparse(url).scheme not in ("http", "https")


def _fetch_file(
    entry: ModelEntry, f: FileEntry, folder: Path, verify: str, *, local_only: bool = False
) -> Path:
    final = folder / f.name
    part = folder / f"{f.name}.part"
    outcomes: list[str] = []
    for url in _sources(entry, f):
        if local_only and not _is_local(url):
            continue
        for attempt in range(RETRIES):
            try:
                found = _transfer(url, part, f)
            except _Fail as fail:
                outcomes.append(f"{url}: {fail.outcome}")
                if not fail.keep_part and not fail.retry:
                    part.unlink(missing_ok=True)
                if fail.retry and attempt + 1 < RETRIES:
                    time.sleep(BACKOFF[attempt] * _BACKOFF_SCALE)
                    continue
                if not fail.keep_part:
                    part.unlink(missing_ok=True)
                break
            size = part.stat().st_size
            if size != f.size or found != f.sha256:
                outcomes.append(
                    f"{url}: got {size} bytes with sha256 {found[:16]}..., expected {f.size} bytes "
                    f"with sha256 {f.sha256[:16]}... (corrupt or wrong file; removed)"
                )
                part.unlink(missing_ok=True)
                break
            os.replace(part, final)
            _fsync_dir(folder)
            st = final.stat()
            _write_manifest(
                folder,
                f.name,
                {
                    "sha256": f.sha256,
                    "size": f.size,
                    "mtime": st.st_mtime,
                    "source": url,
                    "time": time.time(),
                },
            )
            return final
    part.unlink(missing_ok=True)
    raise DownloadError(
        f"could not download {entry.name} {entry.version} / {f.name} ({f.size} bytes, sha256 "
        f"{f.sha256}):\n  " + "\n  ".join(outcomes or ["no source"])
    )


_BACKOFF_SCALE = 1.0  # tests shrink the waits


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fetch(
    entry: ModelEntry,
    *,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    verify: str = "auto",
    lock_timeout: float = 600.0,
) -> Path:
    """The cache folder holding every file of ``entry``, downloading what is missing (see the module doc).

    Under an initialised ``torch.distributed`` group, every rank must call it: local rank 0 of each
    node downloads, the group waits at a barrier, then the other ranks find the verified files (the
    file lock also protects a filesystem shared between nodes).
    """
    kw = dict(cache_dir=cache_dir, local_files_only=local_files_only, verify=verify)
    dist = _process_group()
    if dist is None:
        return _fetch_entry(entry, lock_timeout=lock_timeout, **kw)
    if int(os.environ.get("LOCAL_RANK", "0")) == 0:
        try:
            return _fetch_entry(entry, lock_timeout=lock_timeout, **kw)
        finally:
            dist.barrier()  # reached on failure too, so no rank waits forever
    dist.barrier()
    return _fetch_entry(entry, lock_timeout=lock_timeout, **kw)


def _process_group() -> Any:
    """``torch.distributed`` when a process group of more than one rank is initialised, else None."""
    import sys

    dist = sys.modules.get("torch.distributed")
    if dist is None or not dist.is_available() or not dist.is_initialized():
        return None
    return dist if dist.get_world_size() > 1 else None


def _fetch_entry(
    entry: ModelEntry,
    *,
    cache_dir: str | os.PathLike | None,
    local_files_only: bool,
    verify: str,
    lock_timeout: float,
) -> Path:
    from filelock import FileLock, Timeout

    folder = cache_root(cache_dir) / "models" / entry.name / entry.version
    folder.mkdir(parents=True, exist_ok=True)
    offline = is_offline(local_files_only)
    for f in entry.files:
        path = folder / f.name
        if _valid(path, f, verify):
            continue
        if offline and not any(_is_local(u) for u in _sources(entry, f)):
            raise OfflineError(
                f"offline and {entry.name} {entry.version} / {f.name} is not in the cache: expected "
                f"{path} ({f.size} bytes, sha256 {f.sha256}); copy it there from one of "
                f"{', '.join(_sources(entry, f))}, or go online (unset NEURALOPS_OFFLINE)"
            )
        lock = FileLock(str(folder / f"{f.name}.lock"))
        try:
            with lock.acquire(timeout=lock_timeout):
                if _valid(path, f, verify):  # another process finished it while we waited
                    continue
                if path.exists():
                    path.unlink()  # a file that fails verification is never kept
                # offline, only files on this machine are copied (shipped weights, file://)
                _fetch_file(entry, f, folder, verify, local_only=offline)
        except Timeout:
            raise DownloadError(
                f"waited {lock_timeout:.0f} s for {lock.lock_file}, held by another download of "
                f"{f.name}; remove the lock file if no such process is running"
            ) from None
    return folder
