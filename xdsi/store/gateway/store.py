""":class:`GatewayStore`: a PACS behind the :class:`~xdsi.store.base.Store` protocol.

Gateway mode (issue 7): instances are found by C-FIND (Study Root, IMAGE level) and fetched by
C-GET or C-MOVE into a bounded cache (:mod:`~xdsi.store.gateway.cache`), from which they are
served.  :meth:`GatewayStore.locate` — what RAD-69 calls — asks the PACS for each requested
series, starts fetching what is not cached, and then waits: with ``pacs_stream`` only until the
first requested instance has arrived (the others are given as records with ``available`` false,
their payloads wait for them while the response streams), else until every one has arrived or
failed.  Failures are returned per instance (:class:`~xdsi.errors.PacsUnavailable`,
:class:`~xdsi.errors.RemoteRetrieveFailed`, :class:`~xdsi.errors.OutOfResources`), so the
transaction reports them as RegistryErrors.

Everything else of the protocol (``get``, ``get_many``, ``open``, ``iter_bytes``) waits for the
instance to be in the cache, fetching it when needed, so that transactions written for the local
store work unchanged.  Nothing waits past ``pacs_overall_timeout``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from xdsi.config import Settings
from xdsi.errors import PacsUnavailable, StoreError, XdsiError
from xdsi.intake.scp import StorageSCP
from xdsi.model import DocumentRequest
from xdsi.store.base import InstanceRecord, PutResult
from xdsi.store.gateway import dimse
from xdsi.store.gateway.cache import InstanceCache
from xdsi.store.gateway.fetch import Fetcher, Ticket
from xdsi.store.sqlfile import instance_order, study_order

log = logging.getLogger(__name__)


class GatewayStore:
    """Serve the instances of the PACS named in ``settings`` (``pacs_*`` fields)."""

    def __init__(self, settings: Settings) -> None:
        if not settings.pacs_ae_title:
            raise ValueError("gateway mode needs pacs_ae_title")
        self.settings = settings
        self.pacs = dimse.Pacs.from_settings(settings)
        self.overall_timeout = settings.pacs_overall_timeout
        self.stream = settings.pacs_stream
        self._find_sop_class = settings.pacs_retrieve == "c-get"
        """C-FIND asks for SOP Class UID only for C-GET's presentation contexts."""
        self.cache = InstanceCache(
            settings.effective_pacs_cache_dir, settings.pacs_cache_bytes, self.overall_timeout
        )
        self.fetcher = Fetcher(settings, self.cache)
        self._finders = ThreadPoolExecutor(
            settings.pacs_max_associations, thread_name_prefix="xdsi-pacs-find"
        )
        self._scp: StorageSCP | None = None
        if settings.pacs_retrieve == "c-move":
            destination = settings.pacs_move_destination or settings.ae_title
            scp_settings = dataclasses.replace(settings, ae_title=destination)
            self._scp = StorageSCP(scp_settings, self.cache)
            try:
                self._scp.start()
            except BaseException:
                self.close()
                raise

    @property
    def move_address(self) -> tuple[str, int] | None:
        """Where our C-MOVE destination SCP listens (``None`` with C-GET)."""
        return None if self._scp is None else self._scp.address

    # --- lookups --------------------------------------------------------------------------------

    def _pending(self, found: dimse.Found) -> InstanceRecord:
        """The record of an instance not yet in the cache (``available`` false)."""
        return InstanceRecord(
            sop_instance_uid=found.sop_instance_uid,
            sop_class_uid=found.sop_class_uid,
            transfer_syntax_uid="",
            study_instance_uid=found.study_instance_uid,
            series_instance_uid=found.series_instance_uid,
            patient_id=found.patient_id,
            patient_name=found.patient_name,
            modality=found.modality,
            size=0,
            sha256="",
            path=self.cache.directory / "pending" / found.sop_instance_uid,
            number_of_frames=found.number_of_frames,
            series_number=found.series_number,
            instance_number=found.instance_number,
            available=False,
        )

    def locate(self, documents: Sequence[DocumentRequest]) -> dict[str, InstanceRecord | XdsiError]:
        """See :meth:`xdsi.store.base.Store.locate` and the module docstring."""
        deadline = time.monotonic() + self.overall_timeout
        cached = self.cache.get_many([d.document_unique_id for d in documents], pin=True)
        for uid in cached:
            self.fetcher.adopt(uid)
        answer: dict[str, InstanceRecord | XdsiError] = dict(cached)
        missing: dict[tuple[str, str], list[str]] = {}
        for doc in documents:
            uid = doc.document_unique_id
            if uid not in answer:
                key = (doc.study_instance_uid, doc.series_instance_uid)
                missing.setdefault(key, []).append(uid)
        tickets: dict[str, Ticket] = {}
        # All series are asked for at once (the PACS answers in parallel, and a later C-FIND
        # does not compete with the first series' retrieval); each series is fetched as soon
        # as its answer is in, in the order asked.
        queries = {
            key: self._finders.submit(self._find, *key, deadline=deadline)
            for key in missing
        }
        for (study, series), uids in missing.items():
            wanted = set(uids)
            try:
                in_series = queries[study, series].result()
                found = [f for f in in_series if f.sop_instance_uid in wanted]
                elsewhere = wanted - {f.sop_instance_uid for f in found}
                if elsewhere:  # the requester may name the wrong series: report 0010, not 0017
                    found += self._find_anywhere(sorted(elsewhere), deadline)
            except PacsUnavailable as exc:
                answer.update(dict.fromkeys(uids, exc))
                continue
            position = {uid: i for i, uid in enumerate(uids)}
            found.sort(key=lambda f: position.get(f.sop_instance_uid, len(position)))
            tickets.update(self.fetcher.fetch(found, whole_series=len(found) == len(in_series)))
            for f in found:
                answer[f.sop_instance_uid] = self._pending(f)
        order = [d.document_unique_id for d in documents if d.document_unique_id in tickets]
        for uid in order:
            try:
                answer[uid] = tickets[uid].wait(deadline)
            except XdsiError as exc:
                answer[uid] = exc
                continue
            if self.stream:
                break
        for uid, ticket in tickets.items():
            if ticket.done and not isinstance(answer[uid], XdsiError):
                answer[uid] = ticket.error or ticket.record or answer[uid]
        # The response owns one pin of each instance it was handed complete; an instance still
        # on its way is pinned when its reader gets it (get, below).
        for uid in tickets:
            delivered = answer[uid]
            if isinstance(delivered, InstanceRecord) and delivered.available:
                self.fetcher.hold(uid)
        return answer

    def _find(
        self,
        study: str,
        series: str,
        sop_instances: Sequence[str] = (),
        deadline: float | None = None,
    ) -> list[dimse.Found]:
        return dimse.find(
            self.pacs, study, series, sop_instances, deadline, sop_class=self._find_sop_class
        )

    def _find_anywhere(self, uids: Sequence[str], deadline: float) -> list[dimse.Found]:
        """Relational C-FIND by SOP Instance UID; archives that refuse it find nothing."""
        try:
            return self._find("", "", uids, deadline=deadline)
        except PacsUnavailable as exc:
            log.info("gateway: relational C-FIND refused, taken as not found: %s", exc)
            return []

    def get(self, sop_instance_uid: str) -> InstanceRecord | None:
        """The cached record, waiting for (or starting) its retrieval; ``None`` if the PACS does
        not have it.  Raises the :class:`~xdsi.errors.XdsiError` of a failed retrieval."""
        record = self.cache.get(sop_instance_uid, pin=True)
        if record is not None:
            self.fetcher.adopt(sop_instance_uid)
            return record
        deadline = time.monotonic() + self.overall_timeout
        ticket = self.fetcher.ticket(sop_instance_uid)
        if ticket is None:
            found = self._find_anywhere([sop_instance_uid], deadline)
            if not found:
                return None
            ticket = self.fetcher.fetch(found[:1])[sop_instance_uid]
        record = ticket.wait(deadline)
        self.fetcher.hold(sop_instance_uid)
        return record

    def get_many(self, sop_instance_uids: Sequence[str]) -> dict[str, InstanceRecord]:
        """Cached records of the instances, fetched as needed; failed ones are left out."""
        answer = dict(self.cache.get_many(sop_instance_uids, pin=True))
        for uid in answer:
            self.fetcher.adopt(uid)
        missing = [u for u in dict.fromkeys(sop_instance_uids) if u not in answer]
        if not missing:
            return answer
        deadline = time.monotonic() + self.overall_timeout
        tickets = {u: t for u in missing if (t := self.fetcher.ticket(u)) is not None}
        unknown = [u for u in missing if u not in tickets]
        if unknown:
            tickets.update(self.fetcher.fetch(self._find_anywhere(unknown, deadline)))
        for uid, ticket in tickets.items():
            try:
                answer[uid] = ticket.wait(deadline)
            except XdsiError as exc:
                log.warning("gateway: %s", exc)
                continue
            self.fetcher.hold(uid)
        return answer

    def series(self, study_instance_uid: str, series_instance_uid: str) -> list[InstanceRecord]:
        """Instances of one series as the PACS lists them (not fetched; ``open`` fetches)."""
        return sorted(self._listed(study_instance_uid, series_instance_uid), key=instance_order)

    def study(self, study_instance_uid: str) -> list[InstanceRecord]:
        """Instances of one study (relational C-FIND on the study), as :meth:`series`."""
        return sorted(self._listed(study_instance_uid, ""), key=study_order)

    def _listed(self, study: str, series: str) -> list[InstanceRecord]:
        try:
            found = self._find(study, series)
        except PacsUnavailable as exc:
            raise StoreError(str(exc)) from exc
        cached = self.cache.get_many([f.sop_instance_uid for f in found])
        return [cached.get(f.sop_instance_uid) or self._pending(f) for f in found]

    # --- reading --------------------------------------------------------------------------------

    def _arrived(self, record: InstanceRecord) -> InstanceRecord:
        if record.available:
            return record
        arrived = self.get(record.sop_instance_uid)
        if arrived is None:
            raise StoreError(f"instance {record.sop_instance_uid} is no longer on the PACS")
        return arrived

    @contextlib.contextmanager
    def open(self, record: InstanceRecord) -> Iterator[BinaryIO]:
        """Open the cached file, waiting for the instance to arrive first."""
        with self.cache.open(self._arrived(record)) as fh:
            yield fh

    def iter_bytes(self, record: InstanceRecord, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """Chunks of the cached file, waiting for the instance to arrive first."""
        yield from self.cache.iter_bytes(self._arrived(record), chunk_size)

    def put(self, source: BinaryIO | Path) -> PutResult:
        """Refused: in gateway mode instances are stored in the PACS, not here."""
        raise StoreError("gateway mode: store instances in the PACS, not in xdsi")

    def close(self) -> None:
        if self._scp is not None:
            self._scp.stop(grace=1.0)
        self._finders.shutdown(wait=False, cancel_futures=True)
        self.fetcher.close()
        self.cache.close()

    def __enter__(self) -> GatewayStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"GatewayStore({self.pacs}, {self.settings.pacs_retrieve})"


__all__ = ["GatewayStore"]
