"""The payloads of a RAD-69 response: stored files, or transcoded copies (RAD69-005).

Two steps, so that :mod:`xdsi.transactions.rad69` can apply its size limit in between:

1. :func:`plan` — for each resolved instance, the transfer syntax to send and the bytes it counts
   against ``max_response_bytes``.  An instance whose stored syntax is listed is sent unchanged
   (nothing is read).  The others go through :func:`~xdsi.imaging.transcode.preflight`, in the
   worker pool: parse, choose the syntax (``urn:dicom:wado:0007`` if none), check encapsulated
   frames (``urn:dicom:wado:0014`` if broken).
2. :func:`produce` — the payloads.  Transcoded documents come from one
   :class:`~xdsi.imaging.pipeline.TranscodeStream` per response: the first
   ``transcode_window`` are finished here, before the envelope is written, and their failures
   become RegistryErrors; the rest are transcoded while the response streams.

Error reporting once the envelope is sent (conformance statement, "Transcoding while
streaming"): a document beyond the first window whose transcoding fails although its preflight
passed (a codestream that is well-formed on the outside but cannot be decoded) can no longer get
a RegistryError.  The writer then drops the connection before the closing MIME boundary — the
consumer sees a broken response, never wrong or short bytes — and the failure is remembered, so
that a repeated request reports that document as ``urn:dicom:wado:0014`` up front and gets the
others.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from xdsi import ns
from xdsi.config import Settings
from xdsi.errors import ProcessingFailure, XdsiError
from xdsi.imaging.pipeline import TranscodeStream, preflight_many, shared_pool
from xdsi.lru import LruMemory
from xdsi.model import Payload
from xdsi.store.base import InstanceRecord, Store
from xdsi.transactions.resolve import arrived

if TYPE_CHECKING:
    from xdsi.imaging.transcode import Plan

log = logging.getLogger(__name__)

CHUNK_SIZE = 1 << 20
REMEMBERED_FAILURES = 4096
REMEMBERED_PLANS = 16384


@dataclass(frozen=True)
class Planned:
    """One instance to answer: the syntax it is sent in and its charge against the size limit."""

    record: InstanceRecord
    transfer_syntax_uid: str
    charge: int
    """The stored size when sent unchanged; an upper estimate when transcoded."""

    @property
    def unchanged(self) -> bool:
        return self.transfer_syntax_uid == self.record.transfer_syntax_uid


@dataclass(frozen=True)
class Product:
    """A document ready for the response."""

    payload: Payload
    transfer_syntax_uid: str


_LATE_FAILURES: LruMemory[tuple[str, str], str] = LruMemory(REMEMBERED_FAILURES)
"""(file SHA-256, target syntax) → why transcoding failed after an envelope had been sent."""
_PLANS: LruMemory[tuple[str, tuple[str, ...]], Plan] = LruMemory(REMEMBERED_PLANS)
"""(file SHA-256, requested syntaxes) → the preflight's plan: a repeated request (a consumer
fetching a study again, another consumer with the same list) skips the preflight.  Stored
files never change under their hash, so a plan never goes stale."""


def plan(
    records: Sequence[InstanceRecord], requested: Sequence[str], settings: Settings
) -> list[Planned | XdsiError]:
    """What to send for each record, in order (step 1 of the module docstring)."""
    answers: list[Planned | XdsiError | None] = [None] * len(records)
    to_check: list[int] = []
    for index, record in enumerate(records):
        if record.transfer_syntax_uid in requested:
            answers[index] = Planned(record, record.transfer_syntax_uid, record.size)
        else:
            to_check.append(index)
    listed = tuple(requested)
    results: dict[int, Plan | XdsiError] = {}
    unknown: list[int] = []
    for index in to_check:
        cached = _PLANS.get((records[index].sha256, listed))
        if cached is None:
            unknown.append(index)
        else:
            results[index] = cached
    pool = shared_pool(settings.transcode_workers)
    checked = preflight_many(pool, [records[i].path for i in unknown], listed)
    results.update(zip(unknown, checked, strict=True))
    for index in to_check:
        record, result = records[index], results[index]
        if isinstance(result, XdsiError):
            answers[index] = result
            continue
        _PLANS.put((record.sha256, listed), result)
        reason = _LATE_FAILURES.get((record.sha256, result.target))
        if reason is not None:
            answers[index] = ProcessingFailure(reason)
            continue
        answers[index] = Planned(record, result.target, result.estimated_size)
    return [a for a in answers if a is not None]


def produce(
    planned: Sequence[Planned], store: Store, settings: Settings
) -> list[Product | XdsiError]:
    """The payload of each planned document, in order (step 2 of the module docstring)."""
    transcoded = [p for p in planned if not p.unchanged]
    stream = None
    if transcoded:
        stream = TranscodeStream(
            shared_pool(settings.transcode_workers),
            [(p.record.path, p.transfer_syntax_uid) for p in transcoded],
            settings.transcode_window,
        )
    products: list[Product | XdsiError] = []
    position = 0
    for item in planned:
        if item.unchanged:
            products.append(Product(_stored(item.record, store), item.transfer_syntax_uid))
            continue
        assert stream is not None
        index, position = position, position + 1
        size = None
        if index < settings.transcode_window:
            try:
                size = stream.result(index).size  # finished before the envelope
            except XdsiError as exc:
                products.append(exc)
                continue
        payload = Payload(ns.MEDIA_DICOM, _Streamed(stream, index, item, store), size)
        products.append(Product(payload, item.transfer_syntax_uid))
    return products


def arriving(
    record: InstanceRecord, requested: Sequence[str], store: Store, settings: Settings
) -> Payload:
    """The payload of an instance a remote store is still fetching (gateway mode).

    When the response reaches it, it waits for the instance
    (:func:`~xdsi.transactions.resolve.arrived`), then plans and produces it as any other;
    every failure then aborts the response (the envelope is already sent).
    """

    def chunks() -> Iterator[bytes]:
        (answer,) = plan([arrived(store, record)], requested, settings)
        if isinstance(answer, XdsiError):
            raise answer
        (product,) = produce([answer], store, settings)
        if isinstance(product, XdsiError):
            raise product
        yield from product.payload.chunks()

    return Payload(ns.MEDIA_DICOM, chunks)


def _stored(record: InstanceRecord, store: Store) -> Payload:
    return Payload(ns.MEDIA_DICOM, lambda: store.iter_bytes(record, CHUNK_SIZE), record.size)


@dataclass(frozen=True)
class _Streamed:
    """The :data:`~xdsi.model.ChunkSource` of one transcoded document."""

    stream: TranscodeStream
    index: int
    item: Planned
    store: Store

    def __call__(self) -> Iterator[bytes]:
        try:
            # A worker process reads the stored file by its path; holding it open through the
            # store while the document is sent is what tells a store that tracks its readers
            # (the gateway cache's pins) when the instance is no longer needed.
            with self.store.open(self.item.record):
                yield from self.stream.chunks(self.index, CHUNK_SIZE)
        except XdsiError as exc:
            record = self.item.record
            log.error(
                "transcoding %s to %s failed after the response envelope was sent; the "
                "connection is dropped and the next request reports it: %s",
                record.sop_instance_uid,
                self.item.transfer_syntax_uid,
                exc.context,
            )
            reason = f"{exc.context} (found while streaming an earlier response)"
            _LATE_FAILURES.put((record.sha256, self.item.transfer_syntax_uid), reason)
            raise


__all__ = ["Planned", "Product", "arriving", "plan", "produce"]
