"""``xdsi import`` through the real command line (``python -m xdsi``), on a real store.

Outcomes and exit codes for each kind of input, the duplicate policies, and a SIGKILL in the
middle of an import followed by ``xdsi check`` and a second import.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.uid import generate_uid

from tests.conftest import Run
from tests.peers.postgres import postgres_cluster, postgres_url  # noqa: F401  (fixtures)
from xdsi.intake.importer import FileOutcome, Outcome, expand, import_file, import_files
from xdsi.store import SqlFileStore

REPO = Path(__file__).resolve().parents[2]


def outcome_of(stdout: str, path: Path) -> str:
    """The outcome word(s) printed for ``path`` (lines are ``<outcome> <path>[: <detail>]``)."""
    for line in stdout.splitlines():
        if line.endswith(f" {path}") or f" {path}: " in line:
            return line.partition(f" {path}")[0].strip()
    raise AssertionError(f"no line for {path} in:\n{stdout}")


def make_instances(dest: Path, source: Path, n: int) -> dict[str, Path]:
    """``n`` copies of ``source`` with fresh SOP Instance UIDs; returns UID -> file."""
    ds = dcmread(source)
    dest.mkdir(parents=True)
    made: dict[str, Path] = {}
    for i in range(n):
        uid = generate_uid()
        ds.SOPInstanceUID = uid
        ds.file_meta.MediaStorageSOPInstanceUID = uid
        ds.InstanceNumber = i + 1
        path = dest / f"{i:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        made[uid] = path
    return made


@pytest.fixture
def messy_folder(tmp_path: Path, samples_dir: Path, sample_files: list[Path]) -> Path:
    """The samples plus one file of every refused kind."""
    folder = tmp_path / "in"
    (folder / "good").mkdir(parents=True)
    for n, path in enumerate(sample_files):
        (folder / "good" / f"{n:02d}_{path.name}").write_bytes(path.read_bytes())
    bad = folder / "bad"
    bad.mkdir()
    (bad / "readme.txt").write_text("not DICOM\n")
    (bad / "empty.dcm").write_bytes(b"")
    data = sample_files[0].read_bytes()
    (bad / "truncated.dcm").write_bytes(data[: len(data) // 2])
    ds = dcmread(sample_files[0])
    ds.SOPInstanceUID = "../../etc"
    ds.save_as(bad / "evil_uid.dcm")
    (folder / "DICOMDIR").write_bytes(b"\0" * 256)
    return folder


def test_import_reports_each_file_and_fails_on_bad_input(
    xdsi: Callable[..., Run], tmp_path: Path, messy_folder: Path, sample_files: list[Path]
) -> None:
    data = tmp_path / "data"
    result = xdsi(data, "import", messy_folder)
    assert result.returncode == 1, result.stderr
    out = result.stdout
    bad = messy_folder / "bad"
    assert outcome_of(out, bad / "readme.txt") == "not DICOM"
    assert outcome_of(out, bad / "empty.dcm") == "not DICOM"
    assert outcome_of(out, bad / "truncated.dcm") == "corrupt"
    assert outcome_of(out, bad / "evil_uid.dcm") == "invalid UID"
    assert outcome_of(out, messy_folder / "DICOMDIR") == "skipped"
    for path in sorted((messy_folder / "good").iterdir()):
        assert outcome_of(out, path) == "stored"
    n = len(sample_files)
    assert f"{n + 5} files: {n} stored, 1 skipped, 2 not DICOM, 1 corrupt, 1 invalid UID" in out
    assert "Traceback" not in result.stderr
    with SqlFileStore(data) as store:
        assert store.count() == n
        for path in sample_files:
            uid = dcmread(path, stop_before_pixels=True).SOPInstanceUID
            record = store.get(uid)
            assert record is not None and record.path.read_bytes() == path.read_bytes()
    assert not (tmp_path / "etc").exists()


@pytest.mark.parametrize(("workers", "batch_size"), [(1, 1), (3, 2), (8, 32)])
def test_batched_import_matches_one_put_per_file(
    tmp_path: Path, messy_folder: Path, sample_files: list[Path], workers: int, batch_size: int
) -> None:
    """Staged batches give every file the outcome, in the order, of a put of its own."""
    again = messy_folder / "zz_again"  # duplicates, some in the same batch as their first copy
    again.mkdir()
    for n, path in enumerate(sample_files[:3]):
        (again / f"{n}.dcm").write_bytes(path.read_bytes())
    files, _missing = expand([messy_folder])
    with SqlFileStore(tmp_path / "one") as store:
        expected = [import_file(store, path) for path in files]
    seen: list[FileOutcome] = []
    with SqlFileStore(tmp_path / "batched") as store:
        summary = import_files(store, files, seen.append, workers=workers, batch_size=batch_size)
        assert store.count() == len(sample_files)
        assert not any(store.tmp_dir.iterdir())
        assert len(list(store.files_dir.rglob("*.dcm"))) == len(sample_files)
    assert [(o.path, o.outcome, o.sop_instance_uid) for o in seen] == [
        (o.path, o.outcome, o.sop_instance_uid) for o in expected
    ]
    assert summary.counts[Outcome.DUPLICATE] == 3


def test_quiet_prints_failures_only_and_duplicates_do_not_fail(
    xdsi: Callable[..., Run], tmp_path: Path, messy_folder: Path
) -> None:
    data = tmp_path / "data"
    quiet = xdsi(data, "import", "--quiet", messy_folder)
    assert quiet.returncode == 1
    lines = quiet.stdout.splitlines()
    assert all(not line.startswith(("stored", "skipped")) for line in lines)
    assert any(line.startswith("corrupt") for line in lines)
    assert quiet.stderr == ""  # no progress bar without a terminal
    again = xdsi(data, "import", messy_folder / "good")
    assert again.returncode == 0
    assert all(line.startswith("duplicate") for line in again.stdout.splitlines()[:-1])
    assert xdsi(data, "import", "-q", messy_folder / "good").stdout == ""


def test_replace_policy_from_the_command_line(
    xdsi: Callable[..., Run], tmp_path: Path, sample_files: list[Path]
) -> None:
    data = tmp_path / "data"
    original = sample_files[0]
    assert xdsi(data, "import", original).returncode == 0
    ds = dcmread(original)
    ds.PatientName = "Replaced^Patient"
    changed = tmp_path / "changed.dcm"
    ds.save_as(changed)
    kept = xdsi(data, "import", changed)
    assert kept.returncode == 0 and outcome_of(kept.stdout, changed) == "duplicate"
    replaced = xdsi(data, "import", "--duplicates", "replace", changed)
    assert replaced.returncode == 0 and outcome_of(replaced.stdout, changed) == "replaced"
    with SqlFileStore(data) as store:
        record = store.get(ds.SOPInstanceUID)
        assert record is not None
        assert record.path.read_bytes() == changed.read_bytes()
        assert store.count() == 1


def test_import_into_postgresql(
    xdsi: Callable[..., Run],
    tmp_path: Path,
    sample_files: list[Path],
    request: pytest.FixtureRequest,
) -> None:
    database_url: str = request.getfixturevalue("postgres_url")  # a fresh database
    data = tmp_path / "data"
    result = xdsi(data, "--database-url", database_url, "import", *sample_files)
    assert result.returncode == 0, result.stdout
    assert not (data / "index.sqlite").exists()
    check = xdsi(data, "--database-url", database_url, "check")
    assert check.returncode == 0, check.stdout
    with SqlFileStore(data, database_url) as store:
        assert store.count() == len(sample_files)


def test_missing_path_is_an_error(xdsi: Callable[..., Run], tmp_path: Path) -> None:
    result = xdsi(tmp_path / "data", "import", tmp_path / "nope")
    assert result.returncode == 1
    assert outcome_of(result.stdout, tmp_path / "nope") == "error"


def test_kill_during_import_leaves_no_damage(
    xdsi: Callable[..., Run], tmp_path: Path, sample_files: list[Path]
) -> None:
    made = make_instances(tmp_path / "many", sample_files[0], 150)
    data = tmp_path / "data"
    proc = subprocess.Popen(
        [sys.executable, "-m", "xdsi", "--data-dir", str(data), "import", str(tmp_path / "many")],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    stored = 0
    for line in proc.stdout:
        stored += line.startswith("stored")
        if stored == 40:
            proc.send_signal(signal.SIGKILL)  # mid-way: other puts are in flight now
            break
    proc.wait(timeout=60)
    proc.stdout.close()
    assert stored == 40 and proc.returncode == -signal.SIGKILL

    check = xdsi(data, "check")
    assert check.returncode == 0, check.stdout
    assert "0 damaged" in check.stdout
    store = SqlFileStore(data, recover=False)
    try:
        records = list(store.iter_records())
        assert 40 <= len(records) < 150
        for record in records:
            assert record.path.read_bytes() == made[record.sop_instance_uid].read_bytes()
    finally:
        store.close()

    rerun = xdsi(data, "import", "--quiet", tmp_path / "many")
    assert rerun.returncode == 0, rerun.stdout
    assert xdsi(data, "check").returncode == 0
    with SqlFileStore(data) as store:
        assert store.count() == 150
        assert set(store.get_many(list(made))) == set(made)
        assert not any(store.tmp_dir.iterdir())


def test_ctrl_c_stops_cleanly(
    xdsi: Callable[..., Run], tmp_path: Path, sample_files: list[Path]
) -> None:
    made = make_instances(tmp_path / "many", sample_files[0], 150)
    data = tmp_path / "data"
    proc = subprocess.Popen(
        [sys.executable, "-m", "xdsi", "--data-dir", str(data), "import", str(tmp_path / "many")],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("stored"):
            proc.send_signal(signal.SIGINT)
            break
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted after" in out
    assert "Traceback" not in err
    check = xdsi(data, "check")
    assert check.returncode == 0 and "0 damaged" in check.stdout
    with SqlFileStore(data) as store:
        assert 1 <= store.count() < len(made)
        for record in store.iter_records():
            assert record.path.read_bytes() == made[record.sop_instance_uid].read_bytes()
