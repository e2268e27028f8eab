"""Running the endpoint under waitress (the WSGI server xdsi ships with).

waitress de-chunks chunked request bodies before the application sees them and sends responses
of unknown length with ``Transfer-Encoding: chunked``, which is what the streaming MTOM writer
needs.  Its own body limit is set a little above ``max_request_bytes`` so that slightly oversized
requests still get the application's SOAP fault, while grossly oversized ones are cut off by
waitress (HTTP 413) before being read into memory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import waitress

from xdsi.config import Settings

if TYPE_CHECKING:
    from wsgiref.types import WSGIApplication

WAITRESS_BODY_SLACK = 1 << 20


def create_server(
    app: WSGIApplication, settings: Settings, host: str | None = None, port: int | None = None
) -> Any:
    """A bound, not yet running waitress server; call ``.run()`` to serve, ``.close()`` to stop.

    ``port=0`` picks a free port; the bound one is ``server.effective_port``.
    """
    return waitress.create_server(
        app,
        host=host if host is not None else settings.http_host,
        port=port if port is not None else settings.http_port,
        threads=settings.threads,
        max_request_body_size=settings.max_request_bytes + WAITRESS_BODY_SLACK,
        ident="xdsi",
        clear_untrusted_proxy_headers=True,
    )


__all__ = ["create_server"]
