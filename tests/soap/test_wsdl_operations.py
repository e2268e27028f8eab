"""The served WSDL covers RAD-69, rendered and metadata (PS3.18 2017b §6.4.1-§6.4.3), its schemas
compile offline in lxml, and real sample messages validate against them (tests/soap/schemas.py).
"""

from __future__ import annotations

import hashlib
import re

import pytest
from lxml import etree

from tests.soap.schemas import (
    body_element,
    inline_schemas,
    schema_errors,
    served_wsdl,
    validate_body_element,
)
from tests.soap.support import GOLDEN, WSDL_DIR
from xdsi import ns
from xdsi.soap.wsdl import SERVICE_WSDL

OPERATIONS = {
    # operation: (input action, output action, request element, response element)
    "ImagingDocumentSource_RetrieveImagingDocumentSet": (
        ns.ACTION_RAD69,
        ns.ACTION_RAD69_RESPONSE,
        f"{{{ns.XDSI_B}}}RetrieveImagingDocumentSetRequest",
        f"{{{ns.XDS_B}}}RetrieveDocumentSetResponse",
    ),
    "ImagingDocumentSource_RetrieveRenderedImagingDocumentSet": (
        ns.ACTION_RENDERED,
        ns.ACTION_RENDERED + ns.RESPONSE_SUFFIX,
        f"{{{ns.WADO_WS}}}RetrieveRenderedImagingDocumentSetRequest",
        f"{{{ns.WADO_WS}}}RetrieveRenderedImagingDocumentSetResponse",
    ),
    "ImagingDocumentSource_RetrieveImagingDocumentSetInformation": (
        ns.ACTION_METADATA,
        ns.ACTION_METADATA + ns.RESPONSE_SUFFIX,
        f"{{{ns.WADO_WS}}}RetrieveImagingDocumentSetInformationRequest",
        f"{{{ns.WADO_WS}}}RetrieveImagingDocumentSetInformationResponse",
    ),
}

INLINE_NAMESPACES = [ns.XDS_B, ns.XDSI_B, ns.WADO_WS, ns.RS, ns.LCM, ns.RIM]


def _qname(element: etree._Element, attribute: str) -> str:
    prefix, _, local = element.get(attribute, "").rpartition(":")
    return f"{{{element.nsmap[prefix or None]}}}{local}"


# --- schemas compile offline ----------------------------------------------------------------------


def test_every_inline_schema_of_the_served_wsdl_compiles_offline() -> None:
    schemas = inline_schemas(served_wsdl())
    assert [s.get("targetNamespace") for s in schemas] == INLINE_NAMESPACES
    for schema in schemas:
        etree.XMLSchema(schema)  # raises XMLSchemaParseError; includes resolve to served URLs


class _NoNetwork(etree.Resolver):
    def resolve(self, system_url, public_id, context):  # type: ignore[no-untyped-def]
        if "://" in (system_url or "") and not system_url.startswith("file:"):
            raise LookupError(f"network access attempted: {system_url}")
        return None


@pytest.mark.parametrize("index", range(len(INLINE_NAMESPACES)), ids=INLINE_NAMESPACES)
def test_inline_schemas_of_the_file_compile_offline(index: int) -> None:
    """standards.md §5.3 recipe on the file itself: each inline schema with the WSDL as base."""
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    parser.resolvers.add(_NoNetwork())
    path = WSDL_DIR / SERVICE_WSDL
    wsdl = etree.parse(str(path), parser).getroot()
    schema = wsdl.findall(f"{{{ns.WSDL}}}types/{{{ns.XSD}}}schema")[index]
    etree.XMLSchema(etree.fromstring(etree.tostring(schema), parser, base_url=str(path)))


def test_vendored_files_are_unmodified() -> None:
    table = (WSDL_DIR / "SOURCES.md").read_text(encoding="utf-8")
    listed = dict(re.findall(r"^\| `([^`]+)` \| `([0-9a-f]{64})` \|$", table, re.MULTILINE))
    assert len(listed) == 10
    for relative, digest in listed.items():
        assert hashlib.sha256((WSDL_DIR / relative).read_bytes()).hexdigest() == digest, relative


