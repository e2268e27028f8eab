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
import statistics
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
    return middle([measure() for _ in range(rounds)])


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
            pacs = f"{orthanc.aet}@127.0.0.1:{orthanc.dicom_port}"

            def wado() -> Figures:
                return timed_get(
                    "GET",
                    f"{orthanc.url}/dicom-web/studies/{study}",
                    headers={"Accept": WADO_RS_ACCEPT},
                )

            def rad69(url: str) -> Figures:
                return timed_get("POST", url, data=whole, headers=HEADERS)

            # The own store's server runs throughout, so that its rounds can alternate with the
            # cached ones: other work on the machine then weighs on both alike.
            with served(local) as own_url:
                report("Orthanc WADO-RS", median_of(args.rounds, wado))
                report("xdsi, own store", median_of(args.rounds, lambda: rad69(own_url)))
                for method in ("c-get", "c-move"):
                    measure_gateway(args, method, tmp, pacs, move_port, wado, rad69, own_url)
    return 0


def measure_gateway(
    args: argparse.Namespace,
    method: str,
    tmp: Path,
    pacs: str,
    move_port: int,
    wado: Callable[[], Figures],
    rad69: Callable[[str], Figures],
    own_url: str,
) -> None:
    """Cold rounds (each right after an Orthanc WADO-RS round, each with a new server and an
    empty cache), then cached rounds alternating with rounds from the own store."""
    env = {"XDSI_PACS_RETRIEVE": method, "XDSI_DICOM_PORT": str(move_port)}
    ratios: list[float] = []
    own_rate = cached_rate = float("nan")
    for n in range(args.cold_rounds):
        orthanc = wado()
        with served(tmp / f"gateway-{method}-{n}", "--pacs", pacs, env=env) as url:
            cold = report(f"xdsi gateway {method}, cold #{n + 1}", rad69(url))
            ratios.append(cold / rate(orthanc))
            print(f"{'':<34} Orthanc WADO-RS just before: {rate(orthanc):.1f} MB/s", flush=True)
            if n + 1 < args.cold_rounds:
                continue
            own: list[Figures] = []
            cached: list[Figures] = []
            for _ in range(args.rounds):
                own.append(rad69(own_url))
                cached.append(rad69(url))
            own_rate = report("xdsi, own store (alternating)", middle(own))
            cached_rate = report(f"xdsi gateway {method}, cached", middle(cached))
    print(
        f"{'':<34} cold = {statistics.median(ratios):.2f}x Orthanc WADO-RS (median; goal >= 0.5), "
        f"cached = {cached_rate / own_rate:.2f}x own store (goal >= 0.9)",
        flush=True,
    )


def rate(figures: Figures) -> float:
    """MB/s of one transfer."""
    return figures[0] / 1e6 / figures[2]


def middle(rounds: list[Figures]) -> Figures:
    """The round with the median total time."""
    return sorted(rounds, key=lambda r: r[2])[len(rounds) // 2]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


if __name__ == "__main__":
    sys.exit(main())
