"""Write a pydicom data set as a PS3.19 Native DICOM Model XML Infoset (PS3.19 Annex A.1).

No maintained PyPI package writes this model (``../shared/docs/libraries.md`` §5: pydicom has only
DICOM JSON), so this module writes it: as escaped text, parsed once by libxml2 into the lxml tree
that :func:`to_native_xml` returns (see "serialisation" below for why not ``SubElement``).  dcmtk's
``dcm2xml -nat +Xn`` is the test oracle.  The metadata transaction (PS3.18 2017b §6.4.3.2: "convert
the non-pixel data ... into an XML encoded form", then apply the XPath) evaluates its XPath on the
returned root.  Two XPath facts for it: the document carries a default namespace, so expressions
need a prefix bound to :data:`xdsi.ns.NATIVE_DICOM`; and lxml answers ``[]`` for ``"/"`` (it
cannot return the document node), which PS3.18 defines as "all of the metadata".

Decisions, with the text they rest on (PS3.19 Table A.1.5-1/-2 and the RELAX NG of §A.1.6):

* Root ``NativeDicomModel`` in namespace :data:`xdsi.ns.NATIVE_DICOM` with ``xml:space="preserve"``
  ("The directive xml:space="preserve" shall be included").  Group length (gggg,0000) elements are
  not written ("shall not be included"), nor is the File Meta group 0002, which is not part of the
  data set (PS3.10 §7.1).
* **Private data elements**: ``tag`` is written as ``gggg00ee`` plus ``privateCreator`` ("the two
  most significant hexadecimal characters of the Element Number shall be 00, since the Private
  Creator is explicitly conveyed", Table A.1.5-2 ``tag``; dcm2xml does the same).  Private Creator
  elements (gggg,0010-00FF) are written as ordinary attributes without keyword, as dcm2xml does.  A
  private element whose block has **no creator** in its data set cannot follow that rule without
  losing its block: it keeps its full tag and gets no ``privateCreator`` (dcm2xml zeroes the block
  anyway and loses it; we prefer a faithful tag to a misleading one).  Private elements get no
  ``keyword``: keywords are PS3.6 ones and private dictionaries define none ("Required unless the
  DICOM Data Element is unknown to the host").
* **VR**: as read; a UN element of a tag the PS3.6 dictionary knows gets the dictionary VR and
  decoded values (pydicom's rule; PS3.19 ``vr``: "as ... specified for this Data Element in
  PS3.6"; dcm2xml keeps UN).  Encapsulated Pixel Data is OB whatever the file says (PS3.5 §A.4).
* **Values**: one ``Value@number`` per value, 1-based, empty values keep their position; zero-length
  elements get no child, nor do single values that are only padding or a PN without any component
  (VM 0, as pydicom and dcm2xml read them). Text is decoded through the data set's (or enclosing
  data set's) Specific Character Set and written as Unicode; trailing padding (space, NUL) is
  removed, and leading spaces for the VRs where PS3.5 Table 6.2-1 calls them insignificant. DS and
  IS keep their stored text; FL and FD are written in the shortest form that round-trips (float32 /
  float64); AT as 8 upper-case hex digits.
* **PN**: ``PersonName@number`` with ``Alphabetic``/``Ideographic``/``Phonetic`` groups and the five
  components, each written only when present (PS3.5 §6.2.1).
* **Bulk data** (VR OB, OD, OF, OL, OV, OW, UN; PS3.19 Table A.1.5-2 ``InlineBinary``):
  :attr:`BulkDataMode.URI` writes ``BulkData@uri``, :attr:`BulkDataMode.INLINE` writes
  ``InlineBinary`` (base64 of the Value Field, little endian), :attr:`BulkDataMode.OMIT` writes the
  ``DicomAttribute`` (tag, VR, keyword) with no child.  OMIT is schema-valid (the content is
  optional in the RELAX NG) and says "present but not conveyed"; a ``BulkData@uuid`` would promise
  a reference nobody can resolve.
* **Bad input never raises**: unknown Specific Character Set terms fall back to ISO 8859-1 with a
  warning (pydicom's rule); undecodable bytes become U+FFFD; characters XML 1.0 forbids (most C0
  controls, U+FFFE/U+FFFF, lone surrogates; XML 1.0 §2.2) are replaced by U+FFFD, because XML 1.0
  cannot carry them even as character references; odd-length binary values are truncated to whole
  values with a warning; an element pydicom cannot convert is written as ``UN`` bulk data.
* Sequences nested to any depth are written with an explicit stack of generators, not recursion.
  libxml2 builds trees of at most 2048 levels (about 1,000 nested sequences): deeper input makes
  :func:`to_native_xml` raise :class:`~xdsi.errors.ProcessingFailure` (PS3.18 ``0014``), while
  :func:`to_native_xml_bytes` writes it.

The writer reads ``RawDataElement`` values straight from the bytes for the common cases (explicit
VR, stateless character sets), which is several times faster than letting pydicom convert every
element first; anything unusual (implicit VR, ambiguous VRs, sequences, ISO 2022 code extensions,
deferred values) goes through pydicom's own conversion.
"""

