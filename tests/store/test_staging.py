"""Staged puts committed in batches (:meth:`SqlFileStore.commit_staged`), SQLite and PostgreSQL.

A batch must give each file the outcome a ``put`` of its own would give (duplicates in the index,
twice in the batch, a concurrent writer that commits first) and must stay crash-safe: a SIGKILL
before the batch's transaction leaves nothing after the next open, one after it loses nothing.
The only injected failures are the kills and the concurrent writer's timing (a listener on the
batch's INSERT), which no real peer produces on demand.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.uid import generate_uid
from sqlalchemy import event

from tests.store.conftest import StoreFactory
from tests.store.test_contract import REPO, assert_store_empty, tree, variant
from xdsi.errors import CorruptDicom
from xdsi.store import SqlFileStore
from xdsi.store.base import PutResult, PutStatus, StagingStore


def copies(source: Path, dest: Path, n: int) -> list[Path]:
    """``n`` copies of ``source`` with fresh SOP Instance UIDs (one series)."""
    ds = dcmread(source)
    dest.mkdir(parents=True, exist_ok=True)
    made: list[Path] = []
    for i in range(n):
        uid = generate_uid()
        ds.SOPInstanceUID = uid
        ds.file_meta.MediaStorageSOPInstanceUID = uid
        path = dest / f"{i:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        made.append(path)
    return made


def assert_consistent(store: SqlFileStore) -> None:
    """Every row names a file with its hash, every file has a row, ``tmp/`` is empty."""
    records = list(store.iter_records())
    assert tree(store.files_dir) == {r.path for r in records}
    for record in records:
        assert hashlib.sha256(record.path.read_bytes()).hexdigest() == record.sha256
    assert tree(store.tmp_dir) == set()


def test_store_offers_staging(store: SqlFileStore) -> None:
    assert isinstance(store, StagingStore)


def test_batch_of_new_instances_is_stored_in_order(
    store: SqlFileStore, sample_files: list[Path]
) -> None:
    staged = [store.stage(path) for path in sample_files]
    assert store.count() == 0  # staged is not visible
    assert tree(store.files_dir) == set()
    results = store.commit_staged(staged)
    assert [type(r) for r in results] == [PutResult] * len(sample_files)
    for path, result in zip(sample_files, results, strict=True):
        assert isinstance(result, PutResult)
        assert result.status is PutStatus.STORED
        assert result.record == store.get(result.record.sop_instance_uid)
        assert result.record.path.read_bytes() == path.read_bytes()
    assert store.count() == len(sample_files)
    assert_consistent(store)


def test_discarded_stage_leaves_nothing(store: SqlFileStore, sample_files: list[Path]) -> None:
    staged = store.stage(sample_files[0])
    assert len(tree(store.tmp_dir)) == 1
    store.discard_staged(staged)
    assert_store_empty(store)


def test_refused_input_is_refused_at_stage(store: SqlFileStore, sample_files: list[Path]) -> None:
    data = sample_files[0].read_bytes()
    bad = store.tmp_dir.parent / "cut.dcm"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptDicom):
        store.stage(bad)
    assert_store_empty(store)


@pytest.mark.parametrize("policy", ["keep", "replace"])
def test_duplicates_in_index_and_in_batch_get_put_outcomes(
    make_store: StoreFactory, sample_files: list[Path], tmp_path: Path, policy: str
) -> None:
    store = make_store(policy)
    original, other, third = sample_files[:3]
    store.put(original)
    changed = variant(original, tmp_path / "changed.dcm", PatientName="Changed^Name")
    other_changed = variant(other, tmp_path / "other.dcm", PatientName="Other^Version")
    # Index duplicate with other bytes; a new UID twice (other bytes the second time); a new
    # UID twice with the same bytes.
    batch = [changed, other, other_changed, third, third]
    results = store.commit_staged([store.stage(path) for path in batch])
    statuses = [r.status for r in results if isinstance(r, PutResult)]
    if policy == "keep":
        expected = [PutStatus.DUPLICATE, PutStatus.STORED, PutStatus.DUPLICATE]
        expected += [PutStatus.STORED, PutStatus.DUPLICATE]
        winners = [original, other, third]
    else:
        expected = [PutStatus.REPLACED, PutStatus.STORED, PutStatus.REPLACED]
        expected += [PutStatus.STORED, PutStatus.REPLACED]
        winners = [changed, other_changed, third]
    assert statuses == expected
    assert store.count() == 3
    stored = {r.path.read_bytes() for r in store.iter_records()}
    assert stored == {p.read_bytes() for p in winners}
    assert_consistent(store)


def test_concurrent_writer_committing_first_is_respected(
    make_store: StoreFactory, sample_files: list[Path], tmp_path: Path
) -> None:
    """A UID committed by another writer between the batch's look-up and its INSERT."""
    store, rival = make_store("keep"), make_store("keep")
    first, second = sample_files[:2]
    theirs = variant(first, tmp_path / "theirs.dcm", PatientName="Their^Copy")
    staged = [store.stage(first), store.stage(second)]
    rivals: list[PutResult] = []

    def rival_commits(conn: object, cursor: object, statement: str, *args: object) -> None:
        if not rivals and statement.lstrip().upper().startswith("INSERT INTO INSTANCE"):
            rivals.append(rival.put(theirs))

    event.listen(store.engine, "before_cursor_execute", rival_commits)
    results = store.commit_staged(staged)
    assert [r.status for r in rivals] == [PutStatus.STORED]
    statuses = [r.status for r in results if isinstance(r, PutResult)]
    assert statuses == [PutStatus.DUPLICATE, PutStatus.STORED]
    uid = dcmread(first, stop_before_pixels=True).SOPInstanceUID
    record = store.get(uid)
    assert record is not None and record.path.read_bytes() == theirs.read_bytes()
    assert store.count() == 2
    assert_consistent(store)  # our link of the losing copy was removed


