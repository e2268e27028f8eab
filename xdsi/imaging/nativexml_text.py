"""The text of PS3.19 Native DICOM Model values (PS3.19 Annex A.1; PS3.5 §6.1-6.2).

What :mod:`xdsi.imaging.nativexml` writes inside ``DicomAttribute``: XML escaping of character
data and attribute values (XML 1.0 §2.2, §2.4, §2.11, §3.3.3), the Python codecs of a Specific
Character Set, ``Value`` and ``PersonName`` elements, and binary values (US, SS, UL, SL, FL, FD,
UV, SV, AT) read straight from their bytes.  Split from the writer, which walks the data set.
"""

from __future__ import annotations

import codecs
import logging
import re
import struct
import warnings
from collections.abc import Sequence
from typing import Final

import numpy as np
from pydicom.charset import convert_encodings
from pydicom.dataelem import DataElement, RawDataElement

from xdsi.xmlchars import XML_INVALID

log = logging.getLogger(__name__)


_INTEGER_VRS: Final = frozenset({"US", "SS", "UL", "SL", "UV", "SV"})
_INTEGER_SIZES: Final = {"H": 2, "h": 2, "I": 4, "i": 4, "Q": 8, "q": 8}
_BULK_ITEM_SIZE: Final = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}
"""Word size for byte-swapping bulk values of big-endian data sets to little endian."""
_STATELESS_CODECS: Final = frozenset(
    {f"iso8859-{n}" for n in range(1, 17)} | {"ascii", "utf-8", "tis-620", "koi8-r", "cp1252"}
)
"""Codecs (canonical ``codecs.lookup`` names) for which decoding a whole Value Field and then
splitting on ``\\`` is safe: single-byte, or UTF-8 (whose multi-byte sequences never contain
0x5C).  Everything else (ISO 2022 code extensions, GB18030, GBK, Shift-JIS) goes through pydicom
(PS3.5 §6.1.2.5.3, §6.2.1)."""

Encodings = tuple[str, ...]
_ENCODINGS_CACHE: dict[tuple[str, ...], tuple[Encodings, bool]] = {}
DEFAULT_ENCODINGS: Final[tuple[Encodings, bool]] = (("iso8859",), True)

_PN_GROUPS: Final = ("Alphabetic", "Ideographic", "Phonetic")
_PN_COMPONENTS: Final = ("FamilyName", "GivenName", "MiddleName", "NamePrefix", "NameSuffix")

TEXT_SPECIAL: Final = re.compile("[&<>\r\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
"""Characters that need escaping (``&<>``; CR, which parsers would turn into LF, XML 1.0 §2.11)
or replacing (outside XML 1.0 ``Char``, §2.2) in character data."""
_ATTR_SPECIAL: Final = re.compile('[&<>"\t\n\r\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]')
"""As :data:`TEXT_SPECIAL` plus ``"`` and the white space that attribute-value normalisation
would turn into spaces (XML 1.0 §3.3.3)."""
_ESCAPES: Final = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        '"': "&quot;",
        "\t": "&#9;",
        "\n": "&#10;",
        "\r": "&#13;",
    }
)
_TEXT_ESCAPES: Final = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})


def escape_text(text: str) -> str:
    """``text`` as XML character data (escaped; characters XML 1.0 cannot carry as U+FFFD)."""
    if TEXT_SPECIAL.search(text) is None:
        return text
    return XML_INVALID.sub("\ufffd", text).translate(_TEXT_ESCAPES)


def escape_attr(text: str) -> str:
    """``text`` as a double-quoted XML attribute value (white space kept as references)."""
    if _ATTR_SPECIAL.search(text) is None:
        return text
    return XML_INVALID.sub("\ufffd", text).translate(_ESCAPES)


def codecs_of(terms: Sequence[str]) -> tuple[Encodings, bool]:
    """Python codecs for Specific Character Set ``terms`` and whether they are stateless.

    Unknown terms fall back to ISO 8859-1 with a logged warning, never an exception (pydicom's
    ``convert_encodings`` rule; it raises only under ``reading_validation_mode == RAISE``).
    """
    key = tuple(terms)
    cached = _ENCODINGS_CACHE.get(key)
    if cached is not None:
        return cached
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            names = tuple(convert_encodings(list(key)))
        except LookupError:
            names = ("iso8859",)
            log.warning("unknown Specific Character Set %r: decoding as ISO 8859-1", key)
    for warning in caught:
        log.warning("Specific Character Set %r: %s", key, warning.message)
    result = (names, len(names) == 1 and _canonical(names[0]) in _STATELESS_CODECS)
    _ENCODINGS_CACHE[key] = result
    return result


