"""The RAD-69 requester: zeep builds the message from the WSDL, we stream the answer.

IHE RAD TF-2 §4.69 (Retrieve Imaging Document Set), PS3.18 2017b §6.4.1; transport per
standards.md §2.2: SOAP 1.2, WS-Addressing, optionally MTOM.

* The request envelope is built by zeep from the WSDL's types (``RetrieveImagingDocumentSetRequest``
  in ``urn:ihe:rad:xdsi-b:2009``), never from a string template.  The WSDL has ``wsaw:Action``, so
  zeep adds ``wsa:Action``/``wsa:MessageID``/``wsa:To`` itself — adding zeep's
  ``WsAddressingPlugin`` as well would duplicate them (libraries.md §2).
  :class:`AddressingFixes` corrects what zeep gets wrong for us.
* :meth:`Requester.retrieve` posts that envelope with ``requests`` (``stream=True``) and reads
  the response with our streaming reader (:mod:`xdsi.client.receive`): byte-exact files, memory
  bounded whatever the document sizes.  zeep's own response path holds ~7× the payload and strips
  CR/LF at binary part edges (libraries.md §2), so it is offered only as :meth:`Requester.call`.
* ``mtom=True`` sends the request as ``multipart/related`` like Axis2/CXF/JAX-WS consumers do
  (:class:`MtomTransport`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import requests
import zeep
from lxml import etree
from zeep.exceptions import Error as ZeepError
from zeep.exceptions import ValidationError
from zeep.plugins import Plugin
from zeep.wsdl.utils import etree_to_string

from xdsi import ns
from xdsi.client.envelope import read_envelope
from xdsi.client.mtom import content_type_param, wrap_mtom
from xdsi.client.receive import DocumentCallback, EnvelopeReader, read_response
from xdsi.client.result import RetrieveResult
from xdsi.client.transport import body_chunks, post_envelope
from xdsi.errors import InvalidRequest, MalformedResponse, TransportFailure
from xdsi.model import DocumentRequest, RetrieveImagingDocumentSetRequest
from xdsi.resources import wsdl_dir

log = logging.getLogger(__name__)

DEFAULT_WSDL: Final = wsdl_dir() / "wsdl" / "ImagingDocumentSource.wsdl"
"""The WSDL the server serves (RAD-69, rendered, metadata), from the checkout or its installed
copy (``wsdl/SOURCES.md``; :func:`xdsi.resources.wsdl_dir`)."""
BINDING: Final = f"{{{ns.XDSI_B}}}ImagingDocumentSource_Binding"
OPERATION: Final = "ImagingDocumentSource_RetrieveImagingDocumentSet"
CHUNK_SIZE: Final = 64 * 1024
EPILOGUE_LIMIT: Final = 64 * 1024


class AddressingFixes(Plugin):
    """Complete zeep's automatic WS-Addressing headers (it is not a second WsAddressingPlugin).

    * ``wsa:To`` is the endpoint we really post to: ``client.create_message`` takes the address
      from the WSDL's default port (``http://servicelocation/…`` in the vendored file).
    * ``wsa:Action`` gets ``mustUnderstand="true"``: "All <wsa:Action> elements shall have the
      mustUnderstand attribute set" (PS3.18 2017b §6.4); dcm4che's requester does the same.
    """

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    def egress(
        self, envelope: etree._Element, http_headers: dict[str, str], operation: Any, options: Any
    ) -> tuple[etree._Element, dict[str, str]]:
        header = envelope.find(f"{{{ns.SOAP12_ENV}}}Header")
        if header is not None:
            for to in header.iterchildren(f"{{{ns.WSA}}}To"):
                to.text = self.endpoint
            for action in header.iterchildren(f"{{{ns.WSA}}}Action"):
                action.set(f"{{{ns.SOAP12_ENV}}}mustUnderstand", "true")
        return envelope, http_headers


class MtomTransport(zeep.Transport):
    """A zeep Transport that sends every request as an MTOM/XOP package.

    zeep has no way to send MTOM (zeep issue #674; libraries.md §2), and several IHE consumers
    (Axis2, CXF, JAX-WS with ``MTOMFeature``) always do: this override of ``post_xml`` frames the
    envelope zeep serialized as ``multipart/related`` (:func:`~xdsi.client.mtom.wrap_mtom`) so we
    can exercise a server exactly as they do.
    """

    def post_xml(self, address: str, envelope: etree._Element, headers: dict[str, str]) -> Any:
        action = content_type_param(headers.get("Content-Type"), "action")
        framed = wrap_mtom(_serialize(envelope), action)
        headers = {**headers, "Content-Type": framed.content_type}
        return self.post(address, framed.body, headers)  # type: ignore[no-untyped-call]


def zeep_body(request: RetrieveImagingDocumentSetRequest) -> dict[str, Any]:
    """The zeep keyword arguments of a ``RetrieveImagingDocumentSetRequest`` (RAD TF-2
    §4.69.4.1.2): documents grouped by study, then series, in first-seen order."""
    studies: dict[str, dict[str, list[DocumentRequest]]] = {}
    for doc in request.documents:
        studies.setdefault(doc.study_instance_uid, {}).setdefault(
            doc.series_instance_uid, []
        ).append(doc)
    return {
        "StudyRequest": [
            {
                "studyInstanceUID": study,
                "SeriesRequest": [
                    {
                        "seriesInstanceUID": series,
                        "DocumentRequest": [
                            {
                                "HomeCommunityId": d.home_community_id,
                                "RepositoryUniqueId": d.repository_unique_id,
                                "DocumentUniqueId": d.document_unique_id,
                            }
                            for d in docs
                        ],
                    }
                    for series, docs in series_map.items()
                ],
            }
            for study, series_map in studies.items()
        ],
        "TransferSyntaxUIDList": {"TransferSyntaxUID": list(request.transfer_syntax_uids)},
    }


class Requester:
    """An Imaging Document Consumer for one Imaging Document Source endpoint.

    Parameters
    ----------
    endpoint:
        URL of the source's RAD-69 endpoint.
    wsdl:
        Path or URL of the WSDL; default :data:`DEFAULT_WSDL` (then nothing is fetched).
    mtom:
        Send requests as MTOM/XOP packages (Axis2/CXF/JAX-WS style).
    session:
        A :class:`requests.Session` to use (TLS settings, authentication).
    timeout:
        Seconds to wait for the connection and between received bytes.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        wsdl: str | Path | None = None,
        mtom: bool = False,
        session: requests.Session | None = None,
        timeout: float = 300.0,
    ) -> None:
        self.endpoint = endpoint
        self.mtom = mtom
        self.timeout = timeout
        self.session = session or requests.Session()
        transport_class = MtomTransport if mtom else zeep.Transport
        # zeep's functions carry no annotations: the calls below are its typed boundary.
        transport = transport_class(  # type: ignore[no-untyped-call]
            session=self.session, timeout=timeout, operation_timeout=timeout
        )
        try:
            self.client = zeep.Client(  # type: ignore[no-untyped-call]
                str(wsdl or DEFAULT_WSDL),
                transport=transport,
                plugins=[AddressingFixes(endpoint)],
                # No DTDs in WSDL/XSD or messages, no entity expansion (design note 14).
                settings=zeep.Settings(forbid_dtd=True, forbid_entities=True),
            )
            self.service = self.client.create_service(BINDING, endpoint)  # type: ignore[no-untyped-call]
            operation = self.client.wsdl.bindings[BINDING].get(OPERATION)  # type: ignore[no-untyped-call]
        except (OSError, requests.RequestException) as exc:
            raise TransportFailure(f"cannot load the WSDL {wsdl or DEFAULT_WSDL}: {exc}") from exc
        except (ZeepError, KeyError, ValueError) as exc:
            # Not XML, or a WSDL without the RAD-69 binding/operation (zeep: KeyError/ValueError).
            raise InvalidRequest(
                f"{wsdl or DEFAULT_WSDL} is not the RAD-69 Imaging Document Source WSDL: {exc}"
            ) from exc
        self.action: str = operation.abstract.wsa_action or operation.soapaction

    def envelope(self, request: RetrieveImagingDocumentSetRequest) -> bytes:
        """The request envelope as zeep builds it from the WSDL types, serialized.

        Raises
        ------
        InvalidRequest
            If zeep refuses the values (no document, no transfer syntax: RAD TF-2 §4.69.4.1.2).
        """
        try:
            element = self.client.create_message(  # type: ignore[no-untyped-call]
                self.service, OPERATION, **zeep_body(request)
            )
        except ValidationError as exc:
            raise InvalidRequest(f"the RAD-69 request is not valid: {exc}") from exc
        return _serialize(element)

    def retrieve(
        self,
        request: RetrieveImagingDocumentSetRequest,
        out_dir: Path,
        *,
        on_document: DocumentCallback | None = None,
        digest: bool = False,
    ) -> RetrieveResult:
        """Send RAD-69 and stream the documents into ``out_dir`` (byte-exact, bounded memory).

        ``on_document`` is called as each file is complete; ``digest`` adds SHA-256 values.

        Raises
        ------
        TransportFailure
            Connection refused/broken or a non-SOAP HTTP error.
        RemoteFault
            The source answered with a SOAP fault.
        MalformedResponse
            Truncated or unreadable response (no partial file is left behind).
        """
        return exchange(
            self.session,
            self.endpoint,
            self.envelope(request),
            self.action,
            out_dir,
            mtom=self.mtom,
            timeout=self.timeout,
            on_document=on_document,
            digest=digest,
        )

    def call(self, request: RetrieveImagingDocumentSetRequest) -> Any:
        """RAD-69 through zeep's own machinery; returns zeep's response object.

        Functional only: zeep holds the whole response in memory and strips CR/LF at the edges
        of binary parts (libraries.md §2) — use :meth:`retrieve` for files.  zeep's own
        exceptions (``zeep.exceptions.Fault`` …) are passed through unchanged.
        """
        return self.service[OPERATION](**zeep_body(request))