from __future__ import annotations

import base64
import enum
import logging
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from io import BytesIO
from typing import Any, Final, cast

import pydicom
from lxml import etree
from pydicom.datadict import keyword_for_tag
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.filereader import read_sequence
from pydicom.multival import MultiValue
from pydicom.valuerep import PersonName

from xdsi import ns
from xdsi.errors import ProcessingFailure
from xdsi.imaging.nativexml_text import (
    DEFAULT_ENCODINGS,
    TEXT_SPECIAL,
    Encodings,
    binary_value_elements,
    charset_terms,
    codecs_of,
    escape_attr,
    escape_text,
    format_fl,
    person_name_elements,
    swap_to_little,
    value_elements,
)

__all__ = [
    "BULK_VRS",
    "BulkDataMode",
    "BulkUri",
    "bulk_uri_under",
    "to_native_xml",
    "to_native_xml_bytes",
]

log = logging.getLogger(__name__)


class BulkDataMode(enum.Enum):
    """How bulk-data values are conveyed (PS3.19 Table A.1.5-2 ``BulkData``, ``InlineBinary``)."""

    OMIT = "omit"
    """``DicomAttribute`` with tag, VR and keyword but no child."""
    URI = "uri"
    """``<BulkData uri="..."/>``; the URI comes from the caller's ``bulk_uri``."""
    INLINE = "inline"
    """``<InlineBinary>`` with the base64 of the whole Value Field."""


BulkUri = Callable[[tuple[int, ...]], str]
"""Maps the path to a bulk attribute to its URI.

The path alternates tags and 1-based item numbers: ``(0x7FE00010,)`` for top-level Pixel Data,
``(0x00540016, 1, 0x00181078)`` for an attribute in item 1 of a sequence.
"""

BULK_VRS: Final = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
"""VRs whose values are written as BulkData/InlineBinary (PS3.19 Table A.1.5-2 ``InlineBinary``)."""

# --- VR classes (PS3.5 §6.2, Table 6.2-1) ------------------------------------------------------

_TEXT_SINGLE: Final = frozenset({"LT", "ST", "UT", "UR"})
"""Text VRs whose Value Field holds exactly one value (backslash is not a delimiter)."""
_TEXT_STRIP_BOTH: Final = frozenset(
    {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "SH", "TM", "UI"}
)
"""Text VRs where leading spaces are insignificant too (PS3.5 Table 6.2-1); UI pads with NUL."""
_TEXT_VRS: Final = _TEXT_SINGLE | _TEXT_STRIP_BOTH | {"UC", "PN"}
_BINARY_FORMATS: Final = {
    "US": "H",
    "SS": "h",
    "UL": "I",
    "SL": "i",
    "FL": "f",
    "FD": "d",
    "UV": "Q",
    "SV": "q",
    "AT": "H",
}
_OMITTABLE: Final = BULK_VRS - {"UN"}
"""Bulk VRs whose raw value need not be read in OMIT mode (UN may turn out to be text)."""
_PIXEL_DATA: Final = 0x7FE00010
_UNDEFINED_LENGTH: Final = 0xFFFFFFFF
_AMBIGUOUS_FALLBACK: Final = {
    "US or SS": "US",
    "US or OW": "US",
    "US or SS or OW": "US",
    "OB or OW": "OW",
}
"""VR used when pydicom could not resolve an ambiguous dictionary VR (PS3.5 Annex A.1 OW rule)."""
_VALID_VRS: Final = _TEXT_VRS | BULK_VRS | set(_BINARY_FORMATS) | {"SQ"}

