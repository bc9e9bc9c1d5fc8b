"""Our vectorised force-platform equations give exactly what ezc3d's own extraction gives, on every shared file."""

from __future__ import annotations

import warnings
from pathlib import Path

import ezc3d
import numpy as np
import pytest

from fusionlab.adapters._forceplate_math import PlatformError, compute_platforms
from fusionlab.adapters.c3d import read_c3d
from tests.test_adapter_c3d import READABLE
from tests.conftest import shared_path

KEYS = (("force", "force"), ("moment", "moment"), ("center_of_pressure", "cop"), ("Tz", "free_moment"))


@pytest.mark.parametrize("rel", READABLE)
def test_equal_to_ezc3d_extraction(rel: str) -> None:
    path = shared_path(rel)
    try:
        ref = ezc3d.c3d(str(path), extract_forceplat_data=True)
    except RuntimeError as e:  # ezc3d refuses: so must we, for the same reason
        c = ezc3d.c3d(str(path))
        with pytest.raises(PlatformError, match=r"CHANNEL|TYPE|CORNERS|ORIGIN|CAL_MATRIX"):
            compute_platforms(c["parameters"], c["data"]["analogs"][0])
        assert "not fill properly" in str(e) or "not supported" in str(e)
        return
    if ref["data"]["analogs"].shape[2] == 0:  # no analog samples: no plate can be computed, and the reader says so
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s = read_c3d(path)
        assert not s.by_modality("forceplate")
        assert not ref["data"]["platform"] or any("no analog samples" in w
                                                  for w in s.sources[0].metadata["warnings"])
        return
    ours = compute_platforms(ref["parameters"], ref["data"]["analogs"][0])
    assert len(ours) == len(ref["data"]["platform"])
    for theirs, mine in zip(ref["data"]["platform"], ours, strict=True):
        assert mine["unit_force"] == theirs["unit_force"] and mine["unit_position"] == theirs["unit_position"]
        np.testing.assert_allclose(mine["cal_matrix"], theirs["cal_matrix"], rtol=0, atol=1e-12)
        np.testing.assert_allclose(mine["corners"], np.asarray(theirs["corners"]).T, rtol=0, atol=1e-9)
        for k_ref, k_ours in KEYS:
            a = np.asarray(theirs[k_ref]).T
            b = mine[k_ours]
            assert np.array_equal(np.isfinite(a), np.isfinite(b))
            fin = np.isfinite(a)
            scale = max(1.0, float(np.abs(a[fin]).max())) if fin.any() else 1.0
            np.testing.assert_allclose(b[fin], a[fin], rtol=0, atol=1e-12 * scale)


@pytest.mark.parametrize("moments", ["Nmm", "Nm"])
def test_metres_copy_equals_ezc3d_on_the_original(moments: str, tmp_path: Path) -> None:
    """Points in m, moments in N·mm or N·m: our SI outputs equal ezc3d's on the mm original (ezc3d itself reads the
    "Nmm" copy's moments as N·m, 1000x too large, as it never reads ANALOG:UNITS)."""
    from tests.test_forceplate_units import write_in_metres

    src = shared_path("btkdata/PiG_Motion-FlatFoot-Full.c3d")
    dst = tmp_path / "m.c3d"
    write_in_metres(src, dst, moments)
    ref = ezc3d.c3d(str(src), extract_forceplat_data=True)
    c = ezc3d.c3d(str(dst))
    ours = compute_platforms(c["parameters"], c["data"]["analogs"][0])
    si = {"force": 1.0, "moment": 1e-3, "cop": 1e-3, "free_moment": 1e-3}  # the original: N, N·mm, mm
    for theirs, mine in zip(ref["data"]["platform"], ours, strict=True):
        assert mine["unit_moment"] == "Nm" and mine["unit_rule"] == "declared" and not mine["unit_notes"]
        for k_ref, k_ours in KEYS:
            a = np.asarray(theirs[k_ref]).T * si[k_ours]
            fin = np.isfinite(a) & (np.abs(np.asarray(theirs["force"]).T[:, [2]]) > 20)  # loaded: COP defined
            scale = float(np.abs(a[fin]).max())
            np.testing.assert_allclose(mine[k_ours][fin], a[fin], rtol=0, atol=1e-6 * scale)
