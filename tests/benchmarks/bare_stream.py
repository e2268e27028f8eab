"""The ceiling for RAD-69 throughput: a bare WSGI app under the same waitress set-up as
``xdsi serve`` (:func:`xdsi.soap.server.create_server`, default settings), streaming the same
files as one ``multipart/related`` body.  No SOAP, no index, no checks: what is left is the
cost of the server and of reading the files.

``python -m tests.benchmarks.bare_stream DIR`` serves every ``*.dcm`` below ``DIR`` (sorted) on a
free loopback port and prints ``bare stream at <url>`` once it listens.  Any request gets all
files; ``?instance=N`` gets the N-th file alone (the counterpart of a one-document request).
"""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from xdsi.config import load_settings
from xdsi.soap.server import create_server
from xdsi.transactions.produce import CHUNK_SIZE

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment


def make_app(files: list[Path]) -> WSGIApplication:
    """The bare app: every request is answered with ``files`` (or one of them) as parts."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        environ["wsgi.input"].read()
        query = parse_qs(environ.get("QUERY_STRING", ""))
        chosen = [files[int(query["instance"][0]) % len(files)]] if "instance" in query else files
        boundary = uuid.uuid4().hex
        content_type = f'multipart/related; type="application/dicom"; boundary="{boundary}"'
        # Content-Length, as xdsi sends for documents of known size: waitress then neither
        # frames chunks nor closes the connection.
        length = sum(len(_header(boundary)) + path.stat().st_size for path in chosen)
        length += len(_closing(boundary))
        start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(length))])
        return _parts(chosen, boundary)

    return app


def _header(boundary: str) -> bytes:
    return f"\r\n--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode("ascii")


def _closing(boundary: str) -> bytes:
    return f"\r\n--{boundary}--\r\n".encode("ascii")


def _parts(files: list[Path], boundary: str) -> Iterator[bytes]:
    for path in files:
        yield _header(boundary)
        with path.open("rb") as fh:
            while chunk := fh.read(CHUNK_SIZE):
                yield chunk
    yield _closing(boundary)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    args = parser.parse_args()
    files = sorted(args.folder.rglob("*.dcm"))
    server = create_server(make_app(files), load_settings(None), host="127.0.0.1", port=0)
    print(f"bare stream at http://127.0.0.1:{server.effective_port}/ ({len(files)} files)")
    sys.stdout.flush()
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
