"""Transcoding benchmark (not collected by pytest): ``python -m tests.benchmarks.bench_transcode``.

One 512x512 CT slice, ``693_UNCR.dcm`` from pydicom-data (16 bits allocated, 14 stored, signed,
MONOCHROME2, 525,902 bytes):

* Explicit VR LE → every target syntax, and every source syntax → Explicit VR LE, with
  :func:`xdsi.imaging.transcode.transcode` on the Part 10 bytes in memory (parse, decode, encode,
  write); the medians of N runs after one warm-up.
* The dcmtk command-line tool for the same conversion where one exists (``dcmconv``,
  ``dcmcrle``/``dcmdrle``, ``dcmcjpeg``/``dcmdjpeg``, ``dcmcjpls``/``dcmdjpls``), file to file,
  process start-up included: what a source that shells out to dcmtk would pay.

JPEG Baseline/Extended are refused for this 14-bit slice (the >8-bit policy); they are timed on
the same slice reduced to 8 bits (Baseline) and to 12 bits unsigned (Extended).  Figures vary
by about ±30 % on the 2-core CI machine (libraries.md), more when it is shared; they are reported,
never asserted.
"""

from __future__ import annotations

import argparse
import io
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
from pydicom.data import get_testdata_file

from xdsi import ns
from xdsi.errors import TransferSyntaxUnavailable
from xdsi.imaging.transcode import transcode

SYNTAXES: dict[str, str] = {
    "Explicit VR LE": ns.TS_EXPLICIT_VR_LE,
    "Implicit VR LE": ns.TS_IMPLICIT_VR_LE,
    "Deflated": ns.TS_DEFLATED_EXPLICIT_VR_LE,
    "RLE": ns.TS_RLE,
    "JPEG Baseline .50": ns.TS_JPEG_BASELINE,
    "JPEG Extended .51": ns.TS_JPEG_EXTENDED,
    "JPEG Lossless .57": ns.TS_JPEG_LOSSLESS_P14,
    "JPEG Lossless SV1 .70": ns.TS_JPEG_LOSSLESS_SV1,
    "JPEG-LS .80": ns.TS_JPEG_LS_LOSSLESS,
    "JPEG-LS near .81": ns.TS_JPEG_LS_NEAR_LOSSLESS,
    "J2K lossless .90": ns.TS_JPEG2000_LOSSLESS,
    "J2K .91 (reversible)": ns.TS_JPEG2000,
}

# dcmtk 3.6.7 options: EVRLE → syntax, and syntax → EVRLE.  No JPEG 2000 codec in dcmtk.
DCMTK_ENCODE: dict[str, list[str]] = {
    ns.TS_IMPLICIT_VR_LE: ["dcmconv", "+ti"],
    ns.TS_DEFLATED_EXPLICIT_VR_LE: ["dcmconv", "+td"],
    ns.TS_RLE: ["dcmcrle"],
    ns.TS_JPEG_BASELINE: ["dcmcjpeg", "+eb"],
    ns.TS_JPEG_EXTENDED: ["dcmcjpeg", "+ee"],
    ns.TS_JPEG_LOSSLESS_P14: ["dcmcjpeg", "+el"],
    ns.TS_JPEG_LOSSLESS_SV1: ["dcmcjpeg", "+e1"],
    ns.TS_JPEG_LS_LOSSLESS: ["dcmcjpls", "+el"],
    # dcmcjpls refuses NEAR = 0 with +en ("--max-deviation underflow"); xdsi writes .81 with
    # NEAR = 0, so there is no like-for-like dcmtk encoding of .81.
}
DCMTK_DECODE: dict[str, list[str]] = {
    ns.TS_IMPLICIT_VR_LE: ["dcmconv", "+te"],
    ns.TS_DEFLATED_EXPLICIT_VR_LE: ["dcmconv", "+te"],
    ns.TS_RLE: ["dcmdrle"],
    ns.TS_JPEG_BASELINE: ["dcmdjpeg"],
    ns.TS_JPEG_EXTENDED: ["dcmdjpeg"],
    ns.TS_JPEG_LOSSLESS_P14: ["dcmdjpeg"],
    ns.TS_JPEG_LOSSLESS_SV1: ["dcmdjpeg"],
    ns.TS_JPEG_LS_LOSSLESS: ["dcmdjpls"],
    ns.TS_JPEG_LS_NEAR_LOSSLESS: ["dcmdjpls"],
}


