"""``xdsi check [--fast] [--repair]`` through the real command line, one damage kind at a time.

The damage is made the way it happens in life: files deleted, grown, edited or dropped into the
tree behind the store's back, and a write killed between its link and its commit.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.uid import generate_uid

from tests.conftest import Run
from xdsi.store import SqlFileStore

REPO = Path(__file__).resolve().parents[2]


def kinds(stdout: str) -> list[str]:
    """The kind word of each finding line."""
    words = {"missing", "orphan", "size", "sha256", "temp"}
    return [line.split()[0] for line in stdout.splitlines() if line.split(" ", 1)[0] in words]


@pytest.fixture
def data_dir(tmp_path: Path, sample_files: list[Path]) -> Path:
    data = tmp_path / "data"
    with SqlFileStore(data) as store:
        for path in sample_files:
            store.put(path)
    return data


def records(data: Path) -> list[Path]:
    with SqlFileStore(data, recover=False) as store:
        return [r.path for r in store.iter_records()]


def test_clean_store(xdsi: Callable[..., Run], data_dir: Path, sample_files: list[Path]) -> None:
    result = xdsi(data_dir, "check")
    assert result.returncode == 0, result.stdout
    assert kinds(result.stdout) == []
    assert f"checked {len(sample_files)} indexed instances and {len(sample_files)} files" in (
        result.stdout
    )


def test_missing_file_reported_then_row_removed(xdsi: Callable[..., Run], data_dir: Path) -> None:
    victim = records(data_dir)[0]
    victim.unlink()
    result = xdsi(data_dir, "check")
    assert result.returncode == 1
    assert kinds(result.stdout) == ["missing"]
    assert str(victim) in result.stdout
    repaired = xdsi(data_dir, "check", "--repair")
    assert repaired.returncode == 0, repaired.stdout
    assert "index row removed" in repaired.stdout
    assert xdsi(data_dir, "check").returncode == 0
    assert victim not in records(data_dir)


def test_size_and_sha256_mismatch_are_reported_not_repaired(
    xdsi: Callable[..., Run], data_dir: Path
) -> None:
    grown, edited = records(data_dir)[:2]
    with grown.open("ab") as fh:
        fh.write(b"\0\0")
    data = bytearray(edited.read_bytes())
    data[-1] ^= 0xFF
    edited.write_bytes(bytes(data))
    result = xdsi(data_dir, "check")
    assert result.returncode == 1
    assert sorted(kinds(result.stdout)) == ["sha256", "size"]
    fast = xdsi(data_dir, "check", "--fast")
    assert fast.returncode == 1
    assert kinds(fast.stdout) == ["size"]  # same size: only hashing sees the edit
    repaired = xdsi(data_dir, "check", "--repair")
    assert repaired.returncode == 1
    assert repaired.stdout.count("NOT repaired") == 2
    assert grown.exists() and edited.exists()  # never deleted: they may be all there is


def test_orphans_reindexed_or_quarantined(
    xdsi: Callable[..., Run], data_dir: Path, sample_files: list[Path], tmp_path: Path
) -> None:
    files_dir = data_dir / "files"
    ds = dcmread(sample_files[0])
    ds.SOPInstanceUID = generate_uid()
    ds.save_as(files_dir / "dropped.dcm")
    (files_dir / "junk.bin").write_bytes(os.urandom(1000))
    shutil.copy(records(data_dir)[0], files_dir / "copy_of_indexed.dcm")
    result = xdsi(data_dir, "check")
    assert result.returncode == 1
    assert kinds(result.stdout) == ["orphan"] * 3
    repaired = xdsi(data_dir, "check", "--repair")
    assert repaired.returncode == 0, repaired.stdout
    assert (data_dir / "quarantine" / "junk.bin").exists()
    assert not (files_dir / "junk.bin").exists()
    assert not (files_dir / "copy_of_indexed.dcm").exists()
    assert not (files_dir / "dropped.dcm").exists()
    with SqlFileStore(data_dir) as store:
        record = store.get(ds.SOPInstanceUID)
        assert record is not None and record.path.exists()
        assert store.count() == len(sample_files) + 1
    assert xdsi(data_dir, "check").returncode == 0


def test_unindexed_file_at_its_canonical_name_is_reindexed_in_place(
    xdsi: Callable[..., Run], data_dir: Path
) -> None:
    victim = records(data_dir)[0]
    with SqlFileStore(data_dir) as store:
        uid = next(r.sop_instance_uid for r in store.iter_records() if r.path == victim)
        store.forget(uid)  # as if a power loss had lost the commit
    result = xdsi(data_dir, "check")
    assert result.returncode == 1 and kinds(result.stdout) == ["orphan"]
    repaired = xdsi(data_dir, "check", "--repair")
    assert repaired.returncode == 0 and "re-indexed in place" in repaired.stdout
    with SqlFileStore(data_dir) as store:
        record = store.get(uid)
        assert record is not None and record.path == victim


def test_temp_leftovers_reported_and_removed(xdsi: Callable[..., Run], data_dir: Path) -> None:
    leftover = data_dir / "tmp" / "0123456789abcdef.part"
    leftover.write_bytes(b"half a file")
    result = xdsi(data_dir, "check")
    assert result.returncode == 0  # an interrupted write is not damage: nothing refers to it
    assert kinds(result.stdout) == ["temp"]
    assert leftover.exists()  # check alone changes nothing
    repaired = xdsi(data_dir, "check", "--repair")
    assert repaired.returncode == 0
    assert not leftover.exists()


_KILL_BEFORE_COMMIT = """
import os, signal, sys
from pathlib import Path
from sqlalchemy.orm import sessionmaker
from xdsi.store import SqlFileStore

store = SqlFileStore(Path(sys.argv[1]))
sessionmaker.begin = lambda self: os.kill(os.getpid(), signal.SIGKILL)
store.put(Path(sys.argv[2]))
"""


def test_write_killed_before_commit_is_an_interrupted_write_not_an_orphan(
    xdsi: Callable[..., Run], data_dir: Path, sample_files: list[Path], tmp_path: Path
) -> None:
    ds = dcmread(sample_files[0])
    ds.SOPInstanceUID = generate_uid()
    source = tmp_path / "new.dcm"
    ds.save_as(source)
    proc = subprocess.run(
        [sys.executable, "-c", _KILL_BEFORE_COMMIT, str(data_dir), str(source)],
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert proc.returncode == -9
    result = xdsi(data_dir, "check")
    assert result.returncode == 0, result.stdout
    assert kinds(result.stdout) == ["temp"]
    assert "not committed" in result.stdout
    assert xdsi(data_dir, "check", "--repair").returncode == 0
    after = xdsi(data_dir, "check")
    assert kinds(after.stdout) == [] and after.returncode == 0
    assert len(list((data_dir / "files").rglob("*.dcm"))) == len(sample_files)


def test_no_store_is_not_a_clean_store(xdsi: Callable[..., Run], tmp_path: Path) -> None:
    result = xdsi(tmp_path / "absent", "check")
    assert result.returncode == 2
    assert "no store" in result.stderr
    assert not (tmp_path / "absent").exists()
