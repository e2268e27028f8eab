"""Retrieve Rendered benchmark (not collected): ``python -m tests.benchmarks.bench_rendered``.

All in one run, on 400 instances of the 512x512 CT ``693_UNCR.dcm`` (``studygen``) in a real
SQLite store served by waitress on loopback:

1. One instance to image/jpeg at its own size: median latency of a whole SOAP request to
   ``xdsi serve`` in its own process (``xdsi.client.rendered.retrieve_rendered`` over one kept
   session: envelope, HTTP, rendering, MTOM, file written — each run into a new directory, as a
   viewer fetching images writes new files: replacing an existing file costs ~1.3 ms more on ext4,
   which flushes the new data on a rename over an old file), of the transaction alone (also with a
   window not seen before, so that the display table a series shares is built first:
   :mod:`xdsi.imaging.words`), and of the bare pipeline — ``pydicom.dcmread`` of the file bytes,
   ``pixel_array``, Modality LUT, the file's window in numpy, Pillow JPEG q90 — which is the floor
   any renderer built on these libraries can reach.  The bare pipeline is timed twice: with
   glibc's default malloc settings, then (like the transaction, and like ``xdsi serve``) with
   :func:`xdsi.soap.server.tune_malloc`'s, under which its megabyte-sized float arrays are no
   longer mapped and unmapped for every image: about twice as fast.
2. 64x64 JPEG thumbnails of the 400 instances in one request: images per second over SOAP
   (the server renders in ``render_workers`` processes; the first request, in which the workers
   still import the rendering code, is reported apart from the median of ``--passes`` more),
   and of the bare pipeline on one thread.
3. Orthanc (``/usr/sbin/Orthanc``, when installed): ``GET /instances/{id}/rendered`` with
   ``Accept: image/jpeg`` for the same image (median latency), and its 64x64 thumbnails
   (``?width=64&height=64``), one request per instance, median of ``--passes`` passes.  Orthanc
   is started on loopback and stopped by PID.  Orthanc 1.10 gzips its rendered JPEGs when the
   client accepts gzip, as requests does by default: ~1.2 ms of its 3.7 ms for this image, for
   a 5 % smaller body.  So the comparison is made uncompressed (``Accept-Encoding: identity``),
   the same bytes on the wire as xdsi sends; the gzip figure is printed beside it.  xdsi's side
   of that comparison is the same client work: one ``requests`` POST of the rendered request,
   the body read into memory (its own client, parsing the MTOM package and writing the file,
   is measured in 1.; it is also timed writing into a tmpfs, ``/dev/shm``, where the disk's
   share, which varies most from run to run, is left out).

Goals (issue 5): single-image JPEG within 1.5x of the bare pipeline, faster than Orthanc.
Figures vary by ±30 % on the loaded 2-core project machine; they are printed, never asserted.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import requests
from PIL import Image
from pydicom.pixels.processing import apply_modality_lut

from tests.benchmarks.bench_client import SHM
from tests.benchmarks.bench_transcode import _median_ms as median_ms
from tests.benchmarks.harness import import_into, xdsi_server
from tests.benchmarks.studygen import generate_ct_study
from tests.transactions.rendered_data import REPO_ID
from xdsi import ns
from xdsi.client.rendered import RenderedParameters, envelope, request_element, retrieve_rendered
from xdsi.config import load_settings
from xdsi.model import DocumentRequest, Status
from xdsi.soap.server import tune_malloc
from xdsi.store import open_store
from xdsi.transactions.rendered import retrieve_rendered_imaging_document_set
from xdsi.transactions.rendered_model import RenderedDocumentRequest, RetrieveRenderedRequest


def bare_jpeg(data: bytes, size: tuple[int, int] | None = None) -> bytes:
    """The bare pydicom + numpy + Pillow pipeline: decode, Modality LUT, the file's first
    window (PS3.3 C.11.2.1.2.1 LINEAR), optional BOX resize, JPEG q90."""
    ds = pydicom.dcmread(io.BytesIO(data))
    values = apply_modality_lut(ds.pixel_array, ds)
    center = float(ds.WindowCenter[0] if ds["WindowCenter"].VM > 1 else ds.WindowCenter)
    width = float(ds.WindowWidth[0] if ds["WindowWidth"].VM > 1 else ds.WindowWidth)
    scaled = ((values - (center - 0.5)) / (width - 1) + 0.5) * 255.0
    image = Image.fromarray(np.clip(scaled, 0, 255).astype(np.uint8), "L")
    if size is not None:
        image = image.resize(size, Image.Resampling.BOX)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


@dataclass(frozen=True)
class OrthancFigures:
    """Orthanc's rendered endpoint: uncompressed, and as gzip-accepting requests gets it."""

    latency_ms: float
    gzip_latency_ms: float
    thumbnails_per_s: float
    gzip_thumbnails_per_s: float


