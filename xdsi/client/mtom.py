"""Streaming ``multipart/related`` (MTOM/XOP) on the requester side.

Reading (RFC 2046 §5.1.1 framing, RFC 2387 ``start``, SOAP MTOM / XOP 1.0):
:class:`MultipartReader` splits a response body that arrives as an iterator of byte chunks into
parts, **without ever holding a whole part in memory**.  The boundary search runs over a buffer
that never grows beyond one input chunk plus the delimiter length: whatever cannot be the start
of a delimiter is handed on at once.  Part bodies come out byte-exact — the CRLF that precedes a
delimiter belongs to the delimiter (RFC 2046 §5.1.1), every other byte to the body.

We cannot use a library here: zeep (requests-toolbelt ``MultipartDecoder``) buffers the whole
body and strips CR/LF at the edges of binary parts (zeep issues #1249/#1481, libraries.md §2),
and :mod:`email`'s parser needs the whole message too.  MIME headers and Content-Type values are
read by :mod:`xdsi.client.mimeheaders`.

Sending: zeep cannot send MTOM at all (zeep issue #674); :func:`wrap_mtom` frames an envelope
the way Axis2 and CXF consumers do (standards.md §2.2, the dcm4chee-arc sample request).
"""

from __future__ import annotations

import binascii
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote

from xdsi import ns
from xdsi.client.mimeheaders import (
    TEXT_PLAIN,
    content_type_param,
    content_type_params,
    media_type,
    parse_header_block,
)
from xdsi.errors import MalformedResponse

MAX_HEADER_BYTES: Final = 64 * 1024
"""Largest preamble or part header block accepted; a hostile body cannot make us buffer more."""

_LWSP: Final = b" \t"


# --- Content-Type and Content-ID handling ---------------------------------------------------------


def normalize_content_id(value: str) -> str:
    """A Content-ID or ``cid:`` URL reduced to the bare, percent-decoded identifier.

    ``<a@b>``, ``a@b``, ``cid:a@b`` and ``cid:a%40b`` all give ``a@b``: the header form carries
    angle brackets or not depending on the sender, and ``cid:`` URLs are percent-encoded
    (RFC 2392 §2; dcm4chee writes ``%3A`` for the ``:`` of ``urn:ihe:…``).
    """
    text = value.strip()
    if text[:4].lower() == "cid:":
        text = text[4:]
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1]
    text = text.strip()
    return unquote(text) if "%" in text else text


def multipart_root(content_type: str) -> tuple[str, str | None]:
    """(boundary, normalized ``start`` Content-ID or ``None``) of a ``multipart/related`` type.

    Raises
    ------
    MalformedResponse
        Without a ``boundary`` parameter, or with a malformed parameter list
        (:func:`~xdsi.client.mimeheaders.content_type_params`).
    """
    params = content_type_params(content_type)
    boundary = params.get("boundary", "").strip()
    if not boundary:
        raise MalformedResponse("multipart/related response without a boundary parameter")
    start = params.get("start", "").strip()
    return boundary, normalize_content_id(start) if start else None


# --- Reading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PartHeaders:
    """The MIME headers of one body part."""

    content_id: str | None
    """Normalized (:func:`normalize_content_id`), ``None`` if the part has no Content-ID."""
    content_type: str
    """The full Content-Type header; RFC 2045 §5.2 default ``text/plain`` when absent."""
    transfer_encoding: str
    """Lower-case Content-Transfer-Encoding; ``binary`` when absent (allowed over HTTP)."""

    @property
    def media_type(self) -> str:
        return media_type(self.content_type)


class Part:
    """One body part: its headers and a single-use iterator over its (decoded) body bytes."""

    def __init__(self, headers: PartHeaders, body: Iterator[bytes]) -> None:
        self.headers = headers
        self._body = body
        self._consumed = False

    def iter_body(self) -> Iterator[bytes]:
        """The body in chunks as they arrive; may be called once."""
        if self._consumed:
            raise RuntimeError("the body of a multipart part can be read only once")
        self._consumed = True
        return self._body

    def drain(self) -> None:
        """Skip what is left of the body (the reader calls this before the next part)."""
        if not self._consumed:
            self._consumed = True
        for _ in self._body:
            pass


