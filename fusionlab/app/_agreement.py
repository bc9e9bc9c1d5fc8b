"""Agreement between modalities in one session, as pure functions: each modality's value with its 95 % interval,
Bland-Altman statistics and figures for modality pairs (stride by stride), which modality disagrees and by how
much, and the validation figures measured for each detector (``fusionlab/app/validation.json``)."""

from __future__ import annotations

import functools
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["bland_altman", "bland_altman_figure", "disagreement", "modality_table", "validation_figures",
           "validation_for"]

_HERE = Path(__file__).resolve().parent
Z95 = 1.96
DISAGREE_Z = 1.96
"""A modality disagrees when its value is more than 1.96 combined SDs from the inverse-variance mean of the others."""


@functools.lru_cache(maxsize=1)
def validation_figures() -> dict[str, Any]:
    """The measured validation figures per detector (README.md), keyed by ``source/detector`` prefix."""
    raw = json.loads((_HERE / "validation.json").read_text(encoding="utf-8"))
    return {k: v for k, v in raw.items() if not k.startswith("_")}


def validation_for(source_key: str) -> dict[str, Any] | None:
    """The validation entry of a ``source/detector`` key (longest matching prefix), or None."""
    figs = validation_figures()
    best = [k for k in figs if source_key == k or source_key.startswith(k + "/") or source_key.startswith(k)]
    return figs[max(best, key=len)] if best else None


def modality_table(sources: Mapping[str, Any], parameters: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """One row per (parameter, modality): value, SEM, 95 % interval, strides, unit."""
    names: list[str] = []
    for s in sources.values():
        names += [p for p in s["parameters"] if p not in names]
    if parameters is not None:
        names = [p for p in parameters if p in names]
    rows = []
    for p in names:
        for key, s in sources.items():
            v = s["parameters"].get(p)
            if not v or v.get("value") is None:
                continue
            sem = v.get("sem")
            ok = isinstance(sem, (int, float)) and math.isfinite(sem)
            rows.append({"parameter": p, "modality": key, "value": v["value"], "sem": sem if ok else None,
                         "ci_low": v["value"] - Z95 * sem if ok else None,
                         "ci_high": v["value"] + Z95 * sem if ok else None, "n": v.get("n", 0),
                         "unit": v.get("unit", "")})
    return rows


def disagreement(sources: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per parameter with >= 2 modalities: the modality farthest from the others and by how much.

    For modality ``i`` with value ``x_i`` and SEM ``s_i``: the others' inverse-variance mean
    ``m = sum(x_j / s_j^2) / sum(1 / s_j^2)`` with ``SE(m) = 1 / sqrt(sum 1 / s_j^2)``; ``z_i = (x_i - m) /
    sqrt(s_i^2 + SE(m)^2)``. The modality with the largest ``|z|`` is reported; ``disagrees`` when
    ``|z| > 1.96``. Modalities without an SEM are left out (their disagreement cannot be judged).
    """
    out = []
    names = sorted({p for s in sources.values() for p in s["parameters"]})
    for p in names:
        vals = [(k, s["parameters"][p]["value"], s["parameters"][p].get("sem")) for k, s in sources.items()
                if p in s["parameters"] and s["parameters"][p].get("value") is not None]
        vals = [(k, x, e) for k, x, e in vals if isinstance(e, (int, float)) and math.isfinite(e) and e > 0]
        if len(vals) < 2:
            continue
        best = None
        for i, (k, x, e) in enumerate(vals):
            others = [v for j, v in enumerate(vals) if j != i]
            w = np.array([1.0 / o[2] ** 2 for o in others])
            m = float(np.sum(w * np.array([o[1] for o in others])) / np.sum(w))
            se_m = float(1.0 / math.sqrt(np.sum(w)))
            z = (x - m) / math.sqrt(e ** 2 + se_m ** 2)
            if best is None or abs(z) > abs(best["z"]):
                best = {"parameter": p, "modality": k, "value": x, "others_mean": m, "difference": x - m, "z": z,
                        "disagrees": abs(z) > DISAGREE_Z, "n_modalities": len(vals)}
        out.append(best)
    return sorted(out, key=lambda r: -abs(r["z"]))


def bland_altman(strides_a: Sequence[Any], strides_b: Sequence[Any], parameter: str, *,
                 tolerance_s: float = 0.1) -> dict[str, Any]:
    """Stride-by-stride Bland-Altman of one parameter between two modalities (strides of the same side starting
    within ``tolerance_s``, `fusionlab.gait._validate.match_strides`): the pairs' means and differences (a - b),
    bias, 95 % limits of agreement and ICC(2,1) (`fusionlab.gait._validate.limits_of_agreement`, `icc_a1`)."""
    from fusionlab.gait._validate import icc_a1, limits_of_agreement, match_strides

    pairs = match_strides(strides_a, strides_b, tolerance_s=tolerance_s)
    xy = np.array([(a.params[parameter].value, b.params[parameter].value) for a, b in pairs
                   if parameter in a.params and parameter in b.params
                   and math.isfinite(a.params[parameter].value) and math.isfinite(b.params[parameter].value)],
                  dtype=np.float64).reshape(-1, 2)
    stats = limits_of_agreement(xy[:, 0], xy[:, 1])
    return {**stats, "icc_a1": (lambda v: v if math.isfinite(v) else None)(icc_a1(xy)) if len(xy) >= 2 else None,
            "mean": ((xy[:, 0] + xy[:, 1]) / 2).tolist(), "difference": (xy[:, 0] - xy[:, 1]).tolist()}


def modality_pairs(sources: Mapping[str, Any], parameter: str) -> list[tuple[str, str]]:
    """The modality pairs that both have stride values of ``parameter``."""
    have = [k for k, s in sources.items() if any(parameter in st.params for st in s.get("strides", []))]
    return list(itertools.combinations(have, 2))


def bland_altman_figure(ba: Mapping[str, Any], label_a: str, label_b: str, unit: str) -> dict[str, Any]:
    """A plotly figure dict: differences against means, with the bias and the 95 % limits of agreement."""
    x, d = ba["mean"], ba["difference"]
    fig: dict[str, Any] = {
        "data": [{"type": "scatter", "mode": "markers", "x": x, "y": d, "name": "stride pairs",
                  "hovertemplate": "mean %{x:.3g}, difference %{y:.3g}<extra></extra>"}],
        "layout": {"height": 300, "margin": {"l": 60, "r": 20, "t": 40, "b": 45}, "showlegend": False,
                   "title": {"text": f"{label_a} - {label_b} (n = {ba['n']})", "font": {"size": 13}},
                   "xaxis": {"title": {"text": f"mean of the two [{unit}]"}},
                   "yaxis": {"title": {"text": f"difference [{unit}]"}, "zeroline": True}, "shapes": [],
                   "annotations": []}}
    if x and ba.get("bias") is not None:
        for y, dash, text in ((ba["bias"], "solid", "bias"), (ba.get("loa_low"), "dash", "-1.96 SD"),
                              (ba.get("loa_high"), "dash", "+1.96 SD")):
            if y is None:
                continue
            fig["layout"]["shapes"].append({"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": y, "y1": y,
                                            "line": {"dash": dash, "width": 1, "color": "#555"}})
            fig["layout"]["annotations"].append({"xref": "paper", "x": 1, "y": y, "xanchor": "right",
                                                 "yanchor": "bottom", "showarrow": False,
                                                 "text": f"{text} {y:.3g}", "font": {"size": 10}})
    return fig
