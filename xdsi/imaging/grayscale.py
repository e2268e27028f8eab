"""Grayscale and colour pixel transforms of the rendering pipeline (PS3.4 Annex N; PS3.3 C.11).

One decoded frame becomes 8-bit display values: Modality LUT → VOI LUT (window with LINEAR /
LINEAR_EXACT / SIGMOID, or VOI LUT Sequence) → polarity (MONOCHROME1) or the presentation state's
Presentation LUT; colour (RGB, YBR_* via the decoder, PALETTE COLOR) becomes 8-bit RGB.  The LUT
steps are :mod:`pydicom.pixels.processing`; this module picks the step's inputs (per-frame
functional groups included) and scales to 0..255.  Geometry and encoding stay in
:mod:`xdsi.imaging.render`.

Decoding always names the pydicom plugin (``docs/libraries.md`` §3.3: the default plugin order
breaks on signed JPEG-LS when python-gdcm is installed, and 12-bit JPEG only decodes with
pylibjpeg).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset
from pydicom.pixels.decoders.base import get_decoder
from pydicom.pixels.processing import (
    apply_color_lut,
    apply_modality_lut,
    apply_voi,
    apply_windowing,
)

from xdsi import errors, ns
from xdsi.imaging import presentation
from xdsi.imaging.words import (
    WordFormat,
    all_words,
    as_words,
    native_frame,
    native_words,
    stored_value,
    transfer_syntax,
    word_format,
)
from xdsi.lru import LruMemory

Gray = npt.NDArray[np.float64]
Pixels8 = npt.NDArray[np.uint8]

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


@dataclass(frozen=True)
class Window:
    """A VOI window (PS3.3 C.11.2.1.2): center, width and VOI LUT Function."""

    center: float
    width: float
    function: str = "LINEAR"


def is_multiframe(ds: Dataset) -> bool:
    return "NumberOfFrames" in ds


def number_of_frames(ds: Dataset) -> int:
    try:
        return max(1, int(ds.get("NumberOfFrames") or 1))
    except (TypeError, ValueError):
        return 1



def grayscale_frame(
    ds: Dataset,
    index: int,
    explicit: tuple[float, float] | None,
    gsps: Dataset | None,
    minmax: Callable[[], Window],
) -> tuple[Pixels8, Window | None]:
    """Frame ``index`` (0-based) through the LUTs of the image or of the presentation state.

    ``explicit`` is the requested (WindowCenter, WindowWidth); without it the dataset's first
    window, else its VOI LUT Sequence, else ``minmax()`` (PS3.4 N.2.1).  Returns the display
    values and the window used (None for a VOI LUT Sequence).

    Every step from the stored value to the display value is a function of the stored value
    alone, so integer frames are mapped through 8-bit tables instead of running the steps on
    every pixel (same output, a fraction of the time):

    * without a presentation state, and when the dataset's own attributes decide the window
      (explicit or the dataset's first; no Modality or VOI LUT Sequence, no functional groups),
      through a table of every possible stored word, kept for the frames and images that share
      those attributes (:func:`_table_frame`, :mod:`xdsi.imaging.words`);
    * otherwise, when the frame's value range is small beside its pixel count (a 512x512 CT
      spans a few thousand values), through a table over that range (:func:`value_range`).
    """
    if gsps is None:
        done = _table_frame(ds, index, explicit)
        if done is not None:
            return done
    arr, photometric = decode_frame(ds, index)
    span = value_range(arr)
    if span is None:
        return display_values(arr, ds, index, photometric, explicit, gsps, minmax)
    low, values = span
    table, window = display_values(values, ds, index, photometric, explicit, gsps, minmax)
    return look_up(table, arr, low), window


Table = tuple[Pixels8, Window | None]
"""Display value of every stored word, and the window used."""
_TABLES: LruMemory[Hashable, Table | Literal[False]] = LruMemory(32)
"""Word tables by key; ``False``: the window needs the pixels, no table for that key (not
tried again for every frame)."""
_TABLE_KEY_TAGS: Final = (
    0x00281050,  # Window Center
    0x00281051,  # Window Width
    0x00281052,  # Rescale Intercept
    0x00281053,  # Rescale Slope
    0x00281056,  # VOI LUT Function
)
"""Every attribute :func:`display_values` reads from a dataset without the tags below."""
_NO_TABLE_TAGS: Final = (
    0x00283000,  # Modality LUT Sequence
    0x00283010,  # VOI LUT Sequence
    0x52009229,  # Shared Functional Groups Sequence
    0x52009230,  # Per-frame Functional Groups Sequence
)
_GRAYSCALE: Final = frozenset({"MONOCHROME1", "MONOCHROME2"})


class _NeedsPixels(Exception):
    """The window would come from the frame's own values: no table for the dataset alone."""


