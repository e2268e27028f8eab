"""Fixtures of the store tests: one store factory per backend (SQLite file, PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.peers.postgres import postgres_cluster, postgres_url  # noqa: F401  (fixtures)
from xdsi.config import DuplicatePolicy
from xdsi.store import SqlFileStore

StoreFactory = Callable[..., SqlFileStore]


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Empty string (SQLite in data_dir) or the URL of a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return ""
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def make_store(tmp_path: Path, database_url: str) -> Iterator[StoreFactory]:
    """Open stores on one data directory and index; all are closed at the end of the test."""
    opened: list[SqlFileStore] = []

    def make(policy: DuplicatePolicy = "keep", recover: bool = True) -> SqlFileStore:
        store = SqlFileStore(
            tmp_path / "data", database_url, duplicate_policy=policy, recover=recover
        )
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(make_store: StoreFactory) -> SqlFileStore:
    return make_store()
