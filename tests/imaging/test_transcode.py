"""Transfer-syntax choice and transcoding (xdsi.imaging.transcode), checked against dcmtk.

Every output is validated by dcmtk ``dcmftest`` and decoded independently of pydicom by dcmtk
(``dcmdrle``, ``dcmdjpeg``, ``dcmdjpls``, ``dcmconv``).  dcmtk 3.6.7 has no JPEG 2000 codec, so
JPEG 2000 outputs are decoded by python-gdcm, while the transcoder decodes JPEG 2000 with pylibjpeg
and encodes it with pylibjpeg-openjpeg.
"""

from __future__ import annotations

import io
import subprocess
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.multival import MultiValue
from pydicom.pixels.processing import convert_color_space
from pydicom.pixels.utils import pixel_array

from tests.conftest import SAMPLES, need_program
from xdsi import ns
from xdsi.errors import ProcessingFailure, TransferSyntaxUnavailable
from xdsi.imaging import codecs
from xdsi.imaging.transcode import (
    NATIVE_SYNTAXES,
    can_decode,
    can_encode,
    choose_transfer_syntax,
    transcode,
    transcode_iter,
)

LOSSLESS_TARGETS = (
    ns.TS_EXPLICIT_VR_LE,
    ns.TS_IMPLICIT_VR_LE,
    ns.TS_DEFLATED_EXPLICIT_VR_LE,
    ns.TS_RLE,
    ns.TS_JPEG_LOSSLESS_P14,
    ns.TS_JPEG_LOSSLESS_SV1,
    ns.TS_JPEG_LS_LOSSLESS,
    ns.TS_JPEG_LS_NEAR_LOSSLESS,
    ns.TS_JPEG2000_LOSSLESS,
    ns.TS_JPEG2000,
)
LOSSY_TARGETS = (ns.TS_JPEG_BASELINE, ns.TS_JPEG_EXTENDED)
TARGETS = LOSSLESS_TARGETS + LOSSY_TARGETS


def pydicom_file(name: str) -> Path:
    """A pydicom / pydicom-data test file (offline: pydicom-data ships its files)."""
    return Path(str(get_testdata_file(name)))


# Every sample with pixel data, plus pydicom test files for syntaxes and colour models the samples
# lack: YBR_RCT JPEG 2000, 12-bit JPEG Extended, Big Endian, a large JPEG Lossless SV1.
IMAGE_SOURCES = {
    "ct_small": SAMPLES / "ct/series1/ct_small.dcm",
    "mr_small_explicit": SAMPLES / "ct/series2/mr_small_explicit.dcm",
    "mr_small_jpegls": SAMPLES / "ct/series2/mr_small_jpegls.dcm",
    "mr_small_rle": SAMPLES / "ct/series2/mr_small_rle.dcm",
    "emri_j2k_multiframe": SAMPLES / "mr/series1/emri_j2k_multiframe.dcm",
    "emri_explicit_multiframe": SAMPLES / "mr/series2/emri_explicit_multiframe.dcm",
    "sc_jpeg_baseline": SAMPLES / "sc/series1/sc_jpeg_baseline.dcm",
    "sc_rgb": SAMPLES / "sc/series1/sc_rgb.dcm",
    "sc_rgb_jpeg_lossless": SAMPLES / "sc/series1/sc_rgb_jpeg_lossless.dcm",
    "sc_rgb_rle": SAMPLES / "sc/series1/sc_rgb_rle.dcm",
    "us_ybr_multiframe_jpeg": SAMPLES / "sc/series2/us_ybr_multiframe_jpeg.dcm",
    "US1_J2KR": pydicom_file("US1_J2KR.dcm"),
    "JPGExtended": pydicom_file("JPGExtended.dcm"),
    "MR_small_bigendian": pydicom_file("MR_small_bigendian.dcm"),
    "JPEG-LL": pydicom_file("JPEG-LL.dcm"),
}
NON_IMAGE_SOURCES = {
    "sr": SAMPLES / "sc/series3/sr.dcm",
    "kos": SAMPLES / "manifests/ct_study_kos.dcm",
}

