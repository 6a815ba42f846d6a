"""The deep conjugate direction method (DCDM; Kaneda et al., ICML 2023, arXiv 2205.10763).

A network ``f`` that approximates ``A^{-1}`` up to a scalar proposes a search direction from the
current residual, ``q = f(r / ||r||)``; the direction is made A-orthogonal to the last ``n_orth``
directions and an exact line search ``alpha = q^T r / q^T A q`` updates ``x`` and ``r``. Whatever the
network outputs, the energy norm ``||x - x*||_A`` never increases (each step minimises it along
``q``), so convergence comes from the Krylov-like loop, not from the network. A direction that is
non-finite, zero, of non-positive curvature ``q^T A q <= 0`` or nearly orthogonal to the residual
(``|q^T r| <= min_cosine ||q|| ||r||``) is replaced for that step by the residual itself (also
A-orthogonalised: a conjugate-gradient step); ``info["fallbacks"]`` counts those steps and
``info["fallback_reasons"]`` says why.

``net`` is anything that maps a residual to a direction:

- a torch module ``(batch, 1, *grid) -> (batch, 1, *grid)`` (e.g. :class:`neuralops.models.DCDMNet`),
  with ``grid_shape=`` or ``mask=`` (bool grid, True = unknown). The system may live on the whole
  grid (n = prod(grid)) or on the masked cells only (n = mask.sum(), C order), as fluid pressure
  systems usually do; masked-out cells are zero in the network's input and output;
- a preconditioner object, a matrix, or a callable ``r -> q`` on vectors of length n.

>>> import numpy as np
>>> from neuralops.solvers import gallery
>>> A = gallery.poisson((8, 8)); b = np.ones(64)
>>> exact = lambda r: np.linalg.solve(A.toarray(), r)
>>> sol = dcdm(A, b, exact, rtol=1e-10)
>>> sol.converged, sol.iterations, sol.info["fallbacks"]
(True, 1, 0)
"""

from __future__ import annotations

import math
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neuralops.solvers._backend import (
    PreconditionerFn,
    Problem,
    check_tolerances,
    finish,
    is_torch,
    prepare,
    trivial_solution,
    verify_spd,
    wrap_preconditioner,
)
from neuralops.solvers.krylov import SPD_CHECK_MAX_N
from neuralops.solvers.precond import AbstractPreconditioner, NetworkPreconditioner
from neuralops.solvers.solution import Solution

__all__ = ["DCDM", "MaskedGridNetwork", "dcdm", "FALLBACK_REASONS"]

#: why a step used the residual instead of the network's direction
FALLBACK_REASONS = ("nonfinite", "zero", "curvature", "cosine")


class MaskedGridNetwork(AbstractPreconditioner):
    """A grid network used on the unknowns of a mask: ``z = gather(net(scatter(r)))``.

    ``module`` maps (batch, 1, *mask.shape) -> (batch, 1, *mask.shape); vectors hold the values at
    the True cells of ``mask`` in C order, shape (n,) with n = mask.sum(). Masked-out cells are zero
    in the network's input and output. With ``normalize`` the input is scaled to unit norm and the
    output scaled back (see :class:`NetworkPreconditioner`). Not symmetric: use it with DCDM or
    flexible GMRES. numpy in -> numpy float64 out; torch in -> torch out.
    """

    name = "network"
    symmetric = False
    accepts_torch = True

    def __init__(self, module: Any, mask: np.ndarray, *, normalize: bool = True) -> None:
        t0 = time.perf_counter()
        mask = np.asarray(mask)
        if mask.dtype != bool:
            raise ValueError(f"mask must be a boolean array (True = unknown), got {mask.dtype}")
        self.grid = NetworkPreconditioner(module, mask.shape, mask=mask, normalize=normalize)
        self.mask = mask
        self.grid_shape = self.grid.grid_shape
        self.index = np.flatnonzero(mask.reshape(-1))
        self.n = int(self.index.size)
        if self.n == 0:
            raise ValueError("mask has no True cells: there are no unknowns")
        self._index_t: dict[Any, Any] = {}
        self.setup_seconds = time.perf_counter() - t0

    def apply(self, r: Any) -> Any:
        if tuple(r.shape) != (self.n,):
            raise ValueError(
                f"r has shape {tuple(r.shape)}, expected ({self.n},) = the True cells of the "
                f"mask of grid {self.grid_shape}"
            )
        if is_torch(r):
            import torch

            idx = self._index_t.get(r.device)
            if idx is None:
                idx = self._index_t[r.device] = torch.as_tensor(self.index, device=r.device)
            full = torch.zeros(self.grid.n, dtype=r.dtype, device=r.device)
            full[idx] = r
            return self.grid.apply(full)[idx]
        full = np.zeros(self.grid.n)
        full[self.index] = r
        return self.grid.apply(full)[self.index]

    def __repr__(self) -> str:
        return (
            f"MaskedGridNetwork({type(self.grid.module).__name__}, grid={self.grid_shape}, "
            f"unknowns={self.n})"
        )