def orthanc_figures(
    paths: list[Path], runs: int, passes: int, workdir: Path
) -> OrthancFigures | None:
    """Figures of a throw-away Orthanc, or None when it is not installed."""
    if not (shutil.which("Orthanc") or shutil.which("Orthanc", path="/usr/sbin:/usr/local/sbin")):
        return None
    from tests.peers.orthanc import running_orthanc

    with running_orthanc(workdir) as orthanc, requests.Session() as session:
        ids = []
        for path in paths:
            answer = session.post(f"{orthanc.url}/instances", data=path.read_bytes(), timeout=60)
            answer.raise_for_status()
            ids.append(answer.json()["ID"])
        plain = {"Accept": "image/jpeg", "Accept-Encoding": "identity"}
        gzip = {"Accept": "image/jpeg"}  # requests adds "Accept-Encoding: gzip, deflate"

        def one(headers: dict[str, str]) -> None:
            reply = session.get(f"{orthanc.url}/instances/{ids[0]}/rendered", headers=headers)
            reply.raise_for_status()
            assert reply.content[:2] == b"\xff\xd8"
            assert reply.headers.get("Content-Encoding") == (None if headers is plain else "gzip")

        def thumbnails(headers: dict[str, str]) -> float:
            rates = []
            for _ in range(passes):
                start = time.perf_counter()
                for orthanc_id in ids:
                    reply = session.get(
                        f"{orthanc.url}/instances/{orthanc_id}/rendered?width=64&height=64",
                        headers=headers,
                    )
                    reply.raise_for_status()
                rates.append(len(ids) / (time.perf_counter() - start))
            return statistics.median(rates)

        return OrthancFigures(
            latency_ms=median_ms(lambda: one(plain), runs),
            gzip_latency_ms=median_ms(lambda: one(gzip), runs),
            thumbnails_per_s=thumbnails(plain),
            gzip_thumbnails_per_s=thumbnails(gzip),
        )