def exchange(
    session: requests.Session,
    endpoint: str,
    body: bytes,
    action: str,
    out_dir: Path,
    *,
    mtom: bool = False,
    timeout: float = 300.0,
    on_document: DocumentCallback | None = None,
    digest: bool = False,
    read: EnvelopeReader = read_envelope,
) -> RetrieveResult:
    """Post one request envelope and stream the documents of the answer into ``out_dir`` (RAD-69
    and the rendered operation: ``read`` reads the operation's response element).

    Raises :class:`TransportFailure`, :class:`~xdsi.errors.RemoteFault` and
    :class:`MalformedResponse` as :meth:`Requester.retrieve` documents.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    response = post_envelope(session, endpoint, body, action, mtom, timeout)
    with response:
        received = response.headers.get("Content-Type")
        chunks = body_chunks(response, CHUNK_SIZE)
        try:
            result = read_response(
                received, chunks, out_dir, on_document=on_document, digest=digest, read=read
            )
        except requests.RequestException as exc:
            # urllib3 reports a connection cut mid-body (chunked or Content-Length) here.
            raise MalformedResponse(f"the response was cut off: {exc}") from exc
        _finish(chunks)
        return result


def _finish(chunks: Iterator[bytes]) -> None:
    """Read what follows the closing delimiter (epilogue, chunked terminator), at most
    :data:`EPILOGUE_LIMIT` bytes, so that a kept-alive connection can serve the next request;
    a longer or broken tail only costs the connection."""
    seen = 0
    try:
        for chunk in chunks:
            seen += len(chunk)
            if seen > EPILOGUE_LIMIT:
                return
    except requests.RequestException:
        return


def _serialize(envelope: etree._Element) -> bytes:
    """zeep's own serialization (UTF-8 with XML declaration), so both send paths agree."""
    data: bytes = etree_to_string(envelope)  # type: ignore[no-untyped-call]
    return data


def request_for(
    documents: Sequence[DocumentRequest], transfer_syntax_uids: Sequence[str]
) -> RetrieveImagingDocumentSetRequest:
    """A :class:`RetrieveImagingDocumentSetRequest` from documents and transfer syntaxes."""
    return RetrieveImagingDocumentSetRequest(tuple(documents), tuple(transfer_syntax_uids))


__all__ = [
    "BINDING",
    "DEFAULT_WSDL",
    "OPERATION",
    "AddressingFixes",
    "MtomTransport",
    "Requester",
    "exchange",
    "request_for",
    "zeep_body",
]
