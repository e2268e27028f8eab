"""The gateway cache's index and its trust rules after a restart (the layout of its directory).

The cache (:mod:`~xdsi.store.gateway.cache`) holds copies of what the PACS holds, so it needs no
durability: losing an instance costs one more retrieval.  What it must never do is serve a torn
or wrong file.  It therefore writes without ``fsync`` and without a commit per instance, and
decides at start-up how far the files and the index left by the previous run can be trusted::

    <cache>/lock             flock of the process using the cache (one at a time)
    <cache>/state.json       how the previous run ended (written with fsync, rarely)
    <cache>/index.sqlite3    one row per cached instance (WAL, ``synchronous=OFF``)
    <cache>/incoming/        instances being written (removed at start-up)
    <cache>/instances/<SOP Instance UID>.dcm

Each instance is written under ``incoming/`` and renamed into ``instances/`` only when complete
(POSIX ``rename(2)`` is atomic), so a file under its final name is always whole *as long as the
kernel's page cache survived*; its row (size, inode and mtime of the file as written) is written
later, in batches.  At start-up:

* the previous run closed cleanly (index written, ``syncfs(2)`` done, ``state.json`` says so), or
  it was killed in the same boot (``/proc/sys/kernel/random/boot_id`` unchanged: the page cache,
  and so every renamed file, survived) → rows are kept whose file exists with the recorded size,
  inode number and mtime; other rows, files without a row and ``incoming/`` are removed.  The
  inode check catches a file replaced after its row was written (evicted and fetched again);
* anything else (the machine went down before the data reached the disk: a renamed file may
  then be empty or hold zeros; no or unreadable state; an index SQLite cannot open) → the cache
  is emptied.  The PACS still holds every instance.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import logging
import os
import shutil
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Final

from xdsi.errors import StoreError
from xdsi.store.base import InstanceRecord
from xdsi.store.files import fsync_dir

log = logging.getLogger(__name__)

STATE_VERSION: Final = 1
INSTANCES_DIR: Final = "instances"
INCOMING_DIR: Final = "incoming"
INDEX_FILE: Final = "index.sqlite3"
STATE_FILE: Final = "state.json"
LOCK_FILE: Final = "lock"
BOOT_ID: Final = Path("/proc/sys/kernel/random/boot_id")
OLD_LAYOUT: Final = (
    "files",
    "tmp",
    "quarantine",
    "index.sqlite",
    "index.sqlite-wal",
    "index.sqlite-shm",
)
"""What a cache written by an earlier xdsi (a full crash-safe store) left; removed at start."""


RECORD_COLUMNS: Final = tuple(
    f.name for f in fields(InstanceRecord) if f.name not in ("path", "available")
)
"""The :class:`~xdsi.store.base.InstanceRecord` fields an index row keeps (the path follows from
the UID).  ``sha256`` holds a token unique to each fetch: a key for caches of derived data."""


@dataclass(frozen=True)
class Row:
    """One cached instance as the index keeps it: its record and the identity of its file."""

    record: InstanceRecord
    inode: int
    mtime_ns: int

    def values(self) -> tuple[object, ...]:
        return (*(getattr(self.record, c) for c in RECORD_COLUMNS), self.inode, self.mtime_ns)


_COLUMNS: Final = (*RECORD_COLUMNS, "inode", "mtime_ns")
_LIST: Final = ", ".join(_COLUMNS)
# Built from the field names above only (no outside input reaches these statements).
_CREATE: Final = (
    f"CREATE TABLE IF NOT EXISTS instance (seq INTEGER PRIMARY KEY, {_LIST}, "
    "UNIQUE (sop_instance_uid))"
)
_SELECT: Final = f"SELECT {_LIST} FROM instance ORDER BY seq"  # noqa: S608
_PLACES: Final = ", ".join("?" for _ in _COLUMNS)
_INSERT: Final = f"INSERT OR REPLACE INTO instance ({_LIST}) VALUES ({_PLACES})"  # noqa: S608


def file_name(sop_instance_uid: str) -> str:
    """The name of an instance's file: its UID (validated before: digits and dots only)."""
    if not sop_instance_uid or sop_instance_uid.startswith(".") or not all(
        c.isdigit() or c == "." for c in sop_instance_uid
    ):
        raise ValueError(f"not a UID, refused as a file name: {sop_instance_uid!r}")
    return f"{sop_instance_uid}.dcm"


def boot_id() -> str:
    """This boot's identifier (Linux), empty where there is none (then nothing is trusted)."""
    try:
        return BOOT_ID.read_text().strip()
    except OSError:
        return ""


Op = Row | str
"""A pending index change: a row to write, or the SOP Instance UID of a row to drop."""


