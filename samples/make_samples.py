"""Regenerate ``samples/dicom/`` from pydicom's and pydicom-data's test files.

Run from the repository root: ``python samples/make_samples.py``.  The output is committed; this
script documents exactly how each file was derived (see ``samples/README.md``).

Each source file is re-identified into one of three fictitious demo patients/studies: patient,
study, series and SOP Instance UIDs are replaced by UIDs derived deterministically from the file
name (``pydicom.uid.generate_uid(entropy_srcs=...)``), so that the pixel data and every other
attribute stay as published while no two samples share a SOP Instance UID.  The file is written
back in its original transfer syntax (compressed pixel data is copied, never re-encoded).
"""

from __future__ import annotations

import sys
from pathlib import Path

from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

ROOT = "1.2.826.0.1.3680043.10.1473."  # not registered: the pydicom-provided prefix is used below
OUT = Path(__file__).resolve().parent / "dicom"
REPOSITORY_UNIQUE_ID = "1.3.6.1.4.1.21367.13.80.110"

# (output name, source test file, patient, study key, series key, series number, instance number)
PLAN: list[tuple[str, str, str, str, str, int, int]] = [
    ("ct/series1/ct_small.dcm", "CT_small.dcm", "DEMO001", "ct", "ct-axial", 1, 1),
    ("ct/series2/mr_small_explicit.dcm", "MR_small.dcm", "DEMO001", "ct", "ct-mr", 2, 1),
    ("ct/series2/mr_small_rle.dcm", "MR_small_RLE.dcm", "DEMO001", "ct", "ct-mr", 2, 2),
    (
        "ct/series2/mr_small_jpegls.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
        "DEMO001",
        "ct",
        "ct-mr",
        2,
        3,
    ),
    (
        "mr/series1/emri_j2k_multiframe.dcm",
        "emri_small_jpeg_2k_lossless.dcm",
        "DEMO002",
        "mr",
        "mr-enh",
        1,
        1,
    ),
    (
        "mr/series2/emri_explicit_multiframe.dcm",
        "emri_small.dcm",
        "DEMO002",
        "mr",
        "mr-enh-raw",
        2,
        1,
    ),
    ("sc/series1/sc_rgb.dcm", "SC_rgb.dcm", "DEMO003", "sc", "sc-rgb", 1, 1),
    ("sc/series1/sc_rgb_rle.dcm", "SC_rgb_rle.dcm", "DEMO003", "sc", "sc-rgb", 1, 2),
    (
        "sc/series1/sc_rgb_jpeg_lossless.dcm",
        "SC_rgb_jpeg_gdcm.dcm",
        "DEMO003",
        "sc",
        "sc-rgb",
        1,
        3,
    ),
    (
        "sc/series1/sc_jpeg_baseline.dcm",
        "SC_jpeg_no_color_transform.dcm",
        "DEMO003",
        "sc",
        "sc-rgb",
        1,
        4,
    ),
    (
        "sc/series2/us_ybr_multiframe_jpeg.dcm",
        "examples_ybr_color.dcm",
        "DEMO003",
        "sc",
        "sc-us",
        2,
        1,
    ),
    ("sc/series3/sr.dcm", "test-SR.dcm", "DEMO003", "sc", "sc-sr", 3, 1),
]

PATIENTS = {
    "DEMO001": "DEMO^CT^MR",
    "DEMO002": "DEMO^ENHANCED^MR",
    "DEMO003": "DEMO^COLOUR^SR",
}


def uid(*parts: str) -> str:
    return generate_uid(entropy_srcs=["xdsi-samples", *parts])


def rewrite(
    name: str,
    source: str,
    patient: str,
    study: str,
    series: str,
    series_number: int,
    instance_number: int,
) -> Dataset:
    path = get_testdata_file(source)
    if path is None:
        raise SystemExit(f"pydicom test file {source} not found (pip install pydicom-data)")
    ds = dcmread(path)
    ds.PatientID = patient
    ds.PatientName = PATIENTS[patient]
    ds.StudyInstanceUID = uid("study", study)
    ds.SeriesInstanceUID = uid("series", series)
    ds.SOPInstanceUID = uid("sop", name)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.SeriesNumber = series_number
    ds.InstanceNumber = instance_number
    ds.StudyID = study.upper()
    ds.AccessionNumber = f"ACC-{study.upper()}"
    if "FrameOfReferenceUID" in ds:
        ds.FrameOfReferenceUID = uid("for", series)
    return ds


def kos(studies: dict[str, list[Dataset]]) -> Dataset:
    """A Key Object Selection manifest (XDS-I.b) referencing every sample of study ``ct``."""
    instances = studies["ct"]
    first = instances[0]
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.59"
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = uid("sop", "kos")
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.Modality = "KO"
    ds.PatientID = first.PatientID
    ds.PatientName = first.PatientName
    ds.StudyInstanceUID = first.StudyInstanceUID
    ds.SeriesInstanceUID = uid("series", "kos")
    ds.SeriesNumber = 99
    ds.InstanceNumber = 1
    ds.ContentDate = "20260101"
    ds.ContentTime = "120000"
    ds.ValueType = "CONTAINER"
    concept = Dataset()
    concept.CodeValue = "113030"
    concept.CodingSchemeDesignator = "DCM"
    concept.CodeMeaning = "Manifest"
    ds.ConceptNameCodeSequence = Sequence([concept])
    ds.ContinuityOfContent = "SEPARATE"
    by_series: dict[str, list[Dataset]] = {}
    for inst in instances:
        by_series.setdefault(str(inst.SeriesInstanceUID), []).append(inst)
    series_items = []
    content = []
    for series_uid, members in by_series.items():
        item = Dataset()
        item.SeriesInstanceUID = series_uid
        item.RetrieveLocationUID = REPOSITORY_UNIQUE_ID
        refs = []
        for inst in members:
            ref = Dataset()
            ref.ReferencedSOPClassUID = inst.SOPClassUID
            ref.ReferencedSOPInstanceUID = inst.SOPInstanceUID
            refs.append(ref)
            ci = Dataset()
            ci.RelationshipType = "CONTAINS"
            ci.ValueType = "IMAGE"
            ci.ReferencedSOPSequence = Sequence([ref])
            content.append(ci)
        item.ReferencedSOPSequence = Sequence(refs)
        series_items.append(item)
    study_item = Dataset()
    study_item.StudyInstanceUID = first.StudyInstanceUID
    study_item.ReferencedSeriesSequence = Sequence(series_items)
    ds.CurrentRequestedProcedureEvidenceSequence = Sequence([study_item])
    ds.ContentSequence = Sequence(content)
    return ds


def main() -> int:
    studies: dict[str, list[Dataset]] = {}
    for name, source, patient, study, series, series_number, instance_number in PLAN:
        ds = rewrite(name, source, patient, study, series, series_number, instance_number)
        target = OUT / name
        target.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(target, enforce_file_format=True)
        studies.setdefault(study, []).append(ds)
        print(f"{target.relative_to(OUT.parent)}  <- {source}")
    manifest = kos(studies)
    target = OUT / "manifests" / "ct_study_kos.dcm"
    target.parent.mkdir(parents=True, exist_ok=True)
    manifest.save_as(target, enforce_file_format=True)
    print(f"{target.relative_to(OUT.parent)}  <- generated KOS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
