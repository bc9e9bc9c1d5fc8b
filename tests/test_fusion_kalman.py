"""Batched Kalman filter + RTS smoother: equal to filterpy, and statistically consistent on data from the model."""

from __future__ import annotations

import numpy as np
import pytest

from fusionlab.fusion import kalman_smooth
from fusionlab.fusion._reference import filterpy_smooth

DT = 0.01


def _model(q: float = 50.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Angle, angular rate, gyroscope bias; measured: angle (markers/video) and rate + bias (gyroscope)."""
    F = np.array([[1.0, DT, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    Q = np.array([[q * DT**3 / 3, q * DT**2 / 2, 0.0], [q * DT**2 / 2, q * DT, 0.0], [0.0, 0.0, 1e-8]])
    H = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    return F, Q, H


def _simulate(rng: np.random.Generator, C: int, T: int, q: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """States drawn from the model itself (white-noise acceleration, constant bias) and noisy measurements."""
    F, Q, H = _model(q)
    L = np.linalg.cholesky(Q[:2, :2])
    x = np.zeros((C, T, 3))
    x[:, 0] = [0.0, 0.0, 0.1]
    for k in range(1, T):
        x[:, k] = x[:, k - 1] @ F.T
        x[:, k, :2] += rng.standard_normal((C, 2)) @ L.T
    R = np.empty((C, T, 2))
    R[..., 0] = (0.01 + 0.04 * rng.random((C, T))) ** 2  # heteroscedastic: e.g. landmark visibility
    R[..., 1] = 0.05**2
    z = x @ H.T + np.sqrt(R) * rng.standard_normal((C, T, 2))
    return x, z, R


def test_equals_filterpy_loop_with_gaps() -> None:
    rng = np.random.default_rng(1)
    C, T = 3, 1500
    F, Q, H = _model()
    _, z, R = _simulate(rng, C, T, 50.0)
    z[:, 300:450, 0] = np.nan  # angle missing: gyroscope alone
    z[1, 800:900, :] = np.nan  # nothing measured: prediction only
    z[2, 1000:1010, 1] = np.nan
    x0 = np.zeros((C, 3))
    P0 = np.broadcast_to(np.eye(3), (C, 3, 3)).copy()
    out = kalman_smooth(F, Q, H, z, R, x0, P0)
    def per(a: np.ndarray) -> np.ndarray:
        return np.broadcast_to(a, (C, *a.shape)).copy()

    ref = filterpy_smooth(per(F), per(Q), per(H), z, R, x0, P0)
    for got, want in zip(out[:4], ref, strict=True):
        assert np.max(np.abs(got - want)) <= 1e-9
    # bookkeeping of what was measured
    assert np.all(np.isnan(out.nis[1, 800:900])) and np.all(np.isfinite(out.nis[0, 800:900]))
    assert np.all(np.isnan(out.innovation[:, 300:450, 0])) and np.all(np.isfinite(out.innovation[:, 300:450, 1]))
    # the smoothed variance of the angle grows inside the angle gap and peaks near its middle
    var = out.P_smoothed[0, :, 0, 0]
    assert var[375] > 3 * var[250] and np.argmax(var[300:450]) in range(50, 100)


def test_consistent_on_data_from_the_model() -> None:
    """With the true noise levels, NIS averages the number of measurements and the 95 % band covers ~95 %."""
    rng = np.random.default_rng(7)
    C, T, q = 4, 4000, 20.0
    F, Q, H = _model(q)
    x, z, R = _simulate(rng, C, T, q)
    out = kalman_smooth(F, Q, H, z, R, np.zeros(3), np.eye(3))
    nis = out.nis[:, 100:]
    assert abs(np.mean(nis) - 2.0) < 0.1  # chi-square with 2 degrees of freedom
    err = out.x_smoothed[:, 100:, 0] - x[:, 100:, 0]
    sd = np.sqrt(out.P_smoothed[:, 100:, 0, 0])
    coverage = np.mean(np.abs(err) <= 1.96 * sd)
    assert 0.93 <= coverage <= 0.97
    assert np.allclose(out.x_smoothed[:, -1, 2], 0.1, atol=0.01)  # gyroscope bias recovered
    # a wrong model is caught: process noise 100x too small makes the innovations too large for their variance
    bad = kalman_smooth(F, Q / 100, H, z, R, np.zeros(3), np.eye(3))
    assert np.mean(bad.nis[:, 100:]) > 3.0


def test_bad_shapes_and_variances() -> None:
    F, Q, H = _model()
    z = np.zeros((2, 10, 2))
    R = np.full((2, 10, 2), 0.01)
    with pytest.raises(ValueError, match="'z'"):
        kalman_smooth(F, Q, H, z[0], R, np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match="Inconsistent model sizes"):
        kalman_smooth(F, Q, H[:, :2], z, R, np.zeros(3), np.eye(3))
    R[0, 3, 1] = 0.0
    with pytest.raises(ValueError, match="positive variance"):
        kalman_smooth(F, Q, H, z, R, np.zeros(3), np.eye(3))
