"""Serving the normative WSDL and its schemas from ``wsdl/`` (design note 14).

The served WSDL, ``wsdl/wsdl/ImagingDocumentSource.wsdl``, covers the three WADO-WS operations
(PS3.18 2017b §6.4.1-§6.4.3: RAD-69, rendered, metadata); it and the two schemas it adds are
derived files, the rest of the set is vendored unmodified (both listed in ``wsdl/SOURCES.md``).
What is served differs from the files in two ways only, so that zeep, JAX-WS ``wsimport`` and
SoapUI can load the service from its URL alone:

* every ``schemaLocation`` (``xsd:include``/``xsd:import``) becomes an absolute URL of this
  endpoint, ``<endpoint>?xsd=<path below schema/>``;
* ``soap12:address/@location`` becomes the endpoint URL the client used (WSDL 1.1 §3.8 / the
  SOAP 1.2 binding for WSDL 1.1).

Schema paths are resolved strictly inside ``schema/``: ``..`` segments, absolute paths and
anything that resolves outside are refused (path traversal).
"""

from __future__ import annotations

import posixpath
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from lxml import etree

from xdsi import ns
from xdsi.resources import wsdl_dir
from xdsi.soap.xmlsafe import parse_xml

WSDL_DIR = wsdl_dir()
"""``wsdl/`` of the checkout, or its installed copy (:func:`xdsi.resources.wsdl_dir`)."""
SERVICE_WSDL = "wsdl/ImagingDocumentSource.wsdl"
"""The served WSDL: RAD-69, rendered and metadata operations (derived, see its header comment)."""
SCHEMA_ROOT = "schema"

_SCHEMA_REFS = (f"{{{ns.XSD}}}include", f"{{{ns.XSD}}}import", f"{{{ns.XSD}}}redefine")


class WsdlDocuments:
    """The WSDL/XSD set below ``root``, rendered for a given endpoint URL."""

    def __init__(self, root: Path = WSDL_DIR) -> None:
        self.root = root.resolve()
        if not (self.root / SERVICE_WSDL).is_file():
            raise FileNotFoundError(f"the service WSDL is missing: {self.root / SERVICE_WSDL}")

    def wsdl(self, endpoint_url: str) -> bytes:
        """The service WSDL with absolute schema URLs and the actual ``soap12:address``."""
        tree = self._load(SERVICE_WSDL)
        self._rewrite_schema_locations(tree, SERVICE_WSDL, endpoint_url)
        for address in tree.iter(f"{{{ns.WSDL_SOAP12}}}address"):
            address.set("location", endpoint_url)
        return _serialize(tree)

    def schema(self, relative: str, endpoint_url: str) -> bytes | None:
        """``schema/<relative>`` with absolute schema URLs, or ``None`` if there is no such file
        inside ``schema/`` (including every traversal attempt)."""
        path = self._schema_path(relative)
        if path is None:
            return None
        tree = self._load(path)
        self._rewrite_schema_locations(tree, path, endpoint_url)
        return _serialize(tree)

    def _schema_path(self, relative: str) -> str | None:
        """The repository-relative path of an ``?xsd=`` value, or ``None`` if not allowed."""
        pure = PurePosixPath(relative)
        if not relative or pure.is_absolute() or "\\" in relative or ".." in pure.parts:
            return None
        candidate = (self.root / SCHEMA_ROOT / pure).resolve()
        schema_dir = (self.root / SCHEMA_ROOT).resolve()
        if not candidate.is_relative_to(schema_dir) or not candidate.is_file():
            return None
        if candidate.suffix != ".xsd":
            return None
        return candidate.relative_to(self.root).as_posix()

    def _load(self, relative: str) -> etree._Element:
        return parse_xml((self.root / relative).read_bytes(), keep_comments=True)

    def _rewrite_schema_locations(
        self, tree: etree._Element, document: str, endpoint_url: str
    ) -> None:
        base = posixpath.dirname(document)
        for ref in tree.iter(*_SCHEMA_REFS):
            location = ref.get("schemaLocation")
            if not location or "://" in location:
                continue
            target = posixpath.normpath(posixpath.join(base, location))
            prefix = SCHEMA_ROOT + "/"
            if not target.startswith(prefix):
                continue  # outside schema/: leave it (not present in the vendored set)
            ref.set("schemaLocation", xsd_url(endpoint_url, target[len(prefix) :]))


def xsd_url(endpoint_url: str, schema_path: str) -> str:
    """Absolute URL under which ``schema/<schema_path>`` is served."""
    return f"{endpoint_url}?xsd={quote(schema_path, safe='/._-')}"


def _serialize(tree: etree._Element) -> bytes:
    # The whole document, so that comments before the root element are kept.
    data: bytes = etree.tostring(tree.getroottree(), xml_declaration=True, encoding="UTF-8")
    return data


__all__ = ["SERVICE_WSDL", "WSDL_DIR", "WsdlDocuments", "xsd_url"]
