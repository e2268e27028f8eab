"""The Rendered Requester (``xdsi retrieve --rendered``) against a real xdsi server on loopback.

The server is ``make_app`` under waitress over a real SQLite store with the samples, a GSPS and
an Encapsulated PDF (:mod:`tests.transactions.rendered_data`); requests go over a socket.
"""

from __future__ import annotations

import argparse
import io
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import zeep
from PIL import Image

from tests.client.live import LiveServer, live_server
from tests.soap.schemas import validate_body_element
from tests.transactions import rendered_data
from tests.transactions.rendered_data import (
    CT,
    MULTIFRAME,
    PDF_BYTES,
    REPO_ID,
    SR,
    Extras,
    uids,
)
from xdsi import ns
from xdsi.cli import build_parser
from xdsi.cli import retrieve as retrieve_command
from xdsi.client.receive import read_response
from xdsi.client.rendered import (
    RenderedParameters,
    _RenderedReader,
    request_element,
    retrieve_rendered,
)
from xdsi.config import load_settings
from xdsi.errors import InvalidRequest, RemoteFault
from xdsi.model import DocumentRequest, Status

# The shared fixtures: one real store per module with the samples, GSPSs and a PDF.
extras = rendered_data.extras


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    free_port_factory: Callable[[], int],
    sample_files: list[Path],
    extras: Extras,
) -> Iterator[LiveServer]:
    files = [*sample_files, *extras.paths]
    with live_server(tmp_path_factory.mktemp("rendered-live"), free_port_factory(), files) as live:
        yield live


def doc(path: Path) -> DocumentRequest:
    study, series, sop = uids(path)
    return DocumentRequest(study, series, sop, REPO_ID)


def test_rendered_retrieve_saves_files_and_reports_values(
    server: LiveServer, tmp_path: Path
) -> None:
    parameters = RenderedParameters(
        content_types=("image/png",), rows="64", region="0,0,0.5,0.5", window_center="40",
        window_width="400", annotation="technique",
    )  # fmt: skip
    rendered = retrieve_rendered(server.endpoint, [doc(CT)], parameters, tmp_path)
    assert rendered.result.status is Status.SUCCESS
    ((saved, used),) = rendered.pairs()
    assert saved.path == tmp_path / f"{uids(CT)[2]}.png"
    assert saved.mime_type == ns.MEDIA_PNG
    with Image.open(saved.path) as picture:
        assert picture.size == (64, 64)
    assert used == {
        "Annotation": "technique", "Rows": "64", "Columns": "64", "Region": "0,0,0.5,0.5",
        "WindowWidth": "400", "WindowCenter": "40",
    }  # fmt: skip
    assert rendered.result.action == ns.ACTION_RENDERED + ns.RESPONSE_SUFFIX


@pytest.mark.parametrize("mtom", [False, True])
@pytest.mark.parametrize("action", [ns.ACTION_RENDERED, ns.ACTION_RENDERED_LEGACY])
def test_region_as_text_mtom_and_legacy_action(
    server: LiveServer, tmp_path: Path, mtom: bool, action: str
) -> None:
    parameters = RenderedParameters(region="0.25,0.25,0.75,0.75", region_as_text=True)
    rendered = retrieve_rendered(
        server.endpoint, [doc(CT)], parameters, tmp_path, action=action, mtom=mtom
    )
    ((saved, used),) = rendered.pairs()
    assert saved.path.suffix == ".jpg"
    assert used["Region"] == "0.25,0.25,0.75,0.75"
    assert rendered.result.action == action + ns.RESPONSE_SUFFIX