# --- the three operations -----------------------------------------------------------------------


def test_three_operations_with_one_advertised_action_each() -> None:
    wsdl = served_wsdl()
    messages = {
        m.get("name"): _qname(m.find(f"{{{ns.WSDL}}}part"), "element")
        for m in wsdl.iterfind(f"{{{ns.WSDL}}}message")
    }
    port_type = wsdl.find(f"{{{ns.WSDL}}}portType")
    assert port_type.get("name") == "ImagingDocumentSource_PortType"
    found = {}
    for op in port_type.iterfind(f"{{{ns.WSDL}}}operation"):
        sent, answered = op.find(f"{{{ns.WSDL}}}input"), op.find(f"{{{ns.WSDL}}}output")
        found[op.get("name")] = (
            sent.get(f"{{{ns.WSAW}}}Action"),
            answered.get(f"{{{ns.WSAW}}}Action"),
            messages[sent.get("message").split(":")[1]],
            messages[answered.get("message").split(":")[1]],
        )
    assert found == OPERATIONS

    binding = wsdl.find(f"{{{ns.WSDL}}}binding")
    assert binding.get("name") == "ImagingDocumentSource_Binding"
    assert binding.find(f"{{{ns.WSDL_SOAP12}}}binding").get("style") == "document"
    assert binding.find(f"{{{ns.WSAW}}}UsingAddressing") is not None
    for op in binding.iterfind(f"{{{ns.WSDL}}}operation"):
        soap = op.find(f"{{{ns.WSDL_SOAP12}}}operation")
        assert soap.get("soapAction") == OPERATIONS[op.get("name")][0]
        assert soap.get("soapActionRequired") == "false"
    assert len(binding.findall(f"{{{ns.WSDL}}}operation")) == 3

    (service,) = wsdl.findall(f"{{{ns.WSDL}}}service")
    (port,) = service.findall(f"{{{ns.WSDL}}}port")
    assert (service.get("name"), port.get("name")) == (
        "ImagingDocumentSource",
        "ImagingDocumentSource_Port_Soap12",
    )
    assert _qname(port, "binding") == f"{{{ns.XDSI_B}}}ImagingDocumentSource_Binding"


# --- sample messages validate -------------------------------------------------------------------

VALID_SAMPLES = [
    # ours, hand-written (samples/soap/README.md)
    "wsdl-request-rendered.xml",
    "wsdl-response-rendered.xml",
    "wsdl-request-metadata.xml",
    "wsdl-response-metadata.xml",
    # real ones, copied (samples/soap/README.md)
    "ref-ihe-wadows-2017-rendered-request.xml",
    "ref-dcm4chee-rendered-request.xml",
    "ref-dcm4chee-rendered-response.xml",
    # RAD-69 golden messages keep validating with the three-operation set
    "request-plain.xml",
    "request-partial.xml",
    "response-mtom.xml",
    "response-nist-ids4810.xml",
    "response-failure.xml",
]


def _element(name: str) -> etree._Element:
    root = etree.parse(str(GOLDEN / name)).getroot()
    return body_element(root) if root.tag == f"{{{ns.SOAP12_ENV}}}Envelope" else root


@pytest.mark.parametrize("name", VALID_SAMPLES)
def test_sample_validates(name: str) -> None:
    validate_body_element(_element(name))


def test_goldens_use_the_advertised_actions() -> None:
    for name, action in [
        ("wsdl-request-rendered.xml", ns.ACTION_RENDERED),
        ("wsdl-response-rendered.xml", ns.ACTION_RENDERED + ns.RESPONSE_SUFFIX),
        ("wsdl-request-metadata.xml", ns.ACTION_METADATA),
        ("wsdl-response-metadata.xml", ns.ACTION_METADATA + ns.RESPONSE_SUFFIX),
    ]:
        root = etree.parse(str(GOLDEN / name)).getroot()
        assert root.findtext(f".//{{{ns.WSA}}}Action").strip() == action, name


