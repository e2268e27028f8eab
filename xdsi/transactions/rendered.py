"""Retrieve Rendered Imaging Document Set (PS3.18 2017b §6.4.2; parameters §8.1/§8.2).

validate → resolve → render → collect errors, one RenderedDocumentRequest at a time.  Each is
answered by a :class:`RenderedDocument` (the rendering and the values actually used, §6.4.2.2) or
by one RegistryError whose ``location`` is the DocumentUniqueId; the status follows
:func:`xdsi.model.status_of`.  Nothing here knows SOAP.

Checks for each document, in this order (the first failing one is reported):

1. RepositoryUniqueId, HomeCommunityId, study/series/document UIDs, stored instance and its
   study/series: exactly as RAD-69 (:func:`xdsi.transactions.resolve.resolve`).
2. Request values (``urn:dicom:wado:0012`` when malformed; ``0013`` for a ``wado:`` element
   this operation does not define, e.g. a TransferSyntaxUIDList).
3. PresentationUID/PresentationSeriesUID: both or neither (``0012``), stored (``0019``), in that
   series (``0020``), a presentation state (``0009``), a grayscale one (``0013``).
4. Media type for the object
   (:func:`~xdsi.transactions.rendered_produce.choose_media_type`): ``0006`` none listed is known,
   ``0007`` none fits this kind of object, ``0008`` a multi-frame object without FrameNumber and
   only single-image types listed.
5. The object's checks in :func:`xdsi.imaging.render.validate_params` (``0018`` frame,
   ``0001`` anonymization, ``0012`` conflicts) and rendering itself (``0014``).
6. Limits: documents per request, Rows/Columns and output pixels, response bytes (``0005``).

Rendering is CPU work; it is done before the response envelope is written so that a failure is
this document's RegistryError (a streamed payload could only break the connection).  The documents
of a request for several are rendered in the worker processes of
:func:`xdsi.imaging.pipeline.shared_pool` (``render_workers``; the pool transcoding uses when the
counts match), in batches, at most :data:`WINDOW` ahead of the one being collected:
parsing a header is pure Python and holds the GIL, so threads rendered no faster than one thread
(bench_rendered: 252 images/s with 1 thread, 232 with 4).  A worker reads the stored files by
path; a request for one document, and in gateway mode every document (the gateway cache counts
reads through :meth:`Store.open`), are rendered in the request's thread.  Each result is spooled
as it is collected, in request order: in memory while the message's in-memory total stays under
:data:`MEMORY_BUDGET`, on disk beyond it.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import IO, Any, Final, Protocol, TypeVar

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import UID

from xdsi import errors
from xdsi.config import Settings
from xdsi.imaging import presentation
from xdsi.imaging.pipeline import shared_pool
from xdsi.imaging.render import (
    RenderParams,
    parse_annotation,
    parse_decimal,
    parse_int,
    parse_region,
)
from xdsi.model import Payload
from xdsi.store.base import InstanceRecord, Store
from xdsi.transactions.rendered_model import (
    RenderedDocument,
    RenderedDocumentRequest,
    RenderedOutcome,
    RetrieveRenderedRequest,
)
from xdsi.transactions.rendered_produce import Produced, RenderJob, produce, render_batch
from xdsi.transactions.resolve import Located, located, records_for, resolve, too_many
from xdsi.uids import is_valid_uid

log = logging.getLogger(__name__)

SPOOL_IN_MEMORY_BYTES: Final = 1 << 20
"""A rendering larger than this goes to a temporary file."""
CHUNK_SIZE: Final = 1 << 20
MEMORY_BUDGET: Final = 64 << 20
"""In-memory renderings of one message together; beyond, every further rendering is on disk."""
WINDOW: Final = 32
"""Documents handed to the worker processes ahead of the one being collected: enough to keep
them busy, few enough that finished renderings wait in memory only briefly."""
BATCHES_PER_WINDOW: Final = 4
ANONYMIZE_YES: Final = frozenset({"yes", "true", "1", ""})
ANONYMIZE_NO: Final = frozenset({"no", "false", "0"})


@dataclass(frozen=True)
class _Job:
    """A document that passed the checks needing no file: the job and the files it reads."""

    render: RenderJob
    record: InstanceRecord
    presentation: InstanceRecord | None

    @property
    def request(self) -> RenderedDocumentRequest:
        return self.render.request


class _Spool:
    """Spooled results of one message, in memory up to :data:`MEMORY_BUDGET` together."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_memory = 0

    def keep(self, data: bytes) -> tuple[Callable[[], Iterator[bytes]], int]:
        size = len(data)
        with self._lock:
            in_memory = size <= SPOOL_IN_MEMORY_BYTES and self._in_memory + size <= MEMORY_BUDGET
            if in_memory:
                self._in_memory += size
        if in_memory:
            return (lambda: iter((data,))), size
        spool: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed by _drain
        spool.write(data)
        return (lambda: _drain(spool)), size


