"""MIME header fields of multipart body parts and ``Content-Type`` values, parsed strictly.

* Header blocks (RFC 5322 §2.2, as RFC 2045 §3 and RFC 2046 §5.1.1 use them for body parts):
  ``name ":" value`` lines, field names compared case-insensitively, folded lines unfolded
  (§2.2.3: a line end followed by a space or tab is removed).  The ``Content-*`` fields we read
  may occur once each; a line that is neither a field nor a continuation, or a bare CR, is refused.
* ``Content-Type`` (RFC 2045 §5.1): ``type "/" subtype *(";" attribute "=" value)``; attribute
  names case-insensitive, values a token or an RFC 822 §3.3 quoted-string (``\\`` escapes the next
  character).  What SOAP stacks write beyond the grammar is accepted: white space around ``=``,
  empty parameters (``;;``, a trailing ``;`` as dcm4chee-arc writes before a folded line) and
  unquoted values holding tspecials other than ``;`` (``start=<root@host>``).  Refused: a
  parameter without ``=``, an unterminated quoted string, text after a closing quote, a
  parameter given twice (two readers could take different boundaries).  RFC 2231 names
  (``boundary*``) are other names: no SOAP stack writes them.  A syntactically invalid
  type/subtype reads as ``text/plain`` (RFC 2045 §5.2).

We used :mod:`email` (compat32) before: on a one-document exchange its feed parser and
``get_param`` were most of the client's own CPU time (~25 µs per part header block, ~22 µs per
parameter on the reference machine, against ~2–4 µs here), for a header grammar this small.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from xdsi.errors import MalformedResponse

__all__ = [
    "TEXT_PLAIN",
    "content_type_param",
    "content_type_params",
    "media_type",
    "parse_header_block",
]

TEXT_PLAIN: Final = "text/plain"
"""RFC 2045 §5.2: the type of a part without (or with an invalid) Content-Type."""

_SINGLE: Final = frozenset({"content-type", "content-id", "content-transfer-encoding"})
"""Fields a body part carries at most once (RFC 2045 §4–§7 define one of each)."""
_TSPECIALS: Final = frozenset('()<>@,;:\\"/[]?=')
_TOKEN: Final = frozenset(chr(c) for c in range(33, 127)) - _TSPECIALS
"""RFC 2045 §5.1 token characters: printable US-ASCII without SPACE and tspecials."""
_FIELD_NAME: Final = frozenset(chr(c) for c in range(33, 127)) - {":"}
"""RFC 5322 §3.6.8 ftext."""
_WSP: Final = " \t"


def parse_header_block(raw: bytes) -> dict[str, str]:
    """The fields of one part's header block: lower-case name → unfolded, trimmed value.

    ``raw`` is the block without the empty line that ends it; lines end in CRLF, or LF for
    LF-framed bodies (:class:`~xdsi.client.mtom.MultipartReader`).  Values are decoded as UTF-8
    (RFC 6532; US-ASCII is a subset), undecodable bytes replaced.  For a field other than the
    ``Content-*`` ones read here that occurs more than once, the first wins.

    Raises
    ------
    MalformedResponse
        A line that is neither ``name: value`` nor a continuation (leading space or tab) of one,
        an invalid field name, a bare CR, or ``Content-Type``/``Content-ID``/
        ``Content-Transfer-Encoding`` given twice.
    """
    text = raw.decode("utf-8", "replace").replace("\r\n", "\n")
    if "\r" in text:
        raise MalformedResponse("a multipart part header holds a bare CR")
    fields: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.split("\n"):
        if not line:
            continue  # the final line end
        if line[0] in _WSP:
            if current is None:
                raise MalformedResponse(
                    f"a multipart part header starts with a continuation line: {line[:80]!r}"
                )
            current.append(line)
            continue
        name, colon, value = line.partition(":")
        name = name.rstrip(_WSP)  # RFC 5322 §4.5.3 obsolete syntax: WSP before the colon
        if not colon or not name or not _FIELD_NAME.issuperset(name):
            raise MalformedResponse(f"malformed multipart part header line {line[:80]!r}")
        key = name.lower()
        if key in fields:
            if key in _SINGLE:
                raise MalformedResponse(f"a multipart part carries {name} twice")
            current = []  # a repeated other field: read, then dropped
            continue
        current = fields[key] = [value]
    return {key: "".join(lines).strip(_WSP) for key, lines in fields.items()}


def media_type(content_type: str | None) -> str:
    """The lower-case ``type/subtype`` of a Content-Type value (``""`` if absent or empty).

    A value whose type/subtype is not ``token "/" token`` gives ``text/plain`` (RFC 2045 §5.2:
    the default "be assumed when a syntactically invalid Content-Type header field is
    encountered").  Parameters are not looked at.
    """
    if not content_type:
        return ""
    essence = content_type.split(";", 1)[0].strip(" \t\r\n").lower()
    kind, slash, sub = essence.partition("/")
    if not slash or not kind or not sub or not _TOKEN.issuperset(kind) or not (
        _TOKEN.issuperset(sub)
    ):
        return TEXT_PLAIN
    return essence


def content_type_params(content_type: str) -> Mapping[str, str]:
    """All parameters of a Content-Type value: lower-case name → value (quotes removed).

    Raises
    ------
    MalformedResponse
        For a parameter list that breaks the rules in the module documentation.
    """
    text = content_type.replace("\r\n", "").replace("\n", "")  # unfold (RFC 5322 §2.2.3)
    params: dict[str, str] = {}
    start = text.find(";")
    if start < 0:
        return params
    i, n = start + 1, len(text)
    while i < n:
        while i < n and text[i] in _WSP:
            i += 1
        if i == n:
            break
        if text[i] == ";":  # an empty parameter
            i += 1
            continue
        equals = text.find("=", i)
        semicolon = text.find(";", i)
        if equals < 0 or 0 <= semicolon < equals:
            end = n if semicolon < 0 else semicolon
            raise MalformedResponse(f"Content-Type parameter without a value: {text[i:end]!r}")
        name = text[i:equals].rstrip(_WSP).lower()
        if not name or not _TOKEN.issuperset(name):
            raise MalformedResponse(f"invalid Content-Type parameter name {text[i:equals]!r}")
        i = equals + 1
        while i < n and text[i] in _WSP:
            i += 1
        if i < n and text[i] == '"':
            value, i = _quoted_string(text, i)
            while i < n and text[i] in _WSP:
                i += 1
            if i < n and text[i] != ";":
                raise MalformedResponse(
                    f"text after the quoted value of Content-Type parameter {name!r}"
                )
        else:
            end = text.find(";", i)
            end = n if end < 0 else end
            value = text[i:end].rstrip(_WSP)
            i = end
        if name in params:
            raise MalformedResponse(f"Content-Type parameter {name!r} given twice")
        params[name] = value
    return params


def _quoted_string(text: str, i: int) -> tuple[str, int]:
    """The content of the quoted-string opening at ``text[i]`` and the index after it."""
    out: list[str] = []
    i += 1
    n = len(text)
    while i < n:
        quote = text.find('"', i)
        backslash = text.find("\\", i)
        if quote < 0:
            break
        if 0 <= backslash < quote:
            out.append(text[i:backslash])
            if backslash + 1 >= n:
                break
            out.append(text[backslash + 1])  # quoted-pair: the next character as is
            i = backslash + 2
            continue
        out.append(text[i:quote])
        return "".join(out), quote + 1
    raise MalformedResponse("unterminated quoted string in a Content-Type value")


def content_type_param(content_type: str | None, name: str) -> str | None:
    """The value of parameter ``name`` (any case) of a Content-Type value, trimmed; ``None`` if
    absent or empty.

    Raises
    ------
    MalformedResponse
        For a malformed parameter list (:func:`content_type_params`).
    """
    if not content_type:
        return None
    return content_type_params(content_type).get(name.lower(), "").strip() or None
