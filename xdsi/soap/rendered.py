"""The Retrieve Rendered Imaging Document Set operation of the endpoint (PS3.18 2017b §6.4.2).

Read leniently with lxml, not spyne: the published schemas disagree on element order, on the
Region encoding and on names (standards.md §3.9 #1, #5, #6, #8), so the request is read by
namespace-qualified local name in any order:

* the request element and its ``wado:`` children in ``urn:dicom:wado:ws:2011`` or the legacy
  ``urn:dicom:ws:wado:2011`` (unqualified children too); ``ihe:`` children in
  ``urn:ihe:iti:xds-b:2007``;
* parameter names compared case-insensitively (``Xmin`` of the E.3 example, ``windowcenter``);
* ``Region`` as XMin/YMin/XMax/YMax children or as the string ``"x1,y1,x2,y2"`` (E.1, dcm4che);
* ``ContentTypeList``/``CharsetList`` containers, or ``ContentType``/``Charset`` repeated directly
  (E.1);
* a ``wado:`` child this operation does not define becomes ``urn:dicom:wado:0013`` for its
  document; children in other namespaces are ignored (``xs:any namespace="##other"``).

The response is written in the request element's namespace, with the element order of the
served schema (dcm4che's: WindowWidth before WindowCenter, FrameNumber after Anonymize), each
document an ``xop:Include`` of a part streamed after the envelope.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Final

from lxml import etree

from xdsi import ns
from xdsi.soap import faults
from xdsi.soap.lenient import attribute
from xdsi.soap.mtom import Attachment, cid_url, content_id
from xdsi.soap.operation import Operation, Reply
from xdsi.soap.registry import registry_response
from xdsi.transactions.rendered_model import (
    RenderedDocumentRequest,
    RenderedOutcome,
    RetrieveRenderedRequest,
    ValuesUsed,
)
from xdsi.xmlnames import split_tag

RenderTransaction = Callable[[RetrieveRenderedRequest], RenderedOutcome]
"""The transaction bound to a store (what :func:`rendered_operation` runs)."""

REQUEST: Final = "RetrieveRenderedImagingDocumentSetRequest"
RESPONSE: Final = "RetrieveRenderedImagingDocumentSetResponse"
_DOCUMENT_REQUESTS: Final = frozenset({"rendereddocumentrequest", "documentrequest"})
_IHE_CHILDREN: Final = {
    "homecommunityid": "home_community_id",
    "repositoryuniqueid": "repository_unique_id",
    "documentuniqueid": "document_unique_id",
}
_TEXT_PARAMETERS: Final = {
    "annotation": "annotation",
    "rows": "rows",
    "columns": "columns",
    "windowcenter": "window_center",
    "windowwidth": "window_width",
    "imagequality": "image_quality",
    "presentationuid": "presentation_uid",
    "presentationseriesuid": "presentation_series_uid",
    "anonymize": "anonymize",
    "framenumber": "frame_number",
}
"""Local name (lower case) → RenderedDocumentRequest field, for the single-text parameters."""
CORNERS: Final = ("XMin", "YMin", "XMax", "YMax")
_LISTS: Final = {
    "contenttypelist": "contenttype",
    "charsetlist": "charset",
}


# --- request -------------------------------------------------------------------------------------


def _local(element: etree._Element) -> str:
    return split_tag(str(element.tag))[1].lower()


def _namespace(element: etree._Element) -> str:
    return split_tag(str(element.tag))[0]


def _children(element: etree._Element) -> Iterator[etree._Element]:
    return (c for c in element if isinstance(c.tag, str))


def _is_wado(element: etree._Element) -> bool:
    return _namespace(element) in (*ns.WADO_WS_NAMESPACES, "")


def _text(element: etree._Element) -> str:
    return "".join(element.itertext()).strip()


def request_from_wire(elements: Sequence[etree._Element]) -> RetrieveRenderedRequest:
    """Every RenderedDocumentRequest of the request elements, with its study and series."""
    documents: list[RenderedDocumentRequest] = []
    for request in elements:
        for study in _children(request):
            if _local(study) != "studyrequest" or not _is_wado(study):
                continue
            study_uid = attribute(study, "studyInstanceUID") or ""
            for series in _children(study):
                if _local(series) != "seriesrequest" or not _is_wado(series):
                    continue
                series_uid = attribute(series, "seriesInstanceUID") or ""
                documents.extend(
                    document_from_wire(doc, study_uid, series_uid)
                    for doc in _children(series)
                    if _local(doc) in _DOCUMENT_REQUESTS
                )
    if not documents:
        raise faults.sender(
            f"the {REQUEST} has no StudyRequest/SeriesRequest/RenderedDocumentRequest"
        )
    return RetrieveRenderedRequest(tuple(documents))


def document_from_wire(
    element: etree._Element, study_uid: str, series_uid: str
) -> RenderedDocumentRequest:
    """One RenderedDocumentRequest (PS3.18 2017b §6.4.2.1), children in any order."""
    values: dict[str, str] = {}
    lists: dict[str, list[str]] = {"contenttype": [], "charset": []}
    region: str | dict[str, str] | None = None
    unsupported: list[str] = []
    for child in _children(element):
        namespace, local = split_tag(str(child.tag))
        name = local.lower()
        if name in _IHE_CHILDREN and namespace in (ns.XDS_B, *ns.WADO_WS_NAMESPACES, ""):
            values.setdefault(_IHE_CHILDREN[name], _text(child))
        elif not _is_wado(child):
            continue  # another namespace: an extension we do not know (xs:any ##other)
        elif name in _TEXT_PARAMETERS:
            values.setdefault(_TEXT_PARAMETERS[name], _text(child))
        elif name in _LISTS:
            item = _LISTS[name]
            lists[item] += [_text(c) for c in _children(child) if _local(c) == item]
        elif name in lists:
            lists[name].append(_text(child))
        elif name == "region" and region is None:
            parts = {_local(c): _text(c) for c in _children(child)}
            region = parts if parts else _text(child)
        else:
            unsupported.append(local)
    return RenderedDocumentRequest(
        study_instance_uid=study_uid,
        series_instance_uid=series_uid,
        document_unique_id=values.pop("document_unique_id", ""),
        repository_unique_id=values.pop("repository_unique_id", "") or None,
        home_community_id=values.pop("home_community_id", "") or None,
        content_types=tuple(t for t in lists["contenttype"] if t),
        charsets=tuple(c for c in lists["charset"] if c),
        region=region,
        unsupported=tuple(unsupported),
        **values,  # keys are exactly the optional text fields
    )


# --- response ------------------------------------------------------------------------------------


def decimal_string(value: float) -> str:
    """A DS value (PS3.5 Table 6.2-1: at most 16 characters) without a needless ``.0``."""
    text = f"{value:.10g}"
    return text if len(text) <= 16 else f"{value:.6e}"


def response_to_wire(
    outcome: RenderedOutcome, namespace: str = ns.WADO_WS
) -> tuple[etree._Element, list[Attachment]]:
    """``wado:RetrieveRenderedImagingDocumentSetResponse`` (§6.4.2.2) and its attachments."""

    def wado(local: str) -> str:
        return f"{{{namespace}}}{local}"

    def xds(local: str) -> str:
        return f"{{{ns.XDS_B}}}{local}"

    nsmap = {"wado": namespace, "xdsb": ns.XDS_B, "rs": ns.RS, "xop": ns.XOP}
    response = etree.Element(wado(RESPONSE), nsmap=nsmap)
    tag = etree.QName(wado("RegistryResponse"))
    registry_response(response, outcome.status, outcome.errors, tag=tag)
    attachments: list[Attachment] = []
    for index, document in enumerate(outcome.documents, start=1):
        echo, used = document.request, document.used
        item = etree.SubElement(response, wado("RenderedDocumentResponse"))
        if echo.home_community_id:
            etree.SubElement(item, xds("HomeCommunityId")).text = echo.home_community_id
        etree.SubElement(item, xds("RepositoryUniqueId")).text = echo.repository_unique_id
        etree.SubElement(item, wado("SourceDocumentUniqueId")).text = echo.document_unique_id
        for local, text in _values(used):
            if local == "Region" and used.region is not None:
                region = etree.SubElement(item, wado("Region"))
                for corner, value in zip(CORNERS, used.region, strict=True):
                    etree.SubElement(region, wado(corner)).text = decimal_string(value)
            elif text is not None:
                etree.SubElement(item, wado(local)).text = text
        etree.SubElement(item, xds("mimeType")).text = document.payload.media_type
        cid = content_id(echo.document_unique_id, index)
        include = etree.SubElement(etree.SubElement(item, xds("Document")), f"{{{ns.XOP}}}Include")
        include.set("href", cid_url(cid))
        payload = document.payload
        attachments.append(Attachment(cid, payload.media_type, payload.chunks, payload.size))
    return response, attachments


def _values(used: ValuesUsed) -> list[tuple[str, str | None]]:
    """The value elements in the served schema's order; None = not used, not written."""

    def optional(value: float | int | None, decimal: bool = False) -> str | None:
        if value is None:
            return None
        return decimal_string(float(value)) if decimal else str(value)

    return [
        ("Annotation", ",".join(used.annotation) or None),
        ("Rows", optional(used.rows)),
        ("Columns", optional(used.columns)),
        ("Region", None),
        ("WindowWidth", optional(used.window_width, decimal=True)),
        ("WindowCenter", optional(used.window_center, decimal=True)),
        ("ImageQuality", optional(used.image_quality)),
        ("PresentationUID", used.presentation_uid),
        ("PresentationSeriesUID", used.presentation_series_uid),
        ("Anonymize", "yes" if used.anonymized else None),
        ("FrameNumber", used.frame_number),
    ]


