"""numba kernels of `fusionlab.fusion._kalman` (imported on first use; compiled once and cached on disk).

Module-level functions, so that numba can cache their machine code beside this file (``cache=True``).
"""

import numba
import numpy as np

# Small dense helpers writing into preallocated buffers: the per-step loops allocate nothing, which is what
# makes them fast (numpy-style temporaries cost more than the arithmetic for 2x2 and 3x3 matrices).
@numba.njit(cache=True, inline="always")
def mm(a, b, out, p, q, r):  # out[:p, :r] = a[:p, :q] @ b[:q, :r]
    for i in range(p):
        for j in range(r):
            acc = 0.0
            for k in range(q):
                acc += a[i, k] * b[k, j]
            out[i, j] = acc



@numba.njit(cache=True, inline="always")
def mmt(a, b, out, p, q, r):  # out[:p, :r] = a[:p, :q] @ b[:r, :q].T
    for i in range(p):
        for j in range(r):
            acc = 0.0
            for k in range(q):
                acc += a[i, k] * b[j, k]
            out[i, j] = acc



@numba.njit(cache=True)
def inv(a, out, work, p):  # out[:p, :p] = inverse of a[:p, :p] (Gauss-Jordan, partial pivoting)
    for i in range(p):
        for j in range(p):
            work[i, j] = a[i, j]
            out[i, j] = 1.0 if i == j else 0.0
    for col in range(p):
        piv = col
        for r in range(col + 1, p):
            if abs(work[r, col]) > abs(work[piv, col]):
                piv = r
        if piv != col:
            for j in range(p):
                work[col, j], work[piv, j] = work[piv, j], work[col, j]
                out[col, j], out[piv, j] = out[piv, j], out[col, j]
        d = work[col, col]
        for j in range(p):
            work[col, j] /= d
            out[col, j] /= d
        for r in range(p):
            if r != col:
                f = work[r, col]
                if f != 0.0:
                    for j in range(p):
                        work[r, j] -= f * work[col, j]
                        out[r, j] -= f * out[col, j]



@numba.njit(cache=True)
def kalman_filter(F, Q, H, z, R, x0, P0, xf, Pf, nu_out, s_out, nis_out):  # pragma: no cover - compiled
    C, T, m = z.shape
    n = F.shape[1]
    x = np.empty(n)
    xt = np.empty(n)
    P = np.empty((n, n))
    A = np.empty((n, n))
    B = np.empty((n, n))
    idx = np.empty(m, np.int64)
    Hk = np.empty((m, n))
    y = np.empty(m)
    PHT = np.empty((n, m))
    S = np.empty((m, m))
    SI = np.empty((m, m))
    W = np.empty((m, m))
    K = np.empty((n, m))
    for c in range(C):
        Fc = F[c]
        Qc = Q[c]
        for i in range(n):
            x[i] = x0[c, i]
            for j in range(n):
                P[i, j] = P0[c, i, j]
        for k in range(T):
            # predict: x = F x; P = F P F' + Q
            for i in range(n):
                acc = 0.0
                for j in range(n):
                    acc += Fc[i, j] * x[j]
                xt[i] = acc
            x[:] = xt
            mm(Fc, P, A, n, n, n)
            mmt(A, Fc, P, n, n, n)
            for i in range(n):
                for j in range(n):
                    P[i, j] += Qc[i, j]
            # measurements taken at this step
            q = 0
            for j in range(m):
                if not np.isnan(z[c, k, j]):
                    idx[q] = j
                    q += 1
            if q > 0:
                for a in range(q):
                    for j in range(n):
                        Hk[a, j] = H[c, idx[a], j]
                # y = z - H x
                for a in range(q):
                    acc = 0.0
                    for j in range(n):
                        acc += Hk[a, j] * x[j]
                    y[a] = z[c, k, idx[a]] - acc
                # PHT = P H'; S = H PHT + R; SI = S^-1; K = PHT SI
                mmt(P, Hk, PHT, n, n, q)
                mm(Hk, PHT, S, q, n, q)
                for a in range(q):
                    S[a, a] += R[c, k, idx[a]]
                inv(S, SI, W, q)
                mm(PHT, SI, K, n, q, q)
                # x = x + K y
                for i in range(n):
                    acc = 0.0
                    for a in range(q):
                        acc += K[i, a] * y[a]
                    x[i] += acc
                # Joseph form: P = (I - K H) P (I - K H)' + K R K'
                for i in range(n):
                    for j in range(n):
                        acc = 1.0 if i == j else 0.0
                        for a in range(q):
                            acc -= K[i, a] * Hk[a, j]
                        B[i, j] = acc
                mm(B, P, A, n, n, n)
                mmt(A, B, P, n, n, n)
                for i in range(n):
                    for j in range(n):
                        acc = 0.0
                        for a in range(q):
                            acc += K[i, a] * R[c, k, idx[a]] * K[j, a]
                        P[i, j] += acc
                nis = 0.0
                for a in range(q):
                    nu_out[c, k, idx[a]] = y[a]
                    s_out[c, k, idx[a]] = S[a, a]
                    for b in range(q):
                        nis += y[a] * SI[a, b] * y[b]
                nis_out[c, k] = nis
            for i in range(n):
                xf[c, k, i] = x[i]
                for j in range(n):
                    Pf[c, k, i, j] = P[i, j]



@numba.njit(cache=True)
def rts_smoother(F, Q, xf, Pf, xs, Ps):  # pragma: no cover - compiled
    C, T, n = xf.shape
    A = np.empty((n, n))
    Pp = np.empty((n, n))
    PpI = np.empty((n, n))
    W = np.empty((n, n))
    K = np.empty((n, n))
    D = np.empty((n, n))
    d = np.empty(n)
    for c in range(C):
        Fc = F[c]
        xs[c, T - 1] = xf[c, T - 1]
        Ps[c, T - 1] = Pf[c, T - 1]
        for k in range(T - 2, -1, -1):
            Pk = Pf[c, k]
            # Pp = F P F' + Q
            mm(Fc, Pk, A, n, n, n)
            mmt(A, Fc, Pp, n, n, n)
            for i in range(n):
                for j in range(n):
                    Pp[i, j] += Q[c, i, j]
            # K = P F' Pp^-1
            mmt(Pk, Fc, A, n, n, n)
            inv(Pp, PpI, W, n)
            mm(A, PpI, K, n, n, n)
            # x = x + K (x[k+1] - F x)
            for i in range(n):
                acc = 0.0
                for j in range(n):
                    acc += Fc[i, j] * xf[c, k, j]
                d[i] = xs[c, k + 1, i] - acc
            for i in range(n):
                acc = 0.0
                for j in range(n):
                    acc += K[i, j] * d[j]
                xs[c, k, i] = xf[c, k, i] + acc
            # P = P + K (P[k+1] - Pp) K'
            for i in range(n):
                for j in range(n):
                    D[i, j] = Ps[c, k + 1, i, j] - Pp[i, j]
            mm(K, D, A, n, n, n)
            mmt(A, K, W, n, n, n)
            for i in range(n):
                for j in range(n):
                    Ps[c, k, i, j] = Pk[i, j] + W[i, j]
