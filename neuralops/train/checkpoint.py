"""Atomic training checkpoints in safetensors + JSON (no pickle), verified by sha256 on load.

Layout of ``out_dir/checkpoints/``::

    step_000001234/
        model.safetensors      # the unwrapped model (save_pretrained when the model has it)
        config.json            # the model config, when the model has one
        optimizer.safetensors  # optimizer state tensors, keyed "state.<param_index>.<name>"
        rng.safetensors        # torch CPU (and CUDA) RNG states as uint8, numpy's MT19937 state
        trainer_state.json     # param groups, scalar optimizer state, scheduler, scaler, Python RNG,
                               # position, versions, sha256 of every other file
    latest                     # text: the name of the newest complete checkpoint

A checkpoint is written into ``step_….tmp-<pid>/`` with every file fsynced, then renamed into place with
``os.replace``; ``latest`` is replaced afterwards, and older checkpoints beyond ``keep_last`` are removed only
then. A crash at any point leaves the previous checkpoint intact; torn ``*.tmp-*`` folders are ignored.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from neuralops.models.base import dedup_state_dict

__all__ = [
    "CheckpointError",
    "check_json_state",
    "checkpoint_path",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "read_trainer_state",
    "save_checkpoint",
]

log = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
LATEST = "latest"
MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
OPTIMIZER_FILE = "optimizer.safetensors"
RNG_FILE = "rng.safetensors"
STATE_FILE = "trainer_state.json"
FORMAT_VERSION = 1
_STEP_RE = re.compile(r"^step_(\d{9,})$")
_TMP_RE = re.compile(r"^(?:step_\d+\.tmp|\.step_\d+\.old|latest\.tmp)-(\d+)$")


class CheckpointError(RuntimeError):
    """A checkpoint is missing, incomplete, corrupt, or does not match the objects it is loaded into."""


def checkpoint_path(out_dir: str | os.PathLike[str], step: int) -> Path:
    """``out_dir/checkpoints/step_<step, 9 digits>``."""
    return Path(out_dir) / CHECKPOINTS / f"step_{int(step):09d}"


def list_checkpoints(out_dir: str | os.PathLike[str]) -> list[Path]:
    """Complete-looking checkpoint folders (``step_*`` with a ``trainer_state.json``), oldest step first."""
    root = Path(out_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = [
        (int(m.group(1)), p)
        for p in root.iterdir()
        if (m := _STEP_RE.match(p.name)) and p.is_dir() and (p / STATE_FILE).is_file()
    ]
    return [p for _, p in sorted(found)]


def latest_checkpoint(out_dir: str | os.PathLike[str]) -> Path | None:
    """The checkpoint ``checkpoints/latest`` names; without that file, the newest complete one; else None.

    Raises :class:`CheckpointError` when ``latest`` names a folder that does not exist.
    """
    root = Path(out_dir) / CHECKPOINTS
    pointer = root / LATEST
    if pointer.is_file():
        name = pointer.read_text(encoding="utf-8").strip()
        path = root / name
        if not _STEP_RE.match(name) or not path.is_dir():
            raise CheckpointError(
                f"{pointer} names {name!r}, which is not a checkpoint folder in {root}; "
                f"available: {[p.name for p in list_checkpoints(out_dir)]}. Pass one explicitly "
                "as resume=<path>."
            )
        return path
    found = list_checkpoints(out_dir)
    if found:
        log.warning("%s is missing; using the newest complete checkpoint %s", pointer, found[-1])
        return found[-1]
    return None


def check_json_state(obj: Any, what: str) -> Any:
    """Round-trip ``obj`` through JSON, raising ``ValueError`` naming ``what`` if it is not JSON-able."""
    try:
        return json.loads(json.dumps(obj))
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{what} is not JSON-serialisable ({exc}); checkpoints store it as JSON, never as a pickle"
        ) from None


# --------------------------------------------------------------------------------------------- writing


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    try:
        _fsync_file(path)
    except OSError:  # some file systems refuse fsync on directories
        pass


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return getattr(model, "module", model)  # DDP / DataParallel


def _model_tensors(
    model: torch.nn.Module,
) -> tuple[dict[str, torch.Tensor], dict[str, str], dict[str, Any]]:
    """CPU copies of the state dict with storage-sharing (tied) tensors stored once, the aliases, and
    the non-tensor entries (``get_extra_state``) that are JSON values.

    A non-tensor entry that is not JSON (neuraloperator's ``_metadata`` holds its constructor
    arguments, classes included) is left out with a warning: it would need pickle, and the model
    rebuilt by the user's code already has it.
    """
    state = model.state_dict()
    extra: dict[str, Any] = {}
    for key, value in state.items():
        if isinstance(value, torch.Tensor):
            continue
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            if key not in _WARNED_EXTRA:
                _WARNED_EXTRA.add(key)
                log.warning(
                    "%s.state_dict() entry %r (%s) is neither a tensor nor JSON; not checkpointed "
                    "(it would need pickle); the model keeps the value it is built with",
                    type(model).__name__,
                    key,
                    type(value).__name__,
                )
            continue
        extra[key] = value
    tensors, aliases = dedup_state_dict(
        {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    )
    return tensors, aliases, extra


_WARNED_EXTRA: set[str] = set()


def _write_model(model: torch.nn.Module, folder: Path) -> None:
    model = _unwrap(model)
    if hasattr(model, "save_pretrained") and hasattr(model, "config"):
        model.save_pretrained(folder)
        for name in (MODEL_FILE, CONFIG_FILE):
            if (folder / name).is_file():
                _fsync_file(folder / name)
        return
    folder.mkdir(parents=True, exist_ok=True)
    tensors, aliases, extra = _model_tensors(model)
    meta = {"aliases": json.dumps(aliases)} if aliases else {}
    if extra:
        meta["extra_state"] = json.dumps(extra)
    _write(folder / MODEL_FILE, st_save(tensors, metadata=meta or None))


def _split_optimizer(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, entries in sd["state"].items():
        for name, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{pid}.{name}"] = value.detach().to("cpu").contiguous().clone()
            else:
                scalars.setdefault(str(pid), {})[name] = value
    groups = check_json_state(sd["param_groups"], f"{type(optimizer).__name__} param_groups")
    scalars = check_json_state(scalars, f"{type(optimizer).__name__} scalar state")
    return tensors, {"param_groups": groups, "scalar_state": scalars}


def _rng_tensors() -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda.{i}"] = s
    kind, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002 (global state)
    tensors["numpy_keys"] = torch.from_numpy(np.asarray(keys, dtype=np.int64))
    meta = {
        "numpy_kind": str(kind),
        "numpy_pos": str(int(pos)),
        "numpy_has_gauss": str(int(has_gauss)),
        "numpy_cached_gaussian": repr(float(cached)),
    }
    return tensors, meta


def save_checkpoint(
    out_dir: str | os.PathLike[str],
    step: int,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any = None,
    scaler: Any = None,
    state: Mapping[str, Any] | None = None,
    keep_last: int | None = 3,
) -> Path:
    """Write a checkpoint of everything needed to resume exactly; return its folder.

    ``state`` is the Trainer's JSON-able position (epoch, batch index, sampler seed, world size, best
    metric, the resolved config, ...). The global RNG states (torch, CUDA, numpy, Python) are captured
    here. After a complete write, ``latest`` points to the new folder and all but the newest ``keep_last``
    checkpoints are deleted (None keeps all).
    """
    from neuralops._version import __version__

    final = checkpoint_path(out_dir, step)
    root = final.parent
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f"{final.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        _write_model(model, tmp)
        opt_tensors, opt_json = _split_optimizer(optimizer)
        _write(tmp / OPTIMIZER_FILE, st_save(opt_tensors))
        rng, rng_meta = _rng_tensors()
        _write(tmp / RNG_FILE, st_save(rng, metadata=rng_meta))
        version, internal, gauss = random.getstate()
        payload = {
            "format_version": FORMAT_VERSION,
            **check_json_state(dict(state or {}), "trainer state"),
            "global_step": int(step),
            "optimizer": opt_json,
            "scheduler": None
            if scheduler is None
            else check_json_state(scheduler.state_dict(), f"{type(scheduler).__name__} state"),
            "scaler": None if scaler is None else check_json_state(scaler.state_dict(), "scaler"),
            "python_random": [version, list(internal), gauss],
            "versions": {"neuralops": __version__, "torch": torch.__version__},
            "files": {p.name: _sha256(p) for p in sorted(tmp.iterdir()) if p.is_file()},
        }
        _write(tmp / STATE_FILE, (json.dumps(payload, indent=1) + "\n").encode())
        _fsync_dir(tmp)
        if final.exists():  # the same step written again (e.g. end of epoch == end of run)
            aside = root / f".{final.name}.old-{os.getpid()}"
            os.replace(final, aside)
            os.replace(tmp, final)
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.replace(tmp, final)
        _fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    pointer_tmp = root / f"{LATEST}.tmp-{os.getpid()}"
    _write(pointer_tmp, (final.name + "\n").encode())
    os.replace(pointer_tmp, root / LATEST)
    _fsync_dir(root)
    _prune(root, final, keep_last)
    return final


def _prune(root: Path, keep: Path, keep_last: int | None) -> None:
    for p in root.iterdir():  # torn temporary folders of processes that no longer run
        m = _TMP_RE.match(p.name)
        if m and int(m.group(1)) != os.getpid() and not _alive(int(m.group(1))):
            log.info("removing torn temporary checkpoint %s", p)
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
    if keep_last is None:
        return
    complete = list_checkpoints(root.parent)
    for p in complete[: max(0, len(complete) - keep_last)]:
        if p != keep:
            shutil.rmtree(p, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --------------------------------------------------------------------------------------------- reading


def _resolve(path: str | os.PathLike[str]) -> Path:
    """A step folder from a step folder, a ``checkpoints`` folder or a run's ``out_dir``."""
    path = Path(path)
    if (path / STATE_FILE).exists() or _STEP_RE.match(path.name):
        return path
    for out_dir in (path, path.parent) if path.name == CHECKPOINTS else (path,):
        if (out_dir / CHECKPOINTS).is_dir():
            found = latest_checkpoint(out_dir)
            if found is not None:
                return found
    raise CheckpointError(f"no checkpoint at {path} (expected a step_* folder or a run's out_dir)")