_KEYWORDS: dict[int, str | None] = {}
"""tag → PS3.6 keyword (``None`` when unknown), filled on first use: dictionary look-ups of repeater
groups are slow and a study repeats the same hundred tags."""



def to_native_xml(
    ds: pydicom.Dataset,
    *,
    bulk: BulkDataMode = BulkDataMode.OMIT,
    bulk_uri: BulkUri | None = None,
) -> etree._Element:
    """Return the ``NativeDicomModel`` root element for ``ds`` (PS3.19 §A.1).

    Parameters
    ----------
    ds:
        The data set; its ``file_meta`` is ignored.  Raw (unconverted) elements are read without
        converting them, so passing a freshly read data set is fastest.
    bulk:
        How to convey OB/OD/OF/OL/OV/OW/UN values, see :class:`BulkDataMode`.
    bulk_uri:
        Required for :attr:`BulkDataMode.URI`: maps the element path (see :data:`BulkUri`) to
        the ``BulkData@uri`` value.

    Raises
    ------
    ValueError
        If ``bulk`` is URI and ``bulk_uri`` is missing.
    xdsi.errors.ProcessingFailure
        If sequences nest deeper than libxml2 builds trees (2048 XML levels, i.e. about 1,000
        nested sequences, even with ``huge_tree``); :func:`to_native_xml_bytes` has no such
        limit.  Bad data otherwise never raises.
    """
    text = _serialise(ds, bulk, bulk_uri)
    try:
        root: etree._Element = etree.fromstring(text, _parser())
    except etree.XMLSyntaxError as exc:
        raise ProcessingFailure(f"cannot build the Native DICOM Model tree: {exc}") from exc
    return root


def to_native_xml_bytes(
    ds: pydicom.Dataset,
    *,
    bulk: BulkDataMode = BulkDataMode.OMIT,
    bulk_uri: BulkUri | None = None,
    pretty_print: bool = False,
    xml_declaration: bool = True,
) -> bytes:
    """:func:`to_native_xml` serialised as UTF-8, with an XML declaration unless
    ``xml_declaration`` is false (the form embedded in other XML, e.g. a metadata XPathResponse).

    ``pretty_print`` puts each element on its own line and indents it, as dcm2xml does; the added
    whitespace sits in element-only content, which the schema ignores, but it is text under
    ``xml:space`` for a generic XML reader, so it is off by default.
    """
    if pretty_print:
        root = to_native_xml(ds, bulk=bulk, bulk_uri=bulk_uri)
        data: bytes = etree.tostring(
            root, xml_declaration=xml_declaration, encoding="UTF-8", pretty_print=True
        )
        return data
    body = _serialise(ds, bulk, bulk_uri)
    return _DECLARATION + body if xml_declaration else body


# --- serialisation ------------------------------------------------------------------------------
#
# The tree is written as text and parsed once by libxml2 instead of being built with
# ``etree.SubElement``: measured on 693_UNCR.dcm, creating lxml elements one Python call at a time
# costs ~7 µs per attribute, text plus one parse ~2 µs, and the ≥ 2,000 instances/s target of the
# metadata transaction needs the latter.  Escaping is therefore done by this package
# (:mod:`xdsi.imaging.nativexml_text`; XML 1.0 §2.4, §3.3.3).

