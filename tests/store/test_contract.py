"""The :class:`~xdsi.store.base.Store` contract, run against SQLite and a real PostgreSQL.

Every test uses the real backend (a SQLite file, or a fresh database in the throw-away cluster of
``tests/peers/postgres.py``) and the real file system; the only injected failure is a SIGKILL at
the worst moment of a write, which no real peer produces on demand.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataelem import RawDataElement
from pydicom.dataset import FileMetaDataset
from pydicom.uid import generate_uid
from sqlalchemy import event, select, update

from tests.store.conftest import StoreFactory
from xdsi.errors import CorruptDicom, InvalidUID, NotDicom, StoreError
from xdsi.store import SqlFileStore, Store
from xdsi.store.base import PutResult, PutStatus
from xdsi.store.schema import SCHEMA_VERSION, SchemaInfo

REPO = Path(__file__).resolve().parents[2]


def tree(root: Path) -> set[Path]:
    """Every regular file under ``root``."""
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def variant(source: Path, dest: Path, **changes: object) -> Path:
    """Copy of a sample with some attributes changed (a different file of the same instance)."""
    ds = dcmread(source)
    for keyword, value in changes.items():
        setattr(ds, keyword, value)
    ds.save_as(dest)
    return dest


def assert_store_empty(store: SqlFileStore) -> None:
    assert store.count() == 0
    assert tree(store.files_dir) == set()
    assert tree(store.tmp_dir) == set()


# --- reads and round trips ---------------------------------------------------------------------


def test_store_satisfies_protocol(store: SqlFileStore) -> None:
    assert isinstance(store, Store)


def test_every_sample_round_trips_byte_identical(
    store: SqlFileStore, sample_files: list[Path]
) -> None:
    for path in sample_files:
        result = store.put(path)
        assert result.status is PutStatus.STORED, path
        data = path.read_bytes()
        record = store.get(result.record.sop_instance_uid)
        assert record == result.record
        assert record.size == len(data)
        assert record.sha256 == hashlib.sha256(data).hexdigest()
        assert b"".join(store.iter_bytes(record, chunk_size=4096)) == data
        with store.open(record) as fh:
            assert fh.read() == data
        assert record.path.is_relative_to(store.files_dir)
    assert store.count() == len(sample_files)
    assert tree(store.tmp_dir) == set()


def test_record_carries_index_attributes(store: SqlFileStore, sample_files: list[Path]) -> None:
    for path in sample_files:
        record = store.put(path).record
        ds = dcmread(path, stop_before_pixels=True)
        assert record.sop_instance_uid == ds.SOPInstanceUID
        assert record.sop_class_uid == ds.SOPClassUID
        assert record.transfer_syntax_uid == ds.file_meta.TransferSyntaxUID
        assert record.study_instance_uid == ds.StudyInstanceUID
        assert record.series_instance_uid == ds.SeriesInstanceUID
        assert record.patient_id == ds.get("PatientID", "")
        assert record.patient_name == str(ds.get("PatientName", ""))
        assert record.modality == ds.get("Modality", "")
        assert record.number_of_frames == int(ds.get("NumberOfFrames") or 1)
        assert record.instance_number == (
            int(ds.InstanceNumber) if ds.get("InstanceNumber") not in (None, "") else None
        )


def test_put_from_stream(store: SqlFileStore, sample_files: list[Path]) -> None:
    data = sample_files[0].read_bytes()
    result = store.put(io.BytesIO(data))
    assert result.status is PutStatus.STORED
    assert b"".join(store.iter_bytes(result.record)) == data


def test_get_many_returns_known_uids_in_one_query(
    store: SqlFileStore, sample_files: list[Path]
) -> None:
    uids = [store.put(p).record.sop_instance_uid for p in sample_files]
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        found = store.get_many([*uids, "1.2.3.4.5.6.7.8.9", uids[0]])
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
    assert set(found) == set(uids)
    assert all(found[uid].sop_instance_uid == uid for uid in uids)
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1
    assert store.get("1.2.3.4.5.6.7.8.9") is None
    assert store.get_many([]) == {}
    assert store.get_many([uids[1], uids[1]]) == {uids[1]: found[uids[1]]}  # the one-UID query
    assert store.get_many(["1.2.3.4.5.6.7.8.9"]) == {}


def test_series_and_study_listing_order(
    store: SqlFileStore, samples_dir: Path, tmp_path: Path
) -> None:
    source = samples_dir / "ct" / "series1" / "ct_small.dcm"
    study, series_a, series_b = generate_uid(), generate_uid(), generate_uid()
    plan = [(series_b, 2, 3), (series_a, 1, 2), (series_b, 2, 1), (series_a, 1, None)]
    for n, (series, series_number, instance_number) in enumerate(plan):
        changes: dict[str, object] = {
            "StudyInstanceUID": study,
            "SeriesInstanceUID": series,
            "SOPInstanceUID": generate_uid(),
            "SeriesNumber": series_number,
        }
        if instance_number is not None:
            changes["InstanceNumber"] = instance_number
        else:
            changes["InstanceNumber"] = None
        store.put(variant(source, tmp_path / f"{n}.dcm", **changes))
    listed_a = store.series(study, series_a)
    assert [r.instance_number for r in listed_a] == [2, None]
    listed_b = store.series(study, series_b)
    assert [r.instance_number for r in listed_b] == [1, 3]
    listed = store.study(study)
    assert [(r.series_instance_uid, r.instance_number) for r in listed] == [
        (series_a, 2),
        (series_a, None),
        (series_b, 1),
        (series_b, 3),
    ]
    assert store.series(study, generate_uid()) == []
    assert store.series(generate_uid(), series_a) == []
    assert store.study(generate_uid()) == []


# --- duplicates --------------------------------------------------------------------------------


def test_duplicate_keep_changes_nothing(
    make_store: StoreFactory, sample_files: list[Path], tmp_path: Path
) -> None:
    store = make_store("keep")
    original = sample_files[0]
    first = store.put(original)
    files_before = tree(store.files_dir)
    changed = variant(original, tmp_path / "changed.dcm", PatientName="Changed^Name")
    second = store.put(changed)
    assert second.status is PutStatus.DUPLICATE
    assert second.record == first.record
    assert tree(store.files_dir) == files_before
    record = store.get(first.record.sop_instance_uid)
    assert record is not None
    assert b"".join(store.iter_bytes(record)) == original.read_bytes()
    assert store.count() == 1
    assert tree(store.tmp_dir) == set()


def test_duplicate_replace_swaps_file_and_row(
    make_store: StoreFactory, sample_files: list[Path], tmp_path: Path
) -> None:
    store = make_store("replace")
    original = sample_files[0]
    first = store.put(original)
    changed = variant(original, tmp_path / "changed.dcm", PatientName="Changed^Name")
    second = store.put(changed)
    assert second.status is PutStatus.REPLACED
    record = store.get(first.record.sop_instance_uid)
    assert record == second.record
    assert record.patient_name == "Changed^Name"
    assert b"".join(store.iter_bytes(record)) == changed.read_bytes()
    assert tree(store.files_dir) == {record.path}
    assert not first.record.path.exists()
    assert store.count() == 1
    again = store.put(changed)
    assert again.status is PutStatus.REPLACED
    assert tree(store.files_dir) == {record.path}


@pytest.mark.parametrize("policy", ["keep", "replace"])
def test_concurrent_puts_of_one_uid(
    make_store: StoreFactory, sample_files: list[Path], tmp_path: Path, policy: str
) -> None:
    store = make_store(policy)
    original = sample_files[0]
    # Half the writers send identical bytes, half each send a different version.
    sources = [original] * 4 + [
        variant(original, tmp_path / f"v{n}.dcm", PatientName=f"Version^{n}") for n in range(4)
    ]
    barrier = threading.Barrier(len(sources))
    results: list[PutResult | BaseException | None] = [None] * len(sources)

    def worker(n: int) -> None:
        barrier.wait()
        try:
            results[n] = store.put(sources[n])
        except BaseException as exc:
            results[n] = exc

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(len(sources))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    errors = [r for r in results if isinstance(r, BaseException)]
    assert errors == []
    statuses = [r.status for r in results if isinstance(r, PutResult)]
    assert statuses.count(PutStatus.STORED) == 1
    uid = dcmread(original, stop_before_pixels=True).SOPInstanceUID
    record = store.get(uid)
    assert record is not None
    assert store.count() == 1
    assert tree(store.files_dir) == {record.path}
    assert tree(store.tmp_dir) == set()
    stored = record.path.read_bytes()
    assert hashlib.sha256(stored).hexdigest() == record.sha256
    assert stored in {p.read_bytes() for p in sources}


# --- refused input -----------------------------------------------------------------------------


def test_truncated_part10_is_refused(
    store: SqlFileStore, sample_files: list[Path], tmp_path: Path
) -> None:
    for path in sample_files:
        data = path.read_bytes()
        for cut in (len(data) - 1, len(data) - 100, len(data) // 2):
            truncated = tmp_path / "truncated.dcm"
            truncated.write_bytes(data[:cut])
            with pytest.raises(CorruptDicom):
                store.put(truncated)
    assert_store_empty(store)


@pytest.mark.parametrize(
    "name",
    ["ct/series2/mr_small_rle.dcm", "mr/series1/emri_j2k_multiframe.dcm", "sc/series3/sr.dcm"],
)
def test_every_cut_near_the_end_is_refused(
    store: SqlFileStore, samples_dir: Path, tmp_path: Path, name: str
) -> None:
    """Encapsulated Pixel Data and sequences end with a delimiter pydicom does not insist on."""
    path = samples_dir / name
    data = path.read_bytes()
    ds = dcmread(path, defer_size=64)
    padding = ds.get_item(0xFFFCFFFC, keep_deferred=True) if 0xFFFCFFFC in ds else None
    # Cutting exactly before Data Set Trailing Padding leaves a complete data set (PS3.5 §7.1).
    complete_cut = padding.value_tell - 12 if isinstance(padding, RawDataElement) else None
    truncated = tmp_path / "truncated.dcm"
    for cut in range(len(data) - 300, len(data)):
        if cut == complete_cut:
            continue
        truncated.write_bytes(data[:cut])
        with pytest.raises(CorruptDicom):
            store.put(truncated)
    assert_store_empty(store)


def test_non_dicom_and_empty_input_are_refused(store: SqlFileStore, tmp_path: Path) -> None:
    text = tmp_path / "readme.txt"
    text.write_text("This is not a DICOM file.\n" * 50)
    empty = tmp_path / "empty.dcm"
    empty.write_bytes(b"")
    for path in (text, empty):
        with pytest.raises(NotDicom):
            store.put(path)
    with pytest.raises(NotDicom):
        store.put(io.BytesIO(os.urandom(4096)))
    assert_store_empty(store)


def test_missing_sop_instance_uid_is_refused(
    store: SqlFileStore, sample_files: list[Path], tmp_path: Path
) -> None:
    ds = dcmread(sample_files[0])
    del ds.SOPInstanceUID
    target = tmp_path / "no_uid.dcm"
    ds.save_as(target)
    with pytest.raises(InvalidUID, match="missing"):
        store.put(target)
    assert_store_empty(store)


@pytest.mark.parametrize(
    "keyword", ["SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "SOPClassUID"]
)
def test_malformed_uid_never_becomes_a_path(
    store: SqlFileStore, sample_files: list[Path], tmp_path: Path, keyword: str
) -> None:
    outside_before = tree(tmp_path)
    for bad in ("../../etc", "/tmp/evil", "1.2.03", "1.2..3", "1" * 65):
        ds = dcmread(sample_files[0])
        setattr(ds, keyword, bad)
        source = io.BytesIO()
        ds.save_as(source)
        source.seek(0)
        with pytest.raises(InvalidUID):
            store.put(source)
    assert tree(tmp_path) - outside_before <= tree(store.data_dir)
    assert not (store.data_dir.parent / "etc").exists()
    assert_store_empty(store)


def test_raw_data_set_is_stored_as_part10(
    store: SqlFileStore, sample_files: list[Path], tmp_path: Path
) -> None:
    source = sample_files[0]
    ds = dcmread(source)
    ds.file_meta = FileMetaDataset()  # no File Meta Information, no preamble: a bare data set
    ds.preamble = None
    raw = io.BytesIO()
    ds.save_as(raw, implicit_vr=True, little_endian=True)
    raw_bytes = raw.getvalue()
    assert raw_bytes[128:132] != b"DICM"
    assert raw_bytes[:4] == b"\x08\x00\x05\x00"  # (0008,0005), implicit VR: the data set itself
    result = store.put(io.BytesIO(raw_bytes))
    assert result.status is PutStatus.STORED
    stored = dcmread(result.record.path)
    assert stored.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert stored.file_meta.TransferSyntaxUID == result.record.transfer_syntax_uid
    assert stored.PixelData == ds.PixelData
    assert stored.PatientName == ds.PatientName
    assert result.record.size == result.record.path.stat().st_size


# --- schema ------------------------------------------------------------------------------------


def test_schema_version_recorded_and_newer_refused(make_store: StoreFactory) -> None:
    store = make_store()
    with store.engine.begin() as conn:
        assert conn.scalar(select(SchemaInfo.version)) == SCHEMA_VERSION
        conn.execute(update(SchemaInfo).values(version=SCHEMA_VERSION + 1))
    with pytest.raises(StoreError, match="newer"):
        make_store()


def test_reopen_keeps_index(make_store: StoreFactory, sample_files: list[Path]) -> None:
    first = make_store()
    record = first.put(sample_files[0]).record
    first.close()
    assert make_store().get(record.sop_instance_uid) == record


# --- damaged files behind the store's back ------------------------------------------------------


def test_iter_bytes_refuses_damaged_files(store: SqlFileStore, sample_files: list[Path]) -> None:
    record = store.put(sample_files[0]).record
    data = record.path.read_bytes()
    record.path.write_bytes(data[:-10])
    with pytest.raises(StoreError, match="bytes"):
        list(store.iter_bytes(record))
    record.path.write_bytes(data + b"\0\0")
    with pytest.raises(StoreError):
        list(store.iter_bytes(record))
    record.path.unlink()
    with pytest.raises(StoreError, match="missing"):
        list(store.iter_bytes(record))
    with pytest.raises(StoreError, match="missing"), store.open(record):
        pass


# --- crash safety --------------------------------------------------------------------------------

_KILL_BEFORE_COMMIT = """
import os, signal, sys
from pathlib import Path
from sqlalchemy.orm import sessionmaker
from xdsi.store import SqlFileStore

