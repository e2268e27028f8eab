"""``xdsi serve``: the RAD-69 SOAP endpoint under waitress (IHE RAD TF-2 §4.69).

``--demo`` uses ``<per-user data dir>/demo`` (unless ``--data-dir`` is given), imports the sample
studies of the checkout's ``samples/dicom`` into it when they are not there yet, and prints a
ready-to-paste ``xdsi retrieve`` command before serving.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xdsi.config import Settings, default_data_dir
from xdsi.resources import samples_dir

if TYPE_CHECKING:
    from xdsi.store.base import Store

NAME = "serve"
HELP = "serve the SOAP 1.2 RAD-69 endpoint (WSDL at <endpoint>?wsdl)"

log = logging.getLogger(__name__)

SAMPLES_DIR = samples_dir()
DEMO_STUDY_DIR = "ct"
"""The sample study the printed command retrieves (patient DEMO001, several series)."""
DEMO_MANIFEST = SAMPLES_DIR / "manifests" / "ct_study_kos.dcm"
"""Its KOS manifest: ``xdsi retrieve`` takes the instances to ask for from it."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="address to listen on (default: setting http_host)")
    parser.add_argument("--port", type=int, help="TCP port, 0 = any free (default: http_port)")
    parser.add_argument("--threads", type=int, help="worker threads (default: setting threads)")
    parser.add_argument(
        "--warm-metadata",
        action="store_true",
        help="fill the metadata cache from the store in the background at start (first metadata "
        "requests then need not read every header)",
    )
    parser.add_argument(
        "--pacs",
        metavar="AET@HOST:PORT",
        type=parse_pacs,
        help="gateway mode: serve the instances of this PACS (C-FIND + C-GET; see pacs_* settings)",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="serve the sample studies from <data dir>/demo, importing them first if needed",
    )


def parse_pacs(text: str) -> tuple[str, str, int]:
    """``AET@host:port`` → (AE title, host, port); argparse reports a ValueError as usage."""
    aet, at, address = text.partition("@")
    host, colon, port = address.rpartition(":")
    if not (aet and at and host and colon and port.isdigit() and 0 < int(port) < 65536):
        raise argparse.ArgumentTypeError(f"expected AET@host:port, got {text!r}")
    return aet, host.strip("[]"), int(port)


def settings_overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {
        "http_host": args.host,
        "http_port": args.port,
        "threads": args.threads,
    }
    if args.pacs is not None:
        overrides["pacs_ae_title"], overrides["pacs_host"], overrides["pacs_port"] = args.pacs
    if args.demo and args.data_dir is None:
        overrides["data_dir"] = default_data_dir() / "demo"
    return overrides


def import_samples(store: Store, samples: Path = SAMPLES_DIR) -> str | None:
    """Import every sample instance into ``store`` with the ``xdsi import`` logic (instances
    already there are kept as they are); return the Study Instance UID of the demo study."""
    from xdsi.intake.importer import import_paths

    summary = import_paths(store, [samples], workers=1)
    log.info("demo samples: %s", summary.line())
    demo_dir = samples / DEMO_STUDY_DIR
    for path in sorted(demo_dir.rglob("*.dcm")):
        record = store.get(_sop_instance_uid(path))
        if record is not None:
            return record.study_instance_uid
    return None


def _sop_instance_uid(path: Path) -> str:
    from pydicom import dcmread

    with path.open("rb") as fh:
        return str(
            dcmread(fh, stop_before_pixels=True, specific_tags=["SOPInstanceUID"]).SOPInstanceUID
        )


def run(args: argparse.Namespace, settings: Settings) -> int:
    # Imported here so that ``xdsi --help`` does not pay for spyne, waitress and the store.
    from xdsi.soap import make_app
    from xdsi.soap.server import create_server, stop_server
    from xdsi.store import open_source

    if args.demo and settings.pacs_ae_title:
        print("xdsi serve: --demo and gateway mode (--pacs) exclude each other", file=sys.stderr)
        return 2
    if args.demo and not SAMPLES_DIR.is_dir():
        print(
            f"xdsi serve --demo: the sample studies are not here: {SAMPLES_DIR}\n"
            "  --demo needs a source checkout of xdsi (samples/dicom); run it from one.",
            file=sys.stderr,
        )
        return 2
    try:
        store = open_source(settings)
    except Exception as exc:
        log.debug("opening the store failed", exc_info=exc)
        print(f"xdsi serve: cannot open the store: {exc}", file=sys.stderr)
        return 1
    try:
        demo_study = import_samples(store) if args.demo else None
        try:
            server = create_server(
                make_app(settings, store, warm_metadata=args.warm_metadata), settings
            )
        except OSError as exc:
            print(
                f"xdsi serve: cannot listen on {settings.http_host}:{settings.http_port}: {exc}",
                file=sys.stderr,
            )
            return 1
        # Start the transcoding workers now: a spawned worker takes about a second to import
        # the codecs, which the first transcoded document would otherwise wait for.
        from xdsi.imaging.pipeline import shared_pool

        pool = shared_pool(settings.transcode_workers)
        pool.warm()
        # A wildcard listen address is not something a client can connect to: print loopback.
        wildcard = settings.http_host in ("0.0.0.0", "::", "")  # noqa: S104
        host = "127.0.0.1" if wildcard else settings.http_host
        url = f"http://{host}:{server.effective_port}{settings.endpoint_path}"
        source = (
            f"PACS {settings.pacs_ae_title}@{settings.pacs_host}:{settings.pacs_port}"
            if settings.pacs_ae_title
            else f"data in {settings.data_dir}"
        )
        print(f"xdsi: serving RAD-69 at {url} (WSDL: {url}?wsdl); {source}")
        if demo_study:
            print(
                "Try:\n  xdsi retrieve"
                f" --endpoint {url} --repository-id {settings.repository_unique_id}"
                f" --study {demo_study} --kos {DEMO_MANIFEST} --out ./xdsi-demo-retrieved"
            )
        sys.stdout.flush()
        _stop_on_signals()
        try:
            server.run()
        except KeyboardInterrupt:
            log.info("interrupted, shutting down")
        finally:
            stop_server(server)
            pool.shutdown()
        return 0
    finally:
        store.close()


def _raise_interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _stop_on_signals() -> None:
    """SIGTERM (what service managers and ``kill`` send) and SIGINT end :func:`run` cleanly: the
    server closes, the transcoding workers stop, the store closes.  SIGINT is set explicitly too,
    because a shell that starts ``xdsi serve &`` in a script leaves it ignored."""
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers can only be set in the main thread (in-process use)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _raise_interrupt)
