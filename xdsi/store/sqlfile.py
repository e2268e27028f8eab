"""SQL index + file tree: :class:`SqlFileStore`, the default :class:`~xdsi.store.base.Store`.

Files live under ``<data_dir>/files`` (layout and crash-safety in :mod:`xdsi.store.files`); an
SQLAlchemy 2 index (:mod:`xdsi.store.schema`) maps SOP Instance UIDs to them.  The index is
SQLite at ``<data_dir>/index.sqlite`` by default, or any SQLAlchemy URL (PostgreSQL through
psycopg 3 is tested).

Invariants, kept by the order of operations in :meth:`SqlFileStore.put` and in its batched form
(:meth:`SqlFileStore.stage` in many threads, then :meth:`SqlFileStore.commit_staged`):

* an index row only ever names a complete, fsynced file (the row is committed after the link);
* a write killed before its commit leaves only a ``tmp/`` entry, rolled back at the next open;
* a SOP Instance UID has at most one row (unique constraint; concurrent losers re-read and
  report a duplicate or retry their replacement).

One engine per store, sessions per call: a store is safe to share between threads (waitress
and pynetdicom serve with threads).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Final

from sqlalchemy import (
    Engine,
    Select,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from xdsi.config import DuplicatePolicy
from xdsi.errors import StoreError, XdsiError
from xdsi.model import DocumentRequest
from xdsi.store import files
from xdsi.store.base import InstanceRecord, PutResult, PutStatus
from xdsi.store.schema import SCHEMA_VERSION, Base, Instance, SchemaInfo

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS: Final = 30_000
MAX_PUT_ATTEMPTS: Final = 8
"""Rounds of read-decide-write when concurrent writers of one SOP Instance UID keep winning."""
IN_CHUNK: Final = 30_000
"""Most UIDs in one ``IN (...)``: below SQLite's 32766 bound parameters (3.32+)."""


