"""``xdsi dump FILE``: print a DICOM file as PS3.19 Native DICOM Model XML, like ``dcm2xml -nat``.

The XML is what the metadata transaction (PS3.18 2017b §6.4.3) applies its XPath to, so this is
the way to see what an XPath will meet.  Bulk data (PS3.19 Table A.1.5-2) is left out by default,
written inline with ``--inline-binary`` or referenced with ``--bulk-uri-base``.

Exit status: 0 on success; 1 with one line on stderr when the file is missing, not DICOM or too
corrupt to read.
"""

from __future__ import annotations

import argparse
import logging
import sys

import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.errors import InvalidDicomError

from xdsi.config import Settings
from xdsi.errors import ProcessingFailure
from xdsi.imaging.nativexml import BulkDataMode, bulk_uri_under, to_native_xml_bytes

NAME = "dump"
HELP = "print a DICOM file as PS3.19 Native DICOM Model XML (like dcm2xml -nat)"

log = logging.getLogger(__name__)

_DEFER_SIZE = 1 << 20
"""Values above 1 MiB are not read when bulk data is omitted (Pixel Data stays on disk)."""
_UNDEFINED_LENGTH = 0xFFFFFFFF


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="DICOM Part 10 file (or bare data set)")
    bulk = parser.add_mutually_exclusive_group()
    bulk.add_argument(
        "--inline-binary",
        action="store_true",
        help="write bulk data (OB, OW, UN, Pixel Data, ...) as base64 InlineBinary",
    )
    bulk.add_argument(
        "--bulk-uri-base",
        metavar="URL",
        help="write bulk data as BulkData@uri = URL/<tag path>, e.g. URL/7FE00010",
    )
    parser.add_argument(
        "--compact",
        action="store_true",
        help="no line breaks or indentation (the exact text the metadata transaction queries)",
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    del settings  # a local file needs no store
    if args.inline_binary:
        bulk, bulk_uri = BulkDataMode.INLINE, None
    elif args.bulk_uri_base:
        bulk, bulk_uri = BulkDataMode.URI, bulk_uri_under(args.bulk_uri_base)
    else:
        bulk, bulk_uri = BulkDataMode.OMIT, None
    logging.captureWarnings(True)  # pydicom's warnings become log lines, not stack snippets
    try:
        ds = pydicom.dcmread(
            args.file, defer_size=_DEFER_SIZE if bulk is BulkDataMode.OMIT else None
        )
        truncated = _truncated_element(ds)
        if truncated is not None:
            return _fail(f"{args.file}: corrupt DICOM (file ends inside element {truncated})")
        data = to_native_xml_bytes(ds, bulk=bulk, bulk_uri=bulk_uri, pretty_print=not args.compact)
    except ProcessingFailure as exc:
        return _fail(f"{args.file}: {exc.context} (try --compact)")
    except InvalidDicomError as exc:
        return _fail(f"{args.file}: not a DICOM file ({exc})")
    except OSError as exc:
        return _fail(f"{args.file}: cannot read: {exc.strerror or exc}")
    except Exception as exc:  # pydicom raises many types on corrupt input; report, no traceback
        log.debug("dump failed", exc_info=True)
        return _fail(f"{args.file}: corrupt DICOM ({type(exc).__name__}: {exc})")
    try:
        sys.stdout.buffer.write(data)
        if not data.endswith(b"\n"):
            sys.stdout.buffer.write(b"\n")
        sys.stdout.flush()
    except BrokenPipeError:  # e.g. piped into head: not an error of ours
        return 0
    return 0


def _truncated_element(ds: pydicom.Dataset) -> str | None:
    """The last element, if the file ends before its value does.

    pydicom reads a truncated file without complaint and hands back a short value (dcm2xml
    refuses it: "premature end of stream"); truncation can only cut the last element.
    """
    if not ds:
        return None
    last = ds.get_item(max(ds.keys()), keep_deferred=True)
    if not isinstance(last, RawDataElement) or last.value is None:
        return None
    if last.length != _UNDEFINED_LENGTH and len(last.value) < last.length:
        return str(last.tag)
    return None


def _fail(message: str) -> int:
    print(f"xdsi dump: {' '.join(message.split())}", file=sys.stderr)
    return 1
