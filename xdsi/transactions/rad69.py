"""IHE RAD TF-2 §4.69 Retrieve Imaging Document Set (RAD-69) = PS3.18 2017b §6.4.1.

validate → resolve → produce → collect errors, one DocumentRequest at a time.  Every
DocumentRequest is answered either by a :class:`~xdsi.model.RetrievedDocument` or by one
RegistryError whose ``location`` is the DocumentUniqueId (RAD69-016; PS3.18 §6.4.1.2.1); the overall
status is derived by :func:`xdsi.model.status_of`.  Nothing here knows SOAP.

Checks made for each document, in this order (the first failing one is reported): the shared
ones of :mod:`xdsi.transactions.resolve` (repository, community, UIDs — with the transfer syntax
list, non-empty and well-formed, as this transaction's parameter check, ``urn:dicom:wado:0012``;
NIST ids_4812 cases 5–9 — then stored, then in the named series and study), and then:

6. A listed transfer syntax can be produced (``urn:dicom:wado:0007``; RAD69-005).
7. The response stays within ``max_response_bytes`` (``urn:dicom:wado:0005``).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from typing import IO

from pydicom import dcmread
from pydicom.dataset import Dataset

from xdsi import ns
from xdsi.config import Settings
from xdsi.errors import ResourceLimit, TransferSyntaxUnavailable, XdsiError
from xdsi.imaging.transcode import choose_transfer_syntax, transcode
from xdsi.model import (
    Outcome,
    Payload,
    RetrievedDocument,
    RetrieveImagingDocumentSetRequest,
)
from xdsi.store.base import InstanceRecord, Store
from xdsi.transactions.resolve import echoed, located, records_for, resolve, too_many
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
    outcome.errors.extend(too_many(request.documents, settings))
    if outcome.errors:
        return outcome

    ts_problem = _transfer_syntax_problem(request.transfer_syntax_uids)
    records = records_for(request.documents, store)
    budget = settings.max_response_bytes
    for doc in request.documents:
        try:
            record = resolve(doc, records, settings, ts_problem)
            payload, ts = _produce(record, request.transfer_syntax_uids, store)
            if payload.size is not None:
                if payload.size > budget:
                    raise ResourceLimit(
                        f"document of {payload.size} bytes exceeds the remaining response size "
                        f"limit ({budget} of {settings.max_response_bytes} bytes)"
                    )
                budget -= payload.size
            outcome.documents.append(RetrievedDocument(echoed(doc, settings), payload, ts))
        except XdsiError as exc:
            outcome.errors.append(located(exc, doc))
    return outcome


def _transfer_syntax_problem(uids: tuple[str, ...]) -> str | None:
    if not uids:
        return "TransferSyntaxUIDList is empty; at least one TransferSyntaxUID is required"
    bad = [u for u in uids if not is_valid_uid(u)]
    if bad:
        return f"TransferSyntaxUID is not a valid UID: {bad[0]!r}"
    return None


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