def _source() -> bytes:
    path = get_testdata_file("693_UNCR.dcm")
    if path is None:
        raise SystemExit("pydicom-data is needed (pip install pydicom-data)")
    return Path(str(path)).read_bytes()


def _reduced(data: bytes, bits: int) -> bytes:
    """The slice rescaled to ``bits`` unsigned bits, for the lossy JPEG rows."""
    ds = pydicom.dcmread(io.BytesIO(data))
    pixels = ds.pixel_array.astype(np.int64)
    top = (1 << bits) - 1
    scaled = (pixels - pixels.min()) * top // max(int(np.ptp(pixels)), 1)
    ds.PixelData = scaled.astype(np.uint8 if bits <= 8 else np.uint16).tobytes()
    ds.BitsAllocated = 8 if bits <= 8 else 16
    ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits - 1, 0
    ds["PixelData"].VR = "OB" if bits <= 8 else "OW"
    for keyword in ("SmallestImagePixelValue", "LargestImagePixelValue"):
        ds.pop(keyword, None)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _median_ms(action: Callable[[], object], runs: int) -> float:
    action()  # warm-up: imports, plugin discovery
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def _xdsi(data: bytes, target: str, runs: int) -> tuple[float, int]:
    size = len(transcode(io.BytesIO(data), target))
    return _median_ms(lambda: transcode(io.BytesIO(data), target), runs), size


def _dcmtk(command: list[str], data: bytes, runs: int, workdir: Path) -> float | None:
    if shutil.which(command[0]) is None:
        return None
    source, target = workdir / "in.dcm", workdir / "out.dcm"
    source.write_bytes(data)
    argv = [*command, str(source), str(target)]
    return _median_ms(lambda: subprocess.run(argv, check=True, capture_output=True), runs)


def _cell(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs per cell (median)")
    args = parser.parse_args()
    evrle = _source()
    print(f"693_UNCR.dcm, {len(evrle):,} bytes; median of {args.runs} runs, milliseconds\n")
    print("| syntax | EVRLE → syntax (xdsi) | bytes | dcmtk | syntax → EVRLE (xdsi) | dcmtk |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for label, ts in SYNTAXES.items():
            source = evrle
            try:
                encode_ms, size = _xdsi(source, ts, args.runs)
            except TransferSyntaxUnavailable:
                print(f"| {label} | refused (14-bit) | | | | |")
                source = _reduced(evrle, 8 if ts == ns.TS_JPEG_BASELINE else 12)
                label += " (8 bits)" if ts == ns.TS_JPEG_BASELINE else " (12 bits)"
                encode_ms, size = _xdsi(source, ts, args.runs)
            encoded = transcode(io.BytesIO(source), ts)
            decode_ms, _ = _xdsi(encoded, ns.TS_EXPLICIT_VR_LE, args.runs)
            dcmtk_encode = dcmtk_decode = None
            if ts in DCMTK_ENCODE:
                dcmtk_encode = _dcmtk(DCMTK_ENCODE[ts], source, args.runs, workdir)
            if ts in DCMTK_DECODE:
                dcmtk_decode = _dcmtk(DCMTK_DECODE[ts], encoded, args.runs, workdir)
            print(
                f"| {label} | {encode_ms:.1f} | {size:,} | {_cell(dcmtk_encode)} "
                f"| {decode_ms:.1f} | {_cell(dcmtk_decode)} |"
            )


if __name__ == "__main__":
    main()
