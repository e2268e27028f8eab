"""Rendering of DICOM images into consumer media types for the WADO-WS Rendered Requester.

PS3.18 2017b §6.4.2 (RetrieveRenderedImagingDocumentSet), with the parameter semantics of §8.1/§8.2
and the media types of Table 6.1.1-3 (image/jpeg default, image/png, image/gif, image/jp2).  The
pixel pipeline follows PS3.4 Annex N: Modality LUT → VOI LUT → Presentation LUT (polarity), then
spatial operations (region or presentation-state displayed area, resize), then burned-in text.

The pipeline uses :mod:`pydicom.pixels.processing` for the LUT steps and Pillow for resampling and
encoding.  Decoding always names the pydicom plugin (``docs/libraries.md`` §3.3: the default
plugin order breaks on signed JPEG-LS when python-gdcm is installed, and 12-bit JPEG only decodes
with pylibjpeg).

Decisions the standard leaves open (the conformance statement repeats them):

* A non-image object (no Pixel Data, e.g. SR or KOS) asked for as an image type is answered with
  ``0007`` (:class:`~xdsi.errors.FormatNotProvidable`): the server supports the format, this object
  cannot be provided in it.  An unknown media type is ``0006``.
* ``anonymize`` together with the ``patient`` annotation is refused with ``0001``
  (:class:`~xdsi.errors.AnonymizationFailed`) rather than burning placeholder text: the requester
  asked for two contradictory things and must hear so.  An image whose Burned In Annotation is
  ``YES`` cannot be anonymized by rendering either (``0001``).
* WindowCenter/WindowWidth on a colour image are ignored and echoed as absent (None).
* FrameNumber on an object that is not multi-frame (no Number of Frames) is ignored (§8.2.7).
"""

from __future__ import annotations

import io
import itertools
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Final

import numpy as np
import numpy.typing as npt
from PIL import Image, features
from pydicom.dataset import Dataset
from pydicom.pixels.decoders.base import get_decoder
from pydicom.pixels.processing import (
    apply_color_lut,
    apply_modality_lut,
    apply_voi,
    apply_windowing,
)

from xdsi import errors, ns
from xdsi.imaging import annotate, presentation

Region = tuple[float, float, float, float]
Gray = npt.NDArray[np.float64]
Pixels8 = npt.NDArray[np.uint8]

RENDERED_MEDIA_TYPES: Final = (ns.MEDIA_JPEG, ns.MEDIA_PNG, ns.MEDIA_GIF, ns.MEDIA_JP2)
"""Single Frame Image media types of PS3.18 2017b Table 6.1.1-3 (WS column) that we produce."""
SINGLE_IMAGE_MEDIA_TYPES: Final = frozenset({ns.MEDIA_JPEG, ns.MEDIA_PNG, ns.MEDIA_JP2})
"""Types that hold exactly one image; image/gif is the Multi-frame Image type (animated)."""
ANNOTATION_VALUES: Final = frozenset({annotate.PATIENT, annotate.TECHNIQUE})
DEFAULT_JPEG_QUALITY: Final = 90
MAX_OUTPUT_SIDE: Final = 16384
"""Largest Rows/Columns produced; beyond it a request gets ``0005`` (JPEG's own limit is 65535)."""
MAX_OUTPUT_PIXELS: Final = 1 << 26
"""Pixels over all output frames (64 Mi): a bound on memory for one rendering, else ``0005``."""
DEFAULT_FRAME_MS: Final = 100
"""Animated GIF frame delay when the object states no Frame Time or frame rate."""

_DECODING_PLUGINS: Final[Mapping[str, str]] = {
    ns.TS_RLE: "pylibjpeg",
    ns.TS_JPEG_BASELINE: "pylibjpeg",
    ns.TS_JPEG_EXTENDED: "pylibjpeg",
    ns.TS_JPEG_LOSSLESS_P14: "pylibjpeg",
    ns.TS_JPEG_LOSSLESS_SV1: "pylibjpeg",
    ns.TS_JPEG_LS_LOSSLESS: "pyjpegls",
    ns.TS_JPEG_LS_NEAR_LOSSLESS: "pyjpegls",
    ns.TS_JPEG2000_LOSSLESS: "pylibjpeg",
    ns.TS_JPEG2000: "pylibjpeg",
}
"""pydicom decoding plugin per compressed transfer syntax (libraries.md §3.1, §3.3)."""

_PIXEL_DATA_KEYWORDS: Final = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


