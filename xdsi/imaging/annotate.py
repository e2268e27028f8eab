"""Burned-in annotation of rendered images (PS3.18 2017b §8.2.1).

``Annotation`` is a list of ``patient`` and/or ``technique``; the text is burned into the pixels
after region selection and the presentation state (§8.2.1), i.e. on the final-size image here.
Patient text goes top left, technique text bottom left, in white with a black outline so that it
stays legible on any background.  The font is Pillow's bundled one (Aileron, FreeType), scaled to
the image; Pillow falls back to its bitmap font where FreeType is missing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from PIL import Image, ImageDraw, ImageFont
from pydicom.dataset import Dataset
from pydicom.valuerep import PersonName

PATIENT: Final = "patient"
TECHNIQUE: Final = "technique"
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
Placer = Callable[[float, float, str], tuple[float, float]]
"""Maps an annotation point (x, y, units) to output pixels (used by presentation states)."""

_MIN_FONT_PX: Final = 9
_FONT_FRACTION: Final = 24
"""Text height is about 1/24 of the image height, never below :data:`_MIN_FONT_PX`."""


def font_for(height: int) -> Font:
    """The bundled font at a size legible on an image ``height`` pixels high."""
    return ImageFont.load_default(size=max(_MIN_FONT_PX, height // _FONT_FRACTION))


def patient_lines(ds: Dataset) -> list[str]:
    """Name, ID and birth date (PS3.3 C.7.1.1), in a readable order, empty values left out."""
    lines: list[str] = []
    name = ds.get("PatientName")
    if name:
        person = name if isinstance(name, PersonName) else PersonName(str(name))
        given = " ".join(p for p in (person.given_name, person.middle_name) if p)
        lines.append(", ".join(p for p in (person.family_name, given) if p) or str(person))
    if ds.get("PatientID"):
        lines.append(f"ID {ds.PatientID}")
    birth = str(ds.get("PatientBirthDate") or "")
    if len(birth) == 8 and birth.isdigit():
        lines.append(f"DOB {birth[:4]}-{birth[4:6]}-{birth[6:]}")
    elif birth:
        lines.append(f"DOB {birth}")
    return lines


def technique_lines(
    ds: Dataset,
    *,
    frame_number: int | None,
    frames: int,
    window: tuple[float, float] | None,
) -> list[str]:
    """Modality, exposure (kVp, mAs), slice thickness, window and frame (PS3.3 C.8.7.2, C.7.6.2)."""
    lines: list[str] = []
    modality = str(ds.get("Modality") or "")
    description = str(ds.get("SeriesDescription") or "")
    head = " ".join(p for p in (modality, description) if p)
    if head:
        lines.append(head)
    exposure: list[str] = []
    if ds.get("KVP"):
        exposure.append(f"{_num(ds.KVP)} kVp")
    mas = _exposure_mas(ds)
    if mas is not None:
        exposure.append(f"{_num(mas)} mAs")
    if ds.get("SliceThickness"):
        exposure.append(f"ST {_num(ds.SliceThickness)} mm")
    if exposure:
        lines.append("  ".join(exposure))
    if window is not None:
        lines.append(f"WC {_num(window[0])}  WW {_num(window[1])}")
    if frame_number is not None:
        lines.append(f"Frame {frame_number}/{frames}")
    return lines


def _exposure_mas(ds: Dataset) -> float | None:
    """Exposure (0018,1152) in mAs, else Exposure in µAs (0018,1153) / 1000."""
    try:
        if ds.get("Exposure") is not None and str(ds.Exposure) != "":
            return float(ds.Exposure)
        if ds.get("ExposureInuAs") is not None and str(ds.ExposureInuAs) != "":
            return float(ds.ExposureInuAs) / 1000.0
    except (TypeError, ValueError):
        return None
    return None


def _num(value: object) -> str:
    """A number without a trailing ``.0``; anything unparsable as it was written."""
    try:
        number = float(str(value))
    except ValueError:
        return str(value)
    return f"{number:g}"


def burn_annotations(
    image: Image.Image,
    ds: Dataset,
    kinds: frozenset[str],
    *,
    frame_number: int | None,
    frames: int = 1,
    window: tuple[float, float] | None = None,
) -> Image.Image:
    """Return ``image`` with the requested annotation burned in (a copy when text is drawn)."""
    if not kinds:
        return image
    result = image.copy()
    draw = ImageDraw.Draw(result)
    font = font_for(result.height)
    white: int | tuple[int, int, int] = 255 if result.mode == "L" else (255, 255, 255)
    black: int | tuple[int, int, int] = 0 if result.mode == "L" else (0, 0, 0)
    margin = max(2, result.height // 100)
    if PATIENT in kinds:
        text = "\n".join(patient_lines(ds))
        draw.multiline_text(
            (margin, margin), text, fill=white, font=font, stroke_width=1, stroke_fill=black
        )
    if TECHNIQUE in kinds:
        text = "\n".join(
            technique_lines(ds, frame_number=frame_number, frames=frames, window=window)
        )
        draw.multiline_text(
            (margin, result.height - margin),
            text,
            fill=white,
            font=font,
            anchor="ld",  # bottom-left: the last line sits on the bottom margin
            stroke_width=1,
            stroke_fill=black,
        )
    return result
