"""Gateway mode against a real Orthanc (Debian package): RAD-69 through C-FIND + C-GET/C-MOVE.

The samples are loaded into Orthanc; xdsi serves Orthanc over a loopback HTTP endpoint; our
client (byte checks) and zeep (functional) retrieve.  Documents must be what Orthanc holds and
sends (see ``tests/gateway/support.py`` for the oracle).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pydicom
import pytest
import requests

from tests.conftest import REPO
from tests.gateway.support import Sample, assert_as_pacs_holds, codes, gateway, samples_of
from tests.peers.orthanc import Orthanc, running_orthanc
from xdsi import ns
from xdsi.cli import main
from xdsi.client.metadata import MetadataRequester
from xdsi.client.requester import Requester, request_for
from xdsi.config import Settings
from xdsi.model import DocumentRequest, Status

REPOSITORY = Settings().repository_unique_id
SOP_INSTANCE_UID = "string(/NativeDicomModel/DicomAttribute[@keyword='SOPInstanceUID']/Value)"


@pytest.fixture(scope="module")
def move_port(free_port_factory: Callable[[], int]) -> int:
    return free_port_factory()


@pytest.fixture(scope="module")
def orthanc(
    tmp_path_factory: pytest.TempPathFactory, sample_files: list[Path], move_port: int
) -> Iterator[tuple[Orthanc, dict[str, str]]]:
    """Orthanc holding every sample; C-MOVE destination ``XDSI`` is our SCP on ``move_port``.

    Yields Orthanc and its instance id of each SOP Instance UID.
    """
    workdir = tmp_path_factory.mktemp("orthanc")
    with running_orthanc(workdir, {"XDSI": ("XDSI", "127.0.0.1", move_port)}) as o:
        ids = {}
        for path in sample_files:
            uid = str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)
            ids[uid] = o.upload(path)
        yield o, ids


@pytest.fixture(scope="module")
def samples(sample_files: list[Path]) -> list[Sample]:
    return samples_of(sample_files, REPOSITORY)


def held(orthanc: tuple[Orthanc, dict[str, str]], uid: str) -> bytes:
    o, ids = orthanc
    response = requests.get(f"{o.url}/instances/{ids[uid]}/file", timeout=60)
    response.raise_for_status()
    return response.content


@pytest.mark.parametrize(
    ("method", "stream"),
    [("c-get", True), ("c-move", True), ("c-get", False), ("c-move", False)],
    ids=["c-get", "c-move", "c-get-complete", "c-move-complete"],
)
def test_every_sample_through_the_gateway(
    orthanc: tuple[Orthanc, dict[str, str]],
    samples: list[Sample],
    move_port: int,
    tmp_path: Path,
    method: str,
    stream: bool,
) -> None:
    """All 13 samples (JPEG, JPEG-LS, RLE, J2K, multi-frame, SR, KOS), each in its stored
    syntax; cold (from Orthanc) and then again from the cache."""
    o, _ids = orthanc
    overrides = {"pacs_retrieve": method, "pacs_stream": stream, "dicom_port": move_port}
    with gateway(tmp_path / "data", o.aet, o.dicom_port, **overrides) as gw:
        for attempt in ("cold", "cached"):
            out = tmp_path / attempt
            result = gw.retrieve([s.doc for s in samples], out)
            assert result.status is Status.SUCCESS, result.errors
            assert [d.document_unique_id for d in result.documents] == [s.uid for s in samples]
            for s in samples:
                got = (out / f"{s.uid}.dcm").read_bytes()
                assert_as_pacs_holds(s, got, held(orthanc, s.uid), tmp_path)
        assert gw.store.cache.total_bytes == sum(
            (tmp_path / "cached" / f"{s.uid}.dcm").stat().st_size for s in samples
        )
        assert gw.store.cache.pinned() == set()  # every pin released once its part was sent


def test_zeep_and_transcoding_through_the_gateway(
    orthanc: tuple[Orthanc, dict[str, str]], samples: list[Sample], tmp_path: Path
) -> None:
    """zeep's own machinery gets the documents; a compressed instance asked for only as
    Explicit VR LE is fetched, then decompressed while the response streams."""
    o, _ids = orthanc
    jpegls = next(s for s in samples if s.transfer_syntax_uid == ns.TS_JPEG_LS_LOSSLESS)
    with gateway(tmp_path / "data", o.aet, o.dicom_port) as gw:
        request = request_for([jpegls.doc], (ns.TS_EXPLICIT_VR_LE,))
        result = Requester(gw.endpoint).call(request)
        assert result.RegistryResponse.status == ns.STATUS_SUCCESS
        (document,) = result.DocumentResponse
        assert document.DocumentUniqueId == jpegls.uid
        ours = pydicom.dcmread(io.BytesIO(document.Document))
        assert ours.file_meta.TransferSyntaxUID == ns.TS_EXPLICIT_VR_LE
        original = pydicom.dcmread(jpegls.path)
        assert (ours.pixel_array == original.pixel_array).all()
        # The worker read the cached file by path; the pin taken for the response is released
        # once the transcoded document was sent, not left until pin_seconds.
        assert gw.store.cache.pinned() == set()


def test_unknown_instance_and_wrong_series(
    orthanc: tuple[Orthanc, dict[str, str]], samples: list[Sample], tmp_path: Path
) -> None:
    """Not on the PACS → the configured not-found code; in another series → 0010; the rest of
    the request is delivered (PartialSuccess)."""
    o, _ids = orthanc
    good = samples[0]
    other = next(s for s in samples if s.doc.series_instance_uid != good.doc.series_instance_uid)
    study, series = good.doc.study_instance_uid, good.doc.series_instance_uid
    missing = DocumentRequest(study, series, "1.2.3.4.5.6.7.8.9", REPOSITORY)
    misplaced = DocumentRequest(study, series, other.uid, REPOSITORY)
    overrides = {"not_found_code": ns.XDS_MISSING_DOCUMENT}
    with gateway(tmp_path / "data", o.aet, o.dicom_port, **overrides) as gw:
        result = gw.retrieve([missing, good.doc, misplaced], tmp_path / "out")
    assert result.status is Status.PARTIAL_SUCCESS
    assert [d.document_unique_id for d in result.documents] == [good.uid]
    assert codes(result) == [ns.XDS_MISSING_DOCUMENT, ns.WADO_INCONSISTENT_IDENTIFIERS]
    assert [e.location for e in result.errors] == [missing.document_unique_id, other.uid]


def test_xdsi_serve_pacs(
    orthanc: tuple[Orthanc, dict[str, str]], samples: list[Sample], tmp_path: Path
) -> None:
    """``xdsi serve --pacs AET@host:port`` (a real process) serves Orthanc's instances."""
    o, _ids = orthanc
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = [sys.executable, "-m", "xdsi", "--data-dir", str(tmp_path / "data"), "serve"]
    args += ["--port", "0", "--pacs", f"{o.aet}@127.0.0.1:{o.dicom_port}"]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode()
        assert f"PACS {o.aet}@127.0.0.1:{o.dicom_port}" in line, line
        endpoint = line.split(" at ", 1)[1].split()[0]
        sample = samples[0]
        result = Requester(endpoint).retrieve(
            request_for([sample.doc], (sample.transfer_syntax_uid,)), tmp_path / "out"
        )
        assert result.status is Status.SUCCESS
        got = (tmp_path / "out" / f"{sample.uid}.dcm").read_bytes()
        assert_as_pacs_holds(sample, got, held(orthanc, sample.uid), tmp_path)
    finally:
        process.terminate()
        process.wait(30)


