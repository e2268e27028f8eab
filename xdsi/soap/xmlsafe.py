"""The one XML parser of the SOAP layer, hardened against hostile input (design note 14).

No DTD is loaded, no entity is resolved, nothing is fetched from the network and libxml2's
``huge_tree`` safety limits stay on.  A document that carries a DTD at all (internal subset or
external reference) is refused outright: SOAP 1.2 Part 1 §5 forbids a DTD in a SOAP message
("A SOAP message MUST NOT contain a Document Type Declaration"), and refusing it closes the
billion-laughs and XXE doors whatever libxml2 would have done with the entities.
"""

from __future__ import annotations

from lxml import etree


class XmlRejected(ValueError):
    """The bytes are not a well-formed, DTD-free XML document."""


def _parser(keep_comments: bool) -> etree.XMLParser:
    # A fresh parser per call: lxml parsers keep per-document state and must not be shared
    # between the server's worker threads.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=not keep_comments,
        remove_pis=not keep_comments,
    )


def parse_xml(data: bytes, *, keep_comments: bool = False) -> etree._Element:
    """Parse ``data`` into an element tree, refusing DTDs (SOAP 1.2 Part 1 §5).

    Comments and processing instructions are dropped unless ``keep_comments`` (used for the
    vendored WSDL/XSD files, served as they are).

    Raises
    ------
    XmlRejected
        With a short, client-presentable reason.
    """
    if not data.strip():
        raise XmlRejected("the message is empty")
    try:
        root = etree.fromstring(data, _parser(keep_comments))
    except etree.XMLSyntaxError as exc:
        raise XmlRejected(f"the message is not well-formed XML: {exc.msg}") from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise XmlRejected("a SOAP message must not contain a Document Type Declaration")
    return root


__all__ = ["XmlRejected", "parse_xml"]
