"""Retrieve Imaging Document Set Metadata over SOAP (PS3.18 2017b §6.4.3), in-process against a
real SQLite store: XPath cases, both action spellings and request namespaces, Anonymize, partial
success, bad input files, cache invalidation on replace, schema validity of the "/" answer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from lxml import etree

from tests.imaging.nativeschema import assert_valid
from tests.soap.conftest import Sample
from tests.soap.metadata_support import (
    MNS,
    Ask,
    assert_schema_valid,
    element,
    item,
    metadata_request,
    new_doc,
    part10,
    read_answer,
)
from tests.soap.schemas import body_element, validate_body_element
from tests.soap.support import GOLDEN, Doc, call, envelope, fault_parts
from xdsi import ns
from xdsi.config import Settings, load_settings
from xdsi.imaging.nativexml import to_native_xml
from xdsi.soap import make_app
from xdsi.store import open_store
from xdsi.store.base import Store

NATIVE = ns.NATIVE_DICOM
PATIENT_ID = '/NativeDicomModel/DicomAttribute[@keyword="PatientID"]'


def _ask(app: object, asks: list[Ask], action: str | None = ns.ACTION_METADATA, **kw: str):  # type: ignore[no-untyped-def]
    reply = call(app, envelope(metadata_request(asks, **kw), action=action))  # type: ignore[arg-type]
    assert reply.status == 200, reply.body[:2000]
    return reply, read_answer(reply.xml())


def _header(root_text: str) -> etree._Element:
    return etree.fromstring(root_text.encode("utf-8"), etree.XMLParser(huge_tree=True))


# --- XPath cases ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "namespace"),
    [
        (ns.ACTION_METADATA, ns.WADO_WS),
        (ns.ACTION_METADATA_PROSE, ns.WADO_WS),
        (ns.ACTION_METADATA, ns.WADO_WS_LEGACY),
        (None, ns.WADO_WS),  # no action: the Body element names the operation
    ],
)
def test_whole_model_of_a_study(
    app: object, ct_study: list[Sample], action: str | None, namespace: str
) -> None:
    asks = [Ask(s.doc) for s in ct_study]
    reply, answer = _ask(app, asks, action=action, namespace=namespace)
    assert answer.status == ns.STATUS_SUCCESS and not answer.errors
    expected_action = (action or ns.ACTION_METADATA) + ns.RESPONSE_SUFFIX
    assert reply.xml().findtext(f"{{{ns.SOAP12_ENV}}}Header/{{{ns.WSA}}}Action") == expected_action
    assert list(answer.results) == [s.doc.sop for s in ct_study]  # request order
    for sample in ct_study:
        (text,) = answer.results[sample.doc.sop]
        root = _header(text)
        assert_valid(root)
        # the same model the writer makes from the file (bulk data omitted)
        expected = to_native_xml(pydicom.dcmread(sample.path))
        assert etree.tostring(root) == etree.tostring(expected)


def test_single_attribute_nested_item_no_match_and_order(
    app: object, samples: dict[str, Sample]
) -> None:
    kos = next(s for s in samples.values() if s.path.name == "ct_study_kos.dcm")
    ds = pydicom.dcmread(kos.path)
    xpaths = [
        PATIENT_ID,
        f"string({PATIENT_ID}/Value[@number=1])",
        '/NativeDicomModel/DicomAttribute[@keyword="ConceptNameCodeSequence"]/Item[@number=1]'
        '/DicomAttribute[@keyword="CodeMeaning"]/Value[@number=1]/text()',
        '/NativeDicomModel/DicomAttribute[@keyword="NoSuchKeyword"]',
        "count(/NativeDicomModel/DicomAttribute)",
        f"boolean({PATIENT_ID})",
        f"{PATIENT_ID}/@tag",
    ]
    _reply, answer = _ask(app, [Ask(kos.doc, xpaths)])
    results = answer.results[kos.doc.sop]
    assert len(results) == len(xpaths)
    attribute = etree.fromstring(results[0])
    assert attribute.tag == f"{{{NATIVE}}}DicomAttribute"  # written in the PS3.19 namespace
    assert attribute.get("tag") == "00100020"
    assert attribute.findtext("n:Value", namespaces=MNS) == ds.PatientID
    assert results[1] == ds.PatientID
    assert results[2] == ds.ConceptNameCodeSequence[0].CodeMeaning
    assert results[3] == ""
    assert results[4] == str(len([e for e in ds if e.tag.group != 2 and e.tag.element != 0]))
    assert results[5] == "true"
    assert results[6] == "00100020"


def test_prefixed_xpath_runs_on_the_namespaced_model(app: object, ct_study: list[Sample]) -> None:
    sample = ct_study[0]
    prefixed = "/dcm:NativeDicomModel/dcm:DicomAttribute[@keyword='Modality']/dcm:Value/text()"
    unbound = "/x:NativeDicomModel"
    _reply, answer = _ask(
        app,
        [
            Ask(
                sample.doc,
                [prefixed, "/NativeDicomModel/DicomAttribute[@keyword='Modality']/Value/text()"],
                xpath_attrs=f' xmlns:dcm="{NATIVE}"',
            )
        ],
    )
    modality = pydicom.dcmread(sample.path, stop_before_pixels=True).Modality
    assert answer.results[sample.doc.sop] == [modality, modality]
    _reply, answer = _ask(app, [Ask(sample.doc, [unbound])])
    assert answer.status == ns.STATUS_FAILURE
    assert answer.errors[0]["errorCode"] == ns.WADO_INVALID_PARAMETER


@pytest.mark.parametrize(
    "xpath",
    [
        "/NativeDicomModel/DicomAttribute[",  # syntax error
        "no-such-function(1)",  # unknown function
        "$undefined",  # unknown variable
        "//*[count(//*) > 0]",  # descendant step inside a predicate: refused as too expensive
        "//a//b//c//d",  # more than three descendant steps
        "/" + "a" * 2000,  # too long
        "",  # empty
    ],
)
def test_invalid_xpath_is_0012_for_that_document(
    app: object, ct_study: list[Sample], xpath: str
) -> None:
    good, bad = ct_study[0], ct_study[1]
    _reply, answer = _ask(app, [Ask(good.doc, [PATIENT_ID]), Ask(bad.doc, ["/", xpath])])
    assert answer.status == ns.STATUS_PARTIAL_SUCCESS
    assert list(answer.results) == [good.doc.sop]
    (error,) = answer.errors
    assert error["errorCode"] == ns.WADO_INVALID_PARAMETER
    assert error["location"] == bad.doc.sop
    assert error["severity"] == ns.SEVERITY_ERROR


def test_document_errors_and_partial_success(app: object, ct_study: list[Sample]) -> None:
    first, second = ct_study[0], ct_study[1]
    unknown = Doc(first.doc.study, first.doc.series, "1.2.3.4.5.6.7.8.9")
    wrong_series = Doc(first.doc.study, "1.2.3.999", first.doc.sop)
    other_repo = Doc(first.doc.study, first.doc.series, second.doc.sop, repository="1.2.3")
    with_home = Doc(second.doc.study, second.doc.series, second.doc.sop, home="urn:oid:1.2.3")
    _reply, answer = _ask(
        app,
        [
            Ask(unknown),
            Ask(wrong_series),
            Ask(other_repo),
            Ask(with_home, [PATIENT_ID]),
            Ask(first.doc, []),
        ],
    )
    assert answer.status == ns.STATUS_PARTIAL_SUCCESS
    codes = {e["location"]: e["errorCode"] for e in answer.errors}
    assert codes[unknown.sop] == ns.XDS_DOCUMENT_UNIQUE_ID_ERROR
    assert codes[first.doc.sop] in (ns.WADO_INCONSISTENT_IDENTIFIERS, ns.WADO_INVALID_PARAMETER)
    assert ns.XDS_UNKNOWN_REPOSITORY_ID in codes.values()
    assert list(answer.results) == [second.doc.sop]
    reply_xml = _reply.xml()
    home = reply_xml.findtext(
        ".//wado:DocumentInformationResponse/ihe:HomeCommunityId", namespaces=MNS
    )
    assert home == "urn:oid:1.2.3"  # echoed when sent


def test_no_document_request_is_a_sender_fault(app: object) -> None:
    body = f'<wado:RetrieveImagingDocumentSetInformationRequest xmlns:wado="{ns.WADO_WS}"/>'
    reply = call(app, envelope(body, action=ns.ACTION_METADATA))
    assert reply.status == 400
    code, _subcodes, reason = fault_parts(reply.xml())
    assert code == f"{{{ns.SOAP12_ENV}}}Sender"
    assert "DocumentInformationRequest" in reply.body.decode()
    assert reason


# --- Anonymize ------------------------------------------------------------------------------------


def test_anonymize_basic_profile(app: object, ct_study: list[Sample]) -> None:
    series = max({s.doc.series for s in ct_study}, key=[s.doc.series for s in ct_study].count)
    one, two = [s for s in ct_study if s.doc.series == series][:2]
    _reply, answer = _ask(app, [Ask(one.doc, anonymize="yes"), Ask(two.doc, anonymize="true")])
    assert answer.status == ns.STATUS_SUCCESS
    roots = [_header(answer.results[s.doc.sop][0]) for s in (one, two)]
    originals = [pydicom.dcmread(s.path, stop_before_pixels=True) for s in (one, two)]

    def value(root: etree._Element, keyword: str) -> str | None:
        found = root.find(f"n:DicomAttribute[@keyword='{keyword}']", MNS)
        if found is None:
            return None
        return "".join(found.itertext())

    for root, original in zip(roots, originals, strict=True):
        assert_valid(root)
        assert value(root, "PatientIdentityRemoved") == "YES"
        assert value(root, "PatientName") in (None, "")
        assert value(root, "PatientID") in (None, "")
        assert value(root, "PatientBirthDate") in (None, "")
        assert value(root, "SOPInstanceUID") not in (None, str(original.SOPInstanceUID))
        assert value(root, "StudyInstanceUID") not in (None, str(original.StudyInstanceUID))
        assert not root.xpath("n:DicomAttribute[@privateCreator]", namespaces=MNS)
        assert str(original.PatientID) not in etree.tostring(root, encoding="unicode")
    # new UIDs consistent within the response: same study, same series → same new UIDs
    assert value(roots[0], "StudyInstanceUID") == value(roots[1], "StudyInstanceUID")
    assert value(roots[0], "SeriesInstanceUID") == value(roots[1], "SeriesInstanceUID")
    assert value(roots[0], "SOPInstanceUID") != value(roots[1], "SOPInstanceUID")
    # the same instance without Anonymize keeps its identity (the cache holds the original)
    _reply, plain = _ask(app, [Ask(one.doc, [f"string({PATIENT_ID}/Value)"], anonymize="no")])
    assert plain.results[one.doc.sop] == [str(originals[0].PatientID)]


def test_anonymize_bad_value_is_0012(app: object, ct_study: list[Sample]) -> None:
    _reply, answer = _ask(app, [Ask(ct_study[0].doc, anonymize="maybe")])
    assert answer.errors[0]["errorCode"] == ns.WADO_INVALID_PARAMETER


# --- bad input files, replacement, cache ----------------------------------------------------


@pytest.fixture
def own(tmp_path: Path) -> Iterator[tuple[Settings, Store, object]]:
    settings = load_settings(environ={}, data_dir=tmp_path / "store", duplicate_policy="replace")
    store = open_store(settings)
    yield settings, store, make_app(settings, store)
    store.close()


def _put(store: Store, tmp_path: Path, data: bytes) -> None:
    path = tmp_path / f"in-{len(list(tmp_path.glob('in-*')))}.dcm"
    path.write_bytes(data)
    store.put(path)


def _nested(depth: int) -> bytes:
    """Content Sequence nested ``depth`` times, defined lengths, a PatientID at the bottom."""
    inner = element(0x00100020, "LO", b"DEEP")
    for _ in range(depth):
        inner = element(0x0040A730, "SQ", item(inner))
    return inner


def test_bad_input_files_are_answered(own: tuple[Settings, Store, object], tmp_path: Path) -> None:
    _settings, store, app = own
    charset, odd, private, deep = new_doc(), new_doc(), new_doc(), new_doc()
    _put(
        store,
        tmp_path,
        part10(
            charset,
            element(0x00100010, "PN", b"M\xfcller^J\xfcrgen "),
            before=element(0x00080005, "CS", b"ISO_IR 999"),
        ),
    )
    _put(
        store,
        tmp_path,
        part10(odd, element(0x00100020, "LO", b"ABC") + element(0x00181310, "US", b"\x01\x00\x02")),
    )
    _put(store, tmp_path, part10(private, element(0x00111010, "LO", b"PRIV")))
    _put(store, tmp_path, part10(deep, element(0x00100020, "LO", b"TOP "), after=_nested(1100)))
    name = "string(/NativeDicomModel/DicomAttribute[@keyword='PatientName']//FamilyName)"
    _reply, answer = _ask(
        app,
        [
            Ask(charset, ["/", name]),
            Ask(
                odd,
                ["/", PATIENT_ID + "/Value/text()", "string(//DicomAttribute[@tag='00181310'])"],
            ),
            Ask(private, ["/", "string(/NativeDicomModel/DicomAttribute[@tag='00111010']/Value)"]),
            Ask(deep, ["/"]),
            Ask(deep, [PATIENT_ID + "/Value/text()"]),
        ],
    )
    assert answer.status == ns.STATUS_PARTIAL_SUCCESS
    assert _header(answer.results[charset.sop][0]) is not None
    assert answer.results[charset.sop][1] == "Müller"  # unknown charset read as ISO 8859-1
    assert answer.results[odd.sop][1] == "ABC"
    assert answer.results[odd.sop][2] == "1"  # the whole 2-byte value, the odd byte dropped
    assert answer.results[private.sop][1] == "PRIV"  # no creator: the full tag is kept
    for uid in (charset.sop, odd.sop, private.sop):
        assert_valid(_header(answer.results[uid][0]))
    # "/" of 1,100 nested sequences is answered as text; an XPath needs the tree, which libxml2
    # does not build that deep: urn:dicom:wado:0014 for that document, no traceback.
    deep_text = answer.results[deep.sop][0]
    assert deep_text.count('<Item number="1">') == 1100
    (error,) = answer.errors
    assert error["errorCode"] == ns.WADO_PROCESSING_FAILURE and error["location"] == deep.sop


def test_replaced_instance_never_serves_stale_metadata(
    own: tuple[Settings, Store, object], tmp_path: Path
) -> None:
    settings, store, app = own
    doc = new_doc()
    _put(store, tmp_path, part10(doc, element(0x00100020, "LO", b"OLD ")))
    query = [f"string({PATIENT_ID}/Value)"]
    assert _ask(app, [Ask(doc, query)])[1].results[doc.sop] == ["OLD"]
    cached = list((settings.data_dir / "cache").rglob("*.xml"))
    assert len(cached) == 1 and doc.sop in cached[0].name
    _put(store, tmp_path, part10(doc, element(0x00100020, "LO", b"NEW ")))
    assert _ask(app, [Ask(doc, query)])[1].results[doc.sop] == ["NEW"]
    # a fresh application (cold memory cache) reads the new entry from disk, not the old one
    fresh = make_app(settings, store)
    assert _ask(fresh, [Ask(doc, query)])[1].results[doc.sop] == ["NEW"]
    assert len(list((settings.data_dir / "cache").rglob("*.xml"))) == 2


def test_stored_file_gone_is_0014(own: tuple[Settings, Store, object], tmp_path: Path) -> None:
    _settings, store, app = own
    doc = new_doc()
    _put(store, tmp_path, part10(doc, element(0x00100020, "LO", b"GONE")))
    record = store.get(doc.sop)
    assert record is not None
    record.path.unlink()
    _reply, answer = _ask(app, [Ask(doc)])
    assert answer.status == ns.STATUS_FAILURE
    assert answer.errors[0]["errorCode"] == ns.WADO_PROCESSING_FAILURE


def test_xpath_response_is_escaped_text(app: object, ct_study: list[Sample]) -> None:
    """XPathResponse is xs:string: the model is character data, not child elements."""
    reply, answer = _ask(app, [Ask(ct_study[0].doc)])
    response = reply.xml().find(".//wado:XPathResponse", MNS)
    assert response is not None and len(response) == 0
    assert b"&lt;NativeDicomModel" in reply.body
    assert answer.results[ct_study[0].doc.sop][0].startswith("<NativeDicomModel")


def test_several_request_elements_in_one_body(app: object, ct_study: list[Sample]) -> None:
    first = metadata_request([Ask(ct_study[0].doc, [PATIENT_ID])])
    second = metadata_request([Ask(ct_study[1].doc, [PATIENT_ID])])
    reply = call(app, envelope(first + second, action=ns.ACTION_METADATA))
    answer = read_answer(reply.xml())
    assert list(answer.results) == [ct_study[0].doc.sop, ct_study[1].doc.sop]


def test_responses_and_requests_are_schema_valid(app: object, ct_study: list[Sample]) -> None:
    """Against ihe-wadows-2017's dicom.wado.ws.2011.xsd (one XPath per request: its limit).

    That schema's metadata request declares no studyInstanceUID/seriesInstanceUID attributes, so
    a request generated from it has none: such a request is valid there and answered (the
    instances' own study and series); the response is valid too.
    """
    good = ct_study[0].doc
    with_home = Doc(good.study, good.series, ct_study[1].doc.sop, home="urn:oid:1.2.3")
    missing = Doc(good.study, good.series, "1.2.3.4.5")
    request = etree.fromstring(
        metadata_request([Ask(good), Ask(with_home, [PATIENT_ID]), Ask(missing)])
    )
    for node in request.iter():
        for name in ("studyInstanceUID", "seriesInstanceUID"):
            node.attrib.pop(name, None)
    assert_schema_valid(request)
    reply = call(app, envelope(etree.tostring(request).decode(), action=ns.ACTION_METADATA))
    answer = read_answer(reply.xml())
    assert answer.status == ns.STATUS_PARTIAL_SUCCESS
    assert list(answer.results) == [good.sop, with_home.sop]
    assert [e["location"] for e in answer.errors] == [missing.sop]
    body = reply.xml().find(f"{{{ns.SOAP12_ENV}}}Body")
    assert body is not None
    (response,) = list(body)
    assert_schema_valid(response)
    validate_body_element(response)  # and against the schemas xdsi serves


def test_served_schemas_accept_requests_and_responses(app: object, ct_study: list[Sample]) -> None:
    """What the served WSDL's schemas say (tests/soap/schemas.py): several XPaths allowed."""
    good = ct_study[0].doc
    request = metadata_request(
        [Ask(good, ["/", PATIENT_ID], anonymize="yes"), Ask(Doc(good.study, good.series, "1.2.9"))]
    )
    validate_body_element(etree.fromstring(request))
    reply = call(app, envelope(request, action=ns.ACTION_METADATA_PROSE))
    assert read_answer(reply.xml()).status == ns.STATUS_PARTIAL_SUCCESS
    validate_body_element(body_element(reply.xml()))


def test_empty_study_attribute_is_still_0012(app: object, ct_study: list[Sample]) -> None:
    doc = ct_study[0].doc
    _reply, answer = _ask(app, [Ask(Doc("", doc.series, doc.sop))])
    assert answer.errors[0]["errorCode"] == ns.WADO_INVALID_PARAMETER


def test_anonymized_references_stay_consistent(app: object, samples: dict[str, Sample]) -> None:
    """A KOS and an instance it references, anonymized in one response: the KOS's nested
    Referenced SOP Instance UID is the instance's new SOP Instance UID (U at every level)."""
    kos = next(s for s in samples.values() if s.path.name == "ct_study_kos.dcm")
    ds = pydicom.dcmread(kos.path)
    referenced = [
        str(item.ReferencedSOPInstanceUID)
        for study in ds.CurrentRequestedProcedureEvidenceSequence
        for series in study.ReferencedSeriesSequence
        for item in series.ReferencedSOPSequence
    ]
    target = next(samples[uid] for uid in referenced if uid in samples)
    _reply, answer = _ask(app, [Ask(kos.doc, anonymize="yes"), Ask(target.doc, anonymize="yes")])
    assert answer.status == ns.STATUS_SUCCESS
    kos_root = _header(answer.results[kos.doc.sop][0])
    target_root = _header(answer.results[target.doc.sop][0])
    new_uid = target_root.findtext(
        "n:DicomAttribute[@keyword='SOPInstanceUID']/n:Value", namespaces=MNS
    )
    nested = kos_root.xpath(
        "//n:DicomAttribute[@keyword='ReferencedSOPInstanceUID']/n:Value/text()", namespaces=MNS
    )
    assert new_uid in nested
    text = etree.tostring(kos_root, encoding="unicode")
    assert not any(uid in text for uid in referenced)
    assert kos_root.findtext(
        "n:DicomAttribute[@keyword='StudyInstanceUID']/n:Value", namespaces=MNS
    ) == target_root.findtext(
        "n:DicomAttribute[@keyword='StudyInstanceUID']/n:Value", namespaces=MNS
    )


def test_golden_request_gets_the_golden_answer(app: object) -> None:
    """samples/soap/wsdl-request-metadata.xml (the served WSDL's sample) against the sample store
    is answered with what samples/soap/wsdl-response-metadata.xml says."""
    reply = call(app, (GOLDEN / "wsdl-request-metadata.xml").read_bytes())
    golden = etree.parse(str(GOLDEN / "wsdl-response-metadata.xml")).getroot()
    assert read_answer(reply.xml()) == read_answer(golden)
    action = f"{{{ns.SOAP12_ENV}}}Header/{{{ns.WSA}}}Action"
    assert reply.xml().findtext(action) == golden.findtext(action)
