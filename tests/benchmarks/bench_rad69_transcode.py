"""RAD-69 with transcoding (not collected): ``python -m tests.benchmarks.bench_rad69_transcode``.

A CT study (:func:`tests.benchmarks.studygen.generate_ct_study`: 400 × 512² slices, Explicit VR
LE, about 210 MB) is imported into a fresh store and served by ``xdsi serve`` on a free loopback
port, once with ``transcode_workers = 1`` and once with 2.  The whole study is requested in one
RAD-69 message listing only JPEG 2000 lossless (``.4.90``), then only JPEG-LS lossless
(``.4.80``), so that every document is transcoded.  Measured over the socket:

* time to first document: from sending the request to the first byte of the first document part
  (the envelope is written before it, after every document's preflight and the first
  ``transcode_window`` transcodes); for repeated runs also the best repeated figure, where the
  server remembers the preflight results;
* instances/s and MB/s (bytes received, all parts) for the whole response;
* the server's peak memory, sampled every 50 ms from ``/proc``: resident size (RSS) of the
  serving process alone; RSS of it and its worker processes added up (pages shared between them
  counted once per process); and their proportional set size (PSS, shared pages divided among
  the processes that share them), the fair figure for the whole.

One warm-up request of a few documents precedes the timed ones; with ``--repeat N`` each
request is made N times and the fastest run is reported (on a shared machine the slower runs
measure the other load).  Figures are reported, never asserted; on the 2-core project machine
anything else running shifts them (docs/performance.md).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from tests.benchmarks.harness import prepare_study, xdsi_server
from tests.soap.support import envelope, request_element
from xdsi import ns

TARGETS = {
    "JPEG 2000 lossless .4.90": ns.TS_JPEG2000_LOSSLESS,
    "JPEG-LS .4.80": ns.TS_JPEG_LS_LOSSLESS,
}
FIRST_PART_MARK = f"Content-Type: {ns.MEDIA_DICOM}".encode()


@dataclass(frozen=True)
class Run:
    documents: int
    first_document_s: float
    total_s: float
    received: int


def _memory_kib(pid: int, path: str, key: str) -> int:
    try:
        with open(f"/proc/{pid}/{path}", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _rss_kib(pid: int) -> int:
    return _memory_kib(pid, "status", "VmRSS:")


def _pss_kib(pid: int) -> int:
    return _memory_kib(pid, "smaps_rollup", "Pss:")


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as fh:
                found += [int(c) for c in fh.read().split()]
    except OSError:
        pass
    return found


class MemorySampler(threading.Thread):
    """Peak RSS of a process, alone and with its child processes, and their peak PSS."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_main = 0
        self.peak_total = 0
        self.peak_pss = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(0.05):
            pids = [self.pid, *_children(self.pid)]
            self.peak_main = max(self.peak_main, _rss_kib(self.pid))
            self.peak_total = max(self.peak_total, sum(_rss_kib(p) for p in pids))
            self.peak_pss = max(self.peak_pss, sum(_pss_kib(p) for p in pids))

    def stop(self) -> None:
        self._halt.set()
        self.join()


def retrieve(url: str, body: bytes) -> Run:
    """POST ``body`` and read the response to its end, timing the first document part."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)
    start = time.perf_counter()
    conn.request("POST", parts.path, body, {"Content-Type": f"{ns.MEDIA_SOAP12}; charset=utf-8"})
    response = conn.getresponse()
    if response.status != 200:
        raise SystemExit(f"HTTP {response.status}: {response.read()[:500]!r}")
    head = b""
    first = None
    received = 0
    while chunk := response.read1(1 << 20):
        received += len(chunk)
        if first is None:
            head += chunk
            mark = head.find(FIRST_PART_MARK)
            if mark >= 0 and head.find(b"\r\n\r\n", mark) >= 0:
                first = time.perf_counter() - start
                if ns.STATUS_SUCCESS.encode() not in head[:mark]:
                    raise SystemExit(f"the response is not a Success: {head[:mark][-2000:]!r}")
                documents = head[:mark].count(b"DocumentResponse>") // 2
                head = b""
    total = time.perf_counter() - start
    conn.close()
    if first is None:
        raise SystemExit("no document in the response")
    return Run(documents, first, total, received)


def repeated(runs: list[Run]) -> str:
    """Time to first document of the repeated runs, whose preflight results are remembered."""
    if len(runs) < 2:
        return ""
    return f" (repeated: {min(r.first_document_s for r in runs[1:]) * 1000:.0f} ms)"


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--instances", type=int, default=400)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=1, help="runs per cell; the fastest counts")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        study = prepare_study(Path(tmp), args.instances)
        docs, data_dir, stored = study.docs, study.data_dir, study.total_bytes
        print(f"{len(docs)} CT instances, {stored / 1e6:.0f} MB stored as Explicit VR LE; "
              f"load average before: {os.getloadavg()[0]:.2f}\n")
        print("| target | workers | instances/s | MB/s received | MB received | "
              "first document | peak RSS server / + workers | peak PSS all |")
        print("|---|---|---|---|---|---|---|---|")
        for workers in args.workers:
            with contextlib.ExitStack() as stack:
                server = stack.enter_context(
                    xdsi_server(data_dir, env={"XDSI_TRANSCODE_WORKERS": str(workers)})
                )
                url = server.url
                sampler = MemorySampler(server.pid)
                sampler.start()
                stack.callback(sampler.stop)
                for label, ts in TARGETS.items():
                    retrieve(url, envelope(request_element(docs[:4], [ts])))  # warm-up
                    runs = [
                        retrieve(url, envelope(request_element(docs, [ts])))
                        for _ in range(args.repeat)
                    ]
                    run = min(runs, key=lambda r: r.total_s)
                    if run.documents != len(docs):
                        raise SystemExit(f"{run.documents} of {len(docs)} documents returned")
                    print(f"| {label} | {workers} | {len(docs) / run.total_s:.1f} | "
                          f"{run.received / 1e6 / run.total_s:.1f} | {run.received / 1e6:.1f} | "
                          f"{runs[0].first_document_s * 1000:.0f} ms"
                          f"{repeated(runs)} | "
                          f"{sampler.peak_main / 1024:.0f} / {sampler.peak_total / 1024:.0f} MB | "
                          f"{sampler.peak_pss / 1024:.0f} MB |",
                          flush=True)
        print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
