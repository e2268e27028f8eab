"""The metadata requester: Retrieve Imaging Document Set Metadata (PS3.18 2017b §6.4.3;
``RetrieveImagingDocumentSetInformation``), SOAP 1.2 + WS-Addressing, optionally MTOM-framed.

As for RAD-69 (:mod:`xdsi.client.requester`), zeep builds the request from the WSDL's types
(operation ``ImagingDocumentSource_RetrieveImagingDocumentSetInformation`` of the served WSDL),
and the answer is read by our own code: the same hardened parsing as RAD-69 responses
(:mod:`xdsi.client.envelope`), a multipart (MTOM) answer unwrapped to its root part.  Several
XPaths are sent as several ``wado:XPath`` elements (the prose of §6.4.3.1 implies several; the
served schema allows them; ihe-wadows-2017's allows one, so a strict server may refuse more).
Each ``XPathResponse`` is ``xs:string``: its text is the result.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import requests
from lxml import etree
from zeep.exceptions import ValidationError

from xdsi import ns
from xdsi.client.envelope import (
    body_child,
    parse_xml,
    read_registry_response,
    response_action,
)
from xdsi.client.mtom import MultipartReader, media_type, multipart_root
from xdsi.client.receive import collect
from xdsi.client.requester import BINDING, Requester, request_for, zeep_body
from xdsi.client.transport import body_chunks, post_envelope
from xdsi.errors import InvalidRequest, MalformedResponse
from xdsi.model import DocumentRequest, RegistryError, Status

__all__ = [
    "MAX_RESPONSE_BYTES",
    "OPERATION",
    "DocumentInformationResult",
    "MetadataRequester",
    "MetadataResult",
    "read_metadata_response",
    "zeep_metadata_body",
]

OPERATION: Final = "ImagingDocumentSource_RetrieveImagingDocumentSetInformation"
MAX_RESPONSE_BYTES: Final = 1024**3
"""Largest response accepted (it is parsed whole: XPathResponse texts are character data)."""
CHUNK_SIZE: Final = 64 * 1024


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


def zeep_metadata_body(
    documents: Sequence[DocumentRequest], xpaths: Sequence[str], anonymize: bool
) -> dict[str, Any]:
    """zeep keyword arguments of a ``RetrieveImagingDocumentSetInformationRequest``: the RAD-69
    grouping by study then series (:func:`~xdsi.client.requester.zeep_body`), each document a
    ``DocumentInformationRequest`` with Anonymize ("yes", PS3.18 §8.1.7) and the XPaths."""
    studies = zeep_body(request_for(documents, ()))["StudyRequest"]
    for study in studies:
        for series in study["SeriesRequest"]:
            series["DocumentInformationRequest"] = [
                {**item, "Anonymize": "yes" if anonymize else None, "XPath": list(xpaths)}
                for item in series.pop("DocumentRequest")
            ]
    return {"StudyRequest": studies}


class MetadataRequester:
    """Sends metadata requests to one Imaging Document Source endpoint.

    Parameters
    ----------
    endpoint:
        URL of the source's endpoint.
    wsdl:
        Path or URL of the WSDL; default the served one of the checkout (nothing is fetched).
    mtom:
        Frame requests as MTOM/XOP packages (the source then answers in MTOM too).
    action:
        The request ``wsa:Action``; default the WSDL's.  The PS3.18 prose spelling
        (:data:`xdsi.ns.ACTION_METADATA_PROSE`) is for servers that know only that one.

    Raises
    ------
    InvalidRequest
        The WSDL lacks the metadata operation.
    TransportFailure
        The WSDL cannot be loaded.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        wsdl: str | Path | None = None,
        mtom: bool = False,
        action: str | None = None,
        session: requests.Session | None = None,
        timeout: float = 300.0,
    ) -> None:
        # The RAD-69 requester loads the WSDL the same way; its zeep client builds ours too.
        self._rad69 = Requester(endpoint, wsdl=wsdl, mtom=mtom, session=session, timeout=timeout)
        self.endpoint = endpoint
        self.mtom = mtom
        self.session = self._rad69.session
        self.timeout = timeout
        try:
            operation = self._rad69.client.wsdl.bindings[BINDING].get(OPERATION)  # type: ignore[no-untyped-call]
        except (KeyError, ValueError) as exc:
            raise InvalidRequest(
                f"{wsdl or 'the WSDL'} has no {OPERATION} operation: {exc}"
            ) from exc
        self.action: str = action or operation.abstract.wsa_action or operation.soapaction

    def envelope(
        self,
        documents: Sequence[DocumentRequest],
        xpaths: Sequence[str],
        *,
        anonymize: bool = False,
    ) -> bytes:
        """The request envelope as zeep builds it from the WSDL types, serialized.

        Raises
        ------
        InvalidRequest
            No document or no XPath (the schema requires both), or values zeep refuses.
        """
        if not documents:
            raise InvalidRequest("a metadata request names at least one document")
        if not xpaths:
            raise InvalidRequest("a metadata request has at least one XPath ('/' for everything)")
        try:
            element = self._rad69.client.create_message(  # type: ignore[no-untyped-call]
                self._rad69.service, OPERATION, **zeep_metadata_body(documents, xpaths, anonymize)
            )
        except ValidationError as exc:
            raise InvalidRequest(f"the metadata request is not valid: {exc}") from exc
        for action in element.iter(f"{{{ns.WSA}}}Action"):
            action.text = self.action  # the chosen spelling (zeep writes the WSDL's)
        data: bytes = etree.tostring(element, xml_declaration=True, encoding="utf-8")
        return data

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
        body = self.envelope(documents, xpaths, anonymize=anonymize)
        response = post_envelope(
            self.session, self.endpoint, body, self.action, self.mtom, self.timeout
        )
        with response:
            received = response.headers.get("Content-Type")
            try:
                chunks = body_chunks(response, CHUNK_SIZE)
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
    registry = _local(child, "RegistryResponse", (*ns.WADO_WS_NAMESPACES, ns.RS))
    if registry is None:
        raise MalformedResponse("the response has no RegistryResponse")
    status, errors = read_registry_response(registry)
    documents = []
    for namespace in ns.WADO_WS_NAMESPACES:
        for item in child.iterchildren(f"{{{namespace}}}DocumentInformationResponse"):
            documents.append(_document(item))
    return MetadataResult(status, tuple(documents), errors, response_action(root))


def _document(item: etree._Element) -> DocumentInformationResult:
    def text(local: str) -> str | None:
        found = _local(item, local, (ns.XDS_B, *ns.WADO_WS_NAMESPACES))
        return None if found is None else (found.text or "").strip() or None

    uid = text("DocumentUniqueId")
    if not uid:
        raise MalformedResponse("a DocumentInformationResponse lacks DocumentUniqueId")
    results = _local(item, "XPathResponseList", ns.WADO_WS_NAMESPACES)
    texts = (
        ()
        if results is None
        else tuple(
            r.text or ""
            for namespace in ns.WADO_WS_NAMESPACES
            for r in results.iterchildren(f"{{{namespace}}}XPathResponse")
        )
    )
    return DocumentInformationResult(
        uid, text("RepositoryUniqueId"), text("HomeCommunityId"), texts
    )
