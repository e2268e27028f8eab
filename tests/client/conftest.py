"""A live xdsi endpoint over a real SQLite store with the samples, shared by the module's tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.client.live import live  # noqa: F401  (fixture)

KOS = Path(__file__).resolve().parents[2] / "samples" / "dicom" / "manifests" / "ct_study_kos.dcm"


@pytest.fixture(scope="session")
def kos_path() -> Path:
    return KOS
