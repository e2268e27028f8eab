"""RAD-69 endpoint benchmark (not collected by pytest): ``python -m tests.benchmarks.bench_soap``.

Generates a CT study (:func:`tests.benchmarks.studygen.generate_ct_study`, 400 instances of
512x512, about 210 MB), imports it into a fresh store, starts ``xdsi serve`` on a free loopback
port in a child process, and measures over a real socket:

* one RAD-69 request for the whole study, MTOM streamed back (``requests`` with ``stream=True``,
  parts read and discarded): MB/s;
* sequential one-document requests: requests/s;
* the server's peak resident memory (``os.wait4`` of the child), which must not grow with the
  study size because the MTOM writer streams each document from its file.

Figures are reported, never asserted.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pydicom
import requests

from tests.benchmarks.studygen import generate_ct_study
from tests.soap.support import Doc, envelope, request_element
from xdsi import ns

HEADERS = {"Content-Type": "application/soap+xml; charset=utf-8"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=400)
    parser.add_argument("--single", type=int, default=200, help="one-document requests")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "study"
        files = generate_ct_study(source, n=args.instances)
        docs = []
        for path in files:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            docs.append(Doc(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID))
        syntax = str(pydicom.dcmread(files[0], stop_before_pixels=True).file_meta.TransferSyntaxUID)
        total = sum(p.stat().st_size for p in files)
        data_dir = Path(tmp) / "store"
        base = [sys.executable, "-m", "xdsi", "--data-dir", str(data_dir)]
        subprocess.run([*base, "import", str(source)], check=True, capture_output=True)
        server = subprocess.Popen(
            [*base, "serve", "--port", "0", "--host", "127.0.0.1"],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None
            url = server.stdout.readline().split(" at ", 1)[1].split(" ", 1)[0]
            whole = envelope(request_element(docs, [syntax]))
            start = time.perf_counter()
            received = 0
            with requests.post(url, data=whole, headers=HEADERS, stream=True, timeout=600) as r:
                assert r.status_code == 200, r.status_code
                for chunk in r.iter_content(1 << 20):
                    received += len(chunk)
            elapsed = time.perf_counter() - start
            print(
                f"whole study: {len(docs)} documents, {total / 1e6:.1f} MB of files, "
                f"{received / 1e6:.1f} MB received in {elapsed:.2f} s "
                f"({received / 1e6 / elapsed:.0f} MB/s)"
            )
            session = requests.Session()
            start = time.perf_counter()
            for i in range(args.single):
                one = envelope(request_element([docs[i % len(docs)]], [syntax]))
                reply = session.post(url, data=one, headers=HEADERS, timeout=60)
                assert reply.status_code == 200 and ns.STATUS_SUCCESS.encode() in reply.content
            elapsed = time.perf_counter() - start
            print(
                f"single-document requests: {args.single} in {elapsed:.2f} s "
                f"({args.single / elapsed:.0f} requests/s, "
                f"{elapsed / args.single * 1e3:.1f} ms each)"
            )
        finally:
            server.send_signal(signal.SIGINT)
            _, _, usage = os.wait4(server.pid, 0)
            print(f"server peak RSS: {usage.ru_maxrss / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
