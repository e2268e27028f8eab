"""``xdsi scp``: run the C-STORE SCP (PS3.4 Annex B) that fills the store, until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from types import FrameType
from typing import Any

from xdsi.config import Settings

NAME = "scp"
HELP = "receive DICOM instances by C-STORE into the store (runs until SIGINT/SIGTERM)"

log = logging.getLogger(__name__)


SHUTDOWN_TIMEOUT = 60.0
"""Seconds a clean shutdown may take before the process exits anyway.

The SCP gives open associations 10 s and then aborts them; pynetdicom's abort waits for the
association's thread without a bound, and one manual run was seen ignoring SIGTERM for minutes
(not reproduced).  Exiting hard is safe: the store commits whole instances only.
"""


def _force_exit() -> None:
    log.error("shutdown took longer than %.0f s; exiting without waiting further", SHUTDOWN_TIMEOUT)
    logging.shutdown()
    os._exit(1)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ae-title", help="our AE title (default: setting ae_title)")
    parser.add_argument("--host", help="address to listen on (default: setting dicom_host)")
    parser.add_argument("--port", type=int, help="TCP port (default: setting dicom_port)")
    parser.add_argument(
        "--max-associations", type=int, help="concurrent associations (default: setting)"
    )


def settings_overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "ae_title": args.ae_title,
        "dicom_host": args.host,
        "dicom_port": args.port,
        "max_associations": args.max_associations,
    }


def run(args: argparse.Namespace, settings: Settings) -> int:
    # Imported here so that ``xdsi --help`` does not pay for pynetdicom and the store.
    from xdsi.intake.scp import serve
    from xdsi.store import open_store

    try:
        store = open_store(settings)
    except Exception as exc:
        # Whatever the backend raises (unreachable database, unwritable data directory): one
        # line for the operator, the traceback only with -vv.
        log.debug("opening the store failed", exc_info=exc)
        print(f"xdsi scp: cannot open the store: {exc}", file=sys.stderr)
        return 1

    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        if not stop.is_set():
            stop.set()
            watchdog = threading.Timer(SHUTDOWN_TIMEOUT, _force_exit)
            watchdog.daemon = True
            watchdog.start()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        serve(settings, store, block=True, stop_event=stop)
    except ValueError as exc:
        print(f"xdsi scp: invalid setting: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        where = f"{settings.dicom_host}:{settings.dicom_port}"
        print(f"xdsi scp: cannot listen on {where}: {exc}", file=sys.stderr)
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        store.close()
    return 0
