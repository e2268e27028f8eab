"""The gateway's DIMSE client: C-FIND, C-GET and C-MOVE as SCU, Study Root (PS3.4 Annex C).

* :func:`find` — C-FIND at IMAGE level (PS3.4 C.4.1) with the keys an
  :class:`~xdsi.store.base.InstanceRecord` needs;
* :func:`get` — C-GET (PS3.4 C.4.3): the instances come back as C-STORE sub-operations on the
  same association, handled by the caller's ``EVT_C_STORE`` handler.  One presentation context
  per SOP Class × transfer syntax, because archives send the stored syntax and refuse (or fail)
  to transcode (``../shared/docs/libraries.md`` §6: Orthanc 1.10 fails a J2K instance offered
  only uncompressed contexts);
* :func:`move` — C-MOVE (PS3.4 C.4.2) to our own storage SCP.

Every failure to talk to the PACS becomes :class:`~xdsi.errors.PacsUnavailable` naming the PACS
and what happened; nothing here waits longer than the association/DIMSE timeouts or the caller's
deadline (the association is aborted then).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final

from pydicom.dataset import Dataset
from pynetdicom import AE, build_role, evt
from pynetdicom.association import Association
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

from xdsi.config import Settings
from xdsi.errors import PacsUnavailable
from xdsi.intake.scp import ACCEPTED_TRANSFER_SYNTAXES, MAX_PDU_SIZE

log = logging.getLogger(__name__)

MAX_CONTEXTS: Final = 128
"""Presentation contexts one association may propose (PS3.8 §9.3.2.2; odd IDs 1..255)."""
MAX_SOP_CLASSES_PER_GET: Final = (MAX_CONTEXTS - 1) // len(ACCEPTED_TRANSFER_SYNTAXES)
"""SOP classes one C-GET association can carry with a context per transfer syntax (7 of 16)."""

STATUS_SUCCESS: Final = 0x0000
STATUS_WARNING: Final = 0xB000
PENDING: Final = frozenset({0xFF00, 0xFF01})


@dataclass(frozen=True)
class Pacs:
    """Where the PACS is and how long we wait for it (from :class:`~xdsi.config.Settings`)."""

    ae_title: str
    host: str
    port: int
    calling_ae: str
    association_timeout: float
    dimse_timeout: float

    @classmethod
    def from_settings(cls, settings: Settings) -> Pacs:
        return cls(
            settings.pacs_ae_title,
            settings.pacs_host,
            settings.pacs_port,
            settings.pacs_calling_ae,
            settings.pacs_association_timeout,
            settings.pacs_dimse_timeout,
        )

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


@dataclass(frozen=True)
class Found:
    """One C-FIND match at IMAGE level (PS3.4 Table C.6-5 keys)."""

    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    patient_id: str = ""
    patient_name: str = ""
    modality: str = ""
    series_number: int | None = None
    instance_number: int | None = None
    number_of_frames: int = 1


@dataclass
class RetrieveResult:
    """What the final C-GET/C-MOVE response said (PS3.4 C.4.2.1.4, C.4.3.1.4)."""

    status: int | None = None
    """Final status; ``None`` when the association ended without one."""
    completed: int = 0
    failed: int = 0
    warning: int = 0
    failed_uids: set[str] = field(default_factory=set)
    """Failed SOP Instance UID List (0008,0058), when the PACS gives it."""
    problem: str = ""
    """Why the retrieval ended early (association lost, timeout), empty otherwise."""


def _ae(pacs: Pacs) -> AE:
    ae = AE(ae_title=pacs.calling_ae)
    ae.acse_timeout = pacs.association_timeout
    ae.connection_timeout = pacs.association_timeout
    ae.dimse_timeout = pacs.dimse_timeout
    ae.network_timeout = pacs.dimse_timeout
    ae.maximum_pdu_size = MAX_PDU_SIZE
    return ae


@contextmanager
def association(
    pacs: Pacs, ae: AE, deadline: float | None = None, **kwargs: Any
) -> Iterator[Association]:
    """An established association to ``pacs``, released (or aborted) on exit.

    Raises :class:`PacsUnavailable` if it cannot be had.  Past ``deadline`` (``time.monotonic``)
    a watchdog aborts it, so that a PACS trickling answers cannot hold us longer.
    """
    assoc = ae.associate(pacs.host, pacs.port, ae_title=pacs.ae_title, **kwargs)
    if not assoc.is_established:
        if assoc.is_rejected:
            raise PacsUnavailable(
                f"PACS {pacs} rejected the association from calling AE {pacs.calling_ae} "
                "(wrong AE title, or we are not allowed)"
            )
        # pynetdicom reports a refused or timed-out connection as an abort too.
        raise PacsUnavailable(
            f"PACS {pacs} cannot be reached: no association (connection refused, aborted, or "
            f"no answer within {pacs.association_timeout:g} s)"
        )
    watchdog: threading.Timer | None = None
    if deadline is not None:
        watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), assoc.abort)
        watchdog.daemon = True
        watchdog.start()
    try:
        yield assoc
    finally:
        if watchdog is not None:
            watchdog.cancel()
        if assoc.is_established:
            assoc.release()


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    return "" if value is None else str(value)


def _int(ds: Dataset, keyword: str) -> int | None:
    try:
        value = ds.get(keyword)
        return None if value in (None, "") else int(value)
    except (TypeError, ValueError):
        return None


def _found(ds: Dataset) -> Found | None:
    sop = _text(ds, "SOPInstanceUID")
    if not sop:
        return None
    return Found(
        _text(ds, "StudyInstanceUID"),
        _text(ds, "SeriesInstanceUID"),
        sop,
        _text(ds, "SOPClassUID"),
        _text(ds, "PatientID"),
        _text(ds, "PatientName"),
        _text(ds, "Modality"),
        _int(ds, "SeriesNumber"),
        _int(ds, "InstanceNumber"),
        _int(ds, "NumberOfFrames") or 1,
    )


def find(
    pacs: Pacs,
    study: str,
    series: str = "",
    sop_instances: Sequence[str] = (),
    deadline: float | None = None,
    *,
    sop_class: bool = True,
) -> list[Found]:
    """C-FIND the instances of ``study``/``series`` (Study Root, IMAGE level).

    An empty ``series`` with ``study`` set, or an empty ``study`` with ``sop_instances``, is a
    relational query (PS3.4 C.4.1.2.2.2), which some archives refuse; give both for a
    hierarchical one.  ``sop_instances`` uses list-of-UID matching (PS3.4 C.2.2.2.2).

    ``sop_class`` false leaves SOP Class UID out of the return keys: only C-GET needs it (for
    its presentation contexts), and archives may have to read every file to answer it (Orthanc
    1.10 does: 1.5 ms per instance, most of the time of an IMAGE-level C-FIND).
    """
    query = Dataset()
    query.QueryRetrieveLevel = "IMAGE"
    query.StudyInstanceUID = study
    query.SeriesInstanceUID = series
    query.SOPInstanceUID = "\\".join(sop_instances)
    keywords = ("SOPClassUID",) if sop_class else ()
    for keyword in (*keywords, "PatientID", "PatientName", "Modality"):
        setattr(query, keyword, "")
    for keyword in ("SeriesNumber", "InstanceNumber", "NumberOfFrames"):
        setattr(query, keyword, None)
    ae = _ae(pacs)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    matches: list[Found] = []
    with association(pacs, ae, deadline) as assoc:
        responses = assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind)
        for status, identifier in responses:
            code = status.get("Status") if status else None
            if code is None:
                raise PacsUnavailable(
                    f"PACS {pacs} stopped answering the C-FIND (association lost or no "
                    f"response within {pacs.dimse_timeout:g} s)"
                )
            if code in PENDING:
                found = _found(identifier) if identifier is not None else None
                if found is not None:
                    matches.append(found)
            elif code != STATUS_SUCCESS:
                raise PacsUnavailable(f"PACS {pacs} refused the C-FIND (status 0x{code:04X})")
    return matches


Responses = Iterator[tuple[Dataset, Dataset | None]]


def _retrieve_keys(level: str, study: str, series: str, sop_instance: str = "") -> Dataset:
    keys = Dataset()
    keys.QueryRetrieveLevel = level
    keys.StudyInstanceUID = study
    if level in ("SERIES", "IMAGE"):
        keys.SeriesInstanceUID = series
    if level == "IMAGE":
        keys.SOPInstanceUID = sop_instance
    return keys


def _collect(pacs: Pacs, what: str, responses: Responses, result: RetrieveResult) -> None:
    """Read C-GET/C-MOVE responses into ``result`` until the final one (or the end)."""
    for status, identifier in responses:
        code = status.get("Status") if status else None
        if code is None:
            result.problem = (
                f"PACS {pacs} stopped answering the {what} (association lost or no response "
                f"within {pacs.dimse_timeout:g} s)"
            )
            return
        result.completed = int(status.get("NumberOfCompletedSuboperations") or 0)
        result.failed = int(status.get("NumberOfFailedSuboperations") or 0)
        result.warning = int(status.get("NumberOfWarningSuboperations") or 0)
        if code in PENDING:
            continue
        result.status = int(code)
        failed = identifier.get("FailedSOPInstanceUIDList") if identifier is not None else None
        if failed:
            values = [failed] if isinstance(failed, str) else list(failed)
            result.failed_uids.update(str(v) for v in values)
        return
    if result.status is None and not result.problem:
        result.problem = f"PACS {pacs} ended the {what} without a final response"


def _run_all(
    pacs: Pacs, what: str, requests: Sequence[Dataset], send: Callable[[Dataset], Responses]
) -> RetrieveResult:
    """Send each retrieve request in turn; sum the results; stop at the first early end."""
    total = RetrieveResult()
    for keys in requests:
        one = RetrieveResult()
        _collect(pacs, what, send(keys), one)
        total.completed += one.completed
        total.failed += one.failed
        total.warning += one.warning
        total.failed_uids |= one.failed_uids
        if total.status in (None, STATUS_SUCCESS):
            total.status = one.status
        if one.problem:
            total.problem = one.problem
            break
    return total


def get(
    pacs: Pacs,
    sop_classes: Sequence[str],
    requests: Sequence[Dataset],
    store_handler: Any,
    deadline: float,
) -> RetrieveResult:
    """Run the C-GETs ``requests`` on one association; the handler receives the C-STOREs.

    ``sop_classes`` (up to :data:`MAX_SOP_CLASSES_PER_GET` with every syntax, more with fewer)
    are proposed with one context per transfer syntax we can store, with the SCP role for
    C-STORE (PS3.4 C.4.3, role selection PS3.7 D.3.3.4).  Results of all requests are summed;
    the first early end stops.
    """
    if not 0 < len(sop_classes) < MAX_CONTEXTS:
        raise ValueError(f"1 to {MAX_CONTEXTS - 1} SOP classes per C-GET association")
    ae = _ae(pacs)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    # Beyond MAX_SOP_CLASSES_PER_GET classes, each gets the first (most common) syntaxes only.
    per_class = min(len(ACCEPTED_TRANSFER_SYNTAXES), (MAX_CONTEXTS - 1) // len(sop_classes))
    roles = []
    for sop_class in sop_classes:
        for ts in ACCEPTED_TRANSFER_SYNTAXES[:per_class]:
            ae.add_requested_context(sop_class, ts)
        roles.append(build_role(sop_class, scp_role=True))
    with association(
        pacs, ae, deadline, ext_neg=roles, evt_handlers=[(evt.EVT_C_STORE, store_handler)]
    ) as assoc:
        return _run_all(
            pacs,
            "C-GET",
            requests,
            lambda keys: assoc.send_c_get(keys, StudyRootQueryRetrieveInformationModelGet),
        )


def move(
    pacs: Pacs, destination: str, requests: Sequence[Dataset], deadline: float
) -> RetrieveResult:
    """Run the C-MOVEs ``requests`` to ``destination`` (our storage SCP) on one association."""
    ae = _ae(pacs)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
    with association(pacs, ae, deadline) as assoc:
        return _run_all(
            pacs,
            "C-MOVE",
            requests,
            lambda keys: assoc.send_c_move(
                keys, destination, StudyRootQueryRetrieveInformationModelMove
            ),
        )


def image_keys(study: str, series: str, sop_instance: str) -> Dataset:
    """Identifier of one instance for C-GET/C-MOVE (PS3.4 C.4.2.1.4.1, hierarchical)."""
    return _retrieve_keys("IMAGE", study, series, sop_instance)


def series_keys(study: str, series: str) -> Dataset:
    """Identifier of one whole series for C-GET/C-MOVE."""
    return _retrieve_keys("SERIES", study, series)


__all__ = [
    "MAX_SOP_CLASSES_PER_GET",
    "Found",
    "Pacs",
    "RetrieveResult",
    "find",
    "get",
    "image_keys",
    "move",
    "series_keys",
]
