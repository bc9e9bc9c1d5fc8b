"""Noise parameters from the data: expectation-maximisation on top of the batched Kalman smoother.

The model of `fusionlab.fusion.kalman_smooth` with unknown noise levels::

    x[k] = F x[k-1] + w,   w ~ N(0, q Q)              q: one multiplier on the given process covariance shape
    z[k] = H x[k] + v,     v_j ~ N(0, r_j R[k, j])    r_j: one multiplier per measurement on its given
                                                       heteroscedastic shape (e.g. 1 / visibility**2)

The shapes carry what is known in advance (which samples are noisier, how the dynamics couple the states); the
levels ``q`` and ``r_j`` are what the data must tell. Each EM iteration runs the filter and RTS smoother with the
current levels (E step), then sets each level to the value that maximises the expected complete-data likelihood
(M step; Shumway & Stoffer 1982, Ghahramani & Hinton 1996), restricted to the given shapes:

    r_j = mean over measured k of  [ (z[k,j] - H_j xs[k])**2 + H_j Ps[k] H_j' ] / R[k, j]
    q   = 1/(n (T-1)) sum_k trace( Q^-1 E[w_k w_k'] ),
          E[w_k w_k'] = e e' + Ps[k] + F Ps[k-1] F' - Ps[k] G[k-1]' F' - F G[k-1] Ps[k],   e = xs[k] - F xs[k-1]

with ``G[k-1] = Pf[k-1] F' (F Pf[k-1] F' + Q)^-1`` the smoother gain (the lag-one covariance of the smoothed
states is ``Ps[k] G[k-1]'``). Every iteration cannot decrease the likelihood of the measurements; iterations stop
when its relative change is below ``tol``. The log-likelihood is computed exactly from the filter's innovations
(prediction error decomposition, over the measurements taken at each step).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from fusionlab.fusion._kalman import KalmanOutput, kalman_smooth

__all__ = ["NoiseFit", "estimate_noise", "log_likelihood"]

_LOG_2PI = math.log(2.0 * math.pi)


class NoiseFit(NamedTuple):
    """Result of `estimate_noise`.

    ``r_scale`` ``(C, m)``: fitted multiplier of each measurement's variance shape (NaN for a measurement never
    taken); ``q_scale`` ``(C,)``: fitted multiplier of Q; ``R`` and ``Q``: the fitted covariances (what
    ``output`` was computed with); ``loglik`` ``(iterations + 1,)``: measurement log-likelihood (summed over
    channels) before each M step and at the end; ``converged``: relative change below ``tol``.
    """

    r_scale: NDArray[np.float64]
    q_scale: NDArray[np.float64]
    R: NDArray[np.float64]
    Q: NDArray[np.float64]
    output: KalmanOutput
    loglik: NDArray[np.float64]
    converged: bool


def _predicted_cov(F: NDArray[np.float64], Q: NDArray[np.float64],
                   Pf: NDArray[np.float64]) -> NDArray[np.float64]:
    """``Pp[c, k] = F P_f[c, k-1] F' + Q`` for k >= 1 (shape ``(C, T-1, n, n)``)."""
    return np.einsum("cij,ctjk,clk->ctil", F, Pf[:, :-1], F, optimize=True) + Q[:, None]


def log_likelihood(F: NDArray[np.float64], Q: NDArray[np.float64], H: NDArray[np.float64],
                   z: NDArray[np.float64], R: NDArray[np.float64], x0: NDArray[np.float64],
                   P0: NDArray[np.float64], out: KalmanOutput) -> NDArray[np.float64]:
    """Log-likelihood of the measurements per channel, ``(C,)``, from the filter's innovations.

    ``log p(z) = -1/2 sum_k [ log det S_k + nu_k' S_k^-1 nu_k + m_k log 2 pi ]`` over the measurements taken at
    step k, with the full innovation covariance ``S_k = H P_prior H' + R_k`` (not only its diagonal).
    """
    C, T, m = z.shape
    Pp = np.empty((C, T, F.shape[1], F.shape[1]))
    Pp[:, 0] = np.einsum("cij,cjk,clk->cil", F, P0, F) + Q
    if T > 1:
        Pp[:, 1:] = _predicted_cov(F, Q, out.P_filtered)
    S = np.einsum("cij,ctjk,clk->ctil", H, Pp, H, optimize=True)
    taken = np.isfinite(z)
    S[..., np.arange(m), np.arange(m)] += np.where(taken, R, 0.0)
    mask2 = taken[..., :, None] & taken[..., None, :]
    eye = np.broadcast_to(np.eye(m), S.shape)
    S = np.where(mask2, S, eye)  # rows of measurements not taken: identity (log det 0, no residual)
    _, logdet = np.linalg.slogdet(S)
    nu = np.where(taken, out.innovation, 0.0)
    quad = np.einsum("cti,cti->ct", nu, np.linalg.solve(S, nu[..., None])[..., 0])
    ll = -0.5 * (logdet + quad + taken.sum(axis=2) * _LOG_2PI)
    return ll.sum(axis=1)


