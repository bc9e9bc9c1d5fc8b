"""Fusion family: state-space models that combine modalities, with variances (batched Kalman filter + RTS).

Models (each ``fuse_<quantity>(reader) -> FusionResult``): fused gait events (`fusionlab.fusion._events`),
sagittal joint angles (`._angles`), foot trajectories and stride length (`._foot`). `fuse_session` runs them and
stores the results (`store_fusion`, `read_fusion`); noise levels come from the data (`estimate_noise`, EM).
"""

from fusionlab.fusion._angles import fuse_angles
from fusionlab.fusion._conflicts import find_conflicts
from fusionlab.fusion._events import fuse_events
from fusionlab.fusion._foot import fuse_foot
from fusionlab.fusion._fuse import MODELS, fuse_session
from fusionlab.fusion._kalman import KalmanOutput, kalman_smooth
from fusionlab.fusion._noise import NoiseFit, estimate_noise
from fusionlab.fusion._store import read_fusion, store_fusion
from fusionlab.fusion.base import Conflict, FusedSignal, FusionResult

__all__ = ["MODELS", "Conflict", "FusedSignal", "FusionResult", "KalmanOutput", "NoiseFit", "estimate_noise",
           "find_conflicts", "fuse_angles", "fuse_events", "fuse_foot", "fuse_session", "kalman_smooth", "read_fusion",
           "store_fusion"]
