"""RAD-69 side by side with its ceiling and a peer (not collected by pytest):
``python -m tests.benchmarks.bench_soap``.

Generates a CT study (:func:`tests.benchmarks.studygen.generate_ct_study`, 400 instances of
512x512, about 210 MB, 2 series), imports it into a fresh store and starts, each as a child
process on a free loopback port:

(a) ``xdsi serve``: RAD-69, stored syntax requested, MTOM streamed back;
(b) the bare WSGI app of :mod:`tests.benchmarks.bare_stream` under the same waitress set-up,
    streaming the same files as one ``multipart/related`` body (the ceiling);
(c) Orthanc (Debian ``orthanc`` + ``orthanc-dicomweb``) with the study uploaded: WADO-RS study
    retrieve, ``Accept: multipart/related; type="application/dicom"; transfer-syntax=*``
    (skipped with a note when either package is missing, or with ``--no-orthanc``).

Measured over real sockets, the targets taking turns in every round so that other load on the
machine hits them alike:

* the whole study in one request: MB/s and time to first byte (median of ``--rounds``);
* one-instance requests with 1 and 8 concurrent clients (each its own keep-alive connection):
  requests/s, p50 and p99 latency;
* each server's peak resident memory (``VmHWM`` of ``/proc/<pid>/status``), after the
  whole-study rounds and at the end;
* then a study ``--scale`` times larger (1,600 instances, about 840 MB) on fresh (a) and (b)
  servers: throughput and peak memory, which must not grow with the study.

Figures are reported (as Markdown tables for docs/performance.md), never asserted.  The client
runs on the same machine, so on a 2-core host it competes with the server for the CPU.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.benchmarks.harness import (
    ServerProcess,
    Streamed,
    Study,
    concurrent,
    cpu_seconds,
    median,
    memory_mb,
    new_session,
    prepare_study,
    stream,
    xdsi_server,
)
from tests.soap.support import envelope, request_element
from xdsi import ns

SOAP_HEADERS = {"Content-Type": f"{ns.MEDIA_SOAP12}; charset=utf-8"}
WADO_ACCEPT = {"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'}


@dataclass
class Target:
    """One server under test: how to fetch the whole study and how to fetch one instance."""

    name: str
    pid: int
    whole: Callable[[requests.Session], Streamed]
    single: Callable[[requests.Session, int], None]


def xdsi_target(server: ServerProcess, study: Study) -> Target:
    whole_body = envelope(request_element(study.docs, [study.syntax]))
    singles = [envelope(request_element([doc], [study.syntax])) for doc in study.docs]

    def whole(session: requests.Session) -> Streamed:
        return stream(session, "POST", server.url, data=whole_body, headers=SOAP_HEADERS)

    def single(session: requests.Session, i: int) -> None:
        reply = session.post(
            server.url, data=singles[i % len(singles)], headers=SOAP_HEADERS, timeout=60
        )
        if reply.status_code != 200 or ns.STATUS_SUCCESS.encode() not in reply.content:
            raise RuntimeError(f"xdsi one-document request failed: HTTP {reply.status_code}")

    return Target("xdsi RAD-69", server.pid, whole, single)


def bare_target(server: ServerProcess, study: Study) -> Target:
    def whole(session: requests.Session) -> Streamed:
        return stream(session, "GET", server.url)

    def single(session: requests.Session, i: int) -> None:
        reply = session.get(server.url, params={"instance": i % len(study.docs)}, timeout=60)
        if reply.status_code != 200:
            raise RuntimeError(f"bare one-file request failed: HTTP {reply.status_code}")

    return Target("bare WSGI stream", server.pid, whole, single)


def orthanc_target(url: str, pid: int, study: Study) -> Target:
    study_uid = study.docs[0].study
    paths = [
        f"{url}/dicom-web/studies/{d.study}/series/{d.series}/instances/{d.sop}" for d in study.docs
    ]

    def whole(session: requests.Session) -> Streamed:
        return stream(session, "GET", f"{url}/dicom-web/studies/{study_uid}", headers=WADO_ACCEPT)

    def single(session: requests.Session, i: int) -> None:
        reply = session.get(paths[i % len(paths)], headers=WADO_ACCEPT, timeout=60)
        if reply.status_code != 200:
            raise RuntimeError(f"Orthanc WADO-RS instance failed: HTTP {reply.status_code}")

    return Target("Orthanc WADO-RS", pid, whole, single)


def orthanc_available() -> str | None:
    """Why Orthanc cannot be benchmarked here, or None if it can."""
    from tests.peers.orthanc import DICOMWEB_PLUGIN

    if not (shutil.which("Orthanc") or shutil.which("Orthanc", path="/usr/sbin")):
        return "Orthanc is not installed (apt-get install orthanc orthanc-dicomweb)"
    if not Path(DICOMWEB_PLUGIN).exists():
        return "Orthanc's DICOMweb plugin is not installed (apt-get install orthanc-dicomweb)"
    return None


def start_orthanc(stack: ExitStack, workdir: Path, study: Study) -> Target:
    from tests.peers.orthanc import DICOMWEB_PLUGIN, running_orthanc

    orthanc = stack.enter_context(running_orthanc(workdir, plugins=[DICOMWEB_PLUGIN]))
    for path in study.files:
        orthanc.upload(path)
    return orthanc_target(orthanc.url, orthanc.process.pid, study)


@dataclass(frozen=True)
class Round:
    """One whole-study response: as the client saw it, and the server's CPU time spent on it."""

    streamed: Streamed
    server_cpu: float


