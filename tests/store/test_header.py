"""Index attributes read by :func:`xdsi.store.header.read_header` from odd but valid values.

UI/CS/IS/DA/TM are decoded from the raw bytes (PS3.5 §6.2); the result must be what pydicom's
own conversion gives, in both byte orders and for padded, decimal and multi-valued strings.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom import dcmread, dcmwrite
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.uid import ExplicitVRBigEndian

from xdsi.errors import CorruptDicom, InvalidUID
from xdsi.store.header import part10_bytes, read_header


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


def test_an_element_pydicom_cannot_convert_is_corrupt(
    sample_files: list[Path], tmp_path: Path
) -> None:
    """A VR no standard knows on an element the checks read (found by fuzzing: pydicom's
    NotImplementedError came out of the put instead of CorruptDicom)."""
    source = next(p for p in sample_files if p.suffix == ".dcm")
    data = bytearray(source.read_bytes())
    at = data.index(b"\x08\x00\x16\x00UI", 132)  # (0008,0016) SOP Class UID, explicit VR LE
    data[at + 4 : at + 6] = b"U\xcf"
    path = tmp_path / "bad-vr.dcm"
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptDicom, match="malformed data element"):
        read_header(path, len(data))


def test_a_raw_data_set_with_command_elements_is_corrupt(tmp_path: Path) -> None:
    """A data set without file meta is stored as Part 10, which excludes Command Set elements
    (0000,eeee; PS3.10 §7.1): pydicom's ValueError came out of the put (found by fuzzing)."""
    ds = Dataset()
    gsps = "1.2.840.10008.5.1.4.1.1.11.1"  # a presentation state: no Pixel Data expected
    ds.add_new(0x00000002, "UI", gsps)  # Affected SOP Class UID, a Command Set element
    ds.SOPClassUID = gsps
    ds.SOPInstanceUID = "1.2.3.4.5"
    ds.StudyInstanceUID = "1.2.3.4"
    ds.SeriesInstanceUID = "1.2.3.4.6"
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, True
    write_dataset(buffer, ds)  # a bare data set, as a C-STORE carries it
    path = tmp_path / "raw.dcm"
    path.write_bytes(buffer.getvalue())
    header, raw = read_header(path, path.stat().st_size)
    assert raw is not None
    with pytest.raises(CorruptDicom, match="cannot be written as a Part 10 file"):
        part10_bytes(raw, header)
