"""Pixel Data encoders for the transfer syntaxes xdsi produces (PS3.5 §8.2 and Annex A.4).

One registry, :data:`ENCODERS`, maps each encapsulated target syntax to the library that encodes
it.  pydicom 3 encodes only RLE, JPEG-LS and JPEG 2000 (libraries.md §3.1), so JPEG Baseline comes
from Pillow and JPEG Extended / Lossless from python-gdcm; everything else goes through pydicom's
own ``pixels.get_encoder`` registry, always naming the plugin (design note 6).

Which images a syntax can carry is PS3.5 Tables 8.2.1-1 to 8.2.4-1, taken from pydicom's
``ENCODING_PROFILES`` (the same table pydicom validates against) rather than copied here, plus
the narrower limits of the libraries, stated next to each backend.

Two syntaxes are produced in their reversible form, so that choosing them never loses data:

* JPEG-LS Near-Lossless ``.4.81`` is written with NEAR = 0.  ISO/IEC 14495-1 defines lossless
  coding as the NEAR = 0 case of the same process, so the stream is a valid ``.4.81`` stream.
* JPEG 2000 ``.4.91`` is written with the reversible 5/3 wavelet and no quantisation.  PS3.5 §8.2.4
  allows ``.4.91`` to carry reversible or irreversible codestreams.

Only JPEG Baseline ``.4.50`` and JPEG Extended ``.4.51`` are lossy here
(:attr:`EncoderSpec.lossy_method`).
"""

from __future__ import annotations

import importlib.util
import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels.encoders.base import ENCODING_PROFILES, get_encoder
from pydicom.uid import UID

from xdsi import ns

DEFAULT_JPEG_QUALITY: Final = 90
"""IJG quality for lossy JPEG: the default of dcmtk ``dcmcjpeg``, which most consumers met."""

METHOD_JPEG: Final = "ISO_10918_1"
"""(0028,2114) Lossy Image Compression Method for JPEG (PS3.3 C.7.6.1.1.5.1)."""


