"""The metadata requester: Retrieve Imaging Document Set Metadata (PS3.18 2017b §6.4.3;
``RetrieveImagingDocumentSetInformation``), SOAP 1.2 + WS-Addressing, optionally MTOM-framed.

The vendored WSDL has no metadata operation (its schemas are the RAD-69 ones), so zeep cannot
build this message: the request is built here with lxml, element by element in the order of the
published schemas (ihe-wadows-2017 ``dicom.wado.ws.2011.xsd``: HomeCommunityId?,
RepositoryUniqueId, DocumentUniqueId, Anonymize?, XPath), never from a text template.  Several
XPaths are sent as several ``wado:XPath`` elements (the prose of §6.4.3.1 implies several; the
schemas allow one: a strict server may refuse more than one).  The answer is read with the same
hardened parsing as RAD-69 responses (:mod:`xdsi.client.envelope`); a multipart (MTOM) answer is
unwrapped to its root part.  Each ``XPathResponse`` is ``xs:string``: its text is the result.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

import requests
from lxml import etree

from xdsi import ns
from xdsi.client.envelope import body_child, parse_xml, registry_error
from xdsi.client.mtom import MultipartReader, media_type, multipart_root
from xdsi.client.receive import collect
from xdsi.client.transport import post_envelope
from xdsi.errors import InvalidRequest, MalformedResponse
from xdsi.model import DocumentRequest, RegistryError, Status

__all__ = [
    "MAX_RESPONSE_BYTES",
    "DocumentInformationResult",
    "MetadataRequester",
    "MetadataResult",
    "metadata_envelope",
    "read_metadata_response",
]

MAX_RESPONSE_BYTES: Final = 1024**3
"""Largest response accepted (it is parsed whole: XPathResponse texts are character data)."""
CHUNK_SIZE: Final = 64 * 1024
_RESPONSE: Final = f"{{{ns.WADO_WS}}}RetrieveImagingDocumentSetInformationResponse"
_WADO_NAMESPACES: Final = (ns.WADO_WS, ns.WADO_WS_LEGACY)


@dataclass(frozen=True)
class DocumentInformationResult:
    """One ``wado:DocumentInformationResponse``: the echo and the XPath results in order."""

    document_unique_id: str
    repository_unique_id: str | None
    home_community_id: str | None
    results: tuple[str, ...]


@dataclass(frozen=True)
class MetadataResult:
    """Everything a metadata response said."""

    status: Status
    documents: tuple[DocumentInformationResult, ...]
    errors: tuple[RegistryError, ...]
    action: str | None


def metadata_envelope(
    documents: Sequence[DocumentRequest],
    xpaths: Sequence[str],
    *,
    anonymize: bool = False,
    action: str = ns.ACTION_METADATA,
    to: str | None = None,
) -> bytes:
    """The SOAP 1.2 request envelope (PS3.18 2017b §6.4.3.1), documents grouped by study/series.

    Raises
    ------
    InvalidRequest
        No document or no XPath (the schemas require both).
    """
    if not documents:
        raise InvalidRequest("a metadata request names at least one document")
    if not xpaths:
        raise InvalidRequest("a metadata request has at least one XPath ('/' for everything)")
    soap, wsa, wado, ihe = ns.SOAP12_ENV, ns.WSA, ns.WADO_WS, ns.XDS_B
    envelope = etree.Element(
        f"{{{soap}}}Envelope", nsmap={"s": soap, "wsa": wsa, "wado": wado, "ihe": ihe}
    )
    header = etree.SubElement(envelope, f"{{{soap}}}Header")
    action_el = etree.SubElement(header, f"{{{wsa}}}Action")
    action_el.set(f"{{{soap}}}mustUnderstand", "true")  # PS3.18 2017b §6.4
    action_el.text = action
    etree.SubElement(header, f"{{{wsa}}}MessageID").text = uuid.uuid4().urn
    reply_to = etree.SubElement(header, f"{{{wsa}}}ReplyTo")
    etree.SubElement(reply_to, f"{{{wsa}}}Address").text = ns.WSA_ANONYMOUS
    if to:
        etree.SubElement(header, f"{{{wsa}}}To").text = to
    body = etree.SubElement(envelope, f"{{{soap}}}Body")
    request = etree.SubElement(body, f"{{{wado}}}RetrieveImagingDocumentSetInformationRequest")
    studies: dict[str, dict[str, list[DocumentRequest]]] = {}
    for doc in documents:
        studies.setdefault(doc.study_instance_uid, {}).setdefault(
            doc.series_instance_uid, []
        ).append(doc)
    for study_uid, series_map in studies.items():
        study = etree.SubElement(request, f"{{{wado}}}StudyRequest", studyInstanceUID=study_uid)
        for series_uid, docs in series_map.items():
            series = etree.SubElement(
                study, f"{{{wado}}}SeriesRequest", seriesInstanceUID=series_uid
            )
            for doc in docs:
                item = etree.SubElement(series, f"{{{wado}}}DocumentInformationRequest")
                if doc.home_community_id:
                    etree.SubElement(item, f"{{{ihe}}}HomeCommunityId").text = doc.home_community_id
                if doc.repository_unique_id:
                    etree.SubElement(
                        item, f"{{{ihe}}}RepositoryUniqueId"
                    ).text = doc.repository_unique_id
                etree.SubElement(item, f"{{{ihe}}}DocumentUniqueId").text = doc.document_unique_id
                if anonymize:
                    etree.SubElement(item, f"{{{wado}}}Anonymize").text = "yes"  # §8.1.7 value
                for expression in xpaths:
                    etree.SubElement(item, f"{{{wado}}}XPath").text = expression
    data: bytes = etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")
    return data


class MetadataRequester:
    """Sends metadata requests to one Imaging Document Source endpoint.

    Parameters
    ----------
    endpoint:
        URL of the source's endpoint.
    mtom:
        Frame requests as MTOM/XOP packages (the source then answers in MTOM too).
    action:
        The request ``wsa:Action``: the WSDL spelling by default, or the PS3.18 prose one
        (:data:`xdsi.ns.ACTION_METADATA_PROSE`) for servers that only know that.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        mtom: bool = False,
        action: str = ns.ACTION_METADATA,
        session: requests.Session | None = None,
        timeout: float = 300.0,
    ) -> None:
        self.endpoint = endpoint
        self.mtom = mtom
        self.action = action
        self.session = session or requests.Session()
        self.timeout = timeout

    def retrieve(
        self,
        documents: Sequence[DocumentRequest],
        xpaths: Sequence[str],
        *,
        anonymize: bool = False,
    ) -> MetadataResult:
        """Send one request and read the answer.

        Raises
        ------
        InvalidRequest
            No document or no XPath.
        TransportFailure
            Connection refused/broken or a non-SOAP HTTP answer.
        RemoteFault
            The source answered with a SOAP fault.
        MalformedResponse
            Truncated, oversized or unreadable response.
        """
        body = metadata_envelope(
            documents, xpaths, anonymize=anonymize, action=self.action, to=self.endpoint
        )
        response = post_envelope(
            self.session, self.endpoint, body, self.action, self.mtom, self.timeout
        )
        with response:
            received = response.headers.get("Content-Type")
            try:
                chunks = response.iter_content(CHUNK_SIZE)
                if media_type(received) == ns.MEDIA_MULTIPART_RELATED:
                    data = _root_part(received or "", chunks)
                else:
                    data = collect(chunks, MAX_RESPONSE_BYTES, "SOAP response")
            except requests.RequestException as exc:
                raise MalformedResponse(f"the response was cut off: {exc}") from exc
        return read_metadata_response(parse_xml(data, huge_tree=True))


