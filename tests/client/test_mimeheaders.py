"""Part header blocks and Content-Type values (``xdsi.client.mimeheaders``; RFC 2045 §5,
RFC 5322 §2.2), alone and through the streaming reader."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.client.messages import BOUNDARY, ROOT_ID, Doc, content_type, envelope, multipart
from xdsi import ns
from xdsi.client.mimeheaders import (
    content_type_param,
    content_type_params,
    media_type,
    parse_header_block,
)
from xdsi.client.mtom import MultipartReader, multipart_root
from xdsi.client.receive import read_response
from xdsi.errors import MalformedResponse

# --- header blocks ---------------------------------------------------------------------------


def test_header_block_names_are_case_insensitive_and_values_trimmed() -> None:
    raw = b"content-ID:  <a@b> \r\nCONTENT-TYPE:image/jpeg\r\nX-Other: 1\r\n"
    assert parse_header_block(raw) == {
        "content-id": "<a@b>",
        "content-type": "image/jpeg",
        "x-other": "1",
    }


def test_folded_header_is_unfolded() -> None:
    raw = (
        b'Content-Type: application/xop+xml;\r\n\tcharset=UTF-8;\r\n  type="application/soap+xml"'
        b"\r\nContent-ID: <r@x>\r\n"
    )
    fields = parse_header_block(raw)
    assert fields["content-type"] == (
        'application/xop+xml;\tcharset=UTF-8;  type="application/soap+xml"'
    )
    assert content_type_param(fields["content-type"], "type") == ns.MEDIA_SOAP12
    assert fields["content-id"] == "<r@x>"


def test_lf_lines_white_space_before_the_colon_and_empty_block() -> None:
    assert parse_header_block(b"Content-ID : <a@b>\nContent-Type: text/xml\n") == {
        "content-id": "<a@b>",
        "content-type": "text/xml",
    }
    assert parse_header_block(b"") == {}


def test_other_repeated_field_keeps_the_first() -> None:
    raw = b"X-Trace: one\r\nX-Trace: two\r\n folded two\r\nContent-ID: <a@b>\r\n"
    assert parse_header_block(raw) == {"x-trace": "one", "content-id": "<a@b>"}


def test_undecodable_bytes_are_replaced() -> None:
    assert parse_header_block(b"Content-ID: <\xff@b>\r\n") == {"content-id": "<\ufffd@b>"}


@pytest.mark.parametrize(
    "raw",
    [
        b"Content-ID <a@b>\r\n",  # no colon
        b" Content-ID: <a@b>\r\n",  # a continuation with nothing to continue
        b"Content-ID: <a@b>\rContent-Type: text/xml\r\n",  # bare CR
        b"Content ID: <a@b>\r\n",  # space inside the name
        b": <a@b>\r\n",  # empty name
        b"Content-ID: <a@b>\r\ncontent-id: <c@d>\r\n",  # the part's identity given twice
        b"Content-Type: image/jpeg\r\nContent-Type: text/xml\r\n",
        b"Content-Transfer-Encoding: binary\r\nCONTENT-TRANSFER-ENCODING: base64\r\n",
    ],
)
def test_malformed_header_block_is_refused(raw: bytes) -> None:
    with pytest.raises(MalformedResponse):
        parse_header_block(raw)


# --- Content-Type ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Application/SOAP+XML; charset=utf-8", "application/soap+xml"),
        ("  multipart/related ;boundary=x", "multipart/related"),
        ("image/jpeg", "image/jpeg"),
        ("", ""),
        (None, ""),
        ("garbage", "text/plain"),
        ("image/", "text/plain"),
        ("/jpeg", "text/plain"),
        ("image/jpeg/x", "text/plain"),
        ("image /jpeg", "text/plain"),
        ("image/jp(e)g", "text/plain"),
    ],
)
def test_media_type(value: str | None, expected: str) -> None:
    assert media_type(value) == expected


def test_parameters_quoting_and_case() -> None:
    value = (
        'multipart/related; Boundary="uuid:a;b=c"; TYPE=application/xop+xml;'
        ' start = "<root@x>" ; start-info="application/soap+xml";;'
        r' action="a\"b\\c";'
    )
    assert content_type_params(value) == {
        "boundary": "uuid:a;b=c",
        "type": "application/xop+xml",
        "start": "<root@x>",
        "start-info": "application/soap+xml",
        "action": 'a"b\\c',
    }
    assert content_type_param(value, "BOUNDARY") == "uuid:a;b=c"
    assert content_type_param(value, "charset") is None
    assert content_type_param(None, "boundary") is None


def test_unquoted_values_with_tspecials_and_folding() -> None:
    """Axis-style ``start=<…>`` unquoted; dcm4chee-arc folds after a trailing ``;``."""
    value = 'multipart/related; boundary=MIMEBoundary_1; start=<0.u@apache.org>;\r\n  type="x/y"'
    assert content_type_params(value) == {
        "boundary": "MIMEBoundary_1",
        "start": "<0.u@apache.org>",
        "type": "x/y",
    }
    assert content_type_params("text/plain") == {}
    assert content_type_param('text/plain; charset=""', "charset") is None


@pytest.mark.parametrize(
    "value",
    [
        "multipart/related; boundary",  # no value
        "multipart/related; charset; boundary=x",
        'multipart/related; boundary="abc',  # unterminated
        'multipart/related; boundary="abc\\',
        'multipart/related; boundary="abc"def',  # text after the quoted string
        "multipart/related; boundary=a; BOUNDARY=b",  # twice: which one frames the body?
        "multipart/related; =x",
        "multipart/related; bound ary=x",
        "multipart/related; b(x)=y",
    ],
)
def test_malformed_parameters_are_refused(value: str) -> None:
    with pytest.raises(MalformedResponse):
        content_type_params(value)


def test_multipart_root_reads_the_parameters_once_strictly() -> None:
    assert multipart_root(content_type()) == (BOUNDARY, ROOT_ID)
    assert multipart_root(f"multipart/related; boundary={BOUNDARY}") == (BOUNDARY, None)
    with pytest.raises(MalformedResponse, match="boundary"):
        multipart_root('multipart/related; start="<a@b>"')
    with pytest.raises(MalformedResponse, match="twice"):
        multipart_root(f'multipart/related; boundary="{BOUNDARY}"; boundary="other"')


# --- through the reader ----------------------------------------------------------------------


def test_reader_takes_folded_mixed_case_part_headers() -> None:
    body = (
        f"--{BOUNDARY}\r\ncontent-type: Application/XOP+XML;\r\n\tcharset=UTF-8\r\n"
        f"CONTENT-ID:\r\n <A%40B>\r\ncontent-transfer-encoding: BASE64\r\n\r\naGk=\r\n"
        f"--{BOUNDARY}--\r\n"
    ).encode()
    ((headers, data),) = [
        (p.headers, b"".join(p.iter_body())) for p in MultipartReader([body], BOUNDARY).parts()
    ]
    assert (headers.content_id, headers.media_type, headers.transfer_encoding) == (
        "A@B",
        ns.MEDIA_XOP,
        "base64",
    )
    assert data == b"hi"


def test_part_with_two_content_ids_is_refused(tmp_path: Path) -> None:
    doc = Doc("1.2.3.1", b"\r\npixels\r\n", f"1.2.3.1@{ns.XDS_CID_DOMAIN}")
    body = multipart(envelope([doc]), [doc])
    twice = f"Content-ID: <{doc.content_id}>\r\n".encode()
    body = body.replace(twice, twice + b"Content-ID: <other@x>\r\n")
    with pytest.raises(MalformedResponse, match="twice"):
        read_response(content_type(), [body], tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_response_with_two_boundaries_is_refused(tmp_path: Path) -> None:
    doc = Doc("1.2.3.1", b"pixels", f"1.2.3.1@{ns.XDS_CID_DOMAIN}")
    body = multipart(envelope([doc]), [doc])
    with pytest.raises(MalformedResponse, match="twice"):
        read_response(content_type() + '; boundary="other"', [body], tmp_path)
    assert list(tmp_path.iterdir()) == []