# --- crash safety of a batch ----------------------------------------------------------------------

_KILL_IN_BATCH = """
import os, signal, sys
from pathlib import Path
from sqlalchemy.orm import sessionmaker
from xdsi.store import SqlFileStore, sqlfile

store = SqlFileStore(Path(sys.argv[1]), sys.argv[2])
where = sys.argv[3]
real_begin = sessionmaker.begin

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

if where == "before-commit":  # every file linked and its directory synced, no row committed
    sessionmaker.begin = die
else:  # every row committed, the intents still in tmp/
    sqlfile.SqlFileStore._finish = die
staged = [store.stage(Path(p)) for p in sys.argv[4:]]
store.commit_staged(staged)
"""


def kill_in_batch(data_dir: Path, database_url: str, where: str, sources: list[Path]) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _KILL_IN_BATCH, str(data_dir), database_url, where]
        + [str(p) for p in sources],
        cwd=REPO,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == -9, proc.stderr.decode()


def test_kill_before_batch_commit_is_rolled_back_at_open(
    make_store: StoreFactory, sample_files: list[Path], database_url: str, tmp_path: Path
) -> None:
    sources = copies(sample_files[0], tmp_path / "in", 6)
    make_store().close()  # create the schema first
    kill_in_batch(tmp_path / "data", database_url, "before-commit", sources)
    leftovers = tree(tmp_path / "data" / "tmp")
    assert len(leftovers) == 6 and all(p.name.endswith(".intent") for p in leftovers)
    assert len(tree(tmp_path / "data" / "files")) == 6  # linked, never committed
    store = make_store()
    assert sum("rolled back" in line for line in store.recovered) == 6
    assert_store_empty(store)
    results = store.commit_staged([store.stage(p) for p in sources])
    assert all(isinstance(r, PutResult) and r.status is PutStatus.STORED for r in results)
    assert_consistent(store)


def test_kill_after_batch_commit_loses_nothing(
    make_store: StoreFactory, sample_files: list[Path], database_url: str, tmp_path: Path
) -> None:
    sources = copies(sample_files[0], tmp_path / "in", 6)
    make_store().close()
    kill_in_batch(tmp_path / "data", database_url, "after-commit", sources)
    assert len(tree(tmp_path / "data" / "tmp")) == 6
    store = make_store()
    assert not any("rolled back" in line for line in store.recovered)
    assert store.count() == 6
    assert_consistent(store)
    stored = {r.path.read_bytes() for r in store.iter_records()}
    assert stored == {p.read_bytes() for p in sources}


def test_locked_sqlite_index_is_a_per_file_error_and_loses_nothing(
    tmp_path: Path, sample_files: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer holding the SQLite index past the busy timeout: each put gets a StoreError
    (``xdsi import`` reports it per file, no traceback), nothing half-stored stays, and the same
    files import once the lock is gone."""
    import sqlite3

    from xdsi.errors import StoreError
    from xdsi.intake.importer import FileOutcome, Outcome, import_files
    from xdsi.store import sqlfile

    monkeypatch.setattr(sqlfile, "SQLITE_BUSY_TIMEOUT_MS", 100)
    sources = copies(sample_files[0], tmp_path / "src", 5)
    store = SqlFileStore(tmp_path / "store")
    locker = sqlite3.connect(tmp_path / "store" / "index.sqlite", isolation_level=None)
    try:
        locker.execute("BEGIN EXCLUSIVE")
        with pytest.raises(StoreError, match="index refused"):
            store.put(sources[0])
        outcomes: list[FileOutcome] = []
        import_files(store, sources, outcomes.append, workers=2)
        assert [o.outcome for o in outcomes] == [Outcome.ERROR] * len(sources)
        assert all("index refused" in (o.detail or "") for o in outcomes)
    finally:
        locker.rollback()
        locker.close()
    store.close()
    store = SqlFileStore(tmp_path / "store")  # the next open settles anything left for recovery
    assert_consistent(store)
    assert store.count() == 0
    again: list[FileOutcome] = []
    import_files(store, sources, again.append, workers=2)
    assert [o.outcome for o in again] == [Outcome.STORED] * len(sources)
    assert_consistent(store)
    store.close()
