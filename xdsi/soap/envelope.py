"""Outgoing SOAP 1.2 envelopes with their WS-Addressing reply headers.

Reply headers follow WS-Addressing 1.0 Core §3.4 and SOAP Binding §2.1 as IHE ITI TF-2x
Appendix V applies them: ``wsa:Action`` (``mustUnderstand="true"``, PS3.18 2017b §6.4), a fresh
``wsa:MessageID``, ``wsa:RelatesTo`` = the request's MessageID when one was readable and ``wsa:To``
= anonymous (as CXF writes it, standards.md §2.2).  The Action text is written without surrounding
whitespace because the NIST test engine compares it exactly.
"""

from __future__ import annotations

import uuid

from lxml import etree

from xdsi import ns

NSMAP = {"env": ns.SOAP12_ENV, "wsa": ns.WSA}


def soap12(local: str) -> str:
    """Clark name of a SOAP 1.2 envelope element (``{env}local``)."""
    return f"{{{ns.SOAP12_ENV}}}{local}"


def wsa(local: str) -> str:
    """Clark name of a WS-Addressing 1.0 element."""
    return f"{{{ns.WSA}}}{local}"


MUST_UNDERSTAND = soap12("mustUnderstand")


def new_message_id() -> str:
    """A fresh ``urn:uuid:`` MessageID (WS-Addressing 1.0 Core §3.4 recommends a UUID URI)."""
    return uuid.uuid4().urn


def new_envelope(
    action: str,
    relates_to: str | None,
    extra_nsmap: dict[str, str] | None = None,
) -> tuple[etree._Element, etree._Element, etree._Element]:
    """Build ``env:Envelope`` with reply headers; return (envelope, header, body)."""
    nsmap = {**NSMAP, **(extra_nsmap or {})}
    envelope = etree.Element(soap12("Envelope"), nsmap=nsmap)
    header = etree.SubElement(envelope, soap12("Header"))
    action_el = etree.SubElement(header, wsa("Action"))
    action_el.set(MUST_UNDERSTAND, "true")
    action_el.text = action
    etree.SubElement(header, wsa("MessageID")).text = new_message_id()
    if relates_to:
        # Echoed verbatim, whatever its form (``uuid:…`` from Axis2, ``urn:uuid:…`` elsewhere).
        etree.SubElement(header, wsa("RelatesTo")).text = relates_to
    etree.SubElement(header, wsa("To")).text = ns.WSA_ANONYMOUS
    body = etree.SubElement(envelope, soap12("Body"))
    return envelope, header, body


def serialize(envelope: etree._Element) -> bytes:
    """UTF-8 bytes with an XML declaration (accepted by every consumer in standards.md §6)."""
    data: bytes = etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")
    return data


__all__ = ["MUST_UNDERSTAND", "new_envelope", "new_message_id", "serialize", "soap12", "wsa"]
