"""RAD-69 with transcoding while the response streams, over a real loopback server (issue 4).

The server is the real one (waitress, SQLite store, worker processes); the consumer is xdsi's
own requester.  Stored objects with corrupt compressed pixel data are made from a sample and
stored like any other instance: the store accepts them (their encapsulation is well-formed).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pydicom
import pytest
from pydicom.encaps import encapsulate, generate_frames
from pydicom.uid import generate_uid

from tests.client.live import LiveServer, live_server
from tests.conftest import SAMPLES
from xdsi import ns
from xdsi.client.requester import Requester, request_for
from xdsi.errors import MalformedResponse
from xdsi.imaging.transcode import transcode
from xdsi.model import DocumentRequest, Status

CT = SAMPLES / "ct/series1/ct_small.dcm"
MR = SAMPLES / "ct/series2/mr_small_explicit.dcm"
RLE = SAMPLES / "ct/series2/mr_small_rle.dcm"
JPEG_LS = SAMPLES / "ct/series2/mr_small_jpegls.dcm"
J2K = SAMPLES / "mr/series1/emri_j2k_multiframe.dcm"


def corrupt_copy(source: Path, out: Path, kind: str) -> Path:
    """``source`` under a new SOP Instance UID, each frame truncated or made undecodable.

    ``truncated``: the first half of each codestream (no EOI/EOC: found before the envelope).
    ``undecodable``: SOI, zeros, EOI — well-formed on the outside, found only by decoding.
    """
    ds = pydicom.dcmread(source)
    count = int(ds.get("NumberOfFrames") or 1)
    frames = list(generate_frames(ds.PixelData, number_of_frames=count))
    if kind == "truncated":
        frames = [f[: len(f) // 4 * 2] for f in frames]
    else:
        frames = [b"\xff\xd8" + b"\x00" * 60 + b"\xff\xd9" for _ in frames]
    ds.PixelData = encapsulate(frames)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.save_as(out, enforce_file_format=True)
    return out


def _document(server: LiveServer, path: Path) -> DocumentRequest:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return DocumentRequest(
        str(ds.StudyInstanceUID),
        str(ds.SeriesInstanceUID),
        str(ds.SOPInstanceUID),
        server.settings.repository_unique_id,
    )


def _uid(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)


@pytest.fixture
def corrupt(tmp_path: Path) -> dict[str, Path]:
    made = tmp_path / "made"
    made.mkdir()
    return {
        "truncated-jls": corrupt_copy(JPEG_LS, made / "t-jls.dcm", "truncated"),
        "truncated-j2k": corrupt_copy(J2K, made / "t-j2k.dcm", "truncated"),
        "undecodable-jls": corrupt_copy(JPEG_LS, made / "u-jls.dcm", "undecodable"),
    }


@pytest.mark.parametrize("workers", [2, 0], ids=["worker-processes", "request-thread"])
def test_corrupt_compressed_data_is_that_documents_error_the_others_are_served(
    workers: int,
    tmp_path: Path,
    free_port_factory: Callable[[], int],
    corrupt: dict[str, Path],
) -> None:
    good = [CT, JPEG_LS, MR]
    bad = list(corrupt.values())
    order = [CT, bad[0], JPEG_LS, bad[1], bad[2], MR]
    # RLE is none of the stored syntaxes: every document is transcoded (a stored syntax that is
    # listed is sent as stored, corrupt or not).
    with live_server(
        tmp_path / "data", free_port_factory(), good + bad, transcode_workers=workers
    ) as server:
        request = request_for([_document(server, p) for p in order], [ns.TS_RLE])
        result = Requester(server.endpoint).retrieve(request, tmp_path / "out")
    assert result.status is Status.PARTIAL_SUCCESS
    assert {e.location for e in result.errors} == {_uid(p) for p in bad}
    assert {e.error_code for e in result.errors} == {ns.WADO_PROCESSING_FAILURE}
    assert [d.document_unique_id for d in result.documents] == [_uid(p) for p in good]
    for saved, path in zip(result.documents, good, strict=True):
        assert saved.path.read_bytes() == transcode(path, ns.TS_RLE)


def test_late_failure_drops_the_connection_then_is_reported_up_front(
    tmp_path: Path, free_port_factory: Callable[[], int], corrupt: dict[str, Path]
) -> None:
    """Beyond the first ``transcode_window`` documents a decoding failure cannot be a
    RegistryError any more: the response is cut, never completed with wrong bytes, and the next
    request answers that document with ``urn:dicom:wado:0014`` and serves the others."""
    undecodable = corrupt["undecodable-jls"]
    order = [CT, RLE, undecodable, MR]
    with live_server(
        tmp_path / "data", free_port_factory(), [CT, RLE, MR, undecodable], transcode_window=1
    ) as server:
        request = request_for([_document(server, p) for p in order], [ns.TS_EXPLICIT_VR_LE])
        with pytest.raises(MalformedResponse):
            Requester(server.endpoint).retrieve(request, tmp_path / "first")
        kept = sorted(p.name for p in (tmp_path / "first").iterdir())
        assert kept == sorted(f"{_uid(p)}.dcm" for p in (CT, RLE))  # complete ones only
        result = Requester(server.endpoint).retrieve(request, tmp_path / "again")
    assert result.status is Status.PARTIAL_SUCCESS
    assert [(e.error_code, e.location) for e in result.errors] == [
        (ns.WADO_PROCESSING_FAILURE, _uid(undecodable))
    ]
    assert [d.document_unique_id for d in result.documents] == [_uid(p) for p in (CT, RLE, MR)]
    for saved, path in zip(result.documents, (CT, RLE, MR), strict=True):
        assert saved.path.read_bytes() == transcode(path, ns.TS_EXPLICIT_VR_LE)


def test_many_documents_in_order_with_small_window(
    tmp_path: Path, free_port_factory: Callable[[], int], sample_files: list[Path]
) -> None:
    """Every sample three times, at most two in flight: order and bytes kept.

    Each sample is repeated in place, so that the series stay contiguous: a RAD-69 request
    groups its DocumentRequests by study and series, and the response follows the request.
    """
    with live_server(
        tmp_path / "data", free_port_factory(), sample_files, transcode_window=2
    ) as server:
        paths = [p for p in sample_files if _uid(p) in server.files_by_uid for _ in range(3)]
        request = request_for([_document(server, p) for p in paths], [ns.TS_JPEG_LS_LOSSLESS])
        result = Requester(server.endpoint).retrieve(request, tmp_path / "out")
    assert result.errors == ()
    assert [d.document_unique_id for d in result.documents] == [_uid(p) for p in paths]
    for saved, path in zip(result.documents, paths, strict=True):
        assert saved.path.read_bytes() == transcode(path, ns.TS_JPEG_LS_LOSSLESS)
