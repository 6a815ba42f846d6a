"""The record both GP solvers return, with prediction, save and load."""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from safetensors.torch import load_file, save_file

from neuralops._atomic import write_folder

__all__ = ["GPSolution", "Predictor", "STOPPED", "config_to_dict", "validate_points"]

F64 = torch.float64

#: why a fit stopped
STOPPED = ("tol", "max_steps", "non_finite", "ill_conditioned")

#: method -> module providing ``restore(config_dict, state) -> (config, predictor)``
_METHODS = {"hm": "neuralops.gp.hm", "gn": "neuralops.gp.gauss_newton"}

CONFIG_NAME = "config.json"
STATE_NAME = "state.safetensors"


class Predictor(Protocol):
    """``(points (N, d) float64, derivative multi-index) -> (N,) float64``."""

    dim: int

    def __call__(self, points: torch.Tensor, derivative: tuple[int, ...]) -> torch.Tensor: ...

    def state(self) -> dict[str, torch.Tensor]: ...


def config_to_dict(config: Any) -> dict:
    """A frozen config dataclass as a JSON-able dict (kernel objects become their description)."""
    out = {}
    for f in dataclasses.fields(config):
        v = getattr(config, f.name)
        if isinstance(v, torch.nn.Module):
            v = {"module": type(v).__name__, "describe": getattr(v, "describe", lambda: None)()}
        elif isinstance(v, torch.Tensor):  # e.g. explicit collocation points: kept in the state
            v = {
                "tensor": list(v.shape),
                "dtype": str(v.dtype).removeprefix("torch."),
                "in": "state",
            }
        elif isinstance(v, tuple):
            v = list(v)
        out[f.name] = v
    json.dumps(out)  # fail early on anything not JSON-able
    return out


def validate_points(points, dim: int, what: str = "points") -> torch.Tensor:
    """``points`` as a float64 ``(N, dim)`` tensor; wrong shapes and NaN/Inf raise ``ValueError``."""
    p = torch.as_tensor(points).to(F64)
    if p.ndim == 1 and dim == 1:
        p = p[:, None]
    if p.ndim != 2 or p.shape[1] != dim:
        raise ValueError(f"{what}: expected shape (N, {dim}), got {tuple(p.shape)}")
    if not bool(torch.isfinite(p).all()):
        raise ValueError(f"{what}: contains NaN or Inf; pass finite coordinates")
    return p


@dataclass
class GPSolution:
    """Result of a GP PDE solve. ``fit`` never raises on non-convergence: check ``converged`` and
    ``info["stopped"]`` (one of :data:`STOPPED`).

    method: ``"hm"`` or ``"gn"``; config: the frozen config used; kernel_params: per-axis weights,
    frequencies and length-scales sorted by weight; history: per-evaluation lists (GP-HM: step,
    loss, prior, boundary, equation, tau1, tau2, error; GN: J, step_norm, nugget, error);
    info: ``jitter``, ``final_error``, ``oracle_min_error`` (minimum over checkpoints, selected with
    the exact solution: an oracle, not a deployable number), ``stopped``, ``device``, ``warnings``.
    """

    method: str
    config: Any
    predictor: Predictor
    kernel_params: list = field(default_factory=list)
    history: dict = field(default_factory=dict)
    converged: bool = False
    iterations: int = 0
    seconds: float = 0.0
    info: dict = field(default_factory=dict)
    name: str = ""

    def predict(self, points, derivative: tuple[int, ...] | None = None) -> torch.Tensor:
        """The solution (or ``D^derivative`` of it) at ``points`` ``(N, d)`` -> ``(N,)`` float64."""
        dim = self.predictor.dim
        p = validate_points(points, dim)
        alpha = tuple(int(v) for v in (derivative or (0,) * dim))
        if len(alpha) != dim or min(alpha) < 0:
            raise ValueError(f"derivative: expected {dim} non-negative orders, got {derivative}")
        with torch.no_grad():
            out = self.predictor(p, alpha)
        if not bool(torch.isfinite(out).all()):
            raise FloatingPointError(
                f"GPSolution.predict: non-finite prediction (fit stopped: {self.info.get('stopped')}); "
                "refit with a larger jitter or a smaller learning rate"
            )
        return out

    def error(self, exact, points) -> float:
        """Relative L2 error against ``exact(points)`` (a callable or values)."""
        p = validate_points(points, self.predictor.dim)
        ref = exact(p) if callable(exact) else torch.as_tensor(exact, dtype=F64)
        ref = ref.reshape(-1).to(F64)
        return float(torch.linalg.norm(self.predict(p) - ref) / torch.linalg.norm(ref))

    def __repr__(self) -> str:
        err = self.info.get("final_error")
        err_s = f", final_error={err:.3e}" if isinstance(err, float) and math.isfinite(err) else ""
        return (
            f"GPSolution(method={self.method!r}, pde={self.name!r}, converged={self.converged}, "
            f"iterations={self.iterations}, seconds={self.seconds:.2f}{err_s}, "
            f"stopped={self.info.get('stopped')!r})"
        )

    # ---------------------------------------------------------------- persistence
    def save(self, folder: str | os.PathLike) -> Path:
        """Write ``config.json`` and ``state.safetensors`` atomically (no pickle)."""
        folder = Path(folder)
        payload = {
            "method": self.method,
            "name": self.name,
            "config": config_to_dict(self.config),
            "kernel_params": self.kernel_params,
            "history": self.history,
            "converged": self.converged,
            "iterations": self.iterations,
            "seconds": self.seconds,
            "info": self.info,
        }
        text = json.dumps(payload, indent=1, default=_json_default)
        state = {
            k: v.detach().cpu().clone().contiguous() for k, v in self.predictor.state().items()
        }
        return write_folder(
            folder,
            {
                STATE_NAME: lambda p: save_file(state, str(p)),
                CONFIG_NAME: lambda p: p.write_text(text + "\n", encoding="utf-8"),
            },
        )

    @classmethod
    def load(cls, folder: str | os.PathLike) -> GPSolution:
        """Read a folder written by :meth:`save`; prediction works without refitting."""
        folder = Path(folder)
        cfg_path, state_path = folder / CONFIG_NAME, folder / STATE_NAME
        for p in (cfg_path, state_path):
            if not p.is_file():
                raise FileNotFoundError(f"{folder}: {p.name} is missing (not a GPSolution folder?)")
        payload = json.loads(cfg_path.read_text(encoding="utf-8"))
        method = payload.get("method")
        if method not in _METHODS:
            raise ValueError(
                f"{cfg_path}: unknown method {method!r}; expected one of {list(_METHODS)}"
            )
        module = importlib.import_module(_METHODS[method])
        config, predictor = module.restore(payload["config"], load_file(str(state_path)))
        return cls(
            method=method,
            config=config,
            predictor=predictor,
            kernel_params=payload["kernel_params"],
            history=payload["history"],
            converged=payload["converged"],
            iterations=payload["iterations"],
            seconds=payload["seconds"],
            info=payload["info"],
            name=payload.get("name", ""),
        )


def _json_default(v):
    if isinstance(v, torch.Tensor):
        return v.tolist()
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    raise TypeError(f"not JSON-able: {type(v).__name__}")
