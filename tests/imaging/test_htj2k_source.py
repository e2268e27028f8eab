"""HTJ2K (``.4.201``–``.4.203``) as a stored syntax: decoded for transcoding (issue 4's scope).

No HTJ2K *encoder* can be installed here: pylibjpeg-openjpeg 2.6 decodes HTJ2K but writes only
JPEG 2000 Part 1 codestreams, python-gdcm has no HTJ2K, and ``ojph`` (OpenJPH bindings) has no
wheel for this platform and does not build.  So:

the decoding path xdsi takes for the HTJ2K syntaxes (plugin choice, frame and EOC checks,
preflight, transcoding in a worker process) is exercised with Part 1 codestreams stored under the
HTJ2K syntax UIDs — ISO/IEC 15444-15 decoders read Part 1 codestreams, openjpeg included.  The HT
block decoder itself is openjpeg's and is not exercised by these tests.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate, generate_frames
from pydicom.uid import UID

from tests.conftest import SAMPLES
from xdsi import ns
from xdsi.imaging.pipeline import TranscodeStream, WorkerPool
from xdsi.imaging.transcode import preflight, transcode

CT = SAMPLES / "ct/series1/ct_small.dcm"
HTJ2K_SYNTAXES = (ns.TS_HTJ2K_LOSSLESS, ns.TS_HTJ2K_LOSSLESS_RPCL, ns.TS_HTJ2K)


def stored_as(syntax: str, codestream: bytes, out: Path) -> Path:
    ds = pydicom.dcmread(CT)
    ds.PixelData = encapsulate([codestream])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.file_meta.TransferSyntaxUID = UID(syntax)
    ds.save_as(out, enforce_file_format=True)
    return out


def part1_codestream() -> bytes:
    """The CT slice as a reversible JPEG 2000 codestream, written by openjpeg."""
    encoded = pydicom.dcmread(CT)
    encoded.compress(
        ns.TS_JPEG2000_LOSSLESS, encoding_plugin="pylibjpeg", generate_instance_uid=False
    )
    return next(generate_frames(encoded.PixelData, number_of_frames=1))


@pytest.mark.parametrize("syntax", HTJ2K_SYNTAXES)
def test_htj2k_source_is_decoded_exactly(syntax: str, tmp_path: Path) -> None:
    stored = stored_as(syntax, part1_codestream(), tmp_path / "htj2k.dcm")
    assert preflight(stored, [ns.TS_JPEG_LS_LOSSLESS]).target == ns.TS_JPEG_LS_LOSSLESS
    out = pydicom.dcmread(io.BytesIO(transcode(stored, ns.TS_EXPLICIT_VR_LE)))
    assert out.file_meta.TransferSyntaxUID == ns.TS_EXPLICIT_VR_LE
    assert np.array_equal(out.pixel_array, pydicom.dcmread(CT).pixel_array)


def test_htj2k_source_through_worker_processes(tmp_path: Path) -> None:
    stored = stored_as(ns.TS_HTJ2K_LOSSLESS, part1_codestream(), tmp_path / "htj2k.dcm")
    pool = WorkerPool(1)
    try:
        stream = TranscodeStream(pool, [(stored, ns.TS_RLE)], window=1)
        assert b"".join(stream.chunks(0)) == transcode(stored, ns.TS_RLE)
    finally:
        pool.shutdown()
