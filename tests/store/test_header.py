"""Index attributes read by :func:`xdsi.store.header.read_header` from odd but valid values.

UI/CS/IS/DA/TM are decoded from the raw bytes (PS3.5 §6.2); the result must be what pydicom's
own conversion gives, in both byte orders and for padded, decimal and multi-valued strings.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom import dcmread, dcmwrite
from pydicom.uid import ExplicitVRBigEndian

from xdsi.errors import InvalidUID
from xdsi.store.header import read_header


def write(source: Path, dest: Path, big_endian: bool = False, **raw: bytes) -> Path:
    """A copy of ``source`` whose elements ``raw`` (keyword: value bytes) are set verbatim."""
    ds = dcmread(source)
    for keyword, value in raw.items():
        ds[keyword].value = value.decode("latin-1")
    if big_endian:
        # Pixel data bytes are not swapped: the image is wrong, its structure valid.
        ds.file_meta.TransferSyntaxUID = ExplicitVRBigEndian
        dcmwrite(dest, ds, little_endian=False, implicit_vr=False, force_encoding=True)
    else:
        ds.save_as(dest)
    return dest


@pytest.mark.parametrize("big_endian", [False, True])
def test_padding_decimals_and_multiple_values(
    sample_files: list[Path], tmp_path: Path, big_endian: bool
) -> None:
    ct = next(p for p in sample_files if dcmread(p, stop_before_pixels=True).Modality == "CT")
    path = write(
        ct,
        tmp_path / "odd.dcm",
        big_endian,
        Modality=b" CT ",
        InstanceNumber=b" 12.0 ",
        SeriesNumber=b"1\\2 ",
        StudyDate=b"20240229",
    )
    header, _raw = read_header(path, path.stat().st_size)
    ds = dcmread(path, stop_before_pixels=True)
    assert header.sop_instance_uid == ds.SOPInstanceUID
    assert header.modality == "CT"
    assert header.instance_number == 12
    assert header.series_number is None  # two values: not indexed, as before
    assert header.study_date == "20240229"
    assert header.transfer_syntax_uid == str(ds.file_meta.TransferSyntaxUID)


def test_uid_with_padding_inside_is_refused(sample_files: list[Path], tmp_path: Path) -> None:
    path = write(sample_files[0], tmp_path / "bad.dcm", SOPInstanceUID=b"1.2.3 4\0")
    with pytest.raises(InvalidUID):
        read_header(path, path.stat().st_size)