class MultipartReader:
    """Incremental RFC 2046 multipart parser over an iterator of byte chunks.

    Parameters
    ----------
    chunks:
        The HTTP body as it arrives (e.g. ``response.iter_content(65536)``).
    boundary:
        The ``boundary`` parameter of the Content-Type.

    Notes
    -----
    Line ends of the framing are CRLF per RFC 2046; bodies framed with bare LF (hand-written
    samples, some test tools) are accepted too, the choice being made once from the first
    boundary line.  Transport padding after a boundary (RFC 2046 §5.1.1) is skipped.

    Raises :class:`~xdsi.errors.MalformedResponse` for a body without the first boundary, an
    oversized or unterminated header block, and a body that ends before the closing delimiter
    (truncated).
    """

    def __init__(self, chunks: Iterable[bytes], boundary: str) -> None:
        if not boundary or len(boundary) > 70:  # RFC 2046 §5.1.1: 1 to 70 characters
            raise MalformedResponse(f"invalid multipart boundary {boundary!r}")
        self._chunks = iter(chunks)
        self._dash_boundary = b"--" + boundary.encode("latin-1")
        # A virtual line end before the body, so a boundary on the very first line is found by
        # the same search as every other one.
        self._buf = bytearray(b"\r\n")
        self._eof = False
        self._eol = b"\r\n"
        self._delimiter = b"\r\n" + self._dash_boundary

    # -- buffer --

    def _fill(self) -> bool:
        """Append the next non-empty chunk to the buffer; False at the end of the body."""
        if self._eof:
            return False
        for chunk in self._chunks:
            if chunk:
                self._buf += chunk
                return True
        self._eof = True
        return False

    def _take(self, n: int) -> bytes:
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    def _find(self, needle: bytes, limit: int, what: str) -> int:
        """Index of ``needle`` in the buffer, reading more as needed, within ``limit`` bytes."""
        start = 0
        while True:
            index = self._buf.find(needle, start)
            if index >= 0:
                return index
            if len(self._buf) > limit:
                raise MalformedResponse(f"multipart {what} longer than {limit} bytes")
            start = max(0, len(self._buf) - len(needle) + 1)
            if not self._fill():
                raise MalformedResponse(f"multipart body truncated in the {what}")

    # -- framing --

    def _skip_preamble(self) -> None:
        index = self._find(b"\n" + self._dash_boundary, MAX_HEADER_BYTES, "preamble")
        del self._buf[: index + 1 + len(self._dash_boundary)]
        # Decide the line-end style from the first boundary line itself.
        line_end = self._find(b"\n", MAX_HEADER_BYTES, "boundary line")
        if line_end == 0 or self._buf[line_end - 1 : line_end] != b"\r":
            self._eol = b"\n"
            self._delimiter = b"\n" + self._dash_boundary

    def _after_delimiter(self) -> bool:
        """Consume what follows a delimiter; True if a part follows, False at the close."""
        while len(self._buf) < 2:
            if not self._fill():
                raise MalformedResponse("multipart body truncated after a boundary")
        if self._buf[:2] == b"--":
            return False
        line_end = self._find(self._eol, MAX_HEADER_BYTES, "boundary line")
        if self._buf[:line_end].strip(_LWSP):
            raise MalformedResponse("unexpected text after a multipart boundary")
        del self._buf[: line_end + len(self._eol)]
        return True

    def _headers(self) -> PartHeaders:
        while len(self._buf) < len(self._eol):
            if not self._fill():
                raise MalformedResponse("multipart body truncated in the part headers")
        if self._buf.startswith(self._eol):  # a part without headers (RFC 2046 §5.1.1)
            raw = b""
        else:
            end = self._find(self._eol * 2, MAX_HEADER_BYTES, "part headers")
            raw = self._take(end + len(self._eol))
        del self._buf[: len(self._eol)]
        fields = parse_header_block(raw)
        cid = fields.get("content-id")
        return PartHeaders(
            content_id=normalize_content_id(cid) if cid else None,
            content_type=fields.get("content-type") or TEXT_PLAIN,
            transfer_encoding=(fields.get("content-transfer-encoding") or "binary").lower(),
        )

    def _body(self) -> Iterator[bytes]:
        """Raw body bytes up to the next delimiter; the buffer stays below chunk + delimiter."""
        keep = len(self._delimiter) - 1
        while True:
            index = self._buf.find(self._delimiter)
            if index >= 0:
                if index:
                    yield self._take(index)
                del self._buf[: len(self._delimiter)]
                return
            if len(self._buf) > keep:
                yield self._take(len(self._buf) - keep)
            if not self._fill():
                raise MalformedResponse(
                    "multipart body truncated: the connection ended inside a part"
                )

    def parts(self) -> Iterator[Part]:
        """The parts in wire order.  Each part's body must be read (or is skipped) before the
        next part is produced."""
        self._skip_preamble()
        if not self._after_delimiter():
            return
        while True:
            headers = self._headers()
            part = Part(headers, _decoded(headers.transfer_encoding, self._body()))
            yield part
            part.drain()
            if not self._after_delimiter():
                return


