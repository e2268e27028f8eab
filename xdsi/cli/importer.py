"""``xdsi import PATH...``: import DICOM files and folders into the store.

One line per file on stdout (``--quiet``: failures only), a progress bar on stderr when it is a
terminal, a summary line, and exit status 0 if no file failed, 1 otherwise (2: the store could
not be opened; 130: interrupted, every file reported so far is stored or refused for good).
The import logic is :mod:`xdsi.intake.importer`.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from tqdm import tqdm

from xdsi.config import Settings
from xdsi.errors import StoreError
from xdsi.intake.importer import (
    DEFAULT_WORKERS,
    FileOutcome,
    ImportSummary,
    expand,
    import_files,
)
from xdsi.store import open_store

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it
NAME = "import"
HELP = "import DICOM files and folders (recursively) into the store"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="file or folder")
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="print failures only, no progress bar"
    )
    parser.add_argument(
        "--duplicates",
        choices=("keep", "replace"),
        help="policy for already stored SOP Instance UIDs (default: the configured one)",
    )
    parser.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=DEFAULT_WORKERS,
        help=f"files stored concurrently (default {DEFAULT_WORKERS}; 1: one at a time)",
    )


def settings_overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {"duplicate_policy": args.duplicates}


def quiet_pydicom(args: argparse.Namespace) -> None:
    """Silence pydicom's warnings about oddities of the files it reads, unless ``-v`` is given.

    pydicom both warns and logs (``pydicom`` logger) for each; the outcome lines already say what
    matters, and a folder of odd but valid files would otherwise bury them.
    """
    if getattr(args, "verbose", 0):
        return
    warnings.filterwarnings("ignore", category=UserWarning, module=r"pydicom(\.|$)")
    logging.getLogger("pydicom").setLevel(logging.ERROR)


def run(args: argparse.Namespace, settings: Settings) -> int:
    quiet_pydicom(args)
    try:
        store = open_store(settings)
    except (StoreError, SQLAlchemyError, OSError) as exc:
        print(f"xdsi import: cannot open the store: {exc}", file=sys.stderr)
        return 2
    files, missing = expand(args.paths)
    summary = ImportSummary()
    show_bar = not args.quiet and sys.stderr.isatty()
    with store, tqdm(total=len(files), unit="file", file=sys.stderr, disable=not show_bar) as bar:

        def report(outcome: FileOutcome) -> None:
            if outcome.outcome.failed or not args.quiet:
                # tqdm.write keeps the bar below the lines instead of tearing it.
                tqdm.write(outcome.line(), file=sys.stdout)
                sys.stdout.flush()

        def report_file(outcome: FileOutcome) -> None:
            report(outcome)
            bar.update()

        for outcome in missing:
            summary.add(outcome)
            report(outcome)
        try:
            import_files(store, files, report_file, summary, workers=max(1, args.jobs))
        except KeyboardInterrupt:
            print(f"interrupted after {summary.line()}")
            return EXIT_INTERRUPTED
    if not args.quiet or summary.failed:
        print(summary.line())
    return 1 if summary.failed else 0
