"""The :class:`Store` protocol every backend implements (SQL index + file tree, PACS gateway).

Transactions depend on this protocol only (design note 3); ``tests/store/test_contract.py`` runs the
same tests against every backend.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, TypeVar, runtime_checkable

from xdsi.errors import XdsiError
from xdsi.model import DocumentRequest


@dataclass(frozen=True)
class InstanceRecord:
    """What retrieval needs to know of one stored SOP instance, without opening its file."""

    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    study_instance_uid: str
    series_instance_uid: str
    patient_id: str
    patient_name: str
    modality: str
    size: int
    """Size in bytes of the stored Part 10 file."""
    sha256: str
    """Hex SHA-256 of the stored Part 10 file; in gateway mode a hex token unique to each fetch
    into the cache instead (either way a key for caches of data derived from the file)."""
    path: Path
    """Absolute path of the stored file (for local stores; a cache path for the gateway)."""
    number_of_frames: int = 1
    series_number: int | None = None
    instance_number: int | None = None
    available: bool = True
    """False for a remote store's instance whose bytes are still on their way (gateway mode):
    ``size`` is 0, ``sha256`` empty and ``transfer_syntax_uid`` possibly empty until then, and
    :meth:`Store.get`, :meth:`Store.open` and :meth:`Store.iter_bytes` wait for it."""


class PutStatus(enum.Enum):
    """What happened to one offered instance."""

    STORED = "stored"
    """New SOP Instance UID, stored and indexed."""
    DUPLICATE = "duplicate"
    """SOP Instance UID already stored; kept the existing copy (policy ``keep``)."""
    REPLACED = "replaced"
    """SOP Instance UID already stored; replaced by the new copy (policy ``replace``)."""


@dataclass(frozen=True)
class PutResult:
    status: PutStatus
    record: InstanceRecord
    detail: str = ""


@runtime_checkable
class Store(Protocol):
    """A DICOM instance store as the transactions and intake see it."""

    def put(self, source: BinaryIO | Path) -> PutResult:
        """Store one DICOM Part 10 instance read from ``source`` (a path or a binary stream).

        Raises :class:`~xdsi.errors.NotDicom`, :class:`~xdsi.errors.CorruptDicom` or
        :class:`~xdsi.errors.InvalidUID` for refused input, :class:`~xdsi.errors.StoreError` for
        other refusals; nothing is left in the store in those cases.
        """
        ...

    def get(self, sop_instance_uid: str) -> InstanceRecord | None:
        """The record of one instance, or ``None`` if it is not stored."""
        ...

    def get_many(self, sop_instance_uids: Sequence[str]) -> dict[str, InstanceRecord]:
        """Records of the instances among ``sop_instance_uids`` that are stored (one query)."""
        ...

    def locate(self, documents: Sequence[DocumentRequest]) -> dict[str, InstanceRecord | XdsiError]:
        """Records of the requested instances this store can deliver, keyed by SOP Instance UID.

        A local store answers as :meth:`get_many` does.  A remote store (gateway mode) also uses
        the study and series of each request to find the instance, starts fetching it, and
        gives an :class:`~xdsi.errors.XdsiError` for an instance it cannot deliver (source
        unreachable, retrieval failed); an instance that is nowhere is simply absent.  Records of
        instances still on their way have ``available`` false.
        """
        ...

    def series(self, study_instance_uid: str, series_instance_uid: str) -> list[InstanceRecord]:
        """Instances of one series, ordered by instance number then SOP Instance UID."""
        ...

    def study(self, study_instance_uid: str) -> list[InstanceRecord]:
        """Instances of one study, ordered by series number, instance number, UID."""
        ...

    def open(self, record: InstanceRecord) -> AbstractContextManager[BinaryIO]:
        """Open the stored Part 10 file of ``record`` for reading."""
        ...

    def iter_bytes(self, record: InstanceRecord, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """Yield the stored file in chunks; raises if the file is shorter than ``record.size``."""
        ...

    def close(self) -> None:
        """Release connections and handles."""
        ...


S = TypeVar("S")


@runtime_checkable
class StagingStore(Protocol[S]):
    """A store whose puts can be split in two, so that many files commit together.

    :meth:`stage` does a put's work on the file (receive, make durable, parse, check) and runs
    concurrently; :meth:`commit_staged` indexes a batch of staged puts at once.  Each staged put
    is crash-safe on its own: a staged put is never visible, and a commit indexes a file only
    once the file is durable.  ``xdsi import`` uses this when the store offers it.
    """

    def stage(self, source: BinaryIO | Path) -> S:
        """Do a put up to its commit; raises what :meth:`Store.put` raises for refused input."""
        ...

    def commit_staged(self, staged: Sequence[S]) -> list[PutResult | Exception]:
        """Commit a batch: per staged put, in order, its result or what ``put`` would raise."""
        ...

    def discard_staged(self, staged: S) -> None:
        """Drop a staged put without committing it (nothing of it stays)."""
        ...
