"""EM noise estimation (fusionlab.fusion._noise) on simulated state-space data with known noise levels."""

from __future__ import annotations

import numpy as np

from fusionlab.fusion._kalman import kalman_smooth
from fusionlab.fusion._noise import estimate_noise, log_likelihood


def _cv_model(dt: float) -> tuple[np.ndarray, np.ndarray]:
    F = np.array([[1.0, dt], [0.0, 1.0]])
    Q = np.array([[dt**3 / 3, dt**2 / 2], [dt**2 / 2, dt]])  # white-noise acceleration, unit spectral density
    return F, Q


def _simulate(rng: np.random.Generator, C: int, T: int, q: float, r: tuple[float, float], shape2: np.ndarray):
    """Constant-velocity channels; measurement 0 = position (variance r0), 1 = velocity (variance r1 * shape2)."""
    F, Q = _cv_model(0.01)
    L = np.linalg.cholesky(q * Q)
    x = np.zeros((C, T, 2))
    for k in range(1, T):
        x[:, k] = x[:, k - 1] @ F.T + rng.standard_normal((C, 2)) @ L.T
    z = np.empty((C, T, 2))
    z[..., 0] = x[..., 0] + rng.normal(0, np.sqrt(r[0]), (C, T))
    z[..., 1] = x[..., 1] + rng.normal(0, 1, (C, T)) * np.sqrt(r[1] * shape2)
    return F, Q, x, z


def test_em_recovers_known_levels_with_heteroscedastic_shape() -> None:
    rng = np.random.default_rng(3)
    C, T = 4, 4000
    shape2 = np.where(rng.random((C, T)) < 0.3, 9.0, 1.0)  # 30 % of velocity samples 3x noisier (known shape)
    F, Q, _, z = _simulate(rng, C, T, q=50.0, r=(1e-4, 0.04), shape2=shape2)
    z[:, 1000:1400, 0] = np.nan  # a gap in the position measurement
    R = np.stack([np.ones((C, T)), shape2], axis=-1)  # starting levels 1: far from the truth
    H = np.eye(2)
    fit = estimate_noise(F, Q, H, z, R, np.zeros(2), np.eye(2), n_iter=60, tol=1e-7, pool_channels=True)
    assert np.all(np.diff(fit.loglik) > -1e-6 * np.abs(fit.loglik[1:]))  # EM never decreases the likelihood
    assert abs(fit.r_scale[0, 0] / 1e-4 - 1) < 0.15
    assert abs(fit.r_scale[0, 1] / 0.04 - 1) < 0.15
    assert abs(fit.q_scale[0] / 50.0 - 1) < 0.25
    assert fit.converged


def test_em_per_channel_levels_and_coverage() -> None:
    rng = np.random.default_rng(11)
    C, T = 2, 3000
    F, Q = _cv_model(0.01)
    q = np.array([10.0, 200.0])
    r = np.array([4e-4, 1e-5])
    x = np.zeros((C, T, 2))
    for c in range(C):
        L = np.linalg.cholesky(q[c] * Q)
        for k in range(1, T):
            x[c, k] = F @ x[c, k - 1] + L @ rng.standard_normal(2)
    z = (x[..., 0] + rng.standard_normal((C, T)) * np.sqrt(r)[:, None])[..., None]
    fit = estimate_noise(F, Q, np.array([[1.0, 0.0]]), z, np.ones((C, T, 1)), np.zeros(2), np.eye(2),
                         n_iter=80, tol=1e-8)
    np.testing.assert_allclose(fit.r_scale[:, 0], r, rtol=0.2)
    np.testing.assert_allclose(fit.q_scale, q, rtol=0.35)
    sd = np.sqrt(fit.output.P_smoothed[..., 0, 0])
    zsc = (fit.output.x_smoothed[..., 0] - x[..., 0]) / sd
    cover = np.mean(np.abs(zsc[:, 50:]) < 1.96)
    assert 0.92 <= cover <= 0.98


def test_log_likelihood_matches_scalar_formula() -> None:
    rng = np.random.default_rng(5)
    F, Q = _cv_model(0.02)
    z = rng.normal(size=(1, 200, 1))
    z[0, 50:60] = np.nan
    R = np.full((1, 200, 1), 0.3)
    H = np.array([[1.0, 0.0]])
    out = kalman_smooth(F, Q, H, z, R, np.zeros(2), np.eye(2))
    ll = log_likelihood(F[None], Q[None], H[None], z, R, np.zeros((1, 2)), np.eye(2)[None], out)
    ok = np.isfinite(z[0, :, 0])
    nu, s = out.innovation[0, ok, 0], out.innovation_var[0, ok, 0]
    expected = -0.5 * np.sum(np.log(2 * np.pi * s) + nu**2 / s)
    assert abs(ll[0] - expected) < 1e-9 * abs(expected)
