"""The rendered operation on the wire (PS3.18 2017b §6.4.2): lenient parsing, the reference
requests, both action spellings, every parameter and the bad-input list through the in-process
WSGI application over a real SQLite store.  Every response read by :func:`answer` is validated
against the schemas the endpoint serves."""

from __future__ import annotations

import io
import re
from pathlib import Path
from urllib.parse import unquote

import pytest
from lxml import etree
from PIL import Image

from tests.soap.schemas import validate_body_element
from tests.soap.support import call, envelope, fault_parts, mtom_wrap, parse_multipart
from tests.transactions import rendered_data
from tests.transactions.rendered_data import (
    CT,
    MULTIFRAME,
    REPO_ID,
    RGB,
    SR,
    Extras,
    uids,
)
from xdsi import ns
from xdsi.config import Settings
from xdsi.soap.app import make_app
from xdsi.soap.rendered import document_from_wire, request_from_wire
from xdsi.store.base import Store

REFERENCE = Path("/work/shared/reference/examples")
W = ns.WADO_WS
NSMAP = {"env": ns.SOAP12_ENV, "wado": W, "xdsb": ns.XDS_B, "rs": ns.RS, "xop": ns.XOP}
RESPONSE_ORDER = [
    "HomeCommunityId", "RepositoryUniqueId", "SourceDocumentUniqueId", "Annotation", "Rows",
    "Columns", "Region", "WindowWidth", "WindowCenter", "ImageQuality", "PresentationUID",
    "PresentationSeriesUID", "Anonymize", "FrameNumber", "mimeType", "Document",
]  # fmt: skip
"""Child order of RenderedDocumentResponse in the served schema (dcm4che's order)."""

# The shared fixtures: one real store per module with the samples, GSPSs and a PDF.
extras = rendered_data.extras
settings = rendered_data.settings
store = rendered_data.store


@pytest.fixture(scope="module")
def app(settings: Settings, store: Store):  # type: ignore[no-untyped-def]
    return make_app(settings, store)


# --- building requests ----------------------------------------------------------------------------


def document(path: Path, *children: str, types: tuple[str, ...] = ("image/jpeg",)) -> str:
    """One RenderedDocumentRequest (namespaces declared by :func:`request`)."""
    _, _, sop = uids(path)
    listed = "".join(f"<wado:ContentType>{t}</wado:ContentType>" for t in types)
    return (
        f"<wado:RenderedDocumentRequest><xdsb:RepositoryUniqueId>{REPO_ID}</xdsb:RepositoryUniqueId>"
        f"<xdsb:DocumentUniqueId>{sop}</xdsb:DocumentUniqueId>{''.join(children)}"
        f"<wado:ContentTypeList>{listed}</wado:ContentTypeList></wado:RenderedDocumentRequest>"
    )


def request(*items: tuple[Path, str], namespace: str = W) -> str:
    """The request element: each (file, RenderedDocumentRequest) under its study/series."""
    out = [
        f'<wado:RetrieveRenderedImagingDocumentSetRequest xmlns:wado="{namespace}" '
        f'xmlns:xdsb="{ns.XDS_B}">'
    ]
    for path, item in items:
        study, series, _ = uids(path)
        out.append(
            f'<wado:StudyRequest studyInstanceUID="{study}"><wado:SeriesRequest '
            f'seriesInstanceUID="{series}">{item}</wado:SeriesRequest></wado:StudyRequest>'
        )
    out.append("</wado:RetrieveRenderedImagingDocumentSetRequest>")
    return "".join(out)


def post(app, body: str, action: str | None = ns.ACTION_RENDERED):  # type: ignore[no-untyped-def]
    return call(app, envelope(body, action=action))