def read_trainer_state(path: str | os.PathLike[str]) -> dict[str, Any]:
    """``trainer_state.json`` of a checkpoint after verifying the sha256 of every file it lists."""
    path = _resolve(path)
    state_file = path / STATE_FILE
    if not state_file.is_file():
        raise CheckpointError(f"{path} is not a complete checkpoint: {STATE_FILE} is missing")
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{state_file} is corrupt: {exc}") from None
    if not isinstance(state, dict) or "files" not in state:
        raise CheckpointError(f"{state_file} is not a neuralops trainer state (no 'files' entry)")
    if state.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {state['format_version']}; this neuralops reads up to "
            f"{FORMAT_VERSION}. Upgrade neuralops."
        )
    for name, digest in state["files"].items():
        f = path / name
        if not f.is_file():
            raise CheckpointError(f"{path} is incomplete: {name} is missing")
        actual = _sha256(f)
        if actual != digest:
            raise CheckpointError(
                f"{f} is corrupt: sha256 {actual[:16]}… does not match the recorded {digest[:16]}…; "
                "resume from an earlier checkpoint (resume=<path to another step_* folder>)"
            )
    state["path"] = str(path)
    return state


def _load_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    data = path.read_bytes()
    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata() or {}
    return st_load(data), meta


def _restore_rng(path: Path, restore_cuda: bool) -> None:
    tensors, meta = _load_tensors(path)
    torch.set_rng_state(tensors["torch_cpu"])
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("torch_cuda.")]
    if restore_cuda and cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda[: torch.cuda.device_count()])
    keys = tensors["numpy_keys"].numpy().astype(np.uint32)
    np.random.set_state(  # noqa: NPY002
        (
            meta["numpy_kind"],
            keys,
            int(meta["numpy_pos"]),
            int(meta["numpy_has_gauss"]),
            float(meta["numpy_cached_gaussian"]),
        )
    )