def _is_module(net: Any) -> bool:
    import torch

    return isinstance(net, torch.nn.Module)


@dataclass(frozen=True)
class DCDM:
    """DCDM: network directions, A-orthogonalised against the last ``n_orth``, exact line search.

    ``net``: a torch module on the grid (needs ``grid_shape`` or ``mask``), a preconditioner, a
    matrix or a callable ``r -> q`` (see the module docstring); ``solve(..., M=...)`` overrides it
    for one call. ``maxiter=None`` means ``10 n`` (the reference code caps at 100). The recurrence
    residual is replaced by ``b - A x`` every ``replace_every`` steps. ``check_spd=None`` checks
    symmetry and a random ``x^T A x > 0`` probe when n <= 20 000. ``keep_directions`` stores every
    direction ``(iterations, n)`` in ``info["directions"]`` (for tests and analysis);
    ``callback(k, x)`` is called after every step with the iterate (do not modify it).

    Each step costs one network application and one matvec (two when the network's direction is
    rejected for its curvature).

    Guaranteed progress: when the residual norm has not fallen below ``stall_factor`` times its
    value ``stall_window`` steps earlier, the network is judged not to help on this system and the
    iteration continues as conjugate gradients restarted from the current iterate (which converges
    on any SPD system); ``info["cg_switch_iteration"]`` records the step (None when it never
    happened) and the message says so. ``stall_window=None`` never switches.
    """

    net: Any = field(default=None, repr=False)
    grid_shape: tuple[int, ...] | None = None
    mask: np.ndarray | None = field(default=None, repr=False, compare=False)
    n_orth: int = 2
    rtol: float = 1e-8
    atol: float = 0.0
    maxiter: int | None = None
    replace_every: int = 10
    min_cosine: float = 1e-6
    stall_window: int | None = 50
    stall_factor: float = 0.5
    check_spd: bool | None = None
    keep_directions: bool = False
    callback: Callable[[int, Any], None] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_tolerances(self.rtol, self.atol, self.maxiter)
        if not isinstance(self.n_orth, int | np.integer) or self.n_orth < 0:
            raise ValueError(f"n_orth must be an integer >= 0, got {self.n_orth!r}")
        if not isinstance(self.replace_every, int | np.integer) or self.replace_every < 1:
            raise ValueError(f"replace_every must be an integer >= 1, got {self.replace_every!r}")
        if not (isinstance(self.min_cosine, int | float) and 0.0 <= self.min_cosine < 1.0):
            raise ValueError(f"min_cosine must be in [0, 1), got {self.min_cosine!r}")
        if self.stall_window is not None and not (
            isinstance(self.stall_window, int | np.integer) and self.stall_window >= 1
        ):
            raise ValueError(
                f"stall_window must be None or an integer >= 1, got {self.stall_window!r}"
            )
        if not (isinstance(self.stall_factor, int | float) and 0.0 < self.stall_factor < 1.0):
            raise ValueError(f"stall_factor must be in (0, 1), got {self.stall_factor!r}")
        if self.grid_shape is not None:
            shape = tuple(int(s) for s in self.grid_shape)
            if not shape or min(shape) < 1:
                raise ValueError(f"grid_shape must be positive sizes, got {self.grid_shape!r}")
            object.__setattr__(self, "grid_shape", shape)
        if self.mask is not None:
            mask = np.asarray(self.mask)
            if mask.dtype != bool:
                raise ValueError(f"mask must be a boolean array (True = unknown), got {mask.dtype}")
            if self.grid_shape is not None and mask.shape != self.grid_shape:
                raise ValueError(
                    f"mask has shape {mask.shape} but grid_shape is {self.grid_shape}; pass one"
                )
            object.__setattr__(self, "mask", mask)

    def __repr__(self) -> str:
        net = "None" if self.net is None else type(self.net).__name__
        grid = self.grid_shape or (None if self.mask is None else self.mask.shape)
        return (
            f"DCDM(net={net}, grid={grid}, n_orth={self.n_orth}, rtol={self.rtol}, "
            f"atol={self.atol}, maxiter={self.maxiter}, replace_every={self.replace_every})"
        )

    # ------------------------------------------------------------------ set-up
    def direction_map(self, n: int, *, net: Any = None, mask: Any = None) -> Any:
        """What is applied to the residual: ``net`` (default ``self.net``) adapted to a system of
        size ``n``. A torch module becomes a :class:`NetworkPreconditioner` (n = prod(grid)) or a
        :class:`MaskedGridNetwork` (n = mask.sum()); anything else is returned unchanged."""
        net = self.net if net is None else net
        if net is None:
            raise ValueError(
                "DCDM needs a network: DCDM(net=...) or solve(A, b, M=...); any torch module, "
                "preconditioner, matrix or callable r -> q works"
            )
        if not _is_module(net):
            return net
        mask = self.mask if mask is None else np.asarray(mask)
        if mask is not None:
            if mask.dtype != bool:
                raise ValueError(f"mask must be a boolean array (True = unknown), got {mask.dtype}")
            active = int(mask.sum())
            if n == active:
                return MaskedGridNetwork(net, mask)
            if n == mask.size:
                return NetworkPreconditioner(net, mask.shape, mask=mask)
            raise ValueError(
                f"b has {n} entries but the network's mask {mask.shape} has {active} unknown "
                f"cells and {mask.size} cells in all; pass the mask of this system"
            )
        if self.grid_shape is None:
            raise ValueError(
                "a torch network needs the grid it runs on: DCDM(net, grid_shape=...) for systems "
                "on the whole grid, or DCDM(net, mask=...) for systems on the masked cells"
            )
        if n != math.prod(self.grid_shape):
            raise ValueError(
                f"b has {n} entries but the network's grid {self.grid_shape} has "
                f"{math.prod(self.grid_shape)} cells; pass grid_shape (or mask) of this system"
            )
        return NetworkPreconditioner(net, self.grid_shape)

    # ------------------------------------------------------------------ solve
    def solve(self, A: Any, b: Any, *, M: Any = None, x0: Any = None, mask: Any = None) -> Solution:
        """Solve ``A x = b``: A (n, n) SPD, b (n,), x0 (n,); ``M`` replaces ``net`` and ``mask``
        the constructor's mask for this call. Returns a :class:`Solution` with x (n,) of b's type;
        never raises on non-convergence (``converged=False``, finite x, ``stop_reason``)."""
        prob = prepare(A, b, x0)
        op = prob.op
        if op.is_symmetric is False or op.is_spd is False:
            raise ValueError(
                "A is not symmetric positive definite: the operator is tagged "
                f"is_symmetric={op.is_symmetric}, is_spd={op.is_spd}; DCDM needs SPD A, use GMRES"
            )
        t_check = time.perf_counter()
        check = self.check_spd if self.check_spd is not None else prob.n <= SPD_CHECK_MAX_N
        if check and not op.is_spd:
            verify_spd(prob)
        check_seconds = time.perf_counter() - t_check
        fmap = self.direction_map(prob.n, net=M, mask=mask)
        pre = wrap_preconditioner(fmap, prob.ops)
        t0 = time.perf_counter()
        trivial = trivial_solution(prob, self.rtol, self.atol, "dcdm", t0)
        if trivial is not None:
            return trivial
        info: dict[str, Any] = {"check_seconds": check_seconds}
        grid = getattr(fmap, "grid_shape", None)
        if grid is not None:
            info["grid_shape"] = tuple(grid)
            module = getattr(getattr(fmap, "grid", fmap), "module", None)
            padding = getattr(module, "padding_for", None)
            if callable(padding):
                info["grid_padding"] = padding(tuple(grid))
        return self._iterate(prob, pre, t0, info)

    def _iterate(
        self, prob: Problem, pre: PreconditionerFn, t0: float, info: dict[str, Any]
    ) -> Solution:
        ops, matvec, b, x = prob.ops, prob.matvec, prob.b, prob.x
        dot, norm, axpy, scal = ops.dot, ops.norm, ops.axpy, ops.scal
        maxiter = self.maxiter if self.maxiter is not None else 10 * prob.n
        tol = max(self.rtol * prob.bnorm, self.atol)
        nmv, nnet, replacements, k = 0, 0, 0, 0
        r = ops.copy(b)
        if prob.x0_given:
            axpy(-1.0, matvec(x), r)
            nmv += 1
        rnorm = norm(r)
        hist = [rnorm]
        past: deque = deque(maxlen=self.n_orth)  # (p, A p, p^T A p)
        kept: list[Any] | None = [] if self.keep_directions else None
        reasons: Counter = Counter()
        stop, message, last_failed = "", "", math.inf
        use_net, switched = True, None  # switched: the step after which CG took over
        ref_norm, ref_k = rnorm, 0  # the stall check's reference point
        if rnorm <= tol:
            stop = "rtol"
        if not math.isfinite(rnorm):
            stop, message = "nonfinite", "the initial residual b - A x0 is not finite; check A"

        def orthogonalize(q: Any) -> Any:
            for p, Ap, pAp in past:  # modified Gram-Schmidt in the A inner product
                axpy(-dot(q, Ap) / pAp, p, q)
            return q

        while not stop:
            if k >= maxiter:
                stop = "maxiter"
                break
            reason = ""
            if use_net:
                s = ops.copy(r)
                scal(1.0 / rnorm, s)
                q = pre.apply(s)
                nnet += 1
                if not ops.all_finite(q):
                    reason = "nonfinite"
                else:
                    if ops.aliases(q, s) or ops.aliases(q, r):
                        q = ops.copy(q)  # an identity map returned its input
                    q = orthogonalize(q)
                    qn, qr = norm(q), dot(q, r)
                    if not qn > 0.0:
                        reason = "zero"
                    elif not abs(qr) > self.min_cosine * qn * rnorm:
                        reason = "cosine"
                    else:
                        Aq = matvec(q)
                        nmv += 1
                        qAq = dot(q, Aq)
                        if not (math.isfinite(qAq) and qAq > 0.0):
                            reason = "curvature"
                if reason:
                    reasons[reason] += 1
            if reason or not use_net:  # a fallback step, or CG after the hand-over
                q = orthogonalize(ops.copy(r))
                qr = dot(q, r)
                Aq = matvec(q)
                nmv += 1
                qAq = dot(q, Aq)
                if not (math.isfinite(qAq) and qAq > 0.0):
                    stop = "breakdown" if math.isfinite(qAq) else "nonfinite"
                    message = (
                        f"breakdown at iteration {k}: r^T A r = {qAq:.3e} <= 0 for the residual "
                        "direction, so A is not symmetric positive definite; use GMRES"
                        if stop == "breakdown"
                        else f"non-finite A r at iteration {k}; check A (its matvec) for NaN/Inf"
                    )
                    break
            alpha = qr / qAq
            if not math.isfinite(alpha):
                stop, message = "nonfinite", f"non-finite step length at iteration {k}; check A"
                break
            axpy(alpha, q, x)
            k += 1
            if k % self.replace_every == 0:
                r = ops.copy(b)
                axpy(-1.0, matvec(x), r)
                nmv += 1
                replacements += 1
            else:
                axpy(-alpha, Aq, r)
            if past.maxlen:
                past.append((q, Aq, qAq))
            if kept is not None:
                kept.append(ops.to_numpy(ops.copy(q)))
            if self.callback is not None:
                self.callback(k, x)
            rnorm = norm(r)
            hist.append(rnorm)
            if rnorm <= self.stall_factor * ref_norm:
                ref_norm, ref_k = rnorm, k
            elif use_net and self.stall_window is not None and k - ref_k >= self.stall_window:
                use_net, switched = False, k
                past = deque(maxlen=max(1, self.n_orth))  # restart: CG from the current iterate
            if not math.isfinite(rnorm):
                axpy(-alpha, q, x)  # keep the last finite iterate
                stop, message = "nonfinite", f"non-finite residual at iteration {k}; check A"
                break
            if rnorm <= tol:  # confirm with the true residual
                rt = ops.copy(b)
                axpy(-1.0, matvec(x), rt)
                nmv += 1
                true_norm = norm(rt)
                hist[-1] = true_norm
                if true_norm <= tol:
                    stop = "rtol"
                    break
                if not true_norm < 0.9 * last_failed:
                    stop = "breakdown"
                    message = (
                        f"stagnated at iteration {k}: true residual {true_norm:.2e} stays above "
                        f"the tolerance {tol:.2e} (limit of the arithmetic); loosen rtol"
                    )
                    break
                last_failed, r, rnorm = true_norm, rt, true_norm
                replacements += 1
        if stop in ("maxiter", "breakdown", "nonfinite"):
            rt = ops.copy(b)
            axpy(-1.0, matvec(x), rt)
            nmv += 1
            hist[-1] = norm(rt)
        fallbacks = sum(reasons.values())
        if switched is not None and not message:
            message = (
                f"the network's directions stalled (residual not halved in {self.stall_window} "
                f"steps), so CG took over after step {switched}; the network may not match this "
                "system (another size, geometry or operator than it was trained on)"
            )
        if fallbacks and not message and stop not in ("rtol", "atol"):
            message = (
                f"{fallbacks} of {k} network directions were rejected "
                f"({dict(reasons)}); the network may not match this system"
            )
        info.update(
            method="dcdm",
            matvecs=nmv,
            precond_applies=nnet,
            network_applies=nnet,
            fallbacks=fallbacks,
            cg_switch_iteration=switched,
            fallback_reasons={name: reasons.get(name, 0) for name in FALLBACK_REASONS},
            n_orth=self.n_orth,
            replacements=replacements,
            network=pre.name,
        )
        if kept is not None:
            info["directions"] = np.asarray(kept).reshape(len(kept), prob.n)
        return finish(prob, x, hist, k, stop, message, t0, info, tol, self.rtol, self.atol, pre)


def dcdm(
    A: Any,
    b: Any,
    net: Any,
    *,
    grid_shape: tuple[int, ...] | None = None,
    mask: np.ndarray | None = None,
    n_orth: int = 2,
    x0: Any = None,
    rtol: float = 1e-8,
    atol: float = 0.0,
    maxiter: int | None = None,
    replace_every: int = 10,
    check_spd: bool | None = None,
) -> Solution:
    """``DCDM(net, grid_shape=..., mask=..., n_orth=..., ...).solve(A, b, x0=x0)``.

    A (n, n) SPD, b (n,) -> :class:`Solution` with x (n,); ``info["fallbacks"]`` counts the steps
    where the network's direction was replaced by the residual."""
    solver = DCDM(
        net,
        grid_shape=grid_shape,
        mask=mask,
        n_orth=n_orth,
        rtol=rtol,
        atol=atol,
        maxiter=maxiter,
        replace_every=replace_every,
        check_spd=check_spd,
    )
    return solver.solve(A, b, x0=x0)
