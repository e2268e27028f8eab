"""Golden envelopes of ``samples/soap/``: load a request, answer it, canonicalise the reply.

Regenerate the responses after an intended change (then review the diff)::

    python -m tests.soap.golden
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from lxml import etree

from tests.soap.support import GOLDEN, NSMAP, Reply, call

REQUEST_SUFFIXES = (".xml", ".mime")


def requests() -> list[Path]:
    return sorted(p for p in GOLDEN.glob("request-*") if p.suffix in REQUEST_SUFFIXES)


def response_path(request: Path) -> Path:
    return request.with_name(request.stem.replace("request-", "response-", 1) + ".xml")


def load(request: Path) -> tuple[str, bytes]:
    """(Content-Type, body): ``.mime`` files start with their Content-Type header line."""
    data = request.read_bytes()
    if request.suffix == ".mime":
        head, _, body = data.partition(b"\r\n\r\n")
        return head.decode().split(":", 1)[1].strip(), body
    return "application/soap+xml; charset=utf-8", data


def answer(app, request: Path) -> Reply:  # type: ignore[no-untyped-def]
    content_type, body = load(request)
    return call(app, body, content_type=content_type)


def normalised(envelope: etree._Element) -> etree._Element:
    """A copy with generated values (the reply's own MessageID) replaced by a placeholder."""
    copy = etree.fromstring(etree.tostring(envelope))
    for mid in copy.iterfind("env:Header/wsa:MessageID", NSMAP):
        mid.text = "urn:uuid:00000000-0000-0000-0000-000000000000"
    return copy


def main() -> int:
    from xdsi.config import load_settings
    from xdsi.soap import make_app
    from xdsi.store import open_store

    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(environ={}, data_dir=Path(tmp))
        store = open_store(settings)
        try:
            for path in sorted((GOLDEN.parent / "dicom").rglob("*.dcm")):
                store.put(path)
            app = make_app(settings, store)
            for request in requests():
                reply = answer(app, request)
                tree = normalised(reply.xml())
                etree.indent(tree, space="  ")
                data = etree.tostring(tree, xml_declaration=True, encoding="UTF-8") + b"\n"
                response_path(request).write_bytes(data)
                print(f"{request.name} -> {response_path(request).name} (HTTP {reply.status})")
        finally:
            store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
