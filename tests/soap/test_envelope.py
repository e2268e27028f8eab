"""Envelope-level behaviour: SOAP version, headers, mustUnderstand, action dispatch, faults,
hostile and broken input (SOAP 1.2 Part 1 §5; WS-Addressing 1.0 SOAP Binding §6)."""

from __future__ import annotations

import pytest
from lxml import etree

from tests.soap.conftest import Sample
from tests.soap.support import NSMAP, call, envelope, fault_parts, request_element
from xdsi import ns

SOAP = ns.SOAP12_ENV


def _env(local: str) -> str:
    return f"{{{SOAP}}}{local}"


def _wsa(local: str) -> str:
    return f"{{{ns.WSA}}}{local}"


@pytest.fixture
def one(ct_study: list[Sample]) -> str:
    return request_element([ct_study[0].doc])


def test_reply_headers_are_exact(app, one: str) -> None:
    reply = call(app, envelope(one, message_id="uuid:0000-axis2-style"))
    assert reply.status == 200
    header = reply.xml().find("env:Header", NSMAP)
    action = header.find("wsa:Action", NSMAP)
    assert action.text == ns.ACTION_RAD69_RESPONSE  # no whitespace: NIST compares exactly
    assert action.get(_env("mustUnderstand")) in ("true", "1")
    assert header.findtext("wsa:RelatesTo", namespaces=NSMAP) == "uuid:0000-axis2-style"
    assert header.findtext("wsa:To", namespaces=NSMAP) == ns.WSA_ANONYMOUS
    message_id = header.findtext("wsa:MessageID", namespaces=NSMAP)
    assert message_id.startswith("urn:uuid:")
    again = call(app, envelope(one)).xml().findtext(".//wsa:MessageID", namespaces=NSMAP)
    assert again != message_id


def test_relates_to_echoes_urn_uuid_verbatim(app, one: str) -> None:
    mid = "urn:uuid:3FC3AA9541DB19A2CA1509719154150"
    reply = call(app, envelope(one, message_id=mid))
    assert reply.xml().findtext(".//wsa:RelatesTo", namespaces=NSMAP) == mid


def test_no_message_id_means_no_relates_to(app, one: str) -> None:
    reply = call(app, envelope(one, message_id=None))
    assert reply.status == 200
    assert reply.xml().find(".//wsa:RelatesTo", NSMAP) is None


@pytest.mark.parametrize(
    "action",
    [ns.ACTION_RAD69, f"\n   {ns.ACTION_RAD69}\n ", f"{ns.ACTION_RAD69} ", ns.ACTION_RAD69_LEGACY],
)
def test_action_variants_dispatch(app, one: str, action: str) -> None:
    reply = call(app, envelope(one, action=action))
    assert reply.status == 200
    assert reply.xml().find(".//rs:RegistryResponse", NSMAP).get("status") == ns.STATUS_SUCCESS


def test_action_from_content_type_parameter(app, one: str) -> None:
    ct = f'application/soap+xml; charset=utf-8; action="{ns.ACTION_RAD69}"'
    reply = call(app, envelope(one, action=None), content_type=ct)
    assert reply.status == 200


def test_unknown_content_type_action_is_refused_without_wsa_action(app, one: str) -> None:
    ct = 'application/soap+xml; action="urn:bogus:Action"'
    reply = call(app, envelope(one, action=None), content_type=ct)
    assert reply.status == 400
    _, subcodes, _ = fault_parts(reply.xml())
    assert subcodes == [_wsa("ActionNotSupported")]


