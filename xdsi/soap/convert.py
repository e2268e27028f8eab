"""Wire ⇄ model conversion for RAD-69 (IHE RAD TF-2 §4.69.4; PS3.18 2017b §6.4.1).

Inbound, the ``iherad:RetrieveImagingDocumentSetRequest`` element becomes a
:class:`xdsi.model.RetrieveImagingDocumentSetRequest` (read with lxml, see
:func:`request_from_wire` for why); values are whitespace-stripped and kept as received otherwise (validating them is the transaction's job, so a bad value becomes a
RegistryError for its document, never a fault).

Outbound, the :class:`~xdsi.model.Outcome` becomes the ``ihe:RetrieveDocumentSetResponse``
element, written with lxml rather than by spyne's serializer: each ``Document`` must be an
``xop:Include`` pointing at a part that is streamed later, which spyne cannot express (its MTOM
output is broken, libraries.md §1.7), and the element order must be exactly the ITI XSD's
(HomeCommunityId, RepositoryUniqueId, DocumentUniqueId, mimeType, Document).  The tests validate
every emitted response against the vendored XSDs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from lxml import etree

from xdsi import ns
from xdsi.model import (
    DocumentRequest,
    Outcome,
    RetrieveImagingDocumentSetRequest,
)
from xdsi.soap.mtom import Attachment, cid_url, content_id
from xdsi.soap.registry import registry_response


def _children(parent: etree._Element, local: str) -> Iterator[etree._Element]:
    """Child elements named ``local`` in any namespace or none (lxml filters the tags in C)."""
    children: Iterator[etree._Element] = parent.iterchildren(f"{{*}}{local}")
    return children


def _texts(parent: etree._Element) -> dict[str, str]:
    """Stripped texts of ``parent``'s child elements by local name, in any namespace (a repeated
    single-valued child: the last one counts, as spyne's deserializer had it)."""
    texts: dict[str, str] = {}
    for child in parent:
        tag = child.tag
        if isinstance(tag, str):  # not a comment or processing instruction
            texts[tag.rpartition("}")[2]] = (child.text or "").strip()
    return texts


def _attribute(element: etree._Element, name: str) -> str:
    """An attribute by local name, case-insensitively and in any namespace; empty if absent."""
    value = element.get(name)  # the spelling of the schema: the common case, one dict lookup
    if value is not None:
        return value.strip()
    lowered = name.lower()
    for key, other in element.attrib.items():
        if etree.QName(key).localname.lower() == lowered:
            return str(other).strip()
    return ""


def request_from_wire(element: etree._Element) -> RetrieveImagingDocumentSetRequest:
    """One ``iherad:RetrieveImagingDocumentSetRequest`` element → one model request.

    Read with lxml, not spyne: spyne's deserializer took ~40 µs a DocumentRequest (16 ms of a
    400-document request, ~40 % of the time before the first byte of the response), which held
    whole-study throughput under the goal of docs/performance.md; this reader takes ~1.5 ms.  It
    keeps spyne's leniency (libraries.md §1.2): children are matched by local name in any
    namespace, unknown ones (PS3.18's ``wado:Anonymize``, stray text) are ignored, and the
    DocumentRequest children may come in any order.  Attribute names are matched
    case-insensitively, as the metadata and rendered operations do.
    """
    documents: list[DocumentRequest] = []
    for study in _children(element, "StudyRequest"):
        study_uid = _attribute(study, "studyInstanceUID")
        for series in _children(study, "SeriesRequest"):
            series_uid = _attribute(series, "seriesInstanceUID")
            for doc in _children(series, "DocumentRequest"):
                texts = _texts(doc)
                documents.append(
                    DocumentRequest(
                        study_instance_uid=study_uid,
                        series_instance_uid=series_uid,
                        document_unique_id=texts.get("DocumentUniqueId", ""),
                        repository_unique_id=texts.get("RepositoryUniqueId") or None,
                        home_community_id=texts.get("HomeCommunityId") or None,
                    )
                )
    syntaxes: tuple[str, ...] = ()
    for syntax_list in _children(element, "TransferSyntaxUIDList"):  # the last list counts
        syntaxes = tuple(
            value
            for value in ((s.text or "").strip() for s in _children(syntax_list, "TransferSyntaxUID"))
            if value
        )
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
# Clark names made once: a 400-document response builds ~2,400 elements before its first byte.
_RESPONSE = _xds("RetrieveDocumentSetResponse")
_DOCUMENT_RESPONSE = _xds("DocumentResponse")
_HOME = _xds("HomeCommunityId")
_REPOSITORY = _xds("RepositoryUniqueId")
_DOCUMENT_UID = _xds("DocumentUniqueId")
_MIME_TYPE = _xds("mimeType")
_DOCUMENT = _xds("Document")
_XOP_INCLUDE = f"{{{ns.XOP}}}Include"


def response_to_wire(outcome: Outcome) -> tuple[etree._Element, list[Attachment]]:
    """``ihe:RetrieveDocumentSetResponse`` for ``outcome`` and the attachments it references."""
    response = etree.Element(_RESPONSE, nsmap=RESPONSE_NSMAP)
    registry_response(response, outcome.status, outcome.errors)
    attachments: list[Attachment] = []
    sub = etree.SubElement
    for index, document in enumerate(outcome.documents, start=1):
        echo, payload = document.request, document.payload
        element = sub(response, _DOCUMENT_RESPONSE)
        if echo.home_community_id:  # echoed only when sent (PS3.18 §6.4.1.2.1; NIST ids_4820)
            sub(element, _HOME).text = echo.home_community_id
        sub(element, _REPOSITORY).text = echo.repository_unique_id
        sub(element, _DOCUMENT_UID).text = echo.document_unique_id
        sub(element, _MIME_TYPE).text = payload.media_type
        cid = content_id(echo.document_unique_id, index)
        sub(sub(element, _DOCUMENT), _XOP_INCLUDE).set("href", cid_url(cid))
        attachments.append(Attachment(cid, payload.media_type, payload.chunks, payload.size))
    return response, attachments


__all__ = ["merge_outcomes", "request_from_wire", "response_to_wire"]
