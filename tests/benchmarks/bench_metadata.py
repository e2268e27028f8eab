"""Metadata operation throughput (not collected): ``python -m tests.benchmarks.bench_metadata``.

PS3.18 2017b §6.4.3 with XPath ``/`` for every instance of a 400-instance CT study
(:mod:`tests.benchmarks.studygen`) in **one** SOAP request, answered by the real WSGI application
in-process over a real SQLite store (what ``xdsi serve`` runs, minus the socket):

1. cold — empty cache: every header is read from its stored file and converted;
2. warm — the same request again (memory cache);
3. disk — a new application on the same data directory (memory empty, cache files on disk);
4. ``dcm2xml -nat +Xn`` over the same stored files, one process per file (how it is used).

Instances/s = instances / wall time of the whole request (parsing, store, XML, serialization).
Goal: ≥ 2,000 instances/s from the store, ≥ 5× dcm2xml.  Figures vary ±30 % on the shared
machine; they are reported, never asserted (docs/performance.md).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pydicom

from tests.benchmarks.studygen import generate_ct_study
from tests.soap.metadata_support import Ask, metadata_request, read_answer
from tests.soap.support import Doc, call, envelope
from xdsi import ns
from xdsi.config import load_settings
from xdsi.soap import make_app
from xdsi.store import open_store


def _request(files: list[Path]) -> bytes:
    asks = []
    for path in files:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        doc = Doc(str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID))
        asks.append(Ask(doc))
    return envelope(metadata_request(asks), action=ns.ACTION_METADATA)


def _timed(app: object, body: bytes, count: int) -> tuple[float, int]:
    start = time.perf_counter()
    reply = call(app, body)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - start
    answer = read_answer(reply.xml())
    assert answer.status == ns.STATUS_SUCCESS and len(answer.results) == count, answer.errors[:3]
    return count / elapsed, len(reply.body)


def dcm2xml(files: list[Path]) -> float | None:
    program = shutil.which("dcm2xml")
    if program is None:
        return None
    start = time.perf_counter()
    for path in files:
        subprocess.run([program, "-nat", "+Xn", str(path)], check=True, stdout=subprocess.DEVNULL)
    return len(files) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=400, help="instances (default 400)")
    parser.add_argument("--dcmtk-count", type=int, default=400, help="files for dcm2xml")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files = generate_ct_study(Path(tmp) / "study", args.count)
        settings = load_settings(environ={}, data_dir=Path(tmp) / "data")
        store = open_store(settings)
        try:
            for path in files:
                store.put(path)
            stored = [r.path for r in store.study(str(pydicom.dcmread(files[0]).StudyInstanceUID))]
            body = _request(files)
            app = make_app(settings, store)
            cold, size = _timed(app, body, len(files))
            warm, _ = _timed(app, body, len(files))
            disk, _ = _timed(make_app(settings, store), body, len(files))
        finally:
            store.close()
        print(f"{len(files)} instances of 693_UNCR.dcm, one request, XPath '/'; "
              f"response {size / 1e6:.1f} MB")
        print(f"cold (read + convert every header) : {cold:8.0f} instances/s")
        print(f"warm (memory cache)                : {warm:8.0f} instances/s")
        print(f"disk cache, new application        : {disk:8.0f} instances/s")
        dcmtk = dcm2xml(stored[: args.dcmtk_count])
        if dcmtk is None:
            print("dcm2xml -nat +Xn                   : not installed")
        else:
            print(f"dcm2xml -nat +Xn (process per file): {dcmtk:8.0f} instances/s")
            print(f"speed-up warm / disk / cold vs dcm2xml: {warm / dcmtk:.0f}x / "
                  f"{disk / dcmtk:.0f}x / {cold / dcmtk:.1f}x")


if __name__ == "__main__":
    main()
