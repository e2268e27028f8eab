"""IHE RAD TF-2 §4.69 Retrieve Imaging Document Set (RAD-69) = PS3.18 2017b §6.4.1.

validate → resolve → produce → collect errors, one DocumentRequest at a time.  Every
DocumentRequest is answered either by a :class:`~xdsi.model.RetrievedDocument` or by one
RegistryError whose ``location`` is the DocumentUniqueId (RAD69-016; PS3.18 §6.4.1.2.1); the overall
status is derived by :func:`xdsi.model.status_of`.  Nothing here knows SOAP.

Checks made for each document, in this order (the first failing one is reported):

1. RepositoryUniqueId is one of ours (``XDSUnknownRepositoryId``; NIST ids_4812 case 1).  A missing
   RepositoryUniqueId is accepted (PS3.18 makes it optional) and answered with our first one.
2. HomeCommunityId, when both configured and sent, is ours (``XDSUnknownCommunity``).
3. Study, series and document UIDs are present and well-formed (PS3.5 §9.1), and the transfer
   syntax list is non-empty and well-formed (``urn:dicom:wado:0012``; NIST ids_4812 cases 5–9).
4. The instance is stored (``XDSDocumentUniqueIdError`` or, by setting, ``XDSMissingDocument``).
5. It belongs to the named series and study (``urn:dicom:wado:0010``; NIST ids_4812 cases 3–4).
6. A listed transfer syntax can be produced (``urn:dicom:wado:0007``; RAD69-005).
7. The response stays within ``max_response_bytes`` (``urn:dicom:wado:0005``).
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from collections.abc import Iterator
from typing import IO

from pydicom import dcmread
from pydicom.dataset import Dataset

from xdsi import ns
from xdsi.config import Settings
from xdsi.errors import (
    DocumentNotFound,
    InconsistentIdentifiers,
    InvalidParameter,
    ResourceLimit,
    TransferSyntaxUnavailable,
    UnknownCommunity,
    UnknownRepository,
    XdsiError,
)
from xdsi.imaging.transcode import choose_transfer_syntax, transcode
from xdsi.model import (
    DocumentRequest,
    Outcome,
    Payload,
    RegistryError,
    RetrievedDocument,
    RetrieveImagingDocumentSetRequest,
)
from xdsi.store.base import InstanceRecord, Store
from xdsi.uids import is_valid_uid

log = logging.getLogger(__name__)

SPOOL_IN_MEMORY_BYTES = 8 * 1024 * 1024
"""Transcoded documents larger than this are spooled to a temporary file, not kept in memory."""
CHUNK_SIZE = 1 << 20


def retrieve_imaging_document_set(
    request: RetrieveImagingDocumentSetRequest, store: Store, settings: Settings
) -> Outcome:
    """Answer one RAD-69 request from ``store`` (IHE RAD TF-2 §4.69.4.2)."""
    outcome = Outcome()
    if len(request.documents) > settings.max_documents_per_request:
        limit = ResourceLimit(
            f"{len(request.documents)} documents requested; this source answers at most "
            f"{settings.max_documents_per_request} per request"
        )
        for doc in request.documents:
            outcome.errors.append(_located(limit, doc))
        return outcome

    ts_problem = _transfer_syntax_problem(request.transfer_syntax_uids)
    wanted = [d.document_unique_id for d in request.documents if is_valid_uid(d.document_unique_id)]
    records = store.get_many(wanted) if wanted else {}
    budget = settings.max_response_bytes
    for doc in request.documents:
        try:
            record = _resolve(doc, records, ts_problem, settings)
            payload, ts = _produce(record, request.transfer_syntax_uids, store)
            if payload.size is not None:
                if payload.size > budget:
                    raise ResourceLimit(
                        f"document of {payload.size} bytes exceeds the remaining response size "
                        f"limit ({budget} of {settings.max_response_bytes} bytes)"
                    )
                budget -= payload.size
            echoed = _echo(doc, settings)
            outcome.documents.append(RetrievedDocument(echoed, payload, ts))
        except XdsiError as exc:
            outcome.errors.append(_located(exc, doc))
    return outcome


def _located(exc: XdsiError, doc: DocumentRequest) -> RegistryError:
    error = exc.to_registry_error()
    if error.location is None:
        error = dataclasses.replace(error, location=doc.document_unique_id)
    return error


def _echo(doc: DocumentRequest, settings: Settings) -> DocumentRequest:
    """The DocumentRequest as it is echoed in the DocumentResponse (PS3.18 §6.4.1.2.1)."""
    if doc.repository_unique_id:
        return doc
    return DocumentRequest(
        doc.study_instance_uid,
        doc.series_instance_uid,
        doc.document_unique_id,
        settings.repository_unique_id,
        doc.home_community_id,
    )


def _transfer_syntax_problem(uids: tuple[str, ...]) -> str | None:
    if not uids:
        return "TransferSyntaxUIDList is empty; at least one TransferSyntaxUID is required"
    bad = [u for u in uids if not is_valid_uid(u)]
    if bad:
        return f"TransferSyntaxUID is not a valid UID: {bad[0]!r}"
    return None


def _resolve(
    doc: DocumentRequest,
    records: dict[str, InstanceRecord],
    ts_problem: str | None,
    settings: Settings,
) -> InstanceRecord:
    repo = doc.repository_unique_id
    if repo and settings.check_repository_id and repo not in settings.repository_unique_ids:
        raise UnknownRepository(
            f"Unknown Repository UID [{repo}]. Expected [{settings.repository_unique_id}]"
        )
    hcid = doc.home_community_id
    if hcid and settings.home_community_id and hcid != settings.home_community_id:
        raise UnknownCommunity(
            f"Unknown HomeCommunityId [{hcid}]. Expected [{settings.home_community_id}]"
        )
    for what, value in (
        ("studyInstanceUID", doc.study_instance_uid),
        ("seriesInstanceUID", doc.series_instance_uid),
        ("DocumentUniqueId", doc.document_unique_id),
    ):
        if not value:
            raise InvalidParameter(f"{what} is empty")
        if not is_valid_uid(value):
            raise InvalidParameter(f"{what} is not a valid DICOM UID: {value!r}")
    if ts_problem:
        raise InvalidParameter(ts_problem)
    record = records.get(doc.document_unique_id)
    if record is None:
        raise DocumentNotFound(
            f"DICOM instance {doc.document_unique_id} is not available from this source",
            code=settings.not_found_code,
        )
    if record.study_instance_uid != doc.study_instance_uid:
        raise InconsistentIdentifiers(
            f"instance {doc.document_unique_id} belongs to study {record.study_instance_uid}, "
            f"not to the requested study {doc.study_instance_uid}"
        )
    if record.series_instance_uid != doc.series_instance_uid:
        raise InconsistentIdentifiers(
            f"instance {doc.document_unique_id} belongs to series {record.series_instance_uid}, "
            f"not to the requested series {doc.series_instance_uid}"
        )
    return record


def _read_header(store: Store, record: InstanceRecord) -> Dataset:
    with store.open(record) as fh:
        return dcmread(fh, stop_before_pixels=True)


def _produce(
    record: InstanceRecord, requested: tuple[str, ...], store: Store
) -> tuple[Payload, str]:
    """The payload in the stored syntax when listed, else transcoded (RAD69-005)."""
    if record.transfer_syntax_uid in requested:
        return (
            Payload(ns.MEDIA_DICOM, lambda: store.iter_bytes(record, CHUNK_SIZE), record.size),
            record.transfer_syntax_uid,
        )
    header = _read_header(store, record)
    target = choose_transfer_syntax(record.transfer_syntax_uid, requested, header)
    if target is None:
        raise TransferSyntaxUnavailable(
            f"instance {record.sop_instance_uid} is stored in {record.transfer_syntax_uid} and "
            f"cannot be provided in any of the requested transfer syntaxes: {', '.join(requested)}"
        )
    if target == record.transfer_syntax_uid:
        return (
            Payload(ns.MEDIA_DICOM, lambda: store.iter_bytes(record, CHUNK_SIZE), record.size),
            target,
        )
    # Transcode now, not while streaming: a decoding failure must become this document's
    # RegistryError (urn:dicom:wado:0014) before the SOAP envelope is written.  The result is
    # spooled (to disk beyond SPOOL_IN_MEMORY_BYTES) so that a response of many transcoded
    # instances holds at most one of them in memory at a time.
    with store.open(record) as fh:
        data = transcode(fh, target)
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES)  # noqa: SIM115
    spool.write(data)
    size = spool.tell()
    del data
    return Payload(ns.MEDIA_DICOM, lambda: _drain(spool), size), target


def _drain(spool: IO[bytes]) -> Iterator[bytes]:
    try:
        spool.seek(0)
        while chunk := spool.read(CHUNK_SIZE):
            yield chunk
    finally:
        spool.close()


__all__ = ["retrieve_imaging_document_set"]
