"""Transcoding in worker processes while a response streams (RAD-69, PS3.18 2017b §6.4.1.2).

A RAD-69 response carries its documents in request order (one MIME part each, after the SOAP
envelope; standards.md §2.2).  Transcoding 400 CT slices one after another takes 8–25 s on one
core, so the documents of a response are transcoded by a pool of worker processes while the
earlier ones are being written, in order, and never more than a few ahead of the writer.

Why processes, not threads (measured on the 2-core project machine, docs/performance.md):
pyjpegls holds the GIL while it encodes (two threads: 1.06× one thread), and two threads encoding
JPEG 2000 at once through pylibjpeg-openjpeg crashed the interpreter (segmentation fault).  Worker
processes use the ``spawn`` start method: the server is multithreaded, and a ``fork`` would copy
locks held by other threads into the child.

Pieces:

* :class:`WorkerPool` — the executor: started on first use (or by :meth:`WorkerPool.warm`),
  shared by every request of the process (:func:`shared_pool`), replaced when a worker died.
  The Retrieve Rendered transaction renders multi-document requests in the same workers
  (:mod:`xdsi.transactions.rendered`).
  ``workers = 0`` runs every job in the calling thread instead.
* :func:`preflight_many` — :func:`~xdsi.imaging.transcode.preflight` of many stored files, in
  batches spread over the workers, results in input order.
* :class:`TranscodeStream` — one response's transcodes: submitted in order, at most ``window``
  of them submitted and not yet streamed (results above :data:`SPOOL_IN_MEMORY_BYTES` are
  written to a temporary file by the worker), released as soon as they are streamed; cancelled
  (temporary files removed) when the response is abandoned.

Workers read the stored file by path (:attr:`xdsi.store.base.InstanceRecord.path`) and send the
result back through the pool's pipe; nothing but paths, syntax UIDs and results crosses it.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import tempfile
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import CancelledError, Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

from xdsi.errors import ProcessingFailure, XdsiError

if TYPE_CHECKING:
    from xdsi.imaging.transcode import Plan

# xdsi.imaging.transcode (pydicom, numpy, the codec plugins: ~55 MB) is imported by the functions
# that run it, in the worker processes or when a request needs it, never by importing this module:
# the serving process stays small while documents are sent in their stored syntax.

log = logging.getLogger(__name__)

T = TypeVar("T")

SPOOL_IN_MEMORY_BYTES: Final = 64 * 1024
"""Results larger than this are written to a temporary file by the worker, not sent through the
pool's pipe: the server then reads them as it reads stored files, in 1 MiB chunks, and its memory
stays flat (hundreds of 100–500 kB results received as ``bytes`` grew it by about 50 MB)."""

PREFLIGHT_BATCHES_PER_WORKER: Final = 4
MAX_PREFLIGHT_BATCH: Final = 64

_PLUGIN_MODULES: Final = ("openjpeg", "jpeg_ls", "libjpeg", "rle", "PIL.Image", "gdcm")
"""Codec modules a worker imports when it starts, so the first document does not pay for it."""


# --- in the worker ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Produced:
    """One transcoded Part 10 object: in memory, or in a temporary file the reader removes."""

    size: int
    data: bytes | None = None
    spool_path: str | None = None

    def iter_chunks(self, chunk_size: int) -> Iterator[bytes]:
        """The bytes in ``chunk_size`` pieces; the temporary file is removed afterwards."""
        try:
            if self.data is not None:
                view = memoryview(self.data)
                for start in range(0, len(view), chunk_size):
                    yield bytes(view[start : start + chunk_size])
            elif self.spool_path is not None:
                with open(self.spool_path, "rb") as fh:
                    while chunk := fh.read(chunk_size):
                        yield chunk
        finally:
            self.discard()

    def discard(self) -> None:
        """Remove the temporary file, if any (idempotent)."""
        if self.spool_path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.spool_path)


def transcode_job(path: str, target: str, spool_over: int = SPOOL_IN_MEMORY_BYTES) -> Produced:
    """Worker side of one document: :func:`~xdsi.imaging.transcode.transcode` of a stored file."""
    from xdsi.imaging.transcode import transcode

    data = transcode(Path(path), target)
    if len(data) <= spool_over:
        return Produced(len(data), data=data)
    fd, name = tempfile.mkstemp(prefix="xdsi-transcoded-", suffix=".dcm")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
        raise
    return Produced(len(data), spool_path=name)


def preflight_job(paths: Sequence[str], requested: Sequence[str]) -> list[Plan | XdsiError]:
    """Worker side of :func:`preflight_many`: one batch, a plan or the error for each file."""
    from xdsi.imaging.transcode import preflight

    plans: list[Plan | XdsiError] = []
    for path in paths:
        try:
            plans.append(preflight(Path(path), requested))
        except XdsiError as exc:
            plans.append(exc)
        except OSError as exc:
            plans.append(ProcessingFailure(f"the stored file cannot be read: {exc}"))
    return plans


def _start_worker() -> None:
    """Pool initializer: import the codec libraries once, and end with the serving process.

    A worker holds both ends of the pool's call queue, so it would wait for work forever once the
    server was killed (SIGKILL, OOM killer); a watchdog thread ends it when its parent is gone.
    """
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent.sentinel,), daemon=True).start()
    for name in _PLUGIN_MODULES:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


def _exit_with(sentinel: int) -> None:
    multiprocessing.connection.wait([sentinel])
    os._exit(0)


def _ready() -> int:
    return os.getpid()


# --- the pool -----------------------------------------------------------------------------------


class _InlineExecutor(Executor):
    """Runs each job at once in the submitting thread (``transcode_workers = 0``)."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:
            future.set_exception(exc)
        return future


