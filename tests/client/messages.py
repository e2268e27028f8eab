"""Builders for RAD-69 response bodies, for the reader tests (the bytes a server would send)."""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from urllib.parse import quote

from xdsi import ns

BOUNDARY = "uuid:f693220a-ef9b-4e62-8d02-f8ea7918b7d9"
ROOT_ID = "root.message@cxf.apache.org"


@dataclass(frozen=True)
class Doc:
    uid: str
    data: bytes
    content_id: str | None = None
    """None: the document is inlined as base64 in the envelope."""
    repository: str = "1.3.6.1.4.1.21367.13.80.110"
    home_community: str | None = None
    mime_type: str = ns.MEDIA_DICOM


def envelope(
    docs: Sequence[Doc],
    status: str = ns.STATUS_SUCCESS,
    errors: Sequence[tuple[str, str, str, str | None]] = (),
    *,
    percent_encode_href: bool = True,
) -> bytes:
    """A SOAP 1.2 RetrieveDocumentSetResponse.

    ``errors`` are (code, context, severity, location) tuples.
    """
    error_xml = ""
    if errors:
        items = "".join(
            f'<rs:RegistryError errorCode="{code}" codeContext="{context}" severity="{severity}"'
            + (f' location="{location}"' if location is not None else "")
            + "/>"
            for code, context, severity, location in errors
        )
        error_xml = f"<rs:RegistryErrorList>{items}</rs:RegistryErrorList>"
    responses = []
    for doc in docs:
        if doc.content_id is None:
            document = base64.b64encode(doc.data).decode("ascii")
        else:
            href = quote(doc.content_id, safe="@") if percent_encode_href else doc.content_id
            document = f'<xop:Include xmlns:xop="{ns.XOP}" href="cid:{href}"/>'
        home = (
            f"<HomeCommunityId>{doc.home_community}</HomeCommunityId>" if doc.home_community else ""
        )
        responses.append(
            f"<DocumentResponse>{home}<RepositoryUniqueId>{doc.repository}</RepositoryUniqueId>"
            f"<DocumentUniqueId>{doc.uid}</DocumentUniqueId><mimeType>{doc.mime_type}</mimeType>"
            f"<Document>{document}</Document></DocumentResponse>"
        )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<soap:Envelope xmlns:soap="{ns.SOAP12_ENV}">'
        f'<soap:Header><Action xmlns="{ns.WSA}">\n  {ns.ACTION_RAD69_RESPONSE}\n</Action>'
        f"</soap:Header><soap:Body>"
        f'<RetrieveDocumentSetResponse xmlns="{ns.XDS_B}" xmlns:rs="{ns.RS}">'
        f'<rs:RegistryResponse status="{status}">{error_xml}</rs:RegistryResponse>'
        + "".join(responses)
        + "</RetrieveDocumentSetResponse></soap:Body></soap:Envelope>"
    ).encode("utf-8")


def multipart(
    root: bytes,
    docs: Sequence[Doc],
    *,
    root_last: bool = False,
    eol: bytes = b"\r\n",
    angle_brackets: bool = True,
    close: bool = True,
    preamble: bytes = b"",
) -> bytes:
    """An MTOM package: the root part plus one binary part per document with a content id."""

    def cid(value: str) -> str:
        return f"<{value}>" if angle_brackets else value

    def part(headers: Sequence[str], body: bytes) -> bytes:
        head = b"--" + BOUNDARY.encode() + eol
        head += b"".join(h.encode("ascii") + eol for h in headers) + eol
        return head + body + eol

    root_part = part(
        [
            f'Content-Type: {ns.MEDIA_XOP}; charset=UTF-8; type="{ns.MEDIA_SOAP12}"',
            "Content-Transfer-Encoding: binary",
            f"Content-ID: {cid(ROOT_ID)}",
        ],
        root,
    )
    binary = [
        part(
            [
                f"Content-Type: {d.mime_type}",
                "Content-Transfer-Encoding: binary",
                f"Content-ID: {cid(d.content_id)}",
            ],
            d.data,
        )
        for d in docs
        if d.content_id is not None
    ]
    parts = [*binary, root_part] if root_last else [root_part, *binary]
    body = preamble + b"".join(parts)
    if close:
        body += b"--" + BOUNDARY.encode() + b"--" + eol
    return body


def content_type(*, start: bool = True) -> str:
    value = f'{ns.MEDIA_MULTIPART_RELATED}; type="{ns.MEDIA_XOP}"; boundary="{BOUNDARY}"'
    if start:
        value += f'; start="<{ROOT_ID}>"'
    return value + f'; start-info="{ns.MEDIA_SOAP12}"'


def chunked(data: bytes, size: int) -> Iterator[bytes]:
    for offset in range(0, len(data), size):
        yield data[offset : offset + size]


def tricky_bytes(seed: int) -> bytes:
    """Binary content with CR/LF at both edges and delimiter look-alikes inside."""
    b = BOUNDARY.encode()
    return (
        b"\r\n\r\nDICM"
        + bytes(range(256)) * 3
        + b"\r\n--"
        + b[:-1]
        + b"\r\n--"
        + b[:-1]
        + b"Z"
        + b"\n--"
        + b
        + b"--"
        + b
        + b"\r\n-"
        + bytes([seed % 256]) * 17
        + b"\r\n--\r\n\r"
        + b"\r\n"
    )
