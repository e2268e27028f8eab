"""Transfer-syntax choice and transcoding for RAD-69 (RAD TF-3 §4.69.4.2.3; PS3.18 2017b §6.4.1.2).

The consumer lists the transfer syntaxes it accepts; "the pixel data shall be encoded using one
of the DICOM transfer syntaxes included in the request or an error status shall be returned"
(RAD69-005).  No text defines an order of preference, so xdsi reads the list as the consumer's
preference order (the reading Sequoia test rig_2018-5422b assumes).

Choice rule (conformance statement)
-----------------------------------
1. The stored syntax, if listed: the object is sent unchanged.
2. Otherwise the first listed syntax that can be produced **without loss** from the stored data.
   Lossless targets: Explicit VR LE, Implicit VR LE, Deflated Explicit VR LE, RLE, JPEG Lossless
   Process 14 (``.4.57``) and SV1 (``.4.70``), JPEG-LS (``.4.80``, and ``.4.81`` written with
   NEAR = 0), JPEG 2000 (``.4.90``, and ``.4.91`` written reversibly); see
   :mod:`xdsi.imaging.codecs`.
   Decoding data that was stored lossy and re-encoding it losslessly adds no loss, so it counts.
3. Otherwise the first listed lossy syntax it can be produced in: JPEG Baseline ``.4.50`` (8 bits)
   or JPEG Extended ``.4.51`` (8 or 12 bits, monochrome).  Pixels are lost only in a syntax the
   consumer listed, and only when it listed no lossless one.
4. Otherwise none: the caller reports ``urn:dicom:wado:0007``.

What "can be produced" means:

* Codec constraints are PS3.5 §8.2 (Bits Allocated/Stored, Samples per Pixel, Photometric
  Interpretation, signedness; e.g. JPEG-LS colour must be RGB or 8-bit YBR_FULL, signed data only
  in monochrome) plus the libraries' own limits, checked on the *decoded* pixel description
  before a syntax is chosen, so a chosen syntax does not fail afterwards.
* **>8-bit data is refused for JPEG Baseline**, never rescaled: rescaling (dcmtk ``dcmcjpeg +eb``)
  changes stored values and the modality LUT, a loss the consumer did not ask for.  Such data goes
  to the next listed syntax (``.4.51`` carries 12-bit monochrome).
* Objects without Pixel Data (SR, KOS, PR, ...) can be written in any listed non-video syntax.
  An encapsulated syntax differs from Explicit VR LE only in the encoding of Pixel Data
  (PS3.5 Annex A.4), so nothing can be lost.  dcm4chee instead answers in the stored syntax even
  when it is not listed, which RAD69-005 does not allow.
* Float/Double Float Pixel Data and compressed icon images: the uncompressed syntaxes only.
* Video syntaxes (``.4.100``-``.4.108``) are only passed through, when stored and listed.
  Explicit VR Big Endian and JPIP are never produced.
* The stored data must be decodable (:func:`can_decode`).

Transcoding keeps the SOP Instance UID (the consumer asked for that instance, by that UID) and
every non-pixel attribute, except the ones a re-encoding step must change: Photometric
Interpretation and Planar Configuration where the codec needs them, and, for a lossy result, Lossy
Image Compression (0028,2110) = ``01`` with the step appended to Lossy Image Compression Ratio
(0028,2112) and Method (0028,2114) (PS3.3 C.7.6.1.1.5).
Lossy JPEG colour (YBR_FULL_422) is decoded to RGB, as by pydicom's and dcmtk's decoders.  Those
libraries' JPEG decoders apply the JFIF colour transform themselves.

Stored compressed data is decoded with one named plugin per syntax, chosen for strictness: a
truncated codestream raises instead of decoding to a partial or all-zero image (libraries.md §3.4).
Each JPEG/JPEG-LS/JPEG 2000 frame must also end with its EOI/EOC marker.  A decode failure is
:class:`~xdsi.errors.ProcessingFailure` (``urn:dicom:wado:0014``).
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO, Final

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset, FileDataset
from pydicom.encaps import encapsulate, encapsulate_extended, generate_frames
from pydicom.errors import InvalidDicomError
from pydicom.pixels.decoders.base import get_decoder
from pydicom.pixels.processing import convert_color_space
from pydicom.pixels.utils import pixel_array
from pydicom.uid import UID
from pydicom.valuerep import VR

from xdsi import ns
from xdsi.errors import ProcessingFailure, TransferSyntaxUnavailable
from xdsi.imaging import codecs
from xdsi.imaging.codecs import PixelDescription
from xdsi.imaging.words import transfer_syntax

NATIVE_SYNTAXES: Final = frozenset(
    {ns.TS_EXPLICIT_VR_LE, ns.TS_IMPLICIT_VR_LE, ns.TS_DEFLATED_EXPLICIT_VR_LE}
)
"""Uncompressed syntaxes xdsi writes (Big Endian is retired and never produced)."""

LOSSY_SYNTAXES: Final = frozenset({ns.TS_JPEG_BASELINE, ns.TS_JPEG_EXTENDED})
"""Targets whose encoding loses data; every other target xdsi produces is lossless."""

_JPEG_DCT: Final = frozenset({ns.TS_JPEG_BASELINE, ns.TS_JPEG_EXTENDED})

_DECODING_PLUGINS: Final[dict[str, tuple[str, ...]]] = {
    # In order of preference; the first *installed* one is used and never a second after it
    # failed, since the lenient plugins would then accept what the strict one rejected.
    # pylibjpeg-rle and pydicom both reject truncated RLE segments.
    ns.TS_RLE: ("pylibjpeg", "pydicom"),
    # Pillow and gdcm raise on truncated JPEG; pylibjpeg (libjpeg) decodes half a stream silently.
    ns.TS_JPEG_BASELINE: ("pillow", "gdcm"),
    ns.TS_JPEG_EXTENDED: ("pillow", "gdcm"),
    ns.TS_JPEG_LOSSLESS_P14: ("gdcm", "pylibjpeg"),
    ns.TS_JPEG_LOSSLESS_SV1: ("gdcm", "pylibjpeg"),
    # pylibjpeg decodes a JPEG-LS stream cut to 16 bytes as zeros (libraries.md §3.4).
    ns.TS_JPEG_LS_LOSSLESS: ("pyjpegls", "gdcm"),
    ns.TS_JPEG_LS_NEAR_LOSSLESS: ("pyjpegls", "gdcm"),
    ns.TS_JPEG2000_LOSSLESS: ("pylibjpeg", "gdcm"),
    ns.TS_JPEG2000: ("pylibjpeg", "gdcm"),
    ns.TS_HTJ2K_LOSSLESS: ("pylibjpeg",),
    ns.TS_HTJ2K_LOSSLESS_RPCL: ("pylibjpeg",),
    ns.TS_HTJ2K: ("pylibjpeg",),
}

_TWELVE_BIT_JPEG_PLUGINS: Final = ("pylibjpeg",)
"""12-bit JPEG Extended: gdcm and Pillow refuse it (libraries.md §3.3 #2); the EOI check helps."""

_EOI: Final = b"\xff\xd9"
"""JPEG EOI (ISO 10918-1 B.1.1.3), JPEG-LS EOI and JPEG 2000 EOC (ISO 15444-1 A.4.4) alike."""

_NESTED_PIXEL_DATA: Final = 0x7FE00010


# --- what can be read and written ---------------------------------------------------------------


def can_decode(ts: str) -> bool:
    """True if stored data in ``ts`` can be decoded here (native, or a plugin is installed)."""
    ts = ts.strip()
    if ts in ns.UNCOMPRESSED_TRANSFER_SYNTAXES:
        return True
    return _decoding_plugin(ts, bits_stored=8) is not None


def can_encode(ts: str, header: Dataset | None = None) -> bool:
    """True if the object (``header``: read with ``stop_before_pixels=True``) can be sent in ``ts``.

    Without a header only the uncompressed syntaxes, which take any object, are promised.  The
    stored syntax is taken from ``header.file_meta`` (native when absent); re-sending the stored
    syntax unchanged is :func:`choose_transfer_syntax`'s business, not an encoding.
    """
    stored = transfer_syntax(header)
    return _refusal(ts.strip(), stored, header) is None


def choose_transfer_syntax(
    stored_ts: str, requested: Sequence[str], header: Dataset | None = None
) -> str | None:
    """The syntax to answer with, or None (→ ``urn:dicom:wado:0007``); rule: module docstring.

    Parameters
    ----------
    stored_ts:
        Transfer Syntax UID of the stored instance.
    requested:
        The request's TransferSyntaxUIDList, in the consumer's order.
    header:
        The stored dataset without Pixel Data (``dcmread(stop_before_pixels=True)``).  When None,
        nothing is read and only the uncompressed syntaxes are considered besides the stored one.
    """
    stored = stored_ts.strip()
    listed = [uid.strip() for uid in requested if uid and uid.strip()]
    if stored in listed:
        return stored
    producible = [ts for ts in listed if _refusal(ts, stored, header) is None]
    for ts in producible:
        if ts not in LOSSY_SYNTAXES:
            return ts
    return producible[0] if producible else None


# --- transcoding --------------------------------------------------------------------------------


def transcode(
    source: Path | BinaryIO,
    target_ts: str,
    *,
    jpeg_quality: int = codecs.DEFAULT_JPEG_QUALITY,
) -> bytes:
    """The whole Part 10 file re-encoded in ``target_ts`` (PS3.10 §7; PS3.5 §8.2, Annex A.4).

    The SOP Instance UID, Media Storage SOP Instance UID and all non-pixel attributes are kept,
    except the ones listed in the module docstring.  When ``target_ts`` is the stored syntax the
    stored bytes are returned unchanged.

    Raises
    ------
    TransferSyntaxUnavailable
        ``target_ts`` cannot carry this object (``urn:dicom:wado:0007``).
    ProcessingFailure
        The stored object cannot be parsed or its pixel data cannot be decoded, e.g. a corrupt
        or truncated codestream (``urn:dicom:wado:0014``).
    """
    target = target_ts.strip()
    data = source.read_bytes() if isinstance(source, Path) else source.read()
    ds = _parse(data)
    stored = transfer_syntax(ds)
    if target == stored:
        return data
    refusal = _refusal(target, stored, ds)
    if refusal is not None:
        raise TransferSyntaxUnavailable(f"{_describe(ds)}: {refusal}")
    if stored == ns.TS_EXPLICIT_VR_BE:
        _swap_to_little_endian(ds)
        ds.file_meta.TransferSyntaxUID = UID(ns.TS_EXPLICIT_VR_LE)  # what the values now are
    if "PixelData" in ds:
        if UID(stored).is_compressed:
            _decode(ds, stored)
        if target not in NATIVE_SYNTAXES:
            _encode(ds, target, jpeg_quality)
    ds.file_meta.TransferSyntaxUID = UID(target)
    return _write(ds)


@dataclass(frozen=True)
class Plan:
    """What :func:`preflight` decided for one stored object."""

    target: str
    """The transfer syntax to send (:func:`choose_transfer_syntax`)."""
    estimated_size: int
    """An upper estimate of the result's size: the stored size, plus the growth of the Pixel
    Data when it is decoded (a compressed result is taken to be no larger than native data)."""


def preflight(source: Path | BinaryIO, requested: Sequence[str]) -> Plan:
    """Every check of :func:`transcode` that needs no decoding or encoding, and the target.

    The object is parsed (truncations :func:`transcode` refuses are refused here too), the target
    is chosen from ``requested`` by the rule of this module, and encapsulated Pixel Data that
    would be decoded is checked frame by frame (count, EOI/EOC marker).  RAD-69 runs this for
    every document before its response envelope is written, so that these failures are reported
    as the document's RegistryError; only a codestream that is well-formed on the outside but
    cannot be decoded is left to :func:`transcode` to find.

    Raises
    ------
    TransferSyntaxUnavailable
        No listed syntax can be produced (``urn:dicom:wado:0007``).
    ProcessingFailure
        The stored object is unreadable or its encapsulated pixel data is broken
        (``urn:dicom:wado:0014``).
    """
    if isinstance(source, Path):
        with source.open("rb") as fh:
            header = _read_header(fh)
            if transfer_syntax(header) in _UNDEFLATED_NATIVE:
                # Native data is not decoded: the header and the file's length are enough.
                start, end = fh.tell(), fh.seek(0, io.SEEK_END)
                return _plan_native(header, requested, start, end)
            fh.seek(0)
            data = fh.read()
    else:
        data = source.read()
    ds = _parse(data)
    stored = transfer_syntax(ds)
    target = _target(ds, stored, requested)
    size = len(data)
    pixel = PixelDescription.of(ds)
    if target != stored and pixel is not None and "PixelData" in ds:
        if UID(stored).is_compressed:
            _check_frames(ds, stored, pixel)
        size += max(0, _native_length(pixel) - len(ds.PixelData))
    return Plan(target, size)


_UNDEFLATED_NATIVE: Final = frozenset(
    {ns.TS_EXPLICIT_VR_LE, ns.TS_IMPLICIT_VR_LE, ns.TS_EXPLICIT_VR_BE}
)


def _target(ds: Dataset, stored: str, requested: Sequence[str]) -> str:
    target = choose_transfer_syntax(stored, requested, ds)
    if target is None:
        raise TransferSyntaxUnavailable(
            f"{_describe(ds)} is stored in {stored} and cannot be provided in any of the "
            f"requested transfer syntaxes: {', '.join(requested)}"
        )
    return target


def _plan_native(header: Dataset, requested: Sequence[str], start: int, end: int) -> Plan:
    """:func:`preflight` of a native object read up to its Pixel Data, at ``start`` of ``end``.

    The checks of :func:`_parse` on the element's length: an element header (PS3.5 §7.1.2) of
    8 bytes in Implicit VR, 12 for OB/OW in Explicit VR, then at least the described bytes.
    """
    stored = transfer_syntax(header)
    target = _target(header, stored, requested)
    pixel = PixelDescription.of(header)
    if pixel is not None and target != stored:
        element_header = 8 if stored == ns.TS_IMPLICIT_VR_LE else 12
        if end - start < element_header:
            raise ProcessingFailure(
                f"{_describe(header)}: the stored object ends before its Pixel Data"
            )
        _check_native_length(header, pixel, end - start - element_header)
    return Plan(target, end)


def transcode_iter(
    source: Path | BinaryIO, target_ts: str, chunk_size: int = 1 << 20
) -> Iterator[bytes]:
    """:func:`transcode` cut into ``chunk_size`` pieces, for a streaming writer.

    The whole result is produced before the first piece is yielded, so that a decoding failure
    is raised here, never in the middle of a response that is already being written.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be positive")
    data = transcode(source, target_ts)
    view = memoryview(data)
    return (bytes(view[i : i + chunk_size]) for i in range(0, len(view), chunk_size))


# --- the producibility rule ---------------------------------------------------------------------


def _refusal(target: str, stored: str, header: Dataset | None) -> str | None:
    """Why ``target`` cannot be produced from an object stored in ``stored``; None if it can."""
    if target in ns.VIDEO_TRANSFER_SYNTAXES or stored in ns.VIDEO_TRANSFER_SYNTAXES:
        return "video transfer syntaxes are passed through unchanged, never transcoded"
    if target == ns.TS_EXPLICIT_VR_BE:
        return "Explicit VR Big Endian is retired and not produced"
    if target in (ns.TS_JPIP, ns.TS_JPIP_DEFLATE):
        return "JPIP (pixel data by reference) is not provided"
    if target not in NATIVE_SYNTAXES and target not in codecs.ENCODERS:
        return f"transfer syntax {target} is not produced by this source"
    if header is None:
        if target not in NATIVE_SYNTAXES:
            return "without the stored header only uncompressed syntaxes are offered"
        return None if can_decode(stored) else f"stored syntax {stored} cannot be decoded here"
    if not _has_pixel_data(header):
        return None  # SR, KOS, PR...: only the non-pixel encoding changes (PS3.5 A.4)
    if _has_compressed_icon(header):
        return "the object holds compressed nested pixel data (e.g. an icon image)"
    pixel = PixelDescription.of(header)
    if pixel is None:
        if target in NATIVE_SYNTAXES and stored in ns.UNCOMPRESSED_TRANSFER_SYNTAXES:
            return None  # e.g. Float Pixel Data: only ever native
        return "the pixel data is not described by a complete Image Pixel Module"
    if UID(stored).is_compressed and _decoding_plugin(stored, pixel.bits_stored) is None:
        return f"stored syntax {stored} cannot be decoded here"
    if target in NATIVE_SYNTAXES:
        return None
    return codecs.unsupported_reason(target, _decoded(pixel, stored))


def _decoded(pixel: PixelDescription, stored: str) -> PixelDescription:
    """The pixel description after decoding data stored in ``stored`` (see :func:`_decode`)."""
    pi = pixel.photometric_interpretation
    # JPEG DCT colour is decoded to RGB (see _decode); the JPEG 2000 decoders undo the ICT/RCT.
    if (stored in _JPEG_DCT and pi.startswith("YBR")) or pi in ("YBR_ICT", "YBR_RCT"):
        return replace(pixel, photometric_interpretation="RGB")
    return pixel


def _has_pixel_data(header: Dataset) -> bool:
    keywords = ("PixelData", "FloatPixelData", "DoubleFloatPixelData", "Rows", "BitsAllocated")
    return any(k in header for k in keywords)


def _has_compressed_icon(ds: Dataset) -> bool:
    """True if a sequence item holds encapsulated Pixel Data (e.g. an icon image, PS3.5 A.4).

    Only sequences are converted: ``Dataset.elements()`` yields the raw elements as read, and
    converting every value (what iterating the dataset does) cost three quarters of the time of a
    header check, which RAD-69 makes for every document before its envelope is written.
    """
    for raw in ds.elements():
        if raw.VR is not None and raw.VR != VR.SQ:
            continue
        element = ds[raw.tag]  # VR None: Implicit VR, the dictionary decides on conversion
        if element.VR != VR.SQ:
            continue
        for item in element.value:
            nested = item.get(_NESTED_PIXEL_DATA)
            if nested is not None and nested.is_undefined_length:
                return True
            if _has_compressed_icon(item):
                return True
    return False


def _decoding_plugin(ts: str, bits_stored: int) -> str | None:
    """The strict plugin to decode ``ts`` with, or None if none is installed."""
    preference = _DECODING_PLUGINS.get(ts)
    if preference is None:
        return None
    if ts == ns.TS_JPEG_EXTENDED and bits_stored > 8:
        preference = _TWELVE_BIT_JPEG_PLUGINS
    try:
        available = get_decoder(ts).available_plugins
    except NotImplementedError:
        return None
    return next((p for p in preference if p in available), None)


# --- steps --------------------------------------------------------------------------------------


def _parse(data: bytes) -> FileDataset:
    """Parse a stored Part 10 object, refusing the truncations pydicom reads without complaint.

    pydicom returns an empty dataset for garbage after the preamble and a short Pixel Data value
    (or none at all) for a file cut inside or before it; either would be sent on as a valid-looking
    but damaged object.
    """
    try:
        ds = dcmread(io.BytesIO(data))
    except (InvalidDicomError, EOFError, ValueError, KeyError, OSError) as exc:
        raise ProcessingFailure(f"the stored object cannot be parsed as DICOM: {exc}") from exc
    if "TransferSyntaxUID" not in ds.file_meta or "SOPInstanceUID" not in ds:
        raise ProcessingFailure("the stored object is not a complete DICOM Part 10 file")
    pixel = PixelDescription.of(ds)
    has_pixels = any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"))
    if pixel is not None and not has_pixels:
        raise ProcessingFailure(f"{_describe(ds)}: the stored object ends before its Pixel Data")
    if pixel is not None and "PixelData" in ds and not UID(transfer_syntax(ds)).is_compressed:
        _check_native_length(ds, pixel, len(ds.PixelData))
    return ds


def _native_length(pixel: PixelDescription) -> int:
    """Bytes of native Pixel Data the Image Pixel Module describes."""
    expected = -(-pixel.frame_bits * pixel.number_of_frames // 8)  # ceil: 1-bit data
    if pixel.photometric_interpretation == "YBR_FULL_422":
        expected = expected * 2 // 3  # two chroma samples per two pixels (PS3.3 C.7.6.3.1.2)
    return expected


def _check_native_length(ds: Dataset, pixel: PixelDescription, length: int) -> None:
    expected = _native_length(pixel)
    if length < expected:
        raise ProcessingFailure(
            f"{_describe(ds)}: the stored Pixel Data has {length} of the "
            f"{expected} bytes its Image Pixel Module describes (truncated file)"
        )


def _read_header(fh: BinaryIO) -> FileDataset:
    """The stored object up to its Pixel Data; the file is left positioned at that element."""
    try:
        ds = dcmread(fh, stop_before_pixels=True)
    except (InvalidDicomError, EOFError, ValueError, KeyError, OSError) as exc:
        raise ProcessingFailure(f"the stored object cannot be parsed as DICOM: {exc}") from exc
    if "TransferSyntaxUID" not in ds.file_meta or "SOPInstanceUID" not in ds:
        raise ProcessingFailure("the stored object is not a complete DICOM Part 10 file")
    return ds


def _describe(ds: Dataset) -> str:
    return f"instance {ds.get('SOPInstanceUID', '(no SOP Instance UID)')}"


def _decode(ds: Dataset, stored: str) -> None:
    """Replace encapsulated Pixel Data by native data, with one strict, named plugin."""
    pixel = PixelDescription.of(ds)
    plugin = _decoding_plugin(stored, pixel.bits_stored if pixel else 8)
    if pixel is None or plugin is None:
        raise TransferSyntaxUnavailable(
            f"{_describe(ds)}: stored syntax {stored} cannot be decoded"
        )
    _check_frames(ds, stored, pixel)
    try:
        ds.decompress(
            decoding_plugin=plugin,
            # The JPEG DCT decoders apply the JFIF YCbCr→RGB transform themselves; asking for
            # YBR would mislabel RGB data.  Everywhere else colour data is kept as stored.
            as_rgb=stored in _JPEG_DCT,
            generate_instance_uid=False,
        )
    except Exception as exc:  # plugins raise RuntimeError, ValueError and their own types
        raise ProcessingFailure(
            f"{_describe(ds)}: the stored pixel data ({stored}) cannot be decoded with "
            f"{plugin}: {exc}"
        ) from exc
    for keyword in ("ExtendedOffsetTable", "ExtendedOffsetTableLengths"):
        ds.pop(keyword, None)


def _check_frames(ds: Dataset, stored: str, pixel: PixelDescription) -> None:
    """Refuse encapsulated Pixel Data whose structure is broken (PS3.5 A.4), without decoding.

    One frame per Number of Frames, and each JPEG/JPEG-LS/JPEG 2000 frame ends with its EOI/EOC
    marker: a truncated codestream is caught here, before any decoder sees it.
    """
    try:
        # Padding follows the marker: 0x00 to even length (PS3.5 A.4), or 0xFF fill bytes.
        frames = generate_frames(ds.PixelData, number_of_frames=pixel.number_of_frames)
        ends = [frame.rstrip(b"\x00\xff")[-2:] for frame in frames]
    except (ValueError, KeyError, IndexError) as exc:
        raise ProcessingFailure(
            f"{_describe(ds)}: the encapsulated pixel data is malformed: {exc}"
        ) from exc
    if len(ends) != pixel.number_of_frames:
        raise ProcessingFailure(
            f"{_describe(ds)}: {len(ends)} encoded frame(s) for Number of Frames "
            f"{pixel.number_of_frames}"
        )
    if stored != ns.TS_RLE:
        for index, end in enumerate(ends, start=1):
            if end != _EOI:
                raise ProcessingFailure(
                    f"{_describe(ds)}: frame {index} of the stored pixel data is truncated "
                    "(its codestream does not end with an EOI/EOC marker)"
                )


def _encode(ds: Dataset, target: str, quality: int) -> None:
    """Encode the native Pixel Data of ``ds`` in ``target`` and set the attributes it changes."""
    pixel = PixelDescription.of(ds)
    if pixel is None:
        raise TransferSyntaxUnavailable(f"{_describe(ds)}: incomplete Image Pixel Module")
    array = pixel_array(ds, raw=True)
    if pixel.number_of_frames == 1:
        array = array[np.newaxis]
    if pixel.photometric_interpretation == "YBR_FULL" and target == ns.TS_JPEG_BASELINE:
        # Pillow's encoder takes RGB; this conversion rounds, in a step that is lossy anyway.
        array = convert_color_space(array, "YBR_FULL", "RGB", per_frame=True)
        pixel = replace(pixel, photometric_interpretation="RGB")
    try:
        frames = codecs.encode_frames(array, pixel, target, quality=quality)
    except ValueError as exc:
        raise TransferSyntaxUnavailable(f"{_describe(ds)}: {exc}") from exc
    except Exception as exc:  # an encoder library failing on valid input
        raise ProcessingFailure(f"{_describe(ds)}: encoding in {target} failed: {exc}") from exc

    for keyword in ("ExtendedOffsetTable", "ExtendedOffsetTableLengths"):
        ds.pop(keyword, None)
    # PS3.5 A.4: a Basic Offset Table holds 32-bit offsets; beyond that the extended table.
    if sum(len(f) + 8 for f in frames[:-1]) > 2**32 - 1:
        ds.PixelData, ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths = encapsulate_extended(
            frames
        )
    else:
        ds.PixelData = encapsulate(frames, has_bot=len(frames) > 1)
    element = ds["PixelData"]
    element.VR = VR.OB
    element.is_undefined_length = True
    ds.PhotometricInterpretation = codecs.output_photometric(
        target, pixel.photometric_interpretation
    )
    if pixel.samples_per_pixel > 1:
        ds.PlanarConfiguration = 0  # PS3.5 §8.2: interleaved for every encapsulated syntax
    method = codecs.ENCODERS[target].lossy_method
    if method is not None:
        ratio = pixel.frame_bytes * len(frames) / max(sum(len(f) for f in frames), 1)
        _record_lossy_step(ds, ratio, method)


def _record_lossy_step(ds: Dataset, ratio: float, method: str) -> None:
    """PS3.3 C.7.6.1.1.5: flag lossy data and append this step's ratio and method."""
    ratios = [str(r) for r in _as_list(ds.get("LossyImageCompressionRatio"))]
    methods = [str(m) for m in _as_list(ds.get("LossyImageCompressionMethod"))]
    ds.LossyImageCompression = "01"
    ds.LossyImageCompressionRatio = [*ratios, f"{ratio:.2f}"]
    ds.LossyImageCompressionMethod = [*methods, method]


def _as_list(value: object) -> list[object]:
    if value is None or value == "":
        return []
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        return [value]
    return list(value)


_WORD_VRS: Final[dict[str, str]] = {"OW": "u2", "OL": "u4", "OF": "u4", "OD": "u8", "OV": "u8"}


def _swap_to_little_endian(ds: Dataset) -> None:
    """Byte-swap the binary values of a Big Endian dataset (PS3.5 A.3) before writing it LE.

    pydicom converts the values it parses (US, SS, FL...) itself but copies OW/OL/OF/OD/OV values
    as stored; in Big Endian these hold words in big-endian order (8-bit Pixel Data included,
    PS3.5 §8.1.1).  UN values cannot be swapped without knowing their VR and are left as they are.
    """
    # Iterating converts every raw element, so nothing is left to be copied in the old order.
    for element in ds:
        if element.VR == VR.SQ:
            for item in element.value:
                _swap_to_little_endian(item)
        elif element.VR in _WORD_VRS and isinstance(element.value, bytes) and element.value:
            code = _WORD_VRS[element.VR]
            usable = len(element.value) - len(element.value) % np.dtype(code).itemsize
            words = np.frombuffer(element.value[:usable], dtype=">" + code)
            element.value = words.astype("<" + code).tobytes()
    # The values are now little endian; tell pydicom so that save_as() may write them as such.
    ds.set_original_encoding(False, True)


def _write(ds: Dataset) -> bytes:
    """Serialise as Part 10; pydicom derives the encoding from the new Transfer Syntax UID."""
    ds.file_meta.pop("FileMetaInformationGroupLength", None)  # recomputed on write
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


__all__ = [
    "LOSSY_SYNTAXES",
    "NATIVE_SYNTAXES",
    "Plan",
    "can_decode",
    "can_encode",
    "choose_transfer_syntax",
    "preflight",
    "transcode",
    "transcode_iter",
]
