"""The gateway cache after a crash: it writes without fsync and indexes in batches, yet never
serves a torn or wrong file (the rules of :mod:`xdsi.store.gateway.cacheindex`).

A child process putting instances in a loop (:mod:`tests.gateway.cachewriter`) is killed with
SIGKILL at arbitrary moments; the reopened cache must serve exactly the bytes of each instance
it still lists.  Files changed behind the cache's back, a crash in an earlier boot and a second
process on the same directory are checked too.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

from xdsi.errors import StoreError
from xdsi.store.gateway.cache import InstanceCache
from xdsi.store.gateway.cacheindex import INCOMING_DIR, INSTANCES_DIR, STATE_FILE
from xdsi.store.sqlfile import SqlFileStore

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def part10(sample_files: list[Path]) -> dict[str, bytes]:
    """SOP Instance UID → bytes of the Part 10 samples (the cache stores those unchanged)."""
    out = {}
    for path in sample_files:
        data = path.read_bytes()
        if data[128:132] == b"DICM":
            out[str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)] = data
    return out


def writer(directory: Path, max_bytes: int, files: list[Path]) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.gateway.cachewriter", str(directory), str(max_bytes)]
        + [str(f) for f in files],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


def kill_after(process: subprocess.Popen[str], puts: int) -> None:
    """SIGKILL once the child reported ``puts`` puts (it goes on putting meanwhile)."""
    assert process.stdout is not None
    for line in process.stdout:
        if int(line) >= puts:
            break
    process.send_signal(signal.SIGKILL)
    process.wait(30)


def assert_serves_only_right_bytes(cache: InstanceCache, part10: dict[str, bytes]) -> int:
    """Every instance the cache lists has exactly its bytes; nothing unlisted is on disk."""
    listed = cache.get_many(list(part10))
    for uid, record in listed.items():
        assert b"".join(cache.iter_bytes(record, 1 << 16)) == part10[uid], uid
    on_disk = {p.name for p in (cache.directory / INSTANCES_DIR).iterdir()}
    assert on_disk == {f"{uid}.dcm" for uid in listed}
    assert not any((cache.directory / INCOMING_DIR).iterdir())
    assert cache.total_bytes == sum(len(part10[uid]) for uid in listed) <= cache.max_bytes
    return len(listed)


@pytest.mark.parametrize("puts", [1, 7, 25, 60])
def test_killed_writer_leaves_no_wrong_bytes(
    tmp_path: Path, sample_files: list[Path], part10: dict[str, bytes], puts: int
) -> None:
    files = [p for p in sample_files if p.read_bytes()[128:132] == b"DICM"]
    max_bytes = sum(len(d) for d in part10.values()) // 2  # evictions go on all the time
    process = writer(tmp_path / "c", max_bytes, files)
    try:
        kill_after(process, puts)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    state = json.loads((tmp_path / "c" / STATE_FILE).read_text())
    assert state["clean"] is False  # killed: the same-boot rules apply, not a clean close
    cache = InstanceCache(tmp_path / "c", max_bytes, pin_seconds=60)
    try:
        assert_serves_only_right_bytes(cache, part10)
    finally:
        cache.close()


def test_a_crash_in_an_earlier_boot_empties_the_cache(
    tmp_path: Path, sample_files: list[Path], part10: dict[str, bytes]
) -> None:
    files = [p for p in sample_files if p.read_bytes()[128:132] == b"DICM"]
    process = writer(tmp_path / "c", 10**9, files)
    kill_after(process, 5)
    # As if the machine had gone down: files renamed without fsync may be empty or zero-filled.
    path = tmp_path / "c" / STATE_FILE
    path.write_text(json.dumps(json.loads(path.read_text()) | {"boot_id": "an-earlier-boot"}))
    cache = InstanceCache(tmp_path / "c", 10**9, pin_seconds=60)
    try:
        assert assert_serves_only_right_bytes(cache, part10) == 0
    finally:
        cache.close()


def test_files_changed_behind_its_back_are_dropped(
    tmp_path: Path, part10: dict[str, bytes]
) -> None:
    cache = InstanceCache(tmp_path / "c", 10**9, pin_seconds=60)
    uids = list(part10)[:4]
    for uid in uids:
        cache.put(io.BytesIO(part10[uid]))
    cache.close()
    files = tmp_path / "c" / INSTANCES_DIR
    truncated, removed, replaced, kept = (files / f"{uid}.dcm" for uid in uids)
    truncated.write_bytes(truncated.read_bytes()[:1000])
    removed.unlink()
    # Same size and content, but another file (as when evicted and fetched again unindexed).
    copy = files / "copy"
    copy.write_bytes(replaced.read_bytes())
    os.replace(copy, replaced)
    (files / "9.9.9.dcm").write_bytes(b"an orphan")
    (tmp_path / "c" / INCOMING_DIR / "half.part").write_bytes(b"half an instance")
    cache = InstanceCache(tmp_path / "c", 10**9, pin_seconds=60)
    try:
        assert set(cache.get_many(uids)) == {uids[3]}
        assert assert_serves_only_right_bytes(cache, part10) == 1
        assert kept.exists()
    finally:
        cache.close()


def test_one_process_at_a_time(tmp_path: Path) -> None:
    cache = InstanceCache(tmp_path / "c", 10**6, pin_seconds=60)
    try:
        with pytest.raises(StoreError, match="in use"):
            InstanceCache(tmp_path / "c", 10**6, pin_seconds=60)
    finally:
        cache.close()
    InstanceCache(tmp_path / "c", 10**6, pin_seconds=60).close()


def test_a_cache_of_an_earlier_xdsi_is_emptied(tmp_path: Path, part10: dict[str, bytes]) -> None:
    """Earlier, the cache was a full crash-safe store (files/, tmp/, index.sqlite)."""
    old = SqlFileStore(tmp_path / "c")
    uid, data = next(iter(part10.items()))
    old.put(io.BytesIO(data))
    old.close()
    cache = InstanceCache(tmp_path / "c", 10**9, pin_seconds=60)
    try:
        assert cache.get(uid) is None and cache.total_bytes == 0
        assert not (tmp_path / "c" / "files").exists()
        assert not (tmp_path / "c" / "index.sqlite").exists()
        cache.put(io.BytesIO(data))
        assert cache.get(uid) is not None
    finally:
        cache.close()
