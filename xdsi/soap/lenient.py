"""Reading request elements leniently, as consumers write them (conformance.md §1 "Lenient
body"): shared by the RAD-69, metadata and rendered request readers."""

from __future__ import annotations

from lxml import etree


def attribute(element: etree._Element, name: str) -> str | None:
    """The stripped value of an attribute by local name, case-insensitively and in any namespace
    (``studyInstanceUID``, ``StudyInstanceUID``, ``r:studyInstanceUID``); ``None`` if absent."""
    value = element.get(name)  # the spelling of the schemas: the common case, one lookup
    if value is not None:
        return str(value).strip()
    lowered = name.lower()
    for key, other in element.attrib.items():
        if etree.QName(key).localname.lower() == lowered:
            return str(other).strip()
    return None


__all__ = ["attribute"]
