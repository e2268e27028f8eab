"""The Native XML cache of the metadata operation: keys, size bound, memory-only mode, warming."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from xdsi.store.base import InstanceRecord
from xdsi.transactions.metadata_cache import FORMAT_VERSION, NativeCache


def _record(n: int, sha: str | None = None) -> InstanceRecord:
    return InstanceRecord(
        sop_instance_uid=f"1.2.3.{n}",
        sop_class_uid="1.2.840.10008.5.1.4.1.1.7",
        transfer_syntax_uid="1.2.840.10008.1.2.1",
        study_instance_uid="1.2.3",
        series_instance_uid="1.2.3.1",
        patient_id="P",
        patient_name="N",
        modality="OT",
        size=1,
        sha256=sha or f"{n:064x}",
        path=Path("/nonexistent"),
    )


class Producer:
    def __init__(self, size: int = 1000) -> None:
        self.size = size
        self.calls: list[str] = []

    def __call__(self, record: InstanceRecord) -> bytes:
        self.calls.append(record.sop_instance_uid)
        return record.sha256.encode() + b"x" * (self.size - 64)


def test_hits_after_first_use_and_across_instances(tmp_path: Path) -> None:
    produce = Producer()
    cache = NativeCache(tmp_path, 10**6)
    first = cache.get(_record(1), produce)
    assert cache.get(_record(1), produce) == first
    assert produce.calls == ["1.2.3.1"] and cache.hits == 1 and cache.misses == 1
    files = list((tmp_path / "cache" / f"native-v{FORMAT_VERSION}").rglob("*.xml"))
    assert [f.read_bytes() for f in files] == [first]
    # a new process (empty memory) reads the file instead of producing again
    again = NativeCache(tmp_path, 10**6)
    assert again.get(_record(1), produce) == first and produce.calls == ["1.2.3.1"]


def test_new_sha256_is_a_new_entry(tmp_path: Path) -> None:
    produce = Producer()
    cache = NativeCache(tmp_path, 10**6)
    old = cache.get(_record(1), produce)
    replaced = dataclasses.replace(_record(1), sha256="f" * 64)
    assert cache.get(replaced, produce) != old
    assert produce.calls == ["1.2.3.1", "1.2.3.1"]


def test_disk_size_is_bounded(tmp_path: Path) -> None:
    produce = Producer(size=1000)
    cache = NativeCache(tmp_path, 5_000)
    for n in range(20):
        cache.get(_record(n), produce)
    files = list(tmp_path.rglob("*.xml"))
    assert sum(f.stat().st_size for f in files) <= 5_000
    assert len(files) >= 3
    # the most recent entries are the ones kept
    assert any("1.2.3.19." in f.name for f in files)
    assert not any("1.2.3.0." in f.name for f in files)
    # a restarted cache accounts for what is on disk and keeps the bound
    restarted = NativeCache(tmp_path, 5_000)
    for n in range(20, 30):
        restarted.get(_record(n), produce)
    assert sum(f.stat().st_size for f in tmp_path.rglob("*.xml")) <= 5_000


def test_zero_bytes_is_memory_only(tmp_path: Path) -> None:
    produce = Producer()
    cache = NativeCache(tmp_path, 0)
    cache.get(_record(1), produce)
    cache.get(_record(1), produce)
    assert produce.calls == ["1.2.3.1"]
    assert not (tmp_path / "cache").exists()


def test_failures_are_not_cached_and_warm_skips_them(tmp_path: Path) -> None:
    def broken(record: InstanceRecord) -> bytes:
        raise OSError("gone")

    cache = NativeCache(tmp_path, 10**6)
    with pytest.raises(OSError):
        cache.get(_record(1), broken)
    assert not list(tmp_path.rglob("*.xml"))
    assert cache.warm([_record(1), _record(2)], broken) == 0
    assert cache.warm([_record(1), _record(2)], Producer()) == 2
