"""RAD-69 request/response formats (IHE RAD TF-2 §4.69.4; PS3.18 2017b §6.4.1; MTOM wire format of
standards.md §2.2), in-process; every emitted response is validated against the vendored XSDs."""

from __future__ import annotations

import re

import pytest
from lxml import etree

from tests.soap.conftest import Sample
from tests.soap.support import (
    NSMAP,
    Doc,
    body_child,
    call,
    documents,
    envelope,
    fault_parts,
    mtom_wrap,
    parse_multipart,
    request_element,
    schema,
    xop_reconstruct,
)
from xdsi import ns


@pytest.fixture(scope="module")
def xsd() -> etree.XMLSchema:
    return schema()


def _valid(xsd: etree.XMLSchema, element: etree._Element) -> None:
    assert xsd.validate(element), xsd.error_log


def _status(doc: etree._Element) -> str:
    return doc.find(".//rs:RegistryResponse", NSMAP).get("status")


def test_success_returns_the_stored_bytes(app, ct_study: list[Sample], xsd) -> None:
    reply = call(app, envelope(request_element([s.doc for s in ct_study])))
    assert reply.status == 200
    assert reply.content_type.startswith("multipart/related")
    package = parse_multipart(reply.content_type, reply.body)
    assert _status(package.envelope) == ns.STATUS_SUCCESS
    got = documents(package)
    assert got == {s.doc.sop: s.data for s in ct_study}
    _valid(xsd, body_child(xop_reconstruct(package)))


def test_mtom_wire_format(app, ct_study: list[Sample]) -> None:
    reply = call(app, envelope(request_element([ct_study[0].doc])))
    ct = reply.content_type
    for needed in (
        'type="application/xop+xml"',
        "boundary=",
        "start=",
        'start-info="application/soap+xml"',
    ):
        assert needed in ct
    package = parse_multipart(ct, reply.body)
    assert package.root_headers["content-type"] == (
        'application/xop+xml; charset=UTF-8; type="application/soap+xml"'
    )
    assert package.root_headers["content-transfer-encoding"] == "binary"
    (cid,) = package.parts
    assert cid.endswith("@" + ns.XDS_CID_DOMAIN) and ct_study[0].doc.sop in cid
    headers = package.part_headers[cid]
    assert headers["content-type"] == ns.MEDIA_DICOM
    assert headers["content-transfer-encoding"] == "binary"
    href = package.envelope.find(".//xop:Include", NSMAP).get("href")
    assert href.startswith("cid:") and "%3A" in href and ":" not in href[4:]
    order = [
        etree.QName(c).localname for c in package.envelope.find(".//xdsb:DocumentResponse", NSMAP)
    ]
    assert order == ["RepositoryUniqueId", "DocumentUniqueId", "mimeType", "Document"]


def test_same_uid_twice_gets_distinct_content_ids(app, ct_study: list[Sample]) -> None:
    doc = ct_study[0].doc
    reply = call(app, envelope(request_element([doc, doc])))
    package = parse_multipart(reply.content_type, reply.body)
    assert len(package.parts) == 2
    hrefs = [i.get("href") for i in package.envelope.iterfind(".//xop:Include", NSMAP)]
    assert len(set(hrefs)) == 2
    assert all(p == ct_study[0].data for p in package.parts.values())


def test_home_community_id_echoed_only_when_sent(app, ct_study: list[Sample], xsd) -> None:
    a, b = ct_study[0].doc, ct_study[1].doc
    with_home = Doc(a.study, a.series, a.sop, home="urn:oid:1.3.6.1.4.1.21367.13.70.200")
    reply = call(app, envelope(request_element([with_home, b])))
    package = parse_multipart(reply.content_type, reply.body)
    responses = {
        r.findtext("xdsb:DocumentUniqueId", namespaces=NSMAP): r
        for r in package.envelope.iterfind(".//xdsb:DocumentResponse", NSMAP)
    }
    first = [etree.QName(c).localname for c in responses[a.sop]]
    assert first == [
        "HomeCommunityId",
        "RepositoryUniqueId",
        "DocumentUniqueId",
        "mimeType",
        "Document",
    ]
    assert responses[a.sop].findtext("xdsb:HomeCommunityId", namespaces=NSMAP) == with_home.home
    assert responses[b.sop].find("xdsb:HomeCommunityId", NSMAP) is None
    _valid(xsd, body_child(xop_reconstruct(package)))


