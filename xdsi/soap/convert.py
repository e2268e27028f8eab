"""Wire ⇄ model conversion for RAD-69 (IHE RAD TF-2 §4.69.4; PS3.18 2017b §6.4.1).

Inbound, spyne's deserialized :class:`~xdsi.soap.types.RetrieveImagingDocumentSetRequest` becomes
a :class:`xdsi.model.RetrieveImagingDocumentSetRequest`; values are whitespace-stripped and kept
as received otherwise (validating them is the transaction's job, so a bad value becomes a
RegistryError for its document, never a fault).

Outbound, the :class:`~xdsi.model.Outcome` becomes the ``ihe:RetrieveDocumentSetResponse``
element, written with lxml rather than by spyne's serializer: each ``Document`` must be an
``xop:Include`` pointing at a part that is streamed later, which spyne cannot express (its MTOM
output is broken, libraries.md §1.7), and the element order must be exactly the ITI XSD's
(HomeCommunityId, RepositoryUniqueId, DocumentUniqueId, mimeType, Document).  The tests validate
every emitted response against the vendored XSDs.
"""

from __future__ import annotations

from collections.abc import Iterable

from lxml import etree

from xdsi import ns
from xdsi.model import (
    DocumentRequest,
    Outcome,
    RetrieveImagingDocumentSetRequest,
)
from xdsi.soap import types
from xdsi.soap.mtom import Attachment, cid_url, content_id
from xdsi.soap.registry import registry_response


def _clean(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _optional(value: object) -> str | None:
    return _clean(value) or None


def _list(value: object) -> list[object]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def request_from_wire(
    wire: types.RetrieveImagingDocumentSetRequest,
) -> RetrieveImagingDocumentSetRequest:
    """One spyne request element → one model request (its own transfer syntax list)."""
    documents: list[DocumentRequest] = []
    for study in _list(wire.StudyRequest):
        study_uid = _clean(getattr(study, "studyInstanceUID", None))
        for series in _list(getattr(study, "SeriesRequest", None)):
            series_uid = _clean(getattr(series, "seriesInstanceUID", None))
            for doc in _list(getattr(series, "DocumentRequest", None)):
                documents.append(
                    DocumentRequest(
                        study_instance_uid=study_uid,
                        series_instance_uid=series_uid,
                        document_unique_id=_clean(getattr(doc, "DocumentUniqueId", None)),
                        repository_unique_id=_optional(getattr(doc, "RepositoryUniqueId", None)),
                        home_community_id=_optional(getattr(doc, "HomeCommunityId", None)),
                    )
                )
    ts_list = getattr(wire.TransferSyntaxUIDList, "TransferSyntaxUID", None)
    syntaxes = tuple(s for s in (_clean(v) for v in _list(ts_list)) if s)
    return RetrieveImagingDocumentSetRequest(tuple(documents), syntaxes)


def merge_outcomes(outcomes: Iterable[Outcome]) -> Outcome:
    """Several request elements in one Body are answered in one response (their concatenation)."""
    merged = Outcome()
    for outcome in outcomes:
        merged.documents.extend(outcome.documents)
        merged.errors.extend(outcome.errors)
    return merged


def _xds(local: str) -> str:
    return f"{{{ns.XDS_B}}}{local}"


RESPONSE_NSMAP = {"xdsb": ns.XDS_B, "rs": ns.RS, "xop": ns.XOP}


def response_to_wire(outcome: Outcome) -> tuple[etree._Element, list[Attachment]]:
    """``ihe:RetrieveDocumentSetResponse`` for ``outcome`` and the attachments it references."""
    response = etree.Element(_xds("RetrieveDocumentSetResponse"), nsmap=RESPONSE_NSMAP)
    registry_response(response, outcome.status, outcome.errors)
    attachments: list[Attachment] = []
    for index, document in enumerate(outcome.documents, start=1):
        echo = document.request
        element = etree.SubElement(response, _xds("DocumentResponse"))
        if echo.home_community_id:  # echoed only when sent (PS3.18 §6.4.1.2.1; NIST ids_4820)
            etree.SubElement(element, _xds("HomeCommunityId")).text = echo.home_community_id
        etree.SubElement(element, _xds("RepositoryUniqueId")).text = echo.repository_unique_id
        etree.SubElement(element, _xds("DocumentUniqueId")).text = echo.document_unique_id
        etree.SubElement(element, _xds("mimeType")).text = document.payload.media_type
        cid = content_id(echo.document_unique_id, index)
        include = etree.SubElement(
            etree.SubElement(element, _xds("Document")), f"{{{ns.XOP}}}Include"
        )
        include.set("href", cid_url(cid))
        attachments.append(
            Attachment(
                cid, document.payload.media_type, document.payload.chunks, document.payload.size
            )
        )
    return response, attachments


__all__ = ["merge_outcomes", "request_from_wire", "response_to_wire"]