def answer(reply) -> tuple[etree._Element, list[etree._Element], dict[str, bytes]]:  # type: ignore[no-untyped-def]
    """(RegistryResponse, RenderedDocumentResponses, Content-ID → bytes) of a 200 reply."""
    assert reply.status == 200, reply.body[:500]
    parts: dict[str, bytes] = {}
    if reply.content_type.startswith("multipart/related"):
        parts = parse_multipart(reply.content_type, reply.body).parts
    body = reply.xml().find("env:Body", NSMAP)
    (response,) = list(body)
    validate_body_element(response)  # against the schemas the endpoint serves (?wsdl)
    registry = response.find("wado:RegistryResponse", NSMAP)
    assert registry is not None
    return registry, response.findall("wado:RenderedDocumentResponse", NSMAP), parts


def part_of(item: etree._Element, parts: dict[str, bytes]) -> bytes:
    href = item.find("xdsb:Document/xop:Include", NSMAP).get("href")
    return parts[unquote(href[4:])]


def values(item: etree._Element) -> dict[str, str]:
    out = {}
    for child in item:
        name = etree.QName(child).localname
        if name == "Region":
            out[name] = ",".join(c.text for c in child)
        elif name != "Document":
            out[name] = child.text
    return out


def codes(registry: etree._Element) -> list[str]:
    return [e.get("errorCode") for e in registry.iterfind(".//rs:RegistryError", NSMAP)]


# --- lenient parsing ------------------------------------------------------------------------------


def parse(xml: str) -> etree._Element:
    return etree.fromstring(xml)


def test_children_in_any_order_and_case_both_region_forms() -> None:
    element = parse(
        f'<r:RenderedDocumentRequest xmlns:r="{ns.WADO_WS_LEGACY}" xmlns:i="{ns.XDS_B}">'
        "<r:windowcenter>40</r:windowcenter><r:ContentType>image/png</r:ContentType>"
        "<r:Region><r:Xmin>0.1</r:Xmin><r:Ymin>0.2</r:Ymin><r:Xmax>0.8</r:Xmax><r:Ymax>0.9</r:Ymax>"
        "</r:Region><i:DocumentUniqueId> 1.2.3 </i:DocumentUniqueId>"
        "<r:WindowWidth>400</r:WindowWidth>"
        "<r:ContentType>image/jpeg</r:ContentType><r:CharsetList><r:Charset>utf-8</r:Charset>"
        "</r:CharsetList><r:Anonymize>yes</r:Anonymize></r:RenderedDocumentRequest>"
    )
    doc = document_from_wire(element, "1.1", "1.1.1")
    assert doc.document_unique_id == "1.2.3"
    assert (doc.window_center, doc.window_width) == ("40", "400")
    assert doc.region == {"xmin": "0.1", "ymin": "0.2", "xmax": "0.8", "ymax": "0.9"}
    assert doc.content_types == ("image/png", "image/jpeg")
    assert doc.charsets == ("utf-8",)
    assert doc.anonymize == "yes"
    text = parse(
        f'<RenderedDocumentRequest xmlns="{W}"><Region>0,0,0.5,0.5</Region>'
        "</RenderedDocumentRequest>"
    )
    assert document_from_wire(text, "1", "2").region == "0,0,0.5,0.5"


def test_unknown_wado_children_are_unsupported_other_namespaces_ignored() -> None:
    element = parse(
        f'<w:RenderedDocumentRequest xmlns:w="{W}" xmlns:x="urn:x-forcare:ws:wado">'
        "<w:TransferSyntaxUIDList/><x:Vendor>1</x:Vendor><w:Rows>5</w:Rows>"
        "</w:RenderedDocumentRequest>"
    )
    doc = document_from_wire(element, "1", "2")
    assert doc.unsupported == ("TransferSyntaxUIDList",)
    assert doc.rows == "5"


def test_request_without_documents_is_a_sender_fault(app) -> None:  # type: ignore[no-untyped-def]
    reply = post(app, f'<wado:RetrieveRenderedImagingDocumentSetRequest xmlns:wado="{W}"/>')
    assert reply.status == 400
    code, _, reason = fault_parts(reply.xml())
    assert code == f"{{{ns.SOAP12_ENV}}}Sender" and "RenderedDocumentRequest" in reason


