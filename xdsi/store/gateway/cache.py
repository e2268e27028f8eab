"""Bounded on-disk cache of the instances the gateway fetched from the PACS.

The cache is a :class:`~xdsi.store.sqlfile.SqlFileStore` of its own (crash-safe files plus an
SQLite index), so a restart keeps what was fetched; on top of it this module keeps the total size
under a limit by evicting the least recently used instances.

Instances handed to a response in progress are *pinned* (until read, or for at most
``pin_seconds``) and never evicted meanwhile.  An arrival that does not fit even after evicting
every unpinned instance is refused with ``ENOSPC``: the C-STORE handler answers ``0xA700`` (out
of resources) and the instance is reported as :class:`~xdsi.errors.OutOfResources`.
"""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from pydicom import dcmread

from xdsi.store.base import InstanceRecord, PutResult, PutStatus
from xdsi.store.sqlfile import SqlFileStore

log = logging.getLogger(__name__)

Listener = Callable[[InstanceRecord], None]

MAX_REMEMBERED_REFUSALS = 10_000


class InstanceCache:
    """LRU cache of Part 10 instances under ``directory``, at most ``max_bytes`` in all.

    Thread-safe: C-STORE handlers (one thread per association) put while responses read.
    """

    def __init__(self, directory: Path, max_bytes: int, pin_seconds: float) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.pin_seconds = pin_seconds
        self._store = SqlFileStore(self.directory)
        self._lock = threading.Lock()
        self._lru: OrderedDict[str, int] = OrderedDict()
        """SOP Instance UID → size, least recently used first."""
        self._total = 0
        self._reserved = 0
        self._pins: dict[str, tuple[int, float]] = {}
        """SOP Instance UID → (pin count, expiry on ``time.monotonic``)."""
        self._refused: dict[str, str] = {}
        """Why arrivals were refused (cache full), until the fetch reads it."""
        self.listeners: list[Listener] = []
        """Called with the record of every instance put (from the putting thread)."""
        for record in self._store.iter_records():  # index order ≈ arrival order
            self._lru[record.sop_instance_uid] = record.size
            self._total += record.size
        with self._lock:
            self._evict_until(0)

    # --- reads ----------------------------------------------------------------------------------

    def get(self, sop_instance_uid: str, *, pin: bool = False) -> InstanceRecord | None:
        """The cached record (marked as recently used, and pinned if asked), or ``None``."""
        record = self._store.get(sop_instance_uid)
        if record is not None:
            with self._lock:
                if sop_instance_uid in self._lru:
                    self._lru.move_to_end(sop_instance_uid)
                if pin:
                    self._pin(sop_instance_uid)
        return record

    def get_many(
        self, sop_instance_uids: Sequence[str], *, pin: bool = False
    ) -> dict[str, InstanceRecord]:
        """Cached records among ``sop_instance_uids`` (one index query), as :meth:`get`."""
        found = self._store.get_many(sop_instance_uids)
        with self._lock:
            for uid in found:
                if uid in self._lru:
                    self._lru.move_to_end(uid)
                if pin:
                    self._pin(uid)
        return found

    @contextlib.contextmanager
    def open(self, record: InstanceRecord) -> Iterator[BinaryIO]:
        """Open a cached file; releases one pin of the instance when closed."""
        try:
            with self._store.open(record) as fh:
                yield fh
        finally:
            self.unpin(record.sop_instance_uid)

    def iter_bytes(self, record: InstanceRecord, chunk_size: int) -> Iterator[bytes]:
        """Chunks of a cached file; releases one pin of the instance when done."""
        try:
            yield from self._store.iter_bytes(record, chunk_size)
        finally:
            self.unpin(record.sop_instance_uid)

    @property
    def total_bytes(self) -> int:
        with self._lock:
            return self._total

    def refusal(self, sop_instance_uid: str) -> str | None:
        """Why an arrival of this instance was refused (and forget it), or ``None``."""
        with self._lock:
            return self._refused.pop(sop_instance_uid, None)

    # --- pins -----------------------------------------------------------------------------------

    def _pin(self, uid: str) -> None:
        count, _expiry = self._pins.get(uid, (0, 0.0))
        self._pins[uid] = (count + 1, time.monotonic() + self.pin_seconds)

    def pin(self, sop_instance_uid: str) -> None:
        """Keep the instance from eviction until :meth:`unpin` or ``pin_seconds`` from now."""
        with self._lock:
            self._pin(sop_instance_uid)

    def unpin(self, sop_instance_uid: str) -> None:
        with self._lock:
            count, expiry = self._pins.get(sop_instance_uid, (0, 0.0))
            if count <= 1:
                self._pins.pop(sop_instance_uid, None)
            else:
                self._pins[sop_instance_uid] = (count - 1, expiry)

    def _pinned(self, uid: str, now: float) -> bool:
        pin = self._pins.get(uid)
        if pin is None:
            return False
        if pin[1] <= now:
            del self._pins[uid]
            return False
        return True

    # --- writes ---------------------------------------------------------------------------------

    def put(self, source: BinaryIO | Path) -> PutResult:
        """Store one arrived instance (the C-STORE handler's ``Store.put``), evicting as needed.

        Raises ``OSError(ENOSPC)`` when it does not fit even after evicting every unpinned
        instance; the handler turns that into C-STORE status ``0xA700``.
        """
        size = _size_of(source)
        with self._lock:
            fits = self._evict_until(size)
            if fits:
                self._reserved += size
            else:
                free = max(self.max_bytes - self._total - self._reserved, 0)
        if not fits:
            reason = (
                f"the gateway cache is full: the instance needs {size} bytes, {free} of "
                f"{self.max_bytes} are free and the rest is held by responses in progress"
            )
            uid = _sop_instance_uid_of(source)
            if uid:
                with self._lock:
                    if len(self._refused) >= MAX_REMEMBERED_REFUSALS:
                        self._refused.clear()  # reasons nobody waited for (C-MOVE extras)
                    self._refused[uid] = reason
            raise _CacheFull(reason)
        try:
            result = self._store.put(source)
        finally:
            with self._lock:
                self._reserved -= size
        record = result.record
        with self._lock:
            if result.status is PutStatus.STORED or record.sop_instance_uid not in self._lru:
                self._total += record.size
            self._lru[record.sop_instance_uid] = record.size
            self._lru.move_to_end(record.sop_instance_uid)
            self._evict_until(0)
        for listener in self.listeners:
            listener(record)
        return result

    def _evict_until(self, needed: int) -> bool:
        """Evict unpinned LRU instances until ``needed`` more bytes fit; False if they cannot.

        Called with the lock held.
        """
        if needed > self.max_bytes:
            return False
        now = time.monotonic()
        for uid in list(self._lru):
            if self._total + self._reserved + needed <= self.max_bytes:
                break
            if self._pinned(uid, now):
                continue
            self._evict(uid)
        return self._total + self._reserved + needed <= self.max_bytes

    def _evict(self, uid: str) -> None:
        size = self._lru.pop(uid)
        self._total -= size
        record = self._store.get(uid)
        self._store.forget(uid)
        if record is not None:
            with contextlib.suppress(FileNotFoundError):
                record.path.unlink()
        log.debug("gateway cache: evicted %s (%d bytes)", uid, size)

    def close(self) -> None:
        self._store.close()


class _CacheFull(OSError):
    def __init__(self, reason: str) -> None:
        super().__init__(errno.ENOSPC, reason)


def _sop_instance_uid_of(source: BinaryIO | Path) -> str:
    """SOP Instance UID of a refused arrival, read without its pixel data ("" if unreadable)."""
    try:
        if isinstance(source, Path):
            ds = dcmread(source, stop_before_pixels=True, specific_tags=["SOPInstanceUID"])
        else:
            position = source.tell()
            ds = dcmread(source, stop_before_pixels=True, specific_tags=["SOPInstanceUID"])
            source.seek(position)
    except Exception:  # pydicom raises many types; an unreadable arrival has no waiter anyway
        return ""
    return str(ds.get("SOPInstanceUID", ""))


def _size_of(source: BinaryIO | Path) -> int:
    if isinstance(source, Path):
        return source.stat().st_size
    if isinstance(source, io.BytesIO):
        return source.getbuffer().nbytes
    position = source.tell()
    end = source.seek(0, io.SEEK_END)
    source.seek(position)
    return end - position


__all__ = ["InstanceCache"]
