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
from typing import Final

from xdsi.errors import CorruptDicom, InvalidUID, NotDicom, StoreError
from xdsi.store.base import PutStatus, Store

DICOMDIR_NAME: Final = "DICOMDIR"
DEFAULT_WORKERS: Final = 8
"""Concurrent puts of an import: enough to keep the disk busy while others hash and parse."""


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
        return FileOutcome(path, Outcome.SKIPPED, "DICOMDIR is a media directory (PS3.10 §8.6)")
    try:
        result = store.put(path)
    except NotDicom as exc:
        return FileOutcome(path, Outcome.NOT_DICOM, str(exc))
    except CorruptDicom as exc:
        return FileOutcome(path, Outcome.CORRUPT, str(exc))
    except InvalidUID as exc:
        return FileOutcome(path, Outcome.INVALID_UID, str(exc))
    except (StoreError, OSError) as exc:
        return FileOutcome(path, Outcome.ERROR, str(exc))
    uid = result.record.sop_instance_uid
    return FileOutcome(path, _BY_PUT_STATUS[result.status], result.detail, uid)


def import_files(
    store: Store,
    files: Iterable[Path],
    on_outcome: Callable[[FileOutcome], None] | None = None,
    summary: ImportSummary | None = None,
    workers: int = DEFAULT_WORKERS,
) -> ImportSummary:
    """Import ``files``; ``on_outcome`` sees each outcome, in the order of ``files``.

    ``workers`` threads put files concurrently: each put spends most of its time waiting for
    ``fsync``, which the others' hashing and parsing overlaps.  Every put is still crash-safe on
    its own (nothing is batched); at most ``2 * workers`` files are in flight.
    """
    summary = ImportSummary() if summary is None else summary

    def done(outcome: FileOutcome) -> None:
        summary.add(outcome)
        if on_outcome is not None:
            on_outcome(outcome)

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
