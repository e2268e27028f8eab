"""Reading a RAD-69 response envelope: faults, RegistryResponse, DocumentResponse entries.

The root SOAP part is parsed with a hardened lxml parser (no DTD, no entities, no network;
design note 14) and read by namespace-qualified names, so prefixes and whitespace do not matter.
Shapes: ``ihe:RetrieveDocumentSetResponse`` (ITI-43 reused by IHE RAD TF-2 §4.69.4.2, standards.md
§2.4), ebRS 3.0 ``rs:RegistryResponse``/``rs:RegistryError`` (PS3.18 2017b §6.4.1.2.1), SOAP 1.2
faults (SOAP 1.2 Part 1 §5.4) and, defensively, SOAP 1.1 faults.
"""

from __future__ import annotations

import binascii
import logging
from dataclasses import dataclass

from lxml import etree

from xdsi import ns
from xdsi.client.mtom import normalize_content_id
from xdsi.errors import MalformedResponse, RemoteFault
from xdsi.model import RegistryError, Severity, Status

log = logging.getLogger(__name__)


def _q(namespace: str, name: str) -> str:
    return f"{{{namespace}}}{name}"


_ENVELOPES = (_q(ns.SOAP12_ENV, "Envelope"), _q(ns.SOAP11_ENV, "Envelope"))
_RESPONSE = _q(ns.XDS_B, "RetrieveDocumentSetResponse")
_REGISTRY_RESPONSE = _q(ns.RS, "RegistryResponse")
_REGISTRY_ERROR = _q(ns.RS, "RegistryError")
_DOCUMENT_RESPONSE = _q(ns.XDS_B, "DocumentResponse")
_DOCUMENT = _q(ns.XDS_B, "Document")
_XOP_INCLUDE = _q(ns.XOP, "Include")


def parse_xml(data: bytes, *, huge_tree: bool = False) -> etree._Element:
    """Parse ``data`` refusing DTDs and entities (SOAP 1.2 Part 1 §5 forbids a DTD anyway).

    ``huge_tree`` lifts libxml2's 10 MB limit on one text node (a metadata XPathResponse holding
    a whole large header); entities stay unexpanded either way.

    Raises
    ------
    MalformedResponse
        If the bytes are not well-formed, DTD-free XML.
    """
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=huge_tree
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise MalformedResponse(f"the response is not well-formed XML: {exc.msg}") from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise MalformedResponse("the response carries a Document Type Declaration")
    return root


@dataclass(frozen=True)
class DocumentEntry:
    """One ``ihe:DocumentResponse`` as found in the envelope, before its bytes are saved."""

    document_unique_id: str
    repository_unique_id: str
    home_community_id: str | None
    mime_type: str
    content_id: str | None
    """The ``xop:Include/@href`` target (normalized), or ``None`` for inline base64."""
    inline: bytes | None
    """The decoded inline ``Document`` (non-MTOM responses), or ``None`` for an XOP reference."""


@dataclass(frozen=True)
class ResponseEnvelope:
    """What the RAD-69 response envelope says, documents not yet resolved."""

    status: Status
    errors: tuple[RegistryError, ...]
    entries: tuple[DocumentEntry, ...]
    action: str | None
    """Trimmed ``wsa:Action`` of the response header (NIST checks it exactly; standards.md §2.2)."""


def body_child(root: etree._Element) -> etree._Element:
    """The first element child of ``env:Body``; raises :class:`RemoteFault` for a fault.

    Raises
    ------
    MalformedResponse
        If ``root`` is not a SOAP envelope or its body is empty.
    RemoteFault
        If the body holds a SOAP 1.2 or SOAP 1.1 fault.
    """
    if root.tag not in _ENVELOPES:
        raise MalformedResponse(f"the response is not a SOAP envelope (root element {root.tag})")
    env_ns = etree.QName(root).namespace or ns.SOAP12_ENV
    body = next(root.iterchildren(_q(env_ns, "Body")), None)
    child = None if body is None else next(body.iterchildren(tag=etree.Element), None)
    if child is None:
        raise MalformedResponse("the SOAP response has an empty Body")
    if child.tag == _q(ns.SOAP12_ENV, "Fault"):
        raise _soap12_fault(child)
    if child.tag == _q(ns.SOAP11_ENV, "Fault"):
        raise RemoteFault(
            _text(child.find("faultcode")), (), _text(child.find("faultstring")) or "(no reason)"
        )
    return child


def _soap12_fault(fault: etree._Element) -> RemoteFault:
    """SOAP 1.2 Part 1 §5.4: Code/Value, nested Subcode/Value, Reason/Text (English first)."""
    code_el = fault.find(_q(ns.SOAP12_ENV, "Code"))
    code = _text(None if code_el is None else code_el.find(_q(ns.SOAP12_ENV, "Value")))
    subcodes: list[str] = []
    node = code_el
    while node is not None:
        node = node.find(_q(ns.SOAP12_ENV, "Subcode"))
        if node is not None:
            subcodes.append(_text(node.find(_q(ns.SOAP12_ENV, "Value"))))
    texts = fault.findall(f"{_q(ns.SOAP12_ENV, 'Reason')}/{_q(ns.SOAP12_ENV, 'Text')}")
    english = [t for t in texts if (t.get(_q(ns.XML, "lang")) or "").lower().startswith("en")]
    chosen = (english or texts or [None])[0]
    return RemoteFault(code or "(no code)", tuple(subcodes), _text(chosen) or "(no reason)")


