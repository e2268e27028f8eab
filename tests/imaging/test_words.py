"""Stored pixel words (:mod:`xdsi.imaging.words`): the in-place reader of native Pixel Data
against pydicom's decoder, and the display tables indexed by stored words against the LUT steps
run on every pixel (:func:`xdsi.imaging.grayscale.display_values`), which both replace on the
rendering path for speed only."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.pixels.decoders.base import get_decoder
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from xdsi.imaging.grayscale import (
    _TABLES,
    Window,
    decode_frame,
    display_values,
    grayscale_frame,
)
from xdsi.imaging.words import native_frame

TEST_FILES = ["693_UNCR.dcm", "CT_small.dcm", "MR_small.dcm", "emri_small.dcm", "OBXXXX1A.dcm",
              "liver.dcm", "vlut_04.dcm", "SC_rgb.dcm", "MR_small_bigendian.dcm"]  # fmt: skip


def pydicom_frame(ds: Dataset, index: int) -> np.ndarray:
    arr, _ = get_decoder(ds.file_meta.TransferSyntaxUID).as_array(ds, index=index)
    return arr


def candidates(samples_dir: Path) -> list[Path]:
    paths = [Path(p) for name in TEST_FILES if (p := get_testdata_file(name)) is not None]
    return paths + sorted(samples_dir.rglob("*.dcm"))


def test_native_frames_equal_pydicom_decoder(samples_dir: Path) -> None:
    read = 0
    for path in candidates(samples_dir):
        ds = pydicom.dcmread(path)
        if "PixelData" not in ds:
            continue
        frames = int(ds.get("NumberOfFrames") or 1)
        for index in {0, frames - 1}:
            arr = native_frame(ds, index)
            if arr is None:
                continue
            expected = pydicom_frame(ds, index)
            assert arr.dtype == expected.dtype, path
            np.testing.assert_array_equal(arr, expected, err_msg=str(path))
            read += 1
    assert read >= 5  # the test data has native 8- and 16-bit, signed and unsigned, multi-frame


@pytest.mark.parametrize("signed", [False, True])
def test_unused_high_bits_are_cleared_or_sign_extended(signed: bool) -> None:
    ds = pydicom.dcmread(get_testdata_file("693_UNCR.dcm"))  # 16 allocated, 14 stored, signed
    ds.PixelRepresentation = int(signed)
    words = np.frombuffer(ds.PixelData, "<u2").copy()
    words[:64] |= 0xC000  # garbage in the two unused bits of some pixels
    words[64:128] &= 0x3FFF
    ds.PixelData = words.tobytes()
    arr = native_frame(ds, 0)
    assert arr is not None
    np.testing.assert_array_equal(arr, pydicom_frame(ds, 0))
    assert arr.dtype == (np.int16 if signed else np.uint16)
    assert int(arr.max()) < (1 << 13 if signed else 1 << 14)


def test_what_it_does_not_read_is_left_to_pydicom() -> None:
    ct = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    big = pydicom.dcmread(get_testdata_file("MR_small_bigendian.dcm"))
    rgb = pydicom.dcmread(get_testdata_file("SC_rgb.dcm"))
    assert big.file_meta.TransferSyntaxUID == ExplicitVRBigEndian
    assert native_frame(rgb, 0) is None  # three samples per pixel
    assert native_frame(ct, 1) is None  # no second frame: pydicom reports it
    short = copy.deepcopy(ct)
    short.PixelData = ct.PixelData[:-2]
    assert native_frame(short, 0) is None
    with pytest.raises(ValueError):
        decode_frame(short, 0)  # pydicom's own error for a short Pixel Data
    arr, photometric = decode_frame(big, 0)  # big endian: pydicom's decoder, same values
    np.testing.assert_array_equal(arr, pydicom_frame(big, 0))
    assert photometric == "MONOCHROME2"


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_view_is_read_only_and_decode_frame_uses_it(syntax: str) -> None:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))  # 16 bits stored: no shift, a view
    ds.file_meta.TransferSyntaxUID = syntax
    arr, photometric = decode_frame(ds, 0)
    assert not arr.flags.writeable  # callers must not write into the dataset's bytes
    assert np.shares_memory(arr, np.frombuffer(ds.PixelData, np.uint8))
    assert photometric == str(ds.PhotometricInterpretation)


# --- display tables indexed by stored words ------------------------------------------------------

TABLE_FILES = ["693_UNCR.dcm", "CT_small.dcm", "MR_small.dcm", "emri_small.dcm", "OBXXXX1A.dcm",
               "MR_small_bigendian.dcm", "JPEG2000.dcm", "MR_small_jpeg_ls_lossless.dcm",
               "emri_small_jpeg_2k_lossless.dcm", "JPEG-LL.dcm", "MR_small_RLE.dcm"]  # fmt: skip
FIXED = Window(600.0, 1200.0)


def per_pixel(ds: Dataset, index: int, explicit: tuple[float, float] | None) -> tuple:
    """The definition: the LUT steps run on every pixel value of the decoded frame."""
    arr, photometric = decode_frame(ds, index)
    return display_values(arr, ds, index, photometric, explicit, None, lambda: FIXED)


def grayscale_files() -> list[Dataset]:
    found = []
    for name in TABLE_FILES:
        path = get_testdata_file(name)
        if path is None:
            continue
        ds = pydicom.dcmread(path)
        if str(ds.PhotometricInterpretation).startswith("MONOCHROME"):
            found.append(ds)
    return found


@pytest.mark.parametrize("explicit", [None, (40.0, 400.0), (1000.5, 0.5)])
def test_word_tables_give_the_per_pixel_result(explicit: tuple[float, float] | None) -> None:
    datasets = grayscale_files()
    assert len(datasets) >= 8
    for ds in datasets:
        for variant in (ds, to_monochrome1(ds)):
            frames = int(variant.get("NumberOfFrames") or 1)
            for index in {0, frames - 1}:
                _TABLES.clear()
                pixels, window = grayscale_frame(variant, index, explicit, None, lambda: FIXED)
                expected, expected_window = per_pixel(variant, index, explicit)
                np.testing.assert_array_equal(pixels, expected, err_msg=str(variant.filename))
                assert window == expected_window
                has_window = explicit is not None or "WindowWidth" in variant
                assert len(_TABLES) == 1  # tried; built unless the window needs the pixels
                built = sum(table is not False for table in _TABLES.values())
                assert built == int(has_window), variant.filename


def to_monochrome1(ds: Dataset) -> Dataset:
    copied = copy.deepcopy(ds)
    copied.PhotometricInterpretation = "MONOCHROME1"
    return copied


def test_a_table_is_kept_for_its_attributes_only() -> None:
    """A table is shared by the images whose rescale and window agree, and not by the others."""
    _TABLES.clear()
    ds = pydicom.dcmread(get_testdata_file("693_UNCR.dcm"))
    shifted = pydicom.dcmread(get_testdata_file("693_UNCR.dcm"))
    shifted.RescaleIntercept = -1000  # 24 HU up: another table
    first, _ = grayscale_frame(ds, 0, None, None, lambda: FIXED)
    second, _ = grayscale_frame(shifted, 0, None, None, lambda: FIXED)
    assert len(_TABLES) == 2
    np.testing.assert_array_equal(second, per_pixel(shifted, 0, None)[0])
    assert not np.array_equal(first, second)
    again = pydicom.dcmread(get_testdata_file("693_UNCR.dcm"))  # another image of the "series"
    np.testing.assert_array_equal(grayscale_frame(again, 0, None, None, lambda: FIXED)[0], first)
    assert len(_TABLES) == 2


def test_lut_sequences_and_functional_groups_take_the_range_path() -> None:
    _TABLES.clear()
    ds = pydicom.dcmread(get_testdata_file("vlut_04.dcm"))  # VOI LUT Sequence
    pixels, window = grayscale_frame(ds, 0, None, None, lambda: FIXED)
    expected, expected_window = per_pixel(ds, 0, None)
    np.testing.assert_array_equal(pixels, expected)
    assert window == expected_window is None
    assert len(_TABLES) == 0
