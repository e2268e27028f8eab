"""The RAD-69 operation of the endpoint (IHE RAD TF-2 §4.69; PS3.18 2017b §6.4.1).

Each ``iherad:RetrieveImagingDocumentSetRequest`` of the Body goes through spyne
(:class:`~xdsi.soap.service.ServiceRunner`) to the transaction; several request elements in one
Body are answered in one ``ihe:RetrieveDocumentSetResponse`` (their concatenation), written by
:func:`~xdsi.soap.convert.response_to_wire` with one XOP part per document.
"""

from __future__ import annotations

from collections.abc import Sequence

from lxml import etree

from xdsi import ns
from xdsi.soap.convert import merge_outcomes, response_to_wire
from xdsi.soap.operation import Operation, Reply
from xdsi.soap.service import RAD69_REQUEST, Handlers, Retrieve, ServiceRunner


def rad69_operation(retrieve: Retrieve) -> Operation:
    """The RAD-69 :class:`Operation` running ``retrieve`` (the transaction bound to a store)."""
    runner = ServiceRunner(Handlers(retrieve=retrieve))

    def answer(elements: Sequence[etree._Element]) -> Reply:
        outcome = merge_outcomes(runner.call(element) for element in elements)
        element, attachments = response_to_wire(outcome)
        return Reply(element, attachments)

    return Operation(
        name="ImagingDocumentSource_RetrieveImagingDocumentSet",
        request_elements=frozenset({RAD69_REQUEST.text}),
        actions={
            ns.ACTION_RAD69: ns.ACTION_RAD69_RESPONSE,
            # dcm4chee-xds's WSDL until 2013 (standards.md §1); accepted, never advertised.
            ns.ACTION_RAD69_LEGACY: ns.ACTION_RAD69_RESPONSE,
        },
        answer=answer,
    )


__all__ = ["rad69_operation"]
