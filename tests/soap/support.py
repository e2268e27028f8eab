"""Helpers for the SOAP tests: WSGI calls, request envelopes, MTOM packaging and parsing, XSD
validation against the vendored schemas (offline), canonical comparison."""

from __future__ import annotations

import base64
import email.parser
import email.policy
import io
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote
from wsgiref.util import setup_testing_defaults

from lxml import etree

from xdsi import ns

REPO = Path(__file__).resolve().parents[2]
WSDL_DIR = REPO / "wsdl"
GOLDEN = REPO / "samples" / "soap"
ENDPOINT = "/xdsi/ImagingDocumentSource"
STORED_SYNTAXES = (
    ns.TS_EXPLICIT_VR_LE,
    ns.TS_JPEG_LS_LOSSLESS,
    ns.TS_RLE,
    ns.TS_JPEG2000_LOSSLESS,
    ns.TS_JPEG_BASELINE,
    ns.TS_JPEG_LOSSLESS_SV1,
)
"""Every transfer syntax the samples are stored in: requested together, nothing is transcoded."""

NSMAP = {
    "env": ns.SOAP12_ENV,
    "wsa": ns.WSA,
    "xdsb": ns.XDS_B,
    "rs": ns.RS,
    "xop": ns.XOP,
    "iherad": ns.XDSI_B,
}


# --- WSGI -----------------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    def xml(self) -> etree._Element:
        """The SOAP envelope, from a plain or an MTOM reply."""
        if self.content_type.startswith("multipart/related"):
            return parse_multipart(self.content_type, self.body).envelope
        return etree.fromstring(self.body)


