"""Validation of SOAP Body elements against the schema set xdsi serves (``?wsdl``/``?xsd=``).

For the tests of every operation: ``validate_body_element(element)`` checks one Body child
(a request or a response of RAD-69, rendered or metadata) against the schemas exactly as
:class:`xdsi.soap.wsdl.WsdlDocuments` serves them — served bytes, rewritten ``schemaLocation``
URLs — resolved in-process, so nothing is fetched from the network (standards.md §5.3 recipe:
each inline schema of the WSDL compiled on its own; one wrapper schema importing every
namespace of the WSDL for instance validation).

MTOM messages carry ``xop:Include`` in place of base64 content (XOP §3.2); the element is
validated as its reconstructed infoset, the ``xop:Include`` replaced by empty base64 content.
"""

from __future__ import annotations

import copy
from functools import cache
from urllib.parse import unquote

from lxml import etree

from xdsi import ns
from xdsi.soap.wsdl import WsdlDocuments

SERVED_ENDPOINT = "http://xdsi.invalid/xdsi/ImagingDocumentSource"
"""Endpoint URL the schemas are rendered for (``.invalid``: RFC 2606, never resolvable)."""


class _ServedSchemas(etree.Resolver):
    """Resolves ``<SERVED_ENDPOINT>?xsd=<path>`` to what the server answers; refuses the rest."""

    def __init__(self, documents: WsdlDocuments) -> None:
        super().__init__()
        self.documents = documents

    def resolve(self, system_url, public_id, context):  # type: ignore[no-untyped-def]
        prefix = SERVED_ENDPOINT + "?xsd="
        if system_url and system_url.startswith(prefix):
            data = self.documents.schema(unquote(system_url[len(prefix) :]), SERVED_ENDPOINT)
            if data is not None:
                return self.resolve_string(data, context, base_url=system_url)
        raise LookupError(f"not a schema served by xdsi (no network in tests): {system_url}")


def served_parser() -> etree.XMLParser:
    """An offline parser whose schema imports resolve to the served schemas."""
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    parser.resolvers.add(_ServedSchemas(WsdlDocuments()))
    return parser


def served_wsdl() -> etree._Element:
    """The WSDL as served for :data:`SERVED_ENDPOINT`."""
    return etree.fromstring(WsdlDocuments().wsdl(SERVED_ENDPOINT), served_parser())


def inline_schemas(wsdl: etree._Element) -> list[etree._Element]:
    """Each ``wsdl:types/xsd:schema`` as a document of its own (namespaces of the WSDL kept)."""
    parser = served_parser()
    return [
        etree.fromstring(etree.tostring(schema), parser, base_url=SERVED_ENDPOINT + "?wsdl")
        for schema in wsdl.iterfind(f"{{{ns.WSDL}}}types/{{{ns.XSD}}}schema")
    ]


@cache
def served_schema() -> etree.XMLSchema:
    """One schema for every message: a wrapper importing each inline schema's namespace from
    the location its ``xsd:include`` names, in WSDL order (the first import of a namespace wins
    in libxml2, so XDS.b comes from the file with the global ``ihe:*`` elements)."""
    wrapper = etree.Element(f"{{{ns.XSD}}}schema")
    for schema in served_wsdl().iterfind(f"{{{ns.WSDL}}}types/{{{ns.XSD}}}schema"):
        include = schema.find(f"{{{ns.XSD}}}include")
        assert include is not None, "every inline schema of the WSDL includes its file"
        etree.SubElement(
            wrapper,
            f"{{{ns.XSD}}}import",
            namespace=schema.get("targetNamespace", ""),
            schemaLocation=include.get("schemaLocation", ""),
        )
    document = etree.fromstring(etree.tostring(wrapper), served_parser())
    return etree.XMLSchema(document)


def without_xop(element: etree._Element) -> etree._Element:
    """A copy of ``element`` with every ``xop:Include`` replaced by empty base64 content."""
    element = copy.deepcopy(element)
    for include in list(element.iter(f"{{{ns.XOP}}}Include")):
        parent = include.getparent()
        assert parent is not None
        parent.remove(include)
        parent.text = ""
    return element


def body_element(envelope: etree._Element) -> etree._Element:
    """The first element child of a SOAP 1.2 envelope's Body."""
    body = envelope.find(f"{{{ns.SOAP12_ENV}}}Body")
    assert body is not None, "not a SOAP 1.2 envelope"
    children = [child for child in body if isinstance(child.tag, str)]
    assert children, "empty Body"
    return children[0]


def schema_errors(element: etree._Element) -> list[str]:
    """Validation messages of ``element`` (a Body child) against the served set; [] if valid."""
    schema = served_schema()
    if schema.validate(etree.ElementTree(without_xop(element))):
        return []
    return [f"line {e.line}: {e.message}" for e in schema.error_log]


def validate_body_element(element: etree._Element) -> None:
    """Assert that ``element`` (a SOAP Body child, XOP or not) is valid against the served set."""
    errors = schema_errors(element)
    assert not errors, "not valid against the served schemas:\n" + "\n".join(errors)


__all__ = [
    "SERVED_ENDPOINT",
    "body_element",
    "inline_schemas",
    "schema_errors",
    "served_schema",
    "served_wsdl",
    "validate_body_element",
    "without_xop",
]
