"""Signal-level conflicts: windows where one modality disagrees with the others beyond their combined uncertainty.

Input, per modality ``m``: a residual ``r_m[k]`` (its measurement minus the estimate of the *other* modalities,
"leave-one-out", or an innovation) and the variance ``v_m[k]`` that the model gives that residual (its own
measurement noise plus the variance of the estimate it is compared with). Where the model is right,
``e = r / sqrt(v)`` is standard normal.

Test, per modality and sliding window (``window_s`` long, every ``step_s``):

    X = sum_{k in window} e_k**2,        N = number of residuals in the window

``e`` is autocorrelated (a smoother's estimate is smooth), so ``X`` is not chi-square with ``N`` degrees of
freedom. For Gaussian ``e`` with correlation ``rho_j`` at lag ``j``, ``E[X] = N`` and
``Var[X] = 2 sum_ij rho_{i-j}**2``; matching a scaled chi-square (Satterthwaite) gives

    n_eff = N**2 / sum_ij rho_{i-j}**2,      X n_eff / N  ~  chi2(n_eff)

with ``rho`` estimated once per modality and channel from the whole record (robustly: Spearman-type, from the
clipped residuals, so that the faults themselves do not inflate it). A window is flagged when the p-value is below
``alpha``. Flagged windows of one modality and channel that overlap or touch are merged into one conflict.

Culprit: at one time several modalities can be flagged (a wrong video pulls the fused estimate, so the markers'
leave-one-out residual grows too). Overlapping flags of one quantity are grouped; the modality with the largest
excess (``-log10 p``) is named. When the group's two strongest flags are within a factor ``ambiguity`` of each
other, or when only two modalities measure the quantity (then "which one is wrong" is not decidable from the
data), both are named, sorted, joined by ``|`` (``"imu|video"``).

Further tests of one specific explanation, whose flags are passed to `find_conflicts` as ``flags``:
`slope_change_flags` (sequential: a change in the slope of an integrated residual beyond what a per-candidate
reference fit with nuisance regressors predicts; needs only ``horizon_s`` of data after the change).

Severity from the p-value of the strongest window: ``low`` (p >= 1e-6), ``medium`` (1e-10 <= p < 1e-6),
``high`` (p < 1e-10). ``score`` is ``-log10 p`` of that window.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from fusionlab.fusion.base import Conflict

__all__ = ["WindowFlag", "autocorrelation", "effective_dof", "find_conflicts", "merge_windows",
           "slope_change_flags", "span_p_value", "window_flags"]

SEVERITY_P = (("high", 1e-10), ("medium", 1e-6), ("low", 1.0))


@dataclass(frozen=True)
class WindowFlag:
    """One merged run of flagged windows of one modality (times on the session clock, s)."""

    start_s: float
    end_s: float
    modality: str
    p_value: float
    stat: float
    dof: float
    n: int
    rms_normalised: float
    median_residual: float
    detected_s: float = math.nan  # sequential tests: when the data first showed it (s), else NaN


def autocorrelation(e: NDArray[np.float64], max_lag: int) -> NDArray[np.float64]:
    """Robust lag autocorrelation ``rho_0..rho_max_lag`` of normalised residuals with gaps (NaN): see `_autocorr`."""
    return _autocorr(e, max_lag)


def _autocorr(e: NDArray[np.float64], max_lag: int) -> NDArray[np.float64]:
    """Autocorrelation ``rho_0..rho_max_lag`` of a series with gaps (NaN): the median over blocks of
    ``4 max_lag`` steps of each block's estimate, so that a fault confined to a few blocks does not set it."""
    block = 4 * max_lag
    if len(e) >= 3 * block:
        ests = [_autocorr_block(e[i:i + block], max_lag) for i in range(0, len(e) - block + 1, block)]
        return np.median(np.stack(ests), axis=0)
    return _autocorr_block(e, max_lag)


def _autocorr_block(e: NDArray[np.float64], max_lag: int) -> NDArray[np.float64]:
    x = np.clip(e, -3.0, 3.0)  # robust: gross outliers (the faults) must not set the correlation
    ok = np.isfinite(x)
    x = np.where(ok, x - np.nanmean(x), 0.0)
    var = float(np.sum(x * x) / max(ok.sum(), 1))
    rho = np.zeros(max_lag + 1)
    rho[0] = 1.0
    if var <= 0:
        return rho
    for j in range(1, max_lag + 1):
        both = ok[j:] & ok[:-j]
        if both.sum() < 5:
            continue
        rho[j] = float(np.sum(x[j:] * x[:-j] * both) / both.sum() / var)
    return np.clip(rho, -1.0, 1.0)