@pytest.mark.parametrize("control", ["\x00", "\x01", "\x1f", "\ufffe"])
def test_header_values_xml_cannot_carry_still_give_a_fault(app, one: str, control: str) -> None:
    """A fault quoting a header value with characters XML 1.0 cannot carry (another WSGI server
    than waitress may pass them) is still a well-formed SOAP fault: they are written as U+FFFD
    (found by fuzzing: lxml refused the reason and the request got a bare 500)."""
    action = f"urn:bogus:{control}Action"
    content_type = f'application/soap+xml; action="{action}"'
    reply = call(app, envelope(one, action=None), content_type=content_type)
    assert reply.status == 400
    doc = reply.xml()
    _, subcodes, reason = fault_parts(doc)
    assert subcodes == [_wsa("ActionNotSupported")]
    assert control not in reason  # quoted with repr() there
    problem = doc.findtext(".//wsa:ProblemAction/wsa:Action", namespaces=NSMAP)
    assert problem == "urn:bogus:\ufffdAction"
    start = f"<root{control}@x>"
    mtom = (f'multipart/related; type="application/xop+xml"; boundary="b"; start="{start}"; '
            'start-info="application/soap+xml"')  # fmt: skip
    body = b'--b\r\nContent-ID: <other@x>\r\n\r\n' + envelope(one) + b"\r\n--b--\r\n"
    reply = call(app, body, content_type=mtom)
    assert reply.status == 400
    assert "<root\ufffd@x>" in fault_parts(reply.xml())[2]


def test_body_qname_fallback_without_any_action(app, one: str) -> None:
    reply = call(app, envelope(one, action=None), content_type="application/soap+xml")
    assert reply.status == 200
    assert reply.xml().find(".//rs:RegistryResponse", NSMAP).get("status") == ns.STATUS_SUCCESS


def test_unknown_action_fault_is_ws_addressing_conformant(app, one: str) -> None:
    reply = call(app, envelope(one, action="urn:bogus:Action", message_id="urn:uuid:1-2-3"))
    assert reply.status == 400
    assert reply.content_type.startswith("application/soap+xml")
    doc = reply.xml()
    code, subcodes, _ = fault_parts(doc)
    assert code == _env("Sender")
    assert subcodes == [_wsa("ActionNotSupported")]
    assert (
        doc.findtext("env:Body/env:Fault/env:Detail/wsa:ProblemAction/wsa:Action", namespaces=NSMAP)
        == "urn:bogus:Action"
    )
    assert doc.findtext(".//wsa:Action", namespaces=NSMAP) == ns.WSA_FAULT_ACTION
    assert doc.findtext(".//wsa:RelatesTo", namespaces=NSMAP) == "urn:uuid:1-2-3"
    assert doc.find(".//env:Role", NSMAP) is None


def test_soap11_gets_version_mismatch_with_upgrade(app, one: str) -> None:
    reply = call(app, envelope(one, env_ns=ns.SOAP11_ENV), content_type="text/xml")
    assert reply.status == 500
    doc = reply.xml()
    assert doc.tag == f"{{{ns.SOAP11_ENV}}}Envelope"
    faultcode = doc.find(f"{{{ns.SOAP11_ENV}}}Body/{{{ns.SOAP11_ENV}}}Fault/faultcode")
    prefix, _, local = faultcode.text.partition(":")
    assert (faultcode.nsmap[prefix], local) == (ns.SOAP11_ENV, "VersionMismatch")
    supported = doc.find(f".//{_env('Upgrade')}/{_env('SupportedEnvelope')}")
    prefix, _, local = supported.get("qname").partition(":")
    assert (supported.nsmap[prefix], local) == (SOAP, "Envelope")


def test_other_envelope_namespace_gets_soap12_version_mismatch(app, one: str) -> None:
    reply = call(app, envelope(one, env_ns="urn:not-soap"))
    assert reply.status == 500
    code, _, _ = fault_parts(reply.xml())
    assert code == _env("VersionMismatch")


