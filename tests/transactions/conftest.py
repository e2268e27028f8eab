"""Fixtures of the transaction tests: a real SQLite store filled with ``samples/dicom``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from xdsi.config import Settings, load_settings
from xdsi.store import open_store
from xdsi.store.base import Store


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(None, environ={}, data_dir=tmp_path / "store")


@pytest.fixture
def store(settings: Settings, sample_files: list[Path]) -> Iterator[Store]:
    s = open_store(settings)
    for path in sample_files:
        s.put(path)
    yield s
    s.close()
