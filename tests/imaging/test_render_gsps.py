"""Grayscale Softcopy Presentation State applied while rendering (PS3.18 §8.2.9, PS3.4 Annex N).

The grayscale and rotation/flip parts are compared with dcmtk's ``dcmp2pgm``, which renders an
image through a presentation state.  dcmp2pgm shows the whole image (no displayed-area
selection) and ignores the VOI LUT Function of a softcopy window, so those parts are checked
against dcmtk's plain rendering cropped/rotated, and against ``dcmj2pnm +Wfs``.  Graphics are
checked by where they change pixels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset

from tests.conftest import SAMPLES, need_program
from tests.imaging.render_helpers import Graphic, Text, dcmtk_render, decode, make_gsps, psnr
from xdsi import ns
from xdsi.imaging import presentation
from xdsi.imaging.render import RenderParams, render

SOURCE = SAMPLES / "ct" / "series1" / "ct_small.dcm"


@pytest.fixture(scope="module")
def ct() -> Dataset:
    return pydicom.dcmread(SOURCE)


def rendered(ct: Dataset, gsps: Dataset, **kwargs: object) -> np.ndarray:
    result = render(ct, RenderParams(content_type=ns.MEDIA_PNG, presentation_state=gsps, **kwargs))  # type: ignore[arg-type]
    return np.asarray(decode(result.data)).astype(int)


@pytest.mark.peers
@pytest.mark.parametrize(
    "options",
    [
        {"window": (40, 400)},
        {"window": (300, 1500), "inverse": True},
        {"window": (40, 400), "rotation": 90},
        {"window": (40, 400), "rotation": 180, "flip": True},
        {"window": (40, 400), "rotation": 270},
        {"window": (40, 400), "flip": True},
        {},  # no Softcopy VOI LUT: identity over the modality range (PS3.4 N.2.1.2)
    ],
    ids=repr,
)
def test_grayscale_and_spatial_match_dcmp2pgm(
    ct: Dataset, tmp_path: Path, options: dict[str, object]
) -> None:
    need_program("dcmp2pgm")
    gsps = make_gsps(ct, **options)  # type: ignore[arg-type]
    path = tmp_path / "gsps.dcm"
    gsps.save_as(path)
    reference = dcmtk_render("dcmp2pgm", SOURCE, tmp_path, "-p", str(path))
    ours = rendered(ct, gsps)
    assert ours.shape == np.asarray(reference).shape
    assert psnr(ours, reference) >= 45


@pytest.mark.peers
def test_softcopy_sigmoid_window(ct: Dataset, tmp_path: Path) -> None:
    need_program("dcmj2pnm")
    gsps = make_gsps(ct, window=(40, 400), voi_function="SIGMOID")
    reference = dcmtk_render("dcmj2pnm", SOURCE, tmp_path, "+Ww", "40", "400", "+Wfs")
    assert psnr(rendered(ct, gsps), reference) >= 45


def test_softcopy_voi_lut_sequence(ct: Dataset) -> None:
    """A VOI LUT equal to the window 40/400 renders like that window."""
    first = -160
    lut = [int(v) for v in np.clip(np.rint((np.arange(401) / 400) * 4095), 0, 4095)]
    gsps_lut = make_gsps(ct, voi_lut=(lut, first, 12))
    gsps_window = make_gsps(ct, window=(40.5, 401), voi_function="LINEAR")
    result = render(ct, RenderParams(content_type=ns.MEDIA_PNG, presentation_state=gsps_lut))
    assert result.window_center is None  # a LUT, not a window, was used
    assert psnr(rendered(ct, gsps_lut), rendered(ct, gsps_window)) >= 45


def test_modality_lut_of_the_presentation_state_is_used(ct: Dataset) -> None:
    plain = make_gsps(ct, window=(40, 400))
    shifted = make_gsps(ct, window=(40, 400))
    shifted.RescaleIntercept = float(ct.RescaleIntercept) + 1000  # every value 1000 higher
    moved = make_gsps(ct, window=(1040, 400))
    moved.RescaleIntercept = shifted.RescaleIntercept
    assert psnr(rendered(ct, shifted), rendered(ct, plain)) < 30
    assert np.array_equal(rendered(ct, moved), rendered(ct, plain))


@pytest.mark.peers
@pytest.mark.parametrize("rotation", [0, 90, 270])
def test_displayed_area_is_cropped_before_rotation(
    ct: Dataset, tmp_path: Path, rotation: int
) -> None:
    """Corners are in the unrotated image (C.10.4): crop there, then rotate (C.10.6)."""
    need_program("dcmj2pnm")
    gsps = make_gsps(ct, window=(40, 400), area=((21, 31), (100, 90)), rotation=rotation)
    full = dcmtk_render("dcmj2pnm", SOURCE, tmp_path, "+Ww", "40", "400")
    expected = full.crop((20, 30, 100, 90))
    turns = {90: Image.Transpose.ROTATE_270, 270: Image.Transpose.ROTATE_90}
    if rotation in turns:
        expected = expected.transpose(turns[rotation])
    ours = rendered(ct, gsps)
    assert ours.shape == (expected.height, expected.width)
    assert psnr(ours, expected) >= 45


def test_displayed_area_beyond_the_image_is_black(ct: Dataset) -> None:
    gsps = make_gsps(ct, window=(40, 400), area=((-9, 1), (128, 128)))
    ours = rendered(ct, gsps)
    assert ours.shape == (128, 138)
    assert not ours[:, :10].any() and ours[:, 10:].any()


@pytest.mark.parametrize(
    ("options", "kwargs", "size"),
    [
        ({"size_mode": "SCALE TO FIT"}, {}, (80, 60)),
        ({"size_mode": "SCALE TO FIT"}, {"rows": 120}, (160, 120)),
        ({"size_mode": "TRUE SIZE"}, {}, (80, 60)),
        ({"size_mode": "TRUE SIZE"}, {"rows": 30}, (40, 30)),
        ({"size_mode": "MAGNIFY", "magnification": 2.0}, {}, (160, 120)),
        ({"size_mode": "MAGNIFY", "magnification": 2.0}, {"columns": 1000}, (160, 120)),
        ({"size_mode": "MAGNIFY", "magnification": 2.0}, {"columns": 100}, (100, 75)),
        ({"size_mode": "MAGNIFY", "magnification": 0.5, "rotation": 90}, {}, (30, 40)),
    ],
    ids=repr,
)
def test_presentation_size_modes(
    ct: Dataset, options: dict[str, object], kwargs: dict[str, int], size: tuple[int, int]
) -> None:
    gsps = make_gsps(ct, window=(40, 400), area=((21, 31), (100, 90)), **options)  # type: ignore[arg-type]
    result = render(ct, RenderParams(presentation_state=gsps, **kwargs))  # type: ignore[arg-type]
    assert (result.columns, result.rows) == size
    assert decode(result.data).size == size


def _changed(
    ct: Dataset,
    gsps_kwargs: dict[str, object],
    graphics: list[Graphic],
    texts: list[Text] = (),
    **kwargs: object,
) -> np.ndarray:  # type: ignore[assignment]
    """Mask of pixels a set of graphics changes (same GSPS without them as the baseline)."""
    base = make_gsps(ct, window=(40, 400), **gsps_kwargs)  # type: ignore[arg-type]
    drawn = make_gsps(
        ct, window=(40, 400), graphics=graphics, texts=texts, layer_gray=0x8000, **gsps_kwargs
    )  # type: ignore[arg-type]
    return rendered(ct, drawn, **kwargs) != rendered(ct, base, **kwargs)


def test_polyline_follows_rotation_flip_and_scaling(ct: Dataset) -> None:
    line = [Graphic("POLYLINE", [(10.0, 20.5), (100.0, 20.5)])]
    plain = _changed(ct, {}, line)
    rows, columns = np.nonzero(plain)
    assert set(rows) <= {19, 20, 21} and columns.min() >= 9 and columns.max() <= 101
    # rotated 90° clockwise the row y=20.5 becomes the column x = 128 - 20.5
    rotated = _changed(ct, {"rotation": 90}, line)
    rows, columns = np.nonzero(rotated)
    assert set(columns) <= {106, 107, 108} and rows.min() >= 9 and rows.max() <= 101
    # then flipped: x = 20.5; then scaled ×2 by Columns=256: x = 41
    flipped = _changed(ct, {"rotation": 90, "flip": True}, line, columns=256)
    rows, columns = np.nonzero(flipped)
    assert abs(columns.mean() - 41) <= 1.5 and rows.min() >= 18 and rows.max() <= 203


def test_drawn_value_is_the_layer_grayscale(ct: Dataset) -> None:
    gsps = make_gsps(ct, window=(40, 400), layer_gray=0x8000,
                     graphics=[Graphic("POLYLINE", [(10, 10), (60, 10), (60, 60), (10, 60)],
                                       filled=True)])  # fmt: skip
    ours = rendered(ct, gsps)
    assert (ours[15:55, 15:55] == 128).all()


def test_circle_ellipse_point_and_interpolated(ct: Dataset) -> None:
    circle = _changed(ct, {}, [Graphic("CIRCLE", [(64, 64), (84, 64)])])
    rows, columns = np.nonzero(circle)
    radius = np.hypot(rows + 0.5 - 64, columns + 0.5 - 64)
    assert radius.min() >= 18 and radius.max() <= 22 and circle.sum() > 80
    ellipse = _changed(ct, {}, [Graphic("ELLIPSE", [(34, 64), (94, 64), (64, 54), (64, 74)])])
    rows, columns = np.nonzero(ellipse)
    assert columns.min() in range(32, 36) and columns.max() in range(92, 96)
    assert rows.min() in range(52, 56) and rows.max() in range(72, 76)
    point = _changed(ct, {}, [Graphic("POINT", [(30, 40)])])
    rows, columns = np.nonzero(point)
    assert abs(rows.mean() - 40) <= 1 and abs(columns.mean() - 30) <= 1 and point.sum() < 30
    curve = _changed(ct, {}, [Graphic("INTERPOLATED", [(10, 100), (60, 110), (110, 100)])])
    rows, columns = np.nonzero(curve)
    assert rows.min() >= 98 and rows.max() <= 112 and columns.min() >= 8


def test_display_units_are_relative_to_the_displayed_area(ct: Dataset) -> None:
    centre = [Graphic("POINT", [(0.5, 0.5)], units="DISPLAY")]
    for options in ({}, {"rotation": 90, "area": ((1, 1), (128, 64))}):
        changed = _changed(ct, options, centre, rows=200)  # type: ignore[arg-type]
        rows, columns = np.nonzero(changed)
        height, width = changed.shape
        assert abs(rows.mean() - height / 2) <= 1.5 and abs(columns.mean() - width / 2) <= 1.5


def test_text_objects_anchor_and_bounding_box(ct: Dataset) -> None:
    boxed = _changed(ct, {}, [], [Text("LESION", box=((70.0, 90.0), (125.0, 110.0)))], rows=256)
    rows, columns = np.nonzero(boxed)
    assert rows.min() >= 178 and columns.min() >= 138 and boxed.sum() > 50
    anchored = _changed(ct, {}, [], [Text("A", anchor=(20.0, 20.0))])
    rows, columns = np.nonzero(anchored)
    assert rows.min() >= 18 and columns.min() >= 18 and anchored.sum() > 5


def test_annotation_reference_to_another_image_is_not_drawn(ct: Dataset) -> None:
    gsps = make_gsps(ct, window=(40, 400), graphics=[Graphic("POLYLINE", [(0, 5), (128, 5)])])
    other = Dataset()
    other.ReferencedSOPClassUID = ct.SOPClassUID
    other.ReferencedSOPInstanceUID = "1.2.3.4"
    gsps.GraphicAnnotationSequence[0].ReferencedImageSequence = [other]
    assert np.array_equal(rendered(ct, gsps), rendered(ct, make_gsps(ct, window=(40, 400))))


def test_geometry_maps_points_like_the_image(ct: Dataset) -> None:
    """DisplayGeometry.to_display agrees with apply_spatial for every rotation and flip."""
    marker = Image.new("L", (128, 128))
    marker.putpixel((100, 20), 255)
    for rotation in (0, 90, 180, 270):
        for flip in (False, True):
            geometry = presentation.DisplayGeometry(10, 5, 120, 100, rotation, flip)
            moved = np.asarray(presentation.apply_spatial(marker, geometry))
            y, x = (int(v[0]) for v in np.nonzero(moved))
            px, py = geometry.to_display(100.5, 20.5)
            assert (x, y) == (int(px), int(py)), (rotation, flip)
