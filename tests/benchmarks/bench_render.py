"""Rendering benchmark (not collected by pytest): ``python -m tests.benchmarks.bench_render``.

1. Latency: the 512x512 CT ``693_UNCR.dcm`` (pydicom-data; 14-bit signed, window 40/100 in the
   file) rendered to image/jpeg at its own size, median of N runs, with and without parsing the
   Part 10 bytes first.
2. Throughput: 64x64 JPEG thumbnails of 400 slices (the same slice parsed anew from memory each
   time, as a study's series would be), in images per second on one thread.

Figures vary by about ±30 % on the 2-core CI machine (libraries.md); they are reported, never
asserted.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file

from xdsi.imaging.render import RenderParams, render


def _source() -> bytes:
    path = get_testdata_file("693_UNCR.dcm")
    if path is None:
        raise SystemExit("pydicom-data is needed (pip install pydicom-data)")
    return Path(path).read_bytes()


def latency(data: bytes, runs: int) -> tuple[float, float]:
    """Median milliseconds of render() alone and of parse + render()."""
    ds = pydicom.dcmread(io.BytesIO(data))
    render(ds, RenderParams())  # warm-up: imports, plugin discovery, font
    alone, parsed = [], []
    for _ in range(runs):
        start = time.perf_counter()
        render(ds, RenderParams())
        alone.append(time.perf_counter() - start)
        start = time.perf_counter()
        render(pydicom.dcmread(io.BytesIO(data)), RenderParams())
        parsed.append(time.perf_counter() - start)
    return statistics.median(alone) * 1000, statistics.median(parsed) * 1000


def thumbnails(data: bytes, slices: int) -> float:
    """Images per second for 64x64 JPEG thumbnails, parse included."""
    params = RenderParams(rows=64, columns=64)
    start = time.perf_counter()
    for _ in range(slices):
        rendered = render(pydicom.dcmread(io.BytesIO(data)), params)
        assert (rendered.columns, rendered.rows) == (64, 64)
    return slices / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--slices", type=int, default=400)
    args = parser.parse_args()
    data = _source()
    render_ms, parse_render_ms = latency(data, args.runs)
    size = len(render(pydicom.dcmread(io.BytesIO(data)), RenderParams()).data)
    print(f"693_UNCR 512x512 -> JPEG q90 ({size} bytes): median render {render_ms:.1f} ms, "
          f"parse+render {parse_render_ms:.1f} ms over {args.runs} runs")  # fmt: skip
    rate = thumbnails(data, args.slices)
    print(f"64x64 JPEG thumbnails of {args.slices} slices: {rate:.0f} images/s")


if __name__ == "__main__":
    main()