def effective_dof(rho: NDArray[np.float64], n: int) -> float:
    """``n**2 / sum_ij rho_{i-j}**2`` for ``n`` consecutive samples with lag correlations ``rho``."""
    if n <= 1:
        return float(n)
    lags = np.arange(1, min(n, len(rho)))
    s = n + 2.0 * float(np.sum((n - lags) * rho[lags] ** 2))
    return n * n / s


def window_flags(times: NDArray[np.float64], residual: NDArray[np.float64], variance: NDArray[np.float64], *,
                 modality: str, window_s: float = 0.5, step_s: float | None = None, alpha: float = 1e-5,
                 min_samples: int = 3) -> list[WindowFlag]:
    """Sliding-window chi-square test of one modality's normalised residuals; flagged windows merged.

    Parameters
    ----------
    times
        ``(T,)`` session-clock times (s), increasing.
    residual, variance
        ``(T,)`` residual (signal unit) and its model variance; NaN where there is no residual.
    modality
        Name carried into the result.
    window_s, step_s
        Window length and step (s); ``step_s`` defaults to half the window.
    alpha
        Per-window false-alarm probability.
    min_samples
        Windows with fewer residuals are not tested.
    """
    t = np.asarray(times, dtype=np.float64)
    r = np.asarray(residual, dtype=np.float64)
    v = np.asarray(variance, dtype=np.float64)
    e = np.where(np.isfinite(r) & np.isfinite(v) & (v > 0), r / np.sqrt(np.where(v > 0, v, 1.0)), np.nan)
    step_s = window_s / 2 if step_s is None else step_s
    ok = np.isfinite(e)
    if ok.sum() < min_samples or len(t) < 2:
        return []
    dt = float(np.median(np.diff(t)))
    max_lag = max(1, round(window_s / dt))
    rho = _autocorr(e, max_lag)
    e2 = np.where(ok, e * e, 0.0)
    c2 = np.concatenate([[0.0], np.cumsum(e2)])
    cn = np.concatenate([[0], np.cumsum(ok)])
    starts = np.arange(t[0], t[-1] - window_s + step_s, step_s)
    i0 = np.searchsorted(t, starts, side="left")
    i1 = np.searchsorted(t, starts + window_s, side="left")
    raw: list[tuple[float, float, float, float, float, int, int, int]] = []
    for a, b, s0 in zip(i0, i1, starts, strict=True):
        n = int(cn[b] - cn[a])
        if n < min_samples:
            continue
        x = float(c2[b] - c2[a])
        span = int(b - a)  # the correlation is over time steps, the sum over the residuals present
        n_eff = max(1.0, effective_dof(rho, span) * n / max(span, 1))
        stat = x * n_eff / n
        p = float(stats.chi2.sf(stat, n_eff))
        if p < alpha:
            raw.append((float(s0), float(s0 + window_s), p, stat, n_eff, n, int(a), int(b)))
    flags: list[WindowFlag] = []
    group: list[tuple[float, float, float, float, float, int, int, int]] = []

    def close() -> None:
        if not group:
            return
        best = min(group, key=lambda g: g[2])
        a, b = group[0][6], group[-1][7]
        seg_e = e[a:b][np.isfinite(e[a:b])]
        seg_r = r[a:b][np.isfinite(e[a:b])]
        flags.append(WindowFlag(group[0][0], group[-1][1], modality, best[2], best[3], best[4], len(seg_e),
                                float(np.sqrt(np.mean(seg_e ** 2))), float(np.median(seg_r))))
        group.clear()

    for w in raw:
        if group and w[0] > group[-1][1] + 1e-9:
            close()
        group.append(w)
    close()
    return flags


def merge_windows(windows: list[tuple[float, float, float, float, float, int]], modality: str,
                  rms: float = math.nan, median: float = math.nan) -> list[WindowFlag]:
    """Merge flagged windows ``(start_s, end_s, p, stat, dof, n)``, sorted by start, that overlap or touch into
    `WindowFlag`s (the smallest p of each run; ``rms``/``median`` carried as given)."""
    out: list[WindowFlag] = []
    group: list[tuple[float, float, float, float, float, int]] = []

    def close() -> None:
        if group:
            best = min(group, key=lambda g: g[2])
            out.append(WindowFlag(group[0][0], max(g[1] for g in group), modality, best[2], best[3], best[4],
                                  best[5], rms, median))
            group.clear()

    for w in windows:
        if group and w[0] > max(g[1] for g in group) + 1e-9:
            close()
        group.append(w)
    close()
    return out


