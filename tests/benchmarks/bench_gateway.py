"""Gateway-mode benchmark (not collected by pytest): ``python -m tests.benchmarks.bench_gateway``.

A 400-instance CT study (:func:`tests.benchmarks.studygen.generate_ct_study`, about 210 MB) is
loaded into a real Orthanc (with its DICOMweb plugin).  In the same run, over loopback sockets,
one whole-study request each:

* Orthanc's own WADO-RS retrieve of the study (``GET /dicom-web/studies/{uid}``);
* ``xdsi serve`` from its own store (the study imported first);
* ``xdsi serve --pacs`` (gateway mode, C-GET, then C-MOVE), first cold (fetched from Orthanc),
  then again from its cache.

For each: MB/s of the response body and time to first byte (first body chunk; for RAD-69 that is
the start of the MTOM package, sent once the first instance is available).  The xdsi servers run
as child processes; their peak RSS is reported.  Figures are printed, never asserted.  Issue 7's
goals: cold ≥ 0.5× Orthanc's WADO-RS, cached within 10 % of serving from our own store.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pydicom
import requests

from tests.benchmarks.studygen import generate_ct_study
from tests.peers.orthanc import DICOMWEB_PLUGIN, running_orthanc
from tests.soap.support import Doc, envelope, request_element

HEADERS = {"Content-Type": "application/soap+xml; charset=utf-8"}
WADO_RS_ACCEPT = 'multipart/related; type="application/dicom"'
REPO = Path(__file__).resolve().parents[2]


def timed_get(method: str, url: str, **kwargs: object) -> tuple[int, float, float]:
    """(bytes, seconds to first body chunk, seconds in all) of one streamed request."""
    start = time.perf_counter()
    first = 0.0
    received = 0
    with requests.request(method, url, stream=True, timeout=900, **kwargs) as r:  # type: ignore[arg-type]
        r.raise_for_status()
        for chunk in r.iter_content(1 << 20):
            if not received:
                first = time.perf_counter() - start
            received += len(chunk)
    return received, first, time.perf_counter() - start


def report(label: str, figures: tuple[int, float, float]) -> float:
    received, first, elapsed = figures
    rate = received / 1e6 / elapsed
    print(
        f"{label:<34} {received / 1e6:7.1f} MB in {elapsed:6.2f} s = {rate:6.1f} MB/s, "
        f"first byte after {first * 1e3:7.1f} ms",
        flush=True,
    )
    return rate


@contextmanager
def xdsi_server(data_dir: Path, *options: str) -> Iterator[str]:
    """``xdsi serve`` in a child process; yields its endpoint, prints its peak RSS at the end."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    base = [sys.executable, "-m", "xdsi", "--data-dir", str(data_dir), "serve"]
    server = subprocess.Popen(
        [*base, "--port", "0", "--host", "127.0.0.1", *options],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert server.stdout is not None
        yield server.stdout.readline().split(" at ", 1)[1].split(" ", 1)[0]
    finally:
        server.send_signal(signal.SIGINT)
        _, _, usage = os.wait4(server.pid, 0)
        print(f"{'':<34} server peak RSS {usage.ru_maxrss / 1024:.0f} MB", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=400)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        files = generate_ct_study(tmp / "study", n=args.instances)
        docs = []
        for path in files:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            docs.append(Doc(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID))
        study = docs[0].study
        syntax = str(pydicom.dcmread(files[0], stop_before_pixels=True).file_meta.TransferSyntaxUID)
        whole = envelope(request_element(docs, [syntax]))
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        local = tmp / "local"
        subprocess.run(
            [sys.executable, "-m", "xdsi", "--data-dir", str(local), "import", str(tmp / "study")],
            check=True,
            capture_output=True,
            env=env,
        )
        move_port = _free_port()
        modalities = {"XDSI": ("XDSI", "127.0.0.1", move_port)}
        with running_orthanc(tmp / "orthanc", modalities, plugins=[DICOMWEB_PLUGIN]) as orthanc:
            session = requests.Session()
            for path in files:
                session.post(
                    f"{orthanc.url}/instances",
                    data=path.read_bytes(),
                    headers={"Content-Type": "application/dicom"},
                    timeout=60,
                ).raise_for_status()
            print(f"{len(files)} instances, {sum(p.stat().st_size for p in files) / 1e6:.1f} MB")
            wado = timed_get(
                "GET",
                f"{orthanc.url}/dicom-web/studies/{study}",
                headers={"Accept": WADO_RS_ACCEPT},
            )
            orthanc_rate = report("Orthanc WADO-RS", wado)
            with xdsi_server(local) as url:
                own = timed_get("POST", url, data=whole, headers=HEADERS)
                own_rate = report("xdsi, own store", own)
            pacs = f"{orthanc.aet}@127.0.0.1:{orthanc.dicom_port}"
            for method in ("c-get", "c-move"):
                os.environ["XDSI_PACS_RETRIEVE"] = method
                os.environ["XDSI_DICOM_PORT"] = str(move_port)
                try:
                    with xdsi_server(tmp / f"gateway-{method}", "--pacs", pacs) as url:
                        cold = report(
                            f"xdsi gateway {method}, cold",
                            timed_get("POST", url, data=whole, headers=HEADERS),
                        )
                        cached = report(
                            f"xdsi gateway {method}, cached",
                            timed_get("POST", url, data=whole, headers=HEADERS),
                        )
                finally:
                    del os.environ["XDSI_PACS_RETRIEVE"], os.environ["XDSI_DICOM_PORT"]
                print(
                    f"{'':<34} cold = {cold / orthanc_rate:.2f}x Orthanc WADO-RS (goal >= 0.5), "
                    f"cached = {cached / own_rate:.2f}x own store (goal >= 0.9)",
                    flush=True,
                )
    return 0


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


if __name__ == "__main__":
    sys.exit(main())
