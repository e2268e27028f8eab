"""Running the endpoint under waitress (the WSGI server xdsi ships with).

waitress de-chunks chunked request bodies before the application sees them and sends responses
of unknown length with ``Transfer-Encoding: chunked``, which is what the streaming MTOM writer
needs.  Its own body limit is set a little above ``max_request_bytes`` so that slightly oversized
requests still get the application's SOAP fault, while grossly oversized ones are cut off by
waitress (HTTP 413) before being read into memory.

Memory while streaming (measured in docs/performance.md, RAD-69 section):

* waitress appends everything a response iterator yields to an in-memory ``BytesIO`` per
  connection and only *seeks* past what it has sent; the buffer is dropped when it reaches
  ``outbuf_high_watermark`` (16 MB by default) and a new one started.  So each streaming
  connection holds up to that much already-sent data.  :data:`OUTBUF_HIGH_WATERMARK` bounds it
  at 4 MB, still four of the 1 MB chunks the store reads.
* With glibc's default of one malloc arena per thread (up to 8 per core), the megabytes those
  buffers took were kept by the arenas of the threads that had used them: the server's resident
  memory grew by ~20 MB with every whole-study request until each arena had its share (~180 MB
  above idle), the same with a bare WSGI app, so waitress's and not ours.  On glibc,
  :func:`limit_malloc_arenas` makes all threads share the main arena (``mallopt(M_ARENA_MAX,
  1)``, mallopt(3)), which reuses the freed memory: peak memory stays flat from request to
  request and throughput did not change beyond the noise of the machine (Python allocates with
  the GIL held, so threads seldom wait for the shared arena's lock).
"""

from __future__ import annotations

import ctypes
import logging
import platform
from typing import TYPE_CHECKING, Any

import waitress

from xdsi.config import Settings

if TYPE_CHECKING:
    from wsgiref.types import WSGIApplication

log = logging.getLogger(__name__)

WAITRESS_BODY_SLACK = 1 << 20
OUTBUF_HIGH_WATERMARK = 4 << 20
"""Per-connection bound of waitress's output buffer (its default: 16 MB; see the module doc)."""
M_ARENA_MAX = -8
"""glibc ``mallopt`` parameter number of ``M_ARENA_MAX`` (``<malloc.h>``)."""


def limit_malloc_arenas(arenas: int = 1) -> bool:
    """Cap glibc's malloc arenas for threads created from now on; False where not glibc.

    Call it before the server's worker threads exist (:func:`create_server` does).
    """
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(M_ARENA_MAX, arenas))
    except (OSError, AttributeError):  # no symbol table to look in, or no mallopt
        log.debug("mallopt(M_ARENA_MAX) is not available", exc_info=True)
        return False


def create_server(
    app: WSGIApplication, settings: Settings, host: str | None = None, port: int | None = None
) -> Any:
    """A bound, not yet running waitress server; call ``.run()`` to serve, ``.close()`` to stop.

    ``port=0`` picks a free port; the bound one is ``server.effective_port``.
    """
    limit_malloc_arenas()
    return waitress.create_server(
        app,
        host=host if host is not None else settings.http_host,
        port=port if port is not None else settings.http_port,
        threads=settings.threads,
        max_request_body_size=settings.max_request_bytes + WAITRESS_BODY_SLACK,
        outbuf_high_watermark=OUTBUF_HIGH_WATERMARK,
        ident="xdsi",
        clear_untrusted_proxy_headers=True,
    )


__all__ = ["OUTBUF_HIGH_WATERMARK", "create_server", "limit_malloc_arenas"]
