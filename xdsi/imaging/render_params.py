"""Parameters of a rendered request: parsing and checking (PS3.18 2017b §6.4.2.1, §8.1/§8.2).

:class:`RenderParams` is what one ``wado:RenderedDocumentRequest`` asks for; the ``parse_*``
functions turn its wire text into values (``0012`` on malformed text) and
:func:`validate_params` checks the values against the standard and against the object to be
rendered, raising the :mod:`xdsi.errors` class whose code PS3.18 Table 6.4-1 names.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Final

from PIL import features
from pydicom.dataset import Dataset

from xdsi import errors, ns
from xdsi.imaging import annotate, presentation
from xdsi.imaging.grayscale import is_multiframe, number_of_frames

Region = tuple[float, float, float, float]

RENDERED_MEDIA_TYPES: Final = (ns.MEDIA_JPEG, ns.MEDIA_PNG, ns.MEDIA_GIF, ns.MEDIA_JP2)
"""Single Frame Image media types of PS3.18 2017b Table 6.1.1-3 (WS column) that we produce."""
SINGLE_IMAGE_MEDIA_TYPES: Final = frozenset({ns.MEDIA_JPEG, ns.MEDIA_PNG, ns.MEDIA_JP2})
"""Types that hold exactly one image; image/gif is the Multi-frame Image type (animated)."""
MAX_OUTPUT_SIDE: Final = 16384
"""Largest Rows/Columns produced; beyond it a request gets ``0005`` (JPEG's own limit is 65535)."""
ANNOTATION_VALUES: Final = frozenset({annotate.PATIENT, annotate.TECHNIQUE})
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
        presentation.check_applicable(params.presentation_state, ds, frame_or_none(params, ds))
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
    frames = number_of_frames(ds)
    if number is not None and is_multiframe(ds) and number > frames:
        raise errors.FrameOutOfRange(f"FrameNumber {number} > Number of Frames {frames}")
    if number is None and frames > 1 and params.content_type in SINGLE_IMAGE_MEDIA_TYPES:
        raise errors.SingleImageFormatUnavailable(
            f"{params.content_type} holds one image: give FrameNumber (1..{frames}) "
            "or ask for image/gif"
        )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def frame_or_none(params: RenderParams, ds: Dataset) -> int | None:
    """The frame number actually used: ignored for objects that are not multi-frame (§8.2.7)."""
    return params.frame_number if is_multiframe(ds) else None
