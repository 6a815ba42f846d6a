"""Array back ends for the Krylov loops: one loop, numpy (scipy BLAS) or torch vectors.

The Krylov loops in :mod:`neuralops.solvers.krylov` call only the small set of vector
operations below (``dot``, ``norm``, ``axpy``, ``scal``, ``combine``), so the same loop runs on
numpy float64 arrays (through scipy's BLAS, avoiding numpy's per-call overhead) or on torch
tensors on any device. Also here: validation of the per-call inputs (``b``, ``x0``), the
wrapping of whatever the user passed as ``M`` into one ``apply(r) -> z`` function, CG's SPD
check, and the construction of the :class:`Solution` record shared by the Krylov solvers.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.linalg.blas import daxpy, ddot, dscal

from neuralops.solvers.operators import AbstractOperator, MatrixOperator, as_operator
from neuralops.solvers.solution import Solution

__all__ = [
    "NumpyOps",
    "TorchOps",
    "Problem",
    "PreconditionerFn",
    "prepare",
    "wrap_preconditioner",
    "is_torch",
    "check_tolerances",
    "verify_spd",
    "finish",
    "trivial_solution",
]

log = logging.getLogger("neuralops.solvers")


def is_torch(x: Any) -> bool:
    """Whether ``x`` is a torch tensor (without importing torch)."""
    return type(x).__module__.startswith("torch")


def check_tolerances(rtol: float, atol: float, maxiter: int | None) -> None:
    """Constructor-time checks shared by the iterative solvers."""
    if not (isinstance(rtol, int | float) and math.isfinite(rtol) and rtol >= 0):
        raise ValueError(f"rtol must be a finite number >= 0, got {rtol!r}")
    if not (isinstance(atol, int | float) and math.isfinite(atol) and atol >= 0):
        raise ValueError(f"atol must be a finite number >= 0, got {atol!r}")
    if maxiter is not None and (not isinstance(maxiter, int | np.integer) or maxiter < 1):
        raise ValueError(f"maxiter must be an integer >= 1 or None, got {maxiter!r}")


class NumpyOps:
    """float64 numpy vectors; level-1 operations through scipy's BLAS (in place)."""

    name = "numpy"
    eps = float(np.finfo(np.float64).eps)

    def __init__(self, n: int) -> None:
        self.n = n

    @staticmethod
    def dot(x: np.ndarray, y: np.ndarray) -> float:
        return ddot(x, y)

    @staticmethod
    def norm(x: np.ndarray) -> float:
        return math.sqrt(ddot(x, x))

    @staticmethod
    def axpy(a: float, x: np.ndarray, y: np.ndarray) -> None:
        """``y += a x`` in place."""
        daxpy(x, y, a=a)

    @staticmethod
    def scal(a: float, x: np.ndarray) -> None:
        """``x *= a`` in place."""
        dscal(a, x)

    @staticmethod
    def copy(x: np.ndarray) -> np.ndarray:
        return x.copy()

    def zeros(self, *shape: int) -> np.ndarray:
        return np.zeros(shape or (self.n,))

    def empty(self, *shape: int) -> np.ndarray:
        return np.empty(shape)

    @staticmethod
    def combine(V: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``V.T @ y`` for V of shape (k, n) and y (k,) -> (n,)."""
        return V.T @ y

    def random(self, seed: int) -> np.ndarray:
        return np.random.default_rng(seed).standard_normal(self.n)

    @staticmethod
    def aliases(x: np.ndarray, y: np.ndarray) -> bool:
        """Whether x may share memory with y (then it must not be modified in place)."""
        return bool(np.may_share_memory(x, y))

    @staticmethod
    def all_finite(x: np.ndarray) -> bool:
        return bool(np.isfinite(x).all())

    def vec(self, y: Any, what: str) -> np.ndarray:
        """Coerce the result of a user matvec / preconditioner to a float64 (n,) array."""
        if type(y) is not np.ndarray or y.dtype != np.float64:
            if is_torch(y):
                y = y.detach().cpu().numpy()
            y = np.asarray(y, dtype=np.float64)
        if y.shape != (self.n,):
            if y.size != self.n:
                raise ValueError(f"{what} returned shape {y.shape}, expected ({self.n},)")
            y = y.reshape(self.n)
        return y if y.flags.c_contiguous else np.ascontiguousarray(y)

    @staticmethod
    def to_numpy(x: np.ndarray) -> np.ndarray:
        return x

    def from_numpy(self, x: np.ndarray) -> np.ndarray:
        return self.vec(x, "preconditioner")


class TorchOps:
    """torch vectors on the device and in the floating dtype of ``like``."""

    name = "torch"

    def __init__(self, like: Any, n: int) -> None:
        import torch

        self.torch = torch
        self.n = n
        self.device = like.device
        self.dtype = like.dtype if like.dtype in (torch.float32, torch.float64) else torch.float64
        self.eps = float(torch.finfo(self.dtype).eps)

    def dot(self, x, y) -> float:
        return float(self.torch.dot(x, y))

    def norm(self, x) -> float:
        return float(self.torch.linalg.vector_norm(x))

    @staticmethod
    def axpy(a: float, x, y) -> None:
        y.add_(x, alpha=a)

    @staticmethod
    def scal(a: float, x) -> None:
        x.mul_(a)

    @staticmethod
    def copy(x):
        return x.clone()

    def zeros(self, *shape: int):
        return self.torch.zeros(shape or (self.n,), dtype=self.dtype, device=self.device)

    def empty(self, *shape: int):
        return self.torch.empty(shape, dtype=self.dtype, device=self.device)

    def combine(self, V, y: np.ndarray):
        return V.T @ self.torch.as_tensor(y, dtype=self.dtype, device=self.device)

    def random(self, seed: int):
        g = self.torch.Generator().manual_seed(seed)
        return self.torch.randn(self.n, generator=g, dtype=self.dtype).to(self.device)

    @staticmethod
    def aliases(x, y) -> bool:
        return x.untyped_storage().data_ptr() == y.untyped_storage().data_ptr()

    def all_finite(self, x) -> bool:
        return bool(self.torch.isfinite(x).all())

    def vec(self, y: Any, what: str):
        t = self.torch
        if not isinstance(y, t.Tensor):
            y = t.as_tensor(np.asarray(y), device=self.device)
        if y.dtype != self.dtype or y.device != self.device:
            y = y.to(device=self.device, dtype=self.dtype)
        if y.shape != (self.n,):
            if y.numel() != self.n:
                raise ValueError(f"{what} returned shape {tuple(y.shape)}, expected ({self.n},)")
            y = y.reshape(self.n)
        return y

    @staticmethod
    def to_numpy(x) -> np.ndarray:
        return x.detach().cpu().numpy().astype(np.float64, copy=False)

    def from_numpy(self, x: np.ndarray):
        return self.vec(x, "preconditioner")


@dataclass
class Problem:
    """A validated system: the operator, work copies of ``b``/``x0`` and the vector back end."""

    op: AbstractOperator
    ops: NumpyOps | TorchOps
    b: Any
    x: Any
    x0_given: bool
    bnorm: float

    @property
    def n(self) -> int:
        return self.op.shape[0]

    def matvec(self, v: Any) -> Any:
        return self.ops.vec(self.op.matvec(v), "the matvec of A")


def _check_vector(name: str, v: Any, n: int) -> None:
    shape = tuple(getattr(v, "shape", ()))
    if len(shape) == 2 and shape[1] == 1:
        shape = shape[:1]
    if shape != (n,):
        raise ValueError(f"{name} has shape {tuple(v.shape)}, expected ({n},) to match A {(n, n)}")
    if is_torch(v):
        if v.is_complex():
            raise ValueError(f"{name} is complex ({v.dtype}); these solvers are real-only")
        finite = bool(v.isfinite().all())
    else:
        if np.iscomplexobj(v):
            raise ValueError(f"{name} is complex ({v.dtype}); these solvers are real-only")
        finite = bool(np.isfinite(v).all())
    if not finite:
        raise ValueError(f"{name} contains NaN or Inf; check how it was assembled")


def prepare(A: Any, b: Any, x0: Any = None) -> Problem:
    """Validate ``A`` (n, n), ``b`` (n,), ``x0`` (n,) and choose the back end.

    numpy (or lists) in -> float64 numpy work vectors; a torch ``b`` -> torch work vectors on
    ``b``'s device. Raises ``ValueError`` naming the bad argument.
    """
    op = as_operator(A)
    if op.shape[0] != op.shape[1]:
        raise ValueError(f"A must be square, got shape {op.shape}")
    if np.dtype(op.dtype).kind == "c":
        raise ValueError(f"A is complex ({op.dtype}); these solvers are real-only")
    n = op.shape[0]
    if not (is_torch(b) or isinstance(b, np.ndarray)):
        b = np.asarray(b, dtype=np.float64)
    _check_vector("b", b, n)
    if x0 is not None:
        if not (is_torch(x0) or isinstance(x0, np.ndarray)):
            x0 = np.asarray(x0, dtype=np.float64)
        _check_vector("x0", x0, n)
    if is_torch(b):
        ops: NumpyOps | TorchOps = TorchOps(b, n)
        bw = ops.vec(b.detach(), "b").clone()
        xw = ops.zeros() if x0 is None else ops.vec(x0, "x0").clone()
    else:
        ops = NumpyOps(n)
        bw = np.array(b, dtype=np.float64).reshape(n)
        xw = np.zeros(n) if x0 is None else ops.vec(x0, "x0").copy()
    return Problem(op, ops, bw, xw, x0 is not None, ops.norm(bw))


@dataclass(frozen=True)
class PreconditionerFn:
    """``M`` reduced to what a Krylov loop needs."""

    apply: Callable[[Any], Any]
    symmetric: bool | None
    setup_seconds: float
    name: str
    apply_block: Callable[[Any], Any] | None = None  # numpy (n, k) -> (n, k), where cheaper


def wrap_preconditioner(M: Any, ops: NumpyOps | TorchOps) -> PreconditionerFn | None:
    """Turn ``M`` (a preconditioner object, sparse/dense matrix, LinearOperator or callable)
    into ``apply(r) -> z`` in the back end's vector type."""
    if M is None:
        return None
    from neuralops.solvers.precond import AbstractPreconditioner

    torch_mode = isinstance(ops, TorchOps)
    vec = ops.vec
    if isinstance(M, AbstractPreconditioner):
        fn, native = M.apply, (not torch_mode) or M.accepts_torch
        symmetric, setup, name = M.symmetric, M.setup_seconds, M.name
    elif sp.issparse(M) or isinstance(M, np.ndarray | sp.linalg.LinearOperator):
        fn, native = (lambda r, _M=M: _M @ r), not torch_mode
        symmetric, setup, name = None, 0.0, type(M).__name__
    elif callable(M):
        fn, native = M, True
        symmetric, setup, name = getattr(M, "symmetric", None), 0.0, "callable"
    else:
        raise TypeError(
            f"M must be a preconditioner, a matrix, a LinearOperator or a callable, "
            f"got {type(M).__name__}"
        )
    symmetric = getattr(M, "symmetric", symmetric)
    block = None
    if native:
        apply = lambda r: vec(fn(r), "the preconditioner M")
        if isinstance(M, AbstractPreconditioner) and not torch_mode:
            block = M.apply_block
    else:
        to_np, from_np = ops.to_numpy, ops.from_numpy
        apply = lambda r: from_np(fn(to_np(r)))
    return PreconditionerFn(apply, symmetric, float(setup), str(name), block)


def finish(
    prob: Problem,
    x: Any,
    hist: list[float],
    iterations: int,
    stop: str,
    message: str,
    t0: float,
    info: dict[str, Any],
    tol: float,
    rtol: float,
    atol: float,
    pre: PreconditionerFn | None,
) -> Solution:
    """Build the :class:`Solution` record (``hist`` holds absolute residual norms)."""
    converged = stop in ("rtol", "atol", "zero_rhs")
    final = hist[-1]
    rel = final / prob.bnorm if prob.bnorm > 0 else final
    if not converged and not message:
        message = (
            f"no convergence in {iterations} iterations: relative residual {rel:.2e} > "
            f"rtol {rtol:.1e}; raise maxiter, add or strengthen a preconditioner "
            "(make_preconditioner('ic0' | 'ilu' | 'amg', A)) or loosen rtol"
        )
    if stop in ("rtol", "atol"):
        stop = "rtol" if rtol * prob.bnorm >= atol else "atol"
    info.update(
        stop_reason=stop,
        setup_seconds=pre.setup_seconds if pre is not None else 0.0,
        rtol=rtol,
        atol=atol,
        tol=tol,
        norm="recurrence",
        backend=prob.ops.name,
    )
    if pre is not None:
        info["preconditioner"] = pre.name
    sol = Solution(
        x=x,
        converged=converged,
        iterations=iterations,
        residual=float(rel),
        residuals=np.asarray(hist, dtype=np.float64),
        seconds=max(time.perf_counter() - t0, 1e-9),
        message=message,
        info=info,
    )
    log.debug("%r", sol)
    return sol


def trivial_solution(
    prob: Problem, rtol: float, atol: float, method: str, t0: float
) -> Solution | None:
    """b = 0 -> x = 0, converged, 0 iterations; ``None`` otherwise."""
    if prob.bnorm == 0.0:
        info = {"method": method, "matvecs": 0, "precond_applies": 0}
        x = prob.ops.zeros()
        return finish(
            prob, x, [0.0], 0, "zero_rhs", "b = 0: x = 0", t0, info, 0.0, rtol, atol, None
        )
    return None


def verify_spd(prob: Problem) -> None:
    """Cheap symmetry test and random ``x^T A x > 0`` probe; ``ValueError`` on failure."""
    op, ops = prob.op, prob.ops
    if isinstance(op, MatrixOperator):
        defect = op.symmetry_defect()
        if not defect <= 1e-12:
            raise ValueError(
                f"A is not symmetric positive definite: ||A - A^T||_F / ||A||_F = {defect:.2e} "
                "> 1e-12; use GMRES, or CG(check_spd=False) if A is symmetric up to rounding"
            )
    else:
        x, y = ops.random(1), ops.random(2)
        Ax, Ay = prob.matvec(x), prob.matvec(y)
        gap, scale = abs(ops.dot(y, Ax) - ops.dot(x, Ay)), ops.norm(Ax) * ops.norm(y)
        if not gap <= max(1e-10, 1e3 * ops.eps) * scale:
            raise ValueError(
                f"A is not symmetric positive definite: |y^T A x - x^T A y| = {gap:.2e} for random "
                "x, y; use GMRES, or tag the operator as_operator(A, spd=True)"
            )
    x = ops.random(3)
    xax = ops.dot(x, prob.matvec(x))
    if not xax > 0:
        raise ValueError(
            f"A is not symmetric positive definite: x^T A x = {xax:.3e} <= 0 for a random x; "
            "use GMRES (indefinite or negative definite A; for -A solve with -b)"
        )
