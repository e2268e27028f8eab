"""Bounded on-disk cache of the instances the gateway fetched from the PACS.

The PACS keeps every instance, so the cache needs no durability, only never to serve a torn or
wrong file: each arrival is written under a temporary name and renamed into place when whole
(no ``fsync``), its index row is written later in batches, and at start-up only what is provably
the file written for its row is kept (:mod:`~xdsi.store.gateway.cacheindex`).  A file is named
by its SOP Instance UID (validated first), so no hash of the content is computed; the record's
``sha256`` field carries a token unique to each fetch instead (it keys caches of derived data).
A SOP Instance UID already cached is kept as it is (``PutStatus.DUPLICATE``).

The records live in memory (the LRU order), so lookups do not touch the index.  The total size
stays under a limit by evicting the least recently used instances.  Instances handed to a
response in progress are *pinned* (until read, or for at most ``pin_seconds``) and never
evicted meanwhile.  An arrival that does not fit even after evicting every unpinned instance is
refused with ``ENOSPC``: the C-STORE handler answers ``0xA700`` (out of resources) and the
instance is reported as :class:`~xdsi.errors.OutOfResources`.
"""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import os
import secrets
import shutil
import sqlite3
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, Final

from pydicom import dcmread

from xdsi.errors import StoreError
from xdsi.store import files
from xdsi.store.base import InstanceRecord, PutResult, PutStatus
from xdsi.store.gateway.cacheindex import RECORD_COLUMNS, CacheIndex, Op, Row, file_name
from xdsi.store.header import part10_bytes, read_header

log = logging.getLogger(__name__)

Listener = Callable[[InstanceRecord], None]

MAX_REMEMBERED_REFUSALS: Final = 10_000
FLUSH_EVERY: Final = 200
"""Index changes written in one transaction at most (a flush also follows every retrieval)."""
FLUSH_SECONDS: Final = 2.0
"""Index changes wait at most this long for the next arrival to write them."""
COPY_CHUNK: Final = 1 << 20