class WorkerPool:
    """The executor for the CPU work of one process (transcoding, rendering): ``workers``
    spawned processes, or inline."""

    def __init__(self, workers: int) -> None:
        if workers < 0:
            raise ValueError("workers must not be negative")
        self.workers = workers
        self._lock = threading.Lock()
        self._executor: Executor | None = None

    def _current(self) -> Executor:
        with self._lock:
            if self._executor is None:
                if self.workers == 0:
                    self._executor = _InlineExecutor()
                else:
                    self._executor = ProcessPoolExecutor(
                        self.workers,
                        mp_context=multiprocessing.get_context("spawn"),
                        initializer=_start_worker,
                    )
            return self._executor

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Submit ``fn(*args)``; a pool broken by a dead worker is replaced once."""
        executor = self._current()
        try:
            return executor.submit(fn, *args)
        except BrokenProcessPool:
            log.warning("a worker process died; starting a new pool")
            with self._lock:
                if self._executor is executor:
                    self._executor = None
            executor.shutdown(wait=False, cancel_futures=True)
            return self._current().submit(fn, *args)

    def warm(self) -> None:
        """Start every worker now and wait until each has imported the codecs."""
        futures = [self.submit(_ready) for _ in range(self.workers)]
        for future in futures:
            future.result()

    def shutdown(self) -> None:
        """Stop the workers (pending jobs are cancelled); a later submit starts new ones."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)


_POOLS: dict[int, WorkerPool] = {}
_POOLS_LOCK = threading.Lock()


def shared_pool(workers: int) -> WorkerPool:
    """The process-wide pool with ``workers`` workers (a resource shared by all requests, like a
    connection pool; not configuration: the worker count comes from the caller's Settings)."""
    with _POOLS_LOCK:
        pool = _POOLS.get(workers)
        if pool is None:
            pool = _POOLS[workers] = WorkerPool(workers)
        return pool


@atexit.register
def _shutdown_pools() -> None:
    with _POOLS_LOCK:
        pools = list(_POOLS.values())
    for pool in pools:
        pool.shutdown()


def _failure(exc: BaseException) -> XdsiError:
    """A job's exception as the document's error (``urn:dicom:wado:0014`` unless it is one)."""
    if isinstance(exc, XdsiError):
        return exc
    if isinstance(exc, CancelledError):
        return ProcessingFailure("transcoding was cancelled")
    if isinstance(exc, BrokenProcessPool):
        return ProcessingFailure("the transcoding process ended unexpectedly")
    return ProcessingFailure(f"transcoding failed: {type(exc).__name__}: {exc}")


# --- many preflights ----------------------------------------------------------------------------