def _decoded(encoding: str, body: Iterator[bytes]) -> Iterator[bytes]:
    """Undo a Content-Transfer-Encoding (RFC 2045 §6) while streaming.

    ``binary``/``8bit``/``7bit`` pass through untouched — this is where zeep strips CR/LF and we
    do not.  ``base64`` is decoded in 4-character groups; others are refused.
    """
    if encoding in ("binary", "8bit", "7bit"):
        yield from body
        return
    if encoding != "base64":
        raise MalformedResponse(f"unsupported Content-Transfer-Encoding {encoding!r}")
    pending = b""
    for chunk in body:
        pending += b"".join(chunk.split())
        usable = len(pending) - len(pending) % 4
        if usable:
            yield _b64(pending[:usable])
            pending = pending[usable:]
    if pending:
        yield _b64(pending)


def _b64(data: bytes) -> bytes:
    try:
        return binascii.a2b_base64(data, strict_mode=True)
    except binascii.Error as exc:
        raise MalformedResponse(f"invalid base64 in a multipart part: {exc}") from None


# --- Sending ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MtomRequest:
    """A SOAP envelope framed as a one-part MTOM package, ready to post."""

    body: bytes
    content_type: str


def wrap_mtom(envelope: bytes, action: str | None) -> MtomRequest:
    """Frame ``envelope`` as ``multipart/related`` with one ``application/xop+xml`` root part.

    The request carries no binary data, so the package has only the root part; what matters to
    the receiver is the framing (SOAP MTOM §4.3, XOP 1.0 §4.1), written the way Axis2 writes it
    (dcm4chee-arc sample request, standards.md §2.2): ``type``, ``start``, ``start-info`` and the
    SOAP 1.2 ``action`` parameter (RFC 3902) on the HTTP Content-Type.
    """
    token = uuid.uuid4().hex
    boundary = f"MIMEBoundary_{token}"
    root_id = f"0.{token}@{ns.XDS_CID_DOMAIN}"
    part_type = f'{ns.MEDIA_XOP}; charset=UTF-8; type="{ns.MEDIA_SOAP12}"'
    if action:
        part_type += f'; action="{action}"'
    head = (
        f"--{boundary}\r\n"
        f"Content-Type: {part_type}\r\n"
        "Content-Transfer-Encoding: binary\r\n"
        f"Content-ID: <{root_id}>\r\n"
        "\r\n"
    ).encode("ascii")
    tail = f"\r\n--{boundary}--\r\n".encode("ascii")
    content_type = (
        f'{ns.MEDIA_MULTIPART_RELATED}; boundary="{boundary}"; type="{ns.MEDIA_XOP}"; '
        f'start="<{root_id}>"; start-info="{ns.MEDIA_SOAP12}"'
    )
    if action:
        content_type += f'; action="{action}"'
    return MtomRequest(head + envelope + tail, content_type)


__all__ = [
    "MAX_HEADER_BYTES",
    "MtomRequest",
    "MultipartReader",
    "Part",
    "PartHeaders",
    "content_type_param",
    "media_type",
    "multipart_root",
    "normalize_content_id",
    "wrap_mtom",
]