def estimate_noise(F: NDArray[np.float64], Q: NDArray[np.float64], H: NDArray[np.float64],
                   z: NDArray[np.float64], R: NDArray[np.float64], x0: NDArray[np.float64],
                   P0: NDArray[np.float64], *, fit_q: bool = True, fit_r: NDArray[np.bool_] | None = None,
                   pool_channels: bool = False, n_iter: int = 20, tol: float = 1e-4,
                   min_scale: float = 1e-8) -> NoiseFit:
    """Fit the levels of the measurement and process noise by EM (see the module docstring).

    Parameters
    ----------
    F, Q, H, z, R, x0, P0
        As `kalman_smooth`; ``R`` and ``Q`` give the *shapes* (their initial levels are the starting point).
    fit_q
        Fit the multiplier of ``Q`` (else keep ``Q``).
    fit_r
        ``(m,)`` booleans: which measurements get their level fitted (default all). Pseudo-measurements whose
        variance is a modelling choice (e.g. zero-velocity updates) can be kept fixed.
    pool_channels
        One level per measurement (and one ``q``) shared by all channels (e.g. left and right of one joint
        measured by the same device), else one per channel.
    n_iter, tol
        At most ``n_iter`` EM iterations; stop when the relative change of the log-likelihood is below ``tol``.
    min_scale
        Floor of every multiplier, relative to its starting value (keeps a measurement that the smoother fits
        exactly from collapsing to zero variance).
    """
    z = np.array(z, dtype=np.float64)
    C, T, m = z.shape
    F = np.array(np.broadcast_to(F, (C, *np.shape(F)[-2:])), dtype=np.float64)
    n = F.shape[1]
    Q0 = np.array(np.broadcast_to(Q, (C, n, n)), dtype=np.float64)
    H = np.array(np.broadcast_to(H, (C, m, n)), dtype=np.float64)
    R0 = np.array(np.broadcast_to(R, (C, T, m)), dtype=np.float64)
    x0 = np.array(np.broadcast_to(x0, (C, n)), dtype=np.float64)
    P0 = np.array(np.broadcast_to(P0, (C, n, n)), dtype=np.float64)
    fit_r = np.ones(m, dtype=bool) if fit_r is None else np.asarray(fit_r, dtype=bool)
    taken = np.isfinite(z)
    r_scale = np.where(taken.any(axis=1), 1.0, np.nan)
    q_scale = np.ones(C)
    Q_inv = np.linalg.pinv(Q0)
    q_rank = np.linalg.matrix_rank(Q0).astype(float)
    history: list[float] = []
    converged = False
    for _ in range(n_iter + 1):
        Rk = R0 * np.nan_to_num(r_scale, nan=1.0)[:, None, :]
        Qk = Q0 * q_scale[:, None, None]
        out = kalman_smooth(F, Qk, H, z, Rk, x0, P0)
        ll = float(log_likelihood(F, Qk, H, z, Rk, x0, P0, out).sum())
        if history and abs(ll - history[-1]) <= tol * abs(history[-1]):
            history.append(ll)
            converged = True
            break
        history.append(ll)
        if len(history) > n_iter:
            break
        xs, Ps = out.x_smoothed, out.P_smoothed
        # M step, measurements: E[(z - Hx)^2] / shape
        hx = np.einsum("cjn,ctn->ctj", H, xs)
        hph = np.einsum("cjn,ctnk,cjk->ctj", H, Ps, H, optimize=True)
        e2 = np.where(taken, ((z - hx) ** 2 + hph) / R0, 0.0)
        num, cnt = e2.sum(axis=1), taken.sum(axis=1)
        if pool_channels:
            num, cnt = np.broadcast_to(num.sum(axis=0), (C, m)), np.broadcast_to(cnt.sum(axis=0), (C, m))
        new_r = np.where(cnt > 0, num / np.maximum(cnt, 1), np.nan)
        r_scale = np.where(fit_r[None, :] & np.isfinite(new_r), np.maximum(new_r, min_scale), r_scale)
        if fit_q and T > 1:
            # M step, process: E[w w'] with the lag-one smoothed covariance Ps[k] G[k-1]'
            Pf = out.P_filtered
            Pp = _predicted_cov(F, Qk, Pf)
            G = np.linalg.solve(Pp, np.einsum("cij,ctkj->ctik", F, Pf[:, :-1]))  # (Pp^-1 F Pf)' = G'
            G = np.swapaxes(G, -1, -2)  # G[k-1] = Pf[k-1] F' Pp[k]^-1
            e = xs[:, 1:] - np.einsum("cij,ctj->cti", F, xs[:, :-1])
            lag = np.einsum("ctij,ctkj->ctik", Ps[:, 1:], G)  # Ps[k] G[k-1]'
            FPF = np.einsum("cij,ctjk,clk->ctil", F, Ps[:, :-1], F, optimize=True)
            Flag = np.einsum("ctij,clj->ctil", lag, F)  # Ps[k] G' F'
            Eww = e[..., :, None] * e[..., None, :] + Ps[:, 1:] + FPF - Flag - np.swapaxes(Flag, -1, -2)
            tr = np.einsum("cij,ctji->c", Q_inv, Eww) / (q_rank * (T - 1))
            if pool_channels:
                tr = np.full(C, tr.mean())
            q_scale = np.maximum(tr, min_scale)  # Q_inv is of the shape Q0: tr is the new level itself
    Rk = R0 * np.nan_to_num(r_scale, nan=1.0)[:, None, :]
    Qk = Q0 * q_scale[:, None, None]
    return NoiseFit(r_scale, q_scale, Rk, Qk, out, np.asarray(history), converged)
