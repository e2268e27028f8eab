"""The streaming RAD-69 response reader on crafted bodies (``xdsi.client.receive``/``mtom``)."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.client.messages import (
    BOUNDARY,
    ROOT_ID,
    Doc,
    chunked,
    content_type,
    envelope,
    multipart,
    tricky_bytes,
)
from xdsi import ns
from xdsi.client.mtom import (
    MultipartReader,
    content_type_param,
    normalize_content_id,
    wrap_mtom,
)
from xdsi.client.receive import read_response
from xdsi.client.result import SavedDocument
from xdsi.errors import MalformedResponse, RemoteFault
from xdsi.model import Severity, Status

REFERENCE = Path(__file__).parent / "data" / "dcm4chee-arc-rad69-response.txt"
"""Copy of the team reference ``examples/dcm4chee-arc-cs/rad69-response.txt`` (data/README.md)."""


def _docs(n: int = 3) -> list[Doc]:
    return [
        Doc(f"1.2.3.{i + 1}", tricky_bytes(i) * (i + 1), f"{i}.1.2.3.{i + 1}@{ns.XDS_CID_DOMAIN}")
        for i in range(n)
    ]


def _leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.name.startswith(".xdsi-"))


def _assert_saved(out: Path, docs: list[Doc], saved: tuple[SavedDocument, ...]) -> None:
    assert [d.document_unique_id for d in saved] == [d.uid for d in docs]
    for doc, result in zip(docs, saved, strict=True):
        assert result.path == out / f"{doc.uid}.dcm"
        assert result.path.read_bytes() == doc.data
        assert result.size == len(doc.data)
        assert result.sha256 in (None, hashlib.sha256(doc.data).hexdigest())
    assert _leftovers(out) == []


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 5, 7, 13, 64, 1000, 1 << 20])
def test_chunk_splits_give_byte_exact_files(tmp_path: Path, chunk_size: int) -> None:
    """Every split of the body across reads — boundaries, CRLFs, headers cut anywhere."""
    docs = _docs()
    body = multipart(envelope(docs), docs)
    result = read_response(content_type(), chunked(body, chunk_size), tmp_path, digest=True)
    assert all(d.sha256 is not None for d in result.documents)
    assert result.status is Status.SUCCESS
    assert result.mtom
    assert result.action == ns.ACTION_RAD69_RESPONSE  # trimmed of the sample-style whitespace
    _assert_saved(tmp_path, docs, result.documents)


def test_crlf_at_part_edges_is_kept(tmp_path: Path) -> None:
    """zeep strips these (libraries.md §2); a DICOM file may well end in 0x0D 0x0A."""
    data = b"\r\n\r\n\x00DICM\r\n\r\n"
    docs = [Doc("1.2.3.4", data, f"a@{ns.XDS_CID_DOMAIN}")]
    result = read_response(content_type(), [multipart(envelope(docs), docs)], tmp_path)
    assert result.documents[0].path.read_bytes() == data


def test_empty_part(tmp_path: Path) -> None:
    docs = [Doc("1.2.3.4", b"", "empty@x"), Doc("1.2.3.5", b"\r\n", "crlf@x")]
    result = read_response(content_type(), chunked(multipart(envelope(docs), docs), 3), tmp_path)
    _assert_saved(tmp_path, docs, result.documents)


def test_many_parts_in_shuffled_order(tmp_path: Path) -> None:
    docs = [Doc(f"1.2.840.99.{i}", os.urandom(i * 37 % 5000), f"p{i}@x") for i in range(200)]
    # Parts on the wire in reverse order of the DocumentResponses.
    body = multipart(envelope(docs), list(reversed(docs)))
    result = read_response(content_type(), chunked(body, 4096), tmp_path)
    _assert_saved(tmp_path, docs, result.documents)


def test_parts_before_the_root(tmp_path: Path) -> None:
    """``start`` names the root; parts that come first wait on disk, then get their names."""
    docs = _docs()
    body = multipart(envelope(docs), docs, root_last=True)
    result = read_response(content_type(), chunked(body, 100), tmp_path)
    _assert_saved(tmp_path, docs, result.documents)


def test_without_start_the_first_part_is_the_root(tmp_path: Path) -> None:
    docs = _docs(2)
    body = multipart(envelope(docs), docs, preamble=b"This is a preamble.\r\n")
    result = read_response(content_type(start=False), [body], tmp_path)
    _assert_saved(tmp_path, docs, result.documents)


def test_content_ids_without_angle_brackets_and_plain_hrefs(tmp_path: Path) -> None:
    docs = _docs(2)
    body = multipart(envelope(docs, percent_encode_href=False), docs, angle_brackets=False)
    result = read_response(content_type(), [body], tmp_path)
    _assert_saved(tmp_path, docs, result.documents)


def test_lf_only_framing_is_accepted(tmp_path: Path) -> None:
    docs = [Doc("1.2.3.4", b"plain bytes", "a@x"), Doc("1.2.3.5", b"more", "b@x")]
    body = multipart(envelope(docs), docs, eol=b"\n")
    result = read_response(content_type(), chunked(body, 5), tmp_path)
    _assert_saved(tmp_path, docs, result.documents)


def test_base64_inline_response_without_mtom(tmp_path: Path) -> None:
    docs = [Doc(f"1.2.3.{i}", tricky_bytes(i), None) for i in range(3)]
    result = read_response(
        f"{ns.MEDIA_SOAP12}; charset=utf-8", chunked(envelope(docs), 10), tmp_path
    )
    assert not result.mtom
    _assert_saved(tmp_path, docs, result.documents)


def test_base64_inline_document_inside_an_mtom_package(tmp_path: Path) -> None:
    docs = [Doc("1.2.3.1", b"inline\r\n", None), Doc("1.2.3.2", tricky_bytes(2), "x@y")]
    result = read_response(content_type(), [multipart(envelope(docs), docs)], tmp_path)
    _assert_saved(tmp_path, docs, result.documents)


def test_base64_transfer_encoded_part(tmp_path: Path) -> None:
    data = tricky_bytes(9)
    encoded = base64.encodebytes(data)  # 76-column lines, as MIME writers do
    root = envelope([Doc("1.2.3.4", data, "b64@x")])
    body = (
        f"--{BOUNDARY}\r\nContent-Type: {ns.MEDIA_XOP}\r\nContent-ID: <{ROOT_ID}>\r\n\r\n".encode()
        + root
        + f"\r\n--{BOUNDARY}\r\nContent-Type: application/dicom\r\n"
        "Content-Transfer-Encoding: base64\r\nContent-ID: <b64@x>\r\n\r\n".encode()
        + encoded
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )
    result = read_response(content_type(), chunked(body, 7), tmp_path)
    assert result.documents[0].path.read_bytes() == data


def test_registry_errors_inside_a_multipart_response(tmp_path: Path) -> None:
    docs = _docs(1)
    errors = [
        (ns.XDS_DOCUMENT_UNIQUE_ID_ERROR, "not here", ns.SEVERITY_ERROR, "1.2.3.99"),
        (ns.WADO_PROCESSING_FAILURE, "a warning", ns.SEVERITY_WARNING, None),
    ]
    root = envelope(docs, ns.STATUS_PARTIAL_SUCCESS, errors)
    result = read_response(content_type(), [multipart(root, docs)], tmp_path)
    assert result.status is Status.PARTIAL_SUCCESS
    assert [(e.error_code, e.code_context, e.severity, e.location) for e in result.errors] == [
        (ns.XDS_DOCUMENT_UNIQUE_ID_ERROR, "not here", Severity.ERROR, "1.2.3.99"),
        (ns.WADO_PROCESSING_FAILURE, "a warning", Severity.WARNING, None),
    ]
    assert [e.error_code for e in result.error_entries] == [ns.XDS_DOCUMENT_UNIQUE_ID_ERROR]
    _assert_saved(tmp_path, docs, result.documents)


def test_home_community_and_mime_type_are_reported(tmp_path: Path) -> None:
    community = ns.URN_OID + "1.2.3"
    doc = Doc("1.2.3.4", b"x", "h@x", home_community=community, mime_type=ns.MEDIA_DICOM)
    result = read_response(content_type(), [multipart(envelope([doc]), [doc])], tmp_path)
    saved = result.documents[0]
    assert (saved.home_community_id, saved.mime_type, saved.repository_unique_id) == (
        community,
        ns.MEDIA_DICOM,
        doc.repository,
    )


def test_duplicate_and_hostile_document_ids_stay_in_the_output_dir(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    docs = [
        Doc("1.2.3.4", b"first", "a@x"),
        Doc("1.2.3.4", b"second", "b@x"),
        Doc("../../escape", b"third", "c@x"),
    ]
    result = read_response(content_type(), [multipart(envelope(docs), docs)], out)
    names = [d.path.name for d in result.documents]
    assert names == ["1.2.3.4.dcm", "1.2.3.4-2.dcm", "document-3.dcm"]
    assert [d.path.read_bytes() for d in result.documents] == [b"first", b"second", b"third"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# --- the dcm4chee-arc reference sample --------------------------------------------------------


def _reference() -> tuple[str, bytes]:
    text = REFERENCE.read_text(encoding="utf-8")
    head, body = text.split("\n\n", 1)
    match = re.search(r"Content-Type: (.*?)\nDate", head, re.S)
    assert match is not None
    return " ".join(match.group(1).split()), body.replace("\n", "\r\n").encode()


def test_reference_sample_as_published_is_refused(tmp_path: Path) -> None:
    """The sample has an unclosed ``<DocumentUniqueId>`` and no closing boundary."""
    ctype, body = _reference()
    with pytest.raises(MalformedResponse):
        read_response(ctype, [body], tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_reference_sample_repaired(tmp_path: Path) -> None:
    ctype, body = _reference()
    body = body.replace(b"1483<DocumentUniqueId>", b"1483</DocumentUniqueId>")
    body += f"\r\n--{BOUNDARY}--\r\n".encode()
    result = read_response(ctype, chunked(body, 11), tmp_path)
    assert result.status is Status.SUCCESS
    (saved,) = result.documents
    assert saved.document_unique_id == "1.3.12.2.1107.5.8.1.12345678.199508041416590861483"
    assert saved.path.read_bytes() == b"This is the binary data of the DICOM object."


# --- truncation and other broken responses ---------------------------------------------------


@pytest.mark.parametrize("cut", [0.2, 0.5, 0.8, 0.999])
def test_truncated_body_is_an_error_and_leaves_no_partial_file(tmp_path: Path, cut: float) -> None:
    docs = [Doc(f"1.2.3.{i}", os.urandom(50_000), f"{i}@x") for i in range(4)]
    body = multipart(envelope(docs), docs)
    short = body[: int(len(body) * cut)]
    with pytest.raises(MalformedResponse):
        read_response(content_type(), chunked(short, 4096), tmp_path)
    assert _leftovers(tmp_path) == []
    for path in tmp_path.iterdir():  # documents completed before the cut are whole
        doc = next(d for d in docs if path.name == f"{d.uid}.dcm")
        assert path.read_bytes() == doc.data


def test_missing_closing_boundary_is_truncation(tmp_path: Path) -> None:
    docs = _docs(1)
    body = multipart(envelope(docs), docs, close=False)
    with pytest.raises(MalformedResponse, match="truncated"):
        read_response(content_type(), [body], tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_referenced_part_missing(tmp_path: Path) -> None:
    docs = _docs(2)
    body = multipart(envelope(docs), docs[:1])
    with pytest.raises(MalformedResponse, match="lacks the parts"):
        read_response(content_type(), [body], tmp_path)


def test_no_root_part(tmp_path: Path) -> None:
    body = multipart(b"<x/>", [])
    with pytest.raises(MalformedResponse, match="no root part"):
        read_response(content_type().replace(ROOT_ID, "other@x"), [body], tmp_path)


def test_dtd_in_the_response_is_refused(tmp_path: Path) -> None:
    evil = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>'
    with pytest.raises(MalformedResponse):
        read_response(ns.MEDIA_SOAP12, [evil], tmp_path)


def test_not_xml(tmp_path: Path) -> None:
    with pytest.raises(MalformedResponse, match="not well-formed"):
        read_response(ns.MEDIA_SOAP12, [b"Internal Server Error"], tmp_path)


def test_unknown_status_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MalformedResponse, match="status"):
        read_response(ns.MEDIA_SOAP12, [envelope([], status="Success")], tmp_path)


def test_soap12_fault_with_subcodes(tmp_path: Path) -> None:
    fault = (
        f'<env:Envelope xmlns:env="{ns.SOAP12_ENV}" xmlns:wsa="{ns.WSA}"><env:Body><env:Fault>'
        "<env:Code><env:Value>env:Sender</env:Value><env:Subcode><env:Value>wsa:InvalidAddressingHeader"
        "</env:Value><env:Subcode><env:Value>wsa:InvalidCardinality</env:Value></env:Subcode>"
        '</env:Subcode></env:Code><env:Reason><env:Text xml:lang="de">Falsch</env:Text>'
        '<env:Text xml:lang="en">two wsa:Action headers</env:Text></env:Reason>'
        "</env:Fault></env:Body></env:Envelope>"
    ).encode()
    with pytest.raises(RemoteFault) as caught:
        read_response(ns.MEDIA_SOAP12, [fault], tmp_path)
    assert caught.value.code == "env:Sender"
    assert caught.value.subcodes == ("wsa:InvalidAddressingHeader", "wsa:InvalidCardinality")
    assert caught.value.reason == "two wsa:Action headers"


# --- the reader itself ------------------------------------------------------------------------


def _pattern_chunks(total: int, chunk: int) -> Iterator[bytes]:
    block = (bytes(range(256)) * (chunk // 256 + 1))[:chunk]
    sent = 0
    while sent < total:
        piece = block[: min(chunk, total - sent)]
        sent += len(piece)
        yield piece


def test_large_part_streams_with_bounded_memory(tmp_path: Path) -> None:
    """A 64 MiB part goes to disk while Python allocations stay a small fraction of it."""
    size = 64 * 1024 * 1024
    doc = Doc("1.2.3.4", b"", "big@x")
    root = envelope([doc])
    head = multipart(root, []).rsplit(b"--" + BOUNDARY.encode() + b"--", 1)[0]
    head += (
        f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\nContent-ID: <big@x>\r\n\r\n".encode()
    )
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()

    def body() -> Iterator[bytes]:
        yield head
        yield from _pattern_chunks(size, 65536)
        yield tail

    expected = hashlib.sha256()
    for piece in _pattern_chunks(size, 65536):
        expected.update(piece)
    tracemalloc.start()
    try:
        result = read_response(content_type(), body(), tmp_path, digest=True)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    (saved,) = result.documents
    assert saved.size == size
    assert saved.sha256 == expected.hexdigest()
    assert peak < 2 * 1024 * 1024, f"peak {peak} bytes for a {size}-byte part"


def test_reader_yields_parts_in_wire_order() -> None:
    body = (
        f"--{BOUNDARY}\r\n\r\nno headers\r\n--{BOUNDARY}  \t\r\nContent-ID: <a%40b>\r\n\r\n"
        f"\r\n--{BOUNDARY}--\r\nepilogue"
    ).encode()
    seen = [
        (p.headers.content_id, p.headers.media_type, b"".join(p.iter_body()))
        for p in MultipartReader(chunked(body, 2), BOUNDARY).parts()
    ]
    assert seen == [(None, "text/plain", b"no headers"), ("a@b", "text/plain", b"")]


def test_unread_part_bodies_are_skipped() -> None:
    docs = _docs(3)
    body = multipart(envelope(docs), docs)
    ids = [p.headers.content_id for p in MultipartReader([body], BOUNDARY).parts()]
    assert ids == [ROOT_ID, *(d.content_id for d in docs)]


def test_no_boundary_at_all() -> None:
    with pytest.raises(MalformedResponse):
        list(MultipartReader([b"just text"], BOUNDARY).parts())


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("<a@b>", "a@b"),
        ("a@b", "a@b"),
        ("cid:a%40b", "a@b"),
        (" CID:x@" + ns.XDS_CID_DOMAIN.replace(":", "%3A"), "x@" + ns.XDS_CID_DOMAIN),
    ],
)
def test_normalize_content_id(value: str, expected: str) -> None:
    assert normalize_content_id(value) == expected


def test_wrap_mtom_round_trips_through_the_reader() -> None:
    framed = wrap_mtom(b"<env/>\r\n", ns.ACTION_RAD69)
    assert f'action="{ns.ACTION_RAD69}"' in framed.content_type
    boundary = content_type_param(framed.content_type, "boundary")
    start = content_type_param(framed.content_type, "start")
    assert boundary is not None and start is not None
    seen = [
        (p.headers.content_id, p.headers.media_type, b"".join(p.iter_body()))
        for p in MultipartReader([framed.body], boundary).parts()
    ]
    assert seen == [(normalize_content_id(start), ns.MEDIA_XOP, b"<env/>\r\n")]
