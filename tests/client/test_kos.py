"""KOS manifest → RAD-69 document requests (``xdsi.client.kos``) on the sample manifest."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from xdsi.client.kos import documents_of, read_kos
from xdsi.errors import InvalidManifest

DEFAULT_REPOSITORY = "1.3.6.1.4.1.21367.13.80.110"


def test_sample_manifest_references_the_ct_study(kos_path: Path, samples_dir: Path) -> None:
    documents = read_kos(kos_path)
    ct = [pydicom.dcmread(p, stop_before_pixels=True) for p in (samples_dir / "ct").rglob("*.dcm")]
    assert {d.document_unique_id for d in documents} == {str(ds.SOPInstanceUID) for ds in ct}
    by_uid = {str(ds.SOPInstanceUID): ds for ds in ct}
    for doc in documents:
        ds = by_uid[doc.document_unique_id]
        assert (doc.study_instance_uid, doc.series_instance_uid) == (
            ds.StudyInstanceUID,
            ds.SeriesInstanceUID,
        )
        assert doc.repository_unique_id == DEFAULT_REPOSITORY  # Retrieve Location UID
        assert doc.home_community_id is None
    assert len({d.series_instance_uid for d in documents}) == 2


def test_home_community_id_is_carried(kos_path: Path) -> None:
    assert {d.home_community_id for d in read_kos(kos_path, "x")} == {"x"}


def test_an_image_is_not_a_manifest(samples_dir: Path) -> None:
    with pytest.raises(InvalidManifest, match="0040,A375"):
        read_kos(samples_dir / "ct" / "series1" / "ct_small.dcm")


def test_not_dicom(tmp_path: Path) -> None:
    path = tmp_path / "x.dcm"
    path.write_bytes(b"not a DICOM file at all")
    with pytest.raises(InvalidManifest, match="not a readable DICOM"):
        read_kos(path)


def _kos(series_uid: str, location: str | None) -> Dataset:
    sop = Dataset()
    sop.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    sop.ReferencedSOPInstanceUID = "1.2.3.4.5"
    series = Dataset()
    series.SeriesInstanceUID = series_uid
    if location is not None:
        series.RetrieveLocationUID = location
    series.ReferencedSOPSequence = Sequence([sop])
    study = Dataset()
    study.StudyInstanceUID = "1.2.3"
    study.ReferencedSeriesSequence = Sequence([series])
    kos = Dataset()
    kos.CurrentRequestedProcedureEvidenceSequence = Sequence([study])
    return kos


def test_series_without_retrieve_location() -> None:
    (doc,) = documents_of(_kos("1.2.3.4", None))
    assert doc.repository_unique_id is None


def test_malformed_uid_in_the_manifest() -> None:
    with pytest.warns(UserWarning, match="VR UI"):  # pydicom warns when it is set
        kos = _kos("../../etc", "1.2")
    with pytest.raises(InvalidManifest, match="SeriesInstanceUID"):
        documents_of(kos)
