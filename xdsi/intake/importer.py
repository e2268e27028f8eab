"""Import DICOM files and folders into a store (the logic behind ``xdsi import``).

Every file is offered to :meth:`~xdsi.store.base.Store.put`, which stores it crash-safely or
refuses it; a refusal is an :class:`Outcome` of that file, never the end of the run.  DICOMDIR
files (PS3.10 §8.6: media directories, not instances) are skipped by name.
"""

from __future__ import annotations

import enum
import os
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Generic, TypeVar

from xdsi.errors import CorruptDicom, InvalidUID, NotDicom, StoreError
from xdsi.store.base import PutResult, PutStatus, StagingStore, Store

DICOMDIR_NAME: Final = "DICOMDIR"
DEFAULT_WORKERS: Final = 4
"""Files worked on at once: one hashing (no GIL) and one parsing while others wait for fsync.

More threads only fight over the GIL: on the 2-core project machine 8 were no faster than 2-4
and held more memory (docs/performance.md).
"""
DEFAULT_BATCH: Final = 32
"""Files committed together by a :class:`~xdsi.store.base.StagingStore` (one transaction)."""
S = TypeVar("S")


class Outcome(enum.Enum):
    """What happened to one file; the value is the word printed for it."""

    STORED = "stored"
    DUPLICATE = "duplicate"
    REPLACED = "replaced"
    SKIPPED = "skipped"
    NOT_DICOM = "not DICOM"
    CORRUPT = "corrupt"
    INVALID_UID = "invalid UID"
    ERROR = "error"

    @property
    def failed(self) -> bool:
        """True if the file was offered for import and did not reach the store."""
        return self in _FAILURES


_FAILURES: Final = frozenset(
    {Outcome.NOT_DICOM, Outcome.CORRUPT, Outcome.INVALID_UID, Outcome.ERROR}
)
_BY_PUT_STATUS: Final = {
    PutStatus.STORED: Outcome.STORED,
    PutStatus.DUPLICATE: Outcome.DUPLICATE,
    PutStatus.REPLACED: Outcome.REPLACED,
}


@dataclass(frozen=True)
class FileOutcome:
    """The outcome of one file, with the reason for refusals and the UID of what was stored."""

    path: Path
    outcome: Outcome
    detail: str = ""
    sop_instance_uid: str | None = None

    def line(self) -> str:
        """One line for humans: ``<outcome> <path>[: <detail>]``."""
        text = f"{self.outcome.value:<11} {self.path}"
        return f"{text}: {self.detail}" if self.detail else text


@dataclass
class ImportSummary:
    """Counts of outcomes over one import run."""

    counts: Counter[Outcome] = field(default_factory=Counter)

    def add(self, outcome: FileOutcome) -> None:
        self.counts[outcome.outcome] += 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def failed(self) -> int:
        return sum(n for outcome, n in self.counts.items() if outcome.failed)

    def line(self) -> str:
        parts = [f"{self.counts[o]} {o.value}" for o in Outcome if self.counts[o]]
        return f"{self.total} files: " + (", ".join(parts) if parts else "nothing to import")


def expand(paths: Iterable[Path]) -> tuple[list[Path], list[FileOutcome]]:
    """Files named by ``paths``, folders walked recursively (sorted, symlinks to dirs not followed).

    Paths that do not exist become :attr:`Outcome.ERROR` outcomes instead of stopping the run.
    """
    found: list[Path] = []
    missing: list[FileOutcome] = []
    for path in paths:
        if path.is_dir():
            found.extend(_walk(path))
        elif path.is_file():
            found.append(path)
        else:
            missing.append(FileOutcome(path, Outcome.ERROR, "no such file or directory"))
    return found, missing


