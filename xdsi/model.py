"""Plain typed request/response objects shared by every layer (no spyne, no XML).

The SOAP layer converts wire messages into these and back; transactions work on them only
(design note 1).  The RAD-69 shapes follow IHE RAD TF-2 §4.69.4 and PS3.18 2017b §6.4.1;
the response status rule is ITI TF-2a §4.1.13 as applied by PS3.18 §6.4.1.2.1.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from xdsi import ns


class Severity(enum.Enum):
    """``rs:RegistryError/@severity``."""

    ERROR = ns.SEVERITY_ERROR
    WARNING = ns.SEVERITY_WARNING


class Status(enum.Enum):
    """``rs:RegistryResponse/@status``."""

    SUCCESS = ns.STATUS_SUCCESS
    PARTIAL_SUCCESS = ns.STATUS_PARTIAL_SUCCESS
    FAILURE = ns.STATUS_FAILURE


@dataclass(frozen=True)
class RegistryError:
    """One ``rs:RegistryError`` (ebRS 3.0 rs.xsd): code, context text, severity, location."""

    error_code: str
    code_context: str
    severity: Severity = Severity.ERROR
    location: str | None = None


@dataclass(frozen=True)
class DocumentRequest:
    """One ``ihe:DocumentRequest`` with the study/series it was listed under.

    Values are kept exactly as received (whitespace-stripped); validation is the transaction's job
    so that a bad value becomes a RegistryError for this document, not a fault for the message.
    """

    study_instance_uid: str
    series_instance_uid: str
    document_unique_id: str
    repository_unique_id: str | None = None
    home_community_id: str | None = None


@dataclass(frozen=True)
class RetrieveImagingDocumentSetRequest:
    """RAD-69 request (IHE RAD TF-2 §4.69.4.1; PS3.18 2017b §6.4.1.1)."""

    documents: tuple[DocumentRequest, ...]
    transfer_syntax_uids: tuple[str, ...]


ChunkSource = Callable[[], Iterator[bytes]]
"""A zero-argument callable that yields a document's bytes when the response is written.

Lazy on purpose: the MTOM writer calls it only when the document's part is due, so that files are
read (or transcoded) while the response streams and memory stays bounded.
"""


@dataclass(frozen=True)
class Payload:
    """Bytes of one returned document, produced lazily.

    ``size`` is known for documents served unchanged from the store and ``None`` for generated
    ones.  ``chunks`` may raise while iterating; the writer then aborts the connection (RAD-69
    issue: never a silently short document).
    """

    media_type: str
    chunks: ChunkSource
    size: int | None = None

    @classmethod
    def from_bytes(cls, data: bytes, media_type: str) -> Payload:
        return cls(media_type, lambda: iter((data,)), len(data))


@dataclass(frozen=True)
class RetrievedDocument:
    """A ``ihe:DocumentResponse``: the echo of the request plus the payload."""

    request: DocumentRequest
    payload: Payload
    transfer_syntax_uid: str | None = None


AnswerT = TypeVar("AnswerT")


@dataclass
class OutcomeOf(Generic[AnswerT]):
    """What a transaction produced: answered documents and RegistryErrors, in request order.

    Partial success is data, not control flow (design note 5): a transaction appends to ``errors``
    and carries on with the next document.  One shape for the three operations; each names its
    answer type (RAD-69 :class:`Outcome`, ``MetadataOutcome``, ``RenderedOutcome``).
    """

    documents: list[AnswerT] = field(default_factory=list)
    errors: list[RegistryError] = field(default_factory=list)

    @property
    def status(self) -> Status:
        return status_of(self.documents, self.errors)


@dataclass
class Outcome(OutcomeOf[RetrievedDocument]):
    """RAD-69's outcome: retrieved documents and RegistryErrors."""


def status_of(documents: Sequence[object], errors: Sequence[RegistryError]) -> Status:
    """The overall ``RegistryResponse/@status`` (PS3.18 2017b §6.4.1.2.1; ITI TF-3 Table 4.2.4.2-4).

    * no error-severity entry → Success (warnings alone do not lower the status; the NIST IDS
      simulator's reading of the open question in standards.md §7.5);
    * some documents returned and at least one error → PartialSuccess;
    * errors and no document → Failure.
    """
    has_error = any(e.severity is Severity.ERROR for e in errors)
    if not has_error:
        return Status.SUCCESS if documents or not errors else Status.FAILURE
    return Status.PARTIAL_SUCCESS if documents else Status.FAILURE