@pytest.mark.parametrize("flag", ["1", "true", " true "])
def test_unknown_mandatory_header_gets_must_understand(app, one: str, flag: str) -> None:
    extra = f'<x:Secret xmlns:x="urn:example:ext" s:mustUnderstand="{flag}">1</x:Secret>'
    reply = call(app, envelope(one, extra_headers=extra))
    assert reply.status == 500
    doc = reply.xml()
    code, _, _ = fault_parts(doc)
    assert code == _env("MustUnderstand")
    block = doc.find("env:Header/env:NotUnderstood", NSMAP)
    prefix, _, local = block.get("qname").partition(":")
    assert (block.nsmap[prefix], local) == ("urn:example:ext", "Secret")


@pytest.mark.parametrize(
    "extra",
    [
        '<x:Hint xmlns:x="urn:example:ext">optional</x:Hint>',
        '<x:Hint xmlns:x="urn:example:ext" s:mustUnderstand="false">no</x:Hint>',
        '<x:Hint xmlns:x="urn:example:ext" s:mustUnderstand="1" '
        's:role="urn:example:some-other-node">not for us</x:Hint>',
        f'<wsse:Security xmlns:wsse="{ns.WSSE}" s:mustUnderstand="true"><wsse:X/></wsse:Security>',
        f'<wsa:ReplyTo s:mustUnderstand="1"><wsa:Address>{ns.WSA_ANONYMOUS}</wsa:Address>'
        "</wsa:ReplyTo>",
    ],
)
def test_headers_that_are_accepted(app, one: str, extra: str) -> None:
    assert call(app, envelope(one, extra_headers=extra)).status == 200


@pytest.mark.parametrize(
    "content_type", ["text/xml; charset=utf-8", "application/xml", None, "application/soap+xml"]
)
def test_soap12_envelope_under_other_media_types(app, one: str, content_type) -> None:
    """Decision: the envelope namespace, not the media type, decides the SOAP version."""
    reply = call(app, envelope(one), content_type=content_type)
    assert reply.status == 200


def test_all_understood_addressing_headers_may_be_mandatory(app, one: str) -> None:
    extra = "".join(
        f'<wsa:{name} s:mustUnderstand="true">{value}</wsa:{name}>'
        for name, value in (
            ("FaultTo", f"<wsa:Address>{ns.WSA_ANONYMOUS}</wsa:Address>"),
            ("From", "<wsa:Address>urn:example:consumer</wsa:Address>"),
            ("RelatesTo", "urn:uuid:11111111-2222-3333-4444-555555555555"),
        )
    )
    assert call(app, envelope(one, extra_headers=extra)).status == 200


def test_non_anonymous_reply_to_is_refused(app, one: str) -> None:
    extra = "<wsa:ReplyTo><wsa:Address>http://127.0.0.1:9/callback</wsa:Address></wsa:ReplyTo>"
    reply = call(app, envelope(one, extra_headers=extra))
    assert reply.status == 400
    _, subcodes, _ = fault_parts(reply.xml())
    assert subcodes == [_wsa("InvalidAddressingHeader"), _wsa("OnlyAnonymousAddressSupported")]


def test_duplicate_action_is_invalid_cardinality(app, one: str) -> None:
    extra = f"<wsa:Action>{ns.ACTION_RAD69}</wsa:Action>"
    reply = call(app, envelope(one, extra_headers=extra))
    assert reply.status == 400
    _, subcodes, _ = fault_parts(reply.xml())
    assert subcodes == [_wsa("InvalidAddressingHeader"), _wsa("InvalidCardinality")]


