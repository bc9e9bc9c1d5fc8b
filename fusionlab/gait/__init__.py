"""Gait events and spatiotemporal parameters from every modality, and their validation.

Detectors (`BaseGaitDetector`: parameters in ``__init__``, ``detect(reader)`` returns ``self``, results in
``results_``): `GaitForcePlate`, `GaitZeni`, `GaitFootVelocity`, `GaitFootImu`, `GaitLowerBackImu`, `GaitVideo`.
`detect_session` runs those of a source on a session and `store_results` writes their events and strides;
`temporal_strides`, `summarise` compute parameters; `validate_sessions` measures agreement with a reference.
See docs/gait.md.
"""

from fusionlab.gait._detect import detect_session, read_derived, store_results
from fusionlab.gait._forceplate import GaitForcePlate
from fusionlab.gait._imu_back import GaitLowerBackImu
from fusionlab.gait._imu_foot import GaitFootImu
from fusionlab.gait._markers import GaitFootVelocity, GaitZeni
from fusionlab.gait._params import merge_spatial, summarise, symmetry_index, temporal_strides
from fusionlab.gait._validate import icc_a1, limits_of_agreement, match_events, validate_sessions
from fusionlab.gait._video import GaitVideo
from fusionlab.gait.base import PARAMETERS, BaseGaitDetector, GaitResult, Stride, Value

__all__ = [
    "PARAMETERS",
    "BaseGaitDetector",
    "GaitFootImu",
    "GaitFootVelocity",
    "GaitForcePlate",
    "GaitLowerBackImu",
    "GaitResult",
    "GaitVideo",
    "GaitZeni",
    "Stride",
    "Value",
    "detect_session",
    "icc_a1",
    "limits_of_agreement",
    "match_events",
    "merge_spatial",
    "read_derived",
    "store_results",
    "summarise",
    "symmetry_index",
    "temporal_strides",
    "validate_sessions",
]
