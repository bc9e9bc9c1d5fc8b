"""Fusion family: state-space models that combine modalities, with variances (batched Kalman filter + RTS)."""

from fusionlab.fusion._kalman import KalmanOutput, kalman_smooth

__all__ = ["KalmanOutput", "kalman_smooth"]