def slope_change_flags(times: NDArray[np.float64], integral: NDArray[np.float64],
                       regressors: NDArray[np.float64], variance: NDArray[np.float64], *, modality: str,
                       ref_s: float = 2.0, min_ref_s: float = 1.0, horizon_s: float = 0.5, step_s: float = 0.05,
                       horizons: int = 5, white_var: float = 0.0, alpha: float = 1e-5) -> list[WindowFlag]:
    """Sequential test for a change in the slope of ``D`` (``integral``: e.g. the integrated gyro rate minus the
    other modalities' angle) that the nuisance model does not explain; each candidate change time needs only the
    data up to ``horizon_s`` after it.

    Per candidate time ``tau`` (every ``step_s``): ``D = X beta + e`` is fitted by least squares on the reference
    ``[tau - ref_s, tau)`` (at least ``min_ref_s`` of contiguous data), ``X = [1, t - tau, regressors]``
    (``regressors``: ``(T, k)`` known signals the nuisance part of ``D`` is linear in, fitted per reference).
    The prediction error ``e(s) = D(s) - X(s) beta`` at ``s = tau + h``, ``h = horizon_s * i / horizons``
    (``i = 1..horizons``), is compared with its variance, all of it estimated from the reference (no hand-set
    level): ``sigma^2 (1 + kappa x_s' (X'X)^-1 x_s)`` with ``kappa = N / n_eff`` (the reference residuals'
    autocorrelation, `effective_dof`) and ``sigma^2 = RSS / (N - kappa p)`` their variance (``p`` coefficients,
    each absorbing ~kappa correlated samples; a reference with ``N - kappa p < kappa`` is not used), plus
    ``variance`` (the others' estimate at ``s``; independent of the reference fit) and
    ``white_var * h`` (white noise integrated into ``D``). A change of
    slope ``delta`` at ``tau`` gives ``e(tau + h) = delta h``. ``tau`` is flagged when ``p = 2 Phi(-|e| / sd)``
    is below ``alpha / horizons`` (Bonferroni over the horizons) at any horizon; the flagged ``tau`` are merged
    into runs that overlap or touch; each run's ``start_s`` is its most significant ``tau`` (the estimated change
    time: earlier candidates see only part of the change, later ones have it in their reference), ``end_s`` its
    last ``tau + h``, ``detected_s`` its first ``tau + h`` (when the data first showed it), ``p`` and
    ``stat = (e / sd)^2`` of its most significant ``tau`` (``p`` Bonferroni-adjusted), ``n`` = that ``tau``'s
    reference samples. ``D`` must be continuous: references and horizons across a NaN are cut there.
    """
    t = np.asarray(times, dtype=np.float64)
    d = np.asarray(integral, dtype=np.float64)
    xr = np.asarray(regressors, dtype=np.float64).reshape(len(t), -1)
    v = np.asarray(variance, dtype=np.float64)
    ok = np.isfinite(d) & np.isfinite(v) & np.all(np.isfinite(xr), axis=1)
    if ok.sum() < 10 or len(t) < 2:
        return []
    dt = float(np.median(np.diff(t)))
    # contiguous runs of valid samples
    run_id = np.cumsum(np.concatenate([[True], ~ok[1:] | ~ok[:-1]]))
    a_lim = 0.5 * alpha / horizons
    hs = horizon_s * np.arange(1, horizons + 1) / horizons
    raw: list[tuple[float, float, float, float, float, int]] = []
    for tau in np.arange(t[0] + min_ref_s, t[-1], step_s):
        k = int(np.searchsorted(t, tau))
        if k >= len(t) or not ok[k]:
            continue
        k0 = int(np.searchsorted(t, tau - ref_s))
        ref = np.arange(k0, k)
        ref = ref[ok[ref] & (run_id[ref] == run_id[k])]
        if len(ref) < 10 or t[k] - t[ref[0]] < min_ref_s - 1e-9:
            continue
        X = np.column_stack([np.ones(len(ref)), t[ref] - tau, xr[ref]])
        XtX_inv = np.linalg.pinv(X.T @ X)
        beta = XtX_inv @ (X.T @ d[ref])
        e_ref = d[ref] - X @ beta
        n = len(ref)
        sigma2 = float(np.sum(e_ref ** 2) / max(n - X.shape[1], 1))
        rho = _autocorr_block(e_ref / math.sqrt(sigma2) if sigma2 > 0 else e_ref, max(1, min(n // 4,
                                                                                           round(0.5 / dt))))
        kappa = max(1.0, n / effective_dof(rho, n))
        # correlated residuals: each fitted coefficient absorbs ~kappa samples, so E[RSS] ~ s^2 (n - kappa p);
        # a reference with no more effective samples than coefficients cannot predict (skipped)
        if n - kappa * X.shape[1] < kappa:
            continue
        sigma2 *= (n - X.shape[1]) / (n - kappa * X.shape[1])
        best: tuple[float, float, float] | None = None
        for h in hs:
            j = int(np.searchsorted(t, tau + h - 1e-9))
            if j >= len(t) or not ok[j] or run_id[j] != run_id[k] or abs(t[j] - tau - h) > dt:
                break
            xs = np.concatenate([[1.0, t[j] - tau], xr[j]])
            e = float(d[j] - xs @ beta)
            var = sigma2 * (1.0 + kappa * float(xs @ XtX_inv @ xs)) + v[j] + white_var * (t[j] - tau)
            z2 = e * e / var
            p = float(stats.chi2.sf(z2, 1))
            if p < a_lim and (best is None or p < best[0]):
                best = (p, z2, float(t[j]))
        if best is not None:
            raw.append((float(tau), best[2], best[0] * horizons, best[1], 1.0, n))
    out: list[WindowFlag] = []
    group: list[tuple[float, float, float, float, float, int]] = []
    for w in [*raw, None]:
        if group and (w is None or w[0] > max(g[1] for g in group) + 1e-9):
            top = max(group, key=lambda g: g[3])
            out.append(WindowFlag(top[0], max(g[1] for g in group), modality, top[2], top[3], top[4], top[5],
                                  math.nan, math.nan, detected_s=min(g[1] for g in group)))
            group = []
        if w is not None:
            group.append(w)
    return out


