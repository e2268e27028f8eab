"""Transcoding in worker processes (xdsi.imaging.pipeline): order, bounded window, failures.

Real spawned worker processes and real codecs throughout; the only injected failure is a worker
that exits in the middle of its job (``os._exit``), which no real file provokes reliably.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.encaps import encapsulate, generate_frames

from tests.conftest import SAMPLES
from xdsi import ns
from xdsi.errors import ProcessingFailure, TransferSyntaxUnavailable
from xdsi.imaging.pipeline import TranscodeStream, WorkerPool, preflight_many
from xdsi.imaging.transcode import Plan, preflight, transcode

CT = SAMPLES / "ct/series1/ct_small.dcm"
MR = SAMPLES / "ct/series2/mr_small_explicit.dcm"
JPEG_LS = SAMPLES / "ct/series2/mr_small_jpegls.dcm"
RLE = SAMPLES / "ct/series2/mr_small_rle.dcm"
SPOOL_PREFIX = "xdsi-transcoded-"


@pytest.fixture(scope="module")
def pool() -> Iterator[WorkerPool]:
    """Two real worker processes, for this module only."""
    workers = WorkerPool(2)
    yield workers
    workers.shutdown()


def with_frames(source: Path, out: Path, change: bytes) -> Path:
    """``source`` with each encapsulated frame replaced by ``change`` (even length)."""
    ds = pydicom.dcmread(source)
    count = int(ds.get("NumberOfFrames") or 1)
    frames = list(generate_frames(ds.PixelData, number_of_frames=count))
    ds.PixelData = encapsulate([change for _ in frames])
    ds.save_as(out, enforce_file_format=True)
    return out


def undecodable_jpeg_ls(tmp_path: Path) -> Path:
    """JPEG-LS frames that start with SOI and end with EOI, with nothing decodable between."""
    frame = b"\xff\xd8" + b"\x00" * 60 + b"\xff\xd9"
    return with_frames(JPEG_LS, tmp_path / "undecodable.dcm", frame)


def truncated_jpeg_ls(tmp_path: Path) -> Path:
    ds = pydicom.dcmread(JPEG_LS)
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    return with_frames(JPEG_LS, tmp_path / "truncated.dcm", frame[: len(frame) // 2 // 2 * 2])


def test_stream_keeps_order_and_bytes(pool: WorkerPool) -> None:
    jobs = [(path, target) for path in (CT, MR, JPEG_LS, RLE, CT) for target in
            (ns.TS_JPEG_LS_LOSSLESS, ns.TS_EXPLICIT_VR_LE)]
    stream = TranscodeStream(pool, jobs, window=3)
    for index, (path, target) in enumerate(jobs):
        assert b"".join(stream.chunks(index, chunk_size=4096)) == transcode(path, target)


def test_inline_pool_gives_the_same_bytes() -> None:
    inline = WorkerPool(0)
    stream = TranscodeStream(inline, [(RLE, ns.TS_JPEG2000_LOSSLESS)], window=1)
    assert b"".join(stream.chunks(0)) == transcode(RLE, ns.TS_JPEG2000_LOSSLESS)


def test_window_bounds_the_jobs_ahead_of_the_reader(pool: WorkerPool) -> None:
    jobs = [(CT, ns.TS_RLE)] * 6
    stream = TranscodeStream(pool, jobs, window=2)
    assert stream.submitted == 2
    first = stream.chunks(0)
    next(first)  # reading document 0 releases it and admits one more
    assert stream.submitted == 3
    list(first)
    assert stream.submitted == 3
    list(stream.chunks(1))
    assert stream.submitted == 4
    for index in range(2, 6):
        list(stream.chunks(index))
    assert stream.submitted == 6


def test_a_failing_document_does_not_stop_the_others(pool: WorkerPool, tmp_path: Path) -> None:
    bad = undecodable_jpeg_ls(tmp_path)
    stream = TranscodeStream(pool, [(CT, ns.TS_RLE), (bad, ns.TS_RLE), (MR, ns.TS_RLE)], window=3)
    with pytest.raises(ProcessingFailure) as raised:
        stream.result(1)
    assert raised.value.error_code == ns.WADO_PROCESSING_FAILURE
    assert b"".join(stream.chunks(0)) == transcode(CT, ns.TS_RLE)
    assert b"".join(stream.chunks(2)) == transcode(MR, ns.TS_RLE)


def _spooled(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.startswith(SPOOL_PREFIX)]


def test_spooled_results_are_removed_when_read_or_abandoned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setenv("TMPDIR", str(spool))  # read by the workers spawned below
    own = WorkerPool(1)
    try:
        jobs = [(CT, ns.TS_EXPLICIT_VR_LE)] * 4
        stream = TranscodeStream(own, jobs, window=2, spool_over=0)
        assert b"".join(stream.chunks(0)) == transcode(CT, ns.TS_EXPLICIT_VR_LE)
        stream.result(1)
        assert 1 <= len(_spooled(spool)) <= 2  # document 1 waiting for its reader, maybe 2
        partial = stream.chunks(1, chunk_size=100)
        next(partial)
        partial.close()  # the reader went away in the middle of document 1
        own.warm()  # let the jobs cancelled or still running finish
        assert _spooled(spool) == []
        with pytest.raises(ProcessingFailure):
            list(stream.chunks(3))
    finally:
        own.shutdown()


def test_a_dead_worker_fails_its_job_and_the_pool_recovers(tmp_path: Path) -> None:
    own = WorkerPool(1)
    try:
        own.warm()
        with pytest.raises(Exception, match="terminated abruptly"):
            own.submit(os._exit, 3).result()
        stream = TranscodeStream(own, [(CT, ns.TS_RLE)], window=1)
        assert b"".join(stream.chunks(0)) == transcode(CT, ns.TS_RLE)
    finally:
        own.shutdown()


def test_preflight_many_keeps_order_and_reports_per_file(
    pool: WorkerPool, tmp_path: Path
) -> None:
    truncated = truncated_jpeg_ls(tmp_path)
    missing = tmp_path / "gone.dcm"
    paths = [CT, truncated, MR, missing, JPEG_LS] * 5
    plans = preflight_many(pool, paths, [ns.TS_JPEG2000_LOSSLESS])
    assert len(plans) == len(paths)
    for path, plan in zip(paths, plans, strict=True):
        if path in (truncated, missing):
            assert isinstance(plan, ProcessingFailure), path
        else:
            assert plan == preflight(path, [ns.TS_JPEG2000_LOSSLESS])
            assert isinstance(plan, Plan) and plan.target == ns.TS_JPEG2000_LOSSLESS


def test_preflight_catches_what_it_can_without_decoding(tmp_path: Path) -> None:
    with pytest.raises(ProcessingFailure, match="EOI"):
        preflight(truncated_jpeg_ls(tmp_path), [ns.TS_EXPLICIT_VR_LE])
    with pytest.raises(TransferSyntaxUnavailable):
        preflight(CT, [ns.TS_JPIP])
    # Well-formed on the outside: only decoding finds it (RAD-69 handles that case separately).
    undecodable = undecodable_jpeg_ls(tmp_path)
    assert preflight(undecodable, [ns.TS_EXPLICIT_VR_LE]).target == ns.TS_EXPLICIT_VR_LE
    with pytest.raises(ProcessingFailure):
        transcode(undecodable, ns.TS_EXPLICIT_VR_LE)


def test_preflight_estimate_covers_the_result() -> None:
    for path in (CT, JPEG_LS, RLE):
        for target in (ns.TS_EXPLICIT_VR_LE, ns.TS_JPEG_LS_LOSSLESS, ns.TS_RLE):
            plan = preflight(path, [target])
            assert plan.estimated_size >= len(transcode(path, target)), (path, target)


@pytest.mark.parametrize(
    ("after_element", "message"),
    [(12 + 100, "truncated file"), (4, "ends before its Pixel Data"), (None, "parsed|complete")],
)
def test_preflight_of_a_cut_native_file(
    after_element: int | None, message: str, tmp_path: Path
) -> None:
    """Native data is checked against the file's length without reading the Pixel Data."""
    with MR.open("rb") as fh:
        pydicom.dcmread(fh, stop_before_pixels=True)
        pixel_element = fh.tell()  # where (7FE0,0010) starts
    keep = 400 if after_element is None else pixel_element + after_element
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(MR.read_bytes()[:keep])
    with pytest.raises(ProcessingFailure, match=message):
        preflight(cut, [ns.TS_RLE])
    assert preflight(MR, [ns.TS_RLE]).target == ns.TS_RLE
