"""``?wsdl`` and ``?xsd=`` (in-process): the files of ``wsdl/`` served with only their
``schemaLocation``s and the ``soap12:address`` changed, and no way out of ``schema/``."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from lxml import etree

from tests.soap.support import WSDL_DIR, call
from xdsi import ns
from xdsi.soap.wsdl import SERVICE_WSDL

ENDPOINT_URL = "http://127.0.0.1:8080/xdsi/ImagingDocumentSource"
SCHEMA_REFS = (f"{{{ns.XSD}}}include", f"{{{ns.XSD}}}import")


def _as_served(path: Path, served: etree._Element) -> etree._Element:
    """The file in ``wsdl/`` with the served schemaLocation/address values copied in."""
    original = etree.parse(str(path)).getroot()
    mine = list(original.iter(*SCHEMA_REFS, f"{{{ns.WSDL_SOAP12}}}address"))
    theirs = list(served.iter(*SCHEMA_REFS, f"{{{ns.WSDL_SOAP12}}}address"))
    assert len(mine) == len(theirs)
    for a, b in zip(mine, theirs, strict=True):
        for attribute in ("schemaLocation", "location"):
            if a.get(attribute) is not None:
                a.set(attribute, b.get(attribute))
    return original


def test_wsdl_changes_only_locations(app) -> None:  # type: ignore[no-untyped-def]
    reply = call(app, method="GET", query="wsdl")
    assert reply.status == 200 and reply.content_type.startswith("text/xml")
    served = etree.fromstring(reply.body)
    locations = [e.get("schemaLocation") for e in served.iter(*SCHEMA_REFS)]
    assert locations and all(loc.startswith(ENDPOINT_URL + "?xsd=") for loc in locations)
    address = served.find(f".//{{{ns.WSDL_SOAP12}}}address")
    assert address.get("location") == ENDPOINT_URL
    expected = _as_served(WSDL_DIR / SERVICE_WSDL, served)
    assert etree.tostring(served, method="c14n2") == etree.tostring(expected, method="c14n2")
    assert b"<!--" in reply.body  # comments kept: the file is served as it is


@pytest.mark.parametrize("query", ["WSDL", "wsdl=", "wsdl&x=1"])
def test_wsdl_query_spellings(app, query: str) -> None:  # type: ignore[no-untyped-def]
    assert call(app, method="GET", query=query).status == 200


def test_every_schema_reachable_from_the_wsdl_is_served(app) -> None:  # type: ignore[no-untyped-def]
    pending = [ENDPOINT_URL + "?wsdl"]
    seen: set[str] = set()
    while pending:
        url = pending.pop()
        if url in seen:
            continue
        seen.add(url)
        reply = call(app, method="GET", query=url.split("?", 1)[1])
        assert reply.status == 200, url
        tree = etree.fromstring(reply.body)
        for ref in tree.iter(*SCHEMA_REFS):
            location = ref.get("schemaLocation")
            assert location.startswith(ENDPOINT_URL + "?xsd="), location
            pending.append(location)
    assert len(seen) >= 6  # the WSDL, XDS.b, XDSI.b, rs, rim, lcm, query, xml.xsd
    reply = call(app, method="GET", query="xsd=ebRS/rim.xsd")
    path = WSDL_DIR / "schema" / "ebRS" / "rim.xsd"
    assert etree.tostring(etree.fromstring(reply.body), method="c14n2") == etree.tostring(
        _as_served(path, etree.fromstring(reply.body)), method="c14n2"
    )


@pytest.mark.parametrize(
    "value",
    [
        "../wsdl/XDS-I.b_ImagingDocumentSource.wsdl",
        "../../setup.cfg",
        "/etc/passwd",
        "IHE/../../wsdl/XDS-I.b_ImagingDocumentSource.wsdl",
        "..%2F..%2Fsetup.cfg",
        "IHE\\..\\..\\setup.cfg",
        "IHE",
        "",
        "nonexistent.xsd",
    ],
)
def test_schema_path_traversal_is_refused(app, value: str) -> None:  # type: ignore[no-untyped-def]
    reply = call(app, method="GET", query="xsd=" + value)
    assert reply.status == 404
    assert b"[xdsi]" not in reply.body and b"root:" not in reply.body


def test_urls_follow_the_host_header(app) -> None:  # type: ignore[no-untyped-def]
    reply = call(app, method="GET", query="wsdl", extra={"HTTP_HOST": "pacs.example.org:8443"})
    assert b'location="http://pacs.example.org:8443/xdsi/ImagingDocumentSource"' in reply.body
    bad = call(app, method="GET", query="wsdl", extra={"HTTP_HOST": 'x"/><evil'})
    assert b"evil" not in bad.body


def test_demo_without_samples_says_so(monkeypatch, settings, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from xdsi.cli import serve

    monkeypatch.setattr(serve, "SAMPLES_DIR", tmp_path / "no-samples")
    args = argparse.Namespace(demo=True, host=None, port=None, threads=None, data_dir=None)
    assert serve.run(args, settings) == 2
    assert "samples" in capsys.readouterr().err
