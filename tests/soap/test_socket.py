"""Over a real socket: waitress on a free loopback port serving the real store (design note 12:
MTOM framing, chunking and streaming only show over a socket)."""

from __future__ import annotations

import dataclasses
import http.client
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
import zeep

from tests.soap.conftest import Sample
from tests.soap.support import (
    NSMAP,
    STORED_SYNTAXES,
    body_child,
    documents,
    envelope,
    mtom_wrap,
    parse_multipart,
    request_element,
    schema,
    xop_reconstruct,
)
from xdsi import ns
from xdsi.model import Outcome, Payload
from xdsi.soap import make_app
from xdsi.soap.server import create_server, stop_server


class Running:
    def __init__(self, app, settings) -> None:  # type: ignore[no-untyped-def]
        self.server = create_server(app, settings, host="127.0.0.1", port=0)
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.effective_port}{settings.endpoint_path}"

    def _run(self) -> None:
        try:
            self.server.run()
        except (OSError, ValueError):
            if not self.stopping:  # stop_server closes the sockets inside the loop itself
                raise

    def stop(self) -> None:
        self.stopping = True
        stop_server(self.server, self.thread)


@pytest.fixture(scope="module")
def server(app, settings) -> Iterator[Running]:  # type: ignore[no-untyped-def]
    running = Running(app, settings)
    yield running
    running.stop()


def test_zeep_from_the_wsdl_url_alone(server: Running, ct_study: list[Sample]) -> None:
    client = zeep.Client(server.url + "?wsdl")
    assert type(client.service._binding).__name__ == "Soap12Binding"
    studies: dict[str, dict[str, list[dict[str, str]]]] = {}
    for s in ct_study:
        studies.setdefault(s.doc.study, {}).setdefault(s.doc.series, []).append(
            {"RepositoryUniqueId": s.doc.repository, "DocumentUniqueId": s.doc.sop}
        )
    study_requests = [
        {
            "studyInstanceUID": study,
            "SeriesRequest": [
                {"seriesInstanceUID": series, "DocumentRequest": docs} for series, docs in s.items()
            ],
        }
        for study, s in studies.items()
    ]
    kwargs = {
        "StudyRequest": study_requests,
        "TransferSyntaxUIDList": {"TransferSyntaxUID": list(STORED_SYNTAXES)},
    }
    result = client.service.ImagingDocumentSource_RetrieveImagingDocumentSet(**kwargs)
    assert result.RegistryResponse.status == ns.STATUS_SUCCESS
    got = {d.DocumentUniqueId: d.Document for d in result.DocumentResponse}
    assert set(got) == {s.doc.sop for s in ct_study}
    for s in ct_study:
        # zeep strips CR/LF at part edges (libraries.md §2): compare modulo that, the exact
        # bytes are checked below from zeep's raw response with our own parser.
        assert got[s.doc.sop] == s.data.strip(b"\r\n")
    with client.settings(raw_response=True):
        raw = client.service.ImagingDocumentSource_RetrieveImagingDocumentSet(**kwargs)
    package = parse_multipart(raw.headers["Content-Type"], raw.content)
    assert documents(package) == {s.doc.sop: s.data for s in ct_study}
    sent_action = package.envelope.findtext(".//wsa:Action", namespaces=NSMAP)
    assert sent_action == ns.ACTION_RAD69_RESPONSE


def test_schemas_resolve_over_http(server: Running) -> None:
    wsdl = requests.get(server.url + "?wsdl", timeout=30)
    assert wsdl.status_code == 200
    assert f'location="{server.url}"'.encode() in wsdl.content
    assert b"../schema" not in wsdl.content
    xsd = requests.get(server.url + "?xsd=IHE/XDSI.b_ImagingDocumentSource.xsd", timeout=30)
    assert xsd.status_code == 200 and f"{server.url}?xsd=ebRS/rs.xsd".encode() in xsd.content
    for evil in (
        "../wsdl/XDS-I.b_ImagingDocumentSource.wsdl",
        "/etc/passwd",
        "IHE/../../../setup.cfg",
        "..%2F..%2Fsetup.cfg",
    ):
        assert requests.get(server.url + "?xsd=" + evil, timeout=30).status_code == 404


@pytest.mark.parametrize("mtom", [False, True])
def test_requests_post_is_byte_exact(server: Running, ct_study: list[Sample], mtom: bool) -> None:
    soap = envelope(request_element([s.doc for s in ct_study]))
    ct, body = mtom_wrap(soap) if mtom else ("application/soap+xml; charset=utf-8", soap)
    with requests.post(
        server.url, data=body, headers={"Content-Type": ct}, stream=True, timeout=60
    ) as r:
        assert r.status_code == 200
        assert r.headers.get("Transfer-Encoding") is None  # sizes known: Content-Length
        package = parse_multipart(r.headers["Content-Type"], r.raw.read())
    assert documents(package) == {s.doc.sop: s.data for s in ct_study}
    assert schema().validate(body_child(xop_reconstruct(package)))