_DECLARATION: Final = b"<?xml version='1.0' encoding='UTF-8'?>\n"
_ROOT_OPEN: Final = f'<NativeDicomModel xmlns="{ns.NATIVE_DICOM}" xml:space="preserve">'
_ROOT_CLOSE: Final = "</NativeDicomModel>"


_PARSER = threading.local()


def _parser() -> etree.XMLParser:
    """A per-thread parser (lxml parsers must not be shared between threads).

    ``huge_tree`` lifts libxml2's nesting limit of 256 for deeply nested sequences; nothing in the
    text is external, so entity resolution and network access are off.
    """
    parser: etree.XMLParser | None = getattr(_PARSER, "parser", None)
    if parser is None:
        parser = etree.XMLParser(
            huge_tree=True, resolve_entities=False, no_network=True, remove_comments=True
        )
        _PARSER.parser = parser
    return parser


def _serialise(ds: pydicom.Dataset, bulk: BulkDataMode, bulk_uri: BulkUri | None) -> bytes:
    if bulk is BulkDataMode.URI and bulk_uri is None:
        raise ValueError("BulkDataMode.URI needs a bulk_uri callable")
    out = [_ROOT_OPEN]
    _Writer(out, bulk, bulk_uri).write(ds)
    out.append(_ROOT_CLOSE)
    return "".join(out).encode("utf-8")


# --- helpers ------------------------------------------------------------------------------------


def _keyword(tag: int) -> str | None:
    try:
        return _KEYWORDS[tag]
    except KeyError:
        keyword = keyword_for_tag(tag) or None
        _KEYWORDS[tag] = keyword
        return keyword


_TEXT: Final = 0
_BINARY: Final = 1
_FAST_KIND: Final[dict[str, int]] = {vr: _TEXT for vr in _TEXT_STRIP_BOTH} | {
    vr: _BINARY for vr in _BINARY_FORMATS
}
"""VRs the fast path of :meth:`_Writer._dataset` writes from raw bytes."""
_OPENINGS: dict[tuple[int, str], str] = {}
"""(tag, VR) → ``<DicomAttribute tag=... vr=... keyword=...`` of standard attributes."""


def _opening(tag: int, vr: str) -> str:
    keyword = _keyword(tag)
    text = f'<DicomAttribute tag="{tag:08X}" vr="{vr}"'
    if keyword:
        text += f' keyword="{keyword}"'
    _OPENINGS[tag, vr] = text
    return text


_Frame = Iterator[tuple[pydicom.Dataset, tuple[Encodings, bool], tuple[int, ...]]]


