"""A live xdsi endpoint over a real SQLite store with the samples, shared by the module's tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.client.live import LiveServer, live_server

KOS = Path(__file__).resolve().parents[2] / "samples" / "dicom" / "manifests" / "ct_study_kos.dcm"


@pytest.fixture(scope="module")
def live(
    tmp_path_factory: pytest.TempPathFactory,
    free_port_factory: Callable[[], int],
    sample_files: list[Path],
) -> Iterator[LiveServer]:
    with live_server(
        tmp_path_factory.mktemp("live-data"), free_port_factory(), sample_files
    ) as server:
        yield server


@pytest.fixture(scope="session")
def kos_path() -> Path:
    return KOS
