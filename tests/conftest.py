"""Shared fixtures: where the real recordings are, and a fixed random seed."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE_DATA = REPO / "sample_data"
SHARED = Path(os.environ.get("FUSIONLAB_SHARED_DATA", REPO.parent / "shared" / "data"))


def shared_path(rel: str) -> Path:
    """Path of a file under ../shared/data; skip the test when the folder is absent (never in CI)."""
    p = SHARED / rel
    if not SHARED.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"CI needs the real recordings in {SHARED} (../shared/data beside the checkout)")
        pytest.skip(f"real recordings not found in {SHARED}")
    if not p.exists():
        pytest.fail(f"expected file missing from the shared data: {p}")
    return p


@pytest.fixture(autouse=True)
def _seed() -> None:
    np.random.seed(12345)  # noqa: NPY002 - seeds any legacy global-RNG use in the code under test


@pytest.fixture
def shared() -> Path:
    """The ../shared/data folder."""
    shared_path("MANIFEST.md")
    return SHARED