def _table_frame(
    ds: Dataset, index: int, explicit: tuple[float, float] | None
) -> tuple[Pixels8, Window | None] | None:
    """Frame ``index`` through the word table of its dataset, or None where none applies."""
    form = word_format(ds)
    photometric = str(ds.get("PhotometricInterpretation", ""))
    if form is None or photometric not in _GRAYSCALE or any(t in ds for t in _NO_TABLE_TAGS):
        return None
    key = (form, photometric, explicit, *(stored_value(ds, tag) for tag in _TABLE_KEY_TAGS))
    table = _TABLES.get(key)
    if table is None:  # built outside any lock: two threads may build one table once each
        table = _word_table(ds, form, photometric, explicit) or False
        _TABLES.put(key, table)
    if table is False:
        return None
    words = native_words(ds, index, form)
    if words is None:  # compressed: pydicom decodes (and corrects the unused bits)
        arr, decoded = decode_frame(ds, index)
        words = as_words(arr, form) if decoded == photometric else None
        if words is None:  # not integer words of that size: the range path (decodes again)
            return None
    values, window = table
    result: Pixels8 = np.take(values, words)
    return result, window


def _word_table(
    ds: Dataset, form: WordFormat, photometric: str, explicit: tuple[float, float] | None
) -> Table | None:
    """:func:`display_values` of every stored word of ``form``; None when the window would
    have to come from the pixels (:func:`_minmax_window`).

    The LUT steps run once per pixel value, 2**BitsStored of them (4,096 for 12 bits stored,
    as most CT): words differing only in their unused high bits share a value, and the table
    over all 2**BitsAllocated words is then one look-up of the words' values.
    """

    def needs_pixels() -> Window:
        raise _NeedsPixels

    values = all_words(form)
    if form.stored == form.allocated:  # every word is a value of its own, in word order
        distinct, low = values, None
    else:
        low = -(1 << (form.stored - 1)) if form.signed else 0
        distinct = np.arange(low, low + (1 << form.stored), dtype=values.dtype)
    try:
        table, window = display_values(distinct, ds, 0, photometric, explicit, None, needs_pixels)
    except _NeedsPixels:
        return None
    return (table if low is None else look_up(table, values, low)), window


LUT_MIN_PIXELS_PER_VALUE: Final = 4
"""A frame is mapped through a table only if it has this many pixels per value of its range."""


def value_range(arr: npt.NDArray[np.generic]) -> tuple[int, npt.NDArray[np.generic]] | None:
    """``(lowest value, every value from lowest to highest)`` of an integer frame, in its
    dtype, when a lookup table over that range pays off; else None."""
    if arr.dtype.kind not in "iu" or arr.size == 0:
        return None
    low, high = int(arr.min()), int(arr.max())
    if (high - low + 1) * LUT_MIN_PIXELS_PER_VALUE > arr.size:
        return None
    return low, np.arange(low, high + 1, dtype=arr.dtype)


def look_up(table: Pixels8, arr: npt.NDArray[np.generic], low: int) -> Pixels8:
    """``table[arr - low]`` for a frame whose values all lie in ``low .. low + len(table) - 1``.

    The offsets are computed in the frame's own integer type: where the difference overflows a
    signed type it wraps round to exactly the right unsigned value, read as such.
    """
    offsets = np.subtract(arr, arr.dtype.type(low)).view(f"u{arr.dtype.itemsize}")
    result: Pixels8 = np.take(table, offsets)
    return result


def display_values(
    values: npt.NDArray[np.generic],
    ds: Dataset,
    index: int,
    photometric: str,
    explicit: tuple[float, float] | None,
    gsps: Dataset | None,
    minmax: Callable[[], Window],
) -> tuple[Pixels8, Window | None]:
    """Stored values of frame ``index`` to 8-bit display values: Modality LUT, VOI LUT, polarity
    or Presentation LUT (PS3.4 N.2.1), value by value; and the window used."""
    view = frame_view(ds, index)
    source = presentation.modality_source(gsps, view) if gsps is not None else view
    gray = apply_modality_lut(values, source).astype(np.float64, copy=False)
    window: Window | None
    if gsps is not None:
        voi = presentation.softcopy_voi(gsps, ds, index + 1 if is_multiframe(ds) else None)
        if voi is not None:
            display, window = apply_voi_source(gray, voi, source)
        else:
            display, window = identity_voi(gray, source), None
        return to_uint8(presentation.apply_presentation_lut(display, gsps)), window
    window = requested_window(view, explicit)
    if window is None and view.get("VOILUTSequence"):
        display = lut_to_8bit(gray, view)
    else:
        window = window or minmax()
        display = window_to_8bit(gray, window)
    if photometric == "MONOCHROME1":  # PS3.3 C.7.6.3.1.2: the minimum is white
        display = 255.0 - display
    return to_uint8(display), window