def _severity(p: float) -> str:
    for name, limit in SEVERITY_P:
        if p < limit:
            return name
    return "low"


def span_p_value(times: NDArray[np.float64], residual: NDArray[np.float64], variance: NDArray[np.float64],
                 start_s: float, end_s: float, window_s: float = 0.5) -> float:
    """p-value of the chi-square test (effective dof as `window_flags`) over ``[start_s, end_s)``; NaN if empty."""
    t = np.asarray(times, dtype=np.float64)
    e = np.where(np.isfinite(residual) & np.isfinite(variance) & (variance > 0),
                 residual / np.sqrt(np.where(variance > 0, variance, 1.0)), np.nan)
    if np.isfinite(e).sum() < 3:
        return math.nan
    dt = float(np.median(np.diff(t)))
    rho = _autocorr(e, max(1, round(window_s / dt)))
    a, b = np.searchsorted(t, start_s), np.searchsorted(t, end_s)
    seg = e[a:b]
    n = int(np.isfinite(seg).sum())
    if n < 3:
        return math.nan
    n_eff = max(1.0, effective_dof(rho, b - a) * n / max(b - a, 1))
    return float(stats.chi2.sf(float(np.nansum(seg ** 2)) * n_eff / n, n_eff))


def _pairwise_culprit(g: list[WindowFlag], times: NDArray[np.float64],
                      pairs: Mapping[tuple[str, str], tuple[NDArray[np.float64], NDArray[np.float64]]],
                      modalities: list[str], alpha: float, window_s: float) -> list[str] | None:
    """The modality whose exclusion leaves the others pairwise consistent over the group's span, if unique.

    ``pairs[(a, b)]`` is the residual of ``a`` against the estimate from ``b`` alone (and its variance). A pair is
    bad when its test over the span has ``p < alpha``. Candidate ``c``: every pair without ``c`` is good and at
    least one pair with ``c`` is bad."""
    t0, t1 = min(f.start_s for f in g), max(f.end_s for f in g)
    bad: dict[frozenset[str], bool] = {}
    for (a, b), (r, v) in pairs.items():
        p = span_p_value(times, r, v, t0, t1, window_s)
        if math.isfinite(p):
            key = frozenset((a, b))
            bad[key] = bad.get(key, False) or p < alpha
    cands = [c for c in modalities
             if all(not isbad for k, isbad in bad.items() if c not in k)
             and any(isbad for k, isbad in bad.items() if c in k)]
    return cands if len(cands) == 1 else None


