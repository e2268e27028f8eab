"""Crash-safe file tree of the SQL+file store: temp files, durable renames, layout, recovery.

Layout under ``data_dir``::

    files/<study>/<series>/<sop>.<sha8>.dcm   stored Part 10 files (PS3.10 §7)
    tmp/<token>.part                           a write in progress (bytes still arriving)
    tmp/<token>~<study>~<series>~<sop>.<sha8>.dcm.intent
                                               a write about to be committed (see below)
    quarantine/                                files ``xdsi check --repair`` could not re-index

The life of one write (:class:`TempFile`):

1. the bytes are copied into ``tmp/<token>.part`` while they are hashed, then ``fsync``-ed; the
   writer holds an exclusive ``flock`` on the file for as long as the write lasts;
2. once parsed and validated, the file is renamed, still inside ``tmp/``, to its *intent* name,
   which records where it is going (UIDs are validated before they get near a path);
3. it is hard-linked to its final name under ``files/`` and the directory is ``fsync``-ed;
4. the index row is committed (by the caller), then the intent name is unlinked.

A batch (:meth:`xdsi.store.sqlfile.SqlFileStore.commit_staged`) runs steps 1-2 per file, links
every file of the batch (step 3 without its ``fsync``), fsyncs each directory it linked into
once, and commits all the rows in one transaction: each row is still committed only after its
file's data and link are durable.

A process killed at any point leaves at most a ``tmp/`` entry that nobody holds a lock on.
:func:`stale_temp_files` finds those; the store rolls each back when it opens (the final link is
removed unless the index refers to it), so a kill never leaves an orphan in ``files/``.  The
step-2 rename is not fsynced (a directory sync per put); a crash of the machine can keep the
step-3 link and lose that rename, and the store then finds the final name again from the
``.part`` file's own header and hash (``xdsi.store.sqlfile._lost_intent``).  The
hash suffix of the final name makes replacement safe: the new copy gets a new name, the row is
switched, then the old file is unlinked.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import hashlib
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

from xdsi.errors import StoreError

FILES_DIR: Final = "files"
TMP_DIR: Final = "tmp"
QUARANTINE_DIR: Final = "quarantine"
PART_SUFFIX: Final = ".part"
INTENT_SUFFIX: Final = ".intent"
DICOM_SUFFIX: Final = ".dcm"
HASH_PREFIX_LENGTH: Final = 8
"""Hex digits of the SHA-256 in a file name: enough to tell two versions of an instance apart."""
_SEP: Final = "~"  # cannot occur in a UID (PS3.5 §9.1), so it splits an intent name unambiguously
COPY_CHUNK: Final = 1 << 20


def relative_path(study_uid: str, series_uid: str, sop_uid: str, sha256: str) -> str:
    """Relative final path (POSIX form, as stored in the index) of one instance.

    The UIDs must have been validated with :func:`xdsi.uids.require_uid`: they become path
    components here.
    """
    name = f"{sop_uid}.{sha256[:HASH_PREFIX_LENGTH]}{DICOM_SUFFIX}"
    return f"{study_uid}/{series_uid}/{name}"


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (a rename, link or unlink in it) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs_durable(path: Path, stop_at: Path) -> None:
    """``mkdir -p`` that fsyncs the parent of each directory it creates (below ``stop_at``)."""
    missing: list[Path] = []
    current = path
    while current != stop_at and not current.is_dir():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):  # a concurrent writer made it first
            directory.mkdir()
        fsync_dir(directory.parent)


@dataclass
class TempFile:
    """One write in progress in ``tmp/``, locked by this process until :meth:`close`.

    Create it with :func:`receive`.  ``path`` follows the file through its renames.
    """

    path: Path
    fd: int
    size: int
    sha256: str

    def mark_intent(self, rel_path: str) -> None:
        """Rename to the intent name recording ``rel_path`` (step 2 of the module docstring)."""
        token = self.path.name.split(_SEP, 1)[0].removesuffix(PART_SUFFIX)
        intent = self.path.with_name(token + _SEP + rel_path.replace("/", _SEP) + INTENT_SUFFIX)
        os.rename(self.path, intent)
        self.path = intent

    def overwrite(self, data: bytes) -> None:
        """Replace the content (e.g. by a rewritten Part 10 file), in place and still locked."""
        os.ftruncate(self.fd, 0)
        written = 0
        while written < len(data):
            written += os.pwrite(self.fd, data[written:], written)
        os.fdatasync(self.fd)
        self.size, self.sha256 = len(data), hashlib.sha256(data).hexdigest()

    def link_to(self, final: Path, files_root: Path, *, durable: bool = True) -> bool:
        """Hard-link this file to ``final`` (step 3).  False if ``final`` already exists.

        ``durable=False`` leaves the ``fsync`` of ``final.parent`` to the caller, who links a
        batch and then syncs each directory once (before committing any of their rows).
        """
        make_dirs_durable(final.parent, files_root)
        try:
            os.link(self.path, final)
        except FileExistsError:
            return False
        if durable:
            fsync_dir(final.parent)
        return True

    def close(self, *, keep_name: bool = False) -> None:
        """Remove the ``tmp/`` name and release the lock (the final link, if any, stays).

        ``keep_name``: release the lock only, leaving the ``tmp/`` entry for the recovery at the
        next open (for a write whose outcome could not be settled, e.g. the index went away).
        Closing again does nothing.
        """
        if self.fd < 0:
            return
        if not keep_name:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
        os.close(self.fd)
        self.fd = -1


def _hash_stream(stream: BinaryIO) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    while chunk := stream.read(COPY_CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


def _create_locked(tmp_dir: Path) -> tuple[Path, int]:
    """Create and lock a fresh ``tmp/<token>.part``.

    A cleaner could see the file between ``open`` and ``flock`` and delete it as stale; the link
    count tells us, and we simply take another name.
    """
    while True:
        path = tmp_dir / (secrets.token_hex(8) + PART_SUFFIX)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        if os.fstat(fd).st_nlink > 0:
            return path, fd
        os.close(fd)


def receive(source: BinaryIO | Path, tmp_dir: Path) -> TempFile:
    """Copy ``source`` into a new locked temp file, hashing as it goes, then fsync it (step 1)."""
    path, fd = _create_locked(tmp_dir)
    try:
        digest = hashlib.sha256()
        size = 0
        with contextlib.ExitStack() as stack:
            stream = stack.enter_context(source.open("rb")) if isinstance(source, Path) else source
            # One reusable buffer: no per-chunk allocation on the hot path of an import.
            buffer = bytearray(COPY_CHUNK)
            view = memoryview(buffer)
            readinto = getattr(stream, "readinto", None) or functools.partial(_read_into, stream)
            while True:
                n = readinto(view)
                if not n:
                    break
                digest.update(view[:n])
                written = 0
                while written < n:
                    written += os.write(fd, view[written:n])
                size += n
        # fdatasync: the data and the size that reaches it, without the inode times.
        os.fdatasync(fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(fd)
        raise
    return TempFile(path, fd, size, digest.hexdigest())


def _read_into(stream: BinaryIO, view: memoryview) -> int:
    data = stream.read(len(view))
    view[: len(data)] = data
    return len(data)


def is_locked(path: Path) -> bool:
    """True if a live process holds the ``flock`` of ``path`` (a write in progress)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return True
        raise
    finally:
        os.close(fd)  # closing releases a lock we may have taken
    return False