@dataclass(frozen=True)
class RenderParams:
    """What a ``wado:RenderedDocumentRequest`` asks for (PS3.18 2017b §6.4.2.1, §8.1/§8.2).

    Attributes
    ----------
    content_type:
        One of :data:`RENDERED_MEDIA_TYPES` (the first supported entry of ``ContentTypeList``).
    rows, columns:
        Maximum output box; aspect ratio is preserved (§8.2.2/§8.2.3).
    region:
        ``(xmin, ymin, xmax, ymax)`` normalised to [0, 1] (§8.2.4); see :func:`parse_region`.
    window_center, window_width:
        VOI window in modality units (§8.2.5/§8.2.6), both or neither.
    image_quality:
        1..100 for lossy types (§8.2.8).
    frame_number:
        1-based frame of a multi-frame object (§8.2.7).
    annotation:
        Subset of ``{"patient", "technique"}`` burned into the pixels (§8.2.1).
    presentation_state:
        A Grayscale Softcopy Presentation State already fetched by the caller (§8.2.9).
    anonymize:
        No identifying text may be burned in (§8.1.7).
    """

    content_type: str = ns.MEDIA_JPEG
    rows: int | None = None
    columns: int | None = None
    region: Region | None = None
    window_center: float | None = None
    window_width: float | None = None
    image_quality: int | None = None
    frame_number: int | None = None
    annotation: frozenset[str] = field(default_factory=frozenset)
    presentation_state: Dataset | None = None
    anonymize: bool = False


@dataclass(frozen=True)
class Rendered:
    """A rendered image and the parameter values actually used (echoed per PS3.18 §6.4.2.2)."""

    data: bytes
    media_type: str
    rows: int
    columns: int
    window_center: float | None
    window_width: float | None
    image_quality: int | None
    region: Region | None
    frame_number: int | None
    annotation: frozenset[str]


@dataclass(frozen=True)
class Window:
    """A VOI window (PS3.3 C.11.2.1.2): center, width and VOI LUT Function."""

    center: float
    width: float
    function: str = "LINEAR"


# --- request value parsing ----------------------------------------------------------------------


def parse_region(value: str | Sequence[float | str] | Mapping[str, float | str]) -> Region:
    """Parse and check a Region (PS3.18 2017b §8.2.4).

    Accepts the URI form ``"0.1,0.2,0.8,0.9"``, a 4-sequence, or the WS form as a mapping of
    ``XMin``/``YMin``/``XMax``/``YMax`` (case-insensitive keys, so the E.3 example's ``Xmin``
    spelling works too, standards.md §3.9 #6).

    Raises
    ------
    xdsi.errors.InvalidParameter
        Not four numbers, a value outside [0, 1], or an empty/inverted rectangle.
    """
    parts: list[float | str]
    if isinstance(value, str):
        parts = [p.strip() for p in value.split(",")]
    elif isinstance(value, Mapping):
        lowered = {str(k).lower(): v for k, v in value.items()}
        try:
            parts = [lowered[k] for k in ("xmin", "ymin", "xmax", "ymax")]
        except KeyError:
            raise errors.InvalidParameter(
                f"Region needs XMin, YMin, XMax and YMax, got {sorted(value)}"
            ) from None
    else:
        parts = list(value)
    if len(parts) != 4:
        raise errors.InvalidParameter(f"Region needs four values, got {len(parts)}")
    xmin, ymin, xmax, ymax = (_decimal("Region", p) for p in parts)
    if not all(0.0 <= v <= 1.0 for v in (xmin, ymin, xmax, ymax)):
        raise errors.InvalidParameter(f"Region values must lie in [0, 1]: {parts}")
    if not (xmin < xmax and ymin < ymax):
        raise errors.InvalidParameter(f"Region is empty or inverted: {parts}")
    return (xmin, ymin, xmax, ymax)


def parse_annotation(text: str) -> frozenset[str]:
    """Parse ``Annotation``: a non-empty comma-separated list of patient/technique (§8.2.1)."""
    values = frozenset(v.strip().lower() for v in text.split(","))
    if not text.strip() or "" in values or not values <= ANNOTATION_VALUES:
        raise errors.InvalidParameter(
            f"Annotation must list {', '.join(sorted(ANNOTATION_VALUES))}; got {text!r}"
        )
    return values


