"""The per-channel filterpy loop that `kalman_smooth` must equal (used by the tests and the benchmark)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["filterpy_smooth"]


def filterpy_smooth(F: NDArray[np.float64], Q: NDArray[np.float64], H: NDArray[np.float64], z: NDArray[np.float64],
                    R: NDArray[np.float64], x0: NDArray[np.float64], P0: NDArray[np.float64]
                    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """One filterpy ``KalmanFilter`` per channel: ``predict()``, ``update(z_taken, R_taken, H_taken)`` at every
    step, then ``rts_smoother``. Shapes as in `fusionlab.fusion.kalman_smooth` (per-channel F, Q, H, x0, P0)."""
    from filterpy.kalman import KalmanFilter

    C, T, m = z.shape
    n = F.shape[-1]
    xf = np.empty((C, T, n))
    Pf = np.empty((C, T, n, n))
    xs = np.empty((C, T, n))
    Ps = np.empty((C, T, n, n))
    for c in range(C):
        kf = KalmanFilter(dim_x=n, dim_z=m)
        kf.F, kf.Q, kf.H = F[c].copy(), Q[c].copy(), H[c].copy()
        kf.x, kf.P = x0[c].reshape(n, 1).copy(), P0[c].copy()
        for k in range(T):
            kf.predict()
            taken = np.flatnonzero(np.isfinite(z[c, k]))
            if len(taken):
                kf.update(z[c, k, taken].reshape(-1, 1), R=np.diag(R[c, k, taken]), H=H[c][taken])
            xf[c, k] = kf.x[:, 0]
            Pf[c, k] = kf.P
        Fs = np.broadcast_to(F[c], (T, n, n))
        Qs = np.broadcast_to(Q[c], (T, n, n))
        x_s, P_s, _, _ = kf.rts_smoother(xf[c].reshape(T, n, 1).copy(), Pf[c].copy(), Fs=Fs, Qs=Qs)
        xs[c] = x_s[:, :, 0]
        Ps[c] = P_s
    return xf, Pf, xs, Ps