def whole_study_rounds(targets: list[Target], study: Study, rounds: int) -> dict[str, list[Round]]:
    """One warm-up, then ``rounds`` rounds in which every target fetches the whole study once,
    in an order that rotates from round to round."""
    results: dict[str, list[Round]] = {t.name: [] for t in targets}
    with new_session() as session:
        for target in targets:
            target.whole(session)
        for r in range(rounds):
            for target in targets[r % len(targets) :] + targets[: r % len(targets)]:
                before = cpu_seconds(target.pid)
                result = target.whole(session)
                cpu = cpu_seconds(target.pid) - before
                if result.received < study.total_bytes:
                    raise RuntimeError(f"{target.name}: short response ({result.received} B)")
                results[target.name].append(Round(result, cpu))
    return results


def print_whole(title: str, study: Study, results: dict[str, list[Round]]) -> None:
    print(f"\n{title}: {len(study.docs)} instances, {study.total_bytes / 1e6:.0f} MB of files")
    print(
        "| server | MB/s (median) | MB/s (all rounds) | time to first byte | MB/s after it "
        "| server CPU per response |"
    )
    print("|---|---|---|---|---|---|")
    for name, rounds in results.items():
        runs = [r.streamed for r in rounds]
        rates = ", ".join(f"{r.mb_per_s:.0f}" for r in runs)
        ttfb = median([r.first_byte for r in runs]) * 1e3
        after = median([r.streaming_mb_per_s for r in runs])
        cpu = median([r.server_cpu for r in rounds]) * 1e3
        print(
            f"| {name} | {median([r.mb_per_s for r in runs]):.0f} | {rates} | {ttfb:.0f} ms "
            f"| {after:.0f} | {cpu:.0f} ms |"
        )
    rates = {
        name: median([r.streamed.mb_per_s for r in rounds]) for name, rounds in results.items()
    }
    ours = rates.get("xdsi RAD-69")
    for other in ("bare WSGI stream", "Orthanc WADO-RS"):
        if ours and other in rates:
            print(f"xdsi / {other}: {ours / rates[other]:.2f}x")


def single_rounds(targets: list[Target], requests_total: int) -> None:
    print("\nOne-instance requests")
    print("| server | clients | requests/s | p50 | p99 |")
    print("|---|---|---|---|---|")
    for clients in (1, 8):
        loads = {}
        # Rotate the order for the 8-client run as well, so neither run always goes first.
        order = targets if clients == 1 else targets[1:] + targets[:1]
        for target in order:
            # at least one request per client (--single below the client count)
            per_client = max(1, requests_total // clients)
            loads[target.name] = concurrent(target.single, clients, per_client)
        for target in targets:
            load = loads[target.name]
            print(
                f"| {target.name} | {clients} | {load.per_second:.0f} | "
                f"{load.percentile(50) * 1e3:.1f} ms | {load.percentile(99) * 1e3:.1f} ms |"
            )


def print_memory(title: str, targets: list[Target], idle: dict[str, float]) -> None:
    print(f"\n{title}")
    print("| server | RSS idle | peak RSS (VmHWM) |")
    print("|---|---|---|")
    for target in targets:
        peak = memory_mb(target.pid)["VmHWM"]
        print(f"| {target.name} | {idle[target.name]:.0f} MB | {peak:.0f} MB |")


def run_study(
    workdir: Path, instances: int, rounds: int, singles: int, with_orthanc: bool
) -> None:
    study = prepare_study(workdir, instances)
    with ExitStack() as stack:
        xdsi = stack.enter_context(xdsi_server(study.data_dir))
        bare = ServerProcess(
            "bare",
            [sys.executable, "-m", "tests.benchmarks.bare_stream", str(workdir / "study")],
        )
        stack.callback(bare.stop)
        targets = [xdsi_target(xdsi, study), bare_target(bare, study)]
        if with_orthanc:
            targets.append(start_orthanc(stack, workdir / "orthanc", study))
        idle = {t.name: memory_mb(t.pid)["VmRSS"] for t in targets}
        results = whole_study_rounds(targets, study, rounds)
        print_whole("Whole study in one request", study, results)
        print_memory("Memory after the whole-study rounds", targets, idle)
        if singles:
            single_rounds(targets, singles)
            print_memory("Memory at the end", targets, idle)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3, help="whole-study rounds")
    parser.add_argument(
        "--single", type=int, default=200, help="one-instance requests per client count"
    )
    parser.add_argument(
        "--scale", type=int, default=4, help="size factor of the second study (0: skip it)"
    )
    parser.add_argument("--no-orthanc", action="store_true", help="leave Orthanc out")
    args = parser.parse_args()
    why_not = "--no-orthanc" if args.no_orthanc else orthanc_available()
    if why_not:
        print(f"Orthanc left out: {why_not}")
    with tempfile.TemporaryDirectory(prefix="xdsi-bench-") as tmp:
        run_study(Path(tmp) / "base", args.instances, args.rounds, args.single, not why_not)
        shutil.rmtree(Path(tmp) / "base")
        if args.scale > 1:
            print(f"\n## {args.scale}x larger study (xdsi and the bare stream only)")
            run_study(Path(tmp) / "scaled", args.instances * args.scale, args.rounds, 0, False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