class _Writer:
    """One conversion: output parts, bulk settings and the stack of open data sets."""

    __slots__ = ("bulk", "bulk_uri", "out")

    def __init__(self, out: list[str], bulk: BulkDataMode, bulk_uri: BulkUri | None) -> None:
        self.out = out
        self.bulk = bulk
        self.bulk_uri = bulk_uri

    def write(self, ds: pydicom.Dataset) -> None:
        # Each data set is a generator that writes its attributes and yields when it meets a
        # sequence item; the item's generator goes on an explicit stack.  Nesting depth is thus
        # bounded by memory, not by Python's recursion limit.
        stack: list[_Frame] = [self._dataset(ds, DEFAULT_ENCODINGS, ())]
        while stack:
            child = next(stack[-1], None)
            if child is None:
                stack.pop()
            else:
                stack.append(self._dataset(*child))

    def _dataset(
        self, ds: pydicom.Dataset, encodings: tuple[Encodings, bool], path: tuple[int, ...]
    ) -> _Frame:
        out = self.out
        # ``_dict`` is pydicom's tag → element map.  Reading it directly keeps raw elements raw
        # and avoids ``Dataset.elements()``, which re-parses every key through ``Tag()``.  Keys
        # are BaseTag, an int subclass: they are read with plain ints and sorted as plain ints,
        # which spares BaseTag's Python-level comparisons.
        elements = cast("Mapping[int, DataElement | RawDataElement]", ds._dict)
        charset = elements.get(0x00080005)
        if charset is not None:
            terms = charset_terms(charset)
            if any(terms):
                encodings = codecs_of(terms)
        names, stateless = encodings
        creators: dict[int, str | None] = {}
        codec = names[0]
        vr: str
        for tag, elem in sorted(zip(map(int, elements), elements.values(), strict=True)):
            group = tag >> 16
            element_number = tag & 0xFFFF
            if group == 0x0002 or element_number == 0 or group == 0xFFFE:
                continue  # file meta, group length, item delimiters: not data set attributes
            # Fast path for the bulk of a header: a standard attribute still raw, explicit VR,
            # text in a stateless character set or a binary number.  Everything it declines
            # goes through the general code below, which writes the same thing more slowly.
            if elem.__class__ is RawDataElement and not group & 1:
                raw_vr: str | None = elem[1]
                value: bytes | None = elem[3]
                kind = _FAST_KIND.get(raw_vr, -1) if raw_vr is not None else -1
                fast = kind == _BINARY or (kind == _TEXT and stateless)
                if fast and raw_vr is not None and value is not None:
                    vr = raw_vr
                    opening = _OPENINGS.get((tag, vr)) or _opening(tag, vr)
                    if not value:
                        out.append(opening + "/>")
                        continue
                    if kind == _TEXT:
                        text = value.decode(codec, "replace")
                        if "\\" in text:
                            body = value_elements([v.strip(" \0") for v in text.split("\\")])
                        else:
                            text = text.strip(" \0")
                            if not text:  # padding only: VM 0, like a zero-length value
                                out.append(opening + "/>")
                                continue
                            if TEXT_SPECIAL.search(text) is None:
                                body = f'<Value number="1">{text}</Value>'
                            else:
                                body = f'<Value number="1">{escape_text(text)}</Value>'
                    else:
                        body = binary_value_elements(value, vr, _BINARY_FORMATS[vr], elem[6], tag)
                    out.append(f"{opening}>{body}</DicomAttribute>")
                    continue
            head = f'<DicomAttribute tag="{tag:08X}" vr="'
            tail = '"'
            if group & 1:
                if element_number >= 0x1000:
                    creator_tag = (tag & 0xFFFF0000) | (element_number >> 8)
                    if creator_tag not in creators:
                        creators[creator_tag] = self._creator(elements.get(creator_tag))
                    creator = creators[creator_tag]
                    if creator is not None:
                        head = f'<DicomAttribute tag="{tag & 0xFFFF00FF:08X}" vr="'
                        tail = f'" privateCreator="{escape_attr(creator)}"'
            else:
                keyword = _keyword(tag)
                if keyword:
                    tail = f'" keyword="{keyword}"'
            if isinstance(elem, RawDataElement) and self.bulk is BulkDataMode.OMIT:
                # Nothing of a bulk value is written: never read it (a deferred Pixel Data stays
                # on disk).  Implicit VR Pixel Data is OW (PS3.5 §A.1), encapsulated OB (§A.4).
                omitted = elem.VR
                if tag == _PIXEL_DATA:
                    undefined = elem.length == _UNDEFINED_LENGTH
                    omitted = "OB" if undefined else (omitted or "OW")
                if omitted in _OMITTABLE:
                    out.append(f"{head}{omitted}{tail}/>")
                    continue
            if isinstance(elem, RawDataElement) and not _raw_fast(elem, stateless):
                items = _raw_sequence(elem, names) if elem.VR == "SQ" else None
                if items is not None:
                    out.append(f"{head}SQ{tail}>")
                    for number, item in enumerate(items, start=1):
                        out.append(f'<Item number="{number}">')
                        yield item, encodings, (*path, tag, number)
                        out.append("</Item>")
                    out.append("</DicomAttribute>")
                    continue
                elem = _convert(ds, tag, elem)
            if isinstance(elem, RawDataElement):
                vr = cast(str, elem.VR)  # _raw_fast checked that it is set
                if tag == _PIXEL_DATA and elem.length == _UNDEFINED_LENGTH:
                    vr = "OB"  # encapsulated Pixel Data is OB whatever the file says (PS3.5 §A.4)
                body = self._raw_content(elem, vr, codec, (*path, tag))
            else:
                vr = _AMBIGUOUS_FALLBACK.get(elem.VR, elem.VR)
                if vr not in _VALID_VRS:
                    vr = "UN"
                if tag == _PIXEL_DATA and elem.is_undefined_length:
                    vr = "OB"  # as above
                if vr == "SQ":
                    out.append(f"{head}SQ{tail}>")
                    for number, item in enumerate(elem.value or (), start=1):
                        out.append(f'<Item number="{number}">')
                        yield item, encodings, (*path, tag, number)
                        out.append("</Item>")
                    out.append("</DicomAttribute>")
                    continue
                body = self._converted_content(elem, vr, (*path, tag), ds)
            if body:
                out.append(f"{head}{vr}{tail}>{body}</DicomAttribute>")
            else:
                out.append(f"{head}{vr}{tail}/>")

    # --- raw elements -----------------------------------------------------------------------

    def _raw_content(self, elem: RawDataElement, vr: str, codec: str, path: tuple[int, ...]) -> str:
        data: bytes = elem.value  # type: ignore[assignment]  # not deferred (see _raw_fast)
        if not data:
            return ""
        if vr in BULK_VRS:
            return self._bulk(data, vr, elem.is_little_endian, path)
        fmt = _BINARY_FORMATS.get(vr)
        if fmt is not None:
            return binary_value_elements(data, vr, fmt, elem.is_little_endian, elem.tag)
        text = data.decode(codec, "replace")
        if vr in _TEXT_STRIP_BOTH:
            return value_elements([v.strip(" \0") for v in text.split("\\")])
        if vr == "PN":
            return person_name_elements(text.rstrip(" \0").split("\\"))
        if vr in _TEXT_SINGLE:
            return value_elements([text.rstrip(" \0")])
        # UC: leading spaces count
        return value_elements([v.rstrip(" \0") for v in text.split("\\")])

    # --- converted elements -----------------------------------------------------------------

    def _converted_content(
        self, elem: DataElement, vr: str, path: tuple[int, ...], ds: pydicom.Dataset
    ) -> str:
        value: Any = elem.value
        if value is None:
            return ""
        if isinstance(value, bytes | bytearray):
            data = bytes(value)
            if vr not in BULK_VRS:
                # A text VR still holding bytes (pydicom could not decode it): write it as text.
                return value_elements([data.decode("latin-1").rstrip(" \0")])
            little = ds.original_encoding[1] is not False
            return self._bulk(data, vr, little, path)
        if vr in BULK_VRS:
            # A bulk VR holding numbers (e.g. an ambiguous LUT pydicom decoded): values instead.
            vr = "US"
        values = list(value) if isinstance(value, MultiValue | list | tuple) else [value]
        if vr == "PN":
            return person_name_elements([str(v) if v is not None else "" for v in values])
        if vr == "AT":
            texts = [f"{int(v):08X}" if v is not None else "" for v in values]
        elif vr == "FL":
            texts = [format_fl(v) if v is not None else "" for v in values]
        elif vr == "FD":
            texts = [repr(float(v)) if v is not None else "" for v in values]
        elif vr in _TEXT_STRIP_BOTH:
            texts = [str(v).strip(" \0") if v is not None else "" for v in values]
        elif vr in _TEXT_VRS:
            texts = [str(v).rstrip(" \0") if v is not None else "" for v in values]
        else:
            texts = [str(v) if v is not None else "" for v in values]
        return value_elements(texts)

    # --- bulk data and private creators ------------------------------------------------------

    def _bulk(self, data: bytes, vr: str, little: bool, path: tuple[int, ...]) -> str:
        if self.bulk is BulkDataMode.OMIT:
            return ""
        if self.bulk is BulkDataMode.URI:
            assert self.bulk_uri is not None  # checked in _serialise
            return f'<BulkData uri="{escape_attr(self.bulk_uri(path))}"/>'
        if not little:
            data = swap_to_little(data, vr)
        return f"<InlineBinary>{base64.b64encode(data).decode('ascii')}</InlineBinary>"

    @staticmethod
    def _creator(elem: DataElement | RawDataElement | None) -> str | None:
        """The Private Creator value of a block, or ``None`` if it is absent or empty."""
        if elem is None:
            return None
        value = elem.value
        if isinstance(value, bytes):
            # PS3.5 §7.8.1: creators use the default repertoire; latin-1 never fails on bytes.
            text = value.decode("latin-1")
        elif isinstance(value, PersonName | str):
            text = str(value)
        elif isinstance(value, list | tuple) and value:
            text = str(value[0])
        else:
            return None
        text = text.strip(" \0")
        return text or None