def call(
    app: Callable[..., Iterable[bytes]],
    body: bytes = b"",
    content_type: str | None = "application/soap+xml; charset=utf-8",
    method: str = "POST",
    query: str = "",
    path: str = ENDPOINT,
    extra: dict[str, str] | None = None,
) -> Reply:
    """Call a WSGI app in-process, the way waitress would (PEP 3333)."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "HTTP_HOST": "127.0.0.1:8080",
    }
    if content_type is not None:
        environ["CONTENT_TYPE"] = content_type
    environ.update(extra or {})
    setup_testing_defaults(environ)
    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        captured["status"] = int(status.split()[0])
        captured["headers"] = {k.lower(): v for k, v in headers}

    result = app(environ, start_response)
    try:
        data = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return Reply(captured["status"], captured["headers"], data)


# --- Requests -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Doc:
    study: str
    series: str
    sop: str
    repository: str | None = "1.3.6.1.4.1.21367.13.80.110"
    home: str | None = None


def request_element(docs: Sequence[Doc], syntaxes: Sequence[str] = STORED_SYNTAXES) -> str:
    """An ``iherad:RetrieveImagingDocumentSetRequest`` (IHE XSD element order)."""
    studies: dict[str, dict[str, list[Doc]]] = {}
    for d in docs:
        studies.setdefault(d.study, {}).setdefault(d.series, []).append(d)
    out = [
        f'<iherad:RetrieveImagingDocumentSetRequest xmlns:iherad="{ns.XDSI_B}"'
        f' xmlns:xdsb="{ns.XDS_B}">'
    ]
    for study, series_map in studies.items():
        out.append(f'<iherad:StudyRequest studyInstanceUID="{study}">')
        for series, items in series_map.items():
            out.append(f'<iherad:SeriesRequest seriesInstanceUID="{series}">')
            for d in items:
                out.append("<xdsb:DocumentRequest>")
                if d.home is not None:
                    out.append(f"<xdsb:HomeCommunityId>{d.home}</xdsb:HomeCommunityId>")
                if d.repository is not None:
                    out.append(f"<xdsb:RepositoryUniqueId>{d.repository}</xdsb:RepositoryUniqueId>")
                out.append(f"<xdsb:DocumentUniqueId>{d.sop}</xdsb:DocumentUniqueId>")
                out.append("</xdsb:DocumentRequest>")
            out.append("</iherad:SeriesRequest>")
        out.append("</iherad:StudyRequest>")
    out.append("<iherad:TransferSyntaxUIDList>")
    out.extend(f"<iherad:TransferSyntaxUID>{s}</iherad:TransferSyntaxUID>" for s in syntaxes)
    out.append("</iherad:TransferSyntaxUIDList></iherad:RetrieveImagingDocumentSetRequest>")
    return "".join(out)


def envelope(
    body: str,
    action: str | None = ns.ACTION_RAD69,
    message_id: str | None = "urn:uuid:6c0d7a39-3c3e-4b8a-9a56-3f3b1f1d2e01",
    extra_headers: str = "",
    env_ns: str = ns.SOAP12_ENV,
) -> bytes:
    """A SOAP envelope with WS-Addressing headers around ``body``."""
    headers = []
    if action is not None:
        headers.append(f'<wsa:Action s:mustUnderstand="true">{action}</wsa:Action>')
    if message_id is not None:
        headers.append(f"<wsa:MessageID>{message_id}</wsa:MessageID>")
    headers.append("<wsa:To>http://localhost:2647/XdsService/IHEXDSIDocSource.svc</wsa:To>")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<s:Envelope xmlns:s="{env_ns}" xmlns:wsa="{ns.WSA}">'
        f"<s:Header>{''.join(headers)}{extra_headers}</s:Header><s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def mtom_wrap(
    soap: bytes,
    *,
    newline: bytes = b"\r\n",
    with_start: bool = True,
    action_param: str | None = ns.ACTION_RAD69,
    attachments: dict[str, bytes] | None = None,
    start_info_action: bool = False,
    close: bool = True,
) -> tuple[str, bytes]:
    """(Content-Type, body) of an Axis2/CXF-style MTOM request carrying ``soap``."""
    boundary = f"MIMEBoundary_{uuid.uuid4().hex}"
    root_id = f"0.{uuid.uuid4().hex}@apache.org"
    nl = newline
    parts = [
        b"--"
        + boundary.encode()
        + nl
        + b'Content-Type: application/xop+xml; charset=UTF-8; type="application/soap+xml"'
        + nl
        + b"Content-Transfer-Encoding: binary"
        + nl
        + f"Content-ID: <{root_id}>".encode()
        + nl
        + nl
        + soap
    ]
    for cid, data in (attachments or {}).items():
        parts.append(
            nl
            + b"--"
            + boundary.encode()
            + nl
            + b"Content-Type: application/octet-stream"
            + nl
            + b"Content-Transfer-Encoding: binary"
            + nl
            + f"Content-ID: <{cid}>".encode()
            + nl
            + nl
            + data
        )
    body = b"".join(parts) + (nl + b"--" + boundary.encode() + b"--" + nl if close else b"")
    ct = f'multipart/related; type="application/xop+xml"; boundary="{boundary}"'
    if with_start:
        ct += f'; start="<{root_id}>"'
    if start_info_action:
        ct += f'; start-info="application/soap+xml;action=\\"{ns.ACTION_RAD69}\\""'
    else:
        ct += '; start-info="application/soap+xml"'
    if action_param:
        ct += f'; action="{action_param}"'
    return ct, body


# --- Responses ------------------------------------------------------------------------------------


@dataclass
class Package:
    root_headers: dict[str, str]
    envelope: etree._Element
    parts: dict[str, bytes] = field(default_factory=dict)
    part_headers: dict[str, dict[str, str]] = field(default_factory=dict)


def parse_multipart(content_type: str, body: bytes) -> Package:
    """Split an MTOM package byte-exactly (the email parser; zeep strips CR/LF at part edges)."""
    raw = f"Content-Type: {content_type}\r\n\r\n".encode() + body
    message = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(raw)
    assert message.is_multipart(), "not a multipart body"
    assert not message.defects, f"multipart defects: {message.defects}"
    parts = message.get_payload()
    start = message.get_param("start")
    root = parts[0]
    assert start is None or root["Content-ID"] == start, "root part is not the first part"
    xml = root.get_payload(decode=True)
    package = Package({k.lower(): v for k, v in root.items()}, etree.fromstring(xml))
    for part in parts[1:]:
        cid = part["Content-ID"].strip("<>")
        assert cid not in package.parts, f"duplicate Content-ID {cid}"
        package.parts[cid] = part.get_payload(decode=True)
        package.part_headers[cid] = {k.lower(): v for k, v in part.items()}
    return package


def documents(package: Package) -> dict[str, bytes]:
    """DocumentUniqueId → bytes of the referenced part (xop:Include href un-escaped)."""
    out: dict[str, bytes] = {}
    for response in package.envelope.iterfind(".//xdsb:DocumentResponse", NSMAP):
        uid = response.findtext("xdsb:DocumentUniqueId", namespaces=NSMAP)
        href = response.find("xdsb:Document/xop:Include", NSMAP).get("href")
        assert href.startswith("cid:")
        out[uid] = package.parts[unquote(href[4:])]
    return out


def xop_reconstruct(package: Package) -> etree._Element:
    """The XML Infoset of the package: xop:Include replaced by base64 (XOP 1.0 §3.2)."""
    root = etree.fromstring(etree.tostring(package.envelope))
    for include in list(root.iter(f"{{{ns.XOP}}}Include")):
        parent = include.getparent()
        parent.remove(include)
        parent.text = base64.b64encode(package.parts[unquote(include.get("href")[4:])]).decode()
    return root


class _NoNetwork(etree.Resolver):
    def resolve(self, url: str, pubid: str, context: Any) -> Any:
        if url.startswith(("http:", "https:")):
            raise AssertionError(f"schema resolution tried the network: {url}")
        return None


def schema() -> etree.XMLSchema:
    """The vendored RAD-69 request + ITI-43 response schemas, compiled offline."""
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    parser.resolvers.add(_NoNetwork())
    base = WSDL_DIR / "schema" / "IHE"
    xds_b = (base / "XDS.b_DocumentRepository.xsd").as_uri()
    xdsi_b = (base / "XDSI.b_ImagingDocumentSource.xsd").as_uri()
    wrapper = (
        f'<xs:schema xmlns:xs="{ns.XSD}">'
        f'<xs:import namespace="{ns.XDS_B}" schemaLocation="{xds_b}"/>'
        f'<xs:import namespace="{ns.XDSI_B}" schemaLocation="{xdsi_b}"/>'
        "</xs:schema>"
    )
    return etree.XMLSchema(etree.fromstring(wrapper.encode(), parser, base_url=str(base) + "/"))


def body_child(envelope_el: etree._Element) -> etree._Element:
    body = envelope_el.find("env:Body", NSMAP)
    children = [c for c in body if isinstance(c.tag, str)]
    assert len(children) == 1
    return children[0]


def canonical(envelope_el: etree._Element) -> str:
    """C14N of an envelope with generated values (MessageID) replaced by a placeholder."""
    copy = etree.fromstring(etree.tostring(envelope_el))
    for mid in copy.iterfind(".//wsa:MessageID", NSMAP):
        mid.text = "urn:uuid:GENERATED"
    text = etree.tostring(copy, method="c14n2", strip_text=True).decode()
    return re.sub(r"\s+", " ", text)


def fault_parts(envelope_el: etree._Element) -> tuple[str, list[str], str]:
    """(Code value, Subcode values as Clark names, Reason text) of a SOAP 1.2 fault."""
    fault = envelope_el.find("env:Body/env:Fault", NSMAP)
    assert fault is not None, etree.tostring(envelope_el)
    value = fault.find("env:Code/env:Value", NSMAP)
    code = _resolve_qname(value)
    subcodes = []
    node = fault.find("env:Code", NSMAP)
    while (node := node.find("env:Subcode", NSMAP)) is not None:
        subcodes.append(_resolve_qname(node.find("env:Value", NSMAP)))
    text = fault.find("env:Reason/env:Text", NSMAP)
    assert text.get(f"{{{ns.XML}}}lang") == "en"
    return code, subcodes, text.text or ""


def _resolve_qname(value: etree._Element) -> str:
    """Resolve a QName-valued element with its in-scope prefixes (fails if unqualified)."""
    prefix, _, local = (value.text or "").strip().partition(":")
    assert local, f"QName value is not prefixed: {value.text!r}"
    uri = value.nsmap.get(prefix)
    assert uri, f"prefix {prefix!r} not declared in scope"
    return f"{{{uri}}}{local}"