def test_partial_success(app, ct_study: list[Sample], xsd) -> None:
    good = ct_study[0].doc
    missing = Doc(good.study, good.series, good.sop + ".999")
    reply = call(app, envelope(request_element([good, missing])))
    package = parse_multipart(reply.content_type, reply.body)
    assert _status(package.envelope) == ns.STATUS_PARTIAL_SUCCESS
    errors = package.envelope.findall(".//rs:RegistryError", NSMAP)
    assert [e.get("location") for e in errors] == [missing.sop]
    error_list = package.envelope.find(".//rs:RegistryErrorList", NSMAP)
    assert error_list.get("highestSeverity") == ns.SEVERITY_ERROR
    assert errors[0].get("severity") == ns.SEVERITY_ERROR and errors[0].get("codeContext")
    assert list(documents(package)) == [good.sop]
    _valid(xsd, body_child(xop_reconstruct(package)))


def test_failure_to_a_plain_request_is_plain(app, ct_study: list[Sample], xsd) -> None:
    good = ct_study[0].doc
    reply = call(app, envelope(request_element([Doc(good.study, good.series, "1.2.3.4.5.6")])))
    assert reply.status == 200
    assert reply.content_type.startswith("application/soap+xml")
    doc = reply.xml()
    assert _status(doc) == ns.STATUS_FAILURE
    assert (
        doc.find(".//rs:RegistryError", NSMAP).get("errorCode") == ns.XDS_DOCUMENT_UNIQUE_ID_ERROR
    )
    _valid(xsd, body_child(doc))


def test_unknown_repository_is_a_registry_error_not_a_fault(app, ct_study: list[Sample]) -> None:
    d = ct_study[0].doc
    reply = call(
        app, envelope(request_element([Doc(d.study, d.series, d.sop, repository="1.2.3")]))
    )
    assert reply.status == 200
    doc = reply.xml()
    assert _status(doc) == ns.STATUS_FAILURE
    assert doc.find(".//rs:RegistryError", NSMAP).get("errorCode") == ns.XDS_UNKNOWN_REPOSITORY_ID


def test_failure_to_an_mtom_request_is_mtom(app, ct_study: list[Sample], xsd) -> None:
    good = ct_study[0].doc
    soap = envelope(request_element([Doc(good.study, good.series, "1.2.3.4.5.6")]))
    ct, body = mtom_wrap(soap)
    reply = call(app, body, content_type=ct)
    assert reply.status == 200
    package = parse_multipart(reply.content_type, reply.body)
    assert package.parts == {}
    assert _status(package.envelope) == ns.STATUS_FAILURE
    _valid(xsd, body_child(package.envelope))


@pytest.mark.parametrize("newline", [b"\r\n", b"\n"])
@pytest.mark.parametrize("declaration", [True, False])
@pytest.mark.parametrize("with_start", [True, False])
def test_mtom_request_variants(
    app, ct_study: list[Sample], newline, declaration, with_start
) -> None:
    soap = envelope(request_element([ct_study[0].doc]))
    if not declaration:
        soap = soap.split(b"?>", 1)[1].lstrip()
    ct, body = mtom_wrap(soap, newline=newline, with_start=with_start)
    reply = call(app, body, content_type=ct)
    assert reply.status == 200, reply.body[:2000]
    package = parse_multipart(reply.content_type, reply.body)
    assert documents(package) == {ct_study[0].doc.sop: ct_study[0].data}


