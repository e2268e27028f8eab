"""Checks every WADO-WS transaction makes before it touches a document (PS3.18 2017b §6.4).

RAD-69 (IHE RAD TF-2 §4.69.4.2), the rendered (§6.4.2) and the metadata (§6.4.3) operations name
their documents the same way: study / series / DocumentUniqueId with RepositoryUniqueId and
HomeCommunityId.  The checks below are theirs, in this order (the first failing one is reported,
as one RegistryError whose ``location`` is the DocumentUniqueId):

1. RepositoryUniqueId is one of ours (``XDSUnknownRepositoryId``; NIST ids_4812 case 1).  A missing
   RepositoryUniqueId is accepted (PS3.18 makes it optional) and answered with our first one.
2. HomeCommunityId, when both configured and sent, is ours (``XDSUnknownCommunity``).
3. Study, series and document UIDs are present and well-formed (PS3.5 §9.1;
   ``urn:dicom:wado:0012``; NIST ids_4812 cases 5–7), then the transaction's own parameter check.
4. The instance is stored (``XDSDocumentUniqueIdError`` or, by setting, ``XDSMissingDocument``);
   in gateway mode, the error the store gives for an instance it cannot deliver.
5. It belongs to the named series and study (``urn:dicom:wado:0010``; NIST ids_4812 cases 3–4).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from xdsi.config import Settings
from xdsi.errors import (
    DocumentNotFound,
    InconsistentIdentifiers,
    InvalidParameter,
    RepositoryError,
    ResourceLimit,
    UnknownCommunity,
    UnknownRepository,
    XdsiError,
)
from xdsi.model import DocumentRequest, RegistryError
from xdsi.store.base import InstanceRecord, Store
from xdsi.uids import is_valid_uid


def too_many(documents: Sequence[DocumentRequest], settings: Settings) -> list[RegistryError]:
    """One ``urn:dicom:wado:0005`` per document if the request names more than the limit, else
    nothing (``max_documents_per_request``)."""
    if len(documents) <= settings.max_documents_per_request:
        return []
    limit = ResourceLimit(
        f"{len(documents)} documents requested; this source answers at most "
        f"{settings.max_documents_per_request} per request"
    )
    return [located(limit, doc) for doc in documents]


Located = Mapping[str, InstanceRecord | XdsiError]
"""What :meth:`~xdsi.store.base.Store.locate` answers: per SOP Instance UID a record, or the
error that stops its delivery (gateway mode)."""


def records_for(documents: Sequence[DocumentRequest], store: Store) -> Located:
    """The records of the well-formed DocumentUniqueIds (:meth:`Store.locate`: one index query
    for a local store; C-FIND and the start of the retrieval in gateway mode)."""
    wanted = [d for d in documents if is_valid_uid(d.document_unique_id)]
    return store.locate(wanted) if wanted else {}


def arrived(store: Store, record: InstanceRecord) -> InstanceRecord:
    """``record`` complete: in gateway mode an instance still on its way (``available`` false)
    is waited for (:meth:`Store.get` waits, within the gateway's timeouts).

    Raises the store's :class:`XdsiError` for a failed retrieval, :class:`RepositoryError` if the
    instance did not come.
    """
    if record.available:
        return record
    complete = store.get(record.sop_instance_uid)
    if complete is None or not complete.available:
        raise RepositoryError(f"instance {record.sop_instance_uid} did not arrive from the PACS")
    return complete


def located(exc: XdsiError, doc: DocumentRequest) -> RegistryError:
    """``exc`` as a RegistryError located at the document (PS3.18 §6.4.1.2.1, RAD69-016)."""
    error = exc.to_registry_error()
    if error.location is None:
        error = dataclasses.replace(error, location=doc.document_unique_id)
    return error


def echoed(doc: DocumentRequest, settings: Settings) -> DocumentRequest:
    """The request as it is echoed in the response: a missing RepositoryUniqueId becomes ours
    (PS3.18 §6.4.1.2.1)."""
    if doc.repository_unique_id:
        return doc
    return dataclasses.replace(doc, repository_unique_id=settings.repository_unique_id)


def resolve(
    doc: DocumentRequest,
    records: Located,
    settings: Settings,
    parameter_problem: str | None = None,
) -> InstanceRecord:
    """Run checks 1–5 on ``doc`` and return its record.

    ``parameter_problem`` is the transaction's own verdict on its parameters (e.g. an empty
    TransferSyntaxUIDList), raised as ``urn:dicom:wado:0012`` after the UID checks.

    Raises
    ------
    XdsiError
        The first failing check, as the subclass carrying its wire code.
    """
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
    if parameter_problem:
        raise InvalidParameter(parameter_problem)
    record = records.get(doc.document_unique_id)
    if isinstance(record, XdsiError):
        raise record  # found, but the (remote) store cannot deliver it
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


__all__ = ["Located", "arrived", "echoed", "located", "records_for", "resolve", "too_many"]
