"""Behaviour of the rendering pipeline, parameter by parameter (PS3.18 2017b §8.2), on real samples.

Expected pixels are computed here independently from the stored values with the PS3.3 C.11.2.1.2
formulas in numpy, so that the pipeline is not checked against itself.
"""

from __future__ import annotations

import copy
import io
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

from tests.imaging.render_helpers import decode, psnr
from xdsi import errors, ns
from xdsi.imaging import annotate
from xdsi.imaging.render import (
    DEFAULT_JPEG_QUALITY,
    RenderParams,
    fit_box,
    frame_duration_ms,
    frame_view,
    region_box,
    render,
)

JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"


@pytest.fixture(scope="module")
def ct(samples_dir: Path) -> Dataset:
    return pydicom.dcmread(samples_dir / "ct" / "series1" / "ct_small.dcm")


@pytest.fixture(scope="module")
def mr(samples_dir: Path) -> Dataset:
    return pydicom.dcmread(samples_dir / "ct" / "series2" / "mr_small_explicit.dcm")


@pytest.fixture(scope="module")
def multiframe(samples_dir: Path) -> Dataset:
    return pydicom.dcmread(samples_dir / "mr" / "series2" / "emri_explicit_multiframe.dcm")


@pytest.fixture(scope="module")
def ultrasound(samples_dir: Path) -> Dataset:
    return pydicom.dcmread(samples_dir / "sc" / "series2" / "us_ybr_multiframe_jpeg.dcm")


def linear_window(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """PS3.3 C.11.2.1.2.1 onto 0..255, written out independently of the code under test."""
    x = values.astype(np.float64)
    y = ((x - (center - 0.5)) / (width - 1) + 0.5) * 255
    y[x <= center - 0.5 - (width - 1) / 2] = 0
    y[x > center - 0.5 + (width - 1) / 2] = 255
    return np.clip(np.rint(y), 0, 255).astype(np.uint8)


def hounsfield(ds: Dataset) -> np.ndarray:
    return ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


def jpeg_markers(data: bytes) -> list[int]:
    """Marker codes of a JPEG stream up to Start Of Scan."""
    markers, i = [], 2
    while i < len(data) - 4 and data[i] == 0xFF:
        marker = data[i + 1]
        markers.append(marker)
        if marker == 0xDA:
            break
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return markers


# --- VOI / modality -----------------------------------------------------------------------------


def test_window_is_applied_to_modality_values(ct: Dataset) -> None:
    rendered = render(
        ct, RenderParams(content_type=ns.MEDIA_PNG, window_center=40, window_width=400)
    )
    expected = linear_window(hounsfield(ct), 40, 400)
    got = np.asarray(decode(rendered.data))
    assert np.abs(got.astype(int) - expected).max() <= 1
    assert (rendered.window_center, rendered.window_width) == (40, 400)


def test_default_window_comes_from_dataset(mr: Dataset) -> None:
    rendered = render(mr, RenderParams(content_type=ns.MEDIA_PNG))
    assert (rendered.window_center, rendered.window_width) == (600, 1600)
    expected = linear_window(mr.pixel_array, 600, 1600)
    assert np.abs(np.asarray(decode(rendered.data)).astype(int) - expected).max() <= 1


def test_explicit_window_overrides_dataset_window(mr: Dataset) -> None:
    rendered = render(mr, RenderParams(window_center=300, window_width=200))
    assert (rendered.window_center, rendered.window_width) == (300, 200)


def test_default_window_without_dataset_window_spans_min_max(ct: Dataset) -> None:
    assert "WindowCenter" not in ct
    rendered = render(ct, RenderParams(content_type=ns.MEDIA_PNG))
    hu = hounsfield(ct)
    assert rendered.window_center == pytest.approx((hu.max() + hu.min() + 1) / 2)
    assert rendered.window_width == pytest.approx(hu.max() - hu.min() + 1)
    got = np.asarray(decode(rendered.data))
    assert got.min() == 0 and got.max() == 255
    assert got[hu == hu.min()].max() == 0 and got[hu == hu.max()].min() == 255


def test_narrow_window_below_one_uses_linear_exact(ct: Dataset) -> None:
    """LINEAR needs width ≥ 1 (C.11.2.1.2.1); 0.5 is valid DS and gives a threshold image.

    LINEAR_EXACT maps (c - w/2, c + w/2] = (0.25, 0.75] linearly; no integer HU lies there.
    """
    rendered = render(
        ct, RenderParams(content_type=ns.MEDIA_PNG, window_center=0.5, window_width=0.5)
    )
    got = np.asarray(decode(rendered.data))
    assert set(np.unique(got).tolist()) == {0, 255}
    assert (got == 255).sum() == (hounsfield(ct) > 0.75).sum()


def test_enhanced_functional_groups_give_per_frame_window_and_rescale(multiframe: Dataset) -> None:
    """Pixel Value Transformation (shared) and Frame VOI LUT (per frame) of PS3.3 C.7.6.16."""
    enhanced = copy.deepcopy(multiframe)
    shared = Dataset()
    transform = Dataset()
    transform.RescaleSlope, transform.RescaleIntercept, transform.RescaleType = 2, -100, "US"
    shared.PixelValueTransformationSequence = DicomSequence([transform])
    enhanced.SharedFunctionalGroupsSequence = DicomSequence([shared])
    frames = []
    for k in range(int(enhanced.NumberOfFrames)):
        voi = Dataset()
        voi.WindowCenter, voi.WindowWidth = 200 + 50 * k, 400
        group = Dataset()
        group.FrameVOILUTSequence = DicomSequence([voi])
        frames.append(group)
    enhanced.PerFrameFunctionalGroupsSequence = DicomSequence(frames)

    view = frame_view(enhanced, 3)
    assert (float(view.WindowCenter), float(view.RescaleSlope)) == (350, 2)
    rendered = render(enhanced, RenderParams(content_type=ns.MEDIA_PNG, frame_number=4))
    assert (rendered.window_center, rendered.window_width) == (350, 400)
    values = multiframe.pixel_array[3] * 2.0 - 100
    got = np.asarray(decode(rendered.data)).astype(int)
    assert np.abs(got - linear_window(values, 350, 400)).max() <= 1


def test_colour_ignores_window_and_echoes_none(samples_dir: Path) -> None:
    rgb = pydicom.dcmread(samples_dir / "sc" / "series1" / "sc_rgb.dcm")
    rendered = render(rgb, RenderParams(content_type=ns.MEDIA_PNG, window_center=1, window_width=2))
    assert rendered.window_center is None and rendered.window_width is None
    assert np.array_equal(np.asarray(decode(rendered.data)), rgb.pixel_array)


# --- size, region ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "rows", "columns", "expected"),
    [
        ((320, 240), None, None, (320, 240)),
        ((320, 240), 120, None, (160, 120)),
        ((320, 240), None, 64, (64, 48)),
        ((320, 240), 100, 100, (100, 75)),
        ((320, 240), 480, 1000, (640, 480)),
        ((256, 1024), 512, None, (128, 512)),
        ((1000, 1), 10, None, (10000, 10)),
        ((1000, 3), None, 10, (10, 1)),
    ],
)
def test_fit_box(
    size: tuple[int, int], rows: int | None, columns: int | None, expected: tuple[int, int]
) -> None:
    assert fit_box(*size, rows, columns) == expected