@contextmanager
def serving(paths: list[Path], data_dir: Path, workers: int) -> Iterator[str]:
    """``xdsi import`` the files, run ``xdsi serve`` (:func:`~tests.benchmarks.harness.xdsi_server`)
    with ``workers`` render workers, yield the endpoint URL."""
    import_into(data_dir, paths[0].parent)
    with xdsi_server(data_dir, env={"XDSI_RENDER_WORKERS": str(workers)}) as server:
        yield server.url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--instances", type=int, default=400)
    parser.add_argument("--workers", type=int, default=2, help="render_workers of the server")
    parser.add_argument("--passes", type=int, default=3, help="thumbnail passes (median)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-rendered-") as tmp:
        root = Path(tmp)
        paths = generate_ct_study(root / "study", args.instances, series=1)
        first = pydicom.dcmread(paths[0], stop_before_pixels=True)
        docs = []
        for path in paths:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            docs.append(DocumentRequest(
                str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID), REPO_ID
            ))  # fmt: skip
        data = paths[0].read_bytes()

        bare_ms = median_ms(lambda: bare_jpeg(data), args.runs)
        tune_malloc()  # what xdsi serve does; process-wide, from here on
        tuned_ms = median_ms(lambda: bare_jpeg(data), args.runs)
        settings = load_settings(None, environ={}, data_dir=root / "store")
        store = open_store(settings)
        for path in paths[:1]:
            store.put(path)
        single = RetrieveRenderedRequest((RenderedDocumentRequest(
            str(first.StudyInstanceUID), str(first.SeriesInstanceUID), str(first.SOPInstanceUID),
            content_types=("image/jpeg",),
        ),))  # fmt: skip

        def transaction() -> None:
            outcome = retrieve_rendered_imaging_document_set(single, store, settings)
            assert outcome.status is Status.SUCCESS
            b"".join(outcome.documents[0].payload.chunks())

        transaction_ms = median_ms(transaction, args.runs)
        windows = iter(range(1, 1 << 30))

        def new_table() -> None:  # a window not seen before: its word table is built first
            request = RetrieveRenderedRequest((dataclasses.replace(
                single.documents[0], window_center=str(40 + next(windows)), window_width="400"
            ),))  # fmt: skip
            outcome = retrieve_rendered_imaging_document_set(request, store, settings)
            assert outcome.status is Status.SUCCESS

        first_ms = median_ms(new_table, args.runs)
        store.close()

        out = root / "out"
        with serving(paths, root / "served", args.workers) as endpoint:
            jpeg = RenderedParameters()
            session = requests.Session()  # one client, as a viewer would be

            runs = iter(range(1 << 30))

            def over_soap() -> None:
                target = out / f"single-{next(runs)}"
                result = retrieve_rendered(endpoint, docs[:1], jpeg, target, session=session)
                assert result.result.status is Status.SUCCESS

            soap_ms = median_ms(over_soap, args.runs)
            shm_ms = None
            if SHM.is_dir():  # the same into a tmpfs: the client's work without the disk's
                with tempfile.TemporaryDirectory(prefix="bench-rendered-", dir=SHM) as memory:
                    out = Path(memory)
                    shm_ms = median_ms(over_soap, args.runs)
            envelope_bytes = envelope(request_element(docs[:1], jpeg), endpoint)

            def bare_post() -> None:  # the client work of the Orthanc measurement
                reply = session.post(
                    endpoint, data=envelope_bytes, headers={"Content-Type": ns.MEDIA_SOAP12}
                )
                reply.raise_for_status()
                assert b"\xff\xd8" in reply.content

            post_ms = median_ms(bare_post, args.runs)
            thumbs = RenderedParameters(rows="64", columns="64")
            rates = []
            for attempt in range(1 + args.passes):
                start = time.perf_counter()
                result = retrieve_rendered(
                    endpoint, docs, thumbs, out / f"thumbs-{attempt}", session=session
                ).result
                rates.append(len(result.documents) / (time.perf_counter() - start))
                assert result.status is Status.SUCCESS, result.errors[:3]
            cold_rate, soap_rate = rates[0], statistics.median(rates[1:])

        start = time.perf_counter()
        for path in paths:
            bare_jpeg(path.read_bytes(), (64, 64))
        bare_rate = len(paths) / (time.perf_counter() - start)
        orthanc = orthanc_figures(paths, args.runs, args.passes, root / "orthanc")

    print(f"512x512 CT -> image/jpeg, median of {args.runs}:")
    print(f"  bare pydicom+Pillow pipeline  {bare_ms:7.1f} ms  (glibc malloc defaults)")
    print(f"  bare, server malloc settings  {tuned_ms:7.1f} ms")
    print(f"  xdsi transaction (no HTTP)    {transaction_ms:7.1f} ms  (first image of a series, "
          f"its display table built: {first_ms:.1f} ms)")  # fmt: skip
    print(f"  xdsi over SOAP (loopback)     {soap_ms:7.1f} ms  ({soap_ms / bare_ms:.2f}x bare, "
          f"{soap_ms / tuned_ms:.2f}x bare with the server's malloc settings; xdsi client, "
          "file written)")  # fmt: skip
    if shm_ms is not None:
        print(f"  the same into tmpfs           {shm_ms:7.1f} ms  ({shm_ms / bare_ms:.2f}x bare, "
              f"{shm_ms / tuned_ms:.2f}x with the server's malloc settings)")  # fmt: skip
    print(f"  xdsi, requests POST           {post_ms:7.1f} ms  (body read into memory; "
          f"{post_ms / tuned_ms:.2f}x bare with the server's malloc settings)")  # fmt: skip
    if orthanc is not None:
        ratio = post_ms / orthanc.latency_ms
        print(f"  Orthanc /rendered, requests   {orthanc.latency_ms:7.1f} ms  (uncompressed; "
              f"xdsi {ratio:.2f}x) | gzip: {orthanc.gzip_latency_ms:.1f} ms")  # fmt: skip
    print(f"{args.instances} thumbnails 64x64 JPEG:")
    print(f"  bare pipeline, one thread     {bare_rate:7.0f} images/s (server malloc settings)")
    print(f"  xdsi, one SOAP request        {soap_rate:7.0f} images/s ({args.workers} workers; "
          f"first request {cold_rate:.0f}/s)")  # fmt: skip
    if orthanc is not None:
        print(f"  Orthanc, one GET each         {orthanc.thumbnails_per_s:7.0f} images/s "
              f"(uncompressed) | gzip: {orthanc.gzip_thumbnails_per_s:.0f}/s")  # fmt: skip
    else:
        print("  Orthanc not installed: not measured")


if __name__ == "__main__":
    main()