@pytest.mark.parametrize("text", ["ORTHANC@nowhere", "@127.0.0.1:4242", "ORTHANC@h:99999"])
def test_serve_pacs_refuses_a_malformed_address(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--data-dir", str(tmp_path), "serve", "--pacs", text])
    assert exited.value.code == 2
    assert "expected AET@host:port" in capsys.readouterr().err


def test_metadata_through_the_gateway(
    orthanc: tuple[Orthanc, dict[str, str]], samples: list[Sample], tmp_path: Path
) -> None:
    """The metadata operation (PS3.18 §6.4.3) works unchanged through the Store protocol: the
    instances are fetched, then described; not on the PACS → the not-found code."""
    o, _ids = orthanc
    chosen = samples[:3]
    first = chosen[0].doc
    missing = DocumentRequest(
        first.study_instance_uid, first.series_instance_uid, "1.2.3.4.5.6.7", REPOSITORY
    )
    with gateway(tmp_path / "data", o.aet, o.dicom_port) as gw:
        result = MetadataRequester(gw.endpoint).retrieve(
            [*(s.doc for s in chosen), missing], [SOP_INSTANCE_UID]
        )
        pinned = gw.store.cache.pinned()
    assert result.status is Status.PARTIAL_SUCCESS
    assert [d.results for d in result.documents] == [(s.uid,) for s in chosen]
    assert [e.error_code for e in result.errors] == [ns.XDS_DOCUMENT_UNIQUE_ID_ERROR]
    assert pinned == set()


def test_series_and_study_listing(
    orthanc: tuple[Orthanc, dict[str, str]], samples: list[Sample], tmp_path: Path
) -> None:
    """``Store.series``/``study`` list what the PACS has (C-FIND), in instance order, before
    anything is fetched; ``open`` then fetches."""
    o, _ids = orthanc
    mr = [s for s in samples if s.path.parent.name == "series2" and "mr_small" in s.path.name]
    study, series = mr[0].doc.study_instance_uid, mr[0].doc.series_instance_uid
    with gateway(tmp_path / "data", o.aet, o.dicom_port) as gw:
        listed = gw.store.series(study, series)
        assert {r.sop_instance_uid for r in listed} == {s.uid for s in mr}
        assert [r.instance_number for r in listed] == sorted(r.instance_number or 0 for r in listed)
        assert not any(r.available for r in listed)
        in_study = gw.store.study(study)
        assert {s.uid for s in samples if s.doc.study_instance_uid == study} == {
            r.sop_instance_uid for r in in_study
        }
        with gw.store.open(listed[0]) as fh:
            assert pydicom.dcmread(fh).SOPInstanceUID == listed[0].sop_instance_uid
        assert gw.store.series(study, series)[0].available
