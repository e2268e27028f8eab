"""A size-bounded cache of each stored instance's PS3.19 Native DICOM Model text.

The metadata operation (PS3.18 2017b §6.4.3) converts whole studies; reading and parsing every
Part 10 header again for each request runs at ~500 instances/s (docs/performance.md), the
serialized model read back at several thousand.  The cache keeps that text:

* **Key**: SOP Instance UID + the SHA-256 the index records for the stored file.  A replaced
  instance has a new SHA-256, so its old entry is never served; it ages out.
* **Content**: the model as :func:`~xdsi.imaging.nativexml.to_native_xml_bytes` writes it (UTF-8,
  no XML declaration, bulk data omitted), i.e. exactly the answer to ``"/"``.
  :data:`FORMAT_VERSION` names the directory: a writer change that alters the text must bump it.
* **Where**: a memory LRU of :data:`MEMORY_BYTES` in front of files under
  ``<data_dir>/cache/native-v<N>/<sha256[:2]>/<sop>.<sha256>.xml``, at most ``max_bytes`` in all
  (least recently used files removed first, down to 90 %).  ``max_bytes`` 0 keeps only the memory
  LRU.  Files are written to a temporary name and renamed, so a reader never sees half a file; a
  file another process removed is a miss, never an error.
* Filled lazily on the first request for an instance; :meth:`NativeCache.warm` fills it ahead.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Final

from xdsi.fsutil import replace_atomically
from xdsi.store.base import InstanceRecord

__all__ = ["FORMAT_VERSION", "MEMORY_BYTES", "NativeCache", "Produce"]

log = logging.getLogger(__name__)

FORMAT_VERSION: Final = 1
MEMORY_BYTES: Final = 64 * 1024 * 1024
_LOW_WATER: Final = 0.9

Produce = Callable[[InstanceRecord], bytes]
"""Makes the model text of one instance (reads the stored file)."""


class NativeCache:
    """Thread-safe cache of model texts keyed by (SOP Instance UID, SHA-256)."""

    def __init__(self, data_dir: Path | None, max_bytes: int) -> None:
        self.directory = (
            data_dir / "cache" / f"native-v{FORMAT_VERSION}"
            if data_dir is not None and max_bytes > 0
            else None
        )
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._memory: collections.OrderedDict[str, bytes] = collections.OrderedDict()
        self._memory_bytes = 0
        self._files: collections.OrderedDict[str, int] | None = None  # name → size, LRU order
        self._file_bytes = 0
        self.hits = 0
        self.misses = 0

    # --- public ------------------------------------------------------------------------------

    def get(self, record: InstanceRecord, produce: Produce) -> bytes:
        """The model text of ``record``: from memory, else from disk, else ``produce``-d and kept.

        Exceptions of ``produce`` pass through (nothing is cached then).
        """
        key = _key(record)
        with self._lock:
            text = self._memory.get(key)
            if text is not None:
                self._memory.move_to_end(key)
                self.hits += 1
                return text
        text = self._read(key)
        if text is None:
            text = produce(record)
            self._write(key, text)
            with self._lock:
                self.misses += 1
        else:
            with self._lock:
                self.hits += 1
        self._remember(key, text)
        return text

    def warm(self, records: Iterable[InstanceRecord], produce: Produce) -> int:
        """Fill the cache for ``records`` (failures logged and skipped) until it is full (what
        came later would only evict what came first); returns how many were cached."""
        done = 0
        for record in records:
            if self.full():
                break
            try:
                self.get(record, produce)
                done += 1
            except Exception as exc:  # one unreadable file must not stop warming
                log.warning("metadata cache: %s not cached: %s", record.sop_instance_uid, exc)
        return done

    def full(self) -> bool:
        """Whether the cache holds as much as eviction leaves (disk, else memory)."""
        with self._lock:
            if self.directory is not None:
                self._index()
                return self._file_bytes >= self.max_bytes * _LOW_WATER
            return self._memory_bytes >= MEMORY_BYTES * _LOW_WATER

    # --- memory ------------------------------------------------------------------------------

    def _remember(self, key: str, text: bytes) -> None:
        if len(text) > MEMORY_BYTES // 8:
            return  # one huge model must not flush everything else
        with self._lock:
            if key in self._memory:
                return
            self._memory[key] = text
            self._memory_bytes += len(text)
            while self._memory_bytes > MEMORY_BYTES:
                _old, dropped = self._memory.popitem(last=False)
                self._memory_bytes -= len(dropped)

    # --- disk --------------------------------------------------------------------------------

    def _path(self, key: str) -> Path:
        assert self.directory is not None
        return self.directory / key[-64:-62] / f"{key}.xml"

    def _read(self, key: str) -> bytes | None:
        if self.directory is None:
            return None
        try:
            text = self._path(key).read_bytes()
        except OSError:
            return None
        with self._lock:
            files = self._index()
            if key in files:
                files.move_to_end(key)
        return text

    def _write(self, key: str, text: bytes) -> None:
        if self.directory is None or len(text) > self.max_bytes:
            return
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            replace_atomically(path, text)
        except OSError as exc:  # a full or read-only disk costs speed, never an answer
            log.warning("metadata cache: cannot write %s: %s", path, exc)
            return
        with self._lock:
            files = self._index()
            self._file_bytes += len(text) - files.pop(key, 0)
            files[key] = len(text)
            if self._file_bytes > self.max_bytes:
                self._evict(files)

    def _index(self) -> collections.OrderedDict[str, int]:
        """Name → size of the cached files, oldest first (scanned once; caller holds the lock)."""
        if self._files is not None:
            return self._files
        entries: list[tuple[float, str, int]] = []
        assert self.directory is not None
        if self.directory.is_dir():
            for sub in self.directory.iterdir():
                if not sub.is_dir():
                    continue
                for entry in os.scandir(sub):
                    if entry.name.endswith(".xml"):
                        with contextlib.suppress(OSError):
                            stat = entry.stat()
                            entries.append((stat.st_mtime, entry.name[:-4], stat.st_size))
        entries.sort()
        self._files = collections.OrderedDict((name, size) for _t, name, size in entries)
        self._file_bytes = sum(size for _t, _n, size in entries)
        return self._files

    def _evict(self, files: collections.OrderedDict[str, int]) -> None:
        target = int(self.max_bytes * _LOW_WATER)
        while files and self._file_bytes > target:
            key, size = files.popitem(last=False)
            self._file_bytes -= size
            with contextlib.suppress(OSError):
                self._path(key).unlink()


def _key(record: InstanceRecord) -> str:
    return f"{record.sop_instance_uid}.{record.sha256}"
