"""``open_store(settings)``: directories, the default SQLite index and its connection settings."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from xdsi.config import load_settings
from xdsi.store import SqlFileStore, open_store
from xdsi.store.sqlfile import SQLITE_BUSY_TIMEOUT_MS


def test_open_store_creates_data_dir_and_sqlite_index(tmp_path: Path) -> None:
    data_dir = tmp_path / "not" / "there" / "yet"
    settings = load_settings(environ={}, data_dir=data_dir, duplicate_policy="replace")
    store = open_store(settings)
    try:
        assert isinstance(store, SqlFileStore)
        assert store.duplicate_policy == "replace"
        assert (data_dir / "index.sqlite").is_file()
        assert (data_dir / "files").is_dir() and (data_dir / "tmp").is_dir()
        assert str(store.engine.url) == settings.effective_database_url
        with store.engine.connect() as conn:
            assert conn.scalar(text("PRAGMA journal_mode")) == "wal"
            assert conn.scalar(text("PRAGMA busy_timeout")) == SQLITE_BUSY_TIMEOUT_MS
    finally:
        store.close()


def test_database_url_setting_is_used(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.sqlite"
    settings = load_settings(
        environ={}, data_dir=tmp_path / "data", database_url=f"sqlite:///{elsewhere}"
    )
    with open_store(settings) as store:
        assert store.count() == 0
    assert elsewhere.is_file()
    assert not (tmp_path / "data" / "index.sqlite").exists()
