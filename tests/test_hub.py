"""The model hub against a loopback HTTP server: verified, resumable, locked downloads; offline mode."""

import errno
import hashlib
import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from neuralops.hub import (
    CatalogError,
    DownloadError,
    LicenseNotAcceptedError,
    OfflineError,
    download,
    from_pretrained,
    load_catalog,
)
from neuralops.hub import cache as dl
from neuralops.models import FNO, FNOConfig


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict = {}
    log: list = []

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):  # noqa: N802
        route = self.routes.get(self.path)
        rng = self.headers.get("Range")
        self.log.append((self.path, rng))
        if route is None:
            self.send_error(404)
            return
        data, mode = route["data"], route.get("mode", "ok")
        if mode == "500" and route.setdefault("fails", 2) > 0:
            route["fails"] -= 1
            self.send_error(500)
            return
        if mode == "html":
            body = b"<html>Service unavailable, try later</html>" * 200
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if mode == "flip":
            data = bytearray(data)
            data[len(data) // 2] ^= 0xFF
            data = bytes(data)
        start = 0
        if rng and mode != "ignore_range":
            start = int(rng.split("=")[1].split("-")[0])
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        chunk = data[start:]
        if mode == "drop" and route.setdefault("drops", 1) > 0:
            route["drops"] -= 1
            self.wfile.write(chunk[: len(chunk) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if mode == "slow":
            for k in range(0, len(chunk), 4096):
                self.wfile.write(chunk[k : k + 4096])
                time.sleep(0.002)
            return
        self.wfile.write(chunk)


@pytest.fixture()
def server():
    _Handler.routes, _Handler.log = {}, []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield httpd, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch):
    monkeypatch.setattr(dl, "_BACKOFF_SCALE", 0.01)
    monkeypatch.delenv("NEURALOPS_OFFLINE", raising=False)
    monkeypatch.delenv("NEURALOPS_MIRROR", raising=False)


@pytest.fixture()
def tiny(tmp_path):
    torch.manual_seed(0)
    model = FNO(FNOConfig(modes=(3, 3), width=6, lifting_channels=6, projection_channels=6))
    folder = model.save_pretrained(tmp_path / "tiny")
    files = {p.name: p.read_bytes() for p in Path(folder).iterdir()}
    return model, files


def _catalog(tmp_path, files, urls_for, name="tiny-fno", sha_override=None):
    lines = [
        f'[[model]]\nname = "{name}"\nversion = "1.0"\narchitecture = "fno"\nlicense = "MIT"\nfiles = ['
    ]
    for fname, data in files.items():
        sha = (sha_override or {}).get(fname, hashlib.sha256(data).hexdigest())
        urls = ", ".join(f'"{u}"' for u in urls_for(fname))
        lines.append(
            f'  {{ name = "{fname}", size = {len(data)}, sha256 = "{sha}", urls = [{urls}] }},'
        )
    lines.append("]")
    path = tmp_path / "catalog.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _serve(httpd, files, prefix="/w/", mode="ok"):
    for fname, data in files.items():
        _Handler.routes[prefix + fname] = {"data": data, "mode": mode}


def test_download_verify_and_load(tmp_path, server, tiny, monkeypatch):
    httpd, base = server
    model, files = tiny
    _serve(httpd, files)
    cat = _catalog(tmp_path, files, lambda f: [f"{base}/w/{f}"])
    loaded = from_pretrained("tiny-fno", catalog=cat, cache_dir=tmp_path / "cache")
    x = torch.randn(1, 1, 8, 8)
    assert torch.equal(loaded(x), model(x)) and loaded.catalog_entry.name == "tiny-fno"
    # a verified file never triggers the network again, offline or not
    n = len(_Handler.log)

    def no_socket(*a, **k):
        raise AssertionError("a socket was opened")

    monkeypatch.setattr(socket, "socket", no_socket)
    monkeypatch.setenv("NEURALOPS_OFFLINE", "1")
    again = from_pretrained("tiny-fno", catalog=cat, cache_dir=tmp_path / "cache")
    assert torch.equal(again(x), model(x)) and len(_Handler.log) == n


def test_resume_after_a_dropped_connection(tmp_path, server, tiny):
    httpd, base = server
    _, files = tiny
    _serve(httpd, files, mode="drop")
    cat = _catalog(tmp_path, files, lambda f: [f"{base}/w/{f}"])
    folder = download("tiny-fno", catalog=cat, cache_dir=tmp_path / "c")
    weights = files["model.safetensors"]
    assert (folder / "model.safetensors").read_bytes() == weights
    ranges = [r for p, r in _Handler.log if p == "/w/model.safetensors"]
    assert (
        ranges[0] is None and ranges[1] == f"bytes={len(weights) // 2}-"
    )  # resumed, not restarted


def test_server_ignoring_range_restarts_cleanly(tmp_path, server, tiny):
    httpd, base = server
    _, files = tiny
    _serve(httpd, files, mode="ignore_range")
    cat = _catalog(tmp_path, files, lambda f: [f"{base}/w/{f}"])
    cache = tmp_path / "c" / "models" / "tiny-fno" / "1.0"
    cache.mkdir(parents=True)
    (cache / "model.safetensors.part").write_bytes(b"\0" * 100)  # a stale part
    folder = download("tiny-fno", catalog=cat, cache_dir=tmp_path / "c")
    assert (folder / "model.safetensors").read_bytes() == files["model.safetensors"]


def test_corrupt_bytes_are_rejected_and_nothing_stays(tmp_path, server, tiny):
    httpd, base = server
    _, files = tiny
    _serve(httpd, files, mode="flip")
    cat = _catalog(tmp_path, files, lambda f: [f"{base}/w/{f}"])
    with pytest.raises(DownloadError, match="sha256") as err:
        download("tiny-fno", catalog=cat, cache_dir=tmp_path / "c")
    assert "corrupt or wrong file" in str(err.value)
    left = sorted(p.name for p in (tmp_path / "c/models/tiny-fno/1.0").iterdir())
    assert not [
        n for n in left if n.endswith((".part", ".safetensors", ".json")) and n != "manifest.json"
    ]


def test_404_and_500_fall_through_to_the_next_source(tmp_path, server, tiny):
    httpd, base = server
    _, files = tiny
    _serve(httpd, files, prefix="/flaky/", mode="500")
    _serve(httpd, files, prefix="/html/", mode="html")
    cat = _catalog(
        tmp_path, files, lambda f: [f"{base}/missing/{f}", f"{base}/html/{f}", f"{base}/flaky/{f}"]
    )
    folder = download("tiny-fno", catalog=cat, cache_dir=tmp_path / "c")
    assert (folder / "config.json").read_bytes() == files["config.json"]
    paths = [p for p, _ in _Handler.log]
    assert paths.count("/flaky/model.safetensors") == 3  # 500, 500, then 200 (retried with backoff)


def test_every_source_failing_lists_each_url(tmp_path, server, tiny):
    _, base = server
    _, files = tiny
    cat = _catalog(tmp_path, files, lambda f: [f"{base}/a/{f}", str(tmp_path / "nowhere" / f)])
    with pytest.raises(DownloadError) as err:
        download("tiny-fno", catalog=cat, cache_dir=tmp_path / "c")
    assert "HTTP 404" in str(err.value) and "no such file" in str(err.value)


def test_offline_missing_file_names_path_size_and_hash(tmp_path, tiny, monkeypatch):
    _, files = tiny
    cat = _catalog(tmp_path, files, lambda f: [f"http://127.0.0.1:9/{f}"])

    def no_socket(*a, **k):
        raise AssertionError("a socket was opened")

    monkeypatch.setattr(socket, "socket", no_socket)
    with pytest.raises(OfflineError) as err:
        download("tiny-fno", catalog=cat, cache_dir=tmp_path / "c", local_files_only=True)
    sha = hashlib.sha256(files["model.safetensors"]).hexdigest()
    msg = str(err.value)
    assert str(tmp_path / "c") in msg and sha in msg and str(len(files["model.safetensors"])) in msg


def test_files_shipped_next_to_the_catalog_need_no_network(tmp_path, tiny, monkeypatch):
    model, files = tiny
    weights = tmp_path / "weights"
    weights.mkdir()
    for name, data in files.items():
        (weights / name).write_bytes(data)
    cat = _catalog(tmp_path, files, lambda f: [f"weights/{f}"])  # relative to the catalog

    def no_socket(*a, **k):
        raise AssertionError("a socket was opened")

    monkeypatch.setattr(socket, "socket", no_socket)
    m = from_pretrained("tiny-fno", catalog=cat, cache_dir=tmp_path / "c")
    x = torch.randn(1, 1, 8, 8)
    assert torch.equal(m(x), model(x))


def test_wrong_catalog_checksum_is_refused(tmp_path, server, tiny):
    httpd, base = server
    _, files = tiny
    _serve(httpd, files)
    cat = _catalog(
        tmp_path, files, lambda f: [f"{base}/w/{f}"], sha_override={"model.safetensors": "0" * 64}
    )
    with pytest.raises(DownloadError, match="expected"):
        download("tiny-fno", catalog=cat, cache_dir=tmp_path / "c")
    assert not (tmp_path / "c/models/tiny-fno/1.0/model.safetensors").exists()


def test_full_disk_cleans_up_the_partial_file(tmp_path, server, tiny, monkeypatch):
    httpd, base = server
    _, files = tiny
    _serve(httpd, files)
    cat = _catalog(tmp_path, files, lambda f: [f"{base}/w/{f}"])
    real_open = open

    class Full:
        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def write(self, b):
            raise OSError(errno.ENOSPC, "No space left on device")

    def fake_open(path, mode="r", *a, **k):
        fh = real_open(path, mode, *a, **k)
        return Full(fh) if str(path).endswith(".part") and "b" in mode and mode[0] in "wa" else fh

    monkeypatch.setattr(dl, "open", fake_open, raising=False)
    with pytest.raises(DownloadError, match="disk full"):
        download("tiny-fno", catalog=cat, cache_dir=tmp_path / "c")
    assert not list((tmp_path / "c/models/tiny-fno/1.0").glob("*.part"))


def test_two_processes_download_once(tmp_path, server, tiny):
    httpd, base = server
    _, files = tiny
    _serve(httpd, files, mode="slow")
    cat = _catalog(tmp_path, files, lambda f: [f"{base}/w/{f}"])
    code = (
        "import sys; from neuralops.hub import download; "
        f"print(download('tiny-fno', catalog=r'{cat}', cache_dir=r'{tmp_path / 'c'}'))"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs) and outs[0] == outs[1]
    assert [p for p, _ in _Handler.log].count("/w/model.safetensors") == 1


def test_bad_catalogs_and_unknown_names(tmp_path, tiny):
    _, files = tiny
    cat = _catalog(tmp_path, files, lambda f: [f"weights/{f}"])
    with pytest.raises(CatalogError, match="did you mean tiny-fno"):
        load_catalog(cat).get("tiny-fn0")
    bad = tmp_path / "bad.toml"
    bad.write_text(cat.read_text().replace('name = "config.json"', 'name = "../config.json"'))
    with pytest.raises(CatalogError, match="plain name"):
        load_catalog(bad)
    bad.write_text(cat.read_text().replace('license = "MIT"', 'licence = "MIT"'))
    with pytest.raises(CatalogError, match="unknown keys"):
        load_catalog(bad)


def test_download_command(tmp_path, tiny, capsys):
    from neuralops.cli import main

    _, files = tiny
    weights = tmp_path / "weights"
    weights.mkdir()
    for name, data in files.items():
        (weights / name).write_bytes(data)
    cat = _catalog(tmp_path, files, lambda f: [f"weights/{f}"])
    assert main(["download", "--list", "--catalog", str(cat)]) == 0
    assert "tiny-fno 1.0  fno" in capsys.readouterr().out
    assert (
        main(["download", "tiny-fno", "--catalog", str(cat), "--cache-dir", str(tmp_path / "c")])
        == 0
    )
    assert capsys.readouterr().out.strip().endswith("tiny-fno/1.0")
    assert main(["download", "nope", "--catalog", str(cat), "--offline"]) == 1
    assert "no model 'nope'" in capsys.readouterr().err


def test_catalog_entry_of_a_saved_model_round_trips(tmp_path, tiny):
    from neuralops.hub import catalog_entry

    model, _ = tiny
    folder = model.save_pretrained(tmp_path / "weights" / "tiny")
    text = catalog_entry(folder, "tiny-fno", url_base="weights/tiny", license="MIT")
    (tmp_path / "catalog.toml").write_text(text)
    entry = load_catalog(tmp_path / "catalog.toml").get("tiny-fno")
    assert entry.architecture == "fno" and entry.license == "MIT"
    m = from_pretrained("tiny-fno", catalog=tmp_path / "catalog.toml", cache_dir=tmp_path / "c")
    x = torch.randn(1, 1, 8, 8)
    assert torch.equal(m(x), model(x))


def test_save_pretrained_entry_cli_and_predict_in_physical_units(tmp_path, tiny, capsys):
    """hub.save_pretrained writes weights, normalizer and card; `neuralops hub entry` prints a
    catalog table that loads; the model comes back with its normalizer and card, and ``predict``
    applies the normalizer (encode the input, decode the output)."""
    from neuralops.cli import main
    from neuralops.data.normalizer import GaussianNormalizer
    from neuralops.hub import predict, save_pretrained

    model, _ = tiny
    norm = GaussianNormalizer(
        {"input": [2.0], "target": [-1.0]},
        {"input": [3.0], "target": [0.5]},
        eps=0.0,
        spatial_ndim=2,
    )
    card = tmp_path / "card.md"
    card.write_text("# tiny\n\n## Model\nA tiny FNO.\n")
    folder = save_pretrained(model, tmp_path / "weights" / "tiny", normalizer=norm, card=card)
    assert {p.name for p in folder.iterdir()} >= {
        "model.safetensors",
        "config.json",
        "normalizer.json",
        "README.md",
    }
    argv = [
        "hub",
        "entry",
        str(folder),
        "--name",
        "tiny-fno",
        "--url",
        "weights/tiny",
        "--set",
        'license="MIT"',
        "--set",
        'metrics={split="test", rel_l2=0.5}',
    ]
    assert main(argv) == 0
    (tmp_path / "catalog.toml").write_text(capsys.readouterr().out)
    entry = load_catalog(tmp_path / "catalog.toml").get("tiny-fno")
    assert entry.metrics == {"split": "test", "rel_l2": 0.5} and entry.license == "MIT"
    assert {f.name for f in entry.files} == {p.name for p in folder.iterdir()}

    m = from_pretrained("tiny-fno", catalog=tmp_path / "catalog.toml", cache_dir=tmp_path / "c")
    assert m.card.startswith("# tiny") and m.catalog_entry == entry
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        want = model((x - 2.0) / 3.0) * 0.5 - 1.0
        torch.testing.assert_close(predict(m, x), want, rtol=1e-6, atol=1e-6)
        plain = from_pretrained(model.save_pretrained(tmp_path / "plain"))
        assert plain.normalizer is None and torch.equal(predict(plain, x), model(x))


def test_packaged_catalog_is_the_repository_catalog():
    """The wheel carries neuralops/hub/catalog.toml; it must equal models/catalog.toml."""
    from neuralops.hub.catalog import PACKAGED_CATALOG, REPOSITORY_CATALOG

    assert PACKAGED_CATALOG.read_bytes() == REPOSITORY_CATALOG.read_bytes(), (
        "models/catalog.toml changed: run `cp models/catalog.toml neuralops/hub/catalog.toml`"
    )


def test_download_is_hashed_once_while_streaming(tmp_path, server, tiny, monkeypatch):
    """The sha256 comes from the streamed bytes: the file is not read back after the transfer,
    and a large file is flushed to disk in the background while it arrives."""
    httpd, base = server
    _, files = tiny
    _serve(httpd, files)
    cat = _catalog(tmp_path, files, lambda f: [f"{base}/w/{f}"])
    monkeypatch.setattr(dl, "FLUSH_EVERY", 64)  # several background flushes for a tiny file
    syncs = []
    real = os.fdatasync
    monkeypatch.setattr(dl.os, "fdatasync", lambda fd: (syncs.append(fd), real(fd)))
    monkeypatch.setattr(dl, "_sha256", lambda p: pytest.fail(f"{p} was re-read to hash it"))
    folder = download("tiny-fno", catalog=cat, cache_dir=tmp_path / "c")
    assert syncs
    for name, data in files.items():
        assert (folder / name).read_bytes() == data


def test_all_shipped_and_the_licence_notice(tmp_path, tiny, capsys):
    from neuralops.cli import main

    _, files = tiny
    weights = tmp_path / "weights"
    weights.mkdir()
    for name, data in files.items():
        (weights / name).write_bytes(data)
    cat = _catalog(tmp_path, files, lambda f: [f"weights/{f}"])
    text = cat.read_text()
    upstream = text.replace('"tiny-fno"', '"upstream-fno"').replace(
        'license = "MIT"', 'license = "CC-BY-NC-4.0"\nredistributable = false'
    )
    upstream = upstream.replace("weights/", "http://127.0.0.1:9/")  # never contacted here
    cat.write_text(text + "\n" + upstream)
    entries = {e.name: e for e in load_catalog(cat).entries}
    assert entries["tiny-fno"].shipped and not entries["upstream-fno"].shipped
    cache = str(tmp_path / "c")
    assert main(["download", "--all-shipped", "--catalog", str(cat), "--cache-dir", cache]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].endswith("tiny-fno/1.0")
    # without the explicit flag nothing is fetched, and the licence is named
    assert main(["download", "upstream-fno", "--catalog", str(cat), "--cache-dir", cache]) == 1
    err = capsys.readouterr().err
    assert "CC-BY-NC-4.0" in err and "--accept-license" in err
    with pytest.raises(LicenseNotAcceptedError, match="accept_license=True"):
        download("upstream-fno", catalog=cat, cache_dir=cache)
    argv = ["download", "upstream-fno", "--catalog", str(cat), "--offline", "--cache-dir", cache]
    assert main([*argv, "--accept-license"]) == 1
    err = capsys.readouterr().err
    assert "CC-BY-NC-4.0" in err and "accept that licence" in err and "offline" in err
