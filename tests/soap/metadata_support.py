"""Helpers for the metadata operation tests: request elements and reading the response."""

from __future__ import annotations

import functools
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lxml import etree
from pydicom.dataset import FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from tests.soap.support import Doc
from xdsi import ns

MNS = {"wado": ns.WADO_WS, "ihe": ns.XDS_B, "rs": ns.RS, "n": ns.NATIVE_DICOM}


@dataclass(frozen=True)
class Ask:
    """One DocumentInformationRequest: the document, its XPaths and Anonymize (``None``: none)."""

    doc: Doc
    xpaths: Sequence[str] = ("/",)
    anonymize: str | None = None
    xpath_attrs: str = ""
    """Extra attributes on each XPath element (e.g. an ``xmlns:dcm`` declaration)."""


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")


def metadata_request(asks: Sequence[Ask], namespace: str = ns.WADO_WS) -> str:
    """A ``RetrieveImagingDocumentSetInformationRequest`` (PS3.18 2017b §6.4.3.1 order)."""
    studies: dict[str, dict[str, list[Ask]]] = {}
    for ask in asks:
        studies.setdefault(ask.doc.study, {}).setdefault(ask.doc.series, []).append(ask)
    out = [
        f'<wado:RetrieveImagingDocumentSetInformationRequest xmlns:wado="{namespace}"'
        f' xmlns:ihe="{ns.XDS_B}">'
    ]
    for study, series_map in studies.items():
        out.append(f'<wado:StudyRequest studyInstanceUID="{study}">')
        for series, items in series_map.items():
            out.append(f'<wado:SeriesRequest seriesInstanceUID="{series}">')
            for ask in items:
                out.append("<wado:DocumentInformationRequest>")
                if ask.doc.home is not None:
                    out.append(f"<ihe:HomeCommunityId>{ask.doc.home}</ihe:HomeCommunityId>")
                if ask.doc.repository is not None:
                    out.append(
                        f"<ihe:RepositoryUniqueId>{ask.doc.repository}</ihe:RepositoryUniqueId>"
                    )
                out.append(f"<ihe:DocumentUniqueId>{ask.doc.sop}</ihe:DocumentUniqueId>")
                if ask.anonymize is not None:
                    out.append(f"<wado:Anonymize>{ask.anonymize}</wado:Anonymize>")
                out.extend(
                    f"<wado:XPath{ask.xpath_attrs}>{_escape(x)}</wado:XPath>" for x in ask.xpaths
                )
                out.append("</wado:DocumentInformationRequest>")
            out.append("</wado:SeriesRequest>")
        out.append("</wado:StudyRequest>")
    out.append("</wado:RetrieveImagingDocumentSetInformationRequest>")
    return "".join(out)


@dataclass(frozen=True)
class Answer:
    status: str
    errors: list[dict[str, str]]
    results: dict[str, list[str]]
    """DocumentUniqueId → XPathResponse texts in order."""


def read_answer(envelope_el: etree._Element) -> Answer:
    response = envelope_el.find(
        f"{{{ns.SOAP12_ENV}}}Body/wado:RetrieveImagingDocumentSetInformationResponse", MNS
    )
    assert response is not None, etree.tostring(envelope_el)[:2000]
    registry = response.find("wado:RegistryResponse", MNS)
    assert registry is not None
    errors = [
        dict(e.attrib) for e in registry.iterfind("rs:RegistryErrorList/rs:RegistryError", MNS)
    ]
    results: dict[str, list[str]] = {}
    for item in response.iterfind("wado:DocumentInformationResponse", MNS):
        uid = item.findtext("ihe:DocumentUniqueId", namespaces=MNS)
        assert uid and uid not in results
        results[uid] = [
            r.text or "" for r in item.iterfind("wado:XPathResponseList/wado:XPathResponse", MNS)
        ]
    return Answer(registry.get("status", ""), errors, results)


# --- hand-written instances for bad-input cases ---------------------------------------------------

RAW_DATA = "1.2.840.10008.5.1.4.1.1.66"
"""Raw Data Storage: no pixel data required, so hand-written files pass the store's checks."""


def element(tag: int, vr: str, value: bytes) -> bytes:
    """One Explicit VR Little Endian element (PS3.5 §7.1.2), value written exactly as given."""
    head = struct.pack("<HH", tag >> 16, tag & 0xFFFF) + vr.encode("ascii")
    if vr in ("OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"):
        return head + b"\0\0" + struct.pack("<I", len(value)) + value
    return head + struct.pack("<H", len(value)) + value


def item(content: bytes) -> bytes:
    """A defined-length sequence item (PS3.5 §7.5.1)."""
    return struct.pack("<HHI", 0xFFFE, 0xE000, len(content)) + content


def _uid(value: str) -> bytes:
    data = value.encode("ascii")
    return data + b"\0" if len(data) % 2 else data


def part10(doc: Doc, middle: bytes, before: bytes = b"", after: bytes = b"") -> bytes:
    """A Raw Data Part 10 file of ``doc`` with hand-written elements.

    ``before`` goes between (0008,0005) and SOP Class UID (group 0008 elements below 0016 only);
    ``middle`` between SOP Instance UID (0008,0018) and Study Instance UID (0020,000D), ``after``
    after Series Instance UID (0020,000E).
    """
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(RAW_DATA)
    meta.MediaStorageSOPInstanceUID = UID(doc.sop)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    buffer = DicomBytesIO()
    buffer.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(buffer, meta, enforce_standard=True)
    body = (
        before
        + element(0x00080016, "UI", _uid(RAW_DATA))
        + element(0x00080018, "UI", _uid(doc.sop))
        + middle
        + element(0x0020000D, "UI", _uid(doc.study))
        + element(0x0020000E, "UI", _uid(doc.series))
        + after
    )
    return buffer.getvalue() + body


def new_doc() -> Doc:
    return Doc(str(generate_uid()), str(generate_uid()), str(generate_uid()))


# --- the published schema of the operation --------------------------------------------------------

WADOWS_XSD = Path("/work/shared/reference/ihe-wadows-2017/schema/DICOM/dicom.wado.ws.2011.xsd")
"""ihe-wadows-2017's WADO-WS schema (standards.md §5): the only published one with the metadata
request and response types that libxml2 compiles (Annex E.1's has the wrong target namespace)."""


@functools.cache
def wadows_schema() -> etree.XMLSchema:
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    return etree.XMLSchema(etree.parse(str(WADOWS_XSD), parser))


def assert_schema_valid(element: etree._Element) -> None:
    """Fail with libxml2's log unless ``element`` (a copy is validated) is valid."""
    schema = wadows_schema()
    copy = etree.fromstring(etree.tostring(element), etree.XMLParser(huge_tree=True))
    assert schema.validate(copy), schema.error_log
