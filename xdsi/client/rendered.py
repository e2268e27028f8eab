"""The Rendered Requester: Retrieve Rendered Imaging Document Set (PS3.18 2017b §6.4.2).

The request envelope is written with lxml in the element order of the schema xdsi serves
(``wsdl/schema/DICOM/dicom.wado.ws.2011.xsd``, dcm4che's order: WindowWidth before WindowCenter,
Anonymize and FrameNumber after the other values, ContentTypeList and CharsetList last) and the
structured Region of PS3.18 §8.2.4; the tests validate it against the served schemas and check
that zeep, driven by the served WSDL, gets the same answers.  lxml rather than zeep because a
requester tool must also send what other sources expect and what the schema forbids: the Region
string of dcm4che's schema (``region_as_text``), the prose action, invalid values.  The answer is
streamed to disk by the RAD-69 reader (:func:`xdsi.client.requester.exchange`) with
a root-part reader for ``wado:RetrieveRenderedImagingDocumentSetResponse``; files are named
``<SourceDocumentUniqueId>.<extension of the media type>``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import requests
from lxml import etree

from xdsi import ns
from xdsi.client.envelope import (
    DocumentEntry,
    ResponseEnvelope,
    body_child,
    read_entry,
    read_registry_response,
    response_action,
)
from xdsi.client.receive import DocumentCallback
from xdsi.client.requester import exchange
from xdsi.client.result import RetrieveResult, SavedDocument
from xdsi.errors import InvalidRequest, MalformedResponse
from xdsi.model import DocumentRequest
from xdsi.xmlnames import split_tag

VALUE_ELEMENTS: Final = (
    "Annotation", "Rows", "Columns", "Region", "WindowWidth", "WindowCenter", "ImageQuality",
    "PresentationUID", "PresentationSeriesUID", "Anonymize", "FrameNumber",
)  # fmt: skip
"""The value elements of a RenderedDocumentRequest/Response, in the served schema's order."""
CORNERS: Final = ("XMin", "YMin", "XMax", "YMax")


@dataclass(frozen=True)
class RenderedParameters:
    """The parameters of one RenderedDocumentRequest (PS3.18 2017b §8.1/§8.2), as text.

    Values are sent as given (the source checks them): a requester tool must be able to send
    what a consumer sends, bad values included.  ``region`` is written as XMin/YMin/XMax/YMax
    children from ``"x1,y1,x2,y2"``, or as the string itself with ``region_as_text``.
    """

    content_types: tuple[str, ...] = (ns.MEDIA_JPEG,)
    charsets: tuple[str, ...] = ()
    annotation: str | None = None
    rows: str | None = None
    columns: str | None = None
    region: str | None = None
    window_center: str | None = None
    window_width: str | None = None
    image_quality: str | None = None
    presentation_uid: str | None = None
    presentation_series_uid: str | None = None
    anonymize: bool = False
    frame_number: str | None = None
    region_as_text: bool = False

    def values(self) -> dict[str, str | None]:
        """Element name → text of every value element (None: not sent)."""
        return {
            "Annotation": self.annotation,
            "Rows": self.rows,
            "Columns": self.columns,
            "Region": self.region,
            "WindowWidth": self.window_width,
            "WindowCenter": self.window_center,
            "ImageQuality": self.image_quality,
            "PresentationUID": self.presentation_uid,
            "PresentationSeriesUID": self.presentation_series_uid,
            "Anonymize": "yes" if self.anonymize else None,
            "FrameNumber": self.frame_number,
        }


@dataclass(frozen=True)
class RenderedResult:
    """A rendered retrieve: the files (``result``) and, per saved document in the same order,
    the values the source says it used (§6.4.2.2; Region as ``"x1,y1,x2,y2"``)."""

    result: RetrieveResult
    used: tuple[dict[str, str], ...] = field(default_factory=tuple)

    def pairs(self) -> list[tuple[SavedDocument, dict[str, str]]]:
        return list(zip(self.result.documents, self.used, strict=True))


def _wado(local: str) -> str:
    return f"{{{ns.WADO_WS}}}{local}"


def _xds(local: str) -> str:
    return f"{{{ns.XDS_B}}}{local}"


def request_element(
    documents: Sequence[DocumentRequest], parameters: RenderedParameters
) -> etree._Element:
    """``wado:RetrieveRenderedImagingDocumentSetRequest`` for ``documents`` (grouped by study,
    then series, in first-seen order), each with the same ``parameters``."""
    if not documents:
        raise InvalidRequest("a rendered request needs at least one document")
    studies: dict[str, dict[str, list[DocumentRequest]]] = {}
    for doc in documents:
        studies.setdefault(doc.study_instance_uid, {}).setdefault(
            doc.series_instance_uid, []
        ).append(doc)
    root = etree.Element(
        _wado("RetrieveRenderedImagingDocumentSetRequest"),
        nsmap={"wado": ns.WADO_WS, "xdsb": ns.XDS_B},
    )
    for study, series_map in studies.items():
        study_el = etree.SubElement(root, _wado("StudyRequest"), studyInstanceUID=study)
        for series, docs in series_map.items():
            series_el = etree.SubElement(study_el, _wado("SeriesRequest"), seriesInstanceUID=series)
            for doc in docs:
                item = etree.SubElement(series_el, _wado("RenderedDocumentRequest"))
                _document(item, doc, parameters)
    return root