def test_rows_and_columns_are_a_box_and_echoed(ultrasound: Dataset) -> None:
    rendered = render(ultrasound, RenderParams(frame_number=1, rows=120, columns=120))
    assert (rendered.columns, rendered.rows) == (120, 90)
    assert decode(rendered.data).size == (120, 90)


def test_region_is_applied_before_resize(ct: Dataset) -> None:
    window = {"window_center": 40, "window_width": 400}
    full = decode(render(ct, RenderParams(content_type=ns.MEDIA_PNG, **window)).data)
    region = (0.25, 0.5, 0.75, 1.0)
    rendered = render(ct, RenderParams(content_type=ns.MEDIA_PNG, region=region, **window))
    assert rendered.region == region
    assert region_box(region, 128, 128) == (32, 64, 96, 128)
    assert np.array_equal(
        np.asarray(decode(rendered.data)), np.asarray(full.crop((32, 64, 96, 128)))
    )
    enlarged = render(
        ct, RenderParams(content_type=ns.MEDIA_PNG, region=region, rows=128, **window)
    )
    assert (enlarged.columns, enlarged.rows) == (128, 128)


def test_tiny_region_keeps_at_least_one_pixel(ct: Dataset) -> None:
    rendered = render(ct, RenderParams(region=(0.5, 0.5, 0.5001, 0.5001)))
    assert (rendered.columns, rendered.rows) == (1, 1)


# --- formats --------------------------------------------------------------------------------------


def test_jpeg_is_baseline_huffman_8_bit_with_quality_echoed(ct: Dataset) -> None:
    default = render(ct, RenderParams())
    assert default.media_type == ns.MEDIA_JPEG
    assert default.image_quality == DEFAULT_JPEG_QUALITY
    markers = jpeg_markers(default.data)
    assert 0xC0 in markers  # SOF0: baseline DCT, Huffman
    assert not {0xC1, 0xC2, 0xC3, 0xC9, 0xCA} & set(markers)  # no extended/progressive/arith
    sof = default.data.index(b"\xff\xc0")
    assert default.data[sof + 4] == 8  # sample precision
    low = render(ct, RenderParams(image_quality=20))
    assert low.image_quality == 20 and len(low.data) < len(default.data)


