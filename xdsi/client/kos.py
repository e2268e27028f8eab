"""RAD-69 document requests from a Key Object Selection manifest (XDS-I.b manifest).

The Imaging Document Consumer takes the SOP Instance UIDs (= DocumentUniqueId) and the
RepositoryUniqueId from the KOS it retrieved (IHE RAD TF-2 §4.69.4.1.2; standards.md §2.1):
Current Requested Procedure Evidence Sequence (0040,A375) → study items → Referenced Series
Sequence (0008,1115) → Referenced SOP Sequence (0008,1199); the series-level Retrieve Location UID
(0040,E011) names the source's RepositoryUniqueId (PS3.3 C.17.2; NIST's KOS tools read it there).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from xdsi.errors import InvalidManifest
from xdsi.model import DocumentRequest
from xdsi.uids import is_valid_uid


def read_kos(path: Path, home_community_id: str | None = None) -> list[DocumentRequest]:
    """The documents referenced by the KOS manifest at ``path``, in manifest order.

    ``repository_unique_id`` is the series' Retrieve Location UID, or ``None`` where the
    manifest has none (the caller must then supply one).

    Raises
    ------
    InvalidManifest
        If the file cannot be read as DICOM or references nothing.
    """
    try:
        dataset = pydicom.dcmread(path, stop_before_pixels=True)
    except (InvalidDicomError, OSError, ValueError, EOFError) as exc:
        raise InvalidManifest(f"{path}: not a readable DICOM file ({exc})") from exc
    return documents_of(dataset, home_community_id, source=str(path))


def documents_of(
    dataset: Dataset, home_community_id: str | None = None, *, source: str = "KOS"
) -> list[DocumentRequest]:
    """The documents referenced by a KOS dataset (see :func:`read_kos`)."""
    documents: list[DocumentRequest] = []
    for study in _items(dataset, "CurrentRequestedProcedureEvidenceSequence"):
        study_uid = _uid(study, "StudyInstanceUID", source)
        for series in _items(study, "ReferencedSeriesSequence"):
            series_uid = _uid(series, "SeriesInstanceUID", source)
            location = str(series.get("RetrieveLocationUID", "") or "").strip() or None
            for sop in _items(series, "ReferencedSOPSequence"):
                documents.append(
                    DocumentRequest(
                        study_instance_uid=study_uid,
                        series_instance_uid=series_uid,
                        document_unique_id=_uid(sop, "ReferencedSOPInstanceUID", source),
                        repository_unique_id=location,
                        home_community_id=home_community_id,
                    )
                )
    if not documents:
        raise InvalidManifest(
            f"{source}: no instance is referenced in the Current Requested Procedure Evidence "
            "Sequence (0040,A375)"
        )
    return documents


def _items(dataset: Dataset, keyword: str) -> Iterable[Dataset]:
    value = dataset.get(keyword)
    return () if value is None else list(value)


def _uid(dataset: Dataset, keyword: str, source: str) -> str:
    value = str(dataset.get(keyword, "") or "").strip()
    if not is_valid_uid(value):
        raise InvalidManifest(f"{source}: {keyword} is missing or not a valid UID: {value!r}")
    return value


__all__ = ["documents_of", "read_kos"]