_MONO16 = ("ct_small", "mr_small_explicit", "mr_small_jpegls", "mr_small_rle", "MR_small_bigendian")
_RGB8 = (
    "sc_jpeg_baseline",
    "sc_rgb",
    "sc_rgb_jpeg_lossless",
    "sc_rgb_rle",
    "us_ybr_multiframe_jpeg",
    "US1_J2KR",
)
EXPECTED_REFUSALS = {
    # >8-bit data is refused for JPEG Baseline (policy), and JPEG Extended carries 8 or 12-bit
    # monochrome only (PS3.5 Table 8.2.1-1): 16-bit CT/MR gets neither ...
    *((name, ts) for name in (*_MONO16, "JPEG-LL") for ts in LOSSY_TARGETS),
    # ... 12-bit monochrome gets only JPEG Extended ...
    ("emri_j2k_multiframe", ns.TS_JPEG_BASELINE),
    ("emri_explicit_multiframe", ns.TS_JPEG_BASELINE),
    ("JPGExtended", ns.TS_JPEG_BASELINE),
    # ... and colour never goes to JPEG Extended.
    *((name, ns.TS_JPEG_EXTENDED) for name in _RGB8),
}

# Attributes a transcoding step may change (PS3.3 C.7.6.3, C.7.6.1.1.5; PS3.5 A.4).
MAY_CHANGE = {
    "PixelData",
    "PhotometricInterpretation",
    "PlanarConfiguration",
    "LossyImageCompression",
    "LossyImageCompressionRatio",
    "LossyImageCompressionMethod",
    "ExtendedOffsetTable",
    "ExtendedOffsetTableLengths",
}


# --- oracles ------------------------------------------------------------------------------------


def dcmtk_decode(path: Path, tmp_path: Path) -> np.ndarray:
    """Pixels of ``path`` decoded outside pydicom's plugins (dcmtk, or gdcm for JPEG 2000)."""
    ts = str(pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID)
    tools = {
        ns.TS_RLE: ["dcmdrle"],
        ns.TS_JPEG_BASELINE: ["dcmdjpeg"],
        ns.TS_JPEG_EXTENDED: ["dcmdjpeg"],
        # Lossless JPEG keeps YBR_FULL as stored; dcmdjpeg would otherwise convert it to RGB.
        ns.TS_JPEG_LOSSLESS_P14: ["dcmdjpeg", "+cn"],
        ns.TS_JPEG_LOSSLESS_SV1: ["dcmdjpeg", "+cn"],
        ns.TS_JPEG_LS_LOSSLESS: ["dcmdjpls"],
        ns.TS_JPEG_LS_NEAR_LOSSLESS: ["dcmdjpls"],
    }
    if ts in (ns.TS_JPEG2000_LOSSLESS, ns.TS_JPEG2000):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pixel_array(path, decoding_plugin="gdcm", raw=True)
    command = tools.get(ts, ["dcmconv", "+te"])
    program = need_program(command[0])
    out = tmp_path / f"decoded-{path.name}"
    subprocess.run([program, *command[1:], str(path), str(out)], check=True, capture_output=True)
    decoded = pydicom.dcmread(out)
    assert decoded.file_meta.TransferSyntaxUID == ns.TS_EXPLICIT_VR_LE
    return pixel_array(decoded, raw=True)


def source_pixels(path: Path) -> np.ndarray:
    """The source's pixels as the transcoder decodes them (same strict plugins)."""
    ds = pydicom.dcmread(path)
    ts = str(ds.file_meta.TransferSyntaxUID)
    plugins = {
        ns.TS_RLE: "pylibjpeg",
        ns.TS_JPEG_BASELINE: "pillow",
        ns.TS_JPEG_EXTENDED: "pylibjpeg" if ds.BitsStored > 8 else "pillow",
        ns.TS_JPEG_LOSSLESS_SV1: "gdcm",
        ns.TS_JPEG_LS_LOSSLESS: "pyjpegls",
        ns.TS_JPEG2000_LOSSLESS: "pylibjpeg",
    }
    if ts in plugins:
        ds.decompress(decoding_plugin=plugins[ts], as_rgb=True, generate_instance_uid=False)
    return pixel_array(ds, raw=True)


def values(value: object) -> list[Any]:
    """A DICOM value as a list, whatever its multiplicity."""
    return list(value) if isinstance(value, MultiValue) else [value]


def assert_valid_part10(path: Path) -> None:
    program = need_program("dcmftest")
    result = subprocess.run([program, str(path)], capture_output=True, text=True, check=False)
    assert result.stdout.startswith("yes:"), result.stdout + result.stderr


