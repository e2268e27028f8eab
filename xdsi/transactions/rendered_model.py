"""The request and answer of Retrieve Rendered Imaging Document Set (PS3.18 2017b §6.4.2.1,
§6.4.2.2) as data: what :mod:`xdsi.soap.rendered` reads and writes and
:mod:`xdsi.transactions.rendered` works on.

Kept apart from the transaction so that the SOAP layer and ``make_app`` do not import pydicom and
the renderer (about 55 MB resident) before the first rendered request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from xdsi.model import DocumentRequest, OutcomeOf, Payload

if TYPE_CHECKING:
    from xdsi.imaging.render_params import Region


@dataclass(frozen=True)
class RenderedDocumentRequest:
    """One ``wado:RenderedDocumentRequest`` with its study/series (PS3.18 2017b §6.4.2.1).

    Values are the stripped wire text; parsing them is the transaction's job so that a bad value
    is a RegistryError of this document.  ``region`` is the string form or the XMin/YMin/XMax/
    YMax children by local name; ``unsupported`` names request children in a WADO namespace
    that this operation does not define.
    """

    study_instance_uid: str
    series_instance_uid: str
    document_unique_id: str
    repository_unique_id: str | None = None
    home_community_id: str | None = None
    content_types: tuple[str, ...] = ()
    charsets: tuple[str, ...] = ()
    annotation: str | None = None
    rows: str | None = None
    columns: str | None = None
    region: str | Mapping[str, str] | None = None
    window_center: str | None = None
    window_width: str | None = None
    image_quality: str | None = None
    presentation_uid: str | None = None
    presentation_series_uid: str | None = None
    anonymize: str | None = None
    frame_number: str | None = None
    unsupported: tuple[str, ...] = ()

    @property
    def document(self) -> DocumentRequest:
        """The identifying part, as RAD-69 checks it."""
        return DocumentRequest(
            self.study_instance_uid,
            self.series_instance_uid,
            self.document_unique_id,
            self.repository_unique_id,
            self.home_community_id,
        )


@dataclass(frozen=True)
class RetrieveRenderedRequest:
    """A whole ``wado:RetrieveRenderedImagingDocumentSetRequest``."""

    documents: tuple[RenderedDocumentRequest, ...]


@dataclass(frozen=True)
class ValuesUsed:
    """The values echoed in a RenderedDocumentResponse: "the actual value used" (§6.4.2.2).

    None means not used (e.g. no window for a colour image or a text rendering).
    """

    annotation: tuple[str, ...] = ()
    rows: int | None = None
    columns: int | None = None
    region: Region | None = None
    window_center: float | None = None
    window_width: float | None = None
    image_quality: int | None = None
    presentation_uid: str | None = None
    presentation_series_uid: str | None = None
    anonymized: bool = False
    frame_number: str | None = None
    """Echoed iff requested (§6.4.2.2), as requested."""


@dataclass(frozen=True)
class RenderedDocument:
    """A ``wado:RenderedDocumentResponse``: echo, payload and values used."""

    request: RenderedDocumentRequest
    payload: Payload
    used: ValuesUsed


@dataclass
class RenderedOutcome(OutcomeOf[RenderedDocument]):
    """Documents rendered and RegistryErrors, in request order."""


__all__ = [
    "RenderedDocument",
    "RenderedDocumentRequest",
    "RenderedOutcome",
    "RetrieveRenderedRequest",
    "ValuesUsed",
]
