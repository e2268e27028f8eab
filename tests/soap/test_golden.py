"""The golden envelopes of ``samples/soap/``: each request answered by the real transaction over
the sample store gives its golden response, compared after C14N 2.0 (whitespace-insensitive, the
reply's own MessageID masked).  Regenerate with ``python -m tests.soap.golden`` and review."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from tests.soap import golden
from tests.soap.support import body_child, parse_multipart, schema, xop_reconstruct

REQUESTS = golden.requests()


def _c14n(element: etree._Element) -> bytes:
    data: bytes = etree.tostring(element, method="c14n2", strip_text=True)
    return data


def test_every_kind_is_present() -> None:
    names = {p.stem.removeprefix("request-") for p in REQUESTS}
    assert {"plain", "mtom", "dicomtrolley", "jaxws", "nist-ids4810", "partial", "failure"} <= names
    for request in REQUESTS:
        assert golden.response_path(request).is_file(), request


@pytest.mark.parametrize("request_path", REQUESTS, ids=lambda p: p.stem)
def test_golden(app, request_path: Path) -> None:  # type: ignore[no-untyped-def]
    reply = golden.answer(app, request_path)
    assert reply.status == 200
    mtom_in = request_path.suffix == ".mime"
    mtom_out = reply.content_type.startswith("multipart/related")
    got = golden.normalised(reply.xml())
    expected = etree.parse(str(golden.response_path(request_path))).getroot()
    assert _c14n(got) == _c14n(expected)
    has_documents = bool(got.findall(".//{urn:ihe:iti:xds-b:2007}DocumentResponse"))
    assert mtom_out == (mtom_in or has_documents)
    infoset = xop_reconstruct(parse_multipart(reply.content_type, reply.body)) if mtom_out else got
    assert schema().validate(body_child(infoset)), schema().error_log
