"""Helpers for the rendering tests: a GSPS builder, a MONOCHROME1 converter, dcmtk oracles, PSNR.

There is no sample presentation state, so :func:`make_gsps` builds a Grayscale Softcopy
Presentation State (PS3.3 A.33.1) with pydicom that references a sample image, and round-trips it
through a Part 10 file so that the renderer sees what a store would hand it.
"""

from __future__ import annotations

import io
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import (
    ExplicitVRLittleEndian,
    GrayscaleSoftcopyPresentationStateStorage,
    generate_uid,
)


@dataclass(frozen=True)
class Graphic:
    """One Graphic Object (PS3.3 C.10.5.1.2): type, x/y pairs, units, filled."""

    kind: str
    points: Sequence[tuple[float, float]]
    units: str = "PIXEL"
    filled: bool = False


@dataclass(frozen=True)
class Text:
    """One Text Object: text with an anchor point or a bounding box."""

    value: str
    anchor: tuple[float, float] | None = None
    box: tuple[tuple[float, float], tuple[float, float]] | None = None
    units: str = "PIXEL"


def roundtrip(ds: Dataset) -> Dataset:
    """Write ``ds`` as a Part 10 file in memory and read it back."""
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    buffer.seek(0)
    return dcmread(buffer)


def make_gsps(
    image: Dataset,
    *,
    window: tuple[float, float] | None = None,
    voi_function: str | None = None,
    voi_lut: tuple[Sequence[int], int, int] | None = None,
    inverse: bool = False,
    rotation: int = 0,
    flip: bool = False,
    area: tuple[tuple[int, int], tuple[int, int]] | None = None,
    size_mode: str = "SCALE TO FIT",
    magnification: float | None = None,
    graphics: Sequence[Graphic] = (),
    texts: Sequence[Text] = (),
    layer_gray: int = 65535,
    referenced_uid: str | None = None,
) -> Dataset:
    """A GSPS referencing ``image`` with the given transformations (PS3.3 A.33.1 modules)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = GrayscaleSoftcopyPresentationStateStorage
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.Modality = "PR"
    ds.StudyInstanceUID = image.StudyInstanceUID
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = 99
    ds.InstanceNumber = 1
    ds.PatientName = image.get("PatientName", "")
    ds.PatientID = image.get("PatientID", "")
    ds.ContentLabel = "TEST"
    ds.ContentDescription = "rendering test"
    ds.PresentationCreationDate = "20260101"
    ds.PresentationCreationTime = "120000"
    ds.ContentCreatorName = "xdsi^tests"

    reference = Dataset()
    reference.ReferencedSOPClassUID = image.SOPClassUID
    reference.ReferencedSOPInstanceUID = referenced_uid or image.SOPInstanceUID
    series = Dataset()
    series.SeriesInstanceUID = image.SeriesInstanceUID
    series.ReferencedImageSequence = DicomSequence([reference])
    ds.ReferencedSeriesSequence = DicomSequence([series])

    for keyword in ("RescaleSlope", "RescaleIntercept"):
        if keyword in image:
            setattr(ds, keyword, image[keyword].value)
    if "RescaleSlope" in image:
        ds.RescaleType = image.get("RescaleType", "HU" if image.get("Modality") == "CT" else "US")

    if window is not None or voi_lut is not None:
        voi = Dataset()
        if window is not None:
            voi.WindowCenter, voi.WindowWidth = window
            if voi_function:
                voi.VOILUTFunction = voi_function
        if voi_lut is not None:
            data, first, bits = voi_lut
            lut = Dataset()
            lut.LUTDescriptor = [len(data), first, bits]
            lut["LUTDescriptor"].VR = "SS" if first < 0 else "US"  # "US or SS" (C.11.2.1.1)
            lut.LUTData = list(data)
            lut["LUTData"].VR = "US"
            voi.VOILUTSequence = DicomSequence([lut])
        ds.SoftcopyVOILUTSequence = DicomSequence([voi])

    rows, columns = int(image.Rows), int(image.Columns)
    (tl, br) = area or ((1, 1), (columns, rows))
    selection = Dataset()
    selection.DisplayedAreaTopLeftHandCorner = list(tl)
    selection.DisplayedAreaBottomRightHandCorner = list(br)
    selection.PresentationSizeMode = size_mode
    selection.PresentationPixelAspectRatio = [1, 1]
    if magnification is not None:
        selection.PresentationPixelMagnificationRatio = magnification
    ds.DisplayedAreaSelectionSequence = DicomSequence([selection])
    ds.ImageRotation = rotation
    ds.ImageHorizontalFlip = "Y" if flip else "N"
    ds.PresentationLUTShape = "INVERSE" if inverse else "IDENTITY"

    if graphics or texts:
        layer = Dataset()
        layer.GraphicLayer = "LAYER1"
        layer.GraphicLayerOrder = 1
        layer.GraphicLayerRecommendedDisplayGrayscaleValue = layer_gray
        ds.GraphicLayerSequence = DicomSequence([layer])
        annotation = Dataset()
        annotation.GraphicLayer = "LAYER1"
        objects = []
        for graphic in graphics:
            item = Dataset()
            item.GraphicAnnotationUnits = graphic.units
            item.GraphicDimensions = 2
            item.NumberOfGraphicPoints = len(graphic.points)
            item.GraphicData = [float(v) for point in graphic.points for v in point]
            item.GraphicType = graphic.kind
            item.GraphicFilled = "Y" if graphic.filled else "N"
            objects.append(item)
        if objects:
            annotation.GraphicObjectSequence = DicomSequence(objects)
        text_items = []
        for text in texts:
            item = Dataset()
            item.UnformattedTextValue = text.value
            if text.box is not None:
                item.BoundingBoxAnnotationUnits = text.units
                item.BoundingBoxTopLeftHandCorner = list(text.box[0])
                item.BoundingBoxBottomRightHandCorner = list(text.box[1])
                item.BoundingBoxTextHorizontalJustification = "LEFT"
            if text.anchor is not None:
                item.AnchorPointAnnotationUnits = text.units
                item.AnchorPoint = list(text.anchor)
                item.AnchorPointVisibility = "Y"
            text_items.append(item)
        if text_items:
            annotation.TextObjectSequence = DicomSequence(text_items)
        ds.GraphicAnnotationSequence = DicomSequence([annotation])
    return roundtrip(ds)


def to_monochrome1(image: Dataset) -> Dataset:
    """The same picture stored as MONOCHROME1: stored values ``x`` become ``K - x``.

    ``K`` (:func:`mirror_constant`) maps the stored range onto itself, signed or not.

    A MONOCHROME1 rendering of the result must equal the MONOCHROME2 rendering of ``image``
    with the window mirrored the same way.  Window Center/Width are removed so that callers pick.
    """
    ds = dcmread(io.BytesIO(_bytes(image)))
    if ds.file_meta.TransferSyntaxUID.is_compressed:
        ds.decompress(decoding_plugin="pylibjpeg", generate_instance_uid=False)
    arr = ds.pixel_array.astype(np.int64)
    mirrored = (mirror_constant(ds) - arr).astype(ds.pixel_array.dtype)
    ds.PixelData = mirrored.tobytes()
    ds.PhotometricInterpretation = "MONOCHROME1"
    for keyword in (
        "WindowCenter",
        "WindowWidth",
        "RescaleSlope",
        "RescaleIntercept",
        "RescaleType",
    ):
        if keyword in ds:
            delattr(ds, keyword)
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return roundtrip(ds)


def mirror_constant(ds: Dataset) -> int:
    """``K`` of :func:`to_monochrome1`: ``2**bits - 1`` unsigned, ``-1`` signed."""
    return -1 if int(ds.PixelRepresentation) else (1 << int(ds.BitsStored)) - 1


def _bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def psnr(a: Image.Image | np.ndarray, b: Image.Image | np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB for 8-bit images (inf when identical)."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert x.shape == y.shape, (x.shape, y.shape)
    mse = float(((x - y) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def dcmtk_render(program: str, source: Path, out_dir: Path, *options: str) -> Image.Image:
    """Run a dcmtk renderer (dcmj2pnm/dcml2pnm with ``--write-png``, dcmp2pgm) and load it."""
    target = out_dir / f"dcmtk-{len(list(out_dir.iterdir()))}.img"
    args = [program, *options, str(source), str(target)]
    if program != "dcmp2pgm":
        args.insert(1, "--write-png")
    completed = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert completed.returncode == 0, completed.stderr
    with Image.open(target) as image:
        image.load()
        return image.copy()


def decode(data: bytes) -> Image.Image:
    """Open rendered bytes with Pillow (raises on a broken file)."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.copy()
