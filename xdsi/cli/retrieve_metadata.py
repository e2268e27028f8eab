"""``xdsi retrieve --metadata``: the metadata half of ``xdsi retrieve`` (PS3.18 2017b §6.4.3).

Each instance's XPath results are written to ``OUT``: ``<SOP Instance UID>.xml`` for one XPath,
``<SOP Instance UID>.<n>.xml`` (n = 1, 2, … in request order) for several; ``.txt`` instead of
``.xml`` for a result that is not XML (a string, number or boolean XPath).  Text is UTF-8, exactly
the ``XPathResponse`` content.  Exit status as for RAD-69: 0 Success, 2 PartialSuccess, 1 Failure.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from xdsi import ns
from xdsi.cli.retrieve import report
from xdsi.model import DocumentRequest

log = logging.getLogger(__name__)


def result_path(out: Path, sop_instance_uid: str, index: int, count: int, text: str) -> Path:
    """Where the ``index``-th (1-based) of ``count`` results of one instance is written."""
    suffix = ".xml" if text.lstrip().startswith("<") else ".txt"
    number = f".{index}" if count > 1 else ""
    return out / f"{sop_instance_uid}{number}{suffix}"


def run_metadata(args: argparse.Namespace, documents: Sequence[DocumentRequest]) -> int:
    from xdsi.client.metadata import MetadataRequester
    from xdsi.errors import ClientError

    xpaths: list[str] = args.xpath or ["/"]
    started = time.monotonic()
    try:
        requester = MetadataRequester(
            args.endpoint, wsdl=args.wsdl, mtom=args.mtom, timeout=args.timeout
        )
        result = requester.retrieve(documents, xpaths, anonymize=args.anonymize)
        written = 0
        for document in result.documents:
            for index, text in enumerate(document.results, start=1):
                path = result_path(
                    args.out, document.document_unique_id, index, len(document.results), text
                )
                path.write_text(text, encoding="utf-8")
                written += 1
    except ClientError as exc:
        log.debug("metadata retrieve failed", exc_info=exc)
        print(f"xdsi retrieve: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"xdsi retrieve: cannot write to {args.out}: {exc}", file=sys.stderr)
        return 1
    elapsed = max(time.monotonic() - started, 1e-9)
    print(
        f"metadata of {len(result.documents)} of {len(documents)} instance(s), {written} "
        f"result file(s) in {elapsed:.2f} s, status {result.status.name} -> {args.out}"
    )
    return report(
        result.errors, result.status, result.action, requester.action + ns.RESPONSE_SUFFIX
    )
