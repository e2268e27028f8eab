"""What the endpoint needs to know of one SOAP operation (PS3.18 2017b §6.4: one endpoint, three
operations told apart by ``wsa:Action``).

Each operation lives in its own module (:mod:`xdsi.soap.rad69`, and the rendered and metadata
operations beside it) and hands :mod:`xdsi.soap.app` an :class:`Operation`: the Body elements it
takes (every namespace spelling found in the wild), the request actions it accepts with the reply
action for each (a reply uses the spelling of its request, standards.md §3.9 #1–2), and a function
that answers the request elements of one message with one :class:`Reply`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from lxml import etree

from xdsi.soap.mtom import Attachment


@dataclass
class Reply:
    """The Body child of a response and the binary parts its ``xop:Include``s reference."""

    element: etree._Element
    attachments: list[Attachment] = field(default_factory=list)
    produced: bool = False
    """The attachments were produced in full before the reply was made (spooled renderings), so
    reading them cannot fail for want of a source: a small reply is joined into one write.
    Whether the reply carries Content-Length depends only on every attachment's size being known
    (RAD-69 documents sent as stored are read while they are sent, with their indexed size)."""


Answer = Callable[[Sequence[etree._Element]], Reply]
"""Answers every request element of one message (all of them this operation's) in one Reply.

Raises :class:`xdsi.soap.faults.SoapFault` for a message that cannot be answered at all; anything
about single documents is a RegistryError inside the Reply."""


@dataclass(frozen=True)
class Operation:
    """One operation of the endpoint."""

    name: str
    """The WSDL operation name, for logs and messages."""
    request_elements: frozenset[str]
    """Clark names (``{namespace}local``) of the Body elements this operation takes."""
    actions: Mapping[str, str]
    """Accepted request ``wsa:Action`` → the reply's ``wsa:Action``.  The first entry is the
    advertised spelling, used when a request names no action."""
    answer: Answer

    def __post_init__(self) -> None:
        if not self.actions or not self.request_elements:
            raise ValueError(f"operation {self.name} needs at least one action and element")

    def reply_action(self, request_action: str | None) -> str:
        """The reply's action: the one paired with the request's spelling, else the default."""
        if request_action is not None and request_action in self.actions:
            return self.actions[request_action]
        return next(iter(self.actions.values()))


__all__ = ["Answer", "Operation", "Reply"]