def load_checkpoint(
    path: str | os.PathLike[str],
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    scaler: Any = None,
    restore_rng: bool = True,
) -> dict[str, Any]:
    """Restore a checkpoint into existing objects (strictly); return its trainer state.

    ``path`` is a step folder or a run's ``out_dir`` (its ``latest``). Every file's sha256 is verified
    first; nothing is unpickled. Missing or unexpected model keys are listed in the error.
    """
    state = read_trainer_state(path)
    folder = Path(state["path"])
    tensors, meta = _load_tensors(folder / MODEL_FILE)
    for alias, source in json.loads(meta.get("aliases", "{}")).items():
        tensors[alias] = tensors[source]
    tensors.update(json.loads(meta.get("extra_state", "{}")))  # non-tensor entries, as saved
    target = _unwrap(model)
    own = target.state_dict()
    missing = sorted(k for k in set(own) - set(tensors) if isinstance(own[k], torch.Tensor))
    unexpected = sorted(set(tensors) - set(own))
    if missing or unexpected:
        raise CheckpointError(
            f"{folder / MODEL_FILE} does not match {type(target).__name__}: missing keys {missing}, "
            f"unexpected keys {unexpected}"
        )
    shapes = [
        k
        for k in own
        if isinstance(own[k], torch.Tensor) and own[k].shape != getattr(tensors[k], "shape", None)
    ]
    if shapes:
        raise CheckpointError(
            f"{folder / MODEL_FILE}: shape mismatch for "
            + ", ".join(f"{k}: {tuple(tensors[k].shape)} vs {tuple(own[k].shape)}" for k in shapes)
        )
    target.load_state_dict(tensors, strict=False)  # every tensor key was checked above
    if optimizer is not None:
        opt_tensors, _ = _load_tensors(folder / OPTIMIZER_FILE)
        opt = state["optimizer"]
        entries: dict[int, dict[str, Any]] = {}
        for key, t in opt_tensors.items():
            _, pid, name = key.split(".", 2)
            entries.setdefault(int(pid), {})[name] = t
        for pid, scalars in opt["scalar_state"].items():
            entries.setdefault(int(pid), {}).update(scalars)
        if len(opt["param_groups"]) != len(optimizer.param_groups):
            raise CheckpointError(
                f"{folder}: the optimizer has {len(optimizer.param_groups)} parameter groups, the "
                f"checkpoint {len(opt['param_groups'])}"
            )
        optimizer.load_state_dict({"state": entries, "param_groups": opt["param_groups"]})
    if scheduler is not None:
        if state.get("scheduler") is None:
            raise CheckpointError(f"{folder} has no scheduler state to restore")
        scheduler.load_state_dict(state["scheduler"])
    if scaler is not None and state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    if restore_rng:
        _restore_rng(folder / RNG_FILE, restore_cuda=True)
        version, internal, gauss = state["python_random"]
        random.setstate((version, tuple(internal), gauss))
    return state
