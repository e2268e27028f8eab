"""zeep loads the WSDL from a live endpoint's ``?wsdl`` and finds the three WADO-WS operations
(PS3.18 2017b §6.4.1-§6.4.3) with their advertised actions; the messages zeep builds from the
served types validate against the served schemas, and zeep reads the golden responses."""

from __future__ import annotations

from typing import Any

import pytest
import zeep
from lxml import etree
from zeep.transports import Transport

from tests.client.live import LiveServer
from tests.soap.schemas import body_element, validate_body_element, without_xop
from tests.soap.support import GOLDEN
from xdsi import ns

BINDING = f"{{{ns.XDSI_B}}}ImagingDocumentSource_Binding"
RAD69 = "ImagingDocumentSource_RetrieveImagingDocumentSet"
RENDERED = "ImagingDocumentSource_RetrieveRenderedImagingDocumentSet"
METADATA = "ImagingDocumentSource_RetrieveImagingDocumentSetInformation"


class RecordingTransport(Transport):  # type: ignore[misc]
    """zeep's transport, remembering every URL it loads."""

    def __init__(self) -> None:
        super().__init__(timeout=30)
        self.loaded: list[str] = []

    def load(self, url: str) -> bytes:
        self.loaded.append(url)
        data: bytes = super().load(url)
        return data


@pytest.fixture(scope="module")
def loaded(live: LiveServer) -> tuple[zeep.Client, RecordingTransport]:
    transport = RecordingTransport()
    settings = zeep.Settings(strict=True, forbid_dtd=True, forbid_entities=True)
    client = zeep.Client(f"{live.endpoint}?wsdl", transport=transport, settings=settings)
    return client, transport


def test_zeep_loads_everything_from_the_endpoint(
    live: LiveServer, loaded: tuple[zeep.Client, RecordingTransport]
) -> None:
    _, transport = loaded
    assert transport.loaded[0] == f"{live.endpoint}?wsdl"
    assert all(url.startswith(f"{live.endpoint}?") for url in transport.loaded)
    served = {url.split("?xsd=", 1)[1] for url in transport.loaded[1:]}
    assert {"DICOM/dicom.wado.ws.2011.xsd", "IHE/XDS.b_DocumentRepository_WADO-WS.xsd"} <= served


def test_zeep_lists_three_operations_with_their_actions(
    live: LiveServer, loaded: tuple[zeep.Client, RecordingTransport]
) -> None:
    client, _ = loaded
    binding = client.wsdl.bindings[BINDING]
    operations = {
        name: (op.soapaction, op.abstract.wsa_action, op.abstract.output_message.parts["body"])
        for name, op in binding._operations.items()
    }
    assert {name: value[:2] for name, value in operations.items()} == {
        RAD69: (ns.ACTION_RAD69, ns.ACTION_RAD69),
        RENDERED: (ns.ACTION_RENDERED, ns.ACTION_RENDERED),
        METADATA: (ns.ACTION_METADATA, ns.ACTION_METADATA),
    }
    outputs = {name: value[2].element.qname.text for name, value in operations.items()}
    assert outputs == {
        RAD69: f"{{{ns.XDS_B}}}RetrieveDocumentSetResponse",
        RENDERED: f"{{{ns.WADO_WS}}}RetrieveRenderedImagingDocumentSetResponse",
        METADATA: f"{{{ns.WADO_WS}}}RetrieveImagingDocumentSetInformationResponse",
    }
    (port,) = client.wsdl.services["ImagingDocumentSource"].ports.values()
    assert port.name == "ImagingDocumentSource_Port_Soap12"
    assert port.binding_options["address"] == live.endpoint


RENDERED_BODY: dict[str, Any] = {
    "StudyRequest": [
        {
            "studyInstanceUID": "1.2.3",
            "SeriesRequest": [
                {
                    "seriesInstanceUID": "1.2.3.4",
                    "RenderedDocumentRequest": [
                        {
                            "RepositoryUniqueId": "1.3.6.1.4.1.21367.13.80.110",
                            "DocumentUniqueId": "1.2.3.4.5",
                            "Rows": "64",
                            "Region": {"XMin": "0", "YMin": "0", "XMax": "0.5", "YMax": "0.5"},
                            "WindowWidth": "400",
                            "WindowCenter": "40",
                            "ContentTypeList": {"ContentType": ["image/png", "image/jpeg"]},
                        }
                    ],
                }
            ],
        }
    ]
}
METADATA_BODY: dict[str, Any] = {
    "StudyRequest": [
        {
            "studyInstanceUID": "1.2.3",
            "SeriesRequest": [
                {
                    "seriesInstanceUID": "1.2.3.4",
                    "DocumentInformationRequest": [
                        {
                            "RepositoryUniqueId": "1.3.6.1.4.1.21367.13.80.110",
                            "DocumentUniqueId": "1.2.3.4.5",
                            "XPath": ["/", '//DicomAttribute[@keyword="Rows"]'],
                        }
                    ],
                }
            ],
        }
    ]
}


@pytest.mark.parametrize(
    ("operation", "body", "action"),
    [(RENDERED, RENDERED_BODY, ns.ACTION_RENDERED), (METADATA, METADATA_BODY, ns.ACTION_METADATA)],
    ids=["rendered", "metadata"],
)
def test_zeep_builds_valid_requests_from_the_served_types(
    loaded: tuple[zeep.Client, RecordingTransport],
    operation: str,
    body: dict[str, Any],
    action: str,
) -> None:
    client, _ = loaded
    service = client.create_service(BINDING, "http://127.0.0.1:9/unused")
    envelope = client.create_message(service, operation, **body)
    assert envelope.findtext(f".//{{{ns.WSA}}}Action") == action  # from wsaw:Action
    validate_body_element(body_element(envelope))


def test_zeep_reads_the_golden_responses(loaded: tuple[zeep.Client, RecordingTransport]) -> None:
    client, _ = loaded
    binding = client.wsdl.bindings[BINDING]
    rendered = binding._operations[RENDERED].output.deserialize(
        without_xop(etree.parse(str(GOLDEN / "wsdl-response-rendered.xml")).getroot())
    )
    assert rendered.RegistryResponse.status == ns.STATUS_SUCCESS
    first, second = rendered.RenderedDocumentResponse
    assert (first.mimeType, first.Region.XMax, second.FrameNumber) == (ns.MEDIA_PNG, "0.75", "3")
    metadata = binding._operations[METADATA].output.deserialize(
        etree.parse(str(GOLDEN / "wsdl-response-metadata.xml")).getroot()
    )
    (document,) = metadata.DocumentInformationResponse
    answers = document.XPathResponseList.XPathResponse
    assert answers[0] == "CT" and answers[1].startswith("<DicomAttribute ") and answers[2] is None