def test_jaxws_style_action_only_in_start_info(app, ct_study: list[Sample]) -> None:
    soap = envelope(request_element([ct_study[0].doc]), action=None)
    ct, body = mtom_wrap(soap, action_param=None, start_info_action=True)
    assert "action=" not in ct.replace('action=\\"', "")
    reply = call(app, body, content_type=ct)
    assert reply.status == 200


def test_jaxws_style_unknown_action_in_start_info(app, ct_study: list[Sample]) -> None:
    soap = envelope(request_element([ct_study[0].doc]), action=None)
    ct, body = mtom_wrap(soap, action_param=None, start_info_action=True)
    ct = ct.replace(ns.ACTION_RAD69, "urn:bogus")
    assert call(app, body, content_type=ct).status == 400


def test_xop_include_in_the_request_is_resolved(app, ct_study: list[Sample]) -> None:
    d = ct_study[0].doc
    element = request_element([d]).replace(
        f"<xdsb:DocumentUniqueId>{d.sop}</xdsb:DocumentUniqueId>",
        f'<xdsb:DocumentUniqueId><xop:Include xmlns:xop="{ns.XOP}" href="cid:uid%40x"/>'
        "</xdsb:DocumentUniqueId>",
    )
    ct, body = mtom_wrap(envelope(element), attachments={"uid@x": b"\x00binary\r\n"})
    reply = call(app, body, content_type=ct)
    # The include was replaced by base64 text (XOP 1.0 §3.2): not a UID, so a RegistryError
    # for that document, not a fault.
    assert reply.status == 200
    assert _status(reply.xml()) == ns.STATUS_FAILURE