store = SqlFileStore(Path(sys.argv[1]), sys.argv[2])
real_begin = sessionmaker.begin

def die(self):  # the file is linked in place; the row is not committed yet
    os.kill(os.getpid(), signal.SIGKILL)

sessionmaker.begin = die
store.put(Path(sys.argv[3]))
"""


def test_kill_between_link_and_commit_is_rolled_back_at_open(
    make_store: StoreFactory, sample_files: list[Path], database_url: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    make_store().close()  # create the schema first
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            _KILL_BEFORE_COMMIT,
            str(data_dir),
            database_url,
            str(sample_files[0]),
        ],
        cwd=REPO,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == -9, proc.stderr.decode()
    leftovers = tree(data_dir / "tmp")
    assert len(leftovers) == 1 and next(iter(leftovers)).name.endswith(".intent")
    assert len(tree(data_dir / "files")) == 1  # linked, never committed
    store = make_store()
    assert any("rolled back" in line for line in store.recovered)
    assert_store_empty(store)
    assert store.put(sample_files[0]).status is PutStatus.STORED


def test_a_lost_intent_rename_is_recovered_from_the_file_itself(
    make_store: StoreFactory, sample_files: list[Path], database_url: str, tmp_path: Path
) -> None:
    """The rename to the intent name is not fsynced (step 2); a crash can lose it while the
    final link, whose directory is fsynced, survives: ``tmp/`` then holds the ``.part`` name."""
    data_dir = tmp_path / "data"
    make_store().close()
    proc = subprocess.run(
        [sys.executable, "-c", _KILL_BEFORE_COMMIT, str(data_dir), database_url,
         str(sample_files[0])],
        cwd=REPO, capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == -9, proc.stderr.decode()
    (intent,) = tree(data_dir / "tmp")
    intent.rename(intent.with_name(intent.name.split("~", 1)[0] + ".part"))
    store = make_store()
    assert any("rolled back" in line for line in store.recovered), store.recovered
    assert_store_empty(store)


def test_a_lost_intent_rename_after_the_commit_keeps_the_file(store: SqlFileStore,
    make_store: StoreFactory, sample_files: list[Path]) -> None:  # fmt: skip
    """The row was committed, then the crash lost both the intent rename and its unlink."""
    record = store.put(sample_files[0]).record
    os.link(record.path, store.tmp_dir / "leftover.part")
    reopened = make_store()
    assert tree(reopened.tmp_dir) == set()
    assert reopened.get(record.sop_instance_uid) == record
    assert record.path.read_bytes() == sample_files[0].read_bytes()


def test_open_leaves_live_writes_alone(store: SqlFileStore, make_store: StoreFactory) -> None:
    from xdsi.store import files

    temp = files.receive(io.BytesIO(b"in flight"), store.tmp_dir)
    try:
        assert make_store().recovered == []
        assert temp.path.exists()
    finally:
        temp.close()
    assert make_store().recovered == []
