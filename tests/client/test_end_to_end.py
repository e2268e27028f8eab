"""The requester against the real xdsi endpoint over a loopback socket (IHE RAD TF-2 §4.69)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pydicom
import pytest
import requests

from tests.client.live import LiveServer, live_server
from xdsi import ns
from xdsi.cli.retrieve import DEFAULT_TRANSFER_SYNTAXES
from xdsi.client.kos import read_kos
from xdsi.client.requester import Requester, request_for
from xdsi.errors import InvalidRequest, MalformedResponse, RemoteFault, TransportFailure
from xdsi.model import (
    DocumentRequest,
    Outcome,
    Payload,
    RetrievedDocument,
    RetrieveImagingDocumentSetRequest,
    Status,
)


def _assert_byte_identical(live: LiveServer, out: Path, uids: list[str]) -> None:
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{u}.dcm" for u in uids)
    for uid in uids:
        assert (out / f"{uid}.dcm").read_bytes() == live.files_by_uid[uid].read_bytes()


@pytest.mark.parametrize("mtom", [False, True], ids=["soap", "mtom-request"])
def test_kos_study_byte_identical(
    live: LiveServer, kos_path: Path, tmp_path: Path, mtom: bool
) -> None:
    documents = read_kos(kos_path)
    seen: list[str] = []
    result = Requester(live.endpoint, mtom=mtom).retrieve(
        request_for(documents, DEFAULT_TRANSFER_SYNTAXES),
        tmp_path,
        on_document=lambda saved: seen.append(saved.document_unique_id),
    )
    uids = [d.document_unique_id for d in documents]
    assert result.status is Status.SUCCESS
    assert result.errors == ()
    assert result.mtom  # RAD69-016: the document travels as an XOP infoset
    assert result.action == ns.ACTION_RAD69_RESPONSE
    assert sorted(seen) == sorted(uids)
    assert [d.document_unique_id for d in result.documents] == uids
    assert {d.repository_unique_id for d in result.documents} == {
        live.settings.repository_unique_id
    }
    _assert_byte_identical(live, tmp_path, uids)


def test_every_sample_byte_identical(live: LiveServer, tmp_path: Path) -> None:
    """All 13 samples (JPEG, JPEG-LS, RLE, J2K, multi-frame, SR, KOS) come back unchanged with
    the default transfer syntax list."""
    documents = [
        DocumentRequest(study, series, uid, live.settings.repository_unique_id)
        for uid, (study, series) in live.study_of.items()
    ]
    result = Requester(live.endpoint).retrieve(
        request_for(documents, DEFAULT_TRANSFER_SYNTAXES), tmp_path
    )
    assert result.status is Status.SUCCESS
    _assert_byte_identical(live, tmp_path, list(live.study_of))


def test_wsdl_from_the_endpoint(live: LiveServer, kos_path: Path, tmp_path: Path) -> None:
    documents = read_kos(kos_path)[:1]
    requester = Requester(live.endpoint, wsdl=f"{live.endpoint}?wsdl")
    result = requester.retrieve(request_for(documents, DEFAULT_TRANSFER_SYNTAXES), tmp_path)
    assert result.status is Status.SUCCESS
    _assert_byte_identical(live, tmp_path, [documents[0].document_unique_id])


@pytest.mark.parametrize("mtom", [False, True], ids=["soap", "mtom-request"])
def test_zeep_own_call(live: LiveServer, kos_path: Path, mtom: bool) -> None:
    """zeep end to end (functional: zeep strips CR/LF at part edges, so no byte comparison)."""
    documents = read_kos(kos_path)
    response = Requester(live.endpoint, mtom=mtom).call(
        request_for(documents, DEFAULT_TRANSFER_SYNTAXES)
    )
    assert response.RegistryResponse.status == ns.STATUS_SUCCESS
    returned = {d.DocumentUniqueId: d for d in response.DocumentResponse}
    assert set(returned) == {d.document_unique_id for d in documents}
    for uid, doc in returned.items():
        assert doc.mimeType == ns.MEDIA_DICOM
        assert doc.Document[128:132] == b"DICM"
        assert abs(len(doc.Document) - live.files_by_uid[uid].stat().st_size) <= 4


def test_unknown_instance_is_a_failure_with_its_registry_error(
    live: LiveServer, kos_path: Path, tmp_path: Path
) -> None:
    known = read_kos(kos_path)[0]
    unknown = DocumentRequest(
        known.study_instance_uid,
        known.series_instance_uid,
        "1.2.3.4.5.6.7.8.9",
        known.repository_unique_id,
    )
    result = Requester(live.endpoint).retrieve(
        request_for([unknown], DEFAULT_TRANSFER_SYNTAXES), tmp_path
    )
    assert result.status is Status.FAILURE
    assert result.documents == ()
    (error,) = result.errors
    assert error.error_code == live.settings.not_found_code
    assert error.location == "1.2.3.4.5.6.7.8.9"
    assert list(tmp_path.iterdir()) == []


def test_partial_success(live: LiveServer, kos_path: Path, tmp_path: Path) -> None:
    known = read_kos(kos_path)[0]
    unknown = DocumentRequest(
        known.study_instance_uid, known.series_instance_uid, "1.2.3.99", known.repository_unique_id
    )
    result = Requester(live.endpoint, mtom=True).retrieve(
        request_for([known, unknown], DEFAULT_TRANSFER_SYNTAXES), tmp_path
    )
    assert result.status is Status.PARTIAL_SUCCESS
    assert [e.location for e in result.errors] == ["1.2.3.99"]
    _assert_byte_identical(live, tmp_path, [known.document_unique_id])


def test_unknown_repository(live: LiveServer, kos_path: Path, tmp_path: Path) -> None:
    doc = read_kos(kos_path)[0]
    other = DocumentRequest(
        doc.study_instance_uid, doc.series_instance_uid, doc.document_unique_id, "1.2.3.4"
    )
    result = Requester(live.endpoint).retrieve(
        request_for([other], DEFAULT_TRANSFER_SYNTAXES), tmp_path
    )
    assert result.status is Status.FAILURE
    assert [e.error_code for e in result.errors] == [ns.XDS_UNKNOWN_REPOSITORY_ID]


def test_transcoded_when_only_explicit_vr_le_is_accepted(
    live: LiveServer, kos_path: Path, tmp_path: Path
) -> None:
    """dcm4che's default list: the compressed MR instances come back as Explicit VR LE."""
    documents = read_kos(kos_path)
    result = Requester(live.endpoint).retrieve(
        request_for(documents, [ns.TS_EXPLICIT_VR_LE]), tmp_path
    )
    assert result.status is Status.SUCCESS
    for saved in result.documents:
        ds = pydicom.dcmread(saved.path)
        assert ds.file_meta.TransferSyntaxUID == ns.TS_EXPLICIT_VR_LE
        assert ds.SOPInstanceUID == saved.document_unique_id


