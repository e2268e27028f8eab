"""``xdsi retrieve --ts`` applies the server's transfer-syntax rule to what it receives.

xdsi's own server always answers in a listed syntax, so the non-conforming source (dcm4chee's
behaviour: the stored syntax whatever the list says) is a ``retrieve`` callable behind the real
HTTP server — a peer behaviour that cannot be produced otherwise here.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest

from tests.client.live import live_server
from tests.client.test_cli import run_cli
from tests.conftest import SAMPLES
from xdsi import ns
from xdsi.client.conform import conform
from xdsi.imaging.transcode import transcode
from xdsi.model import (
    DocumentRequest,
    Outcome,
    Payload,
    RetrievedDocument,
    RetrieveImagingDocumentSetRequest,
)

JPEG_LS = SAMPLES / "ct/series2/mr_small_jpegls.dcm"


def test_a_listed_syntax_is_left_alone(tmp_path: Path) -> None:
    copy = tmp_path / "a.dcm"
    copy.write_bytes(JPEG_LS.read_bytes())
    done = conform(copy, [ns.TS_EXPLICIT_VR_LE, ns.TS_JPEG_LS_LOSSLESS])
    assert (done.received, done.written, done.converted) == (
        ns.TS_JPEG_LS_LOSSLESS, ns.TS_JPEG_LS_LOSSLESS, False
    )
    assert copy.read_bytes() == JPEG_LS.read_bytes()


def test_an_unlisted_syntax_is_converted_by_the_rule(tmp_path: Path) -> None:
    copy = tmp_path / "a.dcm"
    copy.write_bytes(JPEG_LS.read_bytes())
    # .4.50 is lossy and refused for 16-bit data anyway; RLE is the first lossless choice.
    done = conform(copy, [ns.TS_JPEG_BASELINE, ns.TS_RLE, ns.TS_EXPLICIT_VR_LE])
    assert done.converted and done.written == ns.TS_RLE
    assert copy.read_bytes() == transcode(JPEG_LS, ns.TS_RLE)
    ours, theirs = pydicom.dcmread(copy), pydicom.dcmread(JPEG_LS)
    assert np.array_equal(ours.pixel_array, theirs.pixel_array)
    assert not list(tmp_path.glob(".conform-*"))


def test_nothing_producible_keeps_the_file(tmp_path: Path) -> None:
    copy = tmp_path / "a.dcm"
    copy.write_bytes(JPEG_LS.read_bytes())
    done = conform(copy, [ns.TS_JPIP])
    assert done.written is None and "no listed transfer syntax" in done.reason
    assert copy.read_bytes() == JPEG_LS.read_bytes()


def _stored_syntax_always(path: Path) -> Callable[[RetrieveImagingDocumentSetRequest], Outcome]:
    data = path.read_bytes()

    def retrieve(request: RetrieveImagingDocumentSetRequest) -> Outcome:
        return Outcome([RetrievedDocument(request.documents[0], Payload.from_bytes(
            data, ns.MEDIA_DICOM))])

    return retrieve


@pytest.mark.parametrize(
    ("listed", "code", "written"),
    [([ns.TS_EXPLICIT_VR_LE], 0, ns.TS_EXPLICIT_VR_LE), ([ns.TS_JPIP], 2, None)],
)
def test_retrieve_converts_what_a_source_sent_unlisted(
    listed: list[str],
    code: int,
    written: str | None,
    tmp_path: Path,
    free_port_factory: Callable[[], int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    ds = pydicom.dcmread(JPEG_LS, stop_before_pixels=True)
    doc = DocumentRequest(str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID),
                          str(ds.SOPInstanceUID), "1.3.6.1.4.1.21367.13.80.110")
    out = tmp_path / "out"
    with live_server(tmp_path / "data", free_port_factory(), [],
                     retrieve=_stored_syntax_always(JPEG_LS)) as server:
        argv = [
            "--endpoint", server.endpoint, "--repository-id", doc.repository_unique_id or "",
            "--study", doc.study_instance_uid, "--series", doc.series_instance_uid,
            "--instance", doc.document_unique_id, "--out", str(out),
            *[option for uid in listed for option in ("--ts", uid)],
        ]  # fmt: skip
        status, stdout, stderr = run_cli(argv, capsys)
    assert status == code
    saved = out / f"{doc.document_unique_id}.dcm"
    if written is None:
        assert saved.read_bytes() == JPEG_LS.read_bytes()
        assert f"error [{doc.document_unique_id}]" in stdout and "kept as received" in stdout
    else:
        assert "converted to" in stderr
        header = pydicom.dcmread(io.BytesIO(saved.read_bytes()), stop_before_pixels=True)
        assert header.file_meta.TransferSyntaxUID == written