def assert_attributes_kept(source: Dataset, output: Dataset) -> None:
    assert (
        output.file_meta.MediaStorageSOPInstanceUID == source.file_meta.MediaStorageSOPInstanceUID
    )
    assert output.file_meta.MediaStorageSOPClassUID == source.file_meta.MediaStorageSOPClassUID
    for element in source:
        if element.keyword in MAY_CHANGE or element.tag.is_private:
            continue
        assert element.tag in output, f"{element.keyword or element.tag} dropped"
        assert output[element.tag].value == element.value, f"{element.keyword} changed"
    for keyword in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "PatientID"):
        assert output.get(keyword) == source.get(keyword)


def _matrix() -> Iterator[tuple[str, str]]:
    for name in IMAGE_SOURCES:
        for ts in TARGETS:
            yield name, ts


# --- the matrix: every source x every target ----------------------------------------------------


@pytest.mark.peers
@pytest.mark.parametrize(("name", "target"), list(_matrix()))
def test_transcode_matrix(name: str, target: str, tmp_path: Path) -> None:
    path = IMAGE_SOURCES[name]
    stored_bytes = path.read_bytes()
    source = pydicom.dcmread(path)
    header = pydicom.dcmread(path, stop_before_pixels=True)
    stored_ts = str(source.file_meta.TransferSyntaxUID)

    if target == stored_ts:
        assert choose_transfer_syntax(stored_ts, [*TARGETS], header) == stored_ts
        assert transcode(path, target) == stored_bytes
        return
    if (name, target) in EXPECTED_REFUSALS:
        assert not can_encode(target, header)
        assert choose_transfer_syntax(stored_ts, [target], header) is None
        with pytest.raises(TransferSyntaxUnavailable):
            transcode(path, target)
        return
    assert can_encode(target, header)
    assert choose_transfer_syntax(stored_ts, [target], header) == target

    out_path = tmp_path / "out.dcm"
    out_path.write_bytes(transcode(path, target))
    assert path.read_bytes() == stored_bytes, "the stored file was modified"
    assert_valid_part10(out_path)
    output = pydicom.dcmread(out_path)
    assert output.file_meta.TransferSyntaxUID == target
    assert_attributes_kept(source, output)
    assert int(output.get("NumberOfFrames") or 1) == int(source.get("NumberOfFrames") or 1)

    expected = source_pixels(path)
    decoded = dcmtk_decode(out_path, tmp_path)
    assert decoded.shape == expected.shape
    if target in LOSSLESS_TARGETS:
        np.testing.assert_array_equal(decoded, expected)
        assert output.get("LossyImageCompression") == source.get("LossyImageCompression")
    else:
        assert output.LossyImageCompression == "01"
        assert values(output.LossyImageCompressionMethod)[-1] == codecs.METHOD_JPEG
        assert float(values(output.LossyImageCompressionRatio)[-1]) > 1.0
        error = np.abs(decoded.astype(np.int64) - expected.astype(np.int64))
        # Quality 90: visually equal; the mean error stays around a percent of the range.
        assert error.mean() < 0.02 * (2 ** int(source.BitsStored))


@pytest.mark.peers
@pytest.mark.parametrize("name", list(NON_IMAGE_SOURCES))
@pytest.mark.parametrize("target", TARGETS)
def test_objects_without_pixel_data_take_any_listed_syntax(
    name: str, target: str, tmp_path: Path
) -> None:
    path = NON_IMAGE_SOURCES[name]
    header = pydicom.dcmread(path, stop_before_pixels=True)
    assert choose_transfer_syntax(ns.TS_EXPLICIT_VR_LE, [target], header) == target
    out_path = tmp_path / "out.dcm"
    out_path.write_bytes(transcode(path, target))
    assert_valid_part10(out_path)
    output = pydicom.dcmread(out_path)
    assert output.file_meta.TransferSyntaxUID == target
    assert_attributes_kept(pydicom.dcmread(path), output)
    # dcmtk reads it back in full and writes it as Explicit VR LE: every value survives.
    dcmtk_decode_path = tmp_path / "back.dcm"
    program = need_program("dcmconv")
    subprocess.run([program, "+te", str(out_path), str(dcmtk_decode_path)], check=True)
    assert_attributes_kept(pydicom.dcmread(path), pydicom.dcmread(dcmtk_decode_path))


# --- the choice rule ----------------------------------------------------------------------------


def _header(name: str) -> Dataset:
    return pydicom.dcmread(IMAGE_SOURCES[name], stop_before_pixels=True)