BAD_BODIES = {
    "malformed": b"<s:Envelope xmlns:s='" + SOAP.encode() + b"'><s:Body><a></s:Body>",
    "not xml": b"hello, world",
    "empty": b"",
    "not an envelope": b"<RetrieveImagingDocumentSetRequest/>",
    "missing body": f"<s:Envelope xmlns:s='{SOAP}'><s:Header/></s:Envelope>".encode(),
    "empty body": f"<s:Envelope xmlns:s='{SOAP}'><s:Body>  </s:Body></s:Envelope>".encode(),
    "billion laughs": (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
        b'<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">]>'
        b"<s:Envelope xmlns:s='" + SOAP.encode() + b"'><s:Body><x>&lol2;</x></s:Body></s:Envelope>"
    ),
    "xxe": (
        b'<?xml version="1.0"?><!DOCTYPE s [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        b"<s:Envelope xmlns:s='" + SOAP.encode() + b"'><s:Body><x>&xxe;</x></s:Body></s:Envelope>"
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_BODIES))
def test_bad_input_gets_a_sender_fault(app, name: str, ct_study: list[Sample]) -> None:
    reply = call(app, BAD_BODIES[name])
    assert reply.status == 400, reply.body
    code, _, reason = fault_parts(reply.xml())
    assert code == _env("Sender")
    assert "Traceback" not in reason and "root:" not in reply.body.decode("utf-8", "replace")
    # ... and the service keeps serving.
    assert call(app, envelope(request_element([ct_study[0].doc]))).status == 200


def test_xxe_content_never_reaches_the_reply(app) -> None:
    reply = call(app, BAD_BODIES["xxe"])
    assert b"root:" not in reply.body


def test_wrong_namespace_request_element(app, ct_study: list[Sample]) -> None:
    wrong = request_element([ct_study[0].doc]).replace(ns.XDSI_B, "urn:ihe:rad:xdsi-b:2099")
    reply = call(app, envelope(wrong))
    assert reply.status == 400
    code, _, reason = fault_parts(reply.xml())
    assert code == _env("Sender")
    assert "RetrieveImagingDocumentSetRequest" in reason


def test_wrong_namespace_without_action(app, ct_study: list[Sample]) -> None:
    wrong = request_element([ct_study[0].doc]).replace(ns.XDSI_B, "urn:example:wrong")
    reply = call(app, envelope(wrong, action=None))
    assert reply.status == 400


def test_body_larger_than_the_limit(app, settings, one: str) -> None:
    padding = "<!--" + "x" * (settings.max_request_bytes + 10) + "-->"
    reply = call(app, envelope(one + padding))
    assert reply.status == 400
    code, _, reason = fault_parts(reply.xml())
    assert code == _env("Sender")
    assert str(settings.max_request_bytes) in reason


def test_unknown_declared_length_over_limit_is_not_read(app, settings, one: str) -> None:
    """A chunked body (no CONTENT_LENGTH) is read only up to the limit + 1."""
    import io

    class Endless(io.RawIOBase):
        served = 0

        def readable(self) -> bool:
            return True

        def read(self, n: int = -1) -> bytes:
            n = 65536 if n is None or n < 0 else n
            self.served += n
            return b" " * n

    stream = Endless()
    reply = call(app, b"", extra={"CONTENT_LENGTH": "", "wsgi.input": stream})
    assert reply.status == 400
    assert stream.served <= settings.max_request_bytes + 1


def test_unexpected_exception_is_a_generic_receiver_fault(settings, one: str, caplog) -> None:
    from xdsi.soap import make_app

    def broken(request):  # failure injection: a transaction that crashes
        raise RuntimeError("secret internal detail")

    app = make_app(settings, retrieve=broken)
    reply = call(app, envelope(one))
    assert reply.status == 500
    code, _, _ = fault_parts(reply.xml())
    assert code == _env("Receiver")
    assert b"secret internal detail" not in reply.body
    assert b"Traceback" not in reply.body
    assert "secret internal detail" in caplog.text


def test_get_and_other_methods(app) -> None:
    assert call(app, method="GET").status == 200
    assert call(app, method="PUT").status == 405
    assert call(app, method="GET", path="/elsewhere").status == 404


def test_fault_is_well_formed_soap12(app) -> None:
    reply = call(app, b"<<<")
    doc = reply.xml()
    assert doc.tag == _env("Envelope")
    fault = doc.find("env:Body/env:Fault", NSMAP)
    assert [etree.QName(c).localname for c in fault] == ["Code", "Reason"]
