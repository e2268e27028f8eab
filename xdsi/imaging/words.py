"""Stored pixel words of one-sample images, and 8-bit display tables indexed by them.

Two speed measures of the rendering path (:mod:`xdsi.imaging.grayscale`), both exact:

* :func:`native_words` reads a frame of native little-endian Pixel Data (PS3.5 §8.1.1, §A.1-A.2)
  in place, as the stored words; :func:`correct_unused_bits` gives them the values pydicom's
  decoder would (unused high bits cleared, or sign-extended for signed data, PS3.5 §8.1.1).
  Our own code, not a library gap in correctness but in speed: pydicom's ``Decoder.as_array``
  validates its options, copies the frame and corrects it in place on the copy, 0.19 ms for the
  512x512 CT against 0.09 ms here.
* :func:`stored_value` keys, in :mod:`xdsi.imaging.grayscale`, tables of 2**BitsAllocated
  entries giving the display value of every possible stored word (Modality LUT, VOI window,
  polarity; PS3.4 N.2.1).  A frame is then one ``np.take`` of its words: no bit correction, no
  range scan, no LUT arithmetic, no conversion of the dataset's attributes (the key reads their
  stored bytes).  The images of a series share their rescale and window, so after its first
  image a series is rendered from a table: the whole transaction for one 512x512 CT went from
  2.97-3.06 to 2.46 ms (medians, alternating runs; docs/performance.md).  Building a table
  costs 0.2-0.35 ms, once per key (the LUT steps run on the 2**BitsStored pixel values).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag

from xdsi import ns

Words = npt.NDArray[np.unsignedinteger]

NATIVE_LITTLE_ENDIAN: Final = frozenset(
    {ns.TS_IMPLICIT_VR_LE, ns.TS_EXPLICIT_VR_LE, ns.TS_DEFLATED_EXPLICIT_VR_LE}
)
"""Transfer syntaxes whose Pixel Data, once read by pydicom, is the frames' little-endian words."""


def transfer_syntax(ds: Dataset | None) -> str:
    """The dataset's Transfer Syntax UID (Explicit VR Little Endian without file meta, or
    without a dataset)."""
    meta = getattr(ds, "file_meta", None) if ds is not None else None
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    return str(syntax).strip() if syntax else ns.TS_EXPLICIT_VR_LE


@dataclass(frozen=True)
class WordFormat:
    """How one-sample pixel words are stored (PS3.3 C.7.6.3.1: Image Pixel attributes)."""

    allocated: int
    stored: int
    signed: bool

    @property
    def itemsize(self) -> int:
        return self.allocated // 8


def word_format(ds: Dataset) -> WordFormat | None:
    """The format of a one-sample, 8- or 16-bit image's words; None for anything else."""
    try:
        samples = int(ds.get("SamplesPerPixel") or 1)
        allocated = int(ds.BitsAllocated)
        stored = int(ds.get("BitsStored") or allocated)
        signed = int(ds.get("PixelRepresentation") or 0) == 1
    except (AttributeError, TypeError, ValueError):
        return None
    if samples != 1 or allocated not in (8, 16) or not 1 <= stored <= allocated:
        return None
    return WordFormat(allocated, stored, signed)


def native_words(ds: Dataset, index: int, form: WordFormat) -> Words | None:
    """Frame ``index`` of native little-endian Pixel Data stored as ``form`` (the caller's
    :func:`word_format` of ``ds``) as a read-only view of its stored words (unsigned, unused
    bits as stored); None when the frame is not native or the Pixel Data is too short
    (pydicom's decoder then gives the precise error)."""
    if transfer_syntax(ds) not in NATIVE_LITTLE_ENDIAN:
        return None
    try:
        rows, columns = int(ds.Rows), int(ds.Columns)
        data = ds.get("PixelData")
    except (AttributeError, TypeError, ValueError):
        return None
    count = rows * columns
    size = form.itemsize
    if not isinstance(data, bytes) or count <= 0 or (index + 1) * count * size > len(data):
        return None
    words: Words = np.frombuffer(data, f"<u{size}", count, index * count * size)
    return words.reshape(rows, columns)


def correct_unused_bits(words: Words, form: WordFormat) -> npt.NDArray[np.integer]:
    """The pixel values of stored words: unused high bits cleared (unsigned) or the sign bit
    extended over them (signed), as pydicom's decoder gives them."""
    values: npt.NDArray[np.integer] = words.view(f"{'i' if form.signed else 'u'}{form.itemsize}")
    if form.stored == form.allocated:
        return values
    shift = values.dtype.type(form.allocated - form.stored)
    shifted: npt.NDArray[np.integer] = np.left_shift(values, shift)
    np.right_shift(shifted, shift, out=shifted)  # an arithmetic shift when signed
    return shifted


def native_frame(ds: Dataset, index: int) -> npt.NDArray[np.integer] | None:
    """Frame ``index`` of native one-sample 8/16-bit Pixel Data as pydicom's decoder gives it
    (a read-only view when no bit needs correcting), or None: not native, not one-sample
    8/16-bit (:func:`word_format`), or too short (:func:`native_words`)."""
    form = word_format(ds)
    if form is None:
        return None
    words = native_words(ds, index, form)
    return None if words is None else correct_unused_bits(words, form)


def all_words(form: WordFormat) -> npt.NDArray[np.integer]:
    """The pixel value of every possible stored word, in word order (a table's domain)."""
    words: Words = np.arange(1 << form.allocated, dtype=f"u{form.itemsize}")
    return correct_unused_bits(words, form)


def as_words(values: npt.NDArray[np.generic], form: WordFormat) -> Words | None:
    """Corrected pixel values (a compressed frame decoded by pydicom) as the words that index a
    table of ``form``; None if they are not integers of that size."""
    if values.dtype.kind not in "iu" or values.dtype.itemsize != form.itemsize:
        return None
    words: Words = values.view(values.dtype.str.replace("i", "u"))  # byte order kept
    return words


def stored_value(ds: Dataset, tag: int) -> Hashable:
    """A hashable token of an attribute's value for a table key: its stored bytes while pydicom
    has not converted it (no conversion cost), else the text of its value; None if absent."""
    element = ds.get_item(BaseTag(tag))
    if element is None:
        return None
    if isinstance(element, RawDataElement):
        return element.value
    return str(element.value)


__all__ = [
    "NATIVE_LITTLE_ENDIAN",
    "WordFormat",
    "Words",
    "all_words",
    "as_words",
    "correct_unused_bits",
    "native_frame",
    "native_words",
    "stored_value",
    "transfer_syntax",
    "word_format",
]