def test_list_order_is_honoured_lossy_skipped_for_later_lossless() -> None:
    # Sequoia rig_2018-5422b: .4.50 then .4.70 on a CT → .4.70 (16-bit: .4.50 not producible).
    ct = _header("ct_small")
    listed = [ns.TS_JPEG_BASELINE, ns.TS_JPEG_LOSSLESS_SV1]
    assert choose_transfer_syntax(ns.TS_EXPLICIT_VR_LE, listed, ct) == ns.TS_JPEG_LOSSLESS_SV1
    # 8-bit RGB *could* go to .4.50, but a listed lossless syntax wins wherever it is listed.
    rgb = _header("sc_rgb")
    listed = [ns.TS_JPEG_BASELINE, ns.TS_JPEG_LS_LOSSLESS, ns.TS_RLE]
    assert choose_transfer_syntax(ns.TS_EXPLICIT_VR_LE, listed, rgb) == ns.TS_JPEG_LS_LOSSLESS
    listed = [ns.TS_RLE, ns.TS_JPEG_LS_LOSSLESS]
    assert choose_transfer_syntax(ns.TS_EXPLICIT_VR_LE, listed, rgb) == ns.TS_RLE
    # Lossy only when nothing lossless is listed.
    listed = [ns.TS_JPEG_BASELINE]
    assert choose_transfer_syntax(ns.TS_EXPLICIT_VR_LE, listed, rgb) == ns.TS_JPEG_BASELINE


def test_stored_syntax_listed_is_returned_even_when_not_first() -> None:
    jls = _header("mr_small_jpegls")
    listed = [ns.TS_EXPLICIT_VR_LE, ns.TS_JPEG_LS_LOSSLESS]
    assert choose_transfer_syntax(ns.TS_JPEG_LS_LOSSLESS, listed, jls) == ns.TS_JPEG_LS_LOSSLESS
    # Also for syntaxes never produced by transcoding, and without a header.
    for stored in (ns.TS_EXPLICIT_VR_BE, "1.2.840.10008.1.2.4.102", ns.TS_HTJ2K):
        assert choose_transfer_syntax(stored, [ns.TS_RLE, stored], None) == stored


def test_all_impossible_gives_none() -> None:
    ct = _header("ct_small")
    impossible = [
        ns.TS_JPEG_BASELINE,
        ns.TS_JPEG_EXTENDED,
        ns.TS_EXPLICIT_VR_BE,
        ns.TS_JPIP,
        "1.2.840.10008.1.2.4.100",
        ns.TS_HTJ2K_LOSSLESS,
        "1.2.3.4.5",
    ]
    assert choose_transfer_syntax(ns.TS_EXPLICIT_VR_LE, impossible, ct) is None
    assert choose_transfer_syntax(ns.TS_EXPLICIT_VR_LE, [], ct) is None


def test_video_is_never_transcoded() -> None:
    mpeg4 = "1.2.840.10008.1.2.4.102"
    assert not can_decode(mpeg4)
    assert choose_transfer_syntax(mpeg4, [ns.TS_EXPLICIT_VR_LE], None) is None
    sr = pydicom.dcmread(NON_IMAGE_SOURCES["sr"], stop_before_pixels=True)
    assert choose_transfer_syntax(ns.TS_EXPLICIT_VR_LE, [mpeg4], sr) is None


def test_without_header_only_uncompressed_syntaxes_are_offered() -> None:
    listed = [ns.TS_JPEG_LOSSLESS_SV1, ns.TS_IMPLICIT_VR_LE]
    assert choose_transfer_syntax(ns.TS_JPEG2000_LOSSLESS, listed, None) == ns.TS_IMPLICIT_VR_LE
    assert choose_transfer_syntax(ns.TS_JPEG2000_LOSSLESS, [ns.TS_JPEG_LOSSLESS_SV1], None) is None
    assert can_encode(ns.TS_EXPLICIT_VR_LE)
    assert not can_encode(ns.TS_RLE)


def test_requested_uids_are_trimmed() -> None:
    ct = _header("ct_small")
    assert choose_transfer_syntax(ns.TS_EXPLICIT_VR_LE, [" ", f" {ns.TS_RLE}\n"], ct) == ns.TS_RLE


