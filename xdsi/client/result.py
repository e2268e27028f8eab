"""Typed results of a RAD-69 retrieve as the requester saw them (IHE RAD TF-2 §4.69.4.2)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from xdsi.model import RegistryError, Severity, Status


@dataclass(frozen=True)
class SavedDocument:
    """One ``ihe:DocumentResponse`` whose ``Document`` was written to ``path``.

    The identifiers are the echo of the request (PS3.18 2017b §6.4.1.2.1); ``size`` and
    ``sha256`` describe the bytes as written, which are exactly the bytes of the MIME part.
    ``sha256`` is ``None`` unless a digest was asked for.
    """

    document_unique_id: str
    repository_unique_id: str
    home_community_id: str | None
    mime_type: str
    path: Path
    size: int
    sha256: str | None = None


@dataclass(frozen=True)
class RetrieveResult:
    """Everything a RAD-69 response said, with the documents already on disk."""

    status: Status
    """``rs:RegistryResponse/@status``."""
    documents: tuple[SavedDocument, ...]
    errors: tuple[RegistryError, ...]
    """Every ``rs:RegistryError``, warnings included (ebRS 3.0 rs.xsd)."""
    mtom: bool
    """True if the response was a ``multipart/related`` MTOM/XOP package."""
    action: str | None = None
    """Trimmed ``wsa:Action`` of the response."""

    @property
    def total_bytes(self) -> int:
        return sum(d.size for d in self.documents)

    @property
    def error_entries(self) -> tuple[RegistryError, ...]:
        """Only the error-severity entries (warnings left out)."""
        return tuple(e for e in self.errors if e.severity is Severity.ERROR)


__all__ = ["RetrieveResult", "SavedDocument"]
