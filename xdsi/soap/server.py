"""Running the endpoint under waitress (the WSGI server xdsi ships with).

waitress de-chunks chunked request bodies before the application sees them and sends responses
of unknown length with ``Transfer-Encoding: chunked``, which is what the streaming MTOM writer
needs.  Its own body limit is set a little above ``max_request_bytes`` so that slightly oversized
requests still get the application's SOAP fault, while grossly oversized ones are cut off by
waitress (HTTP 413) before being read into memory.

Memory and speed while streaming (measured in docs/performance.md, RAD-69 section):

* waitress appends everything a response iterator yields to an in-memory ``BytesIO`` per
  connection and only *seeks* past what it has sent; the buffer is dropped when it reaches
  ``outbuf_high_watermark`` (16 MB by default) and a new one started.  So each streaming
  connection holds up to that much already-sent data.  :data:`OUTBUF_HIGH_WATERMARK` bounds it
  at 4 MB, still four of the 1 MB chunks the store reads.
* glibc's malloc, left to itself, handled the megabyte-sized buffers of a stream badly in two
  ways; :func:`tune_malloc` (glibc only, before waitress starts its threads) fixes both with
  documented ``mallopt`` parameters (mallopt(3)):

  - one arena per thread (up to 8 per core) kept the freed buffer memory per arena: resident
    memory grew by ~20 MB with every whole-study request until each arena had its share
    (~180 MB above idle; the same with a bare WSGI app, so waitress's pattern, not ours).
    ``M_ARENA_MAX = 1``: all threads share the main arena, which reuses the memory.  Python
    allocates with the GIL held, so threads seldom wait for the arena's lock.
  - the dynamic mmap/trim thresholds ended up so low for xdsi's allocation pattern that the
    heap was trimmed and grown again around every chunk: ~47,000 minor page faults per
    whole-study request (185 MB of fresh pages for 210 MB sent; a bare WSGI app: none).
    ``M_MMAP_THRESHOLD = 8 MB`` and ``M_TRIM_THRESHOLD = 16 MB`` fix them above the buffer
    sizes in play: ~350 faults per request, throughput up by about a third, peak memory the
    same.
"""

from __future__ import annotations

import ctypes
import logging
import platform
import threading
from typing import TYPE_CHECKING, Any

import waitress
from waitress import wasyncore

from xdsi.config import Settings

if TYPE_CHECKING:
    from wsgiref.types import WSGIApplication

log = logging.getLogger(__name__)

WAITRESS_BODY_SLACK = 1 << 20
OUTBUF_HIGH_WATERMARK = 4 << 20
"""Per-connection bound of waitress's output buffer (its default: 16 MB; see the module doc)."""
# glibc mallopt(3) parameter numbers (<malloc.h>) and the values create_server sets.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MALLOC_SETTINGS: dict[int, int] = {
    M_ARENA_MAX: 1,
    M_MMAP_THRESHOLD: 8 << 20,
    M_TRIM_THRESHOLD: 16 << 20,
}


def tune_malloc(settings: dict[int, int] = MALLOC_SETTINGS) -> bool:
    """Apply ``settings`` with glibc's ``mallopt``; False where the C library is not glibc or a
    setting is refused (see the module doc for why).

    Arena limits only apply to threads created afterwards: call it before the server's worker
    threads exist (:func:`create_server` does).  It is process-wide and idempotent.
    """
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # no symbol table to look in, or no mallopt
        log.debug("mallopt is not available", exc_info=True)
        return False
    return all([bool(mallopt(param, value)) for param, value in settings.items()])


def create_server(
    app: WSGIApplication, settings: Settings, host: str | None = None, port: int | None = None
) -> Any:
    """A bound, not yet running waitress server; call ``.run()`` to serve, ``.close()`` to stop.

    ``port=0`` picks a free port; the bound one is ``server.effective_port``.
    """
    tune_malloc()
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


def stop_server(server: Any, thread: threading.Thread | None = None, timeout: float = 10.0) -> None:
    """Stop a server made by :func:`create_server`: its listening socket, every connection and
    its worker threads.

    ``server.close()`` alone closes only the listening socket: a connection kept alive (every
    response with Content-Length leaves one open) keeps waitress's loop, and the thread running
    it, going until the client hangs up.  ``thread`` is the thread running ``server.run()``, if
    any: the loop closes everything itself then (it is not thread-safe) and the thread is joined.
    """
    everything = server._map  # waitress's socket map: listener, trigger, connections
    if thread is not None and thread.is_alive():
        try:
            server.trigger.pull_trigger(lambda: wasyncore.close_all(everything))
        except OSError:  # the trigger is closed already: the loop is ending (or ended) on its own
            log.debug("waitress trigger already closed", exc_info=True)
        else:
            thread.join(timeout)
    if everything:
        wasyncore.close_all(everything)  # no loop running (any longer) to do it
    if thread is not None:
        thread.join(timeout)  # its loop ends once the map is empty
    server.task_dispatcher.shutdown()


__all__ = [
    "MALLOC_SETTINGS",
    "OUTBUF_HIGH_WATERMARK",
    "create_server",
    "stop_server",
    "tune_malloc",
]
