"""Native DICOM Model throughput (not collected): ``python -m tests.benchmarks.bench_nativexml``.

The metadata transaction (PS3.18 2017b §6.4.3) converts every instance of a study to PS3.19 XML;
the target is ≥ 2,000 instances/s for CT headers (~100 attributes).  Source: the 512x512 CT
``693_UNCR.dcm`` (pydicom-data), header only (``stop_before_pixels``), N copies.

1. Writer alone: ``to_native_xml`` (the lxml tree XPath runs on) and ``to_native_xml_bytes`` on
   data sets already parsed (raw, as ``dcmread`` leaves them), instances per second; best of 3.
2. Parse + write: ``dcmread`` of the Part 10 bytes from memory, then ``to_native_xml``.
3. dcmtk: ``dcm2xml -nat +Xn`` over the same N files on disk, one process per file (how it is
   used), instances per second.

Figures vary by about ±30 % on the shared 2-core machine; they are reported, never asserted.
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file

from xdsi.imaging.nativexml import to_native_xml, to_native_xml_bytes


def _source() -> bytes:
    path = get_testdata_file("693_UNCR.dcm")
    if path is None:
        raise SystemExit("pydicom-data is needed (pip install pydicom-data)")
    return Path(path).read_bytes()


def _headers(data: bytes, count: int) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True) for _ in range(count)]


def writer_alone(data: bytes, count: int, write: Callable[[pydicom.Dataset], object]) -> float:
    """Instances/s of ``write`` on freshly parsed headers (parsing not timed); best of 3."""
    best = 0.0
    for _ in range(3):
        datasets = _headers(data, count)
        start = time.perf_counter()
        for ds in datasets:
            write(ds)
        best = max(best, count / (time.perf_counter() - start))
    return best


def parse_and_write(data: bytes, count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        to_native_xml(pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True))
    return count / (time.perf_counter() - start)


def dcm2xml(data: bytes, count: int) -> float | None:
    program = shutil.which("dcm2xml")
    if program is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for number in range(count):
            path = Path(tmp) / f"{number}.dcm"
            path.write_bytes(data)
            files.append(path)
        start = time.perf_counter()
        for path in files:
            subprocess.run(
                [program, "-nat", "+Xn", str(path)], check=True, stdout=subprocess.DEVNULL
            )
        return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=400, help="instances (default 400)")
    parser.add_argument("--dcmtk-count", type=int, default=200, help="files for dcm2xml")
    args = parser.parse_args()
    data = _source()
    attributes = len(pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True))
    print(f"693_UNCR.dcm header: {attributes} top-level attributes")
    to_native_xml(pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True))  # warm caches
    tree = writer_alone(data, args.count, to_native_xml)
    text = writer_alone(data, args.count, to_native_xml_bytes)
    print(f"to_native_xml (tree)       : {tree:8.0f} instances/s")
    print(f"to_native_xml_bytes        : {text:8.0f} instances/s")
    print(f"dcmread + to_native_xml    : {parse_and_write(data, args.count):8.0f} instances/s")
    dcmtk = dcm2xml(data, args.dcmtk_count)
    if dcmtk is None:
        print("dcm2xml -nat +Xn           : not installed")
    else:
        print(f"dcm2xml -nat +Xn (process) : {dcmtk:8.0f} instances/s")


if __name__ == "__main__":
    main()
