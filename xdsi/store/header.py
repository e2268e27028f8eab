"""Read the index attributes of one received file and prove the whole file parses.

One ``dcmread`` per file: values longer than :data:`DEFER_SIZE` (Pixel Data above all) are
*deferred* by pydicom, i.e. skipped with a seek, so the cost is that of the header while every
element's tag and length is still walked to the end of the file (PS3.5 §7.1).  pydicom accepts
truncated input silently (a short read, a seek past the end or a missing delimiter is not an
error for it), so :func:`_verify_complete` checks what it cannot: that the last element ends
exactly at the end of the file and was not read short, that an undefined-length last element
(encapsulated Pixel Data, a sequence) is closed by its Sequence Delimitation Item, and that
native Pixel Data has the length its image attributes imply (PS3.5 §7.5, §8.1.1, §A.4).

A cut exactly at an element boundary leaves a well-formed, shorter data set; it is caught where
the IOD requires what is missing (:func:`_verify_content`: an image without Pixel Data, a
structured document without Content Sequence).  A cut just before Data Set Trailing Padding
loses nothing and is accepted.

Input without a PS3.10 §7.1 header (no ``DICM`` at offset 128) is accepted only as a raw data set
that pydicom reads with ``force=True`` *and* that carries SOP Class and SOP Instance UIDs;
:func:`part10_bytes` then writes it out as a proper Part 10 file with file meta information, so
that everything in the store is Part 10 (byte identity holds for Part 10 input only).
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from pydicom import dcmread
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels.utils import get_expected_length
from pydicom.tag import Tag
from pydicom.uid import UID

from xdsi import ns
from xdsi.errors import CorruptDicom, InvalidUID, NotDicom, StoreError
from xdsi.uids import require_uid

DEFER_SIZE: Final = 1024
"""Values longer than this many bytes are skipped, not read (pydicom ``defer_size``)."""
PART10_PREAMBLE: Final = 128
PART10_MAGIC: Final = b"DICM"
UNDEFINED_LENGTH: Final = 0xFFFFFFFF
PIXEL_DATA_TAGS: Final = (Tag(0x7FE00010), Tag(0x7FE00008), Tag(0x7FE00009))
"""Pixel Data, Float Pixel Data, Double Float Pixel Data (PS3.3 C.7.6.3)."""
CONTENT_SEQUENCE: Final = Tag(0x0040A730)
SEQUENCE_DELIMITER_LE: Final = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
"""(FFFE,E0DD) with length 0, little endian (PS3.5 §7.5.2)."""
SEQUENCE_DELIMITER_BE: Final = b"\xff\xfe\xe0\xdd\x00\x00\x00\x00"
DOCUMENT_MODALITIES: Final = frozenset({"SR", "KO"})


@dataclass(frozen=True)
class Header:
    """The index attributes of one instance (PS3.3 C.7.1-C.7.3, C.12.1), UIDs validated."""

    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    study_instance_uid: str
    series_instance_uid: str
    patient_id: str = ""
    patient_name: str = ""
    modality: str = ""
    series_number: int | None = None
    instance_number: int | None = None
    number_of_frames: int = 1
    study_date: str = ""
    study_time: str = ""
    accession_number: str = ""
    study_id: str = ""
    study_description: str = ""
    series_description: str = ""
    needs_part10: bool = field(default=False, compare=False)
    """True for a raw data set: the caller must store :func:`part10_bytes`' output instead."""

    def columns(self) -> dict[str, Any]:
        """Values for the ``instance`` table (names as in :class:`~xdsi.store.schema.Instance`)."""
        values = dict(vars(self))
        del values["needs_part10"]
        return values


def read_header(path: Path, size: int) -> tuple[Header, Dataset | None]:
    """Parse ``path`` (``size`` bytes) and return its header, plus the data set to rewrite if any.

    Raises
    ------
    NotDicom
        Empty, or neither Part 10 nor a raw data set with SOP Class/Instance UIDs.
    CorruptDicom
        Part 10 (or a raw data set) that does not parse completely, or an element that cannot
        be converted.
    InvalidUID
        A required UID is missing or malformed (PS3.5 §9.1); checked before any path is built.
    """
    if size == 0:
        raise NotDicom("empty file (0 bytes)")
    with path.open("rb") as fp:
        head = fp.read(PART10_PREAMBLE + len(PART10_MAGIC))
        fp.seek(0)
        try:
            if head[PART10_PREAMBLE:] == PART10_MAGIC:
                return _read_part10(fp, size), None
            return _read_raw(fp, size)
        except (OSError, StoreError):  # our own verdicts (NotDicom, CorruptDicom, InvalidUID)
            raise
        except Exception as exc:
            # pydicom converts values on first access, so a malformed element (an unknown VR,
            # a value of the wrong form) surfaces in the checks after the parse, as any of many
            # exception types (NotImplementedError, ValueError...; found by fuzzing the store).
            raise CorruptDicom(f"malformed data element: {exc}") from exc


