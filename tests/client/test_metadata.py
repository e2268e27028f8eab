"""``xdsi retrieve --metadata`` and :class:`~xdsi.client.metadata.MetadataRequester` against a
live loopback server over a real SQLite store (PS3.18 2017b §6.4.3)."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from lxml import etree

from tests.client.live import LiveServer
from tests.client.test_cli import run_cli
from tests.imaging.nativeschema import assert_valid
from tests.soap.schemas import body_element, validate_body_element
from xdsi import ns
from xdsi.client.kos import read_kos
from xdsi.client.metadata import MetadataRequester
from xdsi.errors import InvalidRequest, RemoteFault
from xdsi.imaging.nativexml import to_native_xml
from xdsi.model import DocumentRequest, Status

PATIENT_ID = "string(/NativeDicomModel/DicomAttribute[@keyword='PatientID']/Value)"


def _documents(live: LiveServer) -> list[DocumentRequest]:
    return [
        DocumentRequest(study, series, uid, live.settings.repository_unique_id)
        for uid, (study, series) in sorted(live.study_of.items())
    ]


@pytest.mark.parametrize("mtom", [False, True])
@pytest.mark.parametrize("action", [ns.ACTION_METADATA, ns.ACTION_METADATA_PROSE])
def test_whole_model_over_a_socket(live: LiveServer, mtom: bool, action: str) -> None:
    documents = _documents(live)
    result = MetadataRequester(live.endpoint, mtom=mtom, action=action).retrieve(documents, ["/"])
    assert result.status is Status.SUCCESS and not result.errors
    assert result.action == action + ns.RESPONSE_SUFFIX
    # answered in request order, which groups the documents by study and series
    assert sorted(d.document_unique_id for d in result.documents) == sorted(
        d.document_unique_id for d in documents
    )
    for document in result.documents:
        root = etree.fromstring(document.results[0].encode("utf-8"))
        assert_valid(root)
        expected = to_native_xml(pydicom.dcmread(live.files_by_uid[document.document_unique_id]))
        assert etree.tostring(root) == etree.tostring(expected)


def test_several_xpaths_partial_success_and_anonymize(live: LiveServer) -> None:
    documents = _documents(live)[:2]
    missing = DocumentRequest(
        documents[0].study_instance_uid,
        documents[0].series_instance_uid,
        "1.2.3.4.5.6.7",
        live.settings.repository_unique_id,
    )
    requester = MetadataRequester(live.endpoint)
    result = requester.retrieve([*documents, missing], [PATIENT_ID, "1 + 1", "/NativeDicomModel/X"])
    assert result.status is Status.PARTIAL_SUCCESS
    assert [e.location for e in result.errors] == [missing.document_unique_id]
    first = pydicom.dcmread(live.files_by_uid[documents[0].document_unique_id])
    assert result.documents[0].results == (str(first.PatientID), "2", "")
    anonymous = requester.retrieve(documents[:1], [PATIENT_ID], anonymize=True)
    assert anonymous.documents[0].results == ("",)


def test_request_is_built_by_zeep_from_the_served_wsdl() -> None:
    requester = MetadataRequester("http://127.0.0.1:9/xdsi", action=ns.ACTION_METADATA_PROSE)
    documents = [
        DocumentRequest("1.2", "1.3", "1.4", "1.1", "urn:oid:1.5"),
        DocumentRequest("1.2", "1.3", "1.6", "1.1"),
        DocumentRequest("1.2", "1.7", "1.8", "1.1"),
    ]
    envelope = etree.fromstring(requester.envelope(documents, ["/", "//x"], anonymize=True))
    request = body_element(envelope)
    validate_body_element(request)
    assert envelope.findtext(f".//{{{ns.WSA}}}Action") == ns.ACTION_METADATA_PROSE
    items = request.findall(f".//{{{ns.WADO_WS}}}DocumentInformationRequest")
    assert len(items) == 3 and len(request.findall(f".//{{{ns.WADO_WS}}}SeriesRequest")) == 2
    assert [x.text for x in items[0].iterfind(f"{{{ns.WADO_WS}}}XPath")] == ["/", "//x"]
    assert items[0].findtext(f"{{{ns.WADO_WS}}}Anonymize") == "yes"
    with pytest.raises(InvalidRequest):
        requester.envelope([], ["/"])
    with pytest.raises(InvalidRequest):
        requester.envelope(documents, [])


def test_fault_is_reported(live: LiveServer) -> None:
    requester = MetadataRequester(live.endpoint, action="urn:example:NoSuchAction")
    with pytest.raises(RemoteFault):
        requester.retrieve(_documents(live)[:1], ["/"])


def test_cli_metadata_with_kos(
    live: LiveServer, kos_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stored = [d for d in read_kos(kos_path) if d.document_unique_id in live.files_by_uid]
    assert stored
    code, out, _err = run_cli(
        [
            "--endpoint", live.endpoint,
            "--kos", str(kos_path),
            "--repository-id", live.settings.repository_unique_id,
            "--metadata",
            "--out", str(tmp_path),
        ],
        capsys,
    )  # fmt: skip
    documents = read_kos(kos_path)
    assert code == (0 if len(stored) == len(documents) else 2), out
    for document in stored:
        text = (tmp_path / f"{document.document_unique_id}.xml").read_text(encoding="utf-8")
        assert_valid(etree.fromstring(text.encode("utf-8")))
    assert "status" in out


def _one_instance(live: LiveServer, *options: str) -> list[str]:
    """``xdsi retrieve`` arguments naming the first stored instance, then ``options``."""
    uid, (study, series) = sorted(live.study_of.items())[0]
    return [
        "--endpoint", live.endpoint,
        "--study", study, "--series", series, "--instance", uid,
        "--repository-id", live.settings.repository_unique_id,
        *options,
    ]  # fmt: skip


def test_cli_metadata_xpaths(
    live: LiveServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uid = sorted(live.study_of)[0]
    code, out, err = run_cli(
        _one_instance(
            live,
            "--metadata", "--xpath", PATIENT_ID,
            "--xpath", "/NativeDicomModel/DicomAttribute[@keyword='SOPInstanceUID']",
            "--out", str(tmp_path),
        ),
        capsys,
    )  # fmt: skip
    assert code == 0, out + err
    patient = pydicom.dcmread(live.files_by_uid[uid], stop_before_pixels=True).PatientID
    assert (tmp_path / f"{uid}.1.txt").read_text(encoding="utf-8") == str(patient)
    attribute = etree.fromstring((tmp_path / f"{uid}.2.xml").read_bytes())
    assert attribute.get("keyword") == "SOPInstanceUID"


def test_cli_xpath_without_metadata_is_refused(
    live: LiveServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _out, err = run_cli(_one_instance(live, "--xpath", "/", "--out", str(tmp_path)), capsys)
    assert code == 1 and "--metadata" in err


def test_cli_invalid_xpath_is_failure(
    live: LiveServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    options = ("--metadata", "--xpath", "/NativeDicomModel[", "--out", str(tmp_path))
    code, out, _err = run_cli(_one_instance(live, *options), capsys)
    assert code == 1
    assert ns.WADO_INVALID_PARAMETER in out
