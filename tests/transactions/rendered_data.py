"""Objects the rendered tests store beside the samples: presentation states and an Encapsulated PDF.

There is no sample presentation state or PDF, so they are built with pydicom
(:func:`tests.imaging.render_helpers.make_gsps`) and written as Part 10 files that the store
indexes like any other instance.  The fixtures ``extras``, ``settings`` and ``store`` (one real
SQLite store per test module with the samples and these objects) are imported by the rendered
test modules.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    ColorSoftcopyPresentationStateStorage,
    EncapsulatedPDFStorage,
    ExplicitVRLittleEndian,
    generate_uid,
)

from tests.imaging.render_helpers import Text, make_gsps
from xdsi.config import Settings, load_settings
from xdsi.store import open_store
from xdsi.store.base import Store
from xdsi.transactions.rendered_model import RenderedDocumentRequest

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "dicom"
CT = SAMPLES / "ct" / "series1" / "ct_small.dcm"
MULTIFRAME = SAMPLES / "mr" / "series2" / "emri_explicit_multiframe.dcm"
RGB = SAMPLES / "sc" / "series1" / "sc_rgb.dcm"
SR = SAMPLES / "sc" / "series3" / "sr.dcm"
KOS = SAMPLES / "manifests" / "ct_study_kos.dcm"
REPO_ID = "1.3.6.1.4.1.21367.13.80.110"
PDF_BYTES = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF"  # odd length: padded when stored


@dataclass(frozen=True)
class Extras:
    """Paths of the extra files and their datasets."""

    gsps: Path
    gsps_text: Path
    color_ps: Path
    pdf: Path

    @property
    def paths(self) -> list[Path]:
        return [self.gsps, self.gsps_text, self.color_ps, self.pdf]


def _save(ds: Dataset, path: Path) -> Path:
    ds.save_as(path, enforce_file_format=True)
    return path


def encapsulated_pdf(like: Dataset) -> Dataset:
    """An Encapsulated PDF instance (PS3.3 A.45.1) of the patient of ``like``, own study."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = EncapsulatedPDFStorage
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PatientName = like.get("PatientName", "")
    ds.PatientID = like.get("PatientID", "")
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "DOC"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocumentLength = len(PDF_BYTES)
    ds.EncapsulatedDocument = PDF_BYTES + b"\x00"
    return ds


def make_extras(directory: Path) -> Extras:
    """Write a GSPS (window 40/400, inverse), a GSPS with a text annotation, a Colour Softcopy
    PS and an Encapsulated PDF into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    ct = pydicom.dcmread(CT)
    gsps = make_gsps(ct, window=(40, 400), inverse=True)
    with_text = make_gsps(ct, texts=[Text("HELLO", anchor=(10, 10))])
    color = make_gsps(ct)
    color.SOPClassUID = ColorSoftcopyPresentationStateStorage
    color.file_meta.MediaStorageSOPClassUID = color.SOPClassUID
    return Extras(
        gsps=_save(gsps, directory / "gsps.dcm"),
        gsps_text=_save(with_text, directory / "gsps_text.dcm"),
        color_ps=_save(color, directory / "color_ps.dcm"),
        pdf=_save(encapsulated_pdf(ct), directory / "pdf.dcm"),
    )


def uids(path: Path) -> tuple[str, str, str]:
    """(study, series, SOP instance) UIDs of a file."""
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)


def request_for(path: Path, **values: object) -> RenderedDocumentRequest:
    """A RenderedDocumentRequest for the file's instance with the given text values."""
    study, series, sop = uids(path)
    fields: dict[str, object] = {
        "study_instance_uid": study,
        "series_instance_uid": series,
        "document_unique_id": sop,
        "repository_unique_id": REPO_ID,
    }
    fields.update(values)
    return RenderedDocumentRequest(**fields)  # type: ignore[arg-type]


def presentation_of(path: Path) -> dict[str, str]:
    """PresentationUID/PresentationSeriesUID values naming the presentation state file."""
    _, series, sop = uids(path)
    return {"presentation_uid": sop, "presentation_series_uid": series}


@pytest.fixture(scope="module")
def extras(tmp_path_factory: pytest.TempPathFactory) -> Extras:
    return make_extras(tmp_path_factory.mktemp("rendered-extras"))


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return load_settings(None, environ={}, data_dir=tmp_path_factory.mktemp("rendered-store"))


@pytest.fixture(scope="module")
def store(settings: Settings, sample_files: list[Path], extras: Extras) -> Iterator[Store]:
    s = open_store(settings)
    for path in [*sample_files, *extras.paths]:
        s.put(path)
    yield s
    s.close()
