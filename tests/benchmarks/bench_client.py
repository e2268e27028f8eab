"""Client overhead benchmark (not collected): ``python -m tests.benchmarks.bench_client``.

What the requester itself adds to a one-document exchange (``xdsi.client``; issue 5's latency
goal counts it): one 512x512 CT (``studygen``) rendered to a ~30 KB JPEG by ``xdsi serve`` in its
own process on loopback, one kept ``requests.Session``, the variants interleaved, medians of
``--runs``:

1. over HTTP: the same POST with bare ``requests`` (body read into memory) — the floor of any
   requests-based client — against ``retrieve_rendered`` into a new directory each time
   (envelope, streamed MTOM reading, file written and renamed), on the disk and, where
   ``/dev/shm`` is a tmpfs, there (the filesystem's share varies most on a busy machine);
2. without the network: building the request envelope; reading a recorded response
   (``read_response``: MIME framing and headers, root part, file) into a new directory; and
   requests' environment lookup for one request (``Session.merge_environment_settings``, run by
   every ``Session.request``) against :func:`xdsi.client.environ.send_settings`; and a RAD-69
   response of 400 small parts (``tests.client.messages``), where the per-part work counts.  The
   one-document reading is timed twice: into directories on the disk (as ``retrieve_rendered``
   writes) and, where ``/dev/shm`` is a tmpfs, there — the client's CPU without the
   filesystem's work (the 400 parts are read there too).

Figures vary by ±30 % on the loaded 2-core project machine; they are printed, never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pydicom
import requests

from tests.benchmarks.harness import import_into, xdsi_server
from tests.benchmarks.studygen import generate_ct_study
from tests.client.messages import Doc, multipart
from tests.client.messages import content_type as many_type
from tests.client.messages import envelope as many_envelope
from tests.transactions.rendered_data import REPO_ID
from xdsi import ns
from xdsi.client.environ import send_settings
from xdsi.client.receive import read_response
from xdsi.client.rendered import (
    RenderedParameters,
    _RenderedReader,
    envelope,
    request_element,
    retrieve_rendered,
)
from xdsi.model import DocumentRequest, Status

PARTS = 400
"""Parts of the many-document RAD-69 response read without the network."""
SHM = Path("/dev/shm")
"""A tmpfs, where the response reading is timed once more without the disk filesystem."""


def medians_us(actions: dict[str, Callable[[], object]], runs: int) -> dict[str, float]:
    """Median microseconds of each action, run interleaved ``runs`` times after a warm-up."""
    for action in actions.values():
        action()
    times: dict[str, list[float]] = {name: [] for name in actions}
    for _ in range(runs):
        for name, action in actions.items():
            start = time.perf_counter()
            action()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) * 1e6 for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-client-")))
        memory = None
        if SHM.is_dir():
            memory = Path(stack.enter_context(tempfile.TemporaryDirectory(dir=SHM)))
        (path,) = generate_ct_study(root / "study", 1, series=1)
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        docs = [DocumentRequest(
            str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID), REPO_ID
        )]  # fmt: skip
        jpeg = RenderedParameters()
        import_into(root / "served", root / "study")
        disk = (root / "out" / str(n) for n in itertools.count())
        shm = None if memory is None else (memory / str(n) for n in itertools.count())
        with xdsi_server(root / "served") as server, requests.Session() as session:
            body = envelope(request_element(docs, jpeg), server.url)
            headers = {"Content-Type": f'{ns.MEDIA_SOAP12}; action="{ns.ACTION_RENDERED}"'}
            recorded = session.post(server.url, data=body, headers=headers)
            content_type, response = recorded.headers["Content-Type"], recorded.content

            def bare() -> None:
                session.post(server.url, data=body, headers=headers).content  # noqa: B018

            def client(dirs: Iterator[Path]) -> Callable[[], None]:
                def action() -> None:
                    result = retrieve_rendered(server.url, docs, jpeg, next(dirs), session=session)
                    assert result.result.status is Status.SUCCESS

                return action

            over_http = {"bare": bare, "client": client(disk)}
            if shm is not None:
                over_http["client_shm"] = client(shm)
            http = medians_us(over_http, args.runs)

        def build() -> None:
            envelope(request_element(docs, jpeg), server.url)

        def read(dirs: Iterator[Path]) -> Callable[[], None]:
            def action() -> None:
                out = next(dirs)
                out.mkdir(parents=True)
                read_response(content_type, [response], out, read=_RenderedReader())

            return action

        offline = {"build": build, "read": read(disk)}
        if shm is not None:
            offline["read_shm"] = read(shm)
        many = [
            Doc(f"1.2.3.{i + 1}", b"\r\nxy" * 300, f"{i}.1.2.3@{ns.XDS_CID_DOMAIN}")
            for i in range(PARTS)
        ]
        many_body = multipart(many_envelope(many), many)
        many_chunks = [many_body[i : i + 65536] for i in range(0, len(many_body), 65536)]

        def read_many() -> None:
            out = next(shm or disk)
            out.mkdir(parents=True)
            read_response(many_type(), many_chunks, out)

        offline["requests_env"] = lambda: session.merge_environment_settings(
            server.url, {}, True, None, None
        )
        offline["cached_env"] = lambda: send_settings(session, server.url)
        alone = medians_us(offline, args.runs * 5)
        alone |= medians_us({"many": read_many}, max(5, args.runs // 20))

    print(f"one 512x512 CT -> image/jpeg ({len(response)} bytes MTOM), median of {args.runs}:")
    print(f"  bare requests POST, body in memory   {http['bare'] / 1000:7.2f} ms")
    for key, label in (("client", "new dir"), ("client_shm", "new dir on tmpfs")):
        if key in http:
            extra = (http[key] - http["bare"]) / 1000
            print(f"  xdsi retrieve_rendered, {label:17s}{http[key] / 1000:7.2f} ms"
                  f"  ({extra:+.2f} ms)")  # fmt: skip
    print(f"client work without the network, median of {args.runs * 5}:")
    print(f"  request envelope built               {alone['build']:7.0f} us")
    print(f"  response read into a new dir         {alone['read']:7.0f} us")
    if "read_shm" in alone:
        print(f"  the same, directories on tmpfs       {alone['read_shm']:7.0f} us")
    print(f"  requests' environment lookup         {alone['requests_env']:7.0f} us"
          f"  (xdsi.client.environ cache: {alone['cached_env']:.0f} us)")  # fmt: skip
    where = "tmpfs" if "read_shm" in alone else "disk"
    print(f"  RAD-69 response of {PARTS} 1.2 kB parts   {alone['many'] / 1000:7.1f} ms"
          f"  (read, {where})")  # fmt: skip


if __name__ == "__main__":
    main()
