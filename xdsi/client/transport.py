"""Posting one SOAP 1.2 request, plain or framed as MTOM (SOAP 1.2 HTTP binding; RFC 3902
``action`` parameter; standards.md §2.2), shared by the RAD-69 and metadata requesters."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

import requests
import urllib3

from xdsi import ns
from xdsi.client.environ import send_settings
from xdsi.client.mtom import media_type, wrap_mtom
from xdsi.errors import TransportFailure

__all__ = ["SOAP_MEDIA_TYPES", "body_chunks", "post_envelope"]

SOAP_MEDIA_TYPES: Final = frozenset(
    {ns.MEDIA_SOAP12, ns.MEDIA_MULTIPART_RELATED, ns.MEDIA_TEXT_XML}
)
"""Content-Types of an answer that is SOAP (a fault included)."""


def post_envelope(
    session: requests.Session,
    endpoint: str,
    envelope: bytes,
    action: str,
    mtom: bool,
    timeout: float,
) -> requests.Response:
    """POST one SOAP 1.2 request (plain, or framed as MTOM) and return the streamed response.

    The caller closes the response (``with response:``).

    Raises
    ------
    TransportFailure
        Connection refused/broken, or an answer that is not SOAP (its Content-Type).
    """
    if mtom:
        framed = wrap_mtom(envelope, action)
        body, content_type = framed.body, framed.content_type
    else:
        # SOAP 1.2 carries the action as a media-type parameter (RFC 3902), as zeep sends it.
        body, content_type = envelope, f'{ns.MEDIA_SOAP12}; charset=utf-8; action="{action}"'
    try:
        # Session.post, but with the environment settings from a cache (xdsi.client.environ).
        prepared = session.prepare_request(
            requests.Request("POST", endpoint, data=body, headers={"Content-Type": content_type})
        )
        settings = send_settings(session, prepared.url or endpoint)
        response = session.send(prepared, timeout=timeout, allow_redirects=True, **settings)
    except requests.RequestException as exc:
        raise TransportFailure(f"cannot reach {endpoint}: {exc}") from exc
    received = response.headers.get("Content-Type")
    if media_type(received) not in SOAP_MEDIA_TYPES:
        response.close()
        raise TransportFailure(
            f"HTTP {response.status_code} {response.reason} from {endpoint} "
            f"with Content-Type {received or '(none)'}"
        )
    return response


def body_chunks(response: requests.Response, size: int) -> Iterator[bytes]:
    """The body of a streamed response, each chunk what one read returned (at most ``size``).

    Not ``response.iter_content``: urllib3 2's ``read(amt)`` keeps reading until it has ``amt``
    bytes, and when the connection is cut short of the Content-Length it raises IncompleteRead
    and drops what it had gathered — up to a whole chunk before the cut, so a document that was
    complete could not be told apart from a cut one.  ``read1`` (urllib3 ≥ 2.2) hands over every
    byte that arrived; the cut is then raised by the next read.

    Raises
    ------
    requests.exceptions.ConnectionError
        The connection was cut mid-body (short of Content-Length, or a chunked body without
        its terminating chunk).
    """
    raw = response.raw
    try:
        while chunk := raw.read1(size, decode_content=True):
            yield chunk
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise requests.exceptions.ConnectionError(f"the body was cut off: {exc}") from exc
