"""``xdsi retrieve --rendered``: the Rendered Requester (PS3.18 2017b §6.4.2) on the command line.

The documents are chosen exactly as for RAD-69 (``--study``/``--series``/``--instance`` or
``--kos``); the options below become the parameters of every RenderedDocumentRequest (§8.1/§8.2)
and are sent as given, so that a source's handling of bad values can be tried too
(``--anonymize`` is the option ``--metadata`` uses as well).  Exit status
as ``xdsi retrieve``: 0 Success, 2 PartialSuccess, 1 Failure or any error.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from xdsi import ns
from xdsi.model import DocumentRequest


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``--rendered`` switch and the rendered parameters (their own help group)."""
    group = parser.add_argument_group(
        "rendered retrieve (PS3.18 §6.4.2)",
        "with --rendered, images are asked for as rendered media types instead of DICOM",
    )
    group.add_argument(
        "--rendered", action="store_true", help="Retrieve Rendered Imaging Document Set"
    )
    group.add_argument(
        "--content-type",
        action="append",
        default=[],
        metavar="TYPE",
        help="acceptable media type, in order of preference; repeat (default image/jpeg)",
    )
    group.add_argument("--charset", action="append", default=[], help="acceptable charset; repeat")
    group.add_argument("--annotation", help="patient, technique or patient,technique")
    group.add_argument("--rows", help="maximum rows of the rendering")
    group.add_argument("--columns", help="maximum columns of the rendering")
    group.add_argument("--region", metavar="X1,Y1,X2,Y2", help="normalized region, 0..1")
    group.add_argument(
        "--region-as-text",
        action="store_true",
        help="send Region as the string x1,y1,x2,y2 (dcm4che schema) instead of XMin… elements",
    )
    group.add_argument("--window-center", help="VOI window center (with --window-width)")
    group.add_argument("--window-width", help="VOI window width (with --window-center)")
    group.add_argument("--image-quality", help="1..100 for lossy media types")
    group.add_argument("--frame-number", help="frame of a multi-frame object")
    group.add_argument("--presentation-uid", help="SOP Instance UID of a presentation state")
    group.add_argument("--presentation-series-uid", help="its Series Instance UID")
    group.add_argument(
        "--legacy-action",
        action="store_true",
        help=f"send the PS3.18 prose action {ns.ACTION_RENDERED_LEGACY}",
    )


def run(args: argparse.Namespace, documents: Sequence[DocumentRequest]) -> int:
    """Send the rendered request for ``documents`` and save the renderings in ``args.out``."""
    from xdsi.cli.retrieve import report
    from xdsi.client.rendered import RenderedParameters, retrieve_rendered
    from xdsi.errors import ClientError

    parameters = RenderedParameters(
        content_types=tuple(args.content_type) or (ns.MEDIA_JPEG,),
        charsets=tuple(args.charset),
        annotation=args.annotation,
        rows=args.rows,
        columns=args.columns,
        region=args.region,
        window_center=args.window_center,
        window_width=args.window_width,
        image_quality=args.image_quality,
        presentation_uid=args.presentation_uid,
        presentation_series_uid=args.presentation_series_uid,
        anonymize=args.anonymize,
        frame_number=args.frame_number,
        region_as_text=args.region_as_text,
    )
    action = ns.ACTION_RENDERED_LEGACY if args.legacy_action else ns.ACTION_RENDERED
    started = time.monotonic()
    try:
        rendered = retrieve_rendered(
            args.endpoint,
            documents,
            parameters,
            args.out,
            action=action,
            mtom=args.mtom,
            timeout=args.timeout,
        )
    except ClientError as exc:
        print(f"xdsi retrieve: {exc}", file=sys.stderr)
        return 1
    elapsed = max(time.monotonic() - started, 1e-9)
    result = rendered.result
    print(
        f"{len(result.documents)} of {len(documents)} rendering(s), {result.total_bytes} bytes "
        f"in {elapsed:.2f} s, status {result.status.name} -> {args.out}"
    )
    for saved, used in rendered.pairs():
        values = " ".join(f"{k}={v}" for k, v in used.items())
        print(f"  {saved.path.name} {saved.mime_type} {saved.size} B {values}".rstrip())
    return report(result.errors, result.status, result.action, action + ns.RESPONSE_SUFFIX)


__all__ = ["add_arguments", "run"]