@dataclass(frozen=True)
class PixelDescription:
    """The Image Pixel Module values an encoder needs (PS3.3 C.7.6.3), for interleaved samples."""

    rows: int
    columns: int
    samples_per_pixel: int
    bits_allocated: int
    bits_stored: int
    pixel_representation: int
    photometric_interpretation: str
    number_of_frames: int = 1

    @classmethod
    def of(cls, ds: Dataset) -> PixelDescription | None:
        """Read from a dataset (or a header without Pixel Data); None if a value is missing.

        Float/Double Float Pixel Data (PS3.3 C.7.6.24) has no Bits Stored or Pixel
        Representation, so it also gives None: no encapsulated syntax can carry it.
        """
        keywords = (
            "Rows",
            "Columns",
            "SamplesPerPixel",
            "BitsAllocated",
            "BitsStored",
            "PixelRepresentation",
            "PhotometricInterpretation",
        )
        if any(ds.get(k) is None for k in keywords):
            return None
        try:
            frames = int(ds.get("NumberOfFrames") or 1)
        except (TypeError, ValueError):
            return None
        return cls(
            rows=int(ds.Rows),
            columns=int(ds.Columns),
            samples_per_pixel=int(ds.SamplesPerPixel),
            bits_allocated=int(ds.BitsAllocated),
            bits_stored=int(ds.BitsStored),
            pixel_representation=int(ds.PixelRepresentation),
            photometric_interpretation=str(ds.PhotometricInterpretation).strip(),
            number_of_frames=max(frames, 1),
        )

    @property
    def frame_bits(self) -> int:
        """Uncompressed size of one frame in bits (Bits Allocated may be 1, PS3.5 §8.1.1)."""
        return self.rows * self.columns * self.samples_per_pixel * self.bits_allocated

    @property
    def frame_bytes(self) -> int:
        """Uncompressed size of one frame, the base of Lossy Image Compression Ratio."""
        return -(-self.frame_bits // 8)

    def pydicom_options(self) -> dict[str, Any]:
        """Keyword options for ``pydicom.pixels`` encoders (single interleaved frame)."""
        return {
            "rows": self.rows,
            "columns": self.columns,
            "samples_per_pixel": self.samples_per_pixel,
            "bits_allocated": self.bits_allocated,
            "bits_stored": self.bits_stored,
            "pixel_representation": self.pixel_representation,
            "photometric_interpretation": self.photometric_interpretation,
            "planar_configuration": 0,
            "number_of_frames": 1,
        }


FrameEncoder = Callable[[np.ndarray, PixelDescription, str, int], bytes]
"""(frame, output pixel description, transfer syntax, JPEG quality) → one encoded frame."""


@dataclass(frozen=True)
class Backend:
    """One library able to encode a syntax: the module proving it is installed, the pip name."""

    module: str
    package: str
    encode: FrameEncoder


@dataclass(frozen=True)
class EncoderSpec:
    """How one transfer syntax is produced.

    ``profile_syntax`` is the syntax whose PS3.5 profile and pydicom encoder are used (``.4.90``
    for reversible ``.4.91``); ``lossy_method`` is the (0028,2114) value, None for lossless output.
    """

    transfer_syntax: str
    backends: tuple[Backend, ...]
    profile_syntax: str
    lossy_method: str | None = None

    def backend(self) -> Backend | None:
        """The first installed backend, or None."""
        return next((b for b in self.backends if _installed(b.module)), None)


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


# --- pydicom's own encoders ---------------------------------------------------------------------


def _pydicom_backend(plugin: str, module: str, package: str, **options: Any) -> Backend:
    def encode(frame: np.ndarray, pixel: PixelDescription, ts: str, quality: int) -> bytes:
        del quality  # lossless encoders only
        encoder = get_encoder(ts)
        opts = pixel.pydicom_options() | options
        return bytes(encoder.encode(frame, encoding_plugin=plugin, **opts))

    return Backend(module, package, encode)


def _pydicom_backend_as(
    profile_ts: str, plugin: str, module: str, package: str, **options: Any
) -> Backend:
    """A pydicom encoder run for ``profile_ts`` whose codestream is labelled with another UID."""
    inner = _pydicom_backend(plugin, module, package, **options)

    def encode(frame: np.ndarray, pixel: PixelDescription, ts: str, quality: int) -> bytes:
        del ts
        return inner.encode(frame, pixel, profile_ts, quality)

    return Backend(module, package, encode)


# --- python-gdcm: JPEG Lossless (Process 14, SV1) and JPEG Extended (Process 2 & 4) -------------


def _gdcm_encode(frame: np.ndarray, pixel: PixelDescription, ts: str, quality: int) -> bytes:
    """Encode one frame with ``gdcm.ImageChangeTransferSyntax`` (as pydicom's gdcm RLE plugin).

    gdcm takes the JPEG sample precision from Bits Allocated: for 12-of-16-bit data it writes a
    16-bit lossy frame that no decoder accepts (libraries.md §3.3).  Declaring 12 bits allocated
    for JPEG Extended makes it write a 12-bit SOF1 frame from the same 16-bit words (checked:
    decodes with pylibjpeg and dcmtk ``dcmdjpeg``).
    """
    import gdcm

    bits_allocated = pixel.bits_allocated
    if ts == ns.TS_JPEG_EXTENDED:
        bits_allocated = pixel.bits_stored
    writer = gdcm.ImageWriter()  # gdcm needs an owner that outlives the image
    image = writer.GetImage()
    image.SetNumberOfDimensions(2)
    image.SetDimensions((pixel.columns, pixel.rows, 1))
    pi_type = gdcm.PhotometricInterpretation.GetPIType(pixel.photometric_interpretation)
    image.SetPhotometricInterpretation(gdcm.PhotometricInterpretation(pi_type))
    image.SetTransferSyntax(gdcm.TransferSyntax(gdcm.TransferSyntax.ImplicitVRLittleEndian))
    image.SetPixelFormat(
        gdcm.PixelFormat(
            pixel.samples_per_pixel,
            bits_allocated,
            pixel.bits_stored,
            pixel.bits_stored - 1,
            pixel.pixel_representation,
        )
    )
    if pixel.samples_per_pixel > 1:
        image.SetPlanarConfiguration(0)
    element = gdcm.DataElement(gdcm.Tag(0x7FE0, 0x0010))
    element.SetByteStringValue(np.ascontiguousarray(frame).tobytes())
    image.SetDataElement(element)
    if ts != ns.TS_JPEG_LOSSLESS_P14 and ts != ns.TS_JPEG_LOSSLESS_SV1:
        image.SetLossyFlag(True)
    converter = gdcm.ImageChangeTransferSyntax()
    target = gdcm.TransferSyntax(gdcm.TransferSyntax.GetTSType(ts))
    converter.SetTransferSyntax(target)
    if ts == ns.TS_JPEG_EXTENDED:
        codec = gdcm.JPEGCodec()
        codec.SetQuality(quality)
        codec.SetLossless(False)
        converter.SetUserCodec(codec)
    converter.SetInput(image)
    if not converter.Change():
        raise RuntimeError(f"gdcm could not encode the frame in {ts}")
    fragments = converter.GetOutput().GetDataElement().GetSequenceOfFragments()
    if fragments is None or fragments.GetNumberOfFragments() != 1:
        raise RuntimeError("gdcm returned an unexpected number of fragments")
    buffer: str = fragments.GetFragment(0).GetByteValue().GetBuffer()
    # gdcm's SWIG layer hands bytes back as a surrogate-escaped str
    return buffer.encode("utf-8", "surrogateescape")


# --- Pillow: JPEG Baseline ----------------------------------------------------------------------


def _pillow_encode(frame: np.ndarray, pixel: PixelDescription, ts: str, quality: int) -> bytes:
    """Encode one 8-bit frame as a JFIF/baseline JPEG with Pillow (PS3.5 §8.2.1).

    Colour input is RGB; libjpeg converts it to YCbCr and ``subsampling=1`` gives the 4:2:2
    chroma sampling that (0028,0004) YBR_FULL_422 promises (PS3.3 C.7.6.3.1.2).  Pillow's default
    would be 4:2:0, which that value does not describe.
    """
    from PIL import Image

    del ts
    mode = "RGB" if pixel.samples_per_pixel == 3 else "L"
    image = Image.fromarray(np.ascontiguousarray(frame, dtype=np.uint8), mode=mode)
    out = io.BytesIO()
    options: dict[str, Any] = {"quality": quality, "optimize": False}
    if mode == "RGB":
        options["subsampling"] = 1
    image.save(out, format="JPEG", **options)
    return out.getvalue()


_GDCM = Backend("gdcm", "python-gdcm", _gdcm_encode)
_PILLOW = Backend("PIL", "pillow", _pillow_encode)

ENCODERS: Final[Mapping[str, EncoderSpec]] = {
    spec.transfer_syntax: spec
    for spec in (
        EncoderSpec(
            ns.TS_RLE,
            (
                _pydicom_backend("pylibjpeg", "rle", "pylibjpeg-rle"),
                _pydicom_backend("pydicom", "pydicom", "pydicom"),
            ),
            ns.TS_RLE,
        ),
        EncoderSpec(ns.TS_JPEG_BASELINE, (_PILLOW,), ns.TS_JPEG_BASELINE, METHOD_JPEG),
        EncoderSpec(ns.TS_JPEG_EXTENDED, (_GDCM,), ns.TS_JPEG_EXTENDED, METHOD_JPEG),
        EncoderSpec(ns.TS_JPEG_LOSSLESS_P14, (_GDCM,), ns.TS_JPEG_LOSSLESS_P14),
        EncoderSpec(ns.TS_JPEG_LOSSLESS_SV1, (_GDCM,), ns.TS_JPEG_LOSSLESS_SV1),
        EncoderSpec(
            ns.TS_JPEG_LS_LOSSLESS,
            (_pydicom_backend("pyjpegls", "jpeg_ls", "pyjpegls"),),
            ns.TS_JPEG_LS_LOSSLESS,
        ),
        EncoderSpec(
            ns.TS_JPEG_LS_NEAR_LOSSLESS,
            (_pydicom_backend("pyjpegls", "jpeg_ls", "pyjpegls", jls_error=0),),
            ns.TS_JPEG_LS_NEAR_LOSSLESS,
        ),
        EncoderSpec(
            # No multiple-component transform: PS3.5 §8.2.4 ties it to YBR_RCT/YBR_ICT, while
            # without it the Photometric Interpretation (RGB, YBR_FULL, ...) stays as it is.
            ns.TS_JPEG2000_LOSSLESS,
            (_pydicom_backend("pylibjpeg", "openjpeg", "pylibjpeg-openjpeg", use_mct=False),),
            ns.TS_JPEG2000_LOSSLESS,
        ),
        EncoderSpec(
            # pydicom's .4.91 encoder insists on a lossy rate; the reversible .4.90 codestream
            # is a valid .4.91 codestream (PS3.5 §8.2.4), so that encoder is used and relabelled.
            ns.TS_JPEG2000,
            (
                _pydicom_backend_as(
                    ns.TS_JPEG2000_LOSSLESS,
                    "pylibjpeg",
                    "openjpeg",
                    "pylibjpeg-openjpeg",
                    use_mct=False,
                ),
            ),
            ns.TS_JPEG2000_LOSSLESS,
        ),
    )
}
"""Encapsulated syntaxes xdsi can produce, each with its backends in order of preference."""


def output_photometric(ts: str, photometric: str) -> str:
    """(0028,0004) of the encoded data for input of ``photometric``.

    JPEG Baseline colour is YCbCr 4:2:2 after encoding (see :func:`_pillow_encode`).  Every other
    encoder keeps the value (JPEG 2000 is written without a multiple-component transform).
    """
    if ts == ns.TS_JPEG_BASELINE and photometric in ("RGB", "YBR_FULL"):
        return "YBR_FULL_422"
    return photometric


def unsupported_reason(ts: str, pixel: PixelDescription) -> str | None:
    """Why ``ts`` cannot carry these pixels with the installed libraries; None when it can.

    ``pixel`` describes the data to encode; the PS3.5 profile is checked for the data as encoded
    (:func:`output_photometric`).  JPEG Baseline takes RGB but not YBR_FULL colour input.
    """
    spec = ENCODERS.get(ts)
    if spec is None:
        return f"xdsi has no encoder for transfer syntax {ts}"
    if spec.backend() is None:
        packages = " or ".join(b.package for b in spec.backends)
        return f"the encoder for {ts} is not installed: install {packages}"
    out = replace(
        pixel, photometric_interpretation=output_photometric(ts, pixel.photometric_interpretation)
    )
    for pi, spp, signs, allocated, stored in ENCODING_PROFILES[UID(spec.profile_syntax)]:
        if (
            out.photometric_interpretation == pi
            and out.samples_per_pixel == spp
            and out.pixel_representation in signs
            and out.bits_allocated in allocated
            and out.bits_stored in stored
        ):
            break
    else:
        return (
            f"PS3.5 §8.2 does not allow {ts} for {out.photometric_interpretation} data with "
            f"{out.samples_per_pixel} sample(s), {out.bits_stored} of {out.bits_allocated} bits, "
            f"pixel representation {out.pixel_representation}"
        )
    if spec.profile_syntax == ns.TS_JPEG2000_LOSSLESS and (
        out.bits_stored > 24 or out.bits_allocated > 32
    ):
        return "openjpeg encodes at most 24 bits per sample"
    return None


def encode_frames(
    frames: np.ndarray, pixel: PixelDescription, ts: str, *, quality: int = DEFAULT_JPEG_QUALITY
) -> list[bytes]:
    """Encode every frame of ``frames`` (shape: frames, rows, columns[, samples]) in ``ts``.

    ``pixel`` describes the input, as for :func:`unsupported_reason`; the caller sets
    (0028,0004) to :func:`output_photometric`.  Raises ``ValueError`` when
    :func:`unsupported_reason` has a reason, ``RuntimeError`` when the library fails.
    """
    reason = unsupported_reason(ts, pixel)
    if reason is not None:
        raise ValueError(reason)
    backend = ENCODERS[ts].backend()
    assert backend is not None  # unsupported_reason checked it
    return [backend.encode(frame, pixel, ts, quality) for frame in frames]


__all__ = [
    "DEFAULT_JPEG_QUALITY",
    "ENCODERS",
    "METHOD_JPEG",
    "Backend",
    "EncoderSpec",
    "PixelDescription",
    "encode_frames",
    "output_photometric",
    "unsupported_reason",
]
