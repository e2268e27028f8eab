"""Incoming SOAP 1.2 header processing: WS-Addressing 1.0 and mustUnderstand.

* WS-Addressing 1.0 Core §3 / SOAP Binding §2: ``wsa:Action``, ``To``, ``MessageID``,
  ``ReplyTo``, ``FaultTo``, ``From`` and ``RelatesTo`` are understood (``To`` is read but never
  checked: dicomtrolley sends a fixed bogus URL, standards.md §6).
* SOAP 1.2 Part 1 §5.2.3: any *other* header block targeted at us (no role, ``next`` or
  ``ultimateReceiver``) with ``mustUnderstand`` true is a ``MustUnderstand`` fault (§5.4.8) —
  except ``wsse:Security`` (XUA, IHE ITI-40), which is accepted and logged: authorisation is the
  job of a front proxy, and refusing it would lock out every XUA-enabled consumer.
* The request is answered synchronously, so a non-anonymous ``ReplyTo`` is refused with
  ``wsa:OnlyAnonymousAddressSupported`` (SOAP Binding §6.4.1).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from lxml import etree

from xdsi import ns
from xdsi.soap import faults
from xdsi.soap.envelope import MUST_UNDERSTAND, soap12, wsa

log = logging.getLogger(__name__)

UNDERSTOOD = frozenset(
    wsa(name) for name in ("Action", "To", "MessageID", "ReplyTo", "FaultTo", "From", "RelatesTo")
)
ACCEPTED_UNPROCESSED = frozenset({f"{{{ns.WSSE}}}Security"})
"""Mandatory blocks accepted without processing (logged)."""

_ROLES_WE_PLAY = frozenset({"", ns.SOAP12_ROLE_NEXT, ns.SOAP12_ROLE_ULTIMATE_RECEIVER})
_TRUE = frozenset({"1", "true"})
_SINGLE = tuple(
    (name, wsa(name)) for name in ("Action", "To", "MessageID", "ReplyTo", "FaultTo", "From")
)
"""WS-Addressing 1.0 Core §3.2: each of these occurs at most once (name, Clark name)."""
_ACTION, _TO, _MESSAGE_ID, _REPLY_TO = (wsa(n) for n in ("Action", "To", "MessageID", "ReplyTo"))
_ADDRESS = wsa("Address")


@dataclass(frozen=True)
class AddressingHeaders:
    """The WS-Addressing properties of a request (texts whitespace-stripped)."""

    action: str | None = None
    message_id: str | None = None
    to: str | None = None
    reply_to: str | None = None


def _text(element: etree._Element | None) -> str | None:
    if element is None:
        return None
    return (element.text or "").strip()


def peek_message_id(header: etree._Element | None) -> str | None:
    """The request's MessageID, if readable, for ``RelatesTo`` on a fault (no checks)."""
    if header is None:
        return None
    return _text(header.find(wsa("MessageID"))) or None


def read_headers(header: etree._Element | None) -> AddressingHeaders:
    """Check mustUnderstand and return the WS-Addressing properties of ``header``.

    Raises
    ------
    SoapFault
        ``MustUnderstand`` for unknown mandatory blocks, ``Sender``/``InvalidAddressingHeader``
        for duplicated or unusable addressing headers.
    """
    if header is None:
        return AddressingHeaders()
    not_understood: list[etree.QName] = []
    found: dict[str, list[etree._Element]] = {}  # the addressing blocks, by tag
    for block in header:
        if not isinstance(block.tag, str):
            continue  # comments and processing instructions are not header blocks
        if block.tag in UNDERSTOOD:
            found.setdefault(block.tag, []).append(block)
            continue
        role = (block.get(soap12("role")) or "").strip()
        mandatory = (block.get(MUST_UNDERSTAND) or "").strip().lower() in _TRUE
        if role not in _ROLES_WE_PLAY or not mandatory:
            continue
        if block.tag in ACCEPTED_UNPROCESSED:
            log.info("accepted mandatory header block %s without processing it", block.tag)
            continue
        not_understood.append(etree.QName(block.tag))
    if not_understood:
        raise faults.must_understand(not_understood)
    for name, tag in _SINGLE:
        if len(found.get(tag, ())) > 1:
            raise faults.invalid_addressing_header(
                etree.QName(ns.WSA, name), f"more than one wsa:{name}", "InvalidCardinality"
            )

    def text(tag: str) -> str | None:
        blocks = found.get(tag)
        return _text(blocks[0]) if blocks else None

    reply_to_block = found.get(_REPLY_TO)
    reply_to = _text(reply_to_block[0].find(_ADDRESS)) if reply_to_block else None
    if reply_to and reply_to != ns.WSA_ANONYMOUS:
        raise faults.invalid_addressing_header(
            etree.QName(ns.WSA, "ReplyTo"),
            f"this endpoint answers synchronously only; ReplyTo {reply_to!r} is not anonymous",
            "OnlyAnonymousAddressSupported",
        )
    return AddressingHeaders(
        action=text(_ACTION),
        message_id=text(_MESSAGE_ID) or None,
        to=text(_TO),
        reply_to=reply_to,
    )


__all__ = ["AddressingHeaders", "peek_message_id", "read_headers"]
