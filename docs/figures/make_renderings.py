"""Contact sheet of xdsi renderings: ``python docs/figures/make_renderings.py`` from the repo root.

Writes ``docs/figures/renderings.png``: six tiles rendered by :func:`xdsi.imaging.render.render`
through the same path a WADO-WS Rendered request takes (PS3.18 2017b §6.4.2), each labelled with
the parameters used.  The presentation state is built with the test helper (no sample GSPS ships).
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pydicom
from PIL import Image, ImageDraw
from pydicom.data import get_testdata_file

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # the GSPS builder lives in the tests package

from tests.imaging.render_helpers import Graphic, Text, make_gsps  # noqa: E402
from xdsi import ns  # noqa: E402
from xdsi.imaging import annotate  # noqa: E402
from xdsi.imaging.render import RenderParams, render  # noqa: E402

TILE = 256
CAPTION = 34
SAMPLES = REPO / "samples" / "dicom"


def _testdata(name: str) -> Path:
    path = get_testdata_file(name)
    if path is None:
        raise SystemExit(f"pydicom-data file {name} is missing")
    return Path(path)


def tiles() -> list[tuple[str, Image.Image]]:
    """(caption, image) pairs, each rendered as JPEG and decoded again, as a consumer sees it."""
    ct = pydicom.dcmread(_testdata("693_UNCR.dcm"))
    cr = pydicom.dcmread(_testdata("RG3_UNCR.dcm"))
    us = pydicom.dcmread(SAMPLES / "sc" / "series2" / "us_ybr_multiframe_jpeg.dcm")
    small = pydicom.dcmread(SAMPLES / "ct" / "series1" / "ct_small.dcm")
    gsps = make_gsps(
        small,
        window=(40, 400),
        rotation=90,
        inverse=True,
        area=((17, 17), (112, 112)),
        graphics=[
            Graphic("CIRCLE", [(64, 60), (80, 60)]),
            Graphic("POLYLINE", [(30, 100), (98, 100)]),
            Graphic("ELLIPSE", [(40, 30), (88, 30), (64, 24), (64, 36)]),
        ],
        texts=[Text("lesion", anchor=(80.0, 60.0))],
        layer_gray=0,
    )
    box = {"rows": TILE, "columns": TILE}
    both = frozenset({annotate.PATIENT, annotate.TECHNIQUE})
    requests = [
        ("CT 512x512, WC 40 / WW 400", ct, RenderParams(window_center=40, window_width=400, **box)),
        ("CR MONOCHROME1, file window", cr, RenderParams(**box)),
        ("US YBR_FULL_422, frame 12", us, RenderParams(frame_number=12, **box)),
        (
            "CT region 0.3,0.25-0.8,0.75",
            ct,
            RenderParams(region=(0.3, 0.25, 0.8, 0.75), window_center=40, window_width=400, **box),
        ),
        (
            "annotation patient+technique",
            small,
            RenderParams(window_center=40, window_width=400, annotation=both, **box),
        ),
        (
            "GSPS: area, rot 90, INVERSE, graphics",
            small,
            RenderParams(presentation_state=gsps, **box),
        ),
    ]
    result = []
    for caption, ds, params in requests:
        rendered = render(ds, params)
        assert rendered.media_type == ns.MEDIA_JPEG
        with Image.open(io.BytesIO(rendered.data)) as image:
            result.append(
                (f"{caption}\n{rendered.columns}x{rendered.rows} JPEG", image.convert("RGB"))
            )
    return result


def contact_sheet(items: list[tuple[str, Image.Image]], columns: int = 3) -> Image.Image:
    rows = -(-len(items) // columns)
    sheet = Image.new("RGB", (columns * TILE, rows * (TILE + CAPTION)), "white")
    draw = ImageDraw.Draw(sheet)
    font = annotate.font_for(11 * 24)
    for n, (caption, image) in enumerate(items):
        x, y = (n % columns) * TILE, (n // columns) * (TILE + CAPTION)
        sheet.paste((40, 40, 40), (x, y, x + TILE, y + TILE))
        sheet.paste(image, (x + (TILE - image.width) // 2, y + (TILE - image.height) // 2))
        draw.multiline_text((x + 4, y + TILE + 3), caption, fill="black", font=font)
    return sheet


def main() -> None:
    target = Path(__file__).with_name("renderings.png")
    contact_sheet(tiles()).save(target, optimize=True)
    print(target)


if __name__ == "__main__":
    main()