def find_conflicts(times: NDArray[np.float64], residuals: Mapping[str, NDArray[np.float64]],
                   variances: Mapping[str, NDArray[np.float64]], *, quantity: str, unit: str = "",
                   window_s: float = 0.5, step_s: float | None = None, alpha: float = 1e-5,
                   ambiguity: float = 2.0, n_modalities: int | None = None,
                   method: str = "leave-one-out",
                   pairs: Mapping[tuple[str, str], tuple[NDArray[np.float64], NDArray[np.float64]]] | None = None,
                   flags: Sequence[WindowFlag] = (),
                   ) -> list[Conflict]:
    """Conflicts of one quantity (one channel) from per-modality residuals (see the module docstring).

    Parameters
    ----------
    times
        ``(T,)`` session-clock times (s).
    residuals, variances
        Modality name -> ``(T,)`` residual and its model variance (NaN where absent).
    quantity
        Name carried into every `Conflict` (e.g. ``"knee_angle_left"``).
    unit
        Unit of the residuals, for the evidence.
    window_s, step_s, alpha
        As `window_flags`.
    ambiguity
        Two flags whose ``-log10 p`` differ by less than this factor name both modalities.
    n_modalities
        How many modalities measure the quantity (default: ``len(residuals)``); with two, both are always named.
    method
        How the residuals were made, for the evidence.
    pairs
        Optional ``(a, b) -> (residual of a against b alone, variance)``: with three or more modalities the culprit
        is then the one whose exclusion leaves the others pairwise consistent (when unique), else the strongest.
    flags
        Further flagged windows of the modalities from other tests (e.g. `slope_change_flags`), grouped and ranked
        with the chi-square flags; a name ``"<modality>:<test>"`` counts as ``<modality>``.
    """
    n_mod = len(residuals) if n_modalities is None else n_modalities
    found: list[WindowFlag] = list(flags)
    for mod, r in residuals.items():
        found += window_flags(times, r, variances[mod], modality=mod, window_s=window_s, step_s=step_s, alpha=alpha)
    flags = found
    flags.sort(key=lambda f: f.start_s)
    # group flags of different modalities that overlap in time
    groups: list[list[WindowFlag]] = []
    for f in flags:
        if groups and f.start_s < max(g.end_s for g in groups[-1]):
            groups[-1].append(f)
        else:
            groups.append([f])
    out: list[Conflict] = []
    for g in groups:
        ranked = sorted(g, key=lambda f: f.p_value)
        best = ranked[0]
        score = -math.log10(max(best.p_value, 1e-300))
        names = [best.modality]
        by_pairs = (_pairwise_culprit(g, times, pairs, list(residuals), alpha, window_s)
                    if pairs and n_mod >= 3 else None)
        if n_mod == 2:
            names = sorted(set(residuals))
        elif by_pairs is not None:
            names = by_pairs
        elif len(ranked) > 1:
            other = ranked[1]  # the second strongest flag; "imu:tilt" and "imu" are one modality
            if (other.modality.split(":")[0] != best.modality.split(":")[0]
                    and -math.log10(max(other.p_value, 1e-300)) * ambiguity >= score):
                names = sorted({best.modality, other.modality})
        evidence = {
            "method": method, "p": best.p_value, "stat": best.stat, "dof": best.dof, "n": best.n,
            "rms_normalised": best.rms_normalised, "median_residual": best.median_residual, "unit": unit,
            "window_s": window_s, "alpha": alpha,
            "culprit_by": "pairwise consistency" if by_pairs is not None and n_mod >= 3 else "largest excess",
            "flagged": {f.modality: {"p": f.p_value, "start_s": f.start_s, "end_s": f.end_s,
                                     "rms_normalised": f.rms_normalised,
                                     **({"detected_s": f.detected_s} if math.isfinite(f.detected_s) else {})}
                        for f in ranked},
        }
        out.append(Conflict(start_s=min(f.start_s for f in g), end_s=max(f.end_s for f in g), quantity=quantity,
                            modality="|".join(names), severity=_severity(best.p_value), score=score,
                            evidence=evidence))
    return out