def test_attributes_are_read_case_insensitively() -> None:
    element = parse(
        f'<w:R xmlns:w="{W}"><w:StudyRequest StudyInstanceUID="1.2"><w:SeriesRequest '
        'seriesinstanceuid="1.2.3"><w:RenderedDocumentRequest/></w:SeriesRequest></w:StudyRequest></w:R>'
    )
    (doc,) = request_from_wire([element]).documents
    assert (doc.study_instance_uid, doc.series_instance_uid) == ("1.2", "1.2.3")


# --- reference requests ---------------------------------------------------------------------------


def _dcm4chee_sample() -> tuple[str, bytes]:
    sample = REFERENCE / "dcm4chee-arc-cs" / "retrieve-rendered-imaging-doc-set-request.txt"
    text = sample.read_text()
    content_type = re.search(r"-H 'Content-Type: ([^']*)'", text).group(1)  # type: ignore[union-attr]
    body = re.search(r"--data-binary '(.*)'", text, re.S).group(1)  # type: ignore[union-attr]
    return content_type, body.replace("\r\n", "\n").replace("\n", "\r\n").encode()


def test_dcm4chee_sample_request(app) -> None:  # type: ignore[no-untyped-def]
    content_type, body = _dcm4chee_sample()
    registry, _, _ = answer(call(app, body, content_type))
    assert codes(registry) == [ns.XDS_DOCUMENT_UNIQUE_ID_ERROR]  # its instance is not ours
    study, series, sop = uids(CT)
    text = body.decode()
    text = re.sub(r'studyInstanceUID="[^"]+"', f'studyInstanceUID="{study}"', text)
    text = re.sub(r'seriesInstanceUID="[^"]+"', f'seriesInstanceUID="{series}"', text)
    text = re.sub(r"<xdsb:DocumentUniqueId>[^<]+<", f"<xdsb:DocumentUniqueId>{sop}<", text)
    reply = call(app, text.encode(), content_type)
    registry, (item,), parts = answer(reply)
    assert registry.get("status") == ns.STATUS_SUCCESS
    assert values(item) == {
        "RepositoryUniqueId": REPO_ID, "SourceDocumentUniqueId": sop, "Rows": "64",
        "Columns": "64", "WindowWidth": "2000", "WindowCenter": "1000", "ImageQuality": "50",
        "FrameNumber": "1", "mimeType": "image/jpeg",
    }  # fmt: skip
    order = [etree.QName(c).localname for c in item]
    assert order == [n for n in RESPONSE_ORDER if n in order]
    assert Image.open(io.BytesIO(part_of(item, parts))).size == (64, 64)
    action = reply.xml().findtext(f"env:Header/{{{ns.WSA}}}Action", namespaces=NSMAP)
    assert action == ns.ACTION_RENDERED + "Response"


def test_ihe_wadows_sample_request(app) -> None:  # type: ignore[no-untyped-def]
    sample = (REFERENCE / "ihe-wadows-2017" / "sampleRenderedImagingRequest.xml").read_text()
    element = sample.split("?>", 1)[1]
    registry, items, _ = answer(post(app, element))
    assert items == []
    # "study"/"series" are no UIDs and the repository is not ours: a RegistryError per document
    assert codes(registry) == [ns.XDS_UNKNOWN_REPOSITORY_ID] * 2
    study, series, sop = uids(MULTIFRAME)
    element = (
        element.replace('"study"', f'"{study}"').replace('"series"', f'"{series}"')
        .replace("1.3.6.1.4.1000", REPO_ID).replace("1.3.6.1.4.2300", sop)
        .replace("1.3.6.1.4.2301", sop)
    )  # fmt: skip
    registry, items, _ = answer(post(app, element, ns.ACTION_RENDERED_LEGACY))
    assert registry.get("status") == ns.STATUS_PARTIAL_SUCCESS  # the 2nd has no FrameNumber
    assert codes(registry) == [ns.WADO_MULTIFRAME_SINGLE_IMAGE]
    (item,) = items
    assert values(item)["FrameNumber"] == "1"
    assert values(item)["HomeCommunityId"] == "urn:oid:1.2.3"


