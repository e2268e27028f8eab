"""Gateway faults: each gives its documented response and the service keeps serving.

docs/conformance.md "Gateway mode" lists them: PACS stopped mid-study, PACS refusing the
association (see test_dcmqrscp.py), one failing C-GET sub-operation, a PACS slower than the
timeouts, and a full cache.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.benchmarks.studygen import generate_ct_study
from tests.gateway.fakepacs import fake_pacs
from tests.gateway.support import assert_as_pacs_holds, codes, gateway, samples_of
from tests.peers.orthanc import running_orthanc
from xdsi import ns
from xdsi.config import Settings
from xdsi.errors import MalformedResponse
from xdsi.model import DocumentRequest, Status
from xdsi.store.base import InstanceRecord

REPOSITORY = Settings().repository_unique_id
MR_SAMPLE = Path(__file__).resolve().parents[2] / "samples/dicom/ct/series2/mr_small_explicit.dcm"


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "streaming"])
def test_pacs_stopped_mid_study(tmp_path: Path, stream: bool) -> None:
    """Orthanc is killed after the 5th of 24 instances arrived.  Waiting for all: PartialSuccess,
    the rest XDSRepositoryError naming the PACS.  Streaming: the response may already be under
    way, then it is cut (never a short document).  The delivered instances are then served from
    the cache with the PACS still down."""
    paths = generate_ct_study(tmp_path / "study", 24, series=1)
    samples = samples_of(paths, REPOSITORY)
    with running_orthanc(tmp_path / "orthanc") as orthanc:
        for path in paths:
            orthanc.upload(path)
        with gateway(tmp_path / "data", orthanc.aet, orthanc.dicom_port, pacs_stream=stream) as gw:
            arrived: list[str] = []

            def kill_after_five(record: InstanceRecord) -> None:
                arrived.append(record.sop_instance_uid)
                if len(arrived) == 5:
                    orthanc.process.send_signal(signal.SIGKILL)

            gw.store.cache.listeners.append(kill_after_five)
            out = tmp_path / "out"
            try:
                result = gw.retrieve([s.doc for s in samples], out)
            except MalformedResponse:
                assert stream
                assert not any(p.stat().st_size == 0 for p in out.glob("*"))
            else:
                assert result.status is Status.PARTIAL_SUCCESS
                assert 5 <= len(result.documents) < 24
                assert set(codes(result)) == {ns.XDS_REPOSITORY_ERROR}
                assert all(f"{orthanc.aet}@127.0.0.1" in e.code_context for e in result.errors)
            orthanc.process.wait(30)
            delivered = [s for s in samples if s.uid in arrived[:5]]
            again = gw.retrieve([s.doc for s in delivered], tmp_path / "again")
            assert again.status is Status.SUCCESS
            for s in delivered:
                got = (tmp_path / "again" / f"{s.uid}.dcm").read_bytes()
                assert_as_pacs_holds(s, got, None, tmp_path)
            rest = [s.doc for s in samples if s.uid not in arrived]
            down = gw.retrieve(rest[:2], tmp_path / "down")
            assert down.status is Status.FAILURE
            assert codes(down) == [ns.XDS_REPOSITORY_ERROR] * 2
            assert "cannot be reached" in down.errors[0].code_context


def test_one_instance_fails(tmp_path: Path, free_port: int) -> None:
    """The PACS reports one failed C-GET sub-operation: that document gets urn:dicom:wado:0014,
    the others are delivered (PartialSuccess) — waiting for all and streaming alike, since the
    failing instance is the first one asked for."""
    with fake_pacs(MR_SAMPLE, free_port, broken=0) as pacs:
        docs = [
            DocumentRequest(pacs.study, pacs.series, uid, REPOSITORY) for uid in pacs.uids()
        ]
        for stream in (False, True):
            data = tmp_path / f"data-{stream}"
            with gateway(data, "FAKEPACS", pacs.port, pacs_stream=stream) as gw:
                result = gw.retrieve(docs, tmp_path / f"out-{stream}")
            assert result.status is Status.PARTIAL_SUCCESS
            assert [d.document_unique_id for d in result.documents] == pacs.uids()[1:]
            assert codes(result) == [ns.WADO_PROCESSING_FAILURE]
            assert result.errors[0].location == pacs.uids()[0]
            assert "failed c-get sub-operation" in result.errors[0].code_context


def test_slow_pacs_beyond_the_timeout(tmp_path: Path, free_port: int) -> None:
    """A PACS slower than the DIMSE timeout: XDSRepositoryError for every document (had we waited,
    the instances would have come after 30 s); the next request is answered the same way."""
    with fake_pacs(MR_SAMPLE, free_port, get_delay=30) as pacs:
        docs = [
            DocumentRequest(pacs.study, pacs.series, uid, REPOSITORY) for uid in pacs.uids()
        ]
        overrides = {"pacs_dimse_timeout": 1.0, "pacs_overall_timeout": 20.0}
        with gateway(tmp_path / "data", "FAKEPACS", pacs.port, **overrides) as gw:
            for attempt in range(2):
                result = gw.retrieve(docs, tmp_path / f"out{attempt}")
                assert result.status is Status.FAILURE
                assert codes(result) == [ns.XDS_REPOSITORY_ERROR] * 3
                assert "stopped answering" in result.errors[0].code_context


def test_overall_timeout(tmp_path: Path, free_port: int) -> None:
    """A PACS that trickles instances (each within the DIMSE timeout) is cut off at the overall
    timeout: what arrived is delivered, the rest is XDSRepositoryError."""
    with fake_pacs(MR_SAMPLE, free_port, get_delay=2.0) as pacs:
        docs = [
            DocumentRequest(pacs.study, pacs.series, uid, REPOSITORY) for uid in pacs.uids()
        ]
        overrides = {"pacs_dimse_timeout": 10.0, "pacs_overall_timeout": 3.0, "pacs_stream": False}
        with gateway(tmp_path / "data", "FAKEPACS", pacs.port, **overrides) as gw:
            result = gw.retrieve(docs, tmp_path / "out")
    assert result.status is Status.PARTIAL_SUCCESS
    assert [d.document_unique_id for d in result.documents] == pacs.uids()[:1]
    assert codes(result) == [ns.XDS_REPOSITORY_ERROR] * 2


def test_cache_full(
    tmp_path: Path, sample_files: list[Path], free_port_factory: Callable[[], int]
) -> None:
    """A cache smaller than the request: what fits is delivered, the rest is
    XDSRepositoryOutOfResources; once that response is read, further requests are served."""
    samples = samples_of(sample_files, REPOSITORY)
    biggest = max(s.path.stat().st_size for s in samples)
    with running_orthanc(tmp_path / "orthanc") as orthanc:
        for s in samples:
            orthanc.upload(s.path)
        overrides = {"pacs_cache_bytes": biggest + 50_000, "pacs_stream": False}
        with gateway(tmp_path / "data", orthanc.aet, orthanc.dicom_port, **overrides) as gw:
            result = gw.retrieve([s.doc for s in samples], tmp_path / "out")
            assert result.status is Status.PARTIAL_SUCCESS
            assert 1 <= len(result.documents) < len(samples)
            assert set(codes(result)) == {ns.XDS_REPOSITORY_OUT_OF_RESOURCES}
            assert "cache is full" in result.errors[0].code_context
            assert gw.store.cache.total_bytes <= biggest + 50_000
            for s in samples:
                if (tmp_path / "out" / f"{s.uid}.dcm").exists():
                    got = (tmp_path / "out" / f"{s.uid}.dcm").read_bytes()
                    assert_as_pacs_holds(s, got, None, tmp_path)
            failed = [s for s in samples if s.uid in {e.location for e in result.errors}]
            for s in failed[:3]:
                one = gw.retrieve([s.doc], tmp_path / f"one-{s.uid}")
                assert one.status is Status.SUCCESS, one.errors