def _read_part10(fp: Any, size: int) -> Header:
    try:
        ds = dcmread(fp, defer_size=DEFER_SIZE)
        end = fp.tell()
    except Exception as exc:  # pydicom raises many types (EOFError, ValueError, struct.error...)
        raise CorruptDicom(f"Part 10 file does not parse: {exc}") from exc
    ts = str(ds.file_meta.get("TransferSyntaxUID", ""))
    _verify_complete(ds, end, size, ts, _tail(fp, size))
    return _header(ds, ts)


def _read_raw(fp: Any, size: int) -> tuple[Header, Dataset]:
    try:
        ds = dcmread(fp, force=True)
        end = fp.tell()
    except Exception as exc:
        raise NotDicom(f"not a DICOM file (no 'DICM' at offset 128) nor a data set: {exc}") from exc
    if "SOPClassUID" not in ds or "SOPInstanceUID" not in ds:
        raise NotDicom("not a DICOM file: no 'DICM' at offset 128 and no SOP Class/Instance UID")
    implicit, little = ds.original_encoding
    if implicit is None or little is None:
        raise NotDicom("data set without a recognisable encoding")
    if implicit:
        ts = ns.TS_IMPLICIT_VR_LE
    else:
        ts = ns.TS_EXPLICIT_VR_LE if little else ns.TS_EXPLICIT_VR_BE
    _verify_complete(ds, end, size, ts, _tail(fp, size))
    header = _header(ds, ts)
    return Header(**(header.columns() | {"needs_part10": True})), ds


def part10_bytes(ds: Dataset, header: Header) -> bytes:
    """A raw data set as a Part 10 file with file meta information (PS3.10 §7.1).

    In memory: the raw data set was read whole anyway (nothing deferred), and the bytes go into
    the caller's locked temp file.
    """
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(header.sop_class_uid)
    meta.MediaStorageSOPInstanceUID = UID(header.sop_instance_uid)
    meta.TransferSyntaxUID = UID(header.transfer_syntax_uid)
    ds.file_meta = meta
    # enforce_file_format fills in the version and implementation UID of the meta group.
    buffer = io.BytesIO()
    try:
        ds.save_as(buffer, enforce_file_format=True)
    except Exception as exc:  # e.g. Command Set elements (0000,eeee), which PS3.10 excludes
        raise CorruptDicom(f"the data set cannot be written as a Part 10 file: {exc}") from exc
    return buffer.getvalue()


def _tail(fp: Any, size: int) -> bytes:
    """The last 8 bytes of the file (where a Sequence Delimitation Item must be, if any)."""
    fp.seek(max(0, size - len(SEQUENCE_DELIMITER_LE)))
    tail: bytes = fp.read(len(SEQUENCE_DELIMITER_LE))
    return tail


def _verify_complete(ds: Dataset, end: int, size: int, ts: str, tail: bytes) -> None:
    """Refuse a data set that pydicom read without complaint but that is cut short."""
    if ts != ns.TS_DEFLATED_EXPLICIT_VR_LE:  # positions then refer to the inflated stream
        if end != size:
            raise CorruptDicom(f"truncated: the data set extends to byte {end}, file has {size}")
        # Only the last element can have hit the end of the file (elements are read in tag
        # order, PS3.5 §7.1); keep_deferred: converting a deferred element would read it.
        elem = ds.get_item(max(ds.keys()), keep_deferred=True) if len(ds) else None
        if isinstance(elem, RawDataElement) and elem.length != UNDEFINED_LENGTH:
            if elem.value is not None and len(elem.value) != elem.length:
                raise CorruptDicom(f"truncated: element {elem.tag} is shorter than its length")
            last_end = elem.value_tell + elem.length
            if last_end != size:
                raise CorruptDicom(f"truncated: last element ends at byte {last_end} of {size}")
        undefined = (isinstance(elem, RawDataElement) and elem.length == UNDEFINED_LENGTH) or bool(
            getattr(elem, "is_undefined_length", False)
        )
        if undefined and tail not in (SEQUENCE_DELIMITER_LE, SEQUENCE_DELIMITER_BE):
            # pydicom gives up quietly when the delimiter of encapsulated Pixel Data or of a
            # sequence is missing; a complete file ends with it (PS3.5 §7.5.2, §A.4).
            raise CorruptDicom("truncated: no Sequence Delimitation Item at the end of the file")
    _verify_content(ds, ts)


