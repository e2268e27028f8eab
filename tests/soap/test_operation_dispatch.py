"""Dispatch among several operations on one endpoint (PS3.18 2017b §6.4; xdsi.soap.operation):
by wsa:Action, else by Body element; the reply's action pairs with the request's spelling."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from lxml import etree

from tests.soap.support import call, envelope, fault_parts
from xdsi import ns
from xdsi.config import Settings
from xdsi.soap.app import SoapApplication
from xdsi.soap.operation import Operation, Reply

ECHO_NS = "urn:example:echo"
OLD_NS = "urn:example:echo-old"


def _echo_operation(seen: list[int]) -> Operation:
    def answer(elements: Sequence[etree._Element]) -> Reply:
        seen.append(len(elements))
        reply = etree.Element(f"{{{ECHO_NS}}}EchoResponse")
        reply.text = ",".join(e.text or "" for e in elements)
        return Reply(reply)

    return Operation(
        name="Echo",
        request_elements=frozenset({f"{{{ECHO_NS}}}Echo", f"{{{OLD_NS}}}Echo"}),
        actions={
            "urn:example:Echo": "urn:example:EchoResponse",
            "urn:old:Echo": "urn:old:EchoResponse",
        },
        answer=answer,
    )


@pytest.fixture
def echo_app(settings: Settings) -> tuple[SoapApplication, list[int]]:
    seen: list[int] = []
    return SoapApplication(settings, [_echo_operation(seen)]), seen


def _reply_action(body: bytes) -> str:
    root = etree.fromstring(body)
    return root.findtext(f"{{{ns.SOAP12_ENV}}}Header/{{{ns.WSA}}}Action") or ""


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        ("urn:example:Echo", "urn:example:EchoResponse"),
        ("urn:old:Echo", "urn:old:EchoResponse"),
        (None, "urn:example:EchoResponse"),  # no action: dispatch by element, advertised spelling
    ],
)
def test_reply_action_pairs_with_the_request_spelling(
    echo_app: tuple[SoapApplication, list[int]], action: str | None, expected: str
) -> None:
    app, seen = echo_app
    body = f'<e:Echo xmlns:e="{ECHO_NS}">a</e:Echo><o:Echo xmlns:o="{OLD_NS}">b</o:Echo>'
    reply = call(app, envelope(body, action=action))
    assert reply.status == 200
    assert _reply_action(reply.body) == expected
    assert seen == [2]  # both spellings of the element went to the one operation, in one call
    answer = etree.fromstring(reply.body).find(f".//{{{ECHO_NS}}}EchoResponse")
    assert answer is not None and answer.text == "a,b"


def test_unknown_action_is_action_not_supported(
    echo_app: tuple[SoapApplication, list[int]],
) -> None:
    app, seen = echo_app
    reply = call(app, envelope(f'<e:Echo xmlns:e="{ECHO_NS}"/>', action="urn:example:Other"))
    code, subcodes, _ = fault_parts(etree.fromstring(reply.body))
    assert reply.status == 400 and code.endswith("Sender")
    assert any(s.endswith("ActionNotSupported") for s in subcodes)
    assert seen == []


def test_action_without_its_element_is_a_sender_fault(
    echo_app: tuple[SoapApplication, list[int]],
) -> None:
    app, seen = echo_app
    reply = call(app, envelope('<x:Other xmlns:x="urn:x"/>', action="urn:example:Echo"))
    code, _, reason = fault_parts(etree.fromstring(reply.body))
    assert reply.status == 400 and code.endswith("Sender")
    assert "Echo" in reason
    assert seen == []


def test_two_operations_claiming_one_action_are_refused(settings: Settings) -> None:
    with pytest.raises(ValueError, match="urn:example:Echo"):
        SoapApplication(settings, [_echo_operation([]), _echo_operation([])])