def _drain(spool: IO[bytes]) -> Iterator[bytes]:
    """The spooled bytes in chunks; the file is closed when done (or abandoned)."""
    try:
        spool.seek(0)
        while chunk := spool.read(CHUNK_SIZE):
            yield chunk
    finally:
        spool.close()


T = TypeVar("T")


class Workers(Protocol):
    """Where the documents of a multi-document request are rendered
    (:class:`xdsi.imaging.pipeline.WorkerPool`, or any executor)."""

    def submit(self, fn: Callable[..., T], /, *args: Any) -> Future[T]: ...


def retrieve_rendered_imaging_document_set(
    request: RetrieveRenderedRequest,
    store: Store,
    settings: Settings,
    workers: Workers | None = None,
) -> RenderedOutcome:
    """Answer one Retrieve Rendered request from ``store`` (PS3.18 2017b §6.4.2.2).

    ``workers`` render the documents of a request for several (the answer keeps request order
    whatever the order of completion); without them, and for a single document, they are
    rendered in the calling thread.
    """
    outcome = RenderedOutcome()
    docs = request.documents
    outcome.errors.extend(too_many([d.document for d in docs], settings))
    if outcome.errors:
        return outcome
    # the documents and the presentation states they name, in one index query
    named = [d.document for d in docs]
    named += [dataclasses.replace(d.document, document_unique_id=p)
              for d in docs if (p := d.presentation_uid)]  # fmt: skip
    records = records_for(named, store)
    prepared: list[tuple[RenderedDocumentRequest, _Job | errors.XdsiError]] = []
    for doc in docs:
        try:
            prepared.append((doc, _prepare(doc, records, settings)))
        except errors.XdsiError as exc:
            prepared.append((doc, exc))
    jobs = sum(isinstance(item, _Job) for _, item in prepared)
    pool = workers if jobs > 1 else None  # one image: no hand-over to another process
    spool = _Spool()
    budget = settings.max_response_bytes
    for doc, job, result in _rendered(prepared, store, pool):
        try:
            if isinstance(result, errors.XdsiError):
                raise result
            data, media, used = result
            if len(data) > budget:
                raise errors.ResourceLimit(
                    f"rendering of {len(data)} bytes exceeds the remaining response size limit "
                    f"({budget} of {settings.max_response_bytes} bytes)"
                )
            budget -= len(data)
            assert job is not None
            chunks, size = spool.keep(data)
            del data, result
            payload = Payload(media, chunks, size)
            outcome.documents.append(RenderedDocument(job.request, payload, used))
        except errors.XdsiError as exc:
            outcome.errors.append(located(exc, doc.document))
    return outcome


def rendered_transaction(
    settings: Settings, store: Store
) -> Callable[[RetrieveRenderedRequest], RenderedOutcome]:
    """The transaction bound to ``store``, rendering multi-document requests in the process-wide
    pool of ``settings.render_workers`` worker processes (none: in the request thread).

    In gateway mode (``pacs_ae_title`` set) every document is rendered in the request thread:
    the gateway cache keeps an instance pinned until it is read through :meth:`Store.open`, which
    a worker reading the cached file by path would bypass.
    """
    in_workers = settings.render_workers > 0 and not settings.pacs_ae_title
    pool = shared_pool(settings.render_workers) if in_workers else None

    def transaction(request: RetrieveRenderedRequest) -> RenderedOutcome:
        return retrieve_rendered_imaging_document_set(request, store, settings, pool)

    return transaction