def _root_part(content_type: str, chunks: Iterable[bytes]) -> bytes:
    """The root part of an MTOM answer (``start``, else the first part; RFC 2387 §3.2)."""
    boundary, start_id = multipart_root(content_type)
    root: bytes | None = None
    for number, part in enumerate(MultipartReader(chunks, boundary).parts()):
        is_root = root is None and (
            part.headers.content_id == start_id if start_id else number == 0
        )
        if is_root:
            root = collect(part.iter_body(), MAX_RESPONSE_BYTES, "root SOAP part")
        else:
            part.drain()  # a metadata answer references no part
    if root is None:
        raise MalformedResponse("the multipart response has no root part")
    return root


def _local(element: etree._Element, local: str, namespaces: Iterable[str]) -> etree._Element | None:
    for namespace in namespaces:
        found = element.find(f"{{{namespace}}}{local}")
        if found is not None:
            return found
    return None


def read_metadata_response(root: etree._Element) -> MetadataResult:
    """Read a ``RetrieveImagingDocumentSetInformationResponse`` envelope (PS3.18 §6.4.3.2).

    The RegistryResponse is accepted in the wado namespaces (dcm4che's and ihe-wadows' schemas)
    or as ``rs:RegistryResponse`` (PS3.18 Annex E.3), standards.md §3.9 #4.

    Raises
    ------
    RemoteFault
        For a SOAP fault.
    MalformedResponse
        Not this response, or no valid ``@status``.
    """
    child = body_child(root)
    if etree.QName(child).localname != "RetrieveImagingDocumentSetInformationResponse":
        raise MalformedResponse(f"unexpected response element {child.tag}")
    registry = _local(child, "RegistryResponse", (*_WADO_NAMESPACES, ns.RS))
    if registry is None:
        raise MalformedResponse("the response has no RegistryResponse")
    raw_status = (registry.get("status") or "").strip()
    try:
        status = Status(raw_status)
    except ValueError:
        raise MalformedResponse(f"unknown RegistryResponse status {raw_status!r}") from None
    errors = tuple(registry_error(e) for e in registry.iter(f"{{{ns.RS}}}RegistryError"))
    documents = []
    for namespace in _WADO_NAMESPACES:
        for item in child.iterchildren(f"{{{namespace}}}DocumentInformationResponse"):
            documents.append(_document(item))
    header = root.find(f"{{{ns.SOAP12_ENV}}}Header")
    action_el = None if header is None else header.find(f"{{{ns.WSA}}}Action")
    action = None if action_el is None else (action_el.text or "").strip() or None
    return MetadataResult(status, tuple(documents), errors, action)


def _document(item: etree._Element) -> DocumentInformationResult:
    def text(local: str) -> str | None:
        found = _local(item, local, (ns.XDS_B, *_WADO_NAMESPACES))
        return None if found is None else (found.text or "").strip() or None

    uid = text("DocumentUniqueId")
    if not uid:
        raise MalformedResponse("a DocumentInformationResponse lacks DocumentUniqueId")
    results = _local(item, "XPathResponseList", _WADO_NAMESPACES)
    texts = (
        ()
        if results is None
        else tuple(
            r.text or ""
            for namespace in _WADO_NAMESPACES
            for r in results.iterchildren(f"{{{namespace}}}XPathResponse")
        )
    )
    return DocumentInformationResult(
        uid, text("RepositoryUniqueId"), text("HomeCommunityId"), texts
    )
