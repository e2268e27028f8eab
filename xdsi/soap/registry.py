"""``rs:RegistryResponse`` as every WADO-WS response carries it (ebRS 3.0 RS; ITI TF-3 §4.2.4;
PS3.18 2017b §6.4.1.2.1, §6.4.2.2, §6.4.3.2).

One writer for the three operations: the RAD-69 response uses the ebRS element itself, the
rendered and metadata responses a ``wado:RegistryResponse`` of the same type (dcm4che's schema,
standards.md §3.9 #4); the caller names the element.
"""

from __future__ import annotations

from collections.abc import Sequence

from lxml import etree

from xdsi import ns
from xdsi.model import RegistryError, Severity, Status
from xdsi.xmlchars import xml_chars

REGISTRY_RESPONSE = etree.QName(ns.RS, "RegistryResponse")


def registry_response(
    parent: etree._Element,
    status: Status,
    errors: Sequence[RegistryError],
    tag: etree.QName = REGISTRY_RESPONSE,
) -> etree._Element:
    """Append a RegistryResponse (``@status`` and, when there are errors, its
    ``rs:RegistryErrorList``) to ``parent`` and return it."""
    registry = etree.SubElement(parent, tag)
    registry.set("status", status.value)
    if errors:
        registry.append(registry_error_list(errors))
    return registry


def registry_error_list(errors: Sequence[RegistryError]) -> etree._Element:
    """``rs:RegistryErrorList`` with ``@highestSeverity`` and one ``rs:RegistryError`` each."""
    highest = (
        Severity.ERROR if any(e.severity is Severity.ERROR for e in errors) else Severity.WARNING
    )
    element = etree.Element(etree.QName(ns.RS, "RegistryErrorList"))
    element.set("highestSeverity", highest.value)
    for error in errors:
        entry = etree.SubElement(element, etree.QName(ns.RS, "RegistryError"))
        entry.set("errorCode", error.error_code)
        # codeContext may quote a stored file's content (a decoder's message), location the request
        entry.set("codeContext", xml_chars(error.code_context))
        entry.set("severity", error.severity.value)
        if error.location is not None:
            entry.set("location", xml_chars(error.location))
    return element


__all__ = ["REGISTRY_RESPONSE", "registry_error_list", "registry_response"]
