"""The in-place reader of native Pixel Data (:func:`xdsi.imaging.grayscale.native_frame`) against
pydicom's decoder, which it replaces on the rendering path for speed only."""

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

from xdsi.imaging.grayscale import decode_frame, native_frame

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
