"""The WSGI application of the Imaging Document Source endpoint (IHE RAD TF-2 §4.69; PS3.18
2017b §6.4; SOAP 1.2 HTTP binding, SOAP 1.2 Part 2 §7).

Routes on ``Settings.endpoint_path``:

* ``GET ?wsdl`` — the normative WSDL, ``GET ?xsd=<path>`` — its schemas (:mod:`xdsi.soap.wsdl`);
* ``POST`` — one SOAP 1.2 message, plain or MTOM.  The steps, each in its module: read at most
  ``max_request_bytes`` → unwrap MTOM (:mod:`~xdsi.soap.mtom`) → hardened parse
  (:mod:`~xdsi.soap.xmlsafe`) → envelope version → mustUnderstand and WS-Addressing
  (:mod:`~xdsi.soap.addressing`) → operation from ``wsa:Action`` (else the Content-Type action,
  else the Body element; :mod:`~xdsi.soap.operation`) → every request element of the Body to
  that operation (RAD-69: :mod:`~xdsi.soap.rad69`, metadata: :mod:`~xdsi.soap.metadata`) → one
  response whose ``wsa:Action`` pairs with the request's spelling, MTOM when it carries
  documents or the request was MTOM, plain SOAP otherwise (NIST checks MTOM-in ⇒ MTOM-out;
  dicomtrolley reads failures as plain SOAP, standards.md §4).

No traceback reaches the wire: anything unexpected is logged and answered with a generic
Receiver fault.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from lxml import etree

from xdsi import ns
from xdsi.config import Settings
from xdsi.model import Outcome, RetrieveImagingDocumentSetRequest
from xdsi.soap import faults
from xdsi.soap.addressing import peek_message_id, read_headers
from xdsi.soap.envelope import new_envelope, serialize, soap12
from xdsi.soap.metadata import RetrieveInformation, metadata_operation
from xdsi.soap.mtom import MtomResponse, read_request, resolve_xop
from xdsi.soap.operation import Operation, Reply
from xdsi.soap.rad69 import rad69_operation
from xdsi.soap.rendered import RenderTransaction, rendered_operation
from xdsi.soap.service import Retrieve
from xdsi.soap.wsdl import WsdlDocuments
from xdsi.soap.xmlsafe import XmlRejected, parse_xml

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

    from xdsi.store.base import Store
    from xdsi.transactions.metadata_model import (
        MetadataOutcome,
        RetrieveImagingDocumentSetInformationRequest,
    )
    from xdsi.transactions.rendered_model import RenderedOutcome, RetrieveRenderedRequest

log = logging.getLogger(__name__)

SOAP12_CONTENT_TYPE = f"{ns.MEDIA_SOAP12}; charset=utf-8"
XML_CONTENT_TYPE = f"{ns.MEDIA_TEXT_XML}; charset=utf-8"
READ_CHUNK = 64 * 1024
JOIN_BYTES = 4 << 20
"""A reply produced in full (:attr:`Reply.produced`) up to this size is sent as one write."""
_HOST_RE = re.compile(r"[A-Za-z0-9.\-]+(?::[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?")


class _Version11(Exception):
    """A SOAP 1.1 envelope arrived (answered by SOAP 1.2 Part 1 Appendix A)."""


class SoapApplication:
    """WSGI callable serving one Imaging Document Source endpoint."""

    def __init__(
        self,
        settings: Settings,
        operations: Sequence[Operation],
        documents: WsdlDocuments | None = None,
    ) -> None:
        self.settings = settings
        self.endpoint_path = settings.endpoint_path.rstrip("/") or "/"
        self.operations = tuple(operations)
        self.by_action: dict[str, Operation] = {}
        self.by_element: dict[str, Operation] = {}
        for operation in self.operations:
            for action in operation.actions:
                if self.by_action.setdefault(action, operation) is not operation:
                    raise ValueError(f"two operations claim the action {action}")
            for element in operation.request_elements:
                if self.by_element.setdefault(element, operation) is not operation:
                    raise ValueError(f"two operations claim the element {element}")
        self.documents = documents or WsdlDocuments()

    # --- WSGI ---------------------------------------------------------------------------------

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or "/"
        if (path.rstrip("/") or "/") != self.endpoint_path:
            return _plain(start_response, "404 Not Found", "no such endpoint\n")
        method = environ.get("REQUEST_METHOD", "GET").upper()
        if method == "POST":
            return self._post(environ, start_response)
        if method == "GET":
            return self._get(environ, start_response)
        return _plain(
            start_response,
            "405 Method Not Allowed",
            "use POST for SOAP messages, GET ?wsdl for the WSDL\n",
            [("Allow", "GET, POST")],
        )

    # --- GET: WSDL and schemas -------------------------------------------------------------------

    def _get(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        query = environ.get("QUERY_STRING", "")
        params = {k.lower(): v for k, v in parse_qs(query, keep_blank_values=True).items()}
        url = self.endpoint_url(environ)
        try:
            if "wsdl" in params:
                return _xml(start_response, self.documents.wsdl(url))
            if "xsd" in params:
                schema = self.documents.schema(params["xsd"][0], url)
                if schema is None:
                    return _plain(start_response, "404 Not Found", "no such schema\n")
                return _xml(start_response, schema)
        except Exception:
            log.exception("serving the WSDL/XSD failed")
            return _plain(start_response, "500 Internal Server Error", "internal error\n")
        text = f"IHE XDS-I.b Imaging Document Source (RAD-69, SOAP 1.2). WSDL: {url}?wsdl\n"
        return _plain(start_response, "200 OK", text)

    def endpoint_url(self, environ: WSGIEnvironment) -> str:
        """The endpoint's absolute URL as the client addressed it (Host header, PEP 3333)."""
        scheme = environ.get("wsgi.url_scheme", "http")
        host = environ.get("HTTP_HOST", "")
        if not _HOST_RE.fullmatch(host):
            host = f"{environ.get('SERVER_NAME', 'localhost')}:{environ.get('SERVER_PORT', '80')}"
        script = environ.get("SCRIPT_NAME", "").rstrip("/")
        return f"{scheme}://{host}{script}{self.endpoint_path}"

    # --- POST: one SOAP message ------------------------------------------------------------------

    def _post(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        relates_to: str | None = None
        try:
            body = self._read_body(environ)
            message = read_request(environ.get("CONTENT_TYPE"), body)
            try:
                envelope = parse_xml(message.envelope)
            except XmlRejected as exc:
                raise faults.sender(str(exc)) from None
            header, soap_body = _envelope_parts(envelope)
            relates_to = peek_message_id(header)
            resolve_xop(envelope, message.attachments)
            addressing = read_headers(header)
            action = (addressing.action or message.action or "").strip() or None
            operation = self._operation(action, soap_body)
            elements = [
                e
                for e in soap_body
                if isinstance(e.tag, str) and e.tag in operation.request_elements
            ]
            if not elements:
                expected = " or ".join(sorted(operation.request_elements))
                raise faults.sender(f"the SOAP Body carries no {expected} element for this action")
            reply = operation.answer(elements)
            return self._respond(
                start_response,
                operation.reply_action(action),
                reply,
                addressing.message_id,
                message.mtom,
            )
        except _Version11:
            data = faults.soap11_version_mismatch()
            start_response(
                "500 Internal Server Error",
                [("Content-Type", XML_CONTENT_TYPE), ("Content-Length", str(len(data)))],
            )
            return [data]
        except faults.SoapFault as fault:
            return _fault(start_response, fault, relates_to)
        except Exception:
            log.exception("unexpected failure while answering a SOAP request")
            return _fault(start_response, faults.receiver(), relates_to)

    def _read_body(self, environ: WSGIEnvironment) -> bytes:
        """At most ``max_request_bytes`` + 1 bytes of the body (chunked bodies included)."""
        limit = self.settings.max_request_bytes
        declared = environ.get("CONTENT_LENGTH") or ""
        if declared.strip().isdigit() and int(declared) > limit:
            raise _too_large(limit)
        stream = environ["wsgi.input"]
        pieces: list[bytes] = []
        total = 0
        while total <= limit:
            piece = stream.read(min(READ_CHUNK, limit + 1 - total))
            if not piece:
                break
            pieces.append(piece)
            total += len(piece)
        if total > limit:
            raise _too_large(limit)
        return b"".join(pieces)

    def _operation(self, action: str | None, body: etree._Element) -> Operation:
        """The operation named by ``action``, else by the first Body element."""
        if action:
            found = self.by_action.get(action)
            if found is None:
                raise faults.action_not_supported(action)
            return found
        first = next((e for e in body if isinstance(e.tag, str)), None)
        if first is None:
            raise faults.sender("the SOAP Body is empty")
        found = self.by_element.get(first.tag)
        if found is None:
            raise faults.sender(f"no wsa:Action, and {first.tag} is not a request of this service")
        return found

    def _respond(
        self,
        start_response: StartResponse,
        action: str,
        reply: Reply,
        message_id: str | None,
        mtom: bool,
    ) -> Iterable[bytes]:
        envelope, _header, body = new_envelope(action, message_id)
        body.append(reply.element)
        data = serialize(envelope)
        if reply.attachments or mtom:
            package = MtomResponse(data, reply.attachments)
            headers = [("Content-Type", package.content_type)]
            length = package.content_length
            if length is None:  # a part of unknown size (transcoded, from a PACS): chunked
                start_response("200 OK", headers)
                return package
            # Known length (documents sent as stored, spooled renderings): Content-Length keeps
            # the connection open (HTTP/1.1 keep-alive, which waitress ends after a chunked
            # response) and spares waitress framing a copy of every chunk (~10 % of the CPU of
            # a whole-study RAD-69 response).  A part that breaks mid-stream still cuts the
            # connection, leaving the body short of its length.  A small produced package is
            # joined into one write (one send instead of one per part); a spooled part failing
            # to read then becomes a Receiver fault, not a cut connection.
            joined = reply.produced and length <= JOIN_BYTES
            sent: Iterable[bytes] = [b"".join(package)] if joined else package
            start_response("200 OK", [*headers, ("Content-Length", str(length))])
            return sent
        start_response(
            "200 OK", [("Content-Type", SOAP12_CONTENT_TYPE), ("Content-Length", str(len(data)))]
        )
        return [data]


def _too_large(limit: int) -> faults.SoapFault:
    # A Sender fault with HTTP 400 (SOAP 1.2 Part 2 §7.5.1.2), not 413: JAX-WS RI and other SOAP
    # stacks read a fault body only on 400/500 and would report a bare transport error instead.
    return faults.sender(f"the request is larger than the limit of {limit} bytes")


def _envelope_parts(
    envelope: etree._Element,
) -> tuple[etree._Element | None, etree._Element]:
    """Header and Body of a SOAP 1.2 envelope (SOAP 1.2 Part 1 §5.1); version checks first."""
    qname = etree.QName(envelope)
    if qname.localname == "Envelope" and qname.namespace == ns.SOAP11_ENV:
        raise _Version11
    if qname.localname == "Envelope" and qname.namespace != ns.SOAP12_ENV:
        raise faults.version_mismatch(qname.namespace or "")
    if qname.localname != "Envelope":
        raise faults.sender(f"the message is not a SOAP envelope (root element {qname.text})")
    header = envelope.find(soap12("Header"))
    body = envelope.find(soap12("Body"))
    if body is None:
        raise faults.sender("the SOAP envelope has no Body")
    return header, body


def _fault(
    start_response: StartResponse, fault: faults.SoapFault, relates_to: str | None
) -> list[bytes]:
    data = fault.to_envelope(relates_to)
    status = "400 Bad Request" if fault.http_status == 400 else "500 Internal Server Error"
    start_response(
        status, [("Content-Type", SOAP12_CONTENT_TYPE), ("Content-Length", str(len(data)))]
    )
    return [data]


def _xml(start_response: StartResponse, data: bytes) -> list[bytes]:
    start_response(
        "200 OK", [("Content-Type", XML_CONTENT_TYPE), ("Content-Length", str(len(data)))]
    )
    return [data]


def _plain(
    start_response: StartResponse,
    status: str,
    text: str,
    extra: list[tuple[str, str]] | None = None,
) -> list[bytes]:
    data = text.encode("utf-8")
    headers = [("Content-Type", f"{ns.MEDIA_TEXT_PLAIN}; charset=utf-8")]
    headers += [("Content-Length", str(len(data))), *(extra or [])]
    start_response(status, headers)
    return [data]


def make_app(
    settings: Settings,
    store: Store | None = None,
    *,
    retrieve: Retrieve | None = None,
    retrieve_information: RetrieveInformation | None = None,
    warm_metadata: bool = False,
    render: RenderTransaction | None = None,
) -> WSGIApplication:
    """The endpoint's WSGI application.

    Parameters
    ----------
    settings:
        Endpoint path, limits and the transaction's settings.
    store:
        The store the operations answer from (``xdsi.store.open_store(settings)``).
    retrieve:
        Instead of ``store``: the transaction as a callable (tests, other back ends).
    retrieve_information:
        Instead of ``store``: the metadata transaction as a callable; without it and without a
        store the endpoint serves no metadata operation.
    warm_metadata:
        Fill the metadata cache from ``store`` in a background thread, so that first requests
        do not read every header (:func:`xdsi.transactions.metadata.warm_cache`).
    render:
        Instead of ``store``: the rendered transaction as a callable; without it and without a
        store the endpoint serves no rendered operation.
    """
    if retrieve is None:
        if store is None:
            raise TypeError("make_app needs a store or a retrieve callable")
        from xdsi.transactions.rad69 import retrieve_imaging_document_set

        bound_store = store

        def retrieve_from_store(request: RetrieveImagingDocumentSetRequest) -> Outcome:
            return retrieve_imaging_document_set(request, bound_store, settings)

        retrieve = retrieve_from_store
    operations = [rad69_operation(retrieve)]
    if retrieve_information is None and store is not None:
        retrieve_information = _metadata_transaction(settings, store, warm_metadata)
    if retrieve_information is not None:
        operations.append(metadata_operation(retrieve_information))
    if render is None and store is not None:
        render = _rendered_transaction(settings, store)
    if render is not None:
        operations.append(rendered_operation(render))
    return SoapApplication(settings, operations)


def _metadata_transaction(settings: Settings, store: Store, warm: bool) -> RetrieveInformation:
    """The metadata transaction bound to ``store`` and one Native XML cache under data_dir.

    :mod:`xdsi.transactions.metadata` (pydicom, numpy and the Native XML writer: ~50 MB
    resident) is imported by the first metadata request or the warm-up, not here, so that an
    endpoint that is only asked for RAD-69 never carries it (docs/performance.md, RAD-69).
    """
    from xdsi.transactions.metadata_cache import NativeCache

    cache = NativeCache(settings.data_dir, settings.metadata_cache_bytes)
    if warm:
        from xdsi.transactions.metadata import warm_cache

        # A daemon thread: the cache's writes are atomic renames, so stopping the server in the
        # middle leaves at most a temporary file, never a wrong entry.
        threading.Thread(
            target=warm_cache, args=(cache, store), name="xdsi-metadata-warm", daemon=True
        ).start()

    def retrieve_information(
        request: RetrieveImagingDocumentSetInformationRequest,
    ) -> MetadataOutcome:
        from xdsi.transactions.metadata import retrieve_imaging_document_set_information

        return retrieve_imaging_document_set_information(request, store, settings, cache)

    return retrieve_information


def _rendered_transaction(settings: Settings, store: Store) -> RenderTransaction:
    """The rendered transaction bound to ``store``, built on the first rendered request:
    :mod:`xdsi.transactions.rendered` (pydicom, numpy, Pillow, the renderer) stays out of an
    endpoint that is never asked for a rendering (docs/performance.md, RAD-69 memory)."""
    bound: list[RenderTransaction] = []
    lock = threading.Lock()

    def render(request: RetrieveRenderedRequest) -> RenderedOutcome:
        with lock:
            if not bound:
                from xdsi.transactions.rendered import rendered_transaction

                bound.append(rendered_transaction(settings, store))
        return bound[0](request)

    return render


__all__ = ["SoapApplication", "make_app"]