def test_home_community_id_is_echoed(live: LiveServer, kos_path: Path, tmp_path: Path) -> None:
    community = ns.URN_OID + "1.3.6.1.4.1.21367.13.70.200"
    documents = read_kos(kos_path, home_community_id=community)[:2]
    result = Requester(live.endpoint).retrieve(
        request_for(documents, DEFAULT_TRANSFER_SYNTAXES), tmp_path
    )
    assert {d.home_community_id for d in result.documents} == {community}


def test_request_zeep_refuses_to_build(live: LiveServer, tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="StudyRequest"):
        Requester(live.endpoint).retrieve(request_for([], [ns.TS_EXPLICIT_VR_LE]), tmp_path)


def test_sender_fault_from_the_real_server(
    tmp_path: Path, free_port_factory: Callable[[], int], sample_files: list[Path], kos_path: Path
) -> None:
    """A request above the server's max_request_bytes gets a SOAP 1.2 Sender fault."""
    with live_server(
        tmp_path / "data", free_port_factory(), sample_files[:1], max_request_bytes=1500
    ) as small:
        documents = read_kos(kos_path) * 4
        with pytest.raises(RemoteFault) as caught:
            Requester(small.endpoint).retrieve(
                request_for(documents, DEFAULT_TRANSFER_SYNTAXES), tmp_path / "out"
            )
    assert caught.value.code.endswith(":Sender")
    assert "limit" in caught.value.reason


def test_http_error_without_soap(live: LiveServer, kos_path: Path, tmp_path: Path) -> None:
    with pytest.raises(TransportFailure, match="404"):
        Requester(live.endpoint + "/nothing-here").retrieve(
            request_for(read_kos(kos_path), DEFAULT_TRANSFER_SYNTAXES), tmp_path
        )


def test_connection_refused(free_port: int, kos_path: Path, tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:{free_port}/xdsi/ImagingDocumentSource"
    with pytest.raises(TransportFailure, match="cannot reach"):
        Requester(endpoint).retrieve(
            request_for(read_kos(kos_path), DEFAULT_TRANSFER_SYNTAXES), tmp_path
        )


# --- a payload that breaks while streaming (failure injection: no real store does this) ------


def _breaking_retrieve(good: bytes) -> Callable[[RetrieveImagingDocumentSetRequest], Outcome]:
    def chunks() -> Iterator[bytes]:
        yield good[:5000]
        raise OSError("disk read error injected by the test")

    def retrieve(request: RetrieveImagingDocumentSetRequest) -> Outcome:
        first, second = request.documents[:2]
        return Outcome(
            documents=[
                RetrievedDocument(first, Payload.from_bytes(good, ns.MEDIA_DICOM)),
                RetrievedDocument(second, Payload(ns.MEDIA_DICOM, chunks, len(good))),
            ]
        )

    return retrieve


def test_cut_off_stream_leaves_no_partial_file(
    tmp_path: Path, free_port_factory: Callable[[], int], sample_files: list[Path], kos_path: Path
) -> None:
    documents = read_kos(kos_path)[:2]
    good = sample_files[0].read_bytes() * 8  # > the 5000 bytes sent before the break
    out = tmp_path / "out"
    with (
        live_server(
            tmp_path / "data", free_port_factory(), [], retrieve=_breaking_retrieve(good)
        ) as broken,
        pytest.raises(MalformedResponse),
    ):
        Requester(broken.endpoint).retrieve(request_for(documents, DEFAULT_TRANSFER_SYNTAXES), out)
    # The first document was complete and stays; the cut one is not left behind.
    assert sorted(p.name for p in out.iterdir()) == [f"{documents[0].document_unique_id}.dcm"]
    assert (out / f"{documents[0].document_unique_id}.dcm").read_bytes() == good


def test_concurrent_requesters(live: LiveServer, kos_path: Path, tmp_path: Path) -> None:
    """Two requesters share nothing: each gets its own byte-exact copy."""
    documents = read_kos(kos_path)
    failures: list[BaseException] = []

    def run(out: Path) -> None:
        try:
            result = Requester(live.endpoint, session=requests.Session()).retrieve(
                request_for(documents, DEFAULT_TRANSFER_SYNTAXES), out
            )
            assert result.status is Status.SUCCESS
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(tmp_path / str(i),)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert failures == []
    for i in range(2):
        _assert_byte_identical(live, tmp_path / str(i), [d.document_unique_id for d in documents])