def test_ps318_e2_example_is_not_xml_and_gets_a_clear_fault(app) -> None:  # type: ignore[no-untyped-def]
    text = (REFERENCE / "ps3.18-2017b" / "E.2_WADO-WS_Request_Example.txt").read_text()
    head, _, rest = text.partition("\n\n")
    content_type = " ".join(
        line.strip() for line in head.splitlines() if not line.startswith(("POST", "User", "Host"))
    ).removeprefix("Content-Type: ")
    reply = call(app, rest.replace("\n", "\r\n").encode(), content_type)
    assert reply.status == 400
    code, _, reason = fault_parts(reply.xml())
    assert code == f"{{{ns.SOAP12_ENV}}}Sender"
    assert reason


# --- actions and namespaces -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "reply_action"),
    [(ns.ACTION_RENDERED, ns.ACTION_RENDERED + "Response"),
     (ns.ACTION_RENDERED_LEGACY, ns.ACTION_RENDERED_LEGACY + "Response"),
     (None, ns.ACTION_RENDERED + "Response")],
)  # fmt: skip
def test_both_action_spellings(app, action: str | None, reply_action: str) -> None:  # type: ignore[no-untyped-def]
    reply = post(app, request((CT, document(CT))), action)
    registry, _, _ = answer(reply)
    assert registry.get("status") == ns.STATUS_SUCCESS
    header_action = reply.xml().findtext(f"env:Header/{{{ns.WSA}}}Action", namespaces=NSMAP)
    assert header_action == reply_action


def test_legacy_namespace_request_is_answered_in_it(app) -> None:  # type: ignore[no-untyped-def]
    reply = post(app, request((CT, document(CT)), namespace=ns.WADO_WS_LEGACY))
    body = parse_multipart(reply.content_type, reply.body).envelope.find("env:Body", NSMAP)
    assert body[0].tag == f"{{{ns.WADO_WS_LEGACY}}}RetrieveRenderedImagingDocumentSetResponse"


def test_mtom_request_gets_an_mtom_reply(app) -> None:  # type: ignore[no-untyped-def]
    soap = envelope(request((CT, document(CT))), action=ns.ACTION_RENDERED)
    content_type, body = mtom_wrap(soap, action_param=ns.ACTION_RENDERED)
    _, (item,), parts = answer(call(app, body, content_type))
    assert part_of(item, parts)[:2] == b"\xff\xd8"


def test_failure_without_documents_is_plain_soap(app) -> None:  # type: ignore[no-untyped-def]
    reply = post(app, request((CT, document(CT, "<wado:Rows>x</wado:Rows>"))))
    assert reply.status == 200 and reply.content_type.startswith("application/soap+xml")
    response = reply.xml().find("env:Body/wado:RetrieveRenderedImagingDocumentSetResponse", NSMAP)
    registry = response.find("wado:RegistryResponse", NSMAP)
    assert registry.get("status") == ns.STATUS_FAILURE
    assert codes(registry) == [ns.WADO_INVALID_PARAMETER]


# --- every parameter over SOAP --------------------------------------------------------------------