def test_can_decode_every_source_syntax() -> None:
    for ts in (*LOSSLESS_TARGETS, *LOSSY_TARGETS, ns.TS_EXPLICIT_VR_BE):
        assert can_decode(ts), ts
    for ts in (ns.TS_HTJ2K_LOSSLESS, ns.TS_HTJ2K_LOSSLESS_RPCL, ns.TS_HTJ2K):
        assert can_decode(ts), ts
    assert not can_decode(ns.TS_JPIP)
    assert not can_decode("1.2.3.4")


# --- >8-bit policy and lossy attributes ---------------------------------------------------------


def _synthetic(tmp_path: Path, name: str, build: Callable[[Dataset], None]) -> Path:
    """A sample changed in memory by ``build`` and saved as Explicit VR LE."""
    ds = pydicom.dcmread(IMAGE_SOURCES[name])
    build(ds)
    for keyword in ("SmallestImagePixelValue", "LargestImagePixelValue"):
        ds.pop(keyword, None)
    path = tmp_path / f"synthetic-{name}.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def _signed_12_bit(ds: Dataset) -> None:
    """MR_small moved to signed 12-of-16 bits, negative values included (sign-extended words)."""
    values = np.clip(ds.pixel_array.astype(np.int32) - 1200, -2048, 2047).astype(np.int16)
    assert values.min() < 0
    ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 12, 11, 1
    ds.PixelData = values.tobytes()


def _ybr_full(ds: Dataset) -> None:
    """SC_rgb as 8-bit YBR_FULL (PS3.3 C.7.6.3.1.2), as some modalities store colour."""
    ds.PixelData = convert_color_space(ds.pixel_array, "RGB", "YBR_FULL").tobytes()
    ds.PhotometricInterpretation = "YBR_FULL"


COMPRESSED_LOSSLESS = tuple(ts for ts in LOSSLESS_TARGETS if ts not in NATIVE_SYNTAXES)


@pytest.mark.peers
@pytest.mark.parametrize("target", COMPRESSED_LOSSLESS)
@pytest.mark.parametrize(
    ("name", "build"), [("mr_small_explicit", _signed_12_bit), ("sc_rgb", _ybr_full)]
)
def test_signed_12_bit_and_ybr_full_round_trip(
    name: str, build: Callable[[Dataset], None], target: str, tmp_path: Path
) -> None:
    path = _synthetic(tmp_path, name, build)
    source = pydicom.dcmread(path)
    out = tmp_path / "out.dcm"
    out.write_bytes(transcode(path, target))
    assert_valid_part10(out)
    output = pydicom.dcmread(out)
    assert output.PhotometricInterpretation == source.PhotometricInterpretation
    np.testing.assert_array_equal(dcmtk_decode(out, tmp_path), pixel_array(source, raw=True))


@pytest.mark.peers
def test_ybr_full_to_jpeg_baseline_is_converted_not_mislabelled(tmp_path: Path) -> None:
    path = _synthetic(tmp_path, "sc_rgb", _ybr_full)
    out = tmp_path / "out.dcm"
    out.write_bytes(transcode(path, ns.TS_JPEG_BASELINE))
    assert pydicom.dcmread(out).PhotometricInterpretation == "YBR_FULL_422"
    error = np.abs(dcmtk_decode(out, tmp_path).astype(int) - pixel_array(IMAGE_SOURCES["sc_rgb"]))
    assert error.mean() < 4


