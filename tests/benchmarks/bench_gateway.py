"""Gateway-mode benchmark (not collected by pytest): ``python -m tests.benchmarks.bench_gateway``.

A 400-instance CT study (:func:`tests.benchmarks.studygen.generate_ct_study`, about 210 MB) is
loaded into a real Orthanc (with its DICOMweb plugin).  In the same run, over loopback sockets,
one whole-study request each:

* Orthanc's own WADO-RS retrieve of the study (``GET /dicom-web/studies/{uid}``);
* ``xdsi serve`` from its own store (the study imported first);
* ``xdsi serve --pacs`` (gateway mode, C-GET, then C-MOVE), first cold (fetched from Orthanc),
  then again from its cache.

For each: MB/s of the response body and time to first byte (first body chunk; for RAD-69 that is
the start of the MTOM package, sent once the first instance is available).  Transfers from a store
or the cache take a few tenths of a second, so those (and Orthanc's) are repeated ``--rounds``
times and the median round is reported; each cold retrieval (``--cold-rounds`` per method) has a
server of its own with an empty cache.  The xdsi servers run as child processes; their peak RSS
is reported.  Figures are printed, never asserted.  Issue 7's goals: cold ≥ 0.5× Orthanc's
WADO-RS, cached within 10 % of serving from our own store.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from tests.benchmarks.harness import memory_mb, prepare_study, xdsi_server
from tests.peers.orthanc import DICOMWEB_PLUGIN, running_orthanc
from tests.soap.support import envelope, request_element

HEADERS = {"Content-Type": "application/soap+xml; charset=utf-8"}
WADO_RS_ACCEPT = 'multipart/related; type="application/dicom"'


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


Figures = tuple[int, float, float]


def median_of(rounds: int, measure: Callable[[], Figures]) -> Figures:
    """The round of ``measure`` with the median total time."""
    results = sorted((measure() for _ in range(rounds)), key=lambda r: r[2])
    return results[len(results) // 2]


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
def served(data_dir: Path, *options: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """:func:`~tests.benchmarks.harness.xdsi_server`; yields its endpoint and prints its peak
    RSS at the end."""
    with xdsi_server(data_dir, *options, env=env) as server:
        try:
            yield server.url
        finally:
            peak = memory_mb(server.pid)["VmHWM"]
            print(f"{'':<34} server peak RSS {peak:.0f} MB", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=5, help="repeats of the warm transfers")
    parser.add_argument("--cold-rounds", type=int, default=3, help="cold retrievals per method")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        prepared = prepare_study(tmp, args.instances)
        files, local = prepared.files, prepared.data_dir
        study = prepared.docs[0].study
        whole = envelope(request_element(prepared.docs, [prepared.syntax]))
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
            wado = median_of(
                args.rounds,
                lambda: timed_get(
                    "GET",
                    f"{orthanc.url}/dicom-web/studies/{study}",
                    headers={"Accept": WADO_RS_ACCEPT},
                ),
            )
            orthanc_rate = report("Orthanc WADO-RS", wado)
            with served(local) as url:
                own = median_of(
                    args.rounds, lambda: timed_get("POST", url, data=whole, headers=HEADERS)
                )
                own_rate = report("xdsi, own store", own)
            pacs = f"{orthanc.aet}@127.0.0.1:{orthanc.dicom_port}"
            for method in ("c-get", "c-move"):
                env = {"XDSI_PACS_RETRIEVE": method, "XDSI_DICOM_PORT": str(move_port)}
                colds: list[Figures] = []
                for n in range(args.cold_rounds):  # each with a new server and an empty cache
                    with served(tmp / f"gateway-{method}-{n}", "--pacs", pacs, env=env) as url:
                        colds.append(timed_get("POST", url, data=whole, headers=HEADERS))
                        report(f"xdsi gateway {method}, cold #{n + 1}", colds[-1])
                        if n + 1 < args.cold_rounds:
                            continue
                        cached = report(
                            f"xdsi gateway {method}, cached",
                            median_of(
                                args.rounds,
                                lambda: timed_get("POST", url, data=whole, headers=HEADERS),
                            ),
                        )
                colds.sort(key=lambda r: r[2])
                cold = report(f"xdsi gateway {method}, cold median", colds[len(colds) // 2])
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