def preflight_many(
    pool: WorkerPool, paths: Sequence[Path], requested: Sequence[str]
) -> list[Plan | XdsiError]:
    """:func:`~xdsi.imaging.transcode.preflight` of each path, in batches over the workers.

    The result is in the order of ``paths``: a :class:`~xdsi.imaging.transcode.Plan`, or the
    error that document is to be answered with.
    """
    if not paths:
        return []
    batches = max(pool.workers, 1) * PREFLIGHT_BATCHES_PER_WORKER
    size = min(max(-(-len(paths) // batches), 1), MAX_PREFLIGHT_BATCH)
    names = [str(p) for p in paths]
    futures = [
        pool.submit(preflight_job, names[start : start + size], tuple(requested))
        for start in range(0, len(names), size)
    ]
    plans: list[Plan | XdsiError] = []
    for start, future in zip(range(0, len(names), size), futures, strict=True):
        try:
            plans.extend(future.result())
        except Exception as exc:
            log.exception("a preflight batch failed")
            count = len(names[start : start + size])
            plans.extend(_failure(exc) for _ in range(count))
    return plans


# --- one response's transcodes ------------------------------------------------------------------


def _discard(future: Future[Produced]) -> None:
    """Drop a job's result: cancel it if it has not started, else remove its file when done."""
    if future.cancel():
        return

    def remove(done: Future[Produced]) -> None:
        if not done.cancelled() and done.exception() is None:
            done.result().discard()

    future.add_done_callback(remove)


def _discard_all(futures: list[Future[Produced] | None]) -> None:
    for index, future in enumerate(futures):
        if future is not None:
            futures[index] = None
            _discard(future)


class TranscodeStream:
    """The transcoded documents of one response, produced in order by ``pool``.

    ``jobs`` are (stored file, target syntax) pairs.  At most ``window`` jobs are submitted and
    not yet streamed at any time; creating the stream submits the first ``window``.  Iterate
    document ``i`` with :meth:`chunks` (any order works; in order is what keeps the window
    moving).  A stream that is closed, or garbage-collected, before every document was streamed
    cancels the jobs not yet started and removes the temporary files of the others.
    """

    def __init__(
        self,
        pool: WorkerPool,
        jobs: Sequence[tuple[Path, str]],
        window: int,
        *,
        spool_over: int = SPOOL_IN_MEMORY_BYTES,
    ) -> None:
        if window < 1:
            raise ValueError("window must be at least 1")
        self._pool = pool
        self._spool_over = spool_over
        self._jobs = list(jobs)
        self._window = window
        self._futures: list[Future[Produced] | None] = [None] * len(self._jobs)
        self._submitted = 0
        self._closed = False
        self._lock = threading.Lock()
        self._finalizer = weakref.finalize(self, _discard_all, self._futures)
        self._advance(0)

    def __len__(self) -> int:
        return len(self._jobs)

    @property
    def submitted(self) -> int:
        """How many jobs have been handed to the pool so far."""
        return self._submitted

    def _advance(self, consumer: int) -> None:
        """Submit jobs up to ``consumer + window`` (exclusive)."""
        with self._lock:
            if self._closed:
                raise ProcessingFailure("the response was abandoned")
            limit = min(len(self._jobs), consumer + self._window)
            while self._submitted < limit:
                path, target = self._jobs[self._submitted]
                future = self._pool.submit(transcode_job, str(path), target, self._spool_over)
                self._futures[self._submitted] = future
                self._submitted += 1

    def result(self, index: int) -> Produced:
        """Wait for document ``index`` (submitting it if needed).

        Raises
        ------
        XdsiError
            The document cannot be produced (:class:`~xdsi.errors.ProcessingFailure` for a
            failure outside :mod:`xdsi.imaging.transcode`, e.g. a worker that died).
        """
        self._advance(index - self._window + 1)
        future = self._futures[index]
        if future is None:
            raise ProcessingFailure("the document was already streamed or the stream was closed")
        try:
            return future.result()
        except Exception as exc:
            raise _failure(exc) from exc

    def chunks(self, index: int, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """Document ``index``'s bytes, once; its result is released as it is streamed."""
        produced: Produced | None = None
        streamed = False
        try:
            produced = self.result(index)
            with self._lock:
                self._futures[index] = None
            self._advance(index + 1)
            yield from produced.iter_chunks(chunk_size)
            streamed = True
        finally:
            if produced is not None:
                produced.discard()
            if not streamed:
                self.close()

    def close(self) -> None:
        """Cancel what has not started and drop what was not streamed (idempotent)."""
        with self._lock:
            self._closed = True
            self._finalizer()


__all__ = [
    "SPOOL_IN_MEMORY_BYTES",
    "Produced",
    "TranscodeStream",
    "WorkerPool",
    "preflight_job",
    "preflight_many",
    "shared_pool",
    "transcode_job",
]
