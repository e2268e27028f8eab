"""Mutated responses, a deterministic fuzz of the client's response reader: whatever a source
sends, :func:`xdsi.client.receive.read_response` answers with a result or one of the errors it
documents (RemoteFault, MalformedResponse), never another exception."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest

from tests.mutations import delete, duplicate, insert_bytes, mutate, replace_with
from tests.soap.support import Doc, call, envelope
from tests.soap.support import request_element as rad69_element
from xdsi import ns
from xdsi.client.envelope import read_envelope
from xdsi.client.receive import read_response
from xdsi.client.rendered import RenderedParameters, _RenderedReader
from xdsi.client.rendered import envelope as rendered_envelope
from xdsi.client.rendered import request_element as rendered_element
from xdsi.config import load_settings
from xdsi.errors import MalformedResponse, RemoteFault
from xdsi.model import DocumentRequest
from xdsi.soap import make_app
from xdsi.store import open_store

ITERATIONS = 3000
TOKENS = [b"<", b">", b"&", b"\x00", b"\xff", b"\r\n", b"\r\n\r\n", b"--", b"Content-ID: <x>\r\n",
          b"Content-Type: text/plain\r\n", b"cid:", b'"', b";", b"=", b"", b"xop:Include",
          b"urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success", b"href",
          b"\xe9"]  # fmt: skip


@pytest.fixture(scope="module")
def responses(
    tmp_path_factory: pytest.TempPathFactory, samples_dir: Path
) -> Iterator[list[tuple[str, bytes, bool]]]:
    """(Content-Type, body, rendered?) of real answers: a rendering, a RAD-69 document, a RAD-69
    failure, a fault."""
    settings = load_settings(environ={}, data_dir=tmp_path_factory.mktemp("fuzz-store"))
    settings = dataclasses.replace(settings, render_workers=0, transcode_workers=0)
    store = open_store(settings)
    path = sorted((samples_dir / "ct").rglob("*.dcm"))[0]
    store.put(path)
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    doc = Doc(str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID))
    app = make_app(settings, store)
    document = DocumentRequest(doc.study, doc.series, doc.sop, doc.repository)
    small = RenderedParameters(rows="8", columns="8")
    asked = [
        (rendered_envelope(rendered_element([document], small), "http://x/"), True),
        (envelope(rad69_element([doc], [ns.TS_EXPLICIT_VR_LE])), False),
        (envelope(rad69_element([dataclasses.replace(doc, sop="1.2.3")])), False),
        (b"<not soap", False),
    ]
    found = []
    for body, rendered in asked:
        reply = call(app, body)
        found.append((reply.content_type, reply.body, rendered))
    yield found
    store.close()


MUTATIONS = [
    (0.4, replace_with(TOKENS, longest=30)),
    (0.2, delete(200)),
    (0.2, insert_bytes()),
    (0.2, duplicate(100)),
]


def test_mutated_responses_give_a_result_or_a_documented_error(
    responses: list[tuple[str, bytes, bool]], tmp_path: Path
) -> None:
    rng = random.Random(20261127)
    outcomes: dict[str, int] = {}
    for number in range(ITERATIONS):
        content_type, body, rendered = rng.choice(responses)
        if rng.random() < 0.2:
            content_type = mutate(content_type.encode(), rng, MUTATIONS).decode("latin-1")
        else:
            body = mutate(body, rng, MUTATIONS)
        size = rng.choice([7, 100, 4096, 1 << 20])
        chunks = [body[i : i + size] for i in range(0, len(body), size)]
        out = tmp_path / str(number)
        out.mkdir()
        reader = _RenderedReader() if rendered else read_envelope
        try:
            read_response(content_type, chunks, out, read=reader)
            kind = "result"
        except (RemoteFault, MalformedResponse) as exc:
            kind = type(exc).__name__
        outcomes[kind] = outcomes.get(kind, 0) + 1
        assert not [p for p in out.iterdir() if p.name.startswith(".xdsi-")]  # no partial file
    assert set(outcomes) == {"result", "RemoteFault", "MalformedResponse"}, outcomes