def _eight_bit_monochrome(tmp_path: Path) -> Path:
    """ct_small reduced to 8 bits unsigned (there is no 8-bit grey sample)."""
    ds = pydicom.dcmread(IMAGE_SOURCES["ct_small"])
    pixels = ds.pixel_array.astype(np.int64)
    scaled = ((pixels - pixels.min()) * 255 // max(int(np.ptp(pixels)), 1)).astype(np.uint8)
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    for keyword in ("SmallestImagePixelValue", "LargestImagePixelValue"):
        ds.pop(keyword, None)
    ds.PixelData = scaled.tobytes()
    ds["PixelData"].VR = "OB"
    path = tmp_path / "mono8.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def test_more_than_8_bits_is_refused_for_jpeg_baseline_not_rescaled() -> None:
    ct, emri = _header("ct_small"), _header("emri_explicit_multiframe")
    assert not can_encode(ns.TS_JPEG_BASELINE, ct)
    with pytest.raises(TransferSyntaxUnavailable, match=r"PS3\.5 §8\.2"):
        transcode(IMAGE_SOURCES["ct_small"], ns.TS_JPEG_BASELINE)
    # 12-bit falls through to the next listed syntax, JPEG Extended.
    listed = [ns.TS_JPEG_BASELINE, ns.TS_JPEG_EXTENDED]
    assert choose_transfer_syntax(ns.TS_EXPLICIT_VR_LE, listed, emri) == ns.TS_JPEG_EXTENDED


@pytest.mark.peers
@pytest.mark.parametrize("target", LOSSY_TARGETS)
def test_eight_bit_monochrome_lossy(target: str, tmp_path: Path) -> None:
    path = _eight_bit_monochrome(tmp_path)
    out = tmp_path / "lossy.dcm"
    out.write_bytes(transcode(path, target))
    assert_valid_part10(out)
    output = pydicom.dcmread(out)
    assert output.PhotometricInterpretation == "MONOCHROME2"
    assert (output.BitsStored, output.LossyImageCompression) == (8, "01")
    assert values(output.LossyImageCompressionMethod) == [codecs.METHOD_JPEG]
    ratio = float(values(output.LossyImageCompressionRatio)[0])
    encoded = next(generate_frames(output.PixelData, number_of_frames=1))
    assert ratio == pytest.approx(128 * 128 / len(encoded), rel=0.01)
    error = np.abs(dcmtk_decode(out, tmp_path).astype(int) - pydicom.dcmread(path).pixel_array)
    assert error.mean() < 3


@pytest.mark.peers
def test_colour_jpeg_baseline_is_ybr_full_422(tmp_path: Path) -> None:
    out = tmp_path / "rgb.dcm"
    out.write_bytes(transcode(IMAGE_SOURCES["sc_rgb"], ns.TS_JPEG_BASELINE))
    output = pydicom.dcmread(out)
    assert output.PhotometricInterpretation == "YBR_FULL_422"
    assert output.PlanarConfiguration == 0
    # dcmtk converts the YCbCr data back to RGB; colour bars survive within JPEG error.
    error = np.abs(dcmtk_decode(out, tmp_path).astype(int) - pixel_array(IMAGE_SOURCES["sc_rgb"]))
    assert error.mean() < 4


def test_second_lossy_step_is_appended(tmp_path: Path) -> None:
    first = tmp_path / "first.dcm"
    first.write_bytes(transcode(IMAGE_SOURCES["sc_rgb"], ns.TS_JPEG_BASELINE))
    # Decoding lossy data and storing it losslessly keeps the record of the earlier loss ...
    lossless = tmp_path / "lossless.dcm"
    lossless.write_bytes(transcode(first, ns.TS_JPEG_LOSSLESS_SV1))
    kept = pydicom.dcmread(lossless)
    assert kept.LossyImageCompression == "01"
    assert values(kept.LossyImageCompressionMethod) == [codecs.METHOD_JPEG]
    # ... and a second lossy step is appended to it (PS3.3 C.7.6.1.1.5.1).
    second = pydicom.dcmread(io.BytesIO(transcode(lossless, ns.TS_JPEG_BASELINE)))
    assert second.LossyImageCompression == "01"
    assert values(second.LossyImageCompressionMethod) == [codecs.METHOD_JPEG] * 2
    assert len(values(second.LossyImageCompressionRatio)) == 2


# --- corrupt and unreadable sources -------------------------------------------------------------


def _with_first_frame(path: Path, tmp_path: Path, cut: int) -> Path:
    ds = pydicom.dcmread(path)
    frames = list(
        generate_frames(ds.PixelData, number_of_frames=int(ds.get("NumberOfFrames") or 1))
    )
    first = frames[0][:cut]
    frames[0] = first + b"\x00" * (len(first) % 2)
    ds.PixelData = encapsulate(frames)
    out = tmp_path / f"corrupt-{path.name}"
    ds.save_as(out, enforce_file_format=True)
    return out


@pytest.mark.parametrize(
    "name",
    [
        "mr_small_jpegls",
        "emri_j2k_multiframe",
        "sc_rgb_jpeg_lossless",
        "sc_jpeg_baseline",
        "mr_small_rle",
    ],
)
@pytest.mark.parametrize("cut", [16, "half"])
def test_truncated_stored_data_is_a_processing_failure(
    name: str, cut: int | str, tmp_path: Path
) -> None:
    path = IMAGE_SOURCES[name]
    source = pydicom.dcmread(path)
    frames = int(source.get("NumberOfFrames") or 1)
    length = len(next(generate_frames(source.PixelData, number_of_frames=frames)))
    corrupt = _with_first_frame(path, tmp_path, length // 2 if cut == "half" else int(cut))
    stored = corrupt.read_bytes()
    # Targets other than the stored syntax: a stored syntax that is listed is sent unchanged.
    targets = (ns.TS_EXPLICIT_VR_LE, ns.TS_RLE, ns.TS_JPEG_LS_LOSSLESS)
    for target in [ts for ts in targets if ts != source.file_meta.TransferSyntaxUID]:
        with pytest.raises(ProcessingFailure) as raised:
            transcode(corrupt, target)
        assert raised.value.error_code == ns.WADO_PROCESSING_FAILURE
    assert corrupt.read_bytes() == stored


@pytest.mark.filterwarnings("ignore:End of file reached:UserWarning")
def test_pydicom_data_too_short_j2k_is_a_processing_failure() -> None:
    path = pydicom_file("emri_small_jpeg_2k_lossless_too_short.dcm")
    with pytest.raises(ProcessingFailure):
        transcode(path, ns.TS_EXPLICIT_VR_LE)


@pytest.mark.filterwarnings("ignore:End of file reached:UserWarning")
def test_not_dicom_is_a_processing_failure(tmp_path: Path) -> None:
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"\x00" * 128 + b"DICM" + b"\xff" * 40)
    with pytest.raises(ProcessingFailure):
        transcode(junk, ns.TS_EXPLICIT_VR_LE)
    with pytest.raises(ProcessingFailure):
        transcode(junk.open("rb"), ns.TS_RLE)


def test_unknown_target_is_unavailable() -> None:
    with pytest.raises(TransferSyntaxUnavailable):
        transcode(IMAGE_SOURCES["ct_small"], ns.TS_JPIP)
    with pytest.raises(TransferSyntaxUnavailable):
        transcode(IMAGE_SOURCES["ct_small"], ns.TS_EXPLICIT_VR_BE)


# --- chains, identity, streaming ----------------------------------------------------------------


def test_stored_syntax_returns_the_stored_bytes() -> None:
    path = IMAGE_SOURCES["mr_small_jpegls"]
    assert transcode(path, ns.TS_JPEG_LS_LOSSLESS) == path.read_bytes()


@pytest.mark.peers
def test_chain_through_every_lossless_syntax_is_exact(tmp_path: Path) -> None:
    path = IMAGE_SOURCES["emri_explicit_multiframe"]
    original = pixel_array(path)
    current = path
    for step, target in enumerate((*LOSSLESS_TARGETS[1:], ns.TS_EXPLICIT_VR_LE)):
        data = transcode(current, target)
        current = tmp_path / f"step{step}.dcm"
        current.write_bytes(data)
    np.testing.assert_array_equal(dcmtk_decode(current, tmp_path), original)
    assert pydicom.dcmread(current).SOPInstanceUID == pydicom.dcmread(path).SOPInstanceUID


def test_transcode_iter_yields_the_same_bytes_in_chunks() -> None:
    path = IMAGE_SOURCES["ct_small"]
    chunks = list(transcode_iter(path, ns.TS_RLE, chunk_size=1000))
    assert all(len(c) == 1000 for c in chunks[:-1])
    assert b"".join(chunks) == transcode(path, ns.TS_RLE)


@pytest.mark.peers
def test_file_object_source(tmp_path: Path) -> None:
    with IMAGE_SOURCES["sc_rgb_rle"].open("rb") as fh:
        data = transcode(fh, ns.TS_EXPLICIT_VR_LE)
    out = tmp_path / "out.dcm"
    out.write_bytes(data)
    np.testing.assert_array_equal(
        dcmtk_decode(out, tmp_path), source_pixels(IMAGE_SOURCES["sc_rgb_rle"])
    )


def test_missing_encoder_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    # Failure injection: a real machine with python-gdcm absent cannot be produced in-process.
    monkeypatch.setattr(codecs, "_installed", lambda module: module != "gdcm")
    pixel = codecs.PixelDescription.of(_header("ct_small"))
    assert pixel is not None
    reason = codecs.unsupported_reason(ns.TS_JPEG_LOSSLESS_SV1, pixel)
    assert reason is not None and "install python-gdcm" in reason
    assert not can_encode(ns.TS_JPEG_LOSSLESS_SV1, _header("ct_small"))
