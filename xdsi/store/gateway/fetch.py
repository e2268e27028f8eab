"""Fetching instances from the PACS into the cache: one fetch, many waiters.

:meth:`Fetcher.fetch` gives a :class:`Ticket` per requested instance.  An instance already being
fetched gets the existing ticket (so concurrent requests for one study cause one retrieval);
the others are grouped by series into jobs, each one association (C-GET, or C-MOVE to our
storage SCP), run on a pool of at most ``pacs_max_associations`` threads.  A ticket is resolved
when its instance lands in the cache and failed, with the :class:`~xdsi.errors.XdsiError` to
report, when the job ends without it.  Failures are remembered for the overall timeout, so
a waiter that comes late learns the reason instead of starting a new retrieval.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom.events import Event

from xdsi.config import Settings
from xdsi.errors import OutOfResources, PacsUnavailable, RemoteRetrieveFailed, XdsiError
from xdsi.intake.scp import handle_store
from xdsi.store.base import InstanceRecord
from xdsi.store.gateway import dimse
from xdsi.store.gateway.cache import InstanceCache
from xdsi.store.gateway.sopclasses import likely_sop_classes

log = logging.getLogger(__name__)

MAX_REMEMBERED_FAILURES = 10_000
"""Failed retrievals remembered (each for the overall timeout) before expired ones are dropped."""
MAX_UIDS_PER_REQUEST = 500
"""UIDs listed in one IMAGE-level request: 500 × 65 bytes stays below the 64 KiB value length."""


class Ticket:
    """The promise of one instance: resolved with its cached record or failed with an error."""

    def __init__(self, sop_instance_uid: str) -> None:
        self.sop_instance_uid = sop_instance_uid
        self._done = threading.Event()
        self.record: InstanceRecord | None = None
        self.error: XdsiError | None = None

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def resolve(self, record: InstanceRecord) -> None:
        if not self._done.is_set():
            self.record = record
            self._done.set()

    def fail(self, error: XdsiError) -> None:
        if not self._done.is_set():
            self.error = error
            self._done.set()

    def wait(self, deadline: float) -> InstanceRecord:
        """The record, waiting until ``deadline`` (``time.monotonic``); raises the failure."""
        if not self._done.wait(max(0.0, deadline - time.monotonic())):
            raise PacsUnavailable(
                f"instance {self.sop_instance_uid} did not arrive from the PACS in time"
            )
        if self.error is not None:
            raise self.error
        assert self.record is not None
        return self.record


@dataclass(frozen=True)
class _Job:
    """One association's worth of work: instances of one series, a few SOP classes."""

    study: str
    series: str
    instances: tuple[dimse.Found, ...]
    whole_series: bool