def _document(
    element: etree._Element, doc: DocumentRequest, parameters: RenderedParameters
) -> None:
    if doc.home_community_id:
        etree.SubElement(element, _xds("HomeCommunityId")).text = doc.home_community_id
    if doc.repository_unique_id:
        etree.SubElement(element, _xds("RepositoryUniqueId")).text = doc.repository_unique_id
    etree.SubElement(element, _xds("DocumentUniqueId")).text = doc.document_unique_id
    for name, value in parameters.values().items():
        if value is None:
            continue
        child = etree.SubElement(element, _wado(name))
        if name == "Region" and not parameters.region_as_text:
            parts = [p.strip() for p in value.split(",")]
            if len(parts) != len(CORNERS):
                raise InvalidRequest(f"--region needs four numbers x1,y1,x2,y2, got {value!r}")
            for corner, part in zip(CORNERS, parts, strict=True):
                etree.SubElement(child, _wado(corner)).text = part
        else:
            child.text = value
    types = etree.SubElement(element, _wado("ContentTypeList"))
    for media in parameters.content_types:
        etree.SubElement(types, _wado("ContentType")).text = media
    if parameters.charsets:
        charsets = etree.SubElement(element, _wado("CharsetList"))
        for charset in parameters.charsets:
            etree.SubElement(charsets, _wado("Charset")).text = charset


def envelope(body: etree._Element, endpoint: str, action: str = ns.ACTION_RENDERED) -> bytes:
    """A SOAP 1.2 envelope with WS-Addressing headers (``wsa:Action`` mustUnderstand, PS3.18
    2017b §6.4) around ``body``."""
    env = etree.Element(f"{{{ns.SOAP12_ENV}}}Envelope", nsmap={"s": ns.SOAP12_ENV, "wsa": ns.WSA})
    header = etree.SubElement(env, f"{{{ns.SOAP12_ENV}}}Header")
    wsa_action = etree.SubElement(header, f"{{{ns.WSA}}}Action")
    wsa_action.set(f"{{{ns.SOAP12_ENV}}}mustUnderstand", "true")
    wsa_action.text = action
    etree.SubElement(header, f"{{{ns.WSA}}}MessageID").text = f"urn:uuid:{uuid.uuid4()}"
    etree.SubElement(header, f"{{{ns.WSA}}}To").text = endpoint
    etree.SubElement(env, f"{{{ns.SOAP12_ENV}}}Body").append(body)
    data: bytes = etree.tostring(env, xml_declaration=True, encoding="UTF-8")
    return data


class _RenderedReader:
    """Reads the root part of a rendered response and keeps the values used per entry."""

    def __init__(self) -> None:
        self.used: list[dict[str, str]] = []

    def __call__(self, root: etree._Element) -> ResponseEnvelope:
        child = body_child(root)
        qname = etree.QName(child)
        if qname.localname != "RetrieveRenderedImagingDocumentSetResponse" or (
            qname.namespace not in ns.WADO_WS_NAMESPACES
        ):
            raise MalformedResponse(f"unexpected response element {child.tag}")
        registry = next(
            (c for c in child if isinstance(c.tag, str) and c.tag.endswith("}RegistryResponse")),
            None,
        )
        if registry is None:
            raise MalformedResponse("the response has no RegistryResponse")
        status, errors = read_registry_response(registry)
        entries: list[DocumentEntry] = []
        for item in child.iterchildren(tag=etree.Element):
            if split_tag(item.tag)[1] in (
                "RenderedDocumentResponse", "RenderedDocumentSetResponse", "DocumentResponse"
            ):  # fmt: skip  # names of dcm4che/prose, E.1, E.3 (standards.md §3.9 #3)
                source_id, used = _source_and_used(item)
                entries.append(read_entry(item, document_id=source_id))
                self.used.append(used)
        return ResponseEnvelope(status, errors, tuple(entries), response_action(root))


def _source_and_used(item: etree._Element) -> tuple[str, dict[str, str]]:
    """The source document's id (``SourceDocumentUniqueId``, or ``DocumentUniqueId``, any
    namespace: the first found) and the values used (WADO-WS namespace) of one entry."""
    source: str | None = None
    used: dict[str, str] = {}
    for child in item.iterchildren(tag=etree.Element):
        namespace, name = split_tag(child.tag)
        if source is None and name in ("SourceDocumentUniqueId", "DocumentUniqueId"):
            source = (child.text or "").strip()
        if namespace not in ns.WADO_WS_NAMESPACES:
            continue
        if name == "Region" and len(child):
            corners = {
                split_tag(c.tag)[1].lower(): (c.text or "").strip()
                for c in child.iterchildren(tag=etree.Element)
            }
            used[name] = ",".join(corners.get(c.lower(), "") for c in CORNERS)
        elif name in VALUE_ELEMENTS:
            used[name] = (child.text or "").strip()
    return source or "", used


def retrieve_rendered(
    endpoint: str,
    documents: Sequence[DocumentRequest],
    parameters: RenderedParameters,
    out_dir: Path,
    *,
    action: str = ns.ACTION_RENDERED,
    mtom: bool = False,
    timeout: float = 300.0,
    session: requests.Session | None = None,
    on_document: DocumentCallback | None = None,
) -> RenderedResult:
    """Send one rendered request and save the renderings in ``out_dir``.

    Raises
    ------
    InvalidRequest
        No document, or a Region that is not four values.
    TransportFailure, RemoteFault, MalformedResponse
        As :func:`xdsi.client.requester.exchange`.
    """
    body = envelope(request_element(documents, parameters), endpoint, action)
    reader = _RenderedReader()
    result = exchange(
        session or requests.Session(),
        endpoint,
        body,
        action,
        out_dir,
        mtom=mtom,
        timeout=timeout,
        on_document=on_document,
        read=reader,
    )
    return RenderedResult(result, tuple(reader.used))


__all__ = [
    "RenderedParameters",
    "RenderedResult",
    "envelope",
    "request_element",
    "retrieve_rendered",
]
