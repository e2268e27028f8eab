"""IHE RAD TF-2 §4.69 Retrieve Imaging Document Set (RAD-69) = PS3.18 2017b §6.4.1.

validate → resolve → plan → size limit → produce → collect errors.  Every DocumentRequest is
answered either by a :class:`~xdsi.model.RetrievedDocument` or by one RegistryError whose
``location`` is the DocumentUniqueId (RAD69-016; PS3.18 §6.4.1.2.1); the overall status is derived
by :func:`xdsi.model.status_of`.  Nothing here knows SOAP.  Planning and producing the payloads
(stored bytes, or transcoding in worker processes while the response streams) is
:mod:`xdsi.transactions.produce`.

Checks made for each document, in this order (the first failing one is reported): the shared
ones of :mod:`xdsi.transactions.resolve` (repository, community, UIDs — with the transfer syntax
list, non-empty and well-formed, as this transaction's parameter check, ``urn:dicom:wado:0012``;
NIST ids_4812 cases 5–9 — then stored, then in the named series and study), and then:

6. A listed transfer syntax can be produced (``urn:dicom:wado:0007``; RAD69-005), and stored data
   to be transcoded is readable (``urn:dicom:wado:0014``).
7. The response stays within ``max_response_bytes`` (``urn:dicom:wado:0005``); a transcoded
   document counts with an upper estimate of its size (:class:`~xdsi.transactions.produce.Planned`).
8. The first ``transcode_window`` transcoded documents are transcoded (``urn:dicom:wado:0014``).

Instances are found with :meth:`~xdsi.store.base.Store.locate` (through
:func:`~xdsi.transactions.resolve.records_for`).  In gateway mode a store may give, instead of a
record, the error that stops its instance (PACS unreachable, retrieval failed), reported at
step 4; and records of instances still on their way from the PACS (``available`` false): their
payload (:func:`~xdsi.transactions.produce.arriving`) waits for the instance while the response
streams and is then planned and produced as above; its size is unknown beforehand (step 7
counts only known sizes), and a failure then aborts the response as any failing payload does
(never a silently short document).
"""

from __future__ import annotations

import logging

from xdsi.config import Settings
from xdsi.errors import ResourceLimit, XdsiError
from xdsi.model import Outcome, RetrievedDocument, RetrieveImagingDocumentSetRequest
from xdsi.store.base import InstanceRecord, Store
from xdsi.transactions import produce
from xdsi.transactions.produce import Planned
from xdsi.transactions.resolve import echoed, located, records_for, resolve, too_many
from xdsi.uids import is_valid_uid

log = logging.getLogger(__name__)


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
    resolved: list[InstanceRecord | XdsiError] = []
    for doc in request.documents:
        try:
            resolved.append(resolve(doc, records, settings, ts_problem))
        except XdsiError as exc:
            resolved.append(exc)
    found = [r for r in resolved if isinstance(r, InstanceRecord) and r.available]
    plans = iter(produce.plan(found, request.transfer_syntax_uids, settings))
    answers: list[Planned | InstanceRecord | XdsiError] = [
        next(plans) if isinstance(r, InstanceRecord) and r.available else r for r in resolved
    ]
    _apply_size_limit(answers, settings)
    accepted = [a for a in answers if isinstance(a, Planned)]
    products = iter(produce.produce(accepted, store, settings))
    for doc, answer in zip(request.documents, answers, strict=True):
        if isinstance(answer, InstanceRecord):  # gateway mode: still on its way
            payload = produce.arriving(answer, request.transfer_syntax_uids, store, settings)
            outcome.documents.append(RetrievedDocument(echoed(doc, settings), payload, None))
            continue
        result = next(products) if isinstance(answer, Planned) else answer
        if isinstance(result, XdsiError):
            outcome.errors.append(located(result, doc))
        else:
            outcome.documents.append(
                RetrievedDocument(echoed(doc, settings), result.payload, result.transfer_syntax_uid)
            )
    return outcome


def _apply_size_limit(
    answers: list[Planned | InstanceRecord | XdsiError], settings: Settings
) -> None:
    """Replace, in place, the documents beyond ``max_response_bytes`` by ``0005`` errors."""
    budget = settings.max_response_bytes
    for index, answer in enumerate(answers):
        if not isinstance(answer, Planned):
            continue
        if answer.charge > budget:
            what = "document" if answer.unchanged else "transcoded document of up to"
            answers[index] = ResourceLimit(
                f"{what} {answer.charge} bytes exceeds the remaining response size "
                f"limit ({budget} of {settings.max_response_bytes} bytes)"
            )
        else:
            budget -= answer.charge


def _transfer_syntax_problem(uids: tuple[str, ...]) -> str | None:
    if not uids:
        return "TransferSyntaxUIDList is empty; at least one TransferSyntaxUID is required"
    bad = [u for u in uids if not is_valid_uid(u)]
    if bad:
        return f"TransferSyntaxUID is not a valid UID: {bad[0]!r}"
    return None


__all__ = ["retrieve_imaging_document_set"]