class Fetcher:
    """Runs retrievals from the PACS into ``cache``; see the module docstring."""

    def __init__(self, settings: Settings, cache: InstanceCache) -> None:
        self.pacs = dimse.Pacs.from_settings(settings)
        self.cache = cache
        self.method = settings.pacs_retrieve
        self.destination = settings.pacs_move_destination or settings.ae_title
        self.overall_timeout = settings.pacs_overall_timeout
        self.in_order = settings.pacs_stream
        """Fetch in the order asked (IMAGE level), so a streamed response can start at once:
        archives send a series in their own order (Orthanc: newest first)."""
        self.lanes = settings.pacs_max_associations
        self._pool = ThreadPoolExecutor(
            settings.pacs_max_associations, thread_name_prefix="xdsi-pacs"
        )
        self._lock = threading.Lock()
        self._tickets: dict[str, Ticket] = {}
        self._failed: dict[str, tuple[XdsiError, float]] = {}
        self._unclaimed: set[str] = set()
        """Instances pinned for the waiters of their ticket whose pin no reader has taken over.
        The pin is taken when the ticket is made, before the instance arrives: an arrival
        pinned only after it landed could be evicted by the next arrival in between."""
        cache.listeners.append(self._arrived)

    # --- tickets --------------------------------------------------------------------------------

    def ticket(self, sop_instance_uid: str) -> Ticket | None:
        """The ticket of an instance being fetched, or a failed one of a recent fetch."""
        with self._lock:
            ticket = self._tickets.get(sop_instance_uid)
            if ticket is None:
                failure = self._failed.get(sop_instance_uid)
                if failure is not None and failure[1] > time.monotonic():
                    ticket = Ticket(sop_instance_uid)
                    ticket.fail(failure[0])
            return ticket

    def fetch(
        self, instances: Sequence[dimse.Found], whole_series: bool = False
    ) -> dict[str, Ticket]:
        """Tickets for ``instances`` (all of one series when ``whole_series``), fetching the
        ones not already on their way.  Instances already cached get resolved tickets."""
        tickets: dict[str, Ticket] = {}
        new: list[dimse.Found] = []
        with self._lock:
            for found in instances:
                uid = found.sop_instance_uid
                ticket = self._tickets.get(uid)
                if ticket is None:
                    ticket = Ticket(uid)
                    self._tickets[uid] = ticket
                    self._failed.pop(uid, None)
                    self._unclaimed.add(uid)
                    new.append(found)
                tickets[uid] = ticket
        for found in new:
            self.cache.pin(found.sop_instance_uid)  # for the waiters, before it can arrive
        # Arrived between the caller's cache lookup and now: no retrieval needed.
        arrived = self.cache.get_many([f.sop_instance_uid for f in new])
        for uid, record in arrived.items():
            self._settle(tickets[uid], record=record)
        pending = [f for f in new if not tickets[f.sop_instance_uid].done]
        if self.in_order:
            jobs = _plan(pending, whole_series=False, lanes=self.lanes)
        else:
            jobs = _plan(pending, whole_series and len(pending) == len(instances), lanes=1)
        for job in jobs:
            self._pool.submit(self._run, job)
        return tickets

    def _settle(
        self, ticket: Ticket, record: InstanceRecord | None = None, error: XdsiError | None = None
    ) -> None:
        with self._lock:
            if self._tickets.get(ticket.sop_instance_uid) is ticket:
                del self._tickets[ticket.sop_instance_uid]
            if error is not None:
                now = time.monotonic()
                if len(self._failed) >= MAX_REMEMBERED_FAILURES:
                    self._failed = {u: f for u, f in self._failed.items() if f[1] > now}
                self._failed[ticket.sop_instance_uid] = (error, now + self.overall_timeout)
        if record is not None:
            ticket.resolve(record)
        elif error is not None:
            if self._claim(ticket.sop_instance_uid):  # nothing arrived to hold
                self.cache.unpin(ticket.sop_instance_uid)
            ticket.fail(error)

    def _arrived(self, record: InstanceRecord) -> None:
        """Cache listener: an instance landed; resolve its ticket (pinned since it was made)."""
        with self._lock:
            ticket = self._tickets.get(record.sop_instance_uid)
        if ticket is not None:
            self.cache.renew_pin(record.sop_instance_uid)  # the reader's time starts now
            self._settle(ticket, record=record)

    def hold(self, sop_instance_uid: str) -> None:
        """Give a waiter one pin of an instance its ticket delivered, which its reader releases
        by reading it (:meth:`InstanceCache.open`): the pin taken on arrival if no one has taken
        it over yet, else a new one.  One owner per pin, so that every pin is released."""
        if not self._claim(sop_instance_uid):
            self.cache.pin(sop_instance_uid)

    def adopt(self, sop_instance_uid: str) -> None:
        """The caller has just pinned a cached instance itself (atomically with the lookup): an
        arrival pin no one took over is dropped, the caller's replaces it."""
        if self._claim(sop_instance_uid):
            self.cache.unpin(sop_instance_uid)

    def _claim(self, sop_instance_uid: str) -> bool:
        with self._lock:
            claimed = sop_instance_uid in self._unclaimed
            self._unclaimed.discard(sop_instance_uid)
        return claimed

    # --- jobs -----------------------------------------------------------------------------------

    def _run(self, job: _Job) -> None:
        uids = [f.sop_instance_uid for f in job.instances]
        deadline = time.monotonic() + self.overall_timeout
        started = time.monotonic()
        result: dimse.RetrieveResult | None = None
        problem: XdsiError | None = None
        try:
            result = self._retrieve(job, deadline)
        except PacsUnavailable as exc:
            problem = exc
        except Exception as exc:  # a bug must not leave waiters hanging until their timeout
            log.exception("gateway: retrieval of %d instance(s) failed", len(uids))
            problem = PacsUnavailable(f"retrieval from PACS {self.pacs} failed: {exc}")
        self.cache.flush()  # the index rows of what arrived, in one transaction
        log.info(
            "gateway: %s of %d instance(s) of series %s in %.2f s: %s",
            self.method,
            len(uids),
            job.series,
            time.monotonic() - started,
            problem or (result and (result.problem or f"status 0x{result.status or 0:04X}")),
        )
        with self._lock:
            left = [self._tickets[u] for u in uids if u in self._tickets]
        for ticket in left:
            if ticket.done:
                continue
            self._settle(ticket, error=problem or self._why_missing(ticket, result))

    def _why_missing(self, ticket: Ticket, result: dimse.RetrieveResult | None) -> XdsiError:
        uid = ticket.sop_instance_uid
        refusal = self.cache.refusal(uid)
        if refusal is not None:
            return OutOfResources(f"instance {uid}: {refusal}")
        if result is not None and result.problem:
            return PacsUnavailable(f"instance {uid} did not arrive: {result.problem}")
        status = f"0x{result.status:04X}" if result and result.status is not None else "none"
        if result is not None and uid in result.failed_uids:
            return RemoteRetrieveFailed(
                f"PACS {self.pacs} reported a failed {self.method} sub-operation for instance "
                f"{uid} (final status {status})"
            )
        return RemoteRetrieveFailed(
            f"PACS {self.pacs} ended the {self.method} (final status {status}, "
            f"{result.failed if result else 0} failed sub-operations) without sending instance "
            f"{uid}"
        )

    def _retrieve(self, job: _Job, deadline: float) -> dimse.RetrieveResult:
        """One SERIES-level request for a whole series, else IMAGE level with a list of UIDs
        (PS3.4 C.2.2.2.2; Orthanc then sends in the order listed), falling back to one request
        per instance when the PACS matched fewer than listed and reported no failure."""
        if job.whole_series:
            return self._send(job, [dimse.series_keys(job.study, job.series)], deadline)
        uids = [f.sop_instance_uid for f in job.instances]
        step = MAX_UIDS_PER_REQUEST
        batches = [uids[i : i + step] for i in range(0, len(uids), step)]
        listed = [dimse.image_keys(job.study, job.series, "\\".join(b)) for b in batches]
        result = self._send(job, listed, deadline)
        if len(uids) == 1 or result.problem or result.failed or result.failed_uids:
            return result
        with self._lock:
            left = [u for u in uids if u in self._tickets and not self._tickets[u].done]
        if not left:
            return result
        log.info(
            "gateway: PACS %s matched %d of %d listed UIDs; asking one by one",
            self.pacs,
            len(uids) - len(left),
            len(uids),
        )
        one_by_one = [dimse.image_keys(job.study, job.series, u) for u in left]
        return self._send(job, one_by_one, deadline)

    def _send(self, job: _Job, requests: list[Dataset], deadline: float) -> dimse.RetrieveResult:
        if self.method == "c-move":
            return dimse.move(self.pacs, self.destination, requests, deadline)
        sop_classes = sorted(
            {c for f in job.instances for c in _classes_of(f)}, key=lambda c: (len(c), c)
        )
        return dimse.get(self.pacs, sop_classes, requests, self._on_store, deadline)

    def _on_store(self, event: Event) -> Any:
        """``EVT_C_STORE`` during a C-GET: the intake SCP's handler, into the cache."""
        return handle_store(event, self.cache)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            left = list(self._tickets.values())
        for ticket in left:
            self._settle(ticket, error=PacsUnavailable("the gateway is shutting down"))