# --- operation ------------------------------------------------------------------------------------


def rendered_operation(transaction: RenderTransaction) -> Operation:
    """The rendered :class:`Operation`: both action spellings, both request namespaces."""

    def answer(elements: Sequence[etree._Element]) -> Reply:
        request = request_from_wire(elements)
        outcome = transaction(request)
        element, attachments = response_to_wire(outcome, _namespace(elements[0]) or ns.WADO_WS)
        return Reply(element, attachments, produced=True)  # rendered and spooled

    return Operation(
        name="ImagingDocumentSource_RetrieveRenderedImagingDocumentSet",
        request_elements=frozenset(f"{{{n}}}{REQUEST}" for n in ns.WADO_WS_NAMESPACES),
        actions={
            ns.ACTION_RENDERED: ns.ACTION_RENDERED + ns.RESPONSE_SUFFIX,
            # PS3.18 prose and dcm4chee's published sample (standards.md §3.9 #1)
            ns.ACTION_RENDERED_LEGACY: ns.ACTION_RENDERED_LEGACY + ns.RESPONSE_SUFFIX,
        },
        answer=answer,
    )


__all__ = [
    "RenderTransaction",
    "decimal_string",
    "document_from_wire",
    "rendered_operation",
    "request_from_wire",
    "response_to_wire",
]