def _rendered_request(replace: tuple[str, str]) -> etree._Element:
    text = (GOLDEN / "wsdl-request-rendered.xml").read_text(encoding="utf-8")
    assert replace[0] in text
    return body_element(etree.fromstring(text.replace(*replace).encode()))


def test_window_center_before_width_is_schema_invalid() -> None:
    """Documented inconsistency (standards.md §3.9 #5): the PS3.18 prose and ihe-wadows-2017
    order (WindowCenter, WindowWidth) is not the dcm4che order the WSDL documents; the server
    parses it leniently, a schema-validating client cannot send it."""
    request = _rendered_request(
        (
            "<wado:WindowWidth>400</wado:WindowWidth>\n"
            "            <wado:WindowCenter>40</wado:WindowCenter>",
            "<wado:WindowCenter>40</wado:WindowCenter><wado:WindowWidth>400</wado:WindowWidth>",
        )
    )
    (error,) = schema_errors(request)
    assert f"Element '{{{ns.WADO_WS}}}WindowWidth': This element is not expected." in error


def test_region_as_a_string_is_schema_invalid() -> None:
    """Documented inconsistency (§3.9 #6): dcm4che/E.1 type Region as one string; the WSDL uses
    the PS3.18 §8.2.4 XMin/YMin/XMax/YMax form (the server reads both)."""
    text = (GOLDEN / "wsdl-request-rendered.xml").read_text(encoding="utf-8")
    as_string = "<wado:Region>0.25,0.25,0.75,0.75</wado:Region>"
    text = re.sub(r"<wado:Region>.*?</wado:Region>", as_string, text, flags=re.DOTALL)
    errors = schema_errors(body_element(etree.fromstring(text.encode())))
    region = f"Element '{{{ns.WADO_WS}}}Region': "
    assert [e.split(": ", 1)[1] for e in errors] == [
        region + "Character content other than whitespace is not allowed because the content"
        " type is 'element-only'.",
        region + f"Missing child element(s). Expected is ( {{{ns.WADO_WS}}}XMin ).",
    ]


def test_extension_elements_of_other_namespaces_are_allowed() -> None:
    request = _rendered_request(
        ("</wado:CharsetList>", '</wado:CharsetList><fc:Hint xmlns:fc="urn:x-forcare:ws:wado"/>')
    )
    validate_body_element(request)
    wado_extra = _rendered_request(("</wado:CharsetList>", "</wado:CharsetList><wado:Hint/>"))
    assert schema_errors(wado_extra)


def test_the_helper_rejects_an_invalid_response() -> None:
    """A rendered response without ihe:mimeType, and a metadata response without XPathResponse."""
    for name, drop in [
        ("wsdl-response-rendered.xml", f"{{{ns.XDS_B}}}mimeType"),
        ("wsdl-response-metadata.xml", f"{{{ns.WADO_WS}}}XPathResponse"),
    ]:
        element = _element(name)
        for child in list(element.iter(drop)):
            child.getparent().remove(child)
        with pytest.raises(AssertionError, match="not valid against the served schemas"):
            validate_body_element(element)


def test_metadata_request_needs_an_xpath_and_the_study_uid() -> None:
    text = (GOLDEN / "wsdl-request-metadata.xml").read_text(encoding="utf-8")
    no_xpath = re.sub(r"\s*<wado:XPath>.*?</wado:XPath>", "", text)
    assert schema_errors(body_element(etree.fromstring(no_xpath.encode())))
    no_study = re.sub(r' studyInstanceUID="[^"]*"', "", text)
    assert schema_errors(body_element(etree.fromstring(no_study.encode())))



def test_every_served_operation_is_in_the_wsdl_as_advertised(app) -> None:  # type: ignore[no-untyped-def]
    """Each operation the endpoint dispatches (:class:`xdsi.soap.operation.Operation`) is in the
    WSDL under its name, its first (advertised) action pair is the WSDL's input/output action
    pair, and it takes the WSDL's request element."""
    assert app.operations
    for operation in app.operations:
        sent, answered, request_element, _ = OPERATIONS[operation.name]
        assert next(iter(operation.actions.items())) == (sent, answered), operation.name
        assert request_element in operation.request_elements, operation.name