def _walk(folder: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        base = Path(dirpath)
        for name in sorted(filenames):
            if (base / name).is_file():  # skips sockets, fifos and dangling links
                yield base / name


def import_file(store: Store, path: Path) -> FileOutcome:
    """Offer one file to ``store`` and say what happened; never raises for bad input."""
    if path.name.upper() == DICOMDIR_NAME:
        return _skipped(path)
    try:
        result = store.put(path)
    except _REFUSALS as exc:
        return _refused(path, exc)
    return _stored(path, result)


def _skipped(path: Path) -> FileOutcome:
    return FileOutcome(path, Outcome.SKIPPED, "DICOMDIR is a media directory (PS3.10 §8.6)")


def _refused(path: Path, exc: Exception) -> FileOutcome:
    """The outcome of a file that ``put`` (or a staged commit) refused with ``exc``."""
    for kind, outcome in _OUTCOME_OF_REFUSAL:
        if isinstance(exc, kind):
            return FileOutcome(path, outcome, str(exc))
    raise exc  # not a refusal of the file: a bug or a failing index, not an outcome


def _stored(path: Path, result: PutResult) -> FileOutcome:
    uid = result.record.sop_instance_uid
    return FileOutcome(path, _BY_PUT_STATUS[result.status], result.detail, uid)


_OUTCOME_OF_REFUSAL: Final[tuple[tuple[type[Exception], Outcome], ...]] = (
    (NotDicom, Outcome.NOT_DICOM),
    (CorruptDicom, Outcome.CORRUPT),
    (InvalidUID, Outcome.INVALID_UID),
    (StoreError, Outcome.ERROR),
    (OSError, Outcome.ERROR),
)
_REFUSALS: Final = tuple(kind for kind, _outcome in _OUTCOME_OF_REFUSAL)


def import_files(
    store: Store,
    files: Iterable[Path],
    on_outcome: Callable[[FileOutcome], None] | None = None,
    summary: ImportSummary | None = None,
    workers: int = DEFAULT_WORKERS,
    batch_size: int = DEFAULT_BATCH,
) -> ImportSummary:
    """Import ``files``; ``on_outcome`` sees each outcome, in the order of ``files``.

    ``workers`` threads work on files concurrently: each spends much of its time waiting for
    ``fsync`` or hashing (which releases the GIL), and the others overlap that.  A store that
    offers :class:`~xdsi.store.base.StagingStore` has its files staged by the threads and
    committed ``batch_size`` at a time (one directory ``fsync`` and one transaction per batch);
    every file is still crash-safe on its own, and an outcome is reported once its file is
    committed.  At most ``2 * workers`` files are in the threads' hands, plus one batch.
    """
    summary = ImportSummary() if summary is None else summary

    def done(outcome: FileOutcome) -> None:
        summary.add(outcome)
        if on_outcome is not None:
            on_outcome(outcome)

    if isinstance(store, StagingStore):
        _BatchImport(store, done, max(1, batch_size)).run(files, max(1, workers))
        return summary
    if workers <= 1:
        for path in files:
            done(import_file(store, path))
        return summary
    with ThreadPoolExecutor(workers, thread_name_prefix="xdsi-import") as pool:
        window: deque[Future[FileOutcome]] = deque()
        try:
            for path in files:
                window.append(pool.submit(import_file, store, path))
                if len(window) >= 2 * workers:
                    done(window.popleft().result())
            while window:
                done(window.popleft().result())
        except BaseException:
            # Ctrl-C: puts already running finish (each is atomic), queued ones never start.
            for future in window:
                future.cancel()
            raise
    return summary


class _BatchImport(Generic[S]):
    """Stage files in threads, commit them in batches, report outcomes in file order."""

    def __init__(
        self, store: StagingStore[S], done: Callable[[FileOutcome], None], batch_size: int
    ) -> None:
        self.store = store
        self.done = done
        self.batch_size = batch_size
        # Outcomes and staged puts in file order, waiting for the commit of their batch.
        self.pending: list[tuple[Path, FileOutcome | S]] = []
        self.staged = 0

    def stage(self, path: Path) -> FileOutcome | S:
        """In a worker thread: the staged put of ``path``, or the outcome of its refusal."""
        if path.name.upper() == DICOMDIR_NAME:
            return _skipped(path)
        try:
            return self.store.stage(path)
        except _REFUSALS as exc:
            return _refused(path, exc)

    def run(self, files: Iterable[Path], workers: int) -> None:
        with ThreadPoolExecutor(workers, thread_name_prefix="xdsi-import") as pool:
            window: deque[tuple[Path, Future[FileOutcome | S]]] = deque()
            try:
                for path in files:
                    window.append((path, pool.submit(self.stage, path)))
                    if len(window) >= 2 * workers:
                        self.add(*self.take(window))
                while window:
                    self.add(*self.take(window))
                self.flush()
            except BaseException:
                # Ctrl-C: nothing more is committed; what is staged or being staged is dropped
                # (never reported, never indexed), queued files never start.
                for _path, future in window:
                    future.cancel()
                for _path, future in window:
                    if not future.cancelled() and future.exception() is None:
                        self.discard(future.result())
                for _path, item in self.pending:
                    self.discard(item)
                raise

    @staticmethod
    def take(
        window: deque[tuple[Path, Future[FileOutcome | S]]],
    ) -> tuple[Path, FileOutcome | S]:
        path, future = window[0]
        item = future.result()
        window.popleft()
        return path, item

    def add(self, path: Path, item: FileOutcome | S) -> None:
        if not self.pending and isinstance(item, FileOutcome):
            self.done(item)  # nothing waits for a commit before it: report at once
            return
        self.pending.append((path, item))
        self.staged += not isinstance(item, FileOutcome)
        # Bounded both ways: a batch of staged puts, or refusals piling up behind a few.
        if self.staged >= self.batch_size or len(self.pending) >= 4 * self.batch_size:
            self.flush()

    def flush(self) -> None:
        """Commit the staged puts of the batch, then report every pending outcome in order."""
        pending, self.pending, self.staged = self.pending, [], 0
        batch = [item for _path, item in pending if not isinstance(item, FileOutcome)]
        # commit_staged finishes every staged put, even when it raises: nothing to discard.
        results = iter(self.store.commit_staged(batch) if batch else [])
        for path, item in pending:
            if isinstance(item, FileOutcome):
                self.done(item)
                continue
            result = next(results)
            if isinstance(result, Exception):
                self.done(_refused(path, result))
            else:
                self.done(_stored(path, result))

    def discard(self, item: FileOutcome | S) -> None:
        if not isinstance(item, FileOutcome):
            self.store.discard_staged(item)


def import_paths(
    store: Store,
    paths: Iterable[Path],
    on_outcome: Callable[[FileOutcome], None] | None = None,
    workers: int = DEFAULT_WORKERS,
) -> ImportSummary:
    """Import every file under ``paths`` (see :func:`expand`), missing paths counted as errors."""
    files, missing = expand(paths)
    summary = ImportSummary()
    for outcome in missing:
        summary.add(outcome)
        if on_outcome is not None:
            on_outcome(outcome)
    return import_files(store, files, on_outcome, summary, workers)
