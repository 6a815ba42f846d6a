"""Model-hub speed: download throughput against a plain ``urllib`` copy, and ``from_pretrained`` latency.

python benchmarks/hub_download.py            # 256 MiB file, 7 alternating rounds
python benchmarks/hub_download.py --quick    # 32 MiB, 3 rounds

1. Throughput. A loopback ``ThreadingHTTPServer`` (stdlib, ``SimpleHTTPRequestHandler``) serves one
   random file. Per round, in alternating order, (a) a plain copy: ``urllib.request.urlopen`` +
   ``shutil.copyfileobj`` (1 MiB buffer) into a file, no checksum, no fsync; (b)
   ``neuralops.hub.fetch`` of a catalog entry for the same file into an empty cache: lock, ``.part``
   file, streaming sha256, size cap, fsync, atomic rename, manifest. Reported: the median MiB/s of
   each and the ratio fetch / plain (goal: at least 0.9, i.e. within 10 %). Twice: from the
   unthrottled loopback server (hundreds of MiB/s: the sha256 and the fsync that makes the file
   durable show in full) and from a server throttled to ``--rate`` MiB/s (default 100, a fast
   network link, where a download spends its time).
2. ``from_pretrained`` latency for every model shipped in ``models/catalog.toml``: cold (empty cache:
   copy from the repository and verify) and warm (cache hit: size/mtime against the manifest, then
   safetensors load), median over rounds; time from the call to a model ready for ``forward``.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import http.server
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from _common import save, table

from neuralops.hub import fetch, from_pretrained, list_models
from neuralops.hub.catalog import FileEntry, ModelEntry


class _Quiet(http.server.SimpleHTTPRequestHandler):
    rate: float | None = None  # MiB/s; None = as fast as loopback goes

    def log_message(self, *args):  # noqa: D102
        pass

    def copyfile(self, source, outputfile):  # noqa: D102
        if self.rate is None:
            return super().copyfile(source, outputfile)
        t0, sent = time.perf_counter(), 0
        while block := source.read(1 << 18):
            outputfile.write(block)
            sent += len(block)
            ahead = sent / (self.rate * 2**20) - (time.perf_counter() - t0)
            if ahead > 0:
                time.sleep(ahead)


def _serve(folder: Path, rate: float | None = None) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(type("_H", (_Quiet,), {"rate": rate}), directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def _plain(url: str, dest: Path) -> None:
    with urllib.request.urlopen(url) as resp, open(dest, "wb") as out:  # noqa: S310 (loopback)
        shutil.copyfileobj(resp, out, 1 << 20)


def throughput(size_mib: int, rounds: int, rate: float | None = None) -> list[dict]:
    work = Path(tempfile.mkdtemp(prefix="hub-bench-"))
    try:
        served = work / "served"
        served.mkdir()
        blob = served / "blob.bin"
        blob.write_bytes(os.urandom(size_mib << 20))
        sha = hashlib.sha256(blob.read_bytes()).hexdigest()
        server, base = _serve(served, rate)
        url = f"{base}/blob.bin"
        entry = ModelEntry(
            name="bench-blob",
            version="1.0",
            architecture="none",
            files=(FileEntry("blob.bin", blob.stat().st_size, sha, (url,)),),
        )
        times: dict[str, list[float]] = {"plain urllib copy": [], "neuralops.hub.fetch": []}
        for r in range(rounds + 1):  # round 0 warms the page cache and the server
            order = ["plain urllib copy", "neuralops.hub.fetch"]
            if r % 2:
                order.reverse()
            for how in order:
                target = work / f"run-{r}-{how[:5]}"
                target.mkdir()
                t0 = time.perf_counter()
                if how.startswith("plain"):
                    _plain(url, target / "blob.bin")
                else:
                    folder = fetch(entry, cache_dir=target)
                    assert (folder / "blob.bin").stat().st_size == blob.stat().st_size
                dt = time.perf_counter() - t0
                if r:
                    times[how].append(dt)
                shutil.rmtree(target)
        server.shutdown()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = []
    for how, ts in times.items():
        med = statistics.median(ts)
        rows.append(
            {
                "method": how,
                "server": f"{rate:g} MiB/s" if rate else "loopback, unthrottled",
                "size_mib": size_mib,
                "median_s": med,
                "mib_per_s": size_mib / med,
                "rounds": rounds,
            }
        )
    ratio = rows[1]["mib_per_s"] / rows[0]["mib_per_s"]
    rows[1]["throughput_ratio"] = ratio
    return rows


def latency(rounds: int) -> list[dict]:
    rows = []
    for entry in list_models():
        cold, warm = [], []
        for _ in range(rounds):
            cache = Path(tempfile.mkdtemp(prefix="hub-cache-"))
            try:
                t0 = time.perf_counter()
                from_pretrained(entry.name, cache_dir=cache)
                cold.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                from_pretrained(entry.name, cache_dir=cache, local_files_only=True)
                warm.append(time.perf_counter() - t0)
            finally:
                shutil.rmtree(cache, ignore_errors=True)
        rows.append(
            {
                "model": entry.name,
                "size_kib": entry.size / 1024,
                "cold_ms": 1e3 * statistics.median(cold),
                "warm_ms": 1e3 * statistics.median(warm),
                "rounds": rounds,
            }
        )
    return rows


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--size-mib", type=int)
    p.add_argument("--rounds", type=int)
    p.add_argument(
        "--rate", type=float, default=100.0, help="MiB/s of the throttled server (a fast network)"
    )
    a = p.parse_args(argv)
    size = a.size_mib or (32 if a.quick else 256)
    rounds = a.rounds or (3 if a.quick else 7)
    rows = throughput(size, rounds) + throughput(size, rounds, rate=a.rate)
    print(
        table(rows, ["method", "server", "size_mib", "median_s", "mib_per_s", "throughput_ratio"])
    )
    lat = latency(rounds)
    if lat:
        print(table(lat, ["model", "size_kib", "cold_ms", "warm_ms"]))
    name = "hub_download_quick" if a.quick else "hub_download"
    path = save(name, rows, latency=lat, goal="fetch throughput >= 0.9 x plain urllib copy")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
