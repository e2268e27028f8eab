"""``rs:RegistryResponse`` writing (:mod:`xdsi.soap.registry`)."""

from __future__ import annotations

from lxml import etree

from xdsi import ns
from xdsi.model import RegistryError, Severity, Status
from xdsi.soap.registry import registry_response


def test_error_texts_xml_cannot_carry_are_replaced() -> None:
    """A codeContext may quote a stored file's content (a decoder's message): characters XML 1.0
    cannot carry become U+FFFD instead of failing the whole response."""
    parent = etree.Element("parent")
    errors = [
        RegistryError(
            "urn:dicom:wado:0014", "cannot render: bad value b'\x00\x01'", location="1.2\x1f"
        ),
        RegistryError("urn:dicom:wado:0012", "fine", Severity.WARNING),
    ]
    registry_response(parent, Status.PARTIAL_SUCCESS, errors)
    again = etree.fromstring(etree.tostring(parent))
    first, second = again.iter(f"{{{ns.RS}}}RegistryError")
    assert first.get("codeContext") == "cannot render: bad value b'\ufffd\ufffd'"
    assert first.get("location") == "1.2\ufffd"
    assert second.get("codeContext") == "fine" and second.get("location") is None