def _classes_of(found: dimse.Found) -> tuple[str, ...]:
    return (found.sop_class_uid,) if found.sop_class_uid else likely_sop_classes(found.modality)


def _plan(instances: Sequence[dimse.Found], whole_series: bool, lanes: int) -> list[_Job]:
    """Jobs for ``instances``: per series and group of at most
    :data:`~xdsi.store.gateway.dimse.MAX_SOP_CLASSES_PER_GET` SOP classes (the 128-context
    limit), each group dealt round-robin into up to ``lanes`` jobs (parallel associations that
    together deliver roughly in the order asked).  A whole series in one group and one lane is
    fetched with one SERIES-level request."""
    by_series: dict[tuple[str, str], list[dimse.Found]] = {}
    for found in instances:
        key = (found.study_instance_uid, found.series_instance_uid)
        by_series.setdefault(key, []).append(found)
    jobs: list[_Job] = []
    for (study, series), members in by_series.items():
        classes = sorted({f.sop_class_uid for f in members})
        groups = [
            classes[i : i + dimse.MAX_SOP_CLASSES_PER_GET]
            for i in range(0, len(classes), dimse.MAX_SOP_CLASSES_PER_GET)
        ]
        whole = whole_series and len(by_series) == 1 and len(groups) == 1
        for group in groups:
            chosen = [f for f in members if f.sop_class_uid in group]
            count = 1 if whole else max(1, min(lanes, len(chosen)))
            for lane in range(count):
                jobs.append(_Job(study, series, tuple(chosen[lane::count]), whole))
    return jobs


__all__ = ["Fetcher", "Ticket"]
