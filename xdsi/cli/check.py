"""``xdsi check [--fast] [--repair]``: verify the store's index against its files.

Prints one line per finding (kinds and repairs: :mod:`xdsi.store.integrity`) and a summary.
Exit status: 0 when no damage is found (interrupted writes alone are reported, not damage), or
with ``--repair`` when a re-check after repairing is clean; 1 when damage is (still) there;
2 when there is no store or it cannot be opened.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable

from sqlalchemy.exc import SQLAlchemyError

from xdsi.cli.importer import quiet_pydicom
from xdsi.config import Settings
from xdsi.errors import StoreError
from xdsi.store import SqlFileStore
from xdsi.store.integrity import CheckCounts, Finding, find_damage, repair

NAME = "check"
HELP = "verify the store: missing, orphan, changed files and interrupted writes"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fast", action="store_true", help="compare sizes only, skip SHA-256")
    parser.add_argument(
        "--repair", action="store_true", help="fix what can be fixed without losing data"
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    quiet_pydicom(args)
    if not settings.data_dir.is_dir():
        # Opening would create an empty store: say there is none rather than call it clean.
        print(f"xdsi check: no store at {settings.data_dir}", file=sys.stderr)
        return 2
    try:
        # recover=False: interrupted writes are reported before anything rolls them back.
        # Policy keep: an orphan offered back to the store must never replace an indexed file.
        store = SqlFileStore(
            settings.data_dir,
            settings.effective_database_url,
            duplicate_policy="keep",
            recover=False,
        )
    except (StoreError, SQLAlchemyError, OSError) as exc:
        print(f"xdsi check: cannot open the store: {exc}", file=sys.stderr)
        return 2
    with store:
        counts = CheckCounts()
        findings = _report(find_damage(store, verify_hash=not args.fast, counts=counts))
        damage = [f for f in findings if f.kind.is_damage]
        print(
            f"checked {counts.instances} indexed instances and {counts.files} files: "
            f"{len(damage)} damaged, {len(findings) - len(damage)} interrupted writes"
        )
        if not args.repair or not findings:
            return 1 if damage else 0
        for done in repair(store, findings):
            print(done.line())
        remaining = [f for f in find_damage(store, verify_hash=not args.fast) if f.kind.is_damage]
        print(f"after repair: {len(remaining)} damaged")
        return 1 if remaining else 0


def _report(findings: Iterable[Finding]) -> list[Finding]:
    """Print findings as they are found (a large store takes a while) and collect them."""
    collected: list[Finding] = []
    for finding in findings:
        print(finding.line())
        collected.append(finding)
    return collected