class InstanceCache:
    """LRU cache of Part 10 instances under ``directory``, at most ``max_bytes`` in all.

    Thread-safe: C-STORE handlers (one thread per association) put while responses read.
    One process at a time may use a directory (:class:`~xdsi.errors.StoreError` otherwise).
    """

    def __init__(self, directory: Path, max_bytes: int, pin_seconds: float) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.pin_seconds = pin_seconds
        self._index = CacheIndex(self.directory)
        self._lock = threading.Lock()
        self._index_lock = threading.Lock()
        self._records: OrderedDict[str, InstanceRecord] = OrderedDict()
        """SOP Instance UID → record, least recently used first."""
        self._total = 0
        self._reserved = 0
        self._pending: list[Op] = []
        """Index changes not written yet, in order."""
        self._flushed = time.monotonic()
        self._closed = False
        self._pins: dict[str, tuple[int, float]] = {}
        """SOP Instance UID → (pin count, expiry on ``time.monotonic``)."""
        self._refused: dict[str, str] = {}
        """Why arrivals were refused (cache full), until the fetch reads it."""
        self.listeners: list[Listener] = []
        """Called with the record of every instance put (from the putting thread)."""
        for row in self._index.load():  # oldest first ≈ least recently used first
            self._records[row.record.sop_instance_uid] = row.record
            self._total += row.record.size
        with self._lock:
            self._evict_until(0)
        self.flush()

    # --- reads ----------------------------------------------------------------------------------

    def get(self, sop_instance_uid: str, *, pin: bool = False) -> InstanceRecord | None:
        """The cached record (marked as recently used, and pinned if asked), or ``None``."""
        with self._lock:
            record = self._records.get(sop_instance_uid)
            if record is not None:
                self._records.move_to_end(sop_instance_uid)
                if pin:
                    self._pin(sop_instance_uid)
        return record

    def get_many(
        self, sop_instance_uids: Sequence[str], *, pin: bool = False
    ) -> dict[str, InstanceRecord]:
        """Cached records among ``sop_instance_uids``, as :meth:`get`."""
        found: dict[str, InstanceRecord] = {}
        with self._lock:
            for uid in sop_instance_uids:
                record = self._records.get(uid)
                if record is not None:
                    found[uid] = record
                    self._records.move_to_end(uid)
                    if pin:
                        self._pin(uid)
        return found

    @contextlib.contextmanager
    def open(self, record: InstanceRecord) -> Iterator[BinaryIO]:
        """Open a cached file; releases one pin of the instance when closed."""
        try:
            try:
                fh = record.path.open("rb")
            except FileNotFoundError:
                raise StoreError(f"cached file of {record.sop_instance_uid} is missing") from None
            with fh:
                yield fh
        finally:
            self.unpin(record.sop_instance_uid)

    def iter_bytes(self, record: InstanceRecord, chunk_size: int) -> Iterator[bytes]:
        """Chunks of a cached file; releases one pin of the instance when done.

        :class:`StoreError` if the file is not ``record.size`` long, before the first chunk or
        while reading (:func:`~xdsi.store.files.exact_chunks`)."""
        with self.open(record) as fh:
            name = f"cached file of {record.sop_instance_uid}"
            yield from files.exact_chunks(fh, record.size, name, chunk_size)

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

    def renew_pin(self, sop_instance_uid: str) -> None:
        """Hold the instance's pin for another ``pin_seconds`` (one pin if it has none left)."""
        with self._lock:
            count, _expiry = self._pins.get(sop_instance_uid, (0, 0.0))
            self._pins[sop_instance_uid] = (max(count, 1), time.monotonic() + self.pin_seconds)

    def unpin(self, sop_instance_uid: str) -> None:
        with self._lock:
            count, expiry = self._pins.get(sop_instance_uid, (0, 0.0))
            if count <= 1:
                self._pins.pop(sop_instance_uid, None)
            else:
                self._pins[sop_instance_uid] = (count - 1, expiry)

    def pinned(self) -> set[str]:
        """SOP Instance UIDs pinned now (held for a response in progress)."""
        with self._lock:
            now = time.monotonic()
            return {uid for uid, (_count, expiry) in self._pins.items() if expiry > now}

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

        Raises :class:`~xdsi.errors.NotDicom`, :class:`~xdsi.errors.CorruptDicom` or
        :class:`~xdsi.errors.InvalidUID` for input that is not a whole instance, and
        ``OSError(ENOSPC)`` when it does not fit even after evicting every unpinned instance;
        the handler turns those into C-STORE statuses ``0xC000`` and ``0xA700``.
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
            temporary, row = self._write(source)
        finally:
            with self._lock:
                self._reserved -= size
        result = self._adopt(temporary, row)
        for listener in self.listeners:
            listener(result.record)
        return result

    def _write(self, source: BinaryIO | Path) -> tuple[Path, Row]:
        """Copy ``source`` under ``incoming/`` and read its header: the file and its row."""
        fd, name = tempfile.mkstemp(dir=self._index.incoming, suffix=".part")
        temporary = Path(name)
        try:
            with os.fdopen(fd, "wb") as fh:
                if isinstance(source, io.BytesIO):
                    fh.write(source.getbuffer()[source.tell() :])
                elif isinstance(source, Path):
                    with source.open("rb") as src:
                        shutil.copyfileobj(src, fh, COPY_CHUNK)
                else:
                    shutil.copyfileobj(source, fh, COPY_CHUNK)
            header, raw_dataset = read_header(temporary, temporary.stat().st_size)
            if raw_dataset is not None:
                temporary.write_bytes(part10_bytes(raw_dataset, header))
            st = temporary.stat()
        except BaseException:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise
        shared = {c: getattr(header, c) for c in RECORD_COLUMNS if c not in ("size", "sha256")}
        path = self._index.instances / file_name(header.sop_instance_uid)
        token = secrets.token_hex(16)
        record = InstanceRecord(**shared, size=st.st_size, sha256=token, path=path)
        row = Row(record, st.st_ino, st.st_mtime_ns)
        return temporary, row

    def _adopt(self, temporary: Path, row: Row) -> PutResult:
        """Rename a written arrival into place (or drop it if its UID is cached already)."""
        record = row.record
        uid = record.sop_instance_uid
        with self._lock:
            cached = self._records.get(uid)
            if cached is not None:
                self._records.move_to_end(uid)
            else:
                os.replace(temporary, record.path)
                self._records[uid] = record
                self._total += record.size
                self._pending.append(row)
                self._evict_until(0)
            due = len(self._pending) >= FLUSH_EVERY or (
                time.monotonic() - self._flushed >= FLUSH_SECONDS
            )
        if cached is not None:
            with contextlib.suppress(OSError):
                temporary.unlink()
        if due:
            self.flush()
        if cached is not None:
            return PutResult(PutStatus.DUPLICATE, cached, "already in the gateway cache")
        return PutResult(PutStatus.STORED, record)

    def flush(self) -> None:
        """Write the pending index changes (one transaction; not synced, not needed)."""
        with self._index_lock:
            with self._lock:
                ops, self._pending = self._pending, []
                self._flushed = time.monotonic()
            if self._closed:
                return
            try:
                self._index.write(ops)
            except (sqlite3.Error, OSError) as exc:
                # Rows lost only make their files orphans, removed at the next start-up.
                log.warning("gateway cache: %d index change(s) not written: %s", len(ops), exc)

    def _evict_until(self, needed: int) -> bool:
        """Evict unpinned LRU instances until ``needed`` more bytes fit; False if they cannot.

        Called with the lock held.
        """
        if needed > self.max_bytes:
            return False
        now = time.monotonic()
        for uid in list(self._records):
            if self._total + self._reserved + needed <= self.max_bytes:
                break
            if self._pinned(uid, now):
                continue
            self._evict(uid)
        return self._total + self._reserved + needed <= self.max_bytes

    def _evict(self, uid: str) -> None:
        record = self._records.pop(uid)
        self._total -= record.size
        self._pending.append(uid)
        with contextlib.suppress(FileNotFoundError):
            record.path.unlink()
        log.debug("gateway cache: evicted %s (%d bytes)", uid, record.size)

    def close(self) -> None:
        """Write the index, sync and record a clean end (a restart then keeps the cache)."""
        if self._closed:
            return
        self.flush()
        with self._index_lock:
            self._closed = True
            self._index.close(clean=True)


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
