"""Index-versus-files verification and repair of a :class:`SqlFileStore` (``xdsi check``).

Kinds of findings (:class:`Damage`) and what ``--repair`` does with each, never deleting data
that might be the only copy:

* ``missing``: an index row whose file is gone.  Repair removes the row (reported with its UID,
  so the instance can be re-imported); the row points at nothing that could be recovered.
* ``orphan``: a file under ``files/`` that no row names (e.g. a power loss lost the last commits
  of the index).  Repair offers it to the store again (policy ``keep``): a valid instance is
  re-indexed (in place when it sits at its canonical name); a byte-identical copy of an indexed
  instance is removed; anything else, unreadable or a different version of an indexed instance,
  is moved to ``quarantine/``.
* ``size`` / ``sha256``: the file differs from what was stored.  Not repairable without a good
  copy: reported, and left for the operator (restore it, or re-import with policy ``replace``).
* ``temp``: a ``tmp/`` entry of an interrupted write (with its final link, if it got that far).
  Not damage to stored data: nothing refers to it and the store rolls it back whenever it opens.
  Reported, and rolled back by ``--repair``; it does not make the check fail.
"""

from __future__ import annotations

import enum
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from xdsi.errors import StoreError
from xdsi.store import files
from xdsi.store.base import PutStatus
from xdsi.store.sqlfile import SqlFileStore


class Damage(enum.Enum):
    """Kinds of findings; the value is the word printed for them."""

    MISSING = "missing"
    ORPHAN = "orphan"
    SIZE = "size"
    SHA256 = "sha256"
    TEMP = "temp"

    @property
    def is_damage(self) -> bool:
        """False for interrupted writes, which the store rolls back by itself."""
        return self is not Damage.TEMP


@dataclass(frozen=True)
class Finding:
    kind: Damage
    path: Path
    detail: str
    sop_instance_uid: str | None = None

    def line(self) -> str:
        uid = f" [{self.sop_instance_uid}]" if self.sop_instance_uid else ""
        return f"{self.kind.value:<8} {self.path}{uid}: {self.detail}"


@dataclass(frozen=True)
class Repair:
    finding: Finding
    fixed: bool
    action: str

    def line(self) -> str:
        uid = self.finding.sop_instance_uid
        subject = f"{self.finding.path}" + (f" [{uid}]" if uid else "")
        return f"{'repaired' if self.fixed else 'NOT repaired'}: {subject}: {self.action}"


@dataclass
class CheckCounts:
    instances: int = 0
    files: int = 0


def find_damage(
    store: SqlFileStore, *, verify_hash: bool = True, counts: CheckCounts | None = None
) -> Iterator[Finding]:
    """Compare every index row with its file, then look for files and temp entries no row names.

    ``verify_hash=False`` (``--fast``) compares sizes only.
    """
    counts = CheckCounts() if counts is None else counts
    indexed: set[str] = set()
    for record in store.iter_records():
        counts.instances += 1
        rel = record.path.relative_to(store.files_dir).as_posix()
        indexed.add(rel)
        uid = record.sop_instance_uid
        try:
            actual = record.path.stat().st_size
        except FileNotFoundError:
            yield Finding(Damage.MISSING, record.path, "indexed file does not exist", uid)
            continue
        if actual != record.size:
            detail = f"{actual} bytes, indexed as {record.size}"
            yield Finding(Damage.SIZE, record.path, detail, uid)
        elif verify_hash and files.sha256_of(record.path)[1] != record.sha256:
            yield Finding(Damage.SHA256, record.path, "content differs from the indexed hash", uid)

    stale = list(files.stale_temp_files(store.tmp_dir))
    interrupted: set[str] = set()
    for temp in stale:
        final = store.files_dir / temp.intended if temp.intended else None
        if final is not None and files.same_file(temp.path, final) and temp.intended not in indexed:
            interrupted.add(temp.intended or "")
            detail = f"interrupted write, not committed (its link {final} goes with it)"
        else:
            detail = "interrupted write"
        yield Finding(Damage.TEMP, temp.path, detail)

    for rel in files.stored_files(store.files_dir):
        counts.files += 1
        if rel not in indexed and rel not in interrupted:
            yield Finding(Damage.ORPHAN, store.files_dir / rel, "file not in the index")


def repair(store: SqlFileStore, findings: list[Finding]) -> Iterator[Repair]:
    """Fix what can be fixed without losing data (see the module docstring for each kind)."""
    if any(f.kind is Damage.TEMP for f in findings):
        actions = store.recover_interrupted_writes()
        for finding in (f for f in findings if f.kind is Damage.TEMP):
            yield Repair(finding, True, "rolled back (" + "; ".join(actions) + ")")
    for finding in findings:
        if finding.kind is Damage.MISSING:
            assert finding.sop_instance_uid is not None
            store.forget(finding.sop_instance_uid)
            yield Repair(finding, True, "index row removed; re-import the instance to restore it")
        elif finding.kind is Damage.ORPHAN:
            yield _adopt_orphan(store, finding)
        elif finding.kind in (Damage.SIZE, Damage.SHA256):
            yield Repair(
                finding,
                False,
                "no good copy to repair from: restore the file, or re-import the instance "
                "with duplicate_policy=replace",
            )


def _adopt_orphan(store: SqlFileStore, finding: Finding) -> Repair:
    if store.duplicate_policy != "keep":
        raise ValueError("orphans are re-indexed with policy 'keep' only (never replace)")
    orphan = finding.path
    try:
        result = store.put(orphan)
    except StoreError as exc:  # not DICOM, corrupt, invalid UID: keep it, out of the way
        return Repair(finding, True, f"moved to {_quarantine(store, orphan)} ({exc})")
    except OSError as exc:  # unreadable (permissions...): leave it for the operator
        return Repair(finding, False, f"cannot be read: {exc}")
    if result.record.path == orphan:
        return Repair(finding, True, f"re-indexed in place as {result.record.sop_instance_uid}")
    if files.sha256_of(orphan) == (result.record.size, result.record.sha256):
        orphan.unlink()
        status = "re-indexed" if result.status is PutStatus.STORED else "already indexed"
        return Repair(finding, True, f"{status} as {result.record.path}; redundant copy removed")
    target = _quarantine(store, orphan)
    return Repair(finding, True, f"another version of an indexed instance: moved to {target}")


def _quarantine(store: SqlFileStore, path: Path) -> Path:
    """Move ``path`` under ``quarantine/`` keeping its relative path; never overwrite."""
    relative = path.relative_to(store.files_dir) if path.is_relative_to(store.files_dir) else None
    target = store.quarantine_dir / (relative if relative is not None else Path(path.name))
    n = 0
    while target.exists():
        n += 1
        target = target.with_name(f"{path.name}.{n}")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(path, target)
    return target
