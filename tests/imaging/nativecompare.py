"""Semantic comparison of two PS3.19 Native DICOM Model documents (ours vs ``dcm2xml -nat``).

Byte comparison is useless (libraries.md §5: dcm2xml writes random BulkData UUIDs, one element per
line, and prints FL with its own precision), so both trees are reduced to what the model means:
attributes keyed by (tag, privateCreator) with VR, keyword and content, compared recursively.

Tolerated, each for a stated reason:

* a keyword present in ours and missing in dcmtk's (its 3.6.7 dictionary lacks some retired and
  newer tags; PS3.19: "Required unless the DICOM Data Element is unknown to the host");
* ``BulkData@uuid``/``@uri`` values (only presence is compared) and whitespace-only text;
* InlineBinary of OW/OF/OL/OD/OV in big-endian byte order: dcm2xml 3.6.7 writes words big endian
  even for little-endian files, we write the little-endian Value Field;
* FL compared as float32 within dcmtk's printing precision, FD numerically;
* with ``ignore_charset`` (dcm2xml ``+U8``) the SpecificCharacterSet attribute, which dcm2xml
  rewrites to ``ISO_IR 192`` or adds;
* ``UN`` in dcm2xml where ours has the VR of the PS3.6 dictionary: pydicom reads UN elements of
  known tags with their dictionary VR (PS3.19 ``vr``: "as ... specified for this Data Element in
  PS3.6"), dcmtk keeps UN and writes bulk data; the element's presence is still compared;
* a Private Creator encoded as UN, which dcmtk does not recognise as a creator;
* a private element without Private Creator: dcm2xml zeroes its block byte anyway, we keep the
  tag (see the writer's docstring), so such tags are matched block-insensitively.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field

import numpy as np
from lxml import etree

from xdsi import ns

_NS = "{" + ns.NATIVE_DICOM + "}"
_CHARSET_TAG = "00080005"
_FL_RELATIVE = 1e-6
"""dcmtk prints FL with ~9 significant digits, not always the nearest float32 (libraries.md §5)."""


@dataclass
class Attribute:
    tag: str
    vr: str
    keyword: str | None
    creator: str | None
    kind: str  # "empty", "values", "names", "items", "bulk", "inline"
    values: list[str] = field(default_factory=list)
    names: list[dict[str, dict[str, str]]] = field(default_factory=list)
    items: list[list[Attribute]] = field(default_factory=list)
    inline: bytes = b""


def parse(root: etree._Element) -> list[Attribute]:
    """Reduce a ``NativeDicomModel`` (or ``Item``) element to its attributes, iteratively."""
    result: list[Attribute] = []
    work: list[tuple[etree._Element, list[Attribute]]] = [(root, result)]
    while work:
        parent, sink = work.pop()
        for el in parent.iterchildren(_NS + "DicomAttribute"):
            attr = Attribute(
                tag=el.get("tag", ""),
                vr=el.get("vr", ""),
                keyword=el.get("keyword"),
                creator=el.get("privateCreator"),
                kind="empty",
            )
            children = [c for c in el if isinstance(c.tag, str)]
            if children:
                first = etree.QName(children[0]).localname
                if first == "Value":
                    attr.kind = "values"
                    attr.values = [c.text or "" for c in children]
                    numbers = [int(c.get("number", "0")) for c in children]
                    assert numbers == list(range(1, len(children) + 1)), (attr.tag, numbers)
                elif first == "PersonName":
                    attr.kind = "names"
                    attr.names = [_person_name(c) for c in children]
                elif first == "Item":
                    attr.kind = "items"
                    for item in children:
                        sub: list[Attribute] = []
                        attr.items.append(sub)
                        work.append((item, sub))
                elif first == "BulkData":
                    attr.kind = "bulk"
                elif first == "InlineBinary":
                    attr.kind = "inline"
                    attr.inline = base64.b64decode("".join((children[0].text or "").split()))
                else:
                    raise AssertionError(f"unexpected child {first} in {attr.tag}")
            sink.append(attr)
    return result


def _person_name(el: etree._Element) -> dict[str, dict[str, str]]:
    groups: dict[str, dict[str, str]] = {}
    for group in el:
        if not isinstance(group.tag, str):
            continue
        groups[etree.QName(group).localname] = {
            etree.QName(c).localname: (c.text or "") for c in group if isinstance(c.tag, str)
        }
    return {g: c for g, c in groups.items() if c}


def _key(attr: Attribute) -> tuple[str, str | None]:
    tag = attr.tag
    if int(tag[:4], 16) & 1 and attr.creator is None and int(tag[4:], 16) >= 0x1000:
        tag = tag[:4] + "00" + tag[6:]  # see "private element without Private Creator" above
    return tag, attr.creator


def _same_binary(ours: bytes, theirs: bytes, vr: str) -> bool:
    if ours == theirs:
        return True
    size = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}.get(vr)
    if size is None or len(ours) != len(theirs) or len(ours) % size:
        return False
    swapped = np.frombuffer(theirs, dtype=f">u{size}").astype(f"<u{size}").tobytes()
    return ours == swapped


def _same_float(ours: str, theirs: str, vr: str) -> bool:
    try:
        a, b = float(ours), float(theirs)
    except ValueError:
        return ours.strip() == theirs.strip()
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if vr == "FD":
        return a == b or math.isclose(a, b, rel_tol=1e-15, abs_tol=1e-300)
    return bool(np.float32(a) == np.float32(b)) or math.isclose(
        a, b, rel_tol=_FL_RELATIVE, abs_tol=1e-38
    )


def _same_value(ours: str, theirs: str, vr: str) -> bool:
    if vr in ("FL", "FD"):
        return ours == theirs or _same_float(ours, theirs, vr)
    if vr in ("LT", "ST", "UT", "UC", "UR"):
        return ours.rstrip() == theirs.rstrip()
    return ours.strip() == theirs.strip()


def compare(
    ours: list[Attribute], theirs: list[Attribute], *, ignore_charset: bool = False, path: str = ""
) -> list[str]:
    """Differences between two attribute lists as readable lines (empty list: equal)."""
    diffs: list[str] = []
    work = [(ours, theirs, path)]
    while work:
        a_list, b_list, where = work.pop()
        if ignore_charset:
            a_list = [a for a in a_list if a.tag != _CHARSET_TAG]
            b_list = [b for b in b_list if b.tag != _CHARSET_TAG]
        a_map = {_key(a): a for a in a_list}
        b_map = {_key(b): b for b in b_list}
        _match_un_creators(a_map, b_map, b_list)
        for key in sorted(set(a_map) | set(b_map), key=lambda k: (k[0], k[1] or "")):
            label = f"{where}/{key[0]}" + (f"[{key[1]}]" if key[1] else "")
            a, b = a_map.get(key), b_map.get(key)
            if a is None or b is None:
                diffs.append(f"{label}: only in {'dcm2xml' if a is None else 'ours'}")
                continue
            if a.vr != b.vr:
                if b.vr == "UN":
                    continue  # see "UN in the file" above: content differs in kind, by design
                diffs.append(f"{label}: vr {a.vr} != {b.vr}")
                continue
            if b.keyword is not None and a.keyword != b.keyword:
                diffs.append(f"{label}: keyword {a.keyword} != {b.keyword}")
            if {a.kind, b.kind} <= {"bulk", "inline"}:
                if a.kind == b.kind == "inline" and not _same_binary(a.inline, b.inline, a.vr):
                    diffs.append(f"{label}: inline binary differs")
                elif a.kind != b.kind:
                    diffs.append(f"{label}: {a.kind} != {b.kind}")
                continue
            if a.kind != b.kind:
                diffs.append(f"{label}: {a.kind} {a.values[:3]} != {b.kind} {b.values[:3]}")
                continue
            if a.kind == "values":
                if len(a.values) != len(b.values) or not all(
                    _same_value(x, y, a.vr) for x, y in zip(a.values, b.values, strict=True)
                ):
                    diffs.append(f"{label}: values {a.values[:6]} != {b.values[:6]}")
            elif a.kind == "names":
                if [_strip_names(n) for n in a.names] != [_strip_names(n) for n in b.names]:
                    diffs.append(f"{label}: names {a.names} != {b.names}")
            elif a.kind == "items":
                if len(a.items) != len(b.items):
                    diffs.append(f"{label}: {len(a.items)} items != {len(b.items)}")
                    continue
                for number, (x, y) in enumerate(zip(a.items, b.items, strict=True), start=1):
                    work.append((x, y, f"{label}/{number}"))
    return diffs


def _match_un_creators(
    a_map: dict[tuple[str, str | None], Attribute],
    b_map: dict[tuple[str, str | None], Attribute],
    b_list: list[Attribute],
) -> None:
    """Pair our creator-tagged elements with dcm2xml's creator-less ones where the group's
    Private Creator is encoded as UN: dcmtk does not recognise it, pydicom (and we) do."""
    un_groups = {b.tag[:4] for b in b_list if b.vr == "UN" and 0x10 <= int(b.tag[4:], 16) <= 0xFF}
    for tag, creator in [k for k in a_map if k[1] is not None and k not in b_map]:
        if tag[:4] in un_groups and (tag, None) in b_map and (tag, None) not in a_map:
            b_map[tag, creator] = b_map.pop((tag, None))


def _strip_names(name: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    return {g: {k: v.strip() for k, v in c.items() if v.strip()} for g, c in name.items()}
