"""SOAP 1.2 faults (SOAP 1.2 Part 1 §5.4), written with lxml rather than by spyne.

spyne 2.14 writes Subcode values as *unqualified* names and always adds an empty ``env:Role``
(libraries.md §1.5); JAX-WS rejects the former, and a SOAP 1.1 request cannot be answered by it
with the SOAP 1.1 VersionMismatch fault SOAP 1.2 Part 1 Appendix A asks for.  So faults are ours:

* ``env:Code/env:Value`` is one of the five SOAP 1.2 codes; every ``env:Subcode/env:Value`` is a
  namespace-qualified QName whose prefix is declared on the envelope;
* ``env:Reason/env:Text`` carries ``xml:lang="en"``; ``env:Role`` is omitted (we are the ultimate
  receiver, Part 1 §5.4.4);
* HTTP status per SOAP 1.2 Part 2 §7.5.1.2 (Table 20): 400 for ``env:Sender``, 500 otherwise;
* faults are always plain ``application/soap+xml`` even when the request was MTOM: a fault may
  arise before the request could be read as MTOM, no document is carried, and every consumer in
  standards.md §6 parses a plain fault.

Only envelope-level problems become faults (design note 4); per-document problems are
RegistryErrors in a normal response.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

from lxml import etree

from xdsi import ns
from xdsi.soap.envelope import new_envelope, serialize, soap12, wsa
from xdsi.xmlchars import xml_chars


class FaultCode(enum.Enum):
    """The SOAP 1.2 fault codes (Part 1 §5.4.6)."""

    VERSION_MISMATCH = "VersionMismatch"
    MUST_UNDERSTAND = "MustUnderstand"
    DATA_ENCODING_UNKNOWN = "DataEncodingUnknown"
    SENDER = "Sender"
    RECEIVER = "Receiver"


class SoapFault(Exception):
    """An envelope-level problem answered with a SOAP 1.2 fault.

    Parameters
    ----------
    code:
        The top-level ``env:Code/env:Value``.
    reason:
        Human-readable ``env:Reason/env:Text`` (never a traceback).
    subcodes:
        Nested ``env:Subcode/env:Value`` QNames, outermost first.
    detail:
        Elements put into ``env:Detail``.
    not_understood:
        Header block QNames reported as ``env:NotUnderstood`` (Part 1 §5.4.8).
    """

    def __init__(
        self,
        code: FaultCode,
        reason: str,
        *,
        subcodes: Sequence[etree.QName] = (),
        detail: Sequence[etree._Element] = (),
        not_understood: Sequence[etree.QName] = (),
        status: int | None = None,
    ) -> None:
        reason = xml_chars(reason)  # it may quote header values or file content
        super().__init__(reason)
        self._status = status
        self.code = code
        self.reason = reason
        self.subcodes = tuple(subcodes)
        self.detail = tuple(detail)
        self.not_understood = tuple(not_understood)

    @property
    def http_status(self) -> int:
        """SOAP 1.2 Part 2 §7.5.1.2: 400 Bad Request for Sender faults, else 500 (unless the
        fault was raised with an explicit status)."""
        if self._status is not None:
            return self._status
        return 400 if self.code is FaultCode.SENDER else 500

    def to_envelope(self, relates_to: str | None = None) -> bytes:
        """The fault as a complete SOAP 1.2 envelope with WS-Addressing fault headers."""
        prefixes = _prefixes([*self.subcodes, *self.not_understood])
        envelope, header, body = new_envelope(ns.WSA_FAULT_ACTION, relates_to, prefixes)
        for qname in self.not_understood:
            block = etree.SubElement(header, soap12("NotUnderstood"))
            block.set("qname", _prefixed(qname, prefixes))
        fault = etree.SubElement(body, soap12("Fault"))
        parent = etree.SubElement(fault, soap12("Code"))
        etree.SubElement(parent, soap12("Value")).text = "env:" + self.code.value
        for qname in self.subcodes:
            parent = etree.SubElement(parent, soap12("Subcode"))
            etree.SubElement(parent, soap12("Value")).text = _prefixed(qname, prefixes)
        reason = etree.SubElement(fault, soap12("Reason"))
        text = etree.SubElement(reason, soap12("Text"))
        text.set(f"{{{ns.XML}}}lang", "en")
        text.text = self.reason
        if self.detail:
            detail = etree.SubElement(fault, soap12("Detail"))
            detail.extend(self.detail)
        return serialize(envelope)


def _prefixes(qnames: Sequence[etree.QName]) -> dict[str, str]:
    """Prefixes to declare on the envelope so that every QName value is in scope."""
    known = {ns.SOAP12_ENV: "env", ns.WSA: "wsa"}
    extra: dict[str, str] = {}
    for qname in qnames:
        uri = qname.namespace or ""
        if uri and uri not in known and uri not in extra.values():
            extra[f"ns{len(extra)}"] = uri
    return extra


def _prefixed(qname: etree.QName, extra: dict[str, str]) -> str:
    known = {ns.SOAP12_ENV: "env", ns.WSA: "wsa"} | {uri: p for p, uri in extra.items()}
    uri = qname.namespace or ""
    return f"{known[uri]}:{qname.localname}" if uri else qname.localname


# --- the faults the service raises -------------------------------------------------------------


def sender(reason: str, status: int | None = None) -> SoapFault:
    """A malformed or unacceptable message (SOAP 1.2 Part 1 §5.4.6 ``env:Sender``)."""
    return SoapFault(FaultCode.SENDER, reason, status=status)


GENERIC_RECEIVER_REASON = "The service could not process the message (internal error)."


def receiver(reason: str = GENERIC_RECEIVER_REASON) -> SoapFault:
    """A failure on our side; the reason stays generic, the traceback goes to the log only."""
    return SoapFault(FaultCode.RECEIVER, reason)


def action_not_supported(action: str) -> SoapFault:
    """WS-Addressing 1.0 SOAP Binding §6.4.4: unknown ``wsa:Action``."""
    problem = etree.Element(wsa("ProblemAction"), nsmap={"wsa": ns.WSA})
    etree.SubElement(problem, wsa("Action")).text = xml_chars(action)
    return SoapFault(
        FaultCode.SENDER,
        f"The [action] cannot be processed at the receiver: {action!r}",
        subcodes=[etree.QName(ns.WSA, "ActionNotSupported")],
        detail=[problem],
    )


def invalid_addressing_header(header: etree.QName, why: str, subsubcode: str) -> SoapFault:
    """WS-Addressing 1.0 SOAP Binding §6.4.1 ``wsa:InvalidAddressingHeader`` (a ``wsa:`` header)."""
    problem = etree.Element(wsa("ProblemHeaderQName"), nsmap={"wsa": ns.WSA})
    problem.text = f"wsa:{header.localname}"
    return SoapFault(
        FaultCode.SENDER,
        f"A header representing a Message Addressing Property is not valid: {why}",
        subcodes=[etree.QName(ns.WSA, "InvalidAddressingHeader"), etree.QName(ns.WSA, subsubcode)],
        detail=[problem],
    )


def must_understand(blocks: Sequence[etree.QName]) -> SoapFault:
    """SOAP 1.2 Part 1 §5.4.8: mandatory header blocks we do not understand."""
    names = ", ".join(q.text for q in blocks)
    return SoapFault(
        FaultCode.MUST_UNDERSTAND,
        f"One or more mandatory SOAP header blocks not understood: {names}",
        not_understood=blocks,
    )


def version_mismatch(found: str) -> SoapFault:
    """SOAP 1.2 Part 1 §5.4.7 for envelopes in a namespace that is neither 1.1 nor 1.2."""
    return SoapFault(
        FaultCode.VERSION_MISMATCH,
        f"Unsupported envelope namespace {found!r}; this endpoint speaks SOAP 1.2 only",
    )


def soap11_version_mismatch() -> bytes:
    """SOAP 1.2 Part 1 Appendix A: answer a SOAP 1.1 message with a *SOAP 1.1* VersionMismatch
    fault carrying an ``env:Upgrade`` header block that names the SOAP 1.2 envelope, so that the
    1.1 sender can read it and learn what to speak.  Sent as ``text/xml`` with HTTP 500 (SOAP 1.1
    §6.2)."""
    env11 = ns.SOAP11_ENV
    envelope = etree.Element(
        f"{{{env11}}}Envelope", nsmap={"soap11": env11, "env": ns.SOAP12_ENV}
    )
    header = etree.SubElement(envelope, f"{{{env11}}}Header")
    upgrade = etree.SubElement(header, soap12("Upgrade"))
    supported = etree.SubElement(upgrade, soap12("SupportedEnvelope"))
    supported.set("qname", "env:Envelope")
    body = etree.SubElement(envelope, f"{{{env11}}}Body")
    fault = etree.SubElement(body, f"{{{env11}}}Fault")
    # SOAP 1.1 §4.4: faultcode/faultstring are unqualified elements.
    etree.SubElement(fault, "faultcode").text = "soap11:VersionMismatch"
    etree.SubElement(fault, "faultstring").text = (
        "SOAP 1.1 is not supported by this endpoint; use SOAP 1.2"
    )
    return serialize(envelope)


__all__ = [
    "FaultCode",
    "SoapFault",
    "action_not_supported",
    "invalid_addressing_header",
    "must_understand",
    "receiver",
    "sender",
    "soap11_version_mismatch",
    "version_mismatch",
]