def _canonical(codec: str) -> str:
    try:
        return codecs.lookup(codec).name
    except LookupError:
        return codec


def charset_terms(elem: DataElement | RawDataElement) -> list[str]:
    value = elem.value
    if isinstance(value, bytes):
        text = value.decode("ascii", "replace")
        return [t.strip(" \0") for t in text.split("\\")]
    if isinstance(value, str):
        return [value.strip()]
    if value is None:
        return []
    return [str(v).strip() for v in value]


def format_fl(value: float) -> str:
    # Shortest text that reads back to the same float32 (numpy's Dragon4), e.g. "179.0358".
    return str(np.float32(value))


def swap_to_little(data: bytes, vr: str) -> bytes:
    size = _BULK_ITEM_SIZE.get(vr)
    if not size or len(data) % size:
        return data
    return np.frombuffer(data, dtype=f">u{size}").astype(f"<u{size}").tobytes()


def value_elements(texts: Sequence[str]) -> str:
    """``Value`` elements for ``texts``; none for a single empty value (VM 0, PS3.5 §6.4)."""
    if len(texts) == 1 and not texts[0]:
        return ""
    return "".join(
        f'<Value number="{number}">{escape_text(text)}</Value>'
        if text
        else f'<Value number="{number}"/>'
        for number, text in enumerate(texts, start=1)
    )


def person_name_elements(names: Sequence[str]) -> str:
    """One ``PersonName`` per value; groups split on ``=``, components on ``^`` (PS3.5 §6.2.1).

    A single value without any non-empty component (``""``, ``"^^^^"``) is written as an empty
    attribute, as dcm2xml does: it carries no name.  In multi-valued PN an empty ``PersonName``
    keeps the position.
    """
    parts = []
    for number, name in enumerate(names, start=1):
        parts.append(f'<PersonName number="{number}">')
        for group_name, group in zip(_PN_GROUPS, name.split("="), strict=False):
            components = [c.strip() for c in group.split("^")]
            if not any(components):
                continue
            parts.append(f"<{group_name}>")
            for component_name, component in zip(_PN_COMPONENTS, components, strict=False):
                if component:
                    parts.append(f"<{component_name}>{escape_text(component)}</{component_name}>")
            parts.append(f"</{group_name}>")
        parts.append("</PersonName>")
    if len(parts) == 2:
        return ""
    return "".join(parts)


def binary_value_elements(data: bytes, vr: str, fmt: str, little: bool, tag: int) -> str:
    if vr in _INTEGER_VRS and len(data) == _INTEGER_SIZES[fmt]:
        # One integer (Rows, Columns, BitsAllocated...): the most common binary value.
        number = int.from_bytes(data, "little" if little else "big", signed=fmt.islower())
        return f'<Value number="1">{number}</Value>'
    size = struct.calcsize(fmt)
    count, rest = divmod(len(data), size)
    if rest:
        log.warning(
            "(%04X,%04X) %s: value length %d is not a multiple of %d; %d trailing bytes ignored",
            tag >> 16,
            tag & 0xFFFF,
            vr,
            len(data),
            size,
            rest,
        )
    numbers = struct.unpack_from(f"{'<' if little else '>'}{count}{fmt}", data)
    if vr == "AT":
        return value_elements(
            [f"{g:04X}{e:04X}" for g, e in zip(numbers[::2], numbers[1::2], strict=False)]
        )
    if vr == "FL":
        return value_elements([format_fl(v) for v in numbers])
    # repr of a float is its shortest round-trip text
    return value_elements([repr(v) for v in numbers])


__all__ = [
    "DEFAULT_ENCODINGS",
    "TEXT_SPECIAL",
    "Encodings",
    "binary_value_elements",
    "charset_terms",
    "codecs_of",
    "escape_attr",
    "escape_text",
    "format_fl",
    "person_name_elements",
    "swap_to_little",
    "value_elements",
]