def _raw_fast(elem: RawDataElement, stateless: bool) -> bool:
    """Whether ``elem`` can be written from its bytes without pydicom converting it."""
    vr = elem.VR
    if vr is None or elem.value is None or vr == "SQ" or vr not in _VALID_VRS:
        return False  # implicit VR, deferred read, sequence, ambiguous/unknown VR
    if vr == "UN":
        return False  # pydicom replaces UN with the dictionary VR where it knows one
    return stateless or vr not in _TEXT_VRS


def bulk_uri_under(base: str) -> BulkUri:
    """A :data:`BulkUri` giving ``{base}/{path}``: tags as 8 hex digits, item numbers in decimal.

    E.g. ``{base}/7FE00010`` or ``{base}/00540016/1/00181078`` (the shape of PS3.18 RS bulk data
    URIs, which address an attribute by its tag path).
    """
    prefix = base.rstrip("/")

    def uri(path: tuple[int, ...]) -> str:
        segments = (f"{p:08X}" if i % 2 == 0 else str(p) for i, p in enumerate(path))
        return prefix + "/" + "/".join(segments)

    return uri


def _raw_sequence(raw: RawDataElement, names: Encodings) -> list[pydicom.Dataset] | None:
    """The items of a raw, defined-length sequence, or ``None`` to let pydicom convert it.

    ``pydicom.filereader.read_sequence`` parses the items without storing them back into the
    caller's data set: a third of the cost of ``ds[tag]`` on a CT header, and the input stays
    unmodified.  Any failure falls back to ``ds[tag]``, which reports problems its own way.
    """
    value = raw.value
    if value is None or raw.is_implicit_VR or raw.length == 0xFFFFFFFF:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the fallback conversion reports them
            items: list[pydicom.Dataset] = list(
                read_sequence(BytesIO(value), False, raw.is_little_endian, len(value), list(names))
            )
    except Exception:  # malformed items: let pydicom's full conversion handle it
        return None
    return items


def _convert(ds: pydicom.Dataset, tag: int, raw: RawDataElement) -> DataElement | RawDataElement:
    """``ds[tag]`` (pydicom's conversion), or the raw bytes as a UN element if that fails.

    The fallback stays a ``RawDataElement``: a ``DataElement`` would run pydicom's conversion
    again (it re-reads UN with the dictionary VR), and fail the same way.
    """
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            converted: DataElement = ds[tag]
        for warning in caught:
            log.warning("(%04X,%04X): %s", tag >> 16, tag & 0xFFFF, warning.message)
        return converted
    except Exception as exc:  # a conversion failure is bad data, not a crash
        log.warning(
            "(%04X,%04X) cannot be converted (%s); written as UN", tag >> 16, tag & 0xFFFF, exc
        )
        value = raw.value or b""
        return RawDataElement(
            raw.tag, "UN", len(value), value, raw.value_tell, False, raw.is_little_endian
        )
