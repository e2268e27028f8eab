"""Bad input to the renderer: every validation rule answers with its PS3.18 2017b Table 6.4-1 code.

Each test builds the request a consumer could send and checks the error class *and* the
``urn:dicom:wado:00xx`` code it is reported with, on real sample objects.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset

from tests.imaging.render_helpers import make_gsps
from xdsi import errors, ns
from xdsi.imaging.render import (
    RenderParams,
    parse_annotation,
    parse_decimal,
    parse_int,
    parse_region,
    render,
    validate_params,
)


@pytest.fixture(scope="module")
def ct(samples_dir: Path) -> Dataset:
    return pydicom.dcmread(samples_dir / "ct" / "series1" / "ct_small.dcm")


@pytest.fixture(scope="module")
def multiframe(samples_dir: Path) -> Dataset:
    return pydicom.dcmread(samples_dir / "mr" / "series2" / "emri_explicit_multiframe.dcm")


@pytest.fixture(scope="module")
def rgb(samples_dir: Path) -> Dataset:
    return pydicom.dcmread(samples_dir / "sc" / "series1" / "sc_rgb.dcm")


def _code(excinfo: pytest.ExceptionInfo[errors.XdsiError]) -> str:
    return excinfo.value.to_registry_error().error_code


# --- parsing of wire values ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0.1,0.2,0.8,0.9", (0.1, 0.2, 0.8, 0.9)),
        (" 0 , 0 , 1 , 1 ", (0.0, 0.0, 1.0, 1.0)),
        ((0.25, 0.5, 0.75, 1.0), (0.25, 0.5, 0.75, 1.0)),
        ({"XMin": "0.1", "YMin": "0.2", "XMax": "0.3", "YMax": "0.4"}, (0.1, 0.2, 0.3, 0.4)),
        ({"Xmin": 0.1, "Ymin": 0.2, "Xmax": 0.3, "Ymax": 0.4}, (0.1, 0.2, 0.3, 0.4)),
    ],
)
def test_parse_region_accepts_uri_and_ws_forms(value: object, expected: tuple[float, ...]) -> None:
    assert parse_region(value) == pytest.approx(expected)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value",
    [
        "0.1,0.2,0.8",  # three values
        "0.1,0.2,0.8,0.9,1",  # five
        "a,b,c,d",  # not numbers
        "-0.1,0,1,1",  # below 0
        "0,0,1.01,1",  # above 1
        "0.5,0,0.5,1",  # empty width
        "0.8,0,0.2,1",  # inverted
        "0,0.9,1,0.1",  # inverted vertically
        "nan,0,1,1",
        "0,0,inf,1",
        {"XMin": 0, "YMin": 0, "XMax": 1},  # a key missing
        "",
    ],
)
def test_parse_region_rejects_bad_values_with_0012(value: object) -> None:
    with pytest.raises(errors.InvalidParameter) as excinfo:
        parse_region(value)  # type: ignore[arg-type]
    assert _code(excinfo) == ns.WADO_INVALID_PARAMETER


def test_parse_annotation() -> None:
    assert parse_annotation("patient") == {"patient"}
    assert parse_annotation("Patient, technique") == {"patient", "technique"}
    for bad in ("", "patient,", "patients", "patient,foo", " , "):
        with pytest.raises(errors.InvalidParameter):
            parse_annotation(bad)


def test_parse_numbers() -> None:
    assert parse_int("Rows", " 256 ") == 256
    assert parse_decimal("WindowCenter", "-40.5") == -40.5
    for bad in ("", "12.5", "abc", "1e3x"):
        with pytest.raises(errors.InvalidParameter, match="Rows"):
            parse_int("Rows", bad)
    for bad in ("", "abc", "nan", "inf", "-inf"):
        with pytest.raises(errors.InvalidParameter, match="WindowWidth"):
            parse_decimal("WindowWidth", bad)


# --- validate_params ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        RenderParams(rows=0),
        RenderParams(rows=-5),
        RenderParams(columns=0),
        RenderParams(rows="128"),  # type: ignore[arg-type]
        RenderParams(rows=True),  # type: ignore[arg-type]
        RenderParams(columns=12.5),  # type: ignore[arg-type]
        RenderParams(window_center=40),
        RenderParams(window_width=400),
        RenderParams(window_center=40, window_width=0),
        RenderParams(window_center=40, window_width=-1),
        RenderParams(window_center=math.nan, window_width=400),
        RenderParams(window_center=40, window_width=math.inf),
        RenderParams(window_center="forty", window_width=400),  # type: ignore[arg-type]
        RenderParams(image_quality=0),
        RenderParams(image_quality=101),
        RenderParams(image_quality=-3),
        RenderParams(image_quality=90.5),  # type: ignore[arg-type]
        RenderParams(region=(0.5, 0.5, 0.4, 0.9)),
        RenderParams(region=(0.0, 0.0, 1.5, 1.0)),
        RenderParams(annotation=frozenset({"patient", "dose"})),
        RenderParams(annotation={"patient"}),  # type: ignore[arg-type]
    ],
    ids=repr,
)
def test_invalid_values_are_0012(ct: Dataset, params: RenderParams) -> None:
    with pytest.raises(errors.InvalidParameter) as excinfo:
        validate_params(params, ct)
    assert _code(excinfo) == ns.WADO_INVALID_PARAMETER


@pytest.mark.parametrize(
    "media_type", ["image/tiff", "application/dicom", "text/html", "", "image/jpeg2000", "image"]
)
def test_unknown_media_type_is_0006(ct: Dataset, media_type: str) -> None:
    with pytest.raises(errors.FormatNotSupported) as excinfo:
        validate_params(RenderParams(content_type=media_type), ct)
    assert _code(excinfo) == ns.WADO_FORMAT_NOT_SUPPORTED


@pytest.mark.parametrize("media_type", ["IMAGE/JPEG", " image/png ", "image/gif; charset=x"])
def test_media_types_compare_case_insensitively(ct: Dataset, media_type: str) -> None:
    rendered = render(ct, RenderParams(content_type=media_type))
    assert rendered.media_type == media_type.split(";")[0].strip().lower()


@pytest.mark.parametrize("name", ["sc/series3/sr.dcm", "manifests/ct_study_kos.dcm"])
def test_object_without_pixel_data_is_0007(samples_dir: Path, name: str) -> None:
    ds = pydicom.dcmread(samples_dir / name)
    for media_type in (ns.MEDIA_JPEG, ns.MEDIA_GIF):
        with pytest.raises(errors.FormatNotProvidable) as excinfo:
            render(ds, RenderParams(content_type=media_type))
        assert _code(excinfo) == ns.WADO_FORMAT_NOT_PROVIDABLE


@pytest.mark.parametrize("media_type", [ns.MEDIA_JPEG, ns.MEDIA_PNG, ns.MEDIA_JP2])
def test_multiframe_single_image_type_without_frame_is_0008(
    multiframe: Dataset, media_type: str
) -> None:
    with pytest.raises(errors.SingleImageFormatUnavailable) as excinfo:
        render(multiframe, RenderParams(content_type=media_type))
    assert _code(excinfo) == ns.WADO_MULTIFRAME_SINGLE_IMAGE


@pytest.mark.parametrize("frame", [0, -1, 11, 1000])
def test_frame_out_of_range_is_0018(multiframe: Dataset, frame: int) -> None:
    with pytest.raises(errors.FrameOutOfRange) as excinfo:
        render(multiframe, RenderParams(frame_number=frame))
    assert _code(excinfo) == ns.WADO_FRAME_OUT_OF_RANGE


def test_frame_number_on_single_frame_object_is_ignored(ct: Dataset) -> None:
    """PS3.18 §8.2.7: "shall be ignored in the case of all objects other than multi-frame"."""
    rendered = render(ct, RenderParams(frame_number=7))
    assert rendered.frame_number is None
    with pytest.raises(errors.FrameOutOfRange):
        validate_params(RenderParams(frame_number=0), ct)


def test_oversized_output_is_0005(ct: Dataset, multiframe: Dataset) -> None:
    with pytest.raises(errors.ResourceLimit) as excinfo:
        validate_params(RenderParams(rows=100_000), ct)
    assert _code(excinfo) == ns.WADO_RESOURCE_LIMIT
    # each side within bounds, the ten-frame animation beyond the pixel budget
    with pytest.raises(errors.ResourceLimit):
        render(multiframe, RenderParams(content_type=ns.MEDIA_GIF, rows=4000, columns=4000))


def test_region_with_presentation_state_is_0012(ct: Dataset) -> None:
    gsps = make_gsps(ct, window=(40, 400))
    with pytest.raises(errors.InvalidParameter, match="Region"):
        validate_params(RenderParams(presentation_state=gsps, region=(0, 0, 0.5, 0.5)), ct)
    with pytest.raises(errors.InvalidParameter, match="Window"):
        validate_params(
            RenderParams(presentation_state=gsps, window_center=40, window_width=400), ct
        )


def test_presentation_state_that_is_not_gsps_is_0012(ct: Dataset, rgb: Dataset) -> None:
    with pytest.raises(errors.InvalidParameter, match="not a Grayscale"):
        validate_params(RenderParams(presentation_state=rgb), ct)
    with pytest.raises(errors.InvalidParameter, match="not a DICOM dataset"):
        validate_params(RenderParams(presentation_state=b"DICM"), ct)  # type: ignore[arg-type]


def test_presentation_state_for_another_image_is_0012(ct: Dataset) -> None:
    other = make_gsps(ct, window=(40, 400), referenced_uid="1.2.3.4.5")
    with pytest.raises(errors.InvalidParameter, match="does not reference"):
        validate_params(RenderParams(presentation_state=other), ct)


def test_gsps_on_colour_image_is_0012(rgb: Dataset) -> None:
    gsps = make_gsps(rgb)
    with pytest.raises(errors.InvalidParameter, match="colour"):
        validate_params(RenderParams(presentation_state=gsps), rgb)


def test_anonymize_refuses_patient_annotation_with_0001(ct: Dataset) -> None:
    params = RenderParams(anonymize=True, annotation=frozenset({"patient"}))
    with pytest.raises(errors.AnonymizationFailed) as excinfo:
        render(ct, params)
    assert _code(excinfo) == ns.WADO_UNABLE_TO_ANONYMIZE
    # technique text identifies no one: allowed
    rendered = render(ct, RenderParams(anonymize=True, annotation=frozenset({"technique"})))
    assert rendered.annotation == {"technique"}


def test_anonymize_refuses_burned_in_annotation(ct: Dataset) -> None:
    burned = copy.deepcopy(ct)
    burned.BurnedInAnnotation = "YES"
    with pytest.raises(errors.AnonymizationFailed):
        render(burned, RenderParams(anonymize=True))
    assert render(burned, RenderParams()).data  # without anonymize it renders


def test_corrupt_pixel_data_is_0014_not_a_traceback(ct: Dataset) -> None:
    broken = copy.deepcopy(ct)
    broken.PixelData = bytes(ct.PixelData)[:1000]  # truncated
    with pytest.raises(errors.ProcessingFailure) as excinfo:
        render(broken, RenderParams())
    assert _code(excinfo) == ns.WADO_PROCESSING_FAILURE


def test_validation_does_not_modify_the_dataset(ct: Dataset) -> None:
    before = ct.to_json()
    render(ct, RenderParams(window_center=40, window_width=400, rows=64))
    with pytest.raises(errors.InvalidParameter):
        render(ct, RenderParams(window_center=40, window_width=-1))
    assert ct.to_json() == before


def test_malformed_presentation_state_content_is_0014(ct: Dataset) -> None:
    gsps = make_gsps(ct, window=(40, 400))
    del gsps.DisplayedAreaSelectionSequence[0].DisplayedAreaBottomRightHandCorner
    with pytest.raises(errors.ProcessingFailure) as excinfo:
        render(ct, RenderParams(presentation_state=gsps))
    assert _code(excinfo) == ns.WADO_PROCESSING_FAILURE


def test_bad_presentation_state_rotation_is_0012(ct: Dataset) -> None:
    gsps = make_gsps(ct, window=(40, 400), rotation=45)
    with pytest.raises(errors.InvalidParameter, match="Rotation"):
        render(ct, RenderParams(presentation_state=gsps))
