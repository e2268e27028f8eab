"""The gateway's instance cache on a real file tree and SQLite index: LRU eviction, pins,
refusal when full, a restart that keeps it; and the gateway settings."""

from __future__ import annotations

import errno
import io
from pathlib import Path

import pydicom
import pytest

from xdsi.config import load_settings
from xdsi.errors import StoreError
from xdsi.store import open_source
from xdsi.store.gateway import GatewayStore
from xdsi.store.gateway.cache import InstanceCache
from xdsi.store.sqlfile import SqlFileStore


@pytest.fixture
def three(sample_files: list[Path]) -> list[Path]:
    """Three samples of similar size (the small MR series)."""
    return sorted(p for p in sample_files if p.parent.name == "series2" and "mr_small" in p.name)


def uid_of(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)


def test_lru_eviction_and_restart(tmp_path: Path, three: list[Path]) -> None:
    sizes = [p.stat().st_size for p in three]
    cache = InstanceCache(tmp_path / "c", sum(sizes[:2]) + 10, pin_seconds=60)
    first, second, third = (cache.put(io.BytesIO(p.read_bytes())).record for p in three[:3])
    del first, second, third
    uids = [uid_of(p) for p in three]
    # Room for two: the least recently used (the first) went when the third came.
    assert cache.get(uids[0]) is None
    assert cache.get(uids[1]) is not None and cache.get(uids[2]) is not None
    assert cache.total_bytes == sizes[1] + sizes[2]
    assert not any(uids[0] in p.name for p in (tmp_path / "c").rglob("*.dcm"))
    cache.get(uids[1])  # now the third is the least recently used
    cache.put(io.BytesIO(three[0].read_bytes()))
    assert cache.get(uids[2]) is None and cache.get(uids[1]) is not None
    cache.close()
    reopened = InstanceCache(tmp_path / "c", sum(sizes[:2]) + 10, pin_seconds=60)
    assert {uids[0], uids[1]} <= set(reopened.get_many(uids))
    assert reopened.total_bytes == sizes[0] + sizes[1]
    reopened.close()
    smaller = InstanceCache(tmp_path / "c", max(sizes[:2]) + 10, pin_seconds=60)
    assert len(smaller.get_many(uids)) == 1  # a lower limit at start-up evicts at once
    smaller.close()


def test_pinned_instances_are_kept_and_a_full_cache_refuses(
    tmp_path: Path, three: list[Path]
) -> None:
    sizes = [p.stat().st_size for p in three]
    cache = InstanceCache(tmp_path / "c", sum(sizes[:2]) + 10, pin_seconds=60)
    uids = [uid_of(p) for p in three]
    for path, uid in zip(three[:2], uids, strict=False):
        cache.put(io.BytesIO(path.read_bytes()))
        cache.pin(uid)
    with pytest.raises(OSError) as refused:
        cache.put(io.BytesIO(three[2].read_bytes()))
    assert refused.value.errno == errno.ENOSPC
    reason = cache.refusal(uids[2])
    assert reason is not None and "cache is full" in reason
    record = cache.get(uids[0])
    assert record is not None
    assert b"".join(cache.iter_bytes(record, 4096)) == three[0].read_bytes()  # releases the pin
    cache.put(io.BytesIO(three[2].read_bytes()))
    assert cache.get(uids[0]) is None and cache.get(uids[2]) is not None
    with pytest.raises(OSError):
        cache.put(io.BytesIO(b"\0" * (sum(sizes) + 100)))  # larger than the whole cache
    cache.close()


def test_gateway_settings(tmp_path: Path) -> None:
    env = {
        "XDSI_PACS_AE_TITLE": "PACS",
        "XDSI_PACS_PORT": "4242",
        "XDSI_PACS_DIMSE_TIMEOUT": "2.5",
        "XDSI_PACS_RETRIEVE": "c-move",
        "XDSI_PACS_STREAM": "no",
    }
    settings = load_settings(None, environ=env, data_dir=tmp_path)
    assert settings.pacs_dimse_timeout == 2.5
    assert settings.pacs_retrieve == "c-move"
    assert settings.pacs_stream is False
    assert settings.effective_pacs_cache_dir == tmp_path / "gateway-cache"
    with pytest.raises(ValueError, match="number"):
        load_settings(None, environ={"XDSI_PACS_OVERALL_TIMEOUT": "soon"})
    with pytest.raises(ValueError, match="positive"):
        load_settings(None, environ={"XDSI_PACS_CACHE_BYTES": "0"})
    with pytest.raises(ValueError, match="one of"):
        load_settings(None, environ={"XDSI_PACS_RETRIEVE": "c-send"})


def test_open_source_picks_the_backend(tmp_path: Path) -> None:
    local = open_source(load_settings(None, environ={}, data_dir=tmp_path / "a"))
    assert isinstance(local, SqlFileStore)
    local.close()
    settings = load_settings(None, environ={}, data_dir=tmp_path / "b", pacs_ae_title="PACS")
    gateway = open_source(settings)
    assert isinstance(gateway, GatewayStore)
    with pytest.raises(Exception, match="gateway mode"):
        gateway.put(tmp_path)
    gateway.close()


def test_a_cached_file_changed_behind_the_cache_is_never_sent_short(
    tmp_path: Path, three: list[Path]
) -> None:
    cache = InstanceCache(tmp_path / "c", 10 << 20, pin_seconds=60)
    record = cache.put(io.BytesIO(three[0].read_bytes())).record
    data = record.path.read_bytes()
    chunks = cache.iter_bytes(record, chunk_size=1024)
    assert next(chunks) == data[:1024]
    record.path.write_bytes(data[:2000])  # cut while a response is reading it
    with pytest.raises(StoreError, match="shrank while read"):
        list(chunks)
    with pytest.raises(StoreError, match="the index says"):
        next(cache.iter_bytes(record, chunk_size=1024))
    record.path.write_bytes(data)
    chunks = cache.iter_bytes(record, chunk_size=len(data))
    assert next(chunks) == data
    with record.path.open("ab") as fh:
        fh.write(b"\0\0")  # grown after its last chunk was read
    with pytest.raises(StoreError, match="grew while read"):
        list(chunks)
    cache.close()