def _verify_content(ds: Dataset, ts: str) -> None:
    """Catch a cut at an element boundary, which leaves a well-formed but incomplete data set.

    Such a cut is only visible through what the IOD requires: an image without Pixel Data, a
    structured document without its Content Sequence, native pixel data of the wrong length.
    """
    sop_class = UID(str(ds.get("SOPClassUID", "")))
    present = [tag for tag in PIXEL_DATA_TAGS if tag in ds]
    if not present:
        if "Rows" in ds or "Image Storage" in sop_class.name:
            raise CorruptDicom("image without Pixel Data (7FE0,0010): file cut short?")
        if str(ds.get("Modality", "")) in DOCUMENT_MODALITIES and CONTENT_SEQUENCE not in ds:
            raise CorruptDicom("structured document without Content Sequence (0040,A730)")
        return
    elem = ds.get_item(present[0], keep_deferred=True)
    length = getattr(elem, "length", None)
    if present[0] != PIXEL_DATA_TAGS[0] or length is None or length == UNDEFINED_LENGTH:
        return  # encapsulated pixel data was parsed item by item up to its delimiter
    if ts not in ns.UNCOMPRESSED_TRANSFER_SYNTAXES:
        raise CorruptDicom(f"transfer syntax {ts} needs encapsulated Pixel Data (PS3.5 §A.4)")
    try:
        expected = get_expected_length(ds, "bytes")
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise CorruptDicom(f"Image Pixel module incomplete: {exc}") from exc
    if length not in (expected, expected + 1):  # + 1: padding to an even length (PS3.5 §7.1)
        raise CorruptDicom(f"Pixel Data has {length} bytes, its image attributes need {expected}")


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword, "")
    return "" if value is None else str(value).strip()


def _default_text(ds: Dataset, keyword: str) -> str | None:
    """The value of a UI, CS, IS, DA or TM element as text, ``None`` when absent.

    These VRs are restricted to the Default Character Repertoire (PS3.5 §6.2), so the bytes of
    a still-raw element are decoded here directly (as pydicom decodes the default repertoire)
    and trailing padding stripped (PS3.5 §6.2: NULL for UI, space for the others).  pydicom's
    own conversion of an element costs ~25 µs, about a tenth of a whole put's parsing; an
    element pydicom has converted already is taken as it is.
    """
    elem = ds.get_item(_TAGS[keyword], keep_deferred=True)
    if elem is None:
        return None
    if isinstance(elem, RawDataElement):
        return "" if elem.value is None else elem.value.decode("latin-1").rstrip(" \0")
    return "" if elem.value is None else str(elem.value).rstrip(" \0")


def _integer(ds: Dataset, keyword: str) -> int | None:
    """An IS value, or ``None`` when absent, empty or not one integer (tolerated, not indexed)."""
    value = _default_text(ds, keyword)
    if not value:
        return None
    with contextlib.suppress(ValueError):
        return int(value)
    with contextlib.suppress(ValueError, OverflowError):
        number = float(value)  # "12.0" is an integer string pydicom accepts
        if number.is_integer():
            return int(number)
    return None


def _uid(ds: Dataset, keyword: str, what: str) -> str:
    value = _default_text(ds, keyword)
    if value is None:
        raise InvalidUID(f"{what} ({keyword}) is missing")
    return require_uid(value, what)


_TAGS: Final = {
    keyword: Tag(keyword)
    for keyword in (
        "SOPInstanceUID",
        "SOPClassUID",
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "Modality",
        "SeriesNumber",
        "InstanceNumber",
        "NumberOfFrames",
        "StudyDate",
        "StudyTime",
    )
}


def _header(ds: Dataset, ts: str) -> Header:
    try:
        frames = _integer(ds, "NumberOfFrames") or 1
        return Header(
            sop_instance_uid=_uid(ds, "SOPInstanceUID", "SOP Instance UID"),
            sop_class_uid=_uid(ds, "SOPClassUID", "SOP Class UID"),
            transfer_syntax_uid=require_uid(ts, "Transfer Syntax UID"),
            study_instance_uid=_uid(ds, "StudyInstanceUID", "Study Instance UID"),
            series_instance_uid=_uid(ds, "SeriesInstanceUID", "Series Instance UID"),
            patient_id=_text(ds, "PatientID"),
            patient_name=_text(ds, "PatientName"),
            modality=(_default_text(ds, "Modality") or "").strip()[:16],
            series_number=_integer(ds, "SeriesNumber"),
            instance_number=_integer(ds, "InstanceNumber"),
            number_of_frames=frames,
            study_date=(_default_text(ds, "StudyDate") or "").strip()[:8],
            study_time=(_default_text(ds, "StudyTime") or "").strip()[:16],
            accession_number=_text(ds, "AccessionNumber"),
            study_id=_text(ds, "StudyID"),
            study_description=_text(ds, "StudyDescription"),
            series_description=_text(ds, "SeriesDescription"),
        )
    except InvalidUID:
        raise
    except Exception as exc:  # a value pydicom cannot convert (bad VR, charset...)
        raise CorruptDicom(f"unreadable attribute value: {exc}") from exc