def create_index_engine(url: str) -> Engine:
    """The one engine of a store.  SQLite gets WAL, a busy timeout and ``synchronous=NORMAL``.

    WAL lets readers (retrievals) run while a writer commits; ``synchronous=NORMAL`` in WAL mode
    keeps the index consistent after a crash and may lose the last commits after a power loss
    only, which leaves files without rows: ``xdsi check --repair`` re-indexes those.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, pool_pre_ping=True)
    engine = create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    return engine


def ensure_schema(engine: Engine) -> int:
    """Create the tables on first use and check the recorded schema version.

    Raises :class:`StoreError` for an index written by a newer xdsi (never touch what we do not
    understand) and for an older one (no migration exists yet: version 1 is the first).
    """
    for attempt in range(3):
        try:
            with engine.begin() as conn:
                version: int | None = None
                if inspect(conn).has_table(SchemaInfo.__tablename__):
                    version = conn.scalar(select(SchemaInfo.version).where(SchemaInfo.id == 1))
                if version is not None and version > SCHEMA_VERSION:
                    raise StoreError(
                        f"index schema version {version} is newer than this xdsi supports "
                        f"({SCHEMA_VERSION}); upgrade xdsi"
                    )
                if version is not None and version < SCHEMA_VERSION:
                    raise StoreError(f"index schema version {version} has no migration path")
                Base.metadata.create_all(conn)
                if version is None:
                    conn.execute(insert(SchemaInfo).values(id=1, version=SCHEMA_VERSION))
            return SCHEMA_VERSION
        except (IntegrityError, DBAPIError):
            # Two processes creating the schema at once: the loser sees "already exists".
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


class SqlFileStore:
    """DICOM store: SQLAlchemy index + crash-safe file tree under ``data_dir``.

    Parameters
    ----------
    data_dir:
        Root of ``files/``, ``tmp/``, ``quarantine/`` (created as needed).
    database_url:
        SQLAlchemy URL of the index; empty for SQLite at ``<data_dir>/index.sqlite``.
    duplicate_policy:
        ``keep`` (report :attr:`PutStatus.DUPLICATE`) or ``replace`` an already stored UID.
    recover:
        Roll back writes interrupted by a crash (stale ``tmp/`` entries) now.  ``xdsi check``
        opens with ``False`` so that it can report them first.
    """

    def __init__(
        self,
        data_dir: Path,
        database_url: str = "",
        *,
        duplicate_policy: DuplicatePolicy = "keep",
        recover: bool = True,
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.files_dir = self.data_dir / files.FILES_DIR
        self.tmp_dir = self.data_dir / files.TMP_DIR
        self.quarantine_dir = self.data_dir / files.QUARANTINE_DIR
        for directory in (self.data_dir, self.files_dir, self.tmp_dir):
            directory.mkdir(parents=True, exist_ok=True)
        self.duplicate_policy: DuplicatePolicy = duplicate_policy
        url = database_url or f"sqlite:///{self.data_dir / 'index.sqlite'}"
        self._engine = create_index_engine(url)
        try:
            self.schema_version = ensure_schema(self._engine)
        except BaseException:
            self._engine.dispose()
            raise
        self._sessions = sessionmaker(self._engine, expire_on_commit=False)
        self.recovered: list[str] = self.recover_interrupted_writes() if recover else []
        for line in self.recovered:
            log.warning("store %s: %s", self.data_dir, line)

    @property
    def engine(self) -> Engine:
        """The store's one SQLAlchemy engine (for diagnostics and tests)."""
        return self._engine

    # --- reads ----------------------------------------------------------------------------------

    def _record(self, row: Instance) -> InstanceRecord:
        """The record of an ORM row (bulk reads: :meth:`_selected`)."""
        return InstanceRecord(
            sop_instance_uid=row.sop_instance_uid,
            sop_class_uid=row.sop_class_uid,
            transfer_syntax_uid=row.transfer_syntax_uid,
            study_instance_uid=row.study_instance_uid,
            series_instance_uid=row.series_instance_uid,
            patient_id=row.patient_id,
            patient_name=row.patient_name,
            modality=row.modality,
            size=row.size,
            sha256=row.sha256,
            path=self.files_dir / row.rel_path,
            number_of_frames=row.number_of_frames,
            series_number=row.series_number,
            instance_number=row.instance_number,
        )

    def _selected(
        self, query: Select[Any], parameters: dict[str, Any] | None = None
    ) -> list[InstanceRecord]:
        """The records of a query over :data:`_RECORD_SELECT`, read on a Core connection.

        Positional row values and a Core connection rather than the ORM session and ``row.name``
        access: of a 400-UID lookup (RAD-69 resolves every requested document this way before
        its first response byte), name access alone took ~3.5 ms and the ORM layer ~0.7 ms.
        """
        files_dir = self.files_dir
        with self._engine.connect() as connection:
            rows = connection.execute(query, parameters)
            return [
                InstanceRecord(
                    **dict(zip(_RECORD_COLUMNS, row[:-1], strict=True)), path=files_dir / row[-1]
                )
                for row in rows
            ]

    def _row(self, session: Session, sop_instance_uid: str) -> Instance | None:
        return session.scalars(
            select(Instance).where(Instance.sop_instance_uid == sop_instance_uid)
        ).one_or_none()

    def get(self, sop_instance_uid: str) -> InstanceRecord | None:
        with self._sessions() as session:
            row = self._row(session, sop_instance_uid)
            return None if row is None else self._record(row)

    def get_many(self, sop_instance_uids: Sequence[str]) -> dict[str, InstanceRecord]:
        wanted = list(dict.fromkeys(sop_instance_uids))
        found: dict[str, InstanceRecord] = {}
        for start in range(0, len(wanted), IN_CHUNK):
            chunk = wanted[start : start + IN_CHUNK]
            if len(chunk) == 1:
                records = self._selected(_BY_UID, {"uid": chunk[0]})
            else:
                records = self._selected(_BY_UIDS, {"uids": chunk})
            found.update((record.sop_instance_uid, record) for record in records)
        return found

    def locate(self, documents: Sequence[DocumentRequest]) -> dict[str, InstanceRecord | XdsiError]:
        """As :meth:`get_many` of the requested DocumentUniqueIds (nothing to fetch here)."""
        return dict(self.get_many([d.document_unique_id for d in documents]))

    def series(self, study_instance_uid: str, series_instance_uid: str) -> list[InstanceRecord]:
        query = select(*_RECORD_SELECT).where(
            Instance.study_instance_uid == study_instance_uid,
            Instance.series_instance_uid == series_instance_uid,
        )
        records = self._selected(query)
        # Sorted here, not by ORDER BY: NULL placement and string collation differ between
        # backends (PostgreSQL locales ignore dots), and a series is small.
        return sorted(records, key=instance_order)

    def study(self, study_instance_uid: str) -> list[InstanceRecord]:
        query = select(*_RECORD_SELECT).where(Instance.study_instance_uid == study_instance_uid)
        return sorted(self._selected(query), key=study_order)

    def count(self) -> int:
        """Number of indexed instances."""
        with self._sessions() as session:
            return session.scalar(select(func.count()).select_from(Instance)) or 0

    def iter_records(self) -> Iterator[InstanceRecord]:
        """Every indexed instance, streamed in batches (for ``xdsi check``)."""
        with self._sessions() as session:
            rows = session.scalars(
                select(Instance).order_by(Instance.id).execution_options(yield_per=1000)
            )
            for row in rows:
                yield self._record(row)

    @contextlib.contextmanager
    def open(self, record: InstanceRecord, *, buffered: bool = True) -> Iterator[BinaryIO]:
        """The stored file, opened for reading; :class:`StoreError` if it is missing.

        ``buffered=False`` gives the raw file, for readers that ask for large blocks anyway.
        """
        try:
            fh: BinaryIO = open(record.path, "rb", buffering=-1 if buffered else 0)  # noqa: SIM115
        except FileNotFoundError:
            raise StoreError(f"stored file of {record.sop_instance_uid} is missing") from None
        with fh:
            yield fh

    def iter_bytes(self, record: InstanceRecord, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """Yield the stored file; :class:`StoreError` if it is missing or not ``record.size`` long
        (:func:`~xdsi.store.files.exact_chunks`: before the first chunk and while reading).
        Raw reads, without Python's buffer: each chunk is one read(2) into its own bytes object.
        """
        with self.open(record, buffered=False) as fh:
            name = f"stored file of {record.sop_instance_uid}"
            yield from files.exact_chunks(fh, record.size, name, chunk_size)

    # --- writes ---------------------------------------------------------------------------------

    def put(self, source: BinaryIO | Path) -> PutResult:
        """Store one instance crash-safely (steps in :mod:`xdsi.store.files`).

        Raises :class:`~xdsi.errors.NotDicom`, :class:`~xdsi.errors.CorruptDicom`,
        :class:`~xdsi.errors.InvalidUID` (nothing stored) or :class:`OSError` (disk full...).
        """
        staged = self.stage(source)
        try:
            return self._commit(staged)
        finally:
            staged.temp.close()

    def stage(self, source: BinaryIO | Path) -> StagedPut:
        """Steps 1-2 of a put: receive, fsync, parse and check, rename to the intent name.

        Thread-safe and independent of the index, so that many run at once; finish each with
        :meth:`commit_staged` or :meth:`discard_staged`.  Raises what :meth:`put` raises for
        refused input, with nothing left behind.
        """
        # Imported here, not at module level: the header reader needs pydicom (with numpy and its
        # pixel plugins, about 55 MB resident), which a server that only reads the store never uses.
        from xdsi.store.header import part10_bytes, read_header

        temp = files.receive(source, self.tmp_dir)
        try:
            header, raw_dataset = read_header(temp.path, temp.size)
            if raw_dataset is not None:
                temp.overwrite(part10_bytes(raw_dataset, header))
            rel_path = files.relative_path(
                header.study_instance_uid,
                header.series_instance_uid,
                header.sop_instance_uid,
                temp.sha256,
            )
            temp.mark_intent(rel_path)
        except BaseException:
            temp.close()
            raise
        values = header.columns() | {"size": temp.size, "sha256": temp.sha256, "rel_path": rel_path}
        return StagedPut(temp, header.sop_instance_uid, rel_path, values)

    def discard_staged(self, staged: StagedPut) -> None:
        """Drop a staged put that will not be committed (nothing of it stays in the store)."""
        staged.temp.close()

    def commit_staged(self, batch: Sequence[StagedPut]) -> list[PutResult | Exception]:
        """Steps 3-4 for a batch: link, one ``fsync`` per directory, one transaction.

        New SOP Instance UIDs (the common case of an import) are linked into place, each
        directory touched is fsynced once, and all their rows are inserted in one transaction:
        every row is still committed only after its file and link are durable.  Anything else
        (a UID already indexed, twice in the batch, or a batch the index refuses, e.g. because
        a concurrent writer got there first) goes through :meth:`put`'s own logic one by one.
        Returns, in order, the :class:`PutResult` of each staged put or the exception
        :meth:`put` would have raised for it.  Every staged put is finished on return.
        """
        results: list[PutResult | Exception | None] = [None] * len(batch)
        ours: set[int] = set()  # final links made here, to remove unless their row got in
        try:
            try:
                fresh = self._new_uids(batch)
            except DBAPIError:
                fresh = []  # the index cannot be read now: each file gets its own answer below
            linked = self._link_batch(batch, fresh, results, ours)
            if linked and self._insert_batch([batch[i].values for i in linked]):
                for i in linked:
                    results[i] = PutResult(PutStatus.STORED, self._record_of(batch[i].values))
            for i, staged in enumerate(batch):
                if results[i] is None:
                    try:
                        results[i] = self._commit(staged)
                    except Exception as exc:  # reported per file, as put would raise it
                        results[i] = exc
        finally:
            for i, staged in enumerate(batch):
                self._finish(staged, i in ours and not _stored(results[i]))
        return [result for result in results if result is not None]

    def _new_uids(self, batch: Sequence[StagedPut]) -> list[int]:
        """Indexes of the batch's first occurrences of UIDs that the index does not hold."""
        uids = list(dict.fromkeys(staged.sop_instance_uid for staged in batch))
        with self._sessions() as session:
            known = set(
                session.scalars(
                    select(Instance.sop_instance_uid).where(Instance.sop_instance_uid.in_(uids))
                )
            )
        fresh: list[int] = []
        for i, staged in enumerate(batch):
            if staged.sop_instance_uid not in known:
                known.add(staged.sop_instance_uid)
                fresh.append(i)
        return fresh

    def _link_batch(
        self,
        batch: Sequence[StagedPut],
        fresh: list[int],
        results: list[PutResult | Exception | None],
        ours: set[int],
    ) -> list[int]:
        """Link ``fresh`` into place, then fsync each parent once; the indexes now durable."""
        linked: list[int] = []
        directories: dict[Path, list[int]] = {}
        for i in fresh:
            staged = batch[i]
            try:
                if self._link(staged.temp, staged.rel_path, durable=False):
                    ours.add(i)
            except (StoreError, OSError) as exc:
                results[i] = exc
                continue
            directories.setdefault((self.files_dir / staged.rel_path).parent, []).append(i)
        for directory, members in directories.items():
            try:
                files.fsync_dir(directory)
            except OSError as exc:
                for i in members:
                    results[i] = exc
                continue
            linked.extend(members)
        linked.sort()
        return linked

    def _insert_batch(self, rows: list[dict[str, Any]]) -> bool:
        """Insert ``rows`` in one transaction; False (nothing inserted) if the index refused."""
        try:
            with self._sessions.begin() as session:
                session.execute(_INSERT, rows)
        except (IntegrityError, DBAPIError) as exc:
            # A UID committed meanwhile by another writer, a locked or failing index: the
            # rows go one by one, where each gets put's handling (and its own error).
            log.debug("batch of %d rows refused, committing one by one: %s", len(rows), exc)
            return False
        return True

    def _finish(self, staged: StagedPut, unlink_unindexed: bool) -> None:
        """Release a staged put; first remove a final link of ours that no row names.

        If the index cannot tell (it failed), the intent name stays in ``tmp/`` so that the
        recovery at the next open settles it.
        """
        if unlink_unindexed:
            try:
                self._unlink_unless_indexed(staged.sop_instance_uid, staged.rel_path)
            except Exception:
                log.warning("left %s for recovery: index unreachable", staged.temp.path)
                staged.temp.close(keep_name=True)
                return
        staged.temp.close()

    def _commit(self, staged: StagedPut) -> PutResult:
        """Link the staged file into place and commit its row; resolve concurrent writers."""
        temp, uid, rel_path, values = (
            staged.temp,
            staged.sop_instance_uid,
            staged.rel_path,
            staged.values,
        )
        linked_by_us = False
        committed = False
        try:
            for attempt in range(MAX_PUT_ATTEMPTS):
                # Optimistic first round: a new UID (the common case of an import) costs one
                # INSERT; the unique constraint tells us when it was not new after all.  A file
                # already at our final name means a re-import of these very bytes: look first.
                existing: Instance | None = None
                if attempt or (self.files_dir / rel_path).exists():
                    try:
                        with self._sessions() as session:
                            existing = self._row(session, uid)
                    except DBAPIError as exc:
                        raise _index_failure(uid, exc) from exc
                if existing is not None:
                    if self.duplicate_policy == "keep":
                        return PutResult(
                            PutStatus.DUPLICATE, self._record(existing), "already stored, kept"
                        )
                    if existing.sha256 == temp.sha256 and existing.size == temp.size:
                        return PutResult(
                            PutStatus.REPLACED, self._record(existing), "already stored, same bytes"
                        )
                # Every round: a concurrent replacement may have unlinked a same-named file
                # we relied on in an earlier round (it was then the indexed, old copy).
                linked_by_us = self._link(temp, rel_path) or linked_by_us
                try:
                    with self._sessions.begin() as session:
                        if existing is None:
                            # Core INSERT with bound parameters: compiled once and cached,
                            # where .values(**...) would coerce 20 literals on every put.
                            session.execute(_INSERT, values)
                        else:
                            # Compare-and-swap on the old path: a concurrent replacement that
                            # won meanwhile must not be overwritten with its file left orphan.
                            done = session.execute(
                                update(Instance)
                                .where(Instance.sop_instance_uid == uid)
                                .where(Instance.rel_path == existing.rel_path)
                                .values(**values)
                            )
                            if getattr(done, "rowcount", 0) != 1:
                                raise _LostRace
                except (IntegrityError, _LostRace):
                    continue  # another writer of this UID committed first: decide again
                except DBAPIError as exc:  # locked, unreachable, read-only...: this file only
                    raise _index_failure(uid, exc) from exc
                committed = True
                record = self._record_of(values)
                if existing is None:
                    return PutResult(PutStatus.STORED, record)
                with contextlib.suppress(FileNotFoundError):
                    (self.files_dir / existing.rel_path).unlink()
                return PutResult(PutStatus.REPLACED, record, "previous copy removed")
            raise StoreError(f"{uid}: gave up after {MAX_PUT_ATTEMPTS} concurrent writes")
        finally:
            if linked_by_us and not committed:
                try:
                    self._unlink_unless_indexed(uid, rel_path)
                except DBAPIError:
                    log.warning("left %s for recovery: index unreachable", temp.path)
                    temp.close(keep_name=True)

    def _record_of(self, values: dict[str, Any]) -> InstanceRecord:
        """The record of a row just written from ``values`` (no ORM object needed)."""
        return InstanceRecord(
            path=self.files_dir / values["rel_path"],
            **{name: values[name] for name in _RECORD_COLUMNS},
        )

    def _link(self, temp: files.TempFile, rel_path: str, *, durable: bool = True) -> bool:
        """Link ``temp`` to its final name; True if we made the link now, False if it was there.

        An existing file of that name holds the same SOP instance with the same hash prefix: a
        concurrent writer of identical bytes, or the leftover of an interrupted one.  It is used
        as is once its full hash matches ours.  ``durable=False``: the caller fsyncs the
        directory (see :meth:`commit_staged`).
        """
        final = self.files_dir / rel_path
        for _attempt in range(MAX_PUT_ATTEMPTS):
            if files.same_file(temp.path, final):
                return False  # linked in an earlier round
            if temp.link_to(final, self.files_dir, durable=durable):
                return True
            try:
                theirs = files.sha256_of(final)
            except FileNotFoundError:
                continue  # unlinked meanwhile (a replacement removed its old copy): link again
            if theirs != (temp.size, temp.sha256):
                raise StoreError(f"{final} exists with different content (hash prefix collision)")
            return False
        raise StoreError(f"{final}: gave up after {MAX_PUT_ATTEMPTS} concurrent link attempts")

    def _unlink_unless_indexed(self, sop_instance_uid: str, rel_path: str) -> None:
        with self._sessions() as session:
            row = self._row(session, sop_instance_uid)
        if row is None or row.rel_path != rel_path:
            with contextlib.suppress(FileNotFoundError):
                (self.files_dir / rel_path).unlink()

    def forget(self, sop_instance_uid: str) -> bool:
        """Delete the index row of one instance (not its file); True if there was one.

        For ``xdsi check --repair`` (rows whose file is missing).
        """
        with self._sessions.begin() as session:
            done = session.execute(
                delete(Instance).where(Instance.sop_instance_uid == sop_instance_uid)
            )
            return bool(getattr(done, "rowcount", 0))

    def recover_interrupted_writes(self) -> list[str]:
        """Roll back writes whose process died (stale ``tmp/`` entries); describe each action.

        An intent whose final link exists but is not in the index is undone by unlinking the final
        name (the write never committed); everything else in ``tmp/`` is simply removed.  A
        ``.part`` that is linked elsewhere lost its rename to the intent name in the crash
        (:func:`_lost_intent`) and is treated as that intent.
        """
        actions: list[str] = []
        for stale in files.stale_temp_files(self.tmp_dir):
            intended = stale.intended or _lost_intent(stale.path)
            if intended is not None:
                final = self.files_dir / intended
                uid = final.name.split(".")[:-2]
                if files.same_file(stale.path, final) and not self._indexed_at(
                    ".".join(uid), intended
                ):
                    final.unlink()
                    actions.append(f"rolled back interrupted write: removed unindexed {final}")
            with contextlib.suppress(FileNotFoundError):
                stale.path.unlink()
            actions.append(f"removed temp leftover {stale.path}")
        return actions

    def _indexed_at(self, sop_instance_uid: str, rel_path: str) -> bool:
        with self._sessions() as session:
            row = self._row(session, sop_instance_uid)
        return row is not None and row.rel_path == rel_path

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> SqlFileStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SqlFileStore({str(self.data_dir)!r}, {self._engine.url!r})"


def _lost_intent(path: Path) -> str | None:
    """The final path of a stale ``.part`` file that has a second link, else None.

    The rename to the intent name (step 2 of :mod:`xdsi.store.files`) is not fsynced, to spare
    every put a directory sync; the final link made after it is, with its directory.  A crash
    can therefore keep the link and lose the rename, leaving the file under its ``.part`` name
    with no record of where it went.  That place is derived again here exactly as
    :meth:`SqlFileStore.stage` derived it: header UIDs and SHA-256 of the content (which, for a
    raw data set, was already rewritten as Part 10 before the rename).
    """
    from xdsi.store.header import read_header  # pydicom only when there is such a file

    try:
        if path.stat().st_nlink < 2:
            return None
        size, sha256 = files.sha256_of(path)
        header, raw = read_header(path, size)
    except (OSError, XdsiError):
        return None
    if raw is not None:
        return None  # not what a put links: those are Part 10
    return files.relative_path(
        header.study_instance_uid, header.series_instance_uid, header.sop_instance_uid, sha256
    )


_INSERT: Final = insert(Base.metadata.tables[Instance.__tablename__])
_RECORD_COLUMNS: Final = tuple(
    f.name for f in dataclasses.fields(InstanceRecord) if f.name not in ("path", "available")
)
"""Record fields that are index columns (``available`` is a remote store's state, not stored)."""


@dataclass
class StagedPut:
    """A put between :meth:`SqlFileStore.stage` and its commit: a locked, fsynced intent file.

    ``values`` are the row to insert (index attributes, size, hash, relative path).
    """

    temp: files.TempFile
    sop_instance_uid: str
    rel_path: str
    values: dict[str, Any]


_RECORD_SELECT: Final[tuple[Any, ...]] = (
    *(getattr(Instance, name) for name in _RECORD_COLUMNS),
    Instance.rel_path,
)
"""What a record needs, ``rel_path`` last: bulk reads select these columns, not ORM objects
(building 400 ORM objects and their identity map was most of a 400-document lookup)."""

_BY_UIDS: Final = select(*_RECORD_SELECT).where(
    Instance.sop_instance_uid.in_(bindparam("uids", expanding=True))
)
"""The records of a list of SOP Instance UIDs (``uids``), built once: building the statement
with the list in it cost ~0.7 ms of a 400-UID lookup."""
_BY_UID: Final = select(*_RECORD_SELECT).where(Instance.sop_instance_uid == bindparam("uid"))
"""The record of one SOP Instance UID (``uid``): the one-document requests (a viewer's rendered
image, a single RAD-69 instance) skip the expansion of :data:`_BY_UIDS` (0.10 against 0.14 ms)."""


def _index_failure(uid: str, exc: DBAPIError) -> StoreError:
    """A database failure during a put as a StoreError (reported for that file, never a
    traceback: SQLite's "database is locked" after the busy timeout, a lost PostgreSQL server)."""
    return StoreError(f"{uid}: the index refused the write ({exc.orig or exc})")


def _stored(result: PutResult | Exception | None) -> bool:
    """True if ``result`` is a put whose own file is now indexed (stored or replaced by it)."""
    return isinstance(result, PutResult) and result.status is not PutStatus.DUPLICATE


class _LostRace(Exception):
    """The row changed between our read and our write."""


def instance_order(record: InstanceRecord) -> tuple[bool, int, str]:
    """Sort key of a series: instance number (missing last), then UID."""
    number = record.instance_number
    return (number is None, number or 0, record.sop_instance_uid)


def study_order(record: InstanceRecord) -> tuple[bool, int, str, bool, int, str]:
    """Sort key of a study: series number (missing last), series UID, then as a series."""
    number = record.series_number
    return (number is None, number or 0, record.series_instance_uid, *instance_order(record))


__all__ = [
    "SqlFileStore",
    "StagedPut",
    "create_index_engine",
    "ensure_schema",
    "instance_order",
    "study_order",
]