PARAMETERS = [
    ("rows", CT, ["<wado:Rows>32</wado:Rows>"], ("image/jpeg",),
     {"Rows": "32", "Columns": "32"}, (32, 32)),
    ("columns", CT, ["<wado:Columns>48</wado:Columns>"], ("image/jpeg",),
     {"Rows": "48", "Columns": "48"}, (48, 48)),
    ("region elements", CT, ["<wado:Region><wado:XMin>0</wado:XMin><wado:YMin>0</wado:YMin>"
     "<wado:XMax>0.5</wado:XMax><wado:YMax>0.25</wado:YMax></wado:Region>"], ("image/png",),
     {"Region": "0,0,0.5,0.25", "Columns": "64", "Rows": "32"}, (64, 32)),
    ("region string", CT, ["<wado:Region>0.5,0.5,1,1</wado:Region>"], ("image/png",),
     {"Region": "0.5,0.5,1,1"}, (64, 64)),
    ("window", CT, ["<wado:WindowCenter>40.5</wado:WindowCenter>",
     "<wado:WindowWidth>400</wado:WindowWidth>"], ("image/jpeg",),
     {"WindowCenter": "40.5", "WindowWidth": "400"}, (128, 128)),
    ("quality", CT, ["<wado:ImageQuality>75</wado:ImageQuality>"], ("image/jpeg",),
     {"ImageQuality": "75"}, (128, 128)),
    ("frame", MULTIFRAME, ["<wado:FrameNumber>2</wado:FrameNumber>"], ("image/png",),
     {"FrameNumber": "2"}, (64, 64)),
    ("annotation", CT, ["<wado:Annotation>patient,technique</wado:Annotation>"], ("image/png",),
     {"Annotation": "patient,technique"}, (128, 128)),
    ("anonymize", CT, ["<wado:Anonymize>yes</wado:Anonymize>"], ("image/jpeg",),
     {"Anonymize": "yes"}, (128, 128)),
    ("gif", CT, [], ("image/gif",), {"mimeType": "image/gif"}, (128, 128)),
    ("jp2", RGB, [], ("image/jp2",), {"mimeType": "image/jp2"}, (100, 100)),
    ("png rgb", RGB, [], ("image/png",), {"mimeType": "image/png"}, (100, 100)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "children", "types", "expected", "size"),
    [p[1:] for p in PARAMETERS],
    ids=[p[0] for p in PARAMETERS],
)
def test_every_parameter(  # type: ignore[no-untyped-def]
    app, path: Path, children: list[str], types: tuple[str, ...], expected: dict[str, str],
    size: tuple[int, int],
) -> None:
    item_xml = document(path, *children, types=types)
    registry, (item,), parts = answer(post(app, request((path, item_xml))))
    assert registry.get("status") == ns.STATUS_SUCCESS, codes(registry)
    got = values(item)
    assert {k: got.get(k) for k in expected} == expected
    order = [etree.QName(c).localname for c in item]
    assert order == [n for n in RESPONSE_ORDER if n in order]
    assert Image.open(io.BytesIO(part_of(item, parts))).size == size


def test_presentation_state_over_soap(app, extras: Extras) -> None:  # type: ignore[no-untyped-def]
    _, series, sop = uids(extras.gsps)
    children = [f"<wado:PresentationUID>{sop}</wado:PresentationUID>",
                f"<wado:PresentationSeriesUID>{series}</wado:PresentationSeriesUID>"]  # fmt: skip
    _, (item,), _ = answer(post(app, request((CT, document(CT, *children)))))
    got = values(item)
    assert (got["PresentationUID"], got["PresentationSeriesUID"]) == (sop, series)
    assert (got["WindowCenter"], got["WindowWidth"]) == ("40", "400")


def test_structured_report_as_text_with_charset(app) -> None:  # type: ignore[no-untyped-def]
    children = ["<wado:CharsetList><wado:Charset>ISO-8859-1</wado:Charset></wado:CharsetList>"]
    item_xml = document(SR, *children, types=("text/plain",))
    _, (item,), parts = answer(post(app, request((SR, item_xml))))
    assert values(item)["mimeType"] == "text/plain; charset=ISO-8859-1"
    assert "Diameter" in part_of(item, parts).decode("latin-1")


