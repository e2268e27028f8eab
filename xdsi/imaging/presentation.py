"""Application of a Grayscale Softcopy Presentation State (GSPS) while rendering.

PS3.18 2017b §8.2.9 lets a Rendered request name a presentation state; PS3.4 Annex N gives the
order in which it is applied (Figure N.2-1):

1. grayscale: Modality LUT (the presentation state's, C.11.1) → Softcopy VOI LUT (C.11.8) →
   Presentation LUT (C.11.6: shape IDENTITY/INVERSE or a LUT) — helpers used by
   :mod:`xdsi.imaging.grayscale`;
2. spatial: Displayed Area Selection (C.10.4) and Spatial Transformation (C.10.6: rotation
   clockwise, then horizontal flip), then scaling to the requested size;
3. Graphic Annotation (C.10.5) drawn last, PIXEL-unit coordinates carried through the same
   transformation, DISPLAY-unit ones relative to the displayed area.

Not applied (documented gaps): shutters (C.7.6.11), overlays/bitmap display shutter, mask
subtraction (C.7.6.10), Presentation Pixel Spacing/Aspect Ratio (pixels are taken as square).
TRUE SIZE needs the physical size of a display, which a rendered image has not; it is treated as
MAGNIFY with ratio 1 (one image pixel per output pixel).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw
from pydicom.dataset import Dataset
from pydicom.uid import GrayscaleSoftcopyPresentationStateStorage

from xdsi import errors
from xdsi.imaging import annotate

Gray = npt.NDArray[np.float64]
Point = tuple[float, float]

GSPS_SOP_CLASS: Final = GrayscaleSoftcopyPresentationStateStorage
_CURVE_STEPS: Final = 72
"""Circles and ellipses are drawn as polygons so that flips, rotation and scaling carry over."""

SCALE_TO_FIT: Final = "SCALE TO FIT"
TRUE_SIZE: Final = "TRUE SIZE"
MAGNIFY: Final = "MAGNIFY"


def is_gsps(ds: Dataset) -> bool:
    """True for a Grayscale Softcopy Presentation State instance (PS3.3 A.33.1)."""
    return str(ds.get("SOPClassUID", "")) == GSPS_SOP_CLASS


def check_applicable(gsps: Dataset, image: Dataset, frame_number: int | None) -> None:
    """Refuse (``0012``) a presentation state that is not a GSPS or does not apply to ``image``.

    The Presentation State Relationship module (C.11.11) lists the images a GSPS applies to; a GSPS
    only transforms grayscale (MONOCHROME1/2) images.
    """
    if not is_gsps(gsps):
        raise errors.InvalidParameter(
            f"presentation state SOP Class {gsps.get('SOPClassUID', '?')} is not a Grayscale "
            "Softcopy Presentation State"
        )
    if image.get("PhotometricInterpretation") not in ("MONOCHROME1", "MONOCHROME2"):
        raise errors.InvalidParameter(
            "a grayscale presentation state cannot apply to a colour image"
        )
    references = [
        ref for series in gsps.get("ReferencedSeriesSequence") or []
        for ref in series.get("ReferencedImageSequence") or []
    ]  # fmt: skip
    if not any(_matches(ref, image, frame_number) for ref in references):
        raise errors.InvalidParameter(
            f"presentation state {gsps.get('SOPInstanceUID', '?')} does not reference this image"
        )


def _matches(reference: Dataset, image: Dataset, frame_number: int | None) -> bool:
    """Does a Referenced Image item (C.10.5.1.1/C.11.11) cover this image and frame?"""
    if str(reference.get("ReferencedSOPInstanceUID", "")) != str(image.get("SOPInstanceUID", "")):
        return False
    frames = reference.get("ReferencedFrameNumber")
    if frames is None or frame_number is None:
        return True
    listed = [int(f) for f in (frames if isinstance(frames, list | tuple) else [frames])]
    return frame_number in listed or not listed


def _applies(item: Dataset, image: Dataset, frame_number: int | None) -> bool:
    """Items without Referenced Image Sequence apply to every referenced image."""
    references = item.get("ReferencedImageSequence")
    return not references or any(_matches(r, image, frame_number) for r in references)


# --- grayscale transformations (PS3.4 N.2.1) ----------------------------------------------------


def modality_source(gsps: Dataset, image_view: Dataset) -> Dataset:
    """The dataset whose Modality LUT applies: the presentation state's, if it has one.

    A GSPS carries the Modality LUT of its images when they have one (C.11.1, "required if ..."),
    so a GSPS without one leaves the image's (identity for conforming images).
    """
    has_rescale = "RescaleSlope" in gsps and "RescaleIntercept" in gsps
    if not has_rescale and not gsps.get("ModalityLUTSequence"):
        return image_view
    view = Dataset()
    for keyword in ("BitsStored", "PixelRepresentation", "PhotometricInterpretation"):
        if keyword in image_view:
            view[keyword] = image_view[keyword]
    for keyword in ("RescaleSlope", "RescaleIntercept", "RescaleType", "ModalityLUTSequence"):
        if keyword in gsps:
            view[keyword] = gsps[keyword]
    if hasattr(gsps, "file_meta"):
        view.file_meta = gsps.file_meta
    view.set_original_encoding(*gsps.original_encoding[:2])
    return view


def softcopy_voi(gsps: Dataset, image: Dataset, frame_number: int | None) -> Dataset | None:
    """The Softcopy VOI LUT Sequence item (C.11.8) for this image/frame, or None (identity)."""
    for item in gsps.get("SoftcopyVOILUTSequence") or []:
        if _applies(item, image, frame_number):
            view = Dataset()
            for element in item:
                view[element.tag] = element
            if hasattr(gsps, "file_meta"):
                view.file_meta = gsps.file_meta
            view.set_original_encoding(*gsps.original_encoding[:2])
            return view
    return None


def apply_presentation_lut(display: Gray, gsps: Dataset) -> Gray:
    """Presentation LUT (C.11.6) on VOI output already scaled to 0..255.

    Own code: pydicom's ``apply_presentation_lut`` stretches the input by its own min/max and
    inverts against the array maximum, both data-dependent, where PS3.4 N.2.1.3 maps the fixed
    VOI output range.
    """
    if gsps.get("PresentationLUTSequence"):
        item = gsps.PresentationLUTSequence[0]
        entries, _, bits = (int(v) for v in item.LUTDescriptor)
        entries = entries or 1 << 16
        lut = np.asarray(item.LUTData, dtype=np.float64).reshape(-1)[:entries]
        index = np.clip(np.rint(display * ((entries - 1) / 255.0)), 0, entries - 1).astype(int)
        result: Gray = lut[index] * (255.0 / float((1 << bits) - 1))
        return result
    if str(gsps.get("PresentationLUTShape", "IDENTITY")).upper() == "INVERSE":
        inverted: Gray = 255.0 - display
        return inverted
    return display


# --- spatial transformations (C.10.4, C.10.6) ---------------------------------------------------


@dataclass(frozen=True)
class DisplayGeometry:
    """Displayed area (edge coordinates in the original pixel matrix) and its transformation.

    ``left, top, right, bottom`` bound the selected area with the TLHC of the first pixel at
    0.0/0.0 (the PIXEL-unit convention of C.10.5); ``rotation`` is clockwise degrees, applied
    before ``flip`` (C.10.6).
    """

    left: float
    top: float
    right: float
    bottom: float
    rotation: int = 0
    flip: bool = False
    size_mode: str = SCALE_TO_FIT
    magnification: float = 1.0

    @property
    def area_size(self) -> tuple[int, int]:
        """Width and height of the area in image pixels, before rotation."""
        return max(1, round(self.right - self.left)), max(1, round(self.bottom - self.top))

    @property
    def spatial_size(self) -> tuple[int, int]:
        """Width and height after rotation: what is shown, before scaling."""
        width, height = self.area_size
        return (height, width) if self.rotation in (90, 270) else (width, height)

    def to_display(self, x: float, y: float) -> Point:
        """Map an original PIXEL-unit point to the rotated/flipped area, in area pixels."""
        width, height = self.area_size
        x, y = x - self.left, y - self.top
        if self.rotation == 90:
            x, y = height - y, x
        elif self.rotation == 180:
            x, y = width - x, height - y
        elif self.rotation == 270:
            x, y = y, width - x
        if self.flip:
            x = self.spatial_size[0] - x
        return x, y


def display_geometry(gsps: Dataset, image: Dataset, frame_number: int | None) -> DisplayGeometry:
    """Read Displayed Area Selection (C.10.4) and Spatial Transformation (C.10.6).

    Displayed Area corners are 1-based ``column\\row`` pixel positions in the image *before*
    spatial transformation; the area spans both corners whichever way round they are given.
    """
    rows, columns = int(image.Rows), int(image.Columns)
    left, top, right, bottom = 0.0, 0.0, float(columns), float(rows)
    mode, magnification = SCALE_TO_FIT, 1.0
    for item in gsps.get("DisplayedAreaSelectionSequence") or []:
        if not _applies(item, image, frame_number):
            continue
        (x1, y1), (x2, y2) = (
            (float(v[0]), float(v[1]))
            for v in (item.DisplayedAreaTopLeftHandCorner, item.DisplayedAreaBottomRightHandCorner)
        )
        left, right = min(x1, x2) - 1.0, max(x1, x2)
        top, bottom = min(y1, y2) - 1.0, max(y1, y2)
        mode = str(item.get("PresentationSizeMode", SCALE_TO_FIT)).upper()
        if mode == MAGNIFY:
            magnification = float(item.get("PresentationPixelMagnificationRatio") or 1.0)
            if not math.isfinite(magnification) or magnification <= 0:
                raise errors.InvalidParameter("Presentation Pixel Magnification Ratio must be > 0")
        break
    rotation = int(gsps.get("ImageRotation") or 0) % 360
    if rotation not in (0, 90, 180, 270):
        raise errors.InvalidParameter(f"Image Rotation {rotation} is not 0, 90, 180 or 270")
    flip = str(gsps.get("ImageHorizontalFlip", "N")).upper() == "Y"
    return DisplayGeometry(left, top, right, bottom, rotation, flip, mode, magnification)


def apply_spatial(image: Image.Image, geometry: DisplayGeometry) -> Image.Image:
    """Crop the displayed area (zero-padded outside the image), rotate clockwise, then flip."""
    box = (
        round(geometry.left),
        round(geometry.top),
        round(geometry.left) + geometry.area_size[0],
        round(geometry.top) + geometry.area_size[1],
    )
    result = image.crop(box)
    # PIL's ROTATE_n turn counter-clockwise
    turns = {90: Image.Transpose.ROTATE_270, 180: Image.Transpose.ROTATE_180,
             270: Image.Transpose.ROTATE_90}  # fmt: skip
    if geometry.rotation in turns:
        result = result.transpose(turns[geometry.rotation])
    if geometry.flip:
        result = result.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return result


def natural_size(geometry: DisplayGeometry) -> tuple[int, int]:
    """Output size with no Rows/Columns given: the area at its magnification (C.10.4)."""
    width, height = geometry.spatial_size
    scale = geometry.magnification if geometry.size_mode == MAGNIFY else 1.0
    return max(1, round(width * scale)), max(1, round(height * scale))


# --- graphic annotation (C.10.5) ----------------------------------------------------------------


def draw_graphics(
    image: Image.Image,
    gsps: Dataset,
    source: Dataset,
    frame_number: int | None,
    geometry: DisplayGeometry,
) -> None:
    """Draw the Graphic Annotation Sequence on the final-size ``image`` in place.

    Layers are drawn in Graphic Layer Order with their Recommended Display Grayscale Value
    (white otherwise).  INTERPOLATED curves are drawn as polylines.
    """
    draw = ImageDraw.Draw(image)
    scale_x = image.width / geometry.spatial_size[0]
    scale_y = image.height / geometry.spatial_size[1]
    line = max(1, round(min(image.size) / 256))
    font = annotate.font_for(image.height)

    def place(x: float, y: float, units: str) -> Point:
        if units.upper() == "DISPLAY":
            return x * image.width, y * image.height
        dx, dy = geometry.to_display(x, y)
        return dx * scale_x, dy * scale_y

    for item, value in _annotations_in_layer_order(gsps, source, frame_number):
        shade = _shade(image.mode, value)
        outline = _shade(image.mode, 0 if value > 32767 else 65535)
        for graphic in item.get("GraphicObjectSequence") or []:
            units = str(graphic.get("GraphicAnnotationUnits", "PIXEL"))
            points = [place(x, y, units) for x, y in _graphic_points(graphic)]
            if not points:
                continue
            kind = str(graphic.get("GraphicType", "POLYLINE")).upper()
            if kind == "POINT":
                for x, y in points:
                    r = line + 1
                    draw.ellipse((x - r, y - r, x + r, y + r), fill=shade)
                continue
            filled = str(graphic.get("GraphicFilled", "N")).upper() == "Y"
            if filled and len(points) > 2:
                draw.polygon(points, fill=shade)
            else:
                draw.line(points, fill=shade, width=line, joint="curve")
        for text in item.get("TextObjectSequence") or []:
            _draw_text(draw, text, place, font, shade, outline)


def _annotations_in_layer_order(
    gsps: Dataset, source: Dataset, frame_number: int | None
) -> Iterator[tuple[Dataset, int]]:
    layers = {
        str(layer.GraphicLayer): (
            int(layer.get("GraphicLayerOrder") or 0),
            int(layer.get("GraphicLayerRecommendedDisplayGrayscaleValue", 65535)),
        )
        for layer in gsps.get("GraphicLayerSequence") or []
    }
    items = [
        item for item in gsps.get("GraphicAnnotationSequence") or []
        if _applies(item, source, frame_number)
    ]  # fmt: skip
    items.sort(key=lambda i: layers.get(str(i.get("GraphicLayer", "")), (0, 0))[0])
    for item in items:
        yield item, layers.get(str(item.get("GraphicLayer", "")), (0, 65535))[1]


def _shade(mode: str, value: int) -> int | tuple[int, int, int]:
    gray = max(0, min(255, value >> 8))
    return gray if mode == "L" else (gray, gray, gray)


def _graphic_points(graphic: Dataset) -> list[Point]:
    """Points of one Graphic Object; CIRCLE and ELLIPSE expanded into closed polygons."""
    data = [float(v) for v in (graphic.get("GraphicData") or [])]
    points = list(zip(data[0::2], data[1::2], strict=False))
    kind = str(graphic.get("GraphicType", "POLYLINE")).upper()
    if kind == "CIRCLE" and len(points) >= 2:
        (cx, cy), (px, py) = points[:2]
        radius = math.hypot(px - cx, py - cy)
        return _curve((cx, cy), (radius, 0.0), (0.0, radius))
    if kind == "ELLIPSE" and len(points) >= 4:
        (ax, ay), (bx, by), (cx, cy), (dx, dy) = points[:4]
        center = ((ax + bx) / 2, (ay + by) / 2)
        major = ((bx - ax) / 2, (by - ay) / 2)
        minor = ((dx - cx) / 2, (dy - cy) / 2)
        return _curve(center, major, minor)
    return points


def _curve(center: Point, u: Point, v: Point) -> list[Point]:
    steps = [2 * math.pi * k / _CURVE_STEPS for k in range(_CURVE_STEPS + 1)]
    return [
        (center[0] + u[0] * math.cos(t) + v[0] * math.sin(t),
         center[1] + u[1] * math.cos(t) + v[1] * math.sin(t))
        for t in steps
    ]  # fmt: skip


def _draw_text(
    draw: ImageDraw.ImageDraw,
    text: Dataset,
    place: annotate.Placer,
    font: annotate.Font,
    shade: int | tuple[int, int, int],
    outline: int | tuple[int, int, int],
) -> None:
    """A Text Object (C.10.5.1.2): in its bounding box, else beside its anchor point."""
    value = str(text.get("UnformattedTextValue", "")).strip()
    if not value:
        return
    if text.get("BoundingBoxTopLeftHandCorner") is not None:
        units = str(text.get("BoundingBoxAnnotationUnits", "PIXEL"))
        corners = [
            place(float(c[0]), float(c[1]), units)
            for c in (text.BoundingBoxTopLeftHandCorner, text.BoundingBoxBottomRightHandCorner)
        ]
        origin = (min(c[0] for c in corners), min(c[1] for c in corners))
    elif text.get("AnchorPoint") is not None:
        units = str(text.get("AnchorPointAnnotationUnits", "PIXEL"))
        anchor = place(float(text.AnchorPoint[0]), float(text.AnchorPoint[1]), units)
        origin = (anchor[0] + 4, anchor[1] + 4)
        if str(text.get("AnchorPointVisibility", "N")).upper() == "Y":
            draw.line([anchor, origin], fill=shade, width=1)
    else:
        return
    draw.multiline_text(origin, value, fill=shade, font=font, stroke_width=1, stroke_fill=outline)
