"""RAD-69 transaction semantics (IHE RAD TF-2 §4.69; PS3.18 2017b §6.4.1) over a real SQLite store.

Each case of the issue's "Semantics" section, and of NIST ids_4812 (cases 1–9), has a test here.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread

from xdsi import ns
from xdsi.config import Settings, load_settings
from xdsi.model import (
    DocumentRequest,
    Outcome,
    RetrieveImagingDocumentSetRequest,
    Status,
)
from xdsi.store.base import Store
from xdsi.transactions.rad69 import retrieve_imaging_document_set

REPO_ID = "1.3.6.1.4.1.21367.13.80.110"
ALL_STORED_TS = (
    ns.TS_EXPLICIT_VR_LE,
    ns.TS_RLE,
    ns.TS_JPEG_LS_LOSSLESS,
    ns.TS_JPEG2000_LOSSLESS,
    ns.TS_JPEG_LOSSLESS_SV1,
    ns.TS_JPEG_BASELINE,
)


def _header(path: Path) -> tuple[str, str, str, str]:
    ds = dcmread(path, stop_before_pixels=True)
    return (
        str(ds.StudyInstanceUID),
        str(ds.SeriesInstanceUID),
        str(ds.SOPInstanceUID),
        str(ds.file_meta.TransferSyntaxUID),
    )


def _request_for(path: Path, **overrides: str | None) -> DocumentRequest:
    study, series, sop, _ = _header(path)
    fields: dict[str, str | None] = {
        "study_instance_uid": study,
        "series_instance_uid": series,
        "document_unique_id": sop,
        "repository_unique_id": REPO_ID,
        "home_community_id": None,
    }
    fields.update(overrides)
    return DocumentRequest(**fields)  # type: ignore[arg-type]


def _run(store: Store, settings: Settings, docs: list[DocumentRequest],
         ts: tuple[str, ...] = ALL_STORED_TS) -> Outcome:
    return retrieve_imaging_document_set(
        RetrieveImagingDocumentSetRequest(tuple(docs), ts), store, settings
    )


def _bytes(outcome: Outcome, index: int = 0) -> bytes:
    return b"".join(outcome.documents[index].payload.chunks())


def _sample(sample_files: list[Path], name: str) -> Path:
    return next(p for p in sample_files if p.name == name)


def test_whole_study_in_stored_syntax_is_byte_identical(
    store: Store, settings: Settings, samples_dir: Path
) -> None:
    files = sorted((samples_dir / "ct").rglob("*.dcm"))
    outcome = _run(store, settings, [_request_for(p) for p in files])
    assert outcome.status is Status.SUCCESS
    assert outcome.errors == []
    assert len(outcome.documents) == len(files) >= 4
    for i, path in enumerate(files):
        doc = outcome.documents[i]
        assert doc.request.document_unique_id == _header(path)[2]
        assert doc.payload.media_type == ns.MEDIA_DICOM
        assert doc.payload.size == path.stat().st_size
        assert _bytes(outcome, i) == path.read_bytes()


def test_unknown_repository_is_reported_per_document(
    store: Store, settings: Settings, sample_files: list[Path]
) -> None:
    doc = _request_for(sample_files[0], repository_unique_id="1.2.3.4.5")
    outcome = _run(store, settings, [doc])
    assert outcome.status is Status.FAILURE
    (error,) = outcome.errors
    assert error.error_code == ns.XDS_UNKNOWN_REPOSITORY_ID
    assert error.location == doc.document_unique_id
    assert "1.2.3.4.5" in error.code_context


def test_repository_check_can_be_disabled(
    store: Store, settings: Settings, sample_files: list[Path], tmp_path: Path
) -> None:
    lax = load_settings(None, environ={}, data_dir=settings.data_dir, check_repository_id=False)
    doc = _request_for(sample_files[0], repository_unique_id="1.3.6.1.4.1000")
    outcome = _run(store, lax, [doc])
    assert outcome.status is Status.SUCCESS
    assert outcome.documents[0].request.repository_unique_id == "1.3.6.1.4.1000"


def test_missing_repository_id_is_answered_with_ours(
    store: Store, settings: Settings, sample_files: list[Path]
) -> None:
    outcome = _run(store, settings, [_request_for(sample_files[0], repository_unique_id=None)])
    assert outcome.status is Status.SUCCESS
    assert outcome.documents[0].request.repository_unique_id == REPO_ID


def test_home_community_echoed_and_checked(
    store: Store, settings: Settings, sample_files: list[Path]
) -> None:
    hcid = "urn:oid:1.3.6.1.4.1.21367.13.70.200"
    outcome = _run(store, settings, [_request_for(sample_files[0], home_community_id=hcid)])
    assert outcome.documents[0].request.home_community_id == hcid
    strict = load_settings(None, environ={}, data_dir=settings.data_dir, home_community_id=hcid)
    other = _request_for(sample_files[0], home_community_id="urn:oid:1.2.3")
    outcome = _run(store, strict, [other])
    assert [e.error_code for e in outcome.errors] == [ns.XDS_UNKNOWN_COMMUNITY]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("study_instance_uid", ""),
        ("series_instance_uid", ""),
        ("document_unique_id", ""),
        ("document_unique_id", "../../etc/passwd"),
        ("study_instance_uid", "1.2.x"),
    ],
)
def test_empty_or_malformed_uids_are_invalid_parameters(
    store: Store, settings: Settings, sample_files: list[Path], field: str, value: str
) -> None:
    doc = _request_for(sample_files[0], **{field: value})
    outcome = _run(store, settings, [doc])
    assert outcome.status is Status.FAILURE
    (error,) = outcome.errors
    assert error.error_code == ns.WADO_INVALID_PARAMETER
    assert error.location == doc.document_unique_id


@pytest.mark.parametrize("ts", [(), ("",), ("1.2.840.10008.1.2.1 x",), ("not-a-uid",)])
def test_empty_or_malformed_transfer_syntax_list(
    store: Store, settings: Settings, sample_files: list[Path], ts: tuple[str, ...]
) -> None:
    outcome = _run(store, settings, [_request_for(sample_files[0])], ts)
    assert outcome.status is Status.FAILURE
    assert [e.error_code for e in outcome.errors] == [ns.WADO_INVALID_PARAMETER]


def test_unknown_document_default_and_dcm4chee_codes(
    store: Store, settings: Settings, sample_files: list[Path]
) -> None:
    doc = _request_for(sample_files[0], document_unique_id="1.2.3.4.5.6.7.8.9")
    outcome = _run(store, settings, [doc])
    assert [e.error_code for e in outcome.errors] == [ns.XDS_DOCUMENT_UNIQUE_ID_ERROR]
    assert outcome.errors[0].location == "1.2.3.4.5.6.7.8.9"
    dcm4chee = load_settings(
        None, environ={}, data_dir=settings.data_dir, not_found_code=ns.XDS_MISSING_DOCUMENT
    )
    outcome = _run(store, dcm4chee, [doc])
    assert [e.error_code for e in outcome.errors] == [ns.XDS_MISSING_DOCUMENT]


def test_instance_in_other_series_or_study_is_inconsistent(
    store: Store, settings: Settings, samples_dir: Path
) -> None:
    ct = samples_dir / "ct" / "series1" / "ct_small.dcm"
    mr = samples_dir / "ct" / "series2" / "mr_small_explicit.dcm"
    other_study = samples_dir / "sc" / "series3" / "sr.dcm"
    wrong_series = _request_for(ct, series_instance_uid=_header(mr)[1])
    wrong_study = _request_for(ct, study_instance_uid=_header(other_study)[0])
    outcome = _run(store, settings, [wrong_series, wrong_study])
    assert outcome.status is Status.FAILURE
    assert [e.error_code for e in outcome.errors] == [ns.WADO_INCONSISTENT_IDENTIFIERS] * 2
    assert "series" in outcome.errors[0].code_context
    assert "study" in outcome.errors[1].code_context


def test_partial_success_reports_errors_and_returns_the_rest(
    store: Store, settings: Settings, sample_files: list[Path]
) -> None:
    good = _request_for(sample_files[0])
    bad = _request_for(sample_files[0], document_unique_id="1.2.999")
    outcome = _run(store, settings, [good, bad])
    assert outcome.status is Status.PARTIAL_SUCCESS
    assert [d.request.document_unique_id for d in outcome.documents] == [good.document_unique_id]
    assert [e.location for e in outcome.errors] == ["1.2.999"]


def test_unproducible_transfer_syntax_is_0007(
    store: Store, settings: Settings, sample_files: list[Path]
) -> None:
    outcome = _run(store, settings, [_request_for(sample_files[0])], (ns.TS_JPIP,))
    assert outcome.status is Status.FAILURE
    assert [e.error_code for e in outcome.errors] == [ns.WADO_FORMAT_NOT_PROVIDABLE]


def test_compressed_instance_is_decompressed_when_only_explicit_le_listed(
    store: Store, settings: Settings, samples_dir: Path
) -> None:
    rle = samples_dir / "ct" / "series2" / "mr_small_rle.dcm"
    outcome = _run(store, settings, [_request_for(rle)], (ns.TS_EXPLICIT_VR_LE,))
    assert outcome.status is Status.SUCCESS, outcome.errors
    doc = outcome.documents[0]
    assert doc.transfer_syntax_uid == ns.TS_EXPLICIT_VR_LE
    data = _bytes(outcome)
    assert doc.payload.size == len(data)
    out = dcmread(io.BytesIO(data))
    src = dcmread(rle)
    assert out.file_meta.TransferSyntaxUID == ns.TS_EXPLICIT_VR_LE
    assert out.SOPInstanceUID == src.SOPInstanceUID
    assert out.PatientID == src.PatientID
    assert np.array_equal(out.pixel_array, src.pixel_array)


def test_document_count_limit(store: Store, settings: Settings, sample_files: list[Path]) -> None:
    tight = load_settings(None, environ={}, data_dir=settings.data_dir,
                          max_documents_per_request=1)
    docs = [_request_for(sample_files[0]), _request_for(sample_files[1])]
    outcome = _run(store, tight, docs)
    assert outcome.status is Status.FAILURE
    assert [e.error_code for e in outcome.errors] == [ns.WADO_RESOURCE_LIMIT] * 2
    assert [e.location for e in outcome.errors] == [d.document_unique_id for d in docs]


def test_response_size_limit_is_partial(
    store: Store, settings: Settings, samples_dir: Path
) -> None:
    small = samples_dir / "ct" / "series2" / "mr_small_rle.dcm"
    big = samples_dir / "ct" / "series1" / "ct_small.dcm"
    limit = small.stat().st_size + 10
    tight = load_settings(None, environ={}, data_dir=settings.data_dir, max_response_bytes=limit)
    outcome = _run(store, tight, [_request_for(small), _request_for(big)])
    assert outcome.status is Status.PARTIAL_SUCCESS
    assert [e.error_code for e in outcome.errors] == [ns.WADO_RESOURCE_LIMIT]
    assert outcome.errors[0].location == _header(big)[2]


def test_same_document_twice_is_returned_twice(
    store: Store, settings: Settings, sample_files: list[Path]
) -> None:
    doc = _request_for(sample_files[0])
    outcome = _run(store, settings, [doc, doc])
    assert outcome.status is Status.SUCCESS
    assert len(outcome.documents) == 2
    assert _bytes(outcome, 0) == _bytes(outcome, 1) == sample_files[0].read_bytes()
