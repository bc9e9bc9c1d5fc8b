"""Batched linear Kalman filter and Rauch-Tung-Striebel smoother (many channels, one compiled loop).

The model of every channel ``c`` (``C`` channels, ``T`` time steps, state size ``n``, ``m`` measurements)::

    x[k] = F[c] x[k-1] + w,        w ~ N(0, Q[c])           (process)
    z[k] = H[c] x[k]   + v,        v ~ N(0, diag(R[c, k]))  (measurements, heteroscedastic)

``z[c, k, j]`` NaN means measurement ``j`` was not taken at step ``k``: it is left out of the update (the rows of
``H`` and ``R`` that remain are used, as filterpy's ``update(z, R=..., H=...)`` would be called with them); a
step with no measurement is a prediction only.

The arithmetic follows filterpy's ``KalmanFilter.predict``/``update`` (Joseph form of the covariance update,
explicit inverse of the innovation covariance) and ``rts_smoother`` term by term, so both give the same numbers to
rounding (``tests/test_fusion_kalman.py`` checks <= 1e-9 against a per-channel filterpy loop). The loops are
compiled with numba (``cache=True``: the first call in a new environment compiles for a few seconds and stores the
machine code beside this file; later processes load it).

Also returned, for consistency checks: the innovation ``nu = z - H x_prior`` and its variance ``S`` (diagonal of
``H P_prior H' + R``) for every measurement, NaN where not measured, and the normalised innovation squared of the
joint update, ``nis[c, k] = nu' S^-1 nu`` over the measurements taken (NaN at prediction-only steps).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

__all__ = ["KalmanOutput", "kalman_smooth"]


class KalmanOutput(NamedTuple):
    """Filtered and smoothed moments of every channel and step.

    Shapes: ``x_*`` ``(C, T, n)``, ``P_*`` ``(C, T, n, n)``, ``innovation`` and ``innovation_var`` ``(C, T, m)``,
    ``nis`` ``(C, T)``.
    """

    x_filtered: NDArray[np.float64]
    P_filtered: NDArray[np.float64]
    x_smoothed: NDArray[np.float64]
    P_smoothed: NDArray[np.float64]
    innovation: NDArray[np.float64]
    innovation_var: NDArray[np.float64]
    nis: NDArray[np.float64]


def _kernels():
    """The compiled filter and smoother (numba is imported only when fusion runs)."""
    from fusionlab.fusion._kalman_kernels import kalman_filter, rts_smoother

    return kalman_filter, rts_smoother


def _per_channel(a: NDArray[np.float64], C: int, ndim: int, name: str) -> NDArray[np.float64]:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == ndim - 1:
        a = np.broadcast_to(a, (C, *a.shape))
    if a.ndim != ndim or a.shape[0] != C:
        msg = f"Invalid shape for {name!r}: {a.shape} (expected {ndim} dimensions, first = {C} channels)."
        raise ValueError(msg)
    return np.array(a, dtype=np.float64, order="C")  # own writeable copy: one compiled signature


def kalman_smooth(F: NDArray[np.float64], Q: NDArray[np.float64], H: NDArray[np.float64],
                  z: NDArray[np.float64], R: NDArray[np.float64], x0: NDArray[np.float64],
                  P0: NDArray[np.float64]) -> KalmanOutput:
    """Kalman filter and RTS smoother over ``C`` independent channels at once.

    Parameters
    ----------
    F, Q
        ``(n, n)`` or ``(C, n, n)``: transition and process covariance (time-invariant per channel).
    H
        ``(m, n)`` or ``(C, m, n)``: measurement matrix.
    z
        ``(C, T, m)`` measurements; NaN where not measured.
    R
        ``(C, T, m)`` measurement variances (the measurement noise is independent between measurements).
    x0, P0
        ``(n,)``/``(C, n)`` and ``(n, n)``/``(C, n, n)``: prior of the state *before* the first step (the first
        step predicts from it, as filterpy's ``predict`` then ``update``).
    """
    z = np.array(z, dtype=np.float64, order="C")
    if z.ndim != 3:
        msg = f"Invalid shape for 'z': {z.shape} (expected (channels, steps, measurements))."
        raise ValueError(msg)
    C, T, m = z.shape
    F = _per_channel(F, C, 3, "F")
    n = F.shape[1]
    Q = _per_channel(Q, C, 3, "Q")
    H = _per_channel(H, C, 3, "H")
    R = np.array(np.broadcast_to(np.asarray(R, dtype=np.float64), (C, T, m)))  # own writeable copy: one signature
    x0 = _per_channel(x0, C, 2, "x0")
    P0 = _per_channel(P0, C, 3, "P0")
    if H.shape[1:] != (m, n) or Q.shape[1:] != (n, n) or x0.shape[1] != n or P0.shape[1:] != (n, n):
        msg = f"Inconsistent model sizes: n = {n}, m = {m}, H {H.shape}, Q {Q.shape}, x0 {x0.shape}, P0 {P0.shape}."
        raise ValueError(msg)
    if np.any(~np.isfinite(R) & np.isfinite(z)) or np.any(R[np.isfinite(z)] <= 0):
        msg = "Invalid value for 'R': every measurement taken needs a finite, positive variance."
        raise ValueError(msg)
    kf, rts = _kernels()
    xf = np.empty((C, T, n))
    Pf = np.empty((C, T, n, n))
    nu = np.full((C, T, m), np.nan)
    s = np.full((C, T, m), np.nan)
    nis = np.full((C, T), np.nan)
    kf(F, Q, H, z, R, x0, P0, xf, Pf, nu, s, nis)
    xs = np.empty_like(xf)
    Ps = np.empty_like(Pf)
    rts(F, Q, xf, Pf, xs, Ps)
    return KalmanOutput(xf, Pf, xs, Ps, nu, s, nis)