def test_chunked_request_body(server: Running, ct_study: list[Sample]) -> None:
    soap = envelope(request_element([ct_study[0].doc]))

    def pieces() -> Iterator[bytes]:
        for i in range(0, len(soap), 97):
            yield soap[i : i + 97]

    r = requests.post(
        server.url, data=pieces(), headers={"Content-Type": "application/soap+xml"}, timeout=60
    )
    assert r.request.headers.get("Transfer-Encoding") == "chunked"
    assert r.status_code == 200
    package = parse_multipart(r.headers["Content-Type"], r.content)
    assert documents(package) == {ct_study[0].doc.sop: ct_study[0].data}


def test_rendered_replies_keep_the_connection_open(
    server: Running, ct_study: list[Sample]
) -> None:
    """Rendered replies are produced before they are sent, so they carry Content-Length and the
    HTTP/1.1 connection stays open for the next request; so do RAD-69 replies of documents sent
    as stored (their size is indexed), streamed from the store."""
    from xdsi.client.rendered import RenderedParameters
    from xdsi.client.rendered import envelope as rendered_envelope
    from xdsi.client.rendered import request_element as rendered_request
    from xdsi.model import DocumentRequest

    docs = [DocumentRequest(s.doc.study, s.doc.series, s.doc.sop, s.doc.repository)
            for s in ct_study]  # fmt: skip
    parts = urlsplit(server.url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=60)
    try:
        headers = {"Content-Type": ns.MEDIA_SOAP12}
        sockets = []
        for wanted in (docs[:1], docs):
            body = rendered_envelope(rendered_request(wanted, RenderedParameters()), server.url)
            connection.request("POST", parts.path, body, headers)
            answer = connection.getresponse()
            data = answer.read()
            assert answer.status == 200
            assert answer.getheader("Transfer-Encoding") is None
            assert int(answer.getheader("Content-Length") or -1) == len(data)
            assert answer.getheader("Connection") is None
            package = parse_multipart(answer.getheader("Content-Type") or "", data)
            assert len(package.parts) == len(wanted)
            assert all(part.startswith(b"\xff\xd8") for part in package.parts.values())
            sockets.append(connection.sock)
        assert sockets[0] is not None
        assert sockets[1] is sockets[0]  # the second request went over the same connection
        rad69 = envelope(request_element([ct_study[0].doc]))
        connection.request("POST", parts.path, rad69, headers)
        answer = connection.getresponse()
        data = answer.read()
        assert answer.getheader("Transfer-Encoding") is None
        assert int(answer.getheader("Content-Length") or -1) == len(data)
        package = parse_multipart(answer.getheader("Content-Type") or "", data)
        assert documents(package) == {ct_study[0].doc.sop: ct_study[0].data}
        assert connection.sock is sockets[0]
    finally:
        connection.close()


