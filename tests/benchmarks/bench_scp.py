"""C-STORE intake benchmark (not collected by pytest): ``python -m tests.benchmarks.bench_scp``.

Generates a CT study (:func:`tests.benchmarks.studygen.generate_ct_study`: 400 instances of
512x512, about 210 MB), starts the C-STORE SCP (:func:`xdsi.intake.scp.serve`) over a fresh
SQLite store in a child process, and sends the study to it with DCMTK ``storescu`` (one
association, Explicit VR Little Endian, files unconverted).  Reported: instances/s and MB/s from
storescu's start to its exit, and the SCP process's peak resident memory (``os.wait4`` of that
child alone).  Figures are reported, never asserted: they vary with the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

AET = "XDSI_BENCH"
REPO = Path(__file__).resolve().parents[2]


def child(data_dir: Path, port: int) -> None:
    """Run the SCP until SIGTERM, then print the number of stored instances as JSON."""
    from xdsi.config import Settings
    from xdsi.intake.scp import serve
    from xdsi.store import open_store

    settings = Settings(data_dir=data_dir, ae_title=AET, dicom_port=port)
    store = open_store(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    scp = serve(settings, store, block=False)
    print("ready", flush=True)
    stop.wait()
    scp.stop()
    count = sum(1 for _ in store.iter_records())
    store.close()
    print(json.dumps({"stored": count}), flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=400, help="instances (default 400)")
    parser.add_argument("--child", nargs=2, metavar=("DATA_DIR", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), int(args.child[1]))
        return 0

    from tests.benchmarks.studygen import generate_ct_study
    from tests.peers.dcmtk import find_dcmtk

    storescu = find_dcmtk("storescu")
    if storescu is None:
        print("DCMTK storescu is needed (Debian package dcmtk)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="xdsi-bench-scp-") as tmp:
        source = Path(tmp) / "study"
        files = generate_ct_study(source, n=args.n)
        size_mb = sum(p.stat().st_size for p in files) / 1e6
        port = free_port()
        scp = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.benchmarks.bench_scp",
                "--child",
                f"{tmp}/data",
                str(port),
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert scp.stdout is not None
        if scp.stdout.readline().strip() != "ready":
            scp.kill()
            print("the SCP did not start", file=sys.stderr)
            return 1
        start = time.perf_counter()
        sent = subprocess.run(
            [storescu, "-aec", AET, "-xe", "-R", "+sd", "+r", "127.0.0.1", str(port), str(source)],
            capture_output=True,
            text=True,
        )
        elapsed = time.perf_counter() - start
        scp.send_signal(signal.SIGTERM)
        _, status, usage = os.wait4(scp.pid, 0)
        stored = json.loads(scp.stdout.read().strip().splitlines()[-1])["stored"]
        scp.returncode = os.waitstatus_to_exitcode(status)
    figures = {
        "instances": len(files),
        "stored": stored,
        "storescu_exit": sent.returncode,
        "seconds": round(elapsed, 2),
        "instances_per_s": round(len(files) / elapsed, 1),
        "mb_per_s": round(size_mb / elapsed, 1),
        "study_mb": round(size_mb, 1),
        "scp_peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
    }
    print(json.dumps(figures, indent=2))
    if sent.returncode != 0:
        print(sent.stderr[-2000:], file=sys.stderr)
    return 0 if sent.returncode == 0 and stored == len(files) else 1


if __name__ == "__main__":
    sys.exit(main())
