"""Renderings of non-image objects for the Rendered Requester (PS3.18 2017b Table 6.1.1-3, Text).

* Structured Reports (PS3.3 C.17.3, SR Document Content) as ``text/plain`` (required) or
  ``text/html`` (the Text default): the content tree in document order, one line (or list item)
  per content item, ``Concept Name: value``, nested by depth.  Observation context and references
  by content item identifier are shown as such; nothing is evaluated.
* Encapsulated PDF (PS3.3 A.45.1) as ``application/pdf``: the Encapsulated Document value, cut to
  Encapsulated Document Length when present (the value is padded to an even length).

Text is produced as :class:`str` and encoded by the caller in the charset chosen from the
request's CharsetList (§8.1.6); pydicom has already decoded the object's Specific Character Set.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Iterator
from typing import Final

from pydicom.dataset import Dataset
from pydicom.uid import EncapsulatedPDFStorage

from xdsi import errors

SR_INDENT: Final = "  "
_HEADER_KEYWORDS: Final = (
    ("Patient", "PatientName"),
    ("Patient ID", "PatientID"),
    ("Study date", "StudyDate"),
    ("Accession", "AccessionNumber"),
)
"""Header lines of a report; the first two identify the patient (left out when anonymized)."""
_IDENTIFYING: Final = frozenset({"PatientName", "PatientID"})
_DATE_KEYWORDS: Final = {"DATETIME": "DateTime", "DATE": "Date", "TIME": "Time"}


def is_structured_report(ds: Dataset) -> bool:
    """True for an SR document (SR Document Content module present, PS3.3 C.17.3)."""
    return "ContentSequence" in ds and "ValueType" in ds and "PixelData" not in ds


def is_encapsulated_pdf(ds: Dataset) -> bool:
    """True for an Encapsulated PDF instance (PS3.3 A.45.1)."""
    return str(ds.get("SOPClassUID", "")) == EncapsulatedPDFStorage or (
        "EncapsulatedDocument" in ds and str(ds.get("MIMETypeOfEncapsulatedDocument", "")) ==
        "application/pdf"
    )  # fmt: skip


def pdf_bytes(ds: Dataset) -> bytes:
    """The PDF carried by an Encapsulated PDF instance, without the even-length padding."""
    value = ds.get("EncapsulatedDocument")
    if not isinstance(value, bytes) or not value:
        raise errors.ProcessingFailure("the Encapsulated Document is empty")
    length = ds.get("EncapsulatedDocumentLength")
    if isinstance(length, int) and 0 < length <= len(value):
        return value[:length]
    if value.endswith(b"\x00"):
        return value[:-1]  # a NUL pad byte (PS3.5 §7.1.1 pads OB values to an even length)
    return value


# --- SR ------------------------------------------------------------------------------------------


def _meaning(item: Dataset, keyword: str = "ConceptNameCodeSequence") -> str:
    codes = item.get(keyword) or []
    return str(codes[0].get("CodeMeaning", "")) if codes else ""


def _value(item: Dataset) -> str:
    """The value of one content item as text (PS3.3 Table C.17.3-7 value types)."""
    kind = str(item.get("ValueType", ""))
    if not kind:
        ref = item.get("ReferencedContentItemIdentifier")
        return f"(see item {'.'.join(str(v) for v in ref)})" if ref is not None else ""
    if kind == "TEXT":
        return str(item.get("TextValue", ""))
    if kind == "CODE":
        return _meaning(item, "ConceptCodeSequence")
    if kind == "NUM":
        measured = item.get("MeasuredValueSequence") or []
        if not measured:
            return ""
        value = measured[0].get("NumericValue", "")
        unit = _meaning(measured[0], "MeasurementUnitsCodeSequence")
        return f"{value} {unit}".strip()
    if kind in _DATE_KEYWORDS:
        return str(item.get(_DATE_KEYWORDS[kind], ""))
    if kind == "PNAME":
        return str(item.get("PersonName", ""))
    if kind == "UIDREF":
        return str(item.get("UID", ""))
    if kind in ("IMAGE", "COMPOSITE", "WAVEFORM"):
        refs = item.get("ReferencedSOPSequence") or []
        return f"{kind.lower()} {refs[0].get('ReferencedSOPInstanceUID', '')}" if refs else kind
    return f"({kind.lower()})"


def _walk(items: Iterable[Dataset], depth: int) -> Iterator[tuple[int, str, str, str]]:
    """(depth, relationship, concept name, value) of each content item in document order."""
    for item in items:
        relationship = str(item.get("RelationshipType", ""))
        yield depth, relationship, _meaning(item), _value(item)
        if "ContentSequence" in item:
            yield from _walk(item.ContentSequence, depth + 1)


def _header(ds: Dataset, anonymize: bool) -> list[tuple[str, str]]:
    return [
        (label, str(ds.get(keyword, "")))
        for label, keyword in _HEADER_KEYWORDS
        if ds.get(keyword) and not (anonymize and keyword in _IDENTIFYING)
    ]


def sr_text(ds: Dataset, *, anonymize: bool = False) -> str:
    """An SR document as plain text (``text/plain``), one content item per line."""
    lines = [_meaning(ds) or "Structured Report"]
    lines += [f"{label}: {value}" for label, value in _header(ds, anonymize)]
    lines.append("")
    for depth, _relationship, name, value in _walk(ds.ContentSequence, 0):
        text = f"{name}: {value}" if name and value else name or value
        continuation = "\n" + SR_INDENT * (depth + 1)
        lines.append(SR_INDENT * depth + text.replace("\r\n", "\n").replace("\n", continuation))
    return "\n".join(lines) + "\n"


def sr_html(ds: Dataset, *, anonymize: bool = False, charset: str = "utf-8") -> str:
    """An SR document as an HTML 5 page (``text/html``): nested lists, every value escaped."""
    title = html.escape(_meaning(ds) or "Structured Report")
    out = [
        "<!DOCTYPE html>",
        f'<html><head><meta charset="{html.escape(charset)}"><title>{title}</title></head>',
        f"<body><h1>{title}</h1>",
    ]
    header = _header(ds, anonymize)
    if header:
        out.append("<dl>")
        out += [f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in header]
        out.append("</dl>")
    previous = -1  # depth of the open <li>; children open a <ul> inside it (valid nesting)
    for depth, _relationship, name, value in _walk(ds.ContentSequence, 0):
        if depth > previous:
            out.append("<ul>")  # the walk goes down one level at a time
        else:
            out.append("</li>" + "</ul></li>" * (previous - depth))
        label = f"<b>{html.escape(name)}</b>: " if name and value else html.escape(name)
        text = html.escape(value).replace("\r\n", "\n").replace("\n", "<br>")
        out.append(f"<li>{label}{text}")
        previous = depth
    if previous >= 0:
        out.append("</li>" + "</ul></li>" * previous + "</ul>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


__all__ = [
    "is_encapsulated_pdf",
    "is_structured_report",
    "pdf_bytes",
    "sr_html",
    "sr_text",
]