def decode_frame(ds: Dataset, index: int) -> tuple[npt.NDArray[np.generic], str]:
    """One frame as an array and its photometric interpretation after decoding.

    YBR_* and RGB come out as RGB (pydicom ``as_rgb``), which the returned name reflects.
    One-sample native little-endian frames are read in place
    (:func:`xdsi.imaging.words.native_frame`).
    """
    native = native_frame(ds, index)
    if native is not None:
        return native, str(ds.PhotometricInterpretation)
    syntax = transfer_syntax(ds)
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
    A dataset without functional groups is its own view (building one took 0.2 ms).
    """
    if "SharedFunctionalGroupsSequence" not in ds and "PerFrameFunctionalGroupsSequence" not in ds:
        return ds
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


def requested_window(
    view: Dataset, explicit: tuple[float, float] | None = None
) -> Window | None:
    """Explicit parameters first, else the dataset's first window (PS3.3 C.11.2.1.2)."""
    function = str(view.get("VOILUTFunction", "LINEAR")).upper() or "LINEAR"
    if explicit is not None:
        return Window(float(explicit[0]), float(explicit[1]), function)
    if "WindowCenter" in view and "WindowWidth" in view:
        center, width = view["WindowCenter"], view["WindowWidth"]
        c = center.value[0] if center.VM > 1 else center.value
        w = width.value[0] if width.VM > 1 else width.value
        if c is not None and w is not None and float(w) > 0:
            return Window(float(c), float(w), function)
    return None


def window_to_8bit(values: Gray, window: Window) -> Gray:
    """Apply a VOI window onto the range 0..255.

    LINEAR (PS3.3 C.11.2.1.2.1) and LINEAR_EXACT (C.11.2.1.3.2) are one affine map clipped to
    the output range, computed here in place in a single new array: pydicom's
    ``apply_windowing`` makes several full-size masked passes, 2.4 of the 11 ms a 512x512 CT
    takes to render (bench_rendered).  SIGMOID and the degenerate LINEAR width of 1 (a step) go
    to ``apply_windowing``, which scales to the *stored* range of the dataset it is given
    (libraries.md §4), so it is handed a small unsigned 8-bit description instead of the image.
    LINEAR requires width ≥ 1; narrower windows use LINEAR_EXACT, the same mapping without the
    half-unit offsets.
    """
    function = window.function if window.function in ("LINEAR_EXACT", "SIGMOID") else "LINEAR"
    if function == "LINEAR" and window.width < 1:
        function = "LINEAR_EXACT"
    center, width = float(window.center), float(window.width)
    if function == "LINEAR" and width > 1:
        # y = ((x - (c - 0.5)) / (w - 1) + 0.5) * 255  ==  (x - low) * 255 / (w - 1)
        return _affine_clipped(values, center - 0.5 - (width - 1) / 2, 255.0 / (width - 1))
    if function == "LINEAR_EXACT" and width > 0:
        # y = ((x - c) / w + 0.5) * 255  ==  (x - (c - w / 2)) * 255 / w
        return _affine_clipped(values, center - width / 2, 255.0 / width)
    target = Dataset()
    target.PhotometricInterpretation = "MONOCHROME2"
    target.BitsStored = 8
    target.PixelRepresentation = 0
    # FD instead of DS: the values come from arithmetic and need not fit DS's 16 characters
    target.add_new(0x00281050, "FD", center)
    target.add_new(0x00281051, "FD", width)
    target.VOILUTFunction = function
    result: Gray = apply_windowing(values, target)
    return result


def _affine_clipped(values: Gray, low: float, scale: float) -> Gray:
    """``clip((values - low) * scale, 0, 255)`` with one allocation."""
    out: Gray = np.subtract(values, low, dtype=np.float64)
    out *= scale
    np.clip(out, 0.0, 255.0, out=out)
    return out


def lut_to_8bit(values: Gray, source: Dataset) -> Gray:
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


def apply_voi_source(values: Gray, voi: Dataset, modality: Dataset) -> tuple[Gray, Window | None]:
    """Apply a presentation state's Softcopy VOI LUT item: a window or a VOI LUT Sequence."""
    if voi.get("VOILUTSequence"):
        return lut_to_8bit(values, voi), None
    window = requested_window(voi)
    if window is None:
        return identity_voi(values, modality), None
    return window_to_8bit(values, window), window


def identity_voi(values: Gray, modality: Dataset) -> Gray:
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


def color_to_rgb8(arr: npt.NDArray[np.generic], photometric: str, ds: Dataset) -> Pixels8:
    """RGB (already converted from YBR_* by the decoder) or PALETTE COLOR to 8-bit RGB."""
    if photometric == "PALETTE COLOR":
        rgb = apply_color_lut(arr, ds)
        depth = int(ds.RedPaletteColorLookupTableDescriptor[2])
        return to_uint8(rgb.astype(np.float64) * (255.0 / float((1 << depth) - 1)))
    if photometric != "RGB":
        raise errors.ProcessingFailure(f"Photometric Interpretation {photometric} not supported")
    bits = int(ds.get("BitsStored") or 8)
    if bits == 8 and arr.dtype == np.uint8:
        contiguous: Pixels8 = np.ascontiguousarray(arr, dtype=np.uint8)
        return contiguous
    return to_uint8(arr.astype(np.float64) * (255.0 / float((1 << bits) - 1)))


def to_uint8(values: npt.NDArray[np.floating] | npt.NDArray[np.integer]) -> Pixels8:
    """Round to nearest and clip to 0..255 (display values are never truncated)."""
    rounded = np.rint(values)  # a new array: the caller's values are left alone
    np.clip(rounded, 0, 255, out=rounded)
    result: Pixels8 = rounded.astype(np.uint8)
    return result