def test_png_gif_and_jp2_are_lossless_for_grayscale(ct: Dataset) -> None:
    png = render(ct, RenderParams(content_type=ns.MEDIA_PNG))
    assert png.data.startswith(b"\x89PNG") and png.image_quality is None
    reference = np.asarray(decode(png.data))
    gif = render(ct, RenderParams(content_type=ns.MEDIA_GIF))
    assert gif.data.startswith(b"GIF8")
    assert np.array_equal(np.asarray(decode(gif.data).convert("L")), reference)
    jp2 = render(ct, RenderParams(content_type=ns.MEDIA_JP2))
    assert jp2.data.startswith(JP2_SIGNATURE) and jp2.image_quality is None
    assert np.array_equal(np.asarray(decode(jp2.data)), reference)
    lossy = render(ct, RenderParams(content_type=ns.MEDIA_JP2, image_quality=40))
    assert lossy.image_quality == 40 and len(lossy.data) < len(jp2.data)
    assert 30 <= psnr(decode(lossy.data), reference) < float("inf")


def test_image_quality_is_not_echoed_for_lossless_types(ct: Dataset) -> None:
    assert (
        render(ct, RenderParams(content_type=ns.MEDIA_PNG, image_quality=50)).image_quality is None
    )


def test_multiframe_gif_without_frame_number_is_animated(multiframe: Dataset) -> None:
    rendered = render(multiframe, RenderParams(content_type=ns.MEDIA_GIF))
    assert rendered.frame_number is None
    with Image.open(io.BytesIO(rendered.data)) as gif:
        assert gif.n_frames == int(multiframe.NumberOfFrames)
        assert gif.info.get("loop") == 0
        gif.seek(2)
        third = np.asarray(gif.convert("L"))
    window = {"window_center": rendered.window_center, "window_width": rendered.window_width}
    single = render(multiframe, RenderParams(content_type=ns.MEDIA_PNG, frame_number=3, **window))
    assert single.frame_number == 3
    assert np.array_equal(third, np.asarray(decode(single.data)))


def test_colour_multiframe_gif_and_frame_selection(ultrasound: Dataset) -> None:
    rendered = render(ultrasound, RenderParams(content_type=ns.MEDIA_GIF, rows=60))
    with Image.open(io.BytesIO(rendered.data)) as gif:
        assert gif.size == (80, 60)
        durations = []
        for index in range(gif.n_frames):
            gif.seek(index)
            durations.append(gif.info["duration"])
    # Pillow merges identical consecutive frames into one of longer duration: time is kept
    assert 1 < len(durations) <= 30
    assert sum(durations) == 30 * frame_duration_ms(ultrasound)
    first = decode(render(ultrasound, RenderParams(content_type=ns.MEDIA_PNG, frame_number=1)).data)
    last = decode(render(ultrasound, RenderParams(content_type=ns.MEDIA_PNG, frame_number=30)).data)
    assert first.mode == "RGB" and psnr(first, last) < 40  # different frames really are chosen


def test_float_pixel_data_is_not_providable(ct: Dataset) -> None:
    floats = Dataset()
    floats.SOPClassUID = ct.SOPClassUID
    floats.Rows, floats.Columns = 2, 2
    floats.FloatPixelData = np.zeros(4, dtype=np.float32).tobytes()
    with pytest.raises(errors.FormatNotProvidable):
        render(floats, RenderParams())


# --- annotation -----------------------------------------------------------------------------------


def test_patient_and_technique_lines(ct: Dataset) -> None:
    patient = annotate.patient_lines(ct)
    assert patient[1] == f"ID {ct.PatientID}"
    assert str(ct.PatientName.family_name) in patient[0]
    technique = annotate.technique_lines(ct, frame_number=None, frames=1, window=(40, 400))
    assert technique[0].startswith("CT")
    assert f"{float(ct.KVP):g} kVp" in technique[1] and "WC 40  WW 400" in technique
    birth = copy.deepcopy(ct)
    birth.PatientBirthDate = "19700402"
    assert "DOB 1970-04-02" in annotate.patient_lines(birth)


def test_annotation_is_burned_where_expected(ct: Dataset) -> None:
    params = {"content_type": ns.MEDIA_PNG, "rows": 256, "window_center": 40, "window_width": 400}
    plain = np.asarray(decode(render(ct, RenderParams(**params)).data)).astype(int)
    top = render(ct, RenderParams(annotation=frozenset({"patient"}), **params))
    bottom = render(ct, RenderParams(annotation=frozenset({"technique"}), **params))
    assert top.annotation == {"patient"} and bottom.annotation == {"technique"}
    top_diff = np.abs(np.asarray(decode(top.data)).astype(int) - plain) > 0
    bottom_diff = np.abs(np.asarray(decode(bottom.data)).astype(int) - plain) > 0
    assert top_diff[:60, :128].sum() > 100 and not top_diff[128:].any()
    assert bottom_diff[200:, :160].sum() > 100 and not bottom_diff[:128].any()


def test_annotation_on_frame_shows_frame_number(multiframe: Dataset) -> None:
    lines = annotate.technique_lines(multiframe, frame_number=4, frames=10, window=None)
    assert lines[-1] == "Frame 4/10"
    plain = render(multiframe, RenderParams(frame_number=4, rows=256, content_type=ns.MEDIA_PNG))
    text = render(
        multiframe,
        RenderParams(
            frame_number=4, rows=256, content_type=ns.MEDIA_PNG, annotation=frozenset({"technique"})
        ),
    )
    assert psnr(decode(text.data), decode(plain.data)) < 40
