"""Mutated requests, a deterministic fuzz of the endpoint: whatever arrives, the answer is a SOAP
envelope (a response, or a fault with the status SOAP 1.2 Part 2 Table 20 gives it), and nothing
unexpected is logged.  Two bugs were found this way: a fault quoting a header value with a C0
control (lxml refused the reason: a bare 500), and MTOM part headers with non-ASCII bytes (a
Receiver fault).  The mutations keep the seed's structure often enough (texts and attribute
values replaced by odd tokens) that many requests reach the transactions."""

from __future__ import annotations

import dataclasses
import logging
import random

import pytest
from lxml import etree

from tests.mutations import (
    delete,
    insert_bytes,
    mutate,
    repeat_tag,
    replace_text,
    replace_with,
)
from tests.soap.conftest import Sample
from tests.soap.metadata_support import Ask, metadata_request
from tests.soap.support import call, envelope, fault_parts, mtom_wrap, parse_multipart
from tests.soap.support import request_element as rad69_element
from xdsi import ns
from xdsi.client.rendered import RenderedParameters
from xdsi.client.rendered import request_element as rendered_element
from xdsi.config import Settings
from xdsi.model import DocumentRequest
from xdsi.soap import make_app
from xdsi.store.base import Store

ITERATIONS = 3000
TOKENS = [b"<", b">", b"&", b"\x00", b"\xff", b"]]>", b"-1", b"0", b"1e400", b"NaN", b"\\", b"=",
          b"99999999999999999999", b"", b'"', b"'", b"&amp;", b"&#0;", b"&#x10FFFF;", b" ",
          b"\r\n", b"1.2.3", b"image/gif", b"text/plain", b"image/jp2", b"application/pdf",
          b"0.5,0.5", b"1,1,0,0", b"//*", b"count(/)", b"/NativeDicomModel/DicomAttribute[",
          b"yes", b"--MIMEBoundary", b"Content-ID: <x>", b"cid:x", b"\xe9"]  # fmt: skip
ALLOWED_500 = {f"{{{ns.SOAP12_ENV}}}VersionMismatch", f"{{{ns.SOAP12_ENV}}}MustUnderstand"}


MUTATIONS = [
    (0.30, replace_with(TOKENS)),
    (0.15, insert_bytes()),
    (0.10, delete(50)),
    (0.30, replace_text(TOKENS)),
    (0.15, repeat_tag),
]


@pytest.fixture(scope="module")
def inline_app(settings: Settings, store: Store):  # type: ignore[no-untyped-def]
    """The endpoint with rendering and transcoding in the request thread (no worker pool)."""
    return make_app(dataclasses.replace(settings, render_workers=0, transcode_workers=0), store)


def seeds(ct_study: list[Sample]) -> list[tuple[bytes, str]]:
    doc = ct_study[0].doc
    document = DocumentRequest(doc.study, doc.series, doc.sop, doc.repository)
    rendered = RenderedParameters(
        rows="32", columns="32", window_center="40", window_width="400",
        region="0.1,0.1,0.9,0.9", annotation="patient,technique", image_quality="80",
    )  # fmt: skip
    plain = [
        envelope(rendered_element([document], rendered), action=ns.ACTION_RENDERED),
        envelope(rad69_element([doc, ct_study[1].doc], [ns.TS_EXPLICIT_VR_LE])),
        envelope(
            metadata_request([Ask(doc, ("/", "//*[@keyword='PatientID']"), anonymize="yes")]),
            action=ns.ACTION_METADATA,
        ),
    ]
    framed = [mtom_wrap(body) for body in plain]
    return [(body, ns.MEDIA_SOAP12) for body in plain] + [(body, ct) for ct, body in framed]


def test_mutated_requests_are_always_answered_in_soap(
    inline_app, ct_study: list[Sample], caplog: pytest.LogCaptureFixture
) -> None:
    rng = random.Random(20261127)
    choices = seeds(ct_study)
    statuses: dict[int, int] = {}
    with caplog.at_level(logging.ERROR):
        for _ in range(ITERATIONS):
            body, content_type = rng.choice(choices)
            if rng.random() < 0.1:
                content_type = mutate(content_type.encode(), rng, MUTATIONS).decode("latin-1")
            else:
                body = mutate(body, rng, MUTATIONS)
            reply = call(inline_app, body, content_type=content_type)
            statuses[reply.status] = statuses.get(reply.status, 0) + 1
            assert reply.status in (200, 400, 500), reply.body[:500]
            if reply.content_type.startswith(ns.MEDIA_MULTIPART_RELATED):
                parse_multipart(reply.content_type, reply.body)
                continue
            assert reply.content_type.startswith(ns.MEDIA_SOAP12), reply.body[:500]
            root = reply.xml()
            assert etree.QName(root).localname == "Envelope"
            if reply.status == 500:
                code, _, _ = fault_parts(root)
                assert code in ALLOWED_500, (code, body)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert statuses.get(200, 0) > ITERATIONS // 20  # the fuzz reaches the transactions
