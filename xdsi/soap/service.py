"""The spyne service definition of the Imaging Document Source and how it is invoked.

The operation, its request and its response models are spyne's (``Rad69Service``, names from
the vendored WSDL).  spyne's transport and envelope handling are not used: the WSGI layer
(:mod:`xdsi.soap.app`) has already unwrapped MTOM, parsed the envelope with the hardened parser,
checked the headers and chosen the operation from ``wsa:Action``, none of which spyne does
(libraries.md §1.4, §1.9).  :class:`ServiceRunner` then hands one Body element to spyne's own
pipeline — ``decompose_incoming_envelope`` → ``deserialize`` → ``process_request`` → the
``@rpc`` method — and returns what the method returned.

Deserialization is ours (:meth:`BodyElementSoap12.deserialize`): spyne's generic
``complex_from_element`` costs ~40 µs per DocumentRequest, 16 ms of a 400-document request and
~40 % of the time to the response's first byte, which held RAD-69 under its throughput goal
(docs/performance.md).  :func:`xdsi.soap.convert.request_from_wire` reads the element with lxml
into the model request with the same leniency in ~2 ms.

Dispatch-key caveat (libraries.md §1.3): spyne keys every method by ``{application tns}<name>``
whatever namespace ``_in_message_name`` names, so :class:`BodyElementSoap12` builds that key
from the operation the WSGI layer resolved instead of from the element's own QName.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lxml import etree
from spyne import Application, MethodContext, ServiceBase, rpc
from spyne.error import Fault
from spyne.protocol.soap import Soap12
from spyne.server import ServerBase

from xdsi import ns
from xdsi.model import Outcome, RetrieveImagingDocumentSetRequest
from xdsi.soap import faults, types
from xdsi.soap.convert import request_from_wire

log = logging.getLogger(__name__)

Retrieve = Callable[[RetrieveImagingDocumentSetRequest], Outcome]
"""The RAD-69 transaction bound to its store and settings."""

RAD69_REQUEST = etree.QName(ns.XDSI_B, "RetrieveImagingDocumentSetRequest")
RAD69_RESPONSE = etree.QName(ns.XDS_B, "RetrieveDocumentSetResponse")


@dataclass(frozen=True)
class Handlers:
    """Per-application user context (spyne ``ctx.udc``): the transaction callables."""

    retrieve: Retrieve


class Rad69Service(ServiceBase):  # type: ignore[misc]
    """IHE XDS-I.b Imaging Document Source (RAD TF-2 §4.69; PS3.18 2017b §6.4.1)."""

    @rpc(  # type: ignore[untyped-decorator]
        types.RetrieveImagingDocumentSetRequest,
        _returns=types.RetrieveDocumentSetResponse,
        _body_style="bare",
        _in_message_name=RAD69_REQUEST.text,
        _out_message_name=RAD69_RESPONSE.text,
    )
    def ImagingDocumentSource_RetrieveImagingDocumentSet(  # the WSDL's operation name
        ctx: MethodContext, request: RetrieveImagingDocumentSetRequest
    ) -> Outcome:
        """Run the transaction on the model request, hand the Outcome back.

        ``request`` is already the model request, not the spyne object ``@rpc`` declares:
        :meth:`BodyElementSoap12.deserialize` reads the element itself (see the module's note).
        The return value is deliberately the model :class:`~xdsi.model.Outcome`, not the spyne
        response object: spyne never serializes it (the response is streamed by
        :class:`xdsi.soap.mtom.MtomResponse`, see :mod:`xdsi.soap.convert`), and an Outcome keeps
        the documents' lazy payloads.  ``_returns`` documents the message shape.
        """
        handlers: Handlers = ctx.udc
        return handlers.retrieve(request)


class BodyElementSoap12(Soap12):  # type: ignore[misc]
    """spyne's SOAP 1.2 protocol fed with one Body element the WSGI layer already parsed."""

    def create_in_document(self, ctx: MethodContext, in_string_encoding: Any = None) -> None:
        """Nothing to parse: ``ctx.in_document`` is the checked Body element."""

    def decompose_incoming_envelope(self, ctx: MethodContext, message: Any = None) -> None:
        element: etree._Element = ctx.in_document
        ctx.in_header_doc = None
        ctx.in_body_doc = element
        # The dispatch-key fix: '{application tns}<local name>' (libraries.md §1.3, caveat 2).
        tns = self.app.interface.get_tns()
        ctx.method_request_string = f"{{{tns}}}{etree.QName(element).localname}"

    def deserialize(self, ctx: MethodContext, message: str) -> None:
        """The request element → the model request with our lxml reader, not spyne's
        ``complex_from_element`` (too slow for large requests; see the module's note)."""
        self.event_manager.fire_event("before_deserialize", ctx)
        ctx.in_header = None
        # Bare body style: spyne's process_request wraps in_object in the argument list itself.
        ctx.in_object = request_from_wire(ctx.in_body_doc)
        self.event_manager.fire_event("after_deserialize", ctx)


def make_application() -> Application:
    """The spyne Application holding the service definition."""
    return Application(
        [Rad69Service],
        tns=ns.XDSI_B,
        name="ImagingDocumentSource",
        in_protocol=BodyElementSoap12(),
        out_protocol=Soap12(),
    )


class ServiceRunner(ServerBase):  # type: ignore[misc]
    """Runs spyne's request pipeline in-process on a pre-parsed Body element."""

    transport = "urn:xdsi:in-process"  # spyne wants a transport name; never on the wire

    def __init__(self, handlers: Handlers) -> None:
        super().__init__(make_application())
        self.handlers = handlers

    def call(self, element: etree._Element) -> Outcome:
        """Deserialize ``element`` with spyne, call its ``@rpc`` method, return the Outcome.

        Raises
        ------
        SoapFault
            ``Sender`` when spyne cannot map or deserialize the element, ``Receiver`` when the
            method failed (the exception is logged by spyne and here, never sent).
        """
        ctx = MethodContext(self, MethodContext.SERVER)
        ctx.in_document = element
        ctx.udc = self.handlers
        (ctx,) = self.generate_contexts(ctx)[:1]
        if ctx.in_error is None:
            self.get_in_object(ctx)
        if ctx.in_error is not None:
            raise _client_fault(ctx.in_error)
        self.get_out_object(ctx)
        if ctx.out_error is not None:
            log.error("RAD-69 operation failed: %r", ctx.out_error)
            raise faults.receiver()
        outcome = ctx.out_object[0]
        if not isinstance(outcome, Outcome):
            log.error("RAD-69 operation returned %r, not an Outcome", type(outcome))
            raise faults.receiver()
        return outcome


def _client_fault(error: Exception) -> faults.SoapFault:
    if isinstance(error, Fault) and str(error.faultcode).startswith("Client"):
        return faults.sender(f"The request body could not be read: {error.faultstring}")
    log.error("spyne failed on a request body: %r", error)
    return faults.receiver()


__all__ = ["RAD69_REQUEST", "Handlers", "Rad69Service", "Retrieve", "ServiceRunner"]