def test_partial_success_animation_text_and_pdf(
    server: LiveServer, tmp_path: Path, extras: Extras
) -> None:
    parameters = RenderedParameters(
        content_types=("image/gif", "text/plain", "application/pdf"), frame_number=None
    )
    study, series, _ = uids(CT)
    missing = DocumentRequest(study, series, "1.2.3.4", REPO_ID)
    documents = [doc(MULTIFRAME), doc(SR), doc(extras.pdf), missing]
    rendered = retrieve_rendered(server.endpoint, documents, parameters, tmp_path)
    result = rendered.result
    assert result.status is Status.PARTIAL_SUCCESS
    gif, text, pdf = result.documents
    with Image.open(gif.path) as animation:
        assert animation.n_frames == 10
    assert text.mime_type == "text/plain; charset=utf-8" and text.path.suffix == ".txt"
    assert "Diameter" in text.path.read_text()
    assert pdf.path.read_bytes() == PDF_BYTES and pdf.path.suffix == ".pdf"
    (error,) = result.errors
    assert (error.error_code, error.location) == (ns.XDS_DOCUMENT_UNIQUE_ID_ERROR, "1.2.3.4")


def test_bad_values_are_sent_as_given(server: LiveServer, tmp_path: Path) -> None:
    parameters = RenderedParameters(rows="abc", window_center="1")
    rendered = retrieve_rendered(server.endpoint, [doc(CT)], parameters, tmp_path)
    assert rendered.result.status is Status.FAILURE
    assert [e.error_code for e in rendered.result.errors] == [ns.WADO_INVALID_PARAMETER]


def test_request_is_valid_against_the_served_schemas() -> None:
    parameters = RenderedParameters(
        content_types=("image/png", "image/jpeg"), charsets=("utf-8",), annotation="patient",
        rows="1", columns="2", region="0,0,1,1", window_center="1", window_width="2",
        image_quality="3", presentation_uid="1.2", presentation_series_uid="1.3", anonymize=True,
        frame_number="4",
    )  # fmt: skip
    home = DocumentRequest(*uids(CT), REPO_ID, "urn:oid:1.2.3")
    validate_body_element(request_element([doc(CT), doc(SR), home], parameters))


def test_request_checks_of_the_client() -> None:
    with pytest.raises(InvalidRequest):
        request_element([], RenderedParameters())
    with pytest.raises(InvalidRequest):
        request_element([doc(CT)], RenderedParameters(region="0,0,1"))


def test_fault_is_reported(server: LiveServer, tmp_path: Path) -> None:
    # a RAD-69 action on a rendered body: the endpoint answers with a Sender fault
    with pytest.raises(RemoteFault):
        retrieve_rendered(
            server.endpoint, [doc(CT)], RenderedParameters(), tmp_path, action=ns.ACTION_RAD69
        )


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    args: argparse.Namespace = build_parser([retrieve_command]).parse_args(["retrieve", *argv])
    code = retrieve_command.run(args, load_settings(environ={}))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_rendered(
    server: LiveServer, tmp_path: Path, extras: Extras, capsys: pytest.CaptureFixture[str]
) -> None:
    study, series, sop = uids(CT)
    _, gsps_series, gsps = uids(extras.gsps)
    base = ["--endpoint", server.endpoint, "--study", study, "--series", series, "--instance",
            sop, "--repository-id", REPO_ID, "--out", str(tmp_path), "--rendered"]  # fmt: skip
    code, out, _ = run_cli(
        [*base, "--content-type", "image/png", "--columns", "32", "--presentation-uid", gsps,
         "--presentation-series-uid", gsps_series, "--anonymize", "--frame-number", "1",
         "--image-quality", "80", "--charset", "utf-8", "--mtom"],
        capsys,
    )  # fmt: skip
    assert code == 0, out
    assert f"{sop}.png image/png" in out and f"PresentationUID={gsps}" in out
    assert "Anonymize=yes" in out and "FrameNumber=1" in out and "Columns=32" in out
    code, out, _ = run_cli([*base, "--rows", "0"], capsys)
    assert code == 1 and ns.WADO_INVALID_PARAMETER in out
    code, out, _ = run_cli([*base, "--annotation", "patient", "--instance", "1.2.3"], capsys)
    assert code == 2 and "Annotation=patient" in out
    code, _, err = run_cli([*base, "--region", "1,2"], capsys)
    assert code == 1 and "--region" in err