def parse_int(name: str, text: str) -> int:
    """An IS request value (Rows, Columns, ImageQuality, FrameNumber) or ``0012``."""
    try:
        return int(text.strip())
    except ValueError:
        raise errors.InvalidParameter(f"{name} is not an integer: {text!r}") from None


def parse_decimal(name: str, text: str) -> float:
    """A DS request value (WindowCenter, WindowWidth) or ``0012``."""
    return _decimal(name, text)


def _decimal(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise errors.InvalidParameter(f"{name} is not a number: {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise errors.InvalidParameter(f"{name} is not a number: {value!r}") from None
    if not math.isfinite(number):
        raise errors.InvalidParameter(f"{name} must be finite: {value!r}")
    return number


# --- validation ---------------------------------------------------------------------------------


def normalize_media_type(text: str) -> str:
    """The :data:`RENDERED_MEDIA_TYPES` entry ``text`` names, or ``0006``.

    Media types compare case-insensitively (RFC 6838 §4.2) and parameters are dropped: PS3.18
    2017b Table 6.1.1-3 defines none for rendered types.
    """
    essence = str(text).split(";", 1)[0].strip().lower()
    if essence not in RENDERED_MEDIA_TYPES:
        raise errors.FormatNotSupported(
            f"media type {text!r} is not one of {', '.join(RENDERED_MEDIA_TYPES)}"
        )
    return essence


def validate_params(params: RenderParams, ds: Dataset) -> None:
    """Check ``params`` against PS3.18 2017b §8.2 and against the object ``ds``.

    Raises
    ------
    xdsi.errors.FormatNotSupported
        Unknown media type, or image/jp2 without Pillow's OpenJPEG support (``0006``).
    xdsi.errors.FormatNotProvidable
        ``ds`` has no (integer) Pixel Data (``0007``).
    xdsi.errors.SingleImageFormatUnavailable
        Multi-frame object, no FrameNumber, single-image media type (``0008``).
    xdsi.errors.FrameOutOfRange
        FrameNumber < 1 or > Number of Frames (``0018``).
    xdsi.errors.AnonymizationFailed
        Anonymize with the patient annotation or burned-in annotation in the pixels (``0001``).
    xdsi.errors.InvalidParameter
        Any other malformed or inconsistent value (``0012``).
    """
    params = replace(params, content_type=normalize_media_type(params.content_type))
    if params.content_type == ns.MEDIA_JP2 and not features.check("jpg_2000"):
        raise errors.FormatNotSupported("image/jp2 needs Pillow built with OpenJPEG")
    for name in ("rows", "columns"):
        size = getattr(params, name)
        if size is not None and (not _is_int(size) or size < 1):
            raise errors.InvalidParameter(f"{name.capitalize()} must be a positive integer")
        if size is not None and size > MAX_OUTPUT_SIDE:
            raise errors.ResourceLimit(f"{name.capitalize()} {size} exceeds {MAX_OUTPUT_SIDE}")
    _validate_window(params)
    if params.image_quality is not None and (
        not _is_int(params.image_quality) or not 1 <= params.image_quality <= 100
    ):
        raise errors.InvalidParameter(f"ImageQuality must be 1..100, got {params.image_quality!r}")
    if params.region is not None:
        parse_region(params.region)
    if not isinstance(params.annotation, frozenset) or not params.annotation <= ANNOTATION_VALUES:
        raise errors.InvalidParameter(f"Annotation {sorted(params.annotation)} is not allowed")
    if not any(k in ds for k in _PIXEL_DATA_KEYWORDS):
        raise errors.FormatNotProvidable(
            f"SOP Class {ds.get('SOPClassUID', '?')} has no Pixel Data to render as "
            f"{params.content_type}"
        )
    if "PixelData" not in ds:
        raise errors.FormatNotProvidable("float Pixel Data cannot be rendered")
    _validate_frame(params, ds)
    if params.presentation_state is not None:
        if not isinstance(params.presentation_state, Dataset):
            raise errors.InvalidParameter("the presentation state is not a DICOM dataset")
        if params.region is not None:
            raise errors.InvalidParameter("Region is not allowed with a presentation state")
        if params.window_center is not None:
            raise errors.InvalidParameter(
                "WindowCenter/Width are not allowed with a presentation state"
            )
        presentation.check_applicable(params.presentation_state, ds, _frame_or_none(params, ds))
    if params.anonymize:
        if annotate.PATIENT in params.annotation:
            raise errors.AnonymizationFailed(
                "the patient annotation would burn identifying text into an anonymized image"
            )
        if str(ds.get("BurnedInAnnotation", "")).upper() == "YES":
            raise errors.AnonymizationFailed("the pixels carry burned-in annotation")


def _validate_window(params: RenderParams) -> None:
    center, width = params.window_center, params.window_width
    if (center is None) != (width is None):
        raise errors.InvalidParameter("WindowCenter and WindowWidth must be given together")
    if center is not None and width is not None:
        _decimal("WindowCenter", center)
        if _decimal("WindowWidth", width) <= 0:
            raise errors.InvalidParameter(f"WindowWidth must be > 0, got {width}")


def _validate_frame(params: RenderParams, ds: Dataset) -> None:
    number = params.frame_number
    if number is not None and (not _is_int(number) or number < 1):
        raise errors.FrameOutOfRange(f"FrameNumber must be 1 or more, got {number!r}")
    frames = _number_of_frames(ds)
    if number is not None and _is_multiframe(ds) and number > frames:
        raise errors.FrameOutOfRange(f"FrameNumber {number} > Number of Frames {frames}")
    if number is None and frames > 1 and params.content_type in SINGLE_IMAGE_MEDIA_TYPES:
        raise errors.SingleImageFormatUnavailable(
            f"{params.content_type} holds one image: give FrameNumber (1..{frames}) "
            "or ask for image/gif"
        )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_multiframe(ds: Dataset) -> bool:
    return "NumberOfFrames" in ds


def _number_of_frames(ds: Dataset) -> int:
    try:
        return max(1, int(ds.get("NumberOfFrames") or 1))
    except (TypeError, ValueError):
        return 1


def _frame_or_none(params: RenderParams, ds: Dataset) -> int | None:
    """The frame number actually used: ignored for objects that are not multi-frame (§8.2.7)."""
    return params.frame_number if _is_multiframe(ds) else None


# --- rendering ----------------------------------------------------------------------------------


def render(ds: Dataset, params: RenderParams) -> Rendered:
    """Render ``ds`` as ``params`` ask (PS3.18 2017b §6.4.2.2, PS3.4 Annex N order).

    The output size is settled (and checked against the limits) before any pixel is decoded, and
    frames are decoded one at a time, so memory stays bounded by the output plus one frame.

    Raises
    ------
    xdsi.errors.XdsiError
        A subclass for each refused request (see :func:`validate_params`);
        :class:`~xdsi.errors.ProcessingFailure` (``0014``) when decoding, LUTs or the
        presentation state's content fail on this object, :class:`~xdsi.errors.ResourceLimit`
        (``0005``) for oversized output.
    """
    params = replace(params, content_type=normalize_media_type(params.content_type))
    validate_params(params, ds)
    try:
        return _render_valid(ds, params)
    except errors.XdsiError:
        raise
    except Exception as exc:  # decoders, LUT code and malformed attributes raise many types
        raise errors.ProcessingFailure(f"cannot render this object: {exc}") from exc


def _render_valid(ds: Dataset, params: RenderParams) -> Rendered:
    frame_number = _frame_or_none(params, ds)
    indices = [frame_number - 1] if frame_number is not None else list(range(_number_of_frames(ds)))
    if params.content_type in SINGLE_IMAGE_MEDIA_TYPES:
        indices = indices[:1]  # a single-frame object; FrameNumber was ignored
    gsps = params.presentation_state
    width, height = int(ds.Columns), int(ds.Rows)
    geometry: presentation.DisplayGeometry | None = None
    region_used: Region | None = None
    crop: tuple[int, int, int, int] | None = None
    if gsps is not None:
        geometry = presentation.display_geometry(gsps, ds, frame_number)
        size = presentation_size(geometry, params.rows, params.columns)
    else:
        if params.region is not None:
            region_used = parse_region(params.region)
            crop = region_box(region_used, width, height)
            width, height = crop[2] - crop[0], crop[3] - crop[1]
        size = fit_box(width, height, params.rows, params.columns)
    _check_output_size(size, len(indices))

    images, window = _display_images(ds, params, indices)
    technique_window = (window.center, window.width) if window is not None else None
    finished: list[Image.Image] = []
    for index, image in zip(indices, images, strict=True):
        if geometry is not None:
            image = presentation.apply_spatial(image, geometry)
        elif crop is not None:
            image = image.crop(crop)
        image = _resize(image, size)
        if gsps is not None and geometry is not None:
            presentation.draw_graphics(image, gsps, ds, frame_number, geometry)
        finished.append(
            annotate.burn_annotations(
                image,
                ds,
                params.annotation,
                frame_number=index + 1 if _is_multiframe(ds) else None,
                frames=_number_of_frames(ds),
                window=technique_window,
            )
        )
    quality = _quality_used(params)
    return Rendered(
        data=_encode(finished, params.content_type, quality, frame_duration_ms(ds)),
        media_type=params.content_type,
        rows=size[1],
        columns=size[0],
        window_center=window.center if window is not None else None,
        window_width=window.width if window is not None else None,
        image_quality=quality,
        region=region_used,
        frame_number=frame_number,
        annotation=params.annotation,
    )


def _display_images(
    ds: Dataset, params: RenderParams, indices: Sequence[int]
) -> tuple[Iterator[Image.Image], Window | None]:
    """Frames as 8-bit display images, lazily, and the window used for the first.

    Grayscale follows PS3.4 N.2.1: Modality LUT → VOI LUT (explicit window, else the dataset's
    first window, else its VOI LUT Sequence, else the min/max of the frames) → polarity.
    """
    if str(ds.PhotometricInterpretation) not in ("MONOCHROME1", "MONOCHROME2"):
        colour = (_color_to_rgb8(*_decode_frame(ds, i), ds) for i in indices)
        return (Image.fromarray(pixels, "RGB") for pixels in colour), None
    fallback: list[Window] = []

    def minmax() -> Window:  # computed at most once, and only when a frame needs it
        if not fallback:
            fallback.append(_minmax_window(ds, params))
        return fallback[0]

    frames = (_grayscale_frame(ds, params, i, minmax) for i in indices)
    first, window = next(frames)
    rest = (Image.fromarray(pixels, "L") for pixels, _ in frames)
    return itertools.chain([Image.fromarray(first, "L")], rest), window


def _grayscale_frame(
    ds: Dataset, params: RenderParams, index: int, minmax: Callable[[], Window]
) -> tuple[Pixels8, Window | None]:
    """One grayscale frame through the LUTs of the image or of the presentation state."""
    arr, photometric = _decode_frame(ds, index)
    view = frame_view(ds, index)
    gsps = params.presentation_state
    source = presentation.modality_source(gsps, view) if gsps is not None else view
    gray = apply_modality_lut(arr, source).astype(np.float64, copy=False)
    window: Window | None
    if gsps is not None:
        voi = presentation.softcopy_voi(gsps, ds, index + 1 if _is_multiframe(ds) else None)
        if voi is not None:
            display, window = _apply_voi_source(gray, voi, source)
        else:
            display, window = _identity_voi(gray, source), None
        return _to_uint8(presentation.apply_presentation_lut(display, gsps)), window
    window = _requested_window(params, view)
    if window is None and view.get("VOILUTSequence"):
        display = _lut_to_8bit(gray, view)
    else:
        window = window or minmax()
        display = window_to_8bit(gray, window)
    if photometric == "MONOCHROME1":  # PS3.3 C.7.6.3.1.2: the minimum is white
        display = 255.0 - display
    return _to_uint8(display), window


def _decode_frame(ds: Dataset, index: int) -> tuple[npt.NDArray[np.generic], str]:
    """One frame as an array and its photometric interpretation after decoding.

    YBR_* and RGB come out as RGB (pydicom ``as_rgb``), which the returned name reflects.
    """
    meta = getattr(ds, "file_meta", None)
    syntax = (meta.get("TransferSyntaxUID") if meta is not None else None) or ns.TS_EXPLICIT_VR_LE
    decoder = get_decoder(syntax)
    plugin = _DECODING_PLUGINS.get(str(syntax), "")
    if plugin and plugin not in decoder.available_plugins:
        plugin = ""  # let pydicom choose among what is installed rather than fail
    arr, meta = decoder.as_array(ds, index=index, decoding_plugin=plugin)
    return arr, str(meta.get("photometric_interpretation", ds.PhotometricInterpretation))


def frame_view(ds: Dataset, index: int) -> Dataset:
    """A flat dataset with the LUT attributes that apply to frame ``index`` (0-based).

    Enhanced multi-frame objects keep Rescale and VOI per frame in functional groups (PS3.3
    C.7.6.16: Pixel Value Transformation, Frame VOI LUT); pydicom's LUT functions read them only
    from the top level, so they are lifted here: top level, then shared, then per-frame groups.
    """
    view = Dataset()
    for keyword in (
        "PhotometricInterpretation", "BitsStored", "PixelRepresentation", "RescaleSlope",
        "RescaleIntercept", "RescaleType", "ModalityLUTSequence", "WindowCenter", "WindowWidth",
        "VOILUTFunction", "VOILUTSequence",
    ):  # fmt: skip
        if keyword in ds:
            view[keyword] = ds[keyword]
    groups: list[Dataset] = []
    if ds.get("SharedFunctionalGroupsSequence"):
        groups.append(ds.SharedFunctionalGroupsSequence[0])
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    if index < len(per_frame):
        groups.append(per_frame[index])
    for group in groups:
        for sequence in ("PixelValueTransformationSequence", "FrameVOILUTSequence"):
            if group.get(sequence):
                for element in group[sequence][0]:
                    view[element.tag] = element
    if hasattr(ds, "file_meta"):
        view.file_meta = ds.file_meta  # pydicom reads LUT endianness (OW LUT Data) from here
    view.set_original_encoding(*ds.original_encoding[:2])
    return view


def _requested_window(params: RenderParams, view: Dataset) -> Window | None:
    """Explicit parameters first, else the dataset's first window (PS3.3 C.11.2.1.2)."""
    function = str(view.get("VOILUTFunction", "LINEAR")).upper() or "LINEAR"
    if params.window_center is not None and params.window_width is not None:
        return Window(float(params.window_center), float(params.window_width), function)
    if "WindowCenter" in view and "WindowWidth" in view:
        center, width = view["WindowCenter"], view["WindowWidth"]
        c = center.value[0] if center.VM > 1 else center.value
        w = width.value[0] if width.VM > 1 else width.value
        if c is not None and w is not None and float(w) > 0:
            return Window(float(c), float(w), function)
    return None


def _minmax_window(ds: Dataset, params: RenderParams) -> Window:
    """A LINEAR window from the smallest to the largest modality value of the rendered frames.

    All frames of an animation share it, so that brightness does not flicker; this costs a
    second decoding pass, only when neither the request nor the object gives a window.
    With LINEAR (C.11.2.1.2.1) ``min`` maps to 0 and ``max`` to 255 exactly when
    ``width = max - min + 1`` and ``center = (max + min + 1) / 2``.
    """
    low, high = math.inf, -math.inf
    number = _frame_or_none(params, ds)
    for index in [number - 1] if number is not None else range(_number_of_frames(ds)):
        values = apply_modality_lut(_decode_frame(ds, index)[0], frame_view(ds, index))
        low, high = min(low, float(values.min())), max(high, float(values.max()))
        if params.content_type in SINGLE_IMAGE_MEDIA_TYPES:
            break
    return Window((high + low + 1) / 2, high - low + 1)


def window_to_8bit(values: Gray, window: Window) -> Gray:
    """Apply a VOI window with pydicom's ``apply_windowing`` onto the range 0..255.

    ``apply_windowing`` scales to the *stored* range of the dataset it is given (libraries.md §4),
    so it is handed a small unsigned 8-bit description instead of the image; the result is then
    already in display units.  LINEAR requires width ≥ 1 (PS3.3 C.11.2.1.2.1); narrower windows
    use LINEAR_EXACT (C.11.2.1.3.2), the same mapping without the half-unit offsets.
    """
    function = window.function if window.function in ("LINEAR_EXACT", "SIGMOID") else "LINEAR"
    if function == "LINEAR" and window.width < 1:
        function = "LINEAR_EXACT"
    target = Dataset()
    target.PhotometricInterpretation = "MONOCHROME2"
    target.BitsStored = 8
    target.PixelRepresentation = 0
    # FD instead of DS: the values come from arithmetic and need not fit DS's 16 characters
    target.add_new(0x00281050, "FD", float(window.center))
    target.add_new(0x00281051, "FD", float(window.width))
    target.VOILUTFunction = function
    result: Gray = apply_windowing(values, target)
    return result


def _lut_to_8bit(values: Gray, source: Dataset) -> Gray:
    """Apply the first VOI LUT Sequence item (PS3.3 C.11.2.1.1) and scale its output to 0..255.

    Input is clipped to the LUT's domain first: pydicom indexes with an unsigned array, so values
    beyond 65535 + first mapped would wrap round instead of taking the last entry.
    """
    item = source.VOILUTSequence[0]
    entries, first, bits = (int(v) for v in item.LUTDescriptor)
    entries = entries or 1 << 16
    clipped = np.clip(np.rint(values), first, first + entries - 1).astype(np.int64)
    looked_up = apply_voi(clipped, source).astype(np.float64)
    result: Gray = looked_up * (255.0 / float((1 << bits) - 1))
    return result


def _apply_voi_source(values: Gray, voi: Dataset, modality: Dataset) -> tuple[Gray, Window | None]:
    """Apply a presentation state's Softcopy VOI LUT item: a window or a VOI LUT Sequence."""
    if voi.get("VOILUTSequence"):
        return _lut_to_8bit(values, voi), None
    window = _requested_window(RenderParams(), voi)
    if window is None:
        return _identity_voi(values, modality), None
    return window_to_8bit(values, window), window


def _identity_voi(values: Gray, modality: Dataset) -> Gray:
    """Identity VOI (PS3.4 N.2.1.2): the whole modality output range onto 0..255."""
    low, high = modality_output_range(modality)
    return window_to_8bit(values, Window((low + high) / 2, max(high - low, 1e-6), "LINEAR_EXACT"))


def modality_output_range(ds: Dataset) -> tuple[float, float]:
    """Smallest and largest possible Modality LUT output (PS3.3 C.11.1.1)."""
    if ds.get("ModalityLUTSequence"):
        return 0.0, float((1 << int(ds.ModalityLUTSequence[0].LUTDescriptor[2])) - 1)
    bits = int(ds.get("BitsStored") or 16)
    if int(ds.get("PixelRepresentation") or 0):
        low, high = -float(1 << (bits - 1)), float((1 << (bits - 1)) - 1)
    else:
        low, high = 0.0, float((1 << bits) - 1)
    slope = float(ds.get("RescaleSlope") or 1.0)
    intercept = float(ds.get("RescaleIntercept") or 0.0)
    ends = sorted((low * slope + intercept, high * slope + intercept))
    return ends[0], ends[1]


def _color_to_rgb8(arr: npt.NDArray[np.generic], photometric: str, ds: Dataset) -> Pixels8:
    """RGB (already converted from YBR_* by the decoder) or PALETTE COLOR to 8-bit RGB."""
    if photometric == "PALETTE COLOR":
        rgb = apply_color_lut(arr, ds)
        depth = int(ds.RedPaletteColorLookupTableDescriptor[2])
        return _to_uint8(rgb.astype(np.float64) * (255.0 / float((1 << depth) - 1)))
    if photometric != "RGB":
        raise errors.ProcessingFailure(f"Photometric Interpretation {photometric} not supported")
    bits = int(ds.get("BitsStored") or 8)
    if bits == 8 and arr.dtype == np.uint8:
        contiguous: Pixels8 = np.ascontiguousarray(arr, dtype=np.uint8)
        return contiguous
    return _to_uint8(arr.astype(np.float64) * (255.0 / float((1 << bits) - 1)))


def _to_uint8(values: npt.NDArray[np.floating] | npt.NDArray[np.integer]) -> Pixels8:
    """Round to nearest and clip to 0..255 (display values are never truncated)."""
    result: Pixels8 = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return result


# --- geometry -----------------------------------------------------------------------------------


def region_box(region: Region, width: int, height: int) -> tuple[int, int, int, int]:
    """Pixel box ``(left, top, right, bottom)`` of a normalised region, at least one pixel."""
    xmin, ymin, xmax, ymax = region
    left, top = min(round(xmin * width), width - 1), min(round(ymin * height), height - 1)
    right, bottom = max(round(xmax * width), left + 1), max(round(ymax * height), top + 1)
    return left, top, right, bottom


def fit_box(width: int, height: int, rows: int | None, columns: int | None) -> tuple[int, int]:
    """Output ``(width, height)`` for Rows/Columns (PS3.18 2017b §8.2.2, §8.2.3).

    Both given: the largest size inside the box with the image's aspect ratio.  One given: it is
    met and the other follows the aspect ratio.  None: the size is unchanged.
    """
    if rows is None and columns is None:
        return width, height
    scales = [s for s in (columns / width if columns else None, rows / height if rows else None)
              if s is not None]  # fmt: skip
    scale = min(scales)
    return max(1, round(width * scale)), max(1, round(height * scale))


def presentation_size(
    geometry: presentation.DisplayGeometry, rows: int | None, columns: int | None
) -> tuple[int, int]:
    """Output size under a presentation state (PS3.18 2017b §8.2.9, PS3.3 C.10.4).

    SCALE TO FIT fills the Rows/Columns box (or keeps the area's size without one).  MAGNIFY and
    TRUE SIZE keep their natural size while it fits the box and are shrunk to fit otherwise, so
    that nothing of the displayed area is cut off.
    """
    width, height = geometry.spatial_size
    if geometry.size_mode == presentation.SCALE_TO_FIT:
        return fit_box(width, height, rows, columns)
    natural = presentation.natural_size(geometry)
    if rows is None and columns is None:
        return natural
    boxed = fit_box(width, height, rows, columns)
    return natural if natural[0] <= boxed[0] and natural[1] <= boxed[1] else boxed


def _check_output_size(size: tuple[int, int], frames: int) -> None:
    width, height = size
    if max(width, height) > MAX_OUTPUT_SIDE or width * height * frames > MAX_OUTPUT_PIXELS:
        raise errors.ResourceLimit(
            f"output of {frames} frame(s) of {width}x{height} exceeds the rendering limits"
        )


def _resize(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Area averaging (BOX) when shrinking, LANCZOS when enlarging.

    Area averaging neither aliases nor rings on the sharp edges of bone and air, and agrees best
    with dcmtk's own reduction (``dcmj2pnm +Sxv``); LANCZOS keeps enlarged edges crisp.
    """
    if image.size == size:
        return image
    shrinking = size[0] <= image.width and size[1] <= image.height
    return image.resize(size, Image.Resampling.BOX if shrinking else Image.Resampling.LANCZOS)


# --- encoding -----------------------------------------------------------------------------------


def _quality_used(params: RenderParams) -> int | None:
    """ImageQuality applies to lossy types only (§8.2.8); JPEG has a default, JP2 is lossless."""
    if params.content_type == ns.MEDIA_JPEG:
        return params.image_quality or DEFAULT_JPEG_QUALITY
    if params.content_type == ns.MEDIA_JP2:
        return params.image_quality
    return None


def frame_duration_ms(ds: Dataset) -> int:
    """Animated GIF frame delay from Frame Time (0018,1063), else a frame rate, else a default.

    GIF counts delays in hundredths of a second, so the value is rounded to 10 ms here rather
    than truncated by the encoder.
    """
    milliseconds: float = DEFAULT_FRAME_MS
    try:
        if ds.get("FrameTime"):
            milliseconds = float(ds.FrameTime)
        else:
            for keyword in ("RecommendedDisplayFrameRate", "CineRate"):
                if ds.get(keyword):
                    milliseconds = 1000 / float(ds[keyword].value)
                    break
    except (TypeError, ValueError, ZeroDivisionError):
        milliseconds = DEFAULT_FRAME_MS
    if not math.isfinite(milliseconds):
        milliseconds = DEFAULT_FRAME_MS
    return max(10, round(milliseconds / 10) * 10)


def _encode(images: Sequence[Image.Image], media_type: str, quality: int | None, ms: int) -> bytes:
    """Encode with Pillow.

    * image/jpeg: baseline, 8-bit, Huffman, non-progressive (PS3.18 §6.1.1.3); Pillow's defaults.
    * image/gif: one frame, or all frames as an animation (the Multi-frame Image type).
    * image/jp2: JP2 file format; lossless unless ImageQuality is given, then a PSNR target
      of ``25 + 0.3 * quality`` dB (100 stays lossless).
    """
    out = io.BytesIO()
    first = images[0]
    if media_type == ns.MEDIA_JPEG:
        # 4:4:4: chroma subsampling would smear colour edges and burned-in text (PSNR on
        # colour bars 28 dB at 4:2:0 against 47 dB); still baseline Huffman.
        first.save(out, "JPEG", quality=quality, progressive=False, optimize=False, subsampling=0)
    elif media_type == ns.MEDIA_PNG:
        first.save(out, "PNG")
    elif media_type == ns.MEDIA_GIF:
        frames = [img if img.mode == "L" else img.convert("P", palette=Image.Palette.ADAPTIVE)
                  for img in images]  # fmt: skip
        if len(frames) == 1:
            frames[0].save(out, "GIF")
        else:
            frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=ms, loop=0)
    else:
        if quality is None or quality == 100:
            first.save(out, "JPEG2000", no_jp2=False, irreversible=False)
        else:
            first.save(
                out,
                "JPEG2000",
                no_jp2=False,
                irreversible=True,
                quality_mode="dB",
                quality_layers=[25 + 0.3 * quality],
            )
    return out.getvalue()
