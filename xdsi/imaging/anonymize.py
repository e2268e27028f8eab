"""De-identification by the PS3.15 Basic Application Level Confidentiality Profile (Annex E.1.1).

PS3.18 2017b §8.1.7 (``Anonymize``): the metadata "shall be anonymized if requested", and "The
Server shall return a new SOP Instance UID if the content of the object has not already been
anonymized".  Both the metadata and the rendered operation use :class:`Anonymizer`.

**Table.** The actions per attribute are PS3.15 Table E.1-1 ("Basic Prof." column) as published
in machine-readable form by the ``dicom-anonymizer`` package (KitwareMedical, module
``dicomfields_2026c``: PS3.15 2026c).  Its *engine* is not used, because it does not fit a
server: it keeps one process-wide UID map (growing without bound and linking the pseudonyms of
unrelated requesters), applies the table only to top-level attributes (a Referenced SOP Instance
UID inside a sequence keeps its value), prints to stdout, and raises on several VRs.  The few
lines below apply the same table to every nesting level.

**Actions** (PS3.15 Table E.1-1 legend), with the choice made where the table offers several:

* ``X`` remove; ``Z`` zero-length value; ``D`` a dummy value of the attribute's VR; ``U`` a new
  UID, the same new UID for the same old one within one :class:`Anonymizer` (one response);
* ``Z/D`` → Z; ``X/Z``, ``X/D``, ``X/Z/D`` and ``X/Z/U*`` → X (the option that keeps least);
* a sequence with ``D`` keeps its items, the profile applied inside each (a non-zero-length
  value, none of the identifying content); with ``Z`` it becomes empty;
* private attributes are removed (Table E.1-1, "Private attributes": X; no Retain Safe Private
  option); curve (50xx) and overlay comments/data (60xx) by the table's group masks;
* attributes the table does not list are kept (they are not identifying per PS3.15 E.1.1).

Afterwards Patient Identity Removed (0012,0062) is ``YES`` and De-identification Method
(0012,0063) / De-identification Method Code Sequence (0012,0064) name the profile with code
``113100`` (DCM, "Basic Application Confidentiality Profile"; PS3.15 E.1.1 item 6, PS3.16 CID 7050).
Pixel data is not examined: :func:`burned_in_annotation` tells a caller that must refuse (with
``urn:dicom:wado:0001``) images whose pixels may identify the patient.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Final

from pydicom.datadict import dictionary_has_tag, dictionary_VR
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

__all__ = ["PROFILE_CODE", "PROFILE_NAME", "Anonymizer", "burned_in_annotation"]

PROFILE_NAME: Final = "Basic Application Level Confidentiality Profile (PS3.15 E.1.1)"
PROFILE_CODE: Final = ("113100", "DCM", "Basic Application Confidentiality Profile")
"""(Code Value, Coding Scheme Designator, Code Meaning), PS3.16 CID 7050."""

_REMOVE: Final = "X"
_ZERO: Final = "Z"
_DUMMY: Final = "D"
_NEW_UID: Final = "U"

_DUMMIES: Final[dict[str, object]] = {
    "AE": "ANONYMIZED",
    "AS": "000Y",
    "CS": "ANONYMIZED",
    "DA": "19000101",
    "DS": "0",
    "DT": "19000101000000",
    "IS": "0",
    "LO": "ANONYMIZED",
    "LT": "ANONYMIZED",
    "PN": "ANONYMIZED",
    "SH": "ANONYMIZED",
    "ST": "ANONYMIZED",
    "TM": "000000",
    "UC": "ANONYMIZED",
    "UR": "http://anonymized.invalid",
    "UT": "ANONYMIZED",
    "FL": 0.0,
    "FD": 0.0,
    "SL": 0,
    "SS": 0,
    "UL": 0,
    "US": 0,
    "SV": 0,
    "UV": 0,
}
"""D values: valid for their VR (PS3.5 Table 6.2-1 lengths and character repertoires)."""


@functools.cache
def _table() -> tuple[dict[int, str], tuple[tuple[int, int, str], ...]]:
    """(tag → action, (value, mask, action) for the repeating groups) from PS3.15 Table E.1-1."""
    from dicomanonymizer.dicom_anonymization_databases import dicomfields_2026c as e11

    by_tag: dict[int, str] = {}
    masked: list[tuple[int, int, str]] = []
    # Later categories never override earlier ones: each tag is in exactly one list.
    categories: Iterable[tuple[str, str]] = (
        ("D_TAGS", _DUMMY),
        ("Z_TAGS", _ZERO),
        ("X_TAGS", _REMOVE),
        ("U_TAGS", _NEW_UID),
        ("Z_D_TAGS", _ZERO),
        ("X_Z_TAGS", _REMOVE),
        ("X_D_TAGS", _REMOVE),
        ("X_Z_D_TAGS", _REMOVE),
        ("X_Z_U_STAR_TAGS", _REMOVE),
    )
    for name, action in categories:
        for entry in getattr(e11, name):
            if len(entry) == 2:
                by_tag.setdefault(entry[0] << 16 | entry[1], action)
            else:
                group, element, group_mask, element_mask = entry
                masked.append((group << 16 | element, group_mask << 16 | element_mask, action))
    return by_tag, tuple(masked)


def _action(tag: int) -> str | None:
    by_tag, masked = _table()
    action = by_tag.get(tag)
    if action is not None:
        return action
    for value, mask, masked_action in masked:
        if tag & mask == value & mask:
            return masked_action
    return None


def _may_be_sequence(ds: Dataset, tag: int) -> bool:
    """Whether the (possibly still raw) element is a sequence, without converting it."""
    vr = ds.get_item(tag, keep_deferred=True).VR
    if vr is None or vr.startswith("UN"):  # implicit VR or unknown: ask the dictionary
        return dictionary_VR(tag) == "SQ" if dictionary_has_tag(tag) else vr is None
    return vr == "SQ"


def burned_in_annotation(ds: Dataset) -> bool:
    """Whether the pixels may show identifying text: Burned In Annotation (0028,0301) is not
    ``NO`` for an image (PS3.3 C.7.6.1.1.1; PS3.15 E.1.1 leaves pixel cleaning to options)."""
    if "PixelData" not in ds:
        return False
    return str(ds.get("BurnedInAnnotation", "") or "").strip().upper() != "NO"


class Anonymizer:
    """Applies the Basic Profile; one instance per response so that new UIDs are consistent in it.

    Not thread-safe; cheap to create.
    """

    def __init__(self) -> None:
        self._uids: dict[str, str] = {}

    def new_uid(self, old: str) -> str:
        """The replacement of ``old``, the same for the same ``old`` within this anonymizer."""
        key = old.strip("\0 ")
        new = self._uids.get(key)
        if new is None:
            new = str(generate_uid(prefix=None))  # 2.25.<UUID> (PS3.5 §B.2)
            self._uids[key] = new
        return new

    def anonymize(self, ds: Dataset) -> None:
        """De-identify ``ds`` in place (and its ``file_meta`` SOP Instance UID).

        Raises whatever pydicom raises on a value it cannot convert; callers report that as
        ``urn:dicom:wado:0001`` ("Unable to anonymize").
        """
        stack = [ds]
        while stack:
            current = stack.pop()
            stack.extend(self._dataset(current))
        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethod = PROFILE_NAME
        code = Dataset()
        code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = PROFILE_CODE
        ds.DeidentificationMethodCodeSequence = Sequence([code])
        meta = getattr(ds, "file_meta", None)
        if meta is not None and "SOPInstanceUID" in ds:
            meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID

    def _dataset(self, ds: Dataset) -> list[Dataset]:
        """Apply the table to the attributes of one data set; return its items to visit."""
        items: list[Dataset] = []
        for key in list(ds.keys()):
            tag = int(key)
            if tag >> 16 == 0x0002:
                continue
            if tag >> 16 & 1:
                del ds[tag]  # private attributes: X
                continue
            action = _action(tag)
            if action == _REMOVE:
                del ds[tag]
                continue
            if action is None and not _may_be_sequence(ds, tag):
                continue  # kept as it is, not even converted (Pixel Data stays unread)
            elem: DataElement = ds[tag]
            if elem.VR == "SQ":
                if action == _ZERO:
                    elem.value = Sequence()
                else:  # kept or D: the profile applies inside each item
                    items.extend(elem.value or ())
            elif action == _ZERO:
                elem.value = None
            elif action == _NEW_UID or (action == _DUMMY and elem.VR == "UI"):
                elem.value = self._uids_of(elem.value)
            elif action == _DUMMY:
                dummy = _DUMMIES.get(elem.VR)
                elem.value = dummy if dummy is not None else b"\0\0"
        return items

    def _uids_of(self, value: object) -> object:
        if value is None or value == "":
            return value
        if isinstance(value, MultiValue | list | tuple):
            return [self.new_uid(str(v)) if v else v for v in value]
        return self.new_uid(str(value))