def test_zeep_calls_the_rendered_operation_from_the_served_wsdl(server: LiveServer) -> None:
    """zeep builds the request from ``?wsdl`` and reads the MTOM answer with its own machinery."""
    client = zeep.Client(
        f"{server.endpoint}?wsdl",
        settings=zeep.Settings(strict=True, forbid_dtd=True, forbid_entities=True),
    )
    study, series, sop = uids(CT)
    answer = client.service.ImagingDocumentSource_RetrieveRenderedImagingDocumentSet(
        StudyRequest=[{
            "studyInstanceUID": study,
            "SeriesRequest": [{
                "seriesInstanceUID": series,
                "RenderedDocumentRequest": [{
                    "RepositoryUniqueId": REPO_ID,
                    "DocumentUniqueId": sop,
                    "Columns": "32",
                    "Region": {"XMin": "0", "YMin": "0", "XMax": "0.5", "YMax": "1"},
                    "ContentTypeList": {"ContentType": ["image/png"]},
                }],
            }],
        }]
    )  # fmt: skip
    assert answer.RegistryResponse.status == ns.STATUS_SUCCESS
    (item,) = answer.RenderedDocumentResponse
    assert (item.SourceDocumentUniqueId, item.Columns, item.Rows) == (sop, "32", "64")
    assert (item.Region.XMax, item.mimeType) == ("0.5", ns.MEDIA_PNG)
    with Image.open(io.BytesIO(item.Document)) as picture:
        assert picture.size == (32, 64)


@pytest.mark.parametrize(
    ("flags", "message"),
    [(["--anonymize"], "--anonymize goes with"), (["--xpath", "/"], "--xpath goes with"),
     (["--metadata", "--rendered"], "different requests")],
)  # fmt: skip
def test_cli_option_combinations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    study, series, sop = uids(CT)
    base = ["--endpoint", "http://127.0.0.1:9/x", "--study", study, "--series", series,
            "--instance", sop, "--repository-id", REPO_ID, "--out", str(tmp_path)]  # fmt: skip
    code, _, err = run_cli([*base, *flags], capsys)
    assert code == 1 and message in err


def test_response_reader_skips_comments_and_takes_either_namespace(tmp_path: Path) -> None:
    """A crafted response: comments among the entry's children and inside Region (they made
    the reader fail with a ValueError before), the 2011 and 2009 WADO-WS namespaces."""
    old = next(n for n in ns.WADO_WS_NAMESPACES if n != ns.WADO_WS)
    body = f"""<?xml version="1.0" encoding="UTF-8"?>
<s:Envelope xmlns:s="{ns.SOAP12_ENV}" xmlns:wado="{ns.WADO_WS}" xmlns:old="{old}"
    xmlns:xdsb="{ns.XDS_B}"><s:Body><wado:RetrieveRenderedImagingDocumentSetResponse>
<wado:RegistryResponse status="{ns.STATUS_SUCCESS}"/>
<wado:RenderedDocumentResponse><!-- a comment -->
  <xdsb:RepositoryUniqueId>{REPO_ID}</xdsb:RepositoryUniqueId>
  <wado:SourceDocumentUniqueId> 1.2.3.4 </wado:SourceDocumentUniqueId>
  <old:Rows>64</old:Rows><wado:Region><wado:XMin>0</wado:XMin><!-- c --><wado:YMin>0.1</wado:YMin>
  <wado:YMax>1</wado:YMax><wado:XMax>0.5</wado:XMax></wado:Region><Columns>9</Columns>
  <xdsb:mimeType>image/png</xdsb:mimeType><xdsb:Document>aGk=</xdsb:Document>
</wado:RenderedDocumentResponse></wado:RetrieveRenderedImagingDocumentSetResponse>
</s:Body></s:Envelope>""".encode()
    reader = _RenderedReader()
    result = read_response(ns.MEDIA_SOAP12, [body], tmp_path, read=reader)
    (saved,) = result.documents
    assert (saved.document_unique_id, saved.path.name) == ("1.2.3.4", "1.2.3.4.png")
    assert saved.path.read_bytes() == b"hi"
    assert reader.used == [{"Rows": "64", "Region": "0,0.1,0.5,1"}]
