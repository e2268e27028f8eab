"""The metadata operation of the endpoint: Retrieve Imaging Document Set Metadata (PS3.18 2017b
§6.4.3; elements and actions named ``…Information…``).

**Request** (lenient; standards.md §3.9 #2, #9): the Body element
``RetrieveImagingDocumentSetInformationRequest`` (or ``…MetadataRequest``, the §6.4.3 heading) in
``urn:dicom:wado:ws:2011``, the legacy ``urn:dicom:ws:wado:2011``, ``urn:ihe:rad:xdsi-b:2009`` (the
Annex E.1 schema's target namespace) or no namespace.  Below it, elements are found by local name
in any of those namespaces or ``urn:ihe:iti:xds-b:2007``, in any order: ``StudyRequest@
studyInstanceUID`` / ``SeriesRequest@seriesInstanceUID`` (absent attributes: see
:mod:`xdsi.transactions.metadata`) / ``DocumentInformationRequest`` with
``HomeCommunityId``, ``RepositoryUniqueId``, ``DocumentUniqueId``, ``Anonymize`` and one or more
``XPath`` (the schemas allow one, the prose implies several; all are answered, in order).  The
prefixes in scope of each ``XPath`` element are the ones its expression may use.  spyne is not
used: it cannot be lenient this way.  A Body element without any ``DocumentInformationRequest``
is a Sender fault; anything wrong inside one is that document's RegistryError.

**Response**: ``wado:RetrieveImagingDocumentSetInformationResponse`` { ``wado:RegistryResponse``,
0..n ``wado:DocumentInformationResponse`` { ``ihe:HomeCommunityId``? (echoed only when sent),
``ihe:RepositoryUniqueId``, ``ihe:DocumentUniqueId``, ``wado:XPathResponseList`` {
``wado:XPathResponse``+ } } }.  ``XPathResponse`` is ``xs:string`` in both published schemas
(Annex E.1, ihe-wadows-2017), so each result is *text*: the serialized XML of a node-set is
escaped character data (``&lt;DicomAttribute …``), which any XML reader hands back as the
original string; empty when nothing matched.  No CDATA (a string result may contain ``]]>``) and
no XOP part: the prose's "encoded as an XOP Infoset" adds nothing for text.  Several request
elements in one Body are answered in one response, in order.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from typing import Final

from lxml import etree

from xdsi import ns
from xdsi.model import DocumentRequest
from xdsi.soap import faults
from xdsi.soap.lenient import attribute
from xdsi.soap.operation import Operation, Reply
from xdsi.soap.registry import registry_response
from xdsi.transactions.metadata_model import (
    DocumentInformationRequest,
    MetadataOutcome,
    RetrieveImagingDocumentSetInformationRequest,
    XPathExpression,
)

__all__ = [
    "REQUEST_ELEMENTS",
    "RetrieveInformation",
    "metadata_operation",
    "request_from_wire",
    "response_to_wire",
]

RetrieveInformation = Callable[[RetrieveImagingDocumentSetInformationRequest], MetadataOutcome]
"""The transaction bound to a store: request in, outcome out."""

_WADO_NAMESPACES: Final = (*ns.WADO_WS_NAMESPACES, ns.XDSI_B, None)
_CHILD_NAMESPACES: Final = frozenset({*_WADO_NAMESPACES, ns.XDS_B})
_REQUEST_NAMES: Final = (
    "RetrieveImagingDocumentSetInformationRequest",
    "RetrieveImagingDocumentSetMetadataRequest",
)
REQUEST_ELEMENTS: Final = frozenset(
    etree.QName(namespace, name).text for namespace in _WADO_NAMESPACES for name in _REQUEST_NAMES
)
"""Clark names of the Body elements this operation takes."""


def metadata_operation(retrieve: RetrieveInformation) -> Operation:
    """The metadata :class:`Operation` running ``retrieve``."""

    def answer(elements: Sequence[etree._Element]) -> Reply:
        documents: list[DocumentInformationRequest] = []
        for element in elements:
            documents.extend(request_from_wire(element).documents)
        outcome = retrieve(RetrieveImagingDocumentSetInformationRequest(tuple(documents)))
        return Reply(response_to_wire(outcome))

    return Operation(
        name="ImagingDocumentSource_RetrieveImagingDocumentSetInformation",
        request_elements=REQUEST_ELEMENTS,
        actions={
            ns.ACTION_METADATA: ns.ACTION_METADATA + ns.RESPONSE_SUFFIX,
            # PS3.18 2017b §6.4.3.1 prose spelling (standards.md §3.9 #2).
            ns.ACTION_METADATA_PROSE: ns.ACTION_METADATA_PROSE + ns.RESPONSE_SUFFIX,
        },
        answer=answer,
    )


# --- request ------------------------------------------------------------------------------------


@functools.cache
def _names(local: str) -> tuple[str, ...]:
    """Clark names of ``local`` in every accepted namespace (and none)."""
    return tuple(etree.QName(namespace, local).text for namespace in _CHILD_NAMESPACES)


def _children(parent: etree._Element, local: str) -> Iterator[etree._Element]:
    # Tag filtering inside lxml: a request of 400 documents has ~3,600 elements to look at.
    children: Iterator[etree._Element] = parent.iterchildren(*_names(local))
    return children


def _text(parent: etree._Element, local: str) -> str | None:
    """Stripped text of the first ``local`` child; ``None`` if there is none."""
    child = next(_children(parent, local), None)
    return None if child is None else (child.text or "").strip()


def request_from_wire(element: etree._Element) -> RetrieveImagingDocumentSetInformationRequest:
    """One request element → the model request (values kept as received, stripped).

    Raises
    ------
    xdsi.soap.faults.SoapFault
        ``env:Sender`` if it holds no ``DocumentInformationRequest`` at all.
    """
    documents: list[DocumentInformationRequest] = []
    for study in _children(element, "StudyRequest"):
        study_uid = attribute(study, "studyInstanceUID")
        for series in _children(study, "SeriesRequest"):
            series_uid = attribute(series, "seriesInstanceUID")
            for item in _children(series, "DocumentInformationRequest"):
                documents.append(_document(item, study_uid, series_uid))
    if not documents:
        raise faults.sender(
            f"{etree.QName(element).localname} holds no StudyRequest/SeriesRequest/"
            "DocumentInformationRequest (PS3.18 2017b §6.4.3.1)"
        )
    return RetrieveImagingDocumentSetInformationRequest(tuple(documents))


def _document(
    item: etree._Element, study_uid: str | None, series_uid: str | None
) -> DocumentInformationRequest:
    document = DocumentRequest(
        study_instance_uid=study_uid or "",
        series_instance_uid=series_uid or "",
        document_unique_id=_text(item, "DocumentUniqueId") or "",
        repository_unique_id=_text(item, "RepositoryUniqueId") or None,
        home_community_id=_text(item, "HomeCommunityId") or None,
    )
    xpaths = tuple(
        XPathExpression(
            x.text or "",
            tuple(sorted((p, u) for p, u in x.nsmap.items() if p is not None)),
        )
        for x in _children(item, "XPath")
    )
    return DocumentInformationRequest(
        document,
        xpaths,
        _text(item, "Anonymize"),
        study_sent=study_uid is not None,
        series_sent=series_uid is not None,
    )


# --- response -----------------------------------------------------------------------------------


def _wado(local: str) -> str:
    return f"{{{ns.WADO_WS}}}{local}"


def _ihe(local: str) -> str:
    return f"{{{ns.XDS_B}}}{local}"


RESPONSE_NSMAP: Final = {"wado": ns.WADO_WS, "ihe": ns.XDS_B, "rs": ns.RS}


def response_to_wire(outcome: MetadataOutcome) -> etree._Element:
    """``wado:RetrieveImagingDocumentSetInformationResponse`` for ``outcome``."""
    response = etree.Element(
        _wado("RetrieveImagingDocumentSetInformationResponse"), nsmap=RESPONSE_NSMAP
    )
    registry_response(
        response, outcome.status, outcome.errors, tag=etree.QName(ns.WADO_WS, "RegistryResponse")
    )
    for document in outcome.documents:
        echo = document.request
        element = etree.SubElement(response, _wado("DocumentInformationResponse"))
        if echo.home_community_id:  # echoed only when sent (PS3.18 §6.4.3.2)
            etree.SubElement(element, _ihe("HomeCommunityId")).text = echo.home_community_id
        etree.SubElement(element, _ihe("RepositoryUniqueId")).text = echo.repository_unique_id
        etree.SubElement(element, _ihe("DocumentUniqueId")).text = echo.document_unique_id
        results = etree.SubElement(element, _wado("XPathResponseList"))
        for text in document.results:
            etree.SubElement(results, _wado("XPathResponse")).text = text
    return response