def _rendered(
    prepared: Sequence[tuple[RenderedDocumentRequest, _Job | errors.XdsiError]],
    store: Store,
    pool: Workers | None,
) -> Iterator[tuple[RenderedDocumentRequest, _Job | None, Produced | errors.XdsiError]]:
    """Each document's rendering or error, in request order.

    Jobs go to ``pool`` in batches (:func:`batch_size`), at most :data:`WINDOW` documents ahead
    of the one collected: one task per document cost the serving process more in pickling and
    pipe traffic than a 64x64 thumbnail costs a worker.
    """
    jobs = sum(isinstance(item, _Job) for _, item in prepared)
    size = batch_size(jobs)
    submitted: dict[int, tuple[Future[list[Produced | errors.XdsiError]], int]] = {}
    ahead = 0
    for index, (doc, item) in enumerate(prepared):
        while pool is not None and ahead < min(index + WINDOW, len(prepared)):
            batch: list[int] = []
            while ahead < len(prepared) and len(batch) < size:
                job = prepared[ahead][1]
                if isinstance(job, _Job) and _by_path(job):
                    batch.append(ahead)
                ahead += 1
            if batch:
                future = pool.submit(render_batch, [_files(prepared[i][1]) for i in batch])
                submitted.update((i, (future, position)) for position, i in enumerate(batch))
        if isinstance(item, errors.XdsiError):
            yield doc, None, item
            continue
        entry = submitted.pop(index, None)
        try:
            if entry is not None:
                yield doc, item, _result(entry[0])[entry[1]]
            else:
                (result,) = _result(_run_now(item, store))
                yield doc, item, result
        except errors.XdsiError as exc:
            yield doc, item, exc