def test_stop_server_ends_kept_alive_connections(settings, app, ct_study) -> None:  # type: ignore[no-untyped-def]
    """A kept-alive connection would keep waitress's loop (and its thread) running after
    ``server.close()``; stop_server closes it, and the loop ends."""
    running = Running(app, settings)
    parts = urlsplit(running.url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        body = envelope(request_element([ct_study[0].doc]))
        connection.request("POST", parts.path, body, {"Content-Type": ns.MEDIA_SOAP12})
        answer = connection.getresponse()
        answer.read()
        assert answer.getheader("Content-Length") is not None  # the connection stays open
        assert connection.sock is not None
        running.stop()
        assert not running.thread.is_alive()
        assert connection.sock.recv(1) == b""  # closed by the server
    finally:
        connection.close()
        running.stop()


def _raw_exchange(url: str, body: bytes, read_limit: int | None = None) -> bytes:
    """POST over a plain socket and read until the server closes (or ``read_limit`` bytes)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=60) as sock:
        head = (
            f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            "Content-Type: application/soap+xml\r\nConnection: keep-alive\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        sock.sendall(head + body)
        received = bytearray()
        while read_limit is None or len(received) < read_limit:
            data = sock.recv(65536)
            if not data:
                break
            received += data
        return bytes(received)


def _failing(payload: Payload, after: int) -> Payload:
    """Failure injection: the payload's chunks break after ``after`` bytes."""

    def chunks() -> Iterator[bytes]:
        for chunk in payload.chunks():
            yield chunk[:after]
            raise OSError("disk read error (injected)")

    return dataclasses.replace(payload, chunks=chunks)


def test_payload_failure_mid_stream_breaks_the_connection(
    settings,
    retrieve,
    ct_study: list[Sample],  # type: ignore[no-untyped-def]
) -> None:
    def breaking(request):  # type: ignore[no-untyped-def]
        outcome = retrieve(request)
        docs = [dataclasses.replace(d, payload=_failing(d.payload, 100)) for d in outcome.documents]
        return Outcome(docs, outcome.errors)

    running = Running(make_app(settings, retrieve=breaking), settings)
    try:
        raw = _raw_exchange(running.url, envelope(request_element([ct_study[0].doc])))
        head, _, rest = raw.partition(b"\r\n\r\n")
        assert b"200 OK" in head
        boundary = head.split(b'boundary="')[1].split(b'"')[0]
        assert b"--" + boundary + b"--" not in rest  # never a complete multipart
        # ... and the connection was closed (_raw_exchange read to the end) short of the body's
        # declared length, or of a terminated chunked body
        length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        if length is not None:
            assert len(rest) < int(length.group(1))
        else:
            assert b"chunked" in head.lower() and not rest.endswith(b"0\r\n\r\n")
        # The server keeps serving (a request without documents, so nothing to break).
        unknown = dataclasses.replace(ct_study[0].doc, sop="1.2.3.4.999")
        again = requests.post(
            running.url,
            data=envelope(request_element([unknown])),
            headers={"Content-Type": "application/soap+xml", "Connection": "close"},
            timeout=60,
        )
        assert again.status_code == 200
        assert b"ResponseStatusType:Failure" in again.content
    finally:
        running.stop()


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_client_disconnect_closes_the_payload(
    settings,
    retrieve,
    ct_study: list[Sample],  # type: ignore[no-untyped-def]
) -> None:
    closed = threading.Event()
    produced = []

    def endless() -> Iterator[bytes]:
        try:
            # Bounded, so that a failure to stop shows as an assertion, not a runaway test.
            for _ in range(512):
                produced.append(1)
                yield b"\0" * (1 << 20)
        finally:
            closed.set()

    def huge(request):  # type: ignore[no-untyped-def]
        outcome = retrieve(request)
        docs = [
            dataclasses.replace(d, payload=Payload(ns.MEDIA_DICOM, endless, None))
            for d in outcome.documents
        ]
        return Outcome(docs, outcome.errors)

    running = Running(make_app(settings, retrieve=huge), settings)
    try:
        # Warm up with a retrieve that touches the store (an unknown document, so no endless
        # payload) so that lazily opened files (index connection, libraries) are not counted.
        unknown = dataclasses.replace(ct_study[0].doc, sop="1.2.3.999999")
        warm = requests.post(
            running.url,
            data=envelope(request_element([unknown])),
            headers={"Content-Type": "application/soap+xml", "Connection": "close"},
            timeout=60,
        )
        assert warm.status_code == 200
        before = _open_fds()
        received = _raw_exchange(
            running.url, envelope(request_element([ct_study[0].doc])), read_limit=4 << 20
        )
        assert len(received) >= 4 << 20
        assert closed.wait(60), "the payload iterator was not closed after the client left"
        for _ in range(600):  # wait (bounded) for the server to release the connection
            if _open_fds() <= before:
                break
            time.sleep(0.05)
        assert _open_fds() <= before
        assert len(produced) < 512  # it stopped producing when the client left
        ok = requests.post(
            running.url,
            data=envelope(request_element([ct_study[0].doc])),
            headers={"Content-Type": "application/soap+xml", "Connection": "close"},
            timeout=60,
        )
        assert ok.status_code == 200
    finally:
        running.stop()


def _open_store_files(data_dir: Path) -> list[str]:
    """Descriptors of this process that point at files of the store's tree (not the index
    database, whose pooled connection may open lazily on the first request)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # closed between listdir and readlink
        if target.startswith(str(data_dir)) and not target.rsplit("/", 1)[-1].startswith("index"):
            found.append(target)
    return found


def test_real_file_handles_are_released(
    server: Running, settings, ct_study: list[Sample]  # type: ignore[no-untyped-def]
) -> None:
    """Disconnecting mid-stream from a real store response leaves no store file open."""
    body = envelope(request_element([s.doc for s in ct_study] * 50))
    data_dir = Path(settings.data_dir).resolve()
    assert _open_store_files(data_dir) == []
    _raw_exchange(server.url, body, read_limit=20_000)
    for _ in range(600):
        if not _open_store_files(data_dir):
            break
        time.sleep(0.05)
    assert _open_store_files(data_dir) == []