def test_multiframe_gif_animation_over_soap(app) -> None:  # type: ignore[no-untyped-def]
    item_xml = document(MULTIFRAME, types=("image/gif",))
    _, (item,), parts = answer(post(app, request((MULTIFRAME, item_xml))))
    with Image.open(io.BytesIO(part_of(item, parts))) as gif:
        assert gif.n_frames == 10
    assert "FrameNumber" not in values(item)


BAD = [
    ("Rows x", CT, ["<wado:Rows>x</wado:Rows>"], (), ns.WADO_INVALID_PARAMETER),
    ("Rows -1", CT, ["<wado:Rows>-1</wado:Rows>"], (), ns.WADO_INVALID_PARAMETER),
    ("quality 0", CT, ["<wado:ImageQuality>0</wado:ImageQuality>"], (), ns.WADO_INVALID_PARAMETER),
    ("center only", CT, ["<wado:WindowCenter>1</wado:WindowCenter>"], (),
     ns.WADO_INVALID_PARAMETER),
    ("region > 1", CT, ["<wado:Region>0,0,2,1</wado:Region>"], (), ns.WADO_INVALID_PARAMETER),
    ("region inverted", CT, ["<wado:Region><wado:XMin>0.9</wado:XMin><wado:YMin>0</wado:YMin>"
     "<wado:XMax>0.1</wado:XMax><wado:YMax>1</wado:YMax></wado:Region>"], (),
     ns.WADO_INVALID_PARAMETER),
    ("frame 0", MULTIFRAME, ["<wado:FrameNumber>0</wado:FrameNumber>"], (),
     ns.WADO_FRAME_OUT_OF_RANGE),
    ("frame 11", MULTIFRAME, ["<wado:FrameNumber>11</wado:FrameNumber>"], (),
     ns.WADO_FRAME_OUT_OF_RANGE),
    ("multi-frame jpeg", MULTIFRAME, [], (), ns.WADO_MULTIFRAME_SINGLE_IMAGE),
    ("unknown type", CT, [], ("image/bmp",), ns.WADO_FORMAT_NOT_SUPPORTED),
    ("sr as jpeg", SR, [], (), ns.WADO_FORMAT_NOT_PROVIDABLE),
    ("presentation of an image", CT, [], (), ns.WADO_SOP_CLASS_MISMATCH),
    ("unknown presentation", CT, ["<wado:PresentationUID>1.2.3.4</wado:PresentationUID>",
     "<wado:PresentationSeriesUID>1.2.3</wado:PresentationSeriesUID>"], (),
     ns.WADO_UNKNOWN_PRESENTATION),
    ("transfer syntax list", CT, ["<wado:TransferSyntaxUIDList/>"], (),
     ns.WADO_UNSUPPORTED_PARAMETER),
    ("anonymize patient", CT, ["<wado:Anonymize>yes</wado:Anonymize>",
     "<wado:Annotation>patient</wado:Annotation>"], (), ns.WADO_UNABLE_TO_ANONYMIZE),
]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "children", "types", "code"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_bad_input(app, path: Path, children: list[str], types: tuple[str, ...], code: str) -> None:  # type: ignore[no-untyped-def]
    if code == ns.WADO_SOP_CLASS_MISMATCH:
        _, series, sop = uids(RGB)
        children = [
            f"<wado:PresentationUID>{sop}</wado:PresentationUID>",
            f"<wado:PresentationSeriesUID>{series}</wado:PresentationSeriesUID>",
        ]
    item = document(path, *children, types=types or ("image/jpeg",))
    reply = post(app, request((path, item), (RGB, document(RGB))))
    registry, items, _ = answer(reply)
    assert registry.get("status") == ns.STATUS_PARTIAL_SUCCESS
    (error,) = registry.iterfind(".//rs:RegistryError", NSMAP)
    assert (error.get("errorCode"), error.get("location")) == (code, uids(path)[2])
    assert error.get("codeContext")
    assert [values(i)["SourceDocumentUniqueId"] for i in items] == [uids(RGB)[2]]