def batch_size(jobs: int) -> int:
    """Documents per worker task: about :data:`BATCHES_PER_WINDOW` tasks in each window, so
    that every worker has work, and never more than fit in one window."""
    return max(1, min(WINDOW // BATCHES_PER_WINDOW, jobs // (2 * BATCHES_PER_WINDOW)))


def _files(item: _Job | errors.XdsiError) -> tuple[RenderJob, str, str | None]:
    assert isinstance(item, _Job)
    presentation = None if item.presentation is None else str(item.presentation.path)
    return item.render, str(item.record.path), presentation


def _by_path(job: _Job) -> bool:
    """Whether a worker process can read the job's files by path (not a gateway instance
    still on its way)."""
    return job.record.available and (job.presentation is None or job.presentation.available)


def _run_now(job: _Job, store: Store) -> Future[list[Produced | errors.XdsiError]]:
    presentation = job.presentation
    done: Future[list[Produced | errors.XdsiError]] = Future()
    try:
        done.set_result(
            [
                produce(
                    job.render,
                    functools.partial(_read, store, job.record),
                    None if presentation is None else functools.partial(_read, store, presentation),
                )
            ]
        )
    except Exception as exc:  # kept for _result, exactly as a pool worker would
        done.set_exception(exc)
    return done


def _result(future: Future[T]) -> T:
    try:
        return future.result()
    except errors.XdsiError:
        raise
    except Exception as exc:  # reading the file, a worker that died, an unforeseen failure
        log.exception("rendering failed")
        raise errors.ProcessingFailure(f"cannot render this object: {exc}") from exc


# --- checks needing no file ------------------------------------------------------------------


def _prepare(doc: RenderedDocumentRequest, records: Located, settings: Settings) -> _Job:
    # In gateway mode the record may still be on its way: store.open waits for it.
    record = resolve(doc.document, records, settings)
    if doc.unsupported:
        raise errors.UnsupportedParameter(
            f"{', '.join(doc.unsupported)} is not a parameter of RetrieveRenderedImagingDocumentSet"
        )
    params = _params(doc)
    if not doc.repository_unique_id:  # echoed with ours, as RAD-69 does (PS3.18 §6.4.2.2)
        doc = dataclasses.replace(doc, repository_unique_id=settings.repository_unique_id)
    listed = tuple(_essence(t) for t in doc.content_types if t.strip())
    return _Job(
        render=RenderJob(doc, params, listed, frame_given=doc.frame_number is not None),
        record=record,
        presentation=_presentation_record(doc, records),
    )


def _optional_int(name: str, text: str | None) -> int | None:
    return None if text is None else parse_int(name, text)


def _params(doc: RenderedDocumentRequest) -> RenderParams:
    """The request's values parsed (``0012`` when malformed); the media type is chosen later."""
    center = None if doc.window_center is None else parse_decimal("WindowCenter", doc.window_center)
    width = None if doc.window_width is None else parse_decimal("WindowWidth", doc.window_width)
    if (center is None) != (width is None):
        raise errors.InvalidParameter("WindowCenter and WindowWidth must be given together")
    frame = _optional_int("FrameNumber", doc.frame_number)
    if frame is not None and frame < 1:
        raise errors.FrameOutOfRange(f"FrameNumber must be 1 or more, got {frame}")
    return RenderParams(
        rows=_optional_int("Rows", doc.rows),
        columns=_optional_int("Columns", doc.columns),
        region=None if doc.region is None else parse_region(doc.region),
        window_center=center,
        window_width=width,
        image_quality=_optional_int("ImageQuality", doc.image_quality),
        frame_number=frame,
        annotation=frozenset() if doc.annotation is None else parse_annotation(doc.annotation),
        anonymize=_anonymize(doc.anonymize),
    )


def _anonymize(text: str | None) -> bool:
    """``Anonymize``: "yes" (§8.1.7); ``true``/``1`` (the boolean of ihe-wadows-2017) and an
    empty element are read as yes, ``no``/``false``/``0`` as no."""
    if text is None:
        return False
    value = text.strip().lower()
    if value in ANONYMIZE_YES:
        return True
    if value in ANONYMIZE_NO:
        return False
    raise errors.InvalidParameter(f'Anonymize must be "yes", got {text!r}')


def _presentation_record(doc: RenderedDocumentRequest, records: Located) -> InstanceRecord | None:
    """The stored presentation state the request names (§8.2.9, §8.2.10), or None."""
    uid, series = doc.presentation_uid, doc.presentation_series_uid
    if uid is None and series is None:
        return None
    if uid is None:
        raise errors.InvalidParameter("PresentationSeriesUID is only allowed with PresentationUID")
    if series is None:
        raise errors.InvalidParameter("PresentationUID needs PresentationSeriesUID (§8.2.10)")
    for what, value in (("PresentationUID", uid), ("PresentationSeriesUID", series)):
        if not is_valid_uid(value):
            raise errors.InvalidParameter(f"{what} is not a valid DICOM UID: {value!r}")
    record = records.get(uid)
    if isinstance(record, errors.XdsiError):
        raise record  # gateway mode: found, but the PACS cannot deliver it
    if record is None:
        raise errors.UnknownPresentation(f"presentation state {uid} is not known to this source")
    if record.series_instance_uid != series:
        raise errors.UnknownPresentationSeries(
            f"presentation state {uid} is in series {record.series_instance_uid}, "
            f"not in PresentationSeriesUID {series}"
        )
    if record.sop_class_uid != presentation.GSPS_SOP_CLASS:
        name = UID(record.sop_class_uid).name
        if "Presentation State" not in name:
            raise errors.SopClassMismatch(
                f"PresentationUID {uid} names a {name} instance, not a presentation state"
            )
        raise errors.UnsupportedParameter(
            f"{name} is not supported; only Grayscale Softcopy Presentation States are applied"
        )
    return record


def _essence(media_type: str) -> str:
    return media_type.split(";", 1)[0].strip().lower()


# --- reading in the request thread --------------------------------------------------------------


def _read(store: Store, record: InstanceRecord) -> Dataset:
    with store.open(record) as fh:
        return dcmread(fh)


__all__ = [
    "Workers",
    "rendered_transaction",
    "retrieve_rendered_imaging_document_set",
]