@pytest.mark.parametrize("case", ["truncated", "missing start part", "no boundary", "dangling xop"])
def test_broken_multipart_gets_a_sender_fault(app, ct_study: list[Sample], case: str) -> None:
    soap = envelope(request_element([ct_study[0].doc]))
    ct, body = mtom_wrap(soap, close=case != "truncated")
    if case == "truncated":
        body = body[: len(body) // 2]
    elif case == "missing start part":
        ct = re.sub(r'start="<[^>]*>"', 'start="<nowhere@example>"', ct)
    elif case == "no boundary":
        ct = re.sub(r'boundary="[^"]*"; ', "", ct)
    else:
        element = request_element([ct_study[0].doc]).replace(
            "</xdsb:DocumentRequest>",
            f'<x:Blob xmlns:x="urn:x"><xop:Include xmlns:xop="{ns.XOP}" href="cid:absent@x"/>'
            "</x:Blob></xdsb:DocumentRequest>",
        )
        ct, body = mtom_wrap(envelope(element))
    reply = call(app, body, content_type=ct)
    assert reply.status == 400
    assert reply.content_type.startswith("application/soap+xml")
    assert reply.xml().find(".//env:Fault", NSMAP) is not None


def test_non_ascii_part_headers_are_read(app, ct_study: list[Sample]) -> None:
    """Part headers with bytes outside ASCII (found by fuzzing: the email package hands them
    over as Header objects, and the request got a Receiver fault): an attachment with such a
    Content-ID is simply one nothing refers to; a root part found by it is not found (400)."""
    soap = envelope(request_element([ct_study[0].doc]))
    ct, body = mtom_wrap(soap, attachments={"extra@x": b"data"})
    body = body.replace(b"<extra@x>", b"<extr\xe9@x>")
    reply = call(app, body, content_type=ct)
    assert reply.status == 200, reply.body[:2000]
    assert documents(parse_multipart(reply.content_type, reply.body)) == {
        ct_study[0].doc.sop: ct_study[0].data
    }
    start = re.search(r'start="<([^>]*)>"', ct)
    assert start is not None
    root_id = start.group(1).encode()
    renamed = body.replace(b"<" + root_id + b">", b"<\xe9" + root_id + b">")
    reply = call(app, renamed, content_type=ct)
    assert reply.status == 400
    assert "start part" in fault_parts(reply.xml())[2]


def test_dicomtrolley_style_request(app, ct_study: list[Sample]) -> None:
    """Inline headers, Action with a trailing space, bogus To, plain Content-Type without
    parameters, stray text in the Body, a default namespace, unknown children."""
    s = ct_study[0]
    body = (
        f'<s:Envelope xmlns:s="{ns.SOAP12_ENV}" xmlns:a="{ns.WSA}"><s:Header>'
        f'<a:Action s:mustUnderstand="1">{ns.ACTION_RAD69} </a:Action>'
        "<a:MessageID>urn:uuid:0bd4f5d4-1c0e-4a50-b0d1-3c5e2f1a7b11</a:MessageID>"
        f'<a:ReplyTo s:mustUnderstand="1"><a:Address>{ns.WSA_ANONYMOUS}</a:Address></a:ReplyTo>'
        '<a:To s:mustUnderstand="1">http://localhost:2647/XdsService/IHEXDSIDocSource.svc</a:To>'
        f'</s:Header><s:Body xmlns="{ns.XDSI_B}">response '
        f'<RetrieveImagingDocumentSetRequest xmlns:iherad="{ns.XDSI_B}" xmlns:wado="{ns.WADO_WS}">'
        f'<StudyRequest studyInstanceUID="{s.doc.study}">'
        f'<SeriesRequest seriesInstanceUID="{s.doc.series}">'
        f'<DocumentRequest xmlns="{ns.XDS_B}"><DocumentUniqueId>{s.doc.sop}</DocumentUniqueId>'
        "<RepositoryUniqueId>1.3.6.1.4.1.21367.13.80.110</RepositoryUniqueId>"
        "<wado:Anonymize/><wado:FrameNumber>1</wado:FrameNumber></DocumentRequest>"
        "</SeriesRequest></StudyRequest><TransferSyntaxUIDList>"
        f"<TransferSyntaxUID>{s.transfer_syntax}</TransferSyntaxUID></TransferSyntaxUIDList>"
        "</RetrieveImagingDocumentSetRequest></s:Body></s:Envelope>"
    ).encode()
    reply = call(app, body, content_type="application/soap+xml")
    assert reply.status == 200, reply.body
    package = parse_multipart(reply.content_type, reply.body)
    assert documents(package) == {s.doc.sop: s.data}


def test_several_request_elements_in_one_body(app, ct_study: list[Sample], xsd) -> None:
    first, second = ct_study[0], ct_study[1]
    missing = Doc(first.doc.study, first.doc.series, "1.2.3.999")
    body = request_element([first.doc, missing], [first.transfer_syntax]) + request_element(
        [second.doc], [second.transfer_syntax]
    )
    reply = call(app, envelope(body))
    package = parse_multipart(reply.content_type, reply.body)
    assert _status(package.envelope) == ns.STATUS_PARTIAL_SUCCESS
    assert documents(package) == {first.doc.sop: first.data, second.doc.sop: second.data}
    assert len(package.envelope.findall(".//rs:RegistryError", NSMAP)) == 1
    assert len(package.envelope.findall(".//xdsb:RetrieveDocumentSetResponse", NSMAP)) == 1
    _valid(xsd, body_child(xop_reconstruct(package)))


def test_transfer_syntax_list_is_kept_per_element(app, ct_study: list[Sample]) -> None:
    """The same document under two elements: only the element listing its syntax gets it."""
    s = next(x for x in ct_study if x.transfer_syntax == ns.TS_JPEG_LS_LOSSLESS)
    body = request_element([s.doc], [ns.TS_JPEG_LS_LOSSLESS]) + request_element([s.doc], ["1.2.3"])
    reply = call(app, envelope(body))
    package = parse_multipart(reply.content_type, reply.body)
    assert _status(package.envelope) == ns.STATUS_PARTIAL_SUCCESS
    assert list(package.parts.values()) == [s.data]
