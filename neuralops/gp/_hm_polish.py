"""GP-HM polish: the exact minimiser of the objective in the latent values (gp.md §3, ours).

With the kernel and the noise precisions frozen, ``-L`` is quadratic in ``U`` for a linear operator
(one SPD solve) and a nonlinear least-squares problem otherwise (Gauss-Newton). Dense, so grids are
limited to :data:`POLISH_MAX_POINTS` points.
"""

from __future__ import annotations

import torch

from neuralops.gp.kron import cholesky_factor, dense

F64 = torch.float64
#: the dense polish solve is allowed up to this many grid points
POLISH_MAX_POINTS = 4096


def check_polish(prob) -> None:
    """``prob``: the fit's problem (grid points ``X``, ...); raises when the grid is too large."""
    m = prob.X.shape[0]
    if m > POLISH_MAX_POINTS:
        raise ValueError(
            f"polish: the grid has {m} points, more than {POLISH_MAX_POINTS} (dense solve); use a "
            "coarser grid or polish=False"
        )


def _objective(prob, Cinv, D, u, tau1, tau2, fixed_jet=None):
    """-L in ``u`` with kernel and tau frozen (constants dropped), and the PDE residual.
    ``fixed_jet``: the frozen GP's jet columns and grid values, added (extra-GP stage)."""
    jet = torch.stack([Dk @ u for Dk in D], dim=1)
    total = u
    if fixed_jet is not None:
        jet = jet + torch.stack(fixed_jet[0], dim=1)
        total = u + fixed_jet[1]
    r = prob.spec.operator(jet, prob.X) - prob.f
    r = r if prob.res_mask is None else r[prob.res_mask]
    bmis = total[prob.face_index] - prob.g
    lam = prob.config.boundary_weight * tau1
    value = 0.5 * (u @ (Cinv @ u)) + 0.5 * lam * (bmis @ bmis) + 0.5 * tau2 * (r @ r)
    return float(value), r, jet


@torch.no_grad()
def polish(prob, gp, chols, log_tau, fixed_jet=None, max_iter: int = 20) -> dict:
    """Minimise -L exactly in U with kernel and tau frozen: one SPD solve for a linear operator,
    Gauss-Newton (linearise P around U, solve, keep only steps that lower -L) for a nonlinear one:
    ``(C^-1 + lam tau1 B^T B + tau2 J^T J) u = lam tau1 B^T (g - u0_B) + tau2 J^T (J u_k - r_k)``,
    where ``u0`` is the frozen GP of the extra-GP stage (``fixed_jet``; zero otherwise)."""
    spec, cfg = prob.spec, prob.config
    tau1, tau2 = float(log_tau[0].exp()), float(log_tau[1].exp())
    chols = [cholesky_factor(L) for L in chols]
    m = prob.X.shape[0]
    eye = [torch.eye(a.numel(), dtype=F64, device=a.device) for a in gp.axes]
    Cinv = dense([torch.cholesky_inverse(L) for L in chols])
    D = [
        dense(
            [
                eye[j]
                if n == 0
                else torch.cholesky_solve(gp.kmat(j, n, cfg.toeplitz).T, chols[j]).T
                for j, n in enumerate(alpha)
            ]
        )
        for alpha in spec.jet
    ]
    rows = slice(None) if prob.res_mask is None else prob.res_mask
    B = torch.zeros(prob.face_index.numel(), m, dtype=F64, device=prob.X.device)
    B[torch.arange(B.shape[0]), prob.face_index] = 1.0
    lam = cfg.boundary_weight * tau1
    base = Cinv + lam * B.T @ B
    u = gp.U.detach().reshape(-1).clone()
    g_eff = prob.g if fixed_jet is None else prob.g - fixed_jet[1][prob.face_index]
    value, r, jet = _objective(prob, Cinv, D, u, tau1, tau2, fixed_jet)
    start, iters = value, 0
    while iters < max_iter:
        iters += 1
        with torch.enable_grad():  # pointwise partials dP/d jet_k, one autograd pass
            jv = jet.clone().requires_grad_(True)
            (coef,) = torch.autograd.grad(spec.operator(jv, prob.X).sum(), jv)
        J = sum(coef[:, k, None] * Dk for k, Dk in enumerate(D))[rows]
        A = base + tau2 * J.T @ J
        b = lam * B.T @ g_eff + tau2 * J.T @ (J @ u - r)
        A = 0.5 * (A + A.T)
        L, info = torch.linalg.cholesky_ex(A)
        new = (
            torch.cholesky_solve(b[:, None], L)[:, 0]
            if int(info) == 0
            else torch.linalg.lstsq(A, b).solution
        )
        new_value, new_r, new_jet = _objective(prob, Cinv, D, new, tau1, tau2, fixed_jet)
        if not new_value <= value:  # GN overshoots: keep the better iterate
            break
        step = float(torch.linalg.norm(new - u))
        u, value, r, jet = new, new_value, new_r, new_jet
        if spec.is_linear or step <= 1e-12 * (1.0 + float(torch.linalg.norm(u))):
            break
    gp.U.copy_(u.reshape(gp.U.shape))
    return {"iterations": iters, "objective_before": start, "objective_after": value}