class CacheIndex:
    """The directory of the cache, locked for this process, and its SQLite index."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.instances = directory / INSTANCES_DIR
        self.incoming = directory / INCOMING_DIR
        directory.mkdir(parents=True, exist_ok=True)
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
        self._lock_fd = os.open(directory / LOCK_FILE, flags, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock_fd)
            raise StoreError(f"gateway cache {directory} is in use by another process") from None
        try:
            trusted = self._trusted()
            if not trusted:
                self._empty()
            self.instances.mkdir(exist_ok=True)
            shutil.rmtree(self.incoming, ignore_errors=True)
            self.incoming.mkdir()
            self._db = self._connect()
            self._write_state(clean=False)
        except BaseException:
            os.close(self._lock_fd)
            raise

    # --- start-up -------------------------------------------------------------------------------

    def _trusted(self) -> bool:
        """True if the previous run's files and rows may be kept (see the module docstring)."""
        try:
            state = json.loads((self.directory / STATE_FILE).read_text())
        except (OSError, ValueError):
            return False
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            return False
        if state.get("clean") is True:
            return True
        now = boot_id()
        return bool(now) and state.get("boot_id") == now

    def _empty(self) -> None:
        removed = False
        ours = (INSTANCES_DIR, INDEX_FILE, f"{INDEX_FILE}-wal", f"{INDEX_FILE}-shm")
        for name in (*ours, *OLD_LAYOUT):
            path = self.directory / name
            if path.is_dir():
                shutil.rmtree(path)
                removed = True
            elif path.exists():
                path.unlink()
                removed = True
        if removed:
            log.warning(
                "gateway cache %s: emptied (the previous run did not end cleanly in this boot, "
                "or an earlier xdsi wrote it)",
                self.directory,
            )

    def _connect(self) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(
                self.directory / INDEX_FILE, check_same_thread=False, isolation_level=None
            )
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=OFF")
            db.execute(_CREATE)
            db.execute("SELECT count(*) FROM instance").fetchone()
        except sqlite3.DatabaseError as exc:
            log.warning("gateway cache %s: unreadable index (%s), emptied", self.directory, exc)
            self._empty()
            self.instances.mkdir(exist_ok=True)
            return self._connect()
        return db

    def _write_state(self, *, clean: bool) -> None:
        state = {"version": STATE_VERSION, "clean": clean, "boot_id": boot_id()}
        path = self.directory / STATE_FILE
        temporary = path.with_suffix(".tmp")
        with temporary.open("w") as fh:
            json.dump(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temporary, path)
        fsync_dir(self.directory)

    def load(self) -> Iterator[Row]:
        """The rows whose file is the one written for them, oldest first; drops the others and
        removes files no row names."""
        stale: list[str] = []
        named: set[str] = set()
        for values in self._db.execute(_SELECT):
            *kept, inode, mtime_ns = values
            known = dict(zip(RECORD_COLUMNS, kept, strict=True))
            name = file_name(known["sop_instance_uid"])
            record = InstanceRecord(**known, path=self.instances / name)
            try:
                st = os.stat(record.path)
            except OSError:
                st = None
            if st is None or (st.st_size, st.st_ino, st.st_mtime_ns) != (
                record.size,
                inode,
                mtime_ns,
            ):
                stale.append(record.sop_instance_uid)
                continue
            named.add(name)
            yield Row(record, inode, mtime_ns)
        if stale:
            log.warning("gateway cache: %d index row(s) without their file, dropped", len(stale))
            self.write(stale)
        for entry in os.scandir(self.instances):
            if entry.name not in named:
                if uid_named(entry.name) not in stale:
                    log.info("gateway cache: removing %s (no index row)", entry.name)
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)

    # --- writes ---------------------------------------------------------------------------------

    def write(self, ops: Sequence[Op]) -> None:
        """Apply ``ops`` in order, in one transaction (not synced: see the module docstring)."""
        if not ops:
            return
        with self._db:
            self._db.execute("BEGIN")
            for op in ops:
                if isinstance(op, Row):
                    self._db.execute(_INSERT, op.values())
                else:
                    self._db.execute("DELETE FROM instance WHERE sop_instance_uid = ?", (op,))

    def close(self, *, clean: bool) -> None:
        """Close the index; with ``clean``, sync everything and record a clean end first."""
        try:
            self._db.close()
            if clean:
                _sync_filesystem(self.directory)  # what was written without fsync, once
                self._write_state(clean=True)
        finally:
            os.close(self._lock_fd)


def _sync_filesystem(directory: Path) -> None:
    """``syncfs(2)`` of the file system holding ``directory`` (Linux; ``sync(2)`` elsewhere)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        syncfs = libc.syncfs
    except (OSError, AttributeError):
        os.sync()
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        if syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


def uid_named(name: str) -> str:
    """The SOP Instance UID of an instance file name (inverse of :func:`file_name`)."""
    return name.removesuffix(".dcm")


__all__ = ["RECORD_COLUMNS", "CacheIndex", "Op", "Row", "boot_id", "file_name"]