@dataclass(frozen=True)
class StaleTemp:
    """A ``tmp/`` entry left by a write whose process died."""

    path: Path
    intended: str | None
    """Relative final path recorded by an intent name, ``None`` for ``.part`` and unknown files."""


def parse_intent(name: str) -> str | None:
    """The relative final path recorded in an intent file name, if ``name`` is one."""
    if not name.endswith(INTENT_SUFFIX) or _SEP not in name:
        return None
    parts = name.removesuffix(INTENT_SUFFIX).split(_SEP)
    if len(parts) != 4:
        return None
    return "/".join(parts[1:])


def stale_temp_files(tmp_dir: Path) -> Iterator[StaleTemp]:
    """Entries of ``tmp/`` that no live writer holds (any name: everything there is transient)."""
    if not tmp_dir.is_dir():
        return
    for entry in sorted(tmp_dir.iterdir()):
        if entry.is_file() and not is_locked(entry):
            yield StaleTemp(entry, parse_intent(entry.name))


def stored_files(files_dir: Path) -> Iterator[str]:
    """Relative POSIX paths of every regular file under ``files/`` (for ``xdsi check``)."""
    for dirpath, _dirnames, filenames in os.walk(files_dir):
        base = Path(dirpath)
        for name in filenames:
            yield (base / name).relative_to(files_dir).as_posix()


def same_file(a: Path, b: Path) -> bool:
    """True if both names exist and are links to one inode."""
    try:
        return os.path.samefile(a, b)
    except FileNotFoundError:
        return False


def exact_chunks(fh: BinaryIO, size: int, name: str, chunk_size: int) -> Iterator[bytes]:
    """The ``size`` bytes of the open file ``fh`` in chunks of at most ``chunk_size``.

    :class:`StoreError` (naming the file as ``name``) before the first chunk if the file is not
    ``size`` bytes long, so that a damaged file is reported before any byte of it goes out, and
    while reading if it shrinks or grows meanwhile, so that a document is never sent short or
    with bytes of another version: a response's Content-Length is the indexed size.
    """
    actual = os.fstat(fh.fileno()).st_size
    if actual != size:
        raise StoreError(f"{name} has {actual} bytes, the index says {size}")
    remaining = size
    while remaining:
        chunk = fh.read(min(chunk_size, remaining))
        if not chunk:
            raise StoreError(f"{name} shrank while read")
        remaining -= len(chunk)
        yield chunk
    if fh.read(1):
        raise StoreError(f"{name} grew while read")


def sha256_of(path: Path) -> tuple[int, str]:
    """Size and hex SHA-256 of a file."""
    with path.open("rb") as fh:
        return _hash_stream(fh)