def read_envelope(root: etree._Element) -> ResponseEnvelope:
    """Read a RAD-69 response envelope (IHE RAD TF-2 §4.69.4.2; ITI-43 response shape).

    Raises
    ------
    RemoteFault
        For a SOAP fault.
    MalformedResponse
        If the body is not a ``RetrieveDocumentSetResponse`` with a valid ``@status``.
    """
    child = body_child(root)
    if child.tag != _RESPONSE:
        raise MalformedResponse(f"unexpected response element {child.tag}")
    registry = child.find(_REGISTRY_RESPONSE)
    if registry is None:
        raise MalformedResponse("the response has no rs:RegistryResponse")
    status, errors = read_registry_response(registry)
    entries = tuple(read_entry(d) for d in child.iterchildren(_DOCUMENT_RESPONSE))
    return ResponseEnvelope(status, errors, entries, response_action(root))


def read_registry_response(
    registry: etree._Element,
) -> tuple[Status, tuple[RegistryError, ...]]:
    """``@status`` and every RegistryError of a RegistryResponse (any element name of type
    ``rs:RegistryResponseType``: the rendered response's is ``wado:RegistryResponse``)."""
    raw_status = (registry.get("status") or "").strip()
    try:
        status = Status(raw_status)
    except ValueError:
        raise MalformedResponse(f"unknown RegistryResponse status {raw_status!r}") from None
    return status, tuple(registry_error(e) for e in registry.iter(_REGISTRY_ERROR))


def registry_error(element: etree._Element) -> RegistryError:
    """One ``rs:RegistryError`` element as a :class:`RegistryError` (ebRS 3.0 rs.xsd)."""
    raw = (element.get("severity") or ns.SEVERITY_ERROR).strip()
    try:
        severity = Severity(raw)
    except ValueError:
        # ebRS 3.0 rs.xsd types severity as a free URI; anything unknown is treated as an error,
        # the safe reading for a requester.
        log.warning("unknown RegistryError severity %r, treated as Error", raw)
        severity = Severity.ERROR
    location = element.get("location")
    return RegistryError(
        error_code=(element.get("errorCode") or "").strip(),
        code_context=element.get("codeContext") or "",
        severity=severity,
        location=location.strip() if location is not None and location.strip() else None,
    )


def read_entry(element: etree._Element, document_id: str | None = None) -> DocumentEntry:
    """One document response: identifiers, media type and the Document (XOP or inline).

    ``document_id`` replaces ``ihe:DocumentUniqueId`` for responses that name the document
    otherwise (the rendered response's ``wado:SourceDocumentUniqueId``).  Of a repeated child
    the first counts.
    """
    children: dict[str, etree._Element] = {}
    for child in element.iterchildren(tag=etree.Element):  # one pass, not a find() per name
        children.setdefault(child.tag, child)

    def child_text(name: str) -> str | None:
        return _text(children.get(_q(ns.XDS_B, name))) or None

    document_uid = document_id if document_id is not None else child_text("DocumentUniqueId")
    repository_uid = child_text("RepositoryUniqueId")
    if not document_uid or not repository_uid:
        raise MalformedResponse("a DocumentResponse lacks DocumentUniqueId or RepositoryUniqueId")
    document = children.get(_DOCUMENT)
    if document is None:
        raise MalformedResponse(f"DocumentResponse {document_uid} has no Document")
    include = next(document.iterchildren(_XOP_INCLUDE), None)
    content_id: str | None = None
    inline: bytes | None = None
    if include is not None:
        href = (include.get("href") or "").strip()
        if not href:
            raise MalformedResponse(f"DocumentResponse {document_uid}: xop:Include without href")
        content_id = normalize_content_id(href)
    else:
        try:
            inline = binascii.a2b_base64("".join((document.text or "").split()), strict_mode=True)
        except binascii.Error as exc:
            raise MalformedResponse(f"DocumentResponse {document_uid}: bad base64: {exc}") from None
    return DocumentEntry(
        document_unique_id=document_uid,
        repository_unique_id=repository_uid,
        home_community_id=child_text("HomeCommunityId"),
        mime_type=child_text("mimeType") or ns.MEDIA_OCTET_STREAM,
        content_id=content_id,
        inline=inline,
    )


def response_action(root: etree._Element) -> str | None:
    """The trimmed ``wsa:Action`` of a response envelope, if any."""
    env_ns = etree.QName(root).namespace or ns.SOAP12_ENV
    header = next(root.iterchildren(_q(env_ns, "Header")), None)
    action = None if header is None else next(header.iterchildren(_q(ns.WSA, "Action")), None)
    return None if action is None else _text(action) or None


def _text(element: etree._Element | None) -> str:
    return "" if element is None else (element.text or "").strip()


__all__ = [
    "DocumentEntry",
    "ResponseEnvelope",
    "body_child",
    "parse_xml",
    "read_entry",
    "read_envelope",
    "read_registry_response",
    "registry_error",
    "response_action",
]
