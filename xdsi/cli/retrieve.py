"""``xdsi retrieve``: an Imaging Document Consumer for RAD-69 (IHE RAD TF-2 §4.69).

Documents are named by SOP Instance UID, either on the command line (``--study``, ``--series``,
``--instance``) or by a KOS manifest (``--kos``, as an XDS-I.b consumer gets them; RAD TF-2
§4.69.4.1.2).  A RAD-69 request lists SOP Instance UIDs: there is no "whole study" request, so a
study or series without instance UIDs is resolved through the KOS or refused.

With ``--metadata`` the same instances are asked for their PS3.19 metadata instead
(:mod:`xdsi.client.metadata`; PS3.18 2017b §6.4.3), optionally filtered by ``--xpath``.
With ``--rendered`` they are asked for as rendered images or text instead (Retrieve Rendered
Imaging Document Set, PS3.18 2017b §6.4.2; :mod:`xdsi.cli.retrieve_rendered`).

Exit status: 0 Success, 2 PartialSuccess, 1 Failure — and 1 for a SOAP fault, a transport error,
a truncated response or unusable arguments (one line on stderr, no traceback).  argparse's own
usage errors exit 2, as everywhere.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from xdsi import ns
from xdsi.config import Settings
from xdsi.model import DocumentRequest, RegistryError, Severity, Status
from xdsi.uids import is_valid_uid

if TYPE_CHECKING:
    from xdsi.client.result import SavedDocument

NAME = "retrieve"
HELP = "retrieve DICOM instances from an Imaging Document Source by RAD-69 (SOAP 1.2, MTOM)"

log = logging.getLogger(__name__)

DEFAULT_TRANSFER_SYNTAXES: tuple[str, ...] = (
    ns.TS_EXPLICIT_VR_LE,
    ns.TS_IMPLICIT_VR_LE,
    ns.TS_DEFLATED_EXPLICIT_VR_LE,
    ns.TS_EXPLICIT_VR_BE,
    ns.TS_RLE,
    ns.TS_JPEG_LOSSLESS_SV1,
    ns.TS_JPEG_LOSSLESS_P14,
    ns.TS_JPEG_LS_LOSSLESS,
    ns.TS_JPEG2000_LOSSLESS,
    ns.TS_HTJ2K_LOSSLESS,
    ns.TS_HTJ2K_LOSSLESS_RPCL,
    ns.TS_JPEG_BASELINE,
    ns.TS_JPEG_EXTENDED,
    ns.TS_JPEG_LS_NEAR_LOSSLESS,
    ns.TS_JPEG2000,
    ns.TS_HTJ2K,
)
"""What ``xdsi retrieve`` accepts unless ``--ts`` is given: every transfer syntax a stored image
may be in, except JPIP (which returns no pixel data, PS3.18 2017b §6.4.1.2.2).

Reason: a retrieve-to-disk tool wants the objects **as stored** — no transcoding, no lossless
object inflated to Explicit VR LE, no lossy object decoded and re-encoded — and an Imaging Document
Source returns the stored syntax whenever it is listed (RAD69-005; standards.md §2.6).  dcm4che's
``wadows`` tool sends Explicit VR Little Endian alone; ``--ts 1.2.840.10008.1.2.1`` does that.
"""


class UsageError(ValueError):
    """The options do not make a RAD-69 request."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--endpoint", required=True, help="URL of the RAD-69 endpoint")
    parser.add_argument(
        "--repository-id",
        help="RepositoryUniqueId of the source (default with --kos: each series' Retrieve "
        "Location UID (0040,E011))",
    )
    parser.add_argument("--home-community-id", help="HomeCommunityId (urn:oid:…), if any")
    parser.add_argument("--study", help="Study Instance UID")
    parser.add_argument("--series", help="Series Instance UID")
    parser.add_argument(
        "--instance",
        action="append",
        default=[],
        metavar="UID",
        help="SOP Instance UID (= DocumentUniqueId); repeat for several",
    )
    parser.add_argument(
        "--kos",
        type=Path,
        help="KOS manifest naming the instances (filtered by --study/--series/--instance)",
    )
    parser.add_argument(
        "--ts",
        action="append",
        default=[],
        metavar="UID",
        help="acceptable transfer syntax, in order of preference; repeat for several. The "
        "source picks by xdsi's rule (the stored syntax if listed, else the first listed one it "
        "can produce without loss, a listed lossy one only if no lossless one is listed); a "
        "document received in an unlisted syntax is converted here by the same rule "
        "(default: every stored syntax but JPIP, so objects come back unchanged)",
    )
    parser.add_argument(
        "--mtom", action="store_true", help="send the request as MTOM/XOP (multipart/related)"
    )
    parser.add_argument("--wsdl", help="WSDL path or URL (default: the repository's copy)")
    parser.add_argument(
        "--metadata",
        action="store_true",
        help="Retrieve Imaging Document Set Metadata (PS3.18 §6.4.3) instead of the documents: "
        "PS3.19 Native DICOM Model XML, one file per instance and XPath",
    )
    parser.add_argument(
        "--xpath",
        action="append",
        default=[],
        metavar="EXPR",
        help="with --metadata: XPath over the Native DICOM Model; repeat for several "
        "(default '/', the whole model)",
    )
    parser.add_argument(
        "--anonymize",
        action="store_true",
        help="with --metadata: ask for PS3.15 Basic Profile de-identified metadata; with "
        '--rendered: send Anonymize "yes" (no identifying text in the renderings)',
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds (default 300)")
    parser.add_argument("--out", type=Path, required=True, help="directory for the documents")
    from xdsi.cli import retrieve_rendered

    retrieve_rendered.add_arguments(parser)


def select_documents(
    *,
    kos: Path | None,
    study: str | None,
    series: str | None,
    instances: Sequence[str],
    repository_id: str | None,
    home_community_id: str | None,
) -> list[DocumentRequest]:
    """The DocumentRequests the options ask for (RAD TF-2 §4.69.4.1.2).

    Raises
    ------
    UsageError
        If the options name no instance, lack a RepositoryUniqueId, or contradict the KOS.
    InvalidManifest
        If ``kos`` is not a usable KOS manifest.
    """
    for label, value in (("--study", study), ("--series", series)):
        if value is not None and not is_valid_uid(value):
            raise UsageError(f"{label} is not a valid DICOM UID: {value!r}")
    for value in instances:
        if not is_valid_uid(value):
            raise UsageError(f"--instance is not a valid DICOM UID: {value!r}")
    if kos is not None:
        documents = _from_kos(kos, study, series, instances, home_community_id)
    else:
        documents = _from_options(study, series, instances, repository_id, home_community_id)
    if repository_id:
        documents = [_with_repository(d, repository_id) for d in documents]
    missing = [d.document_unique_id for d in documents if not d.repository_unique_id]
    if missing:
        raise UsageError(
            f"no RepositoryUniqueId for {len(missing)} instance(s) (the KOS has no Retrieve "
            "Location UID for them): give --repository-id"
        )
    return documents


def _from_kos(
    kos: Path,
    study: str | None,
    series: str | None,
    instances: Sequence[str],
    home_community_id: str | None,
) -> list[DocumentRequest]:
    from xdsi.client.kos import read_kos

    documents = [
        d
        for d in read_kos(kos, home_community_id)
        if (study is None or d.study_instance_uid == study)
        and (series is None or d.series_instance_uid == series)
    ]
    if instances:
        listed = {d.document_unique_id for d in documents}
        unknown = [uid for uid in instances if uid not in listed]
        if unknown:
            raise UsageError(f"not referenced by {kos} (as filtered): {', '.join(unknown)}")
        documents = [d for d in documents if d.document_unique_id in set(instances)]
    if not documents:
        raise UsageError(f"{kos} references no instance of the requested study/series")
    return documents


def _from_options(
    study: str | None,
    series: str | None,
    instances: Sequence[str],
    repository_id: str | None,
    home_community_id: str | None,
) -> list[DocumentRequest]:
    if not study:
        raise UsageError("give --study with --series and --instance, or --kos")
    if not instances:
        raise UsageError(
            "RAD-69 requests name SOP Instance UIDs (IHE RAD TF-2 §4.69.4.1.2): give --instance, "
            "or --kos to take the study's instances from its KOS manifest"
        )
    if not series:
        raise UsageError("--series is required with --instance (RAD-69 groups them by series)")
    if not repository_id:
        raise UsageError("--repository-id is required without --kos")
    return [
        DocumentRequest(study, series, uid, repository_id, home_community_id) for uid in instances
    ]


def _with_repository(document: DocumentRequest, repository_id: str) -> DocumentRequest:
    return DocumentRequest(
        document.study_instance_uid,
        document.series_instance_uid,
        document.document_unique_id,
        repository_id,
        document.home_community_id,
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    # Imported here so that ``xdsi --help`` does not pay for zeep and requests.
    from tqdm import tqdm

    from xdsi.client.requester import Requester, request_for
    from xdsi.errors import ClientError

    def fail(message: str) -> int:
        print(f"xdsi retrieve: {message}", file=sys.stderr)
        return 1

    try:
        documents = select_documents(
            kos=args.kos,
            study=args.study,
            series=args.series,
            instances=args.instance,
            repository_id=args.repository_id,
            home_community_id=args.home_community_id,
        )
    except (UsageError, ClientError) as exc:
        return fail(str(exc))
    if args.xpath and not args.metadata:
        return fail("--xpath goes with --metadata")
    if args.anonymize and not (args.metadata or args.rendered):
        return fail("--anonymize goes with --metadata or --rendered")
    if args.metadata and args.rendered:
        return fail("--metadata and --rendered are different requests: give one")
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return fail(f"cannot create {args.out}: {exc}")
    if args.metadata:
        from xdsi.cli.retrieve_metadata import run_metadata

        return run_metadata(args, documents)
    if args.rendered:
        from xdsi.cli import retrieve_rendered

        return retrieve_rendered.run(args, documents)
    request = request_for(documents, args.ts or DEFAULT_TRANSFER_SYNTAXES)

    bar = tqdm(total=len(documents), unit="doc", file=sys.stderr, disable=None, leave=False)

    def progress(saved: SavedDocument) -> None:
        bar.update(1)
        bar.set_postfix_str(f"{saved.path.name} ({saved.size} B)", refresh=False)

    started = time.monotonic()
    try:
        requester = Requester(args.endpoint, wsdl=args.wsdl, mtom=args.mtom, timeout=args.timeout)
        result = requester.retrieve(request, args.out, on_document=progress)
    except ClientError as exc:
        log.debug("retrieve failed", exc_info=exc)
        return fail(str(exc))
    finally:
        bar.close()
    elapsed = max(time.monotonic() - started, 1e-9)
    refused = _conform(result.documents, args.ts) if args.ts else []

    total = result.total_bytes
    print(
        f"{len(result.documents)} of {len(documents)} document(s), {total} bytes in "
        f"{elapsed:.2f} s ({total / elapsed / 1e6:.1f} MB/s), status {result.status.name} "
        f"-> {args.out}"
    )
    code = report(result.errors, result.status, result.action, ns.ACTION_RAD69_RESPONSE)
    for line in refused:
        print(f"  error {line}")
    return 2 if refused and code == 0 else code


def report(
    errors: Sequence[RegistryError], status: Status, action: str | None, expected_action: str
) -> int:
    """Print the RegistryErrors and an unexpected reply action; the exit status of ``status``."""
    for error in errors:
        kind = "warning" if error.severity is Severity.WARNING else "error"
        where = f" [{error.location}]" if error.location else ""
        print(f"  {kind} {error.error_code}{where}: {error.code_context}")
    if action and action != expected_action:
        print(f"  note: unexpected response wsa:Action {action}", file=sys.stderr)
    return {Status.SUCCESS: 0, Status.PARTIAL_SUCCESS: 2, Status.FAILURE: 1}[status]


def _conform(documents: Sequence[SavedDocument], accepted: Sequence[str]) -> list[str]:
    """Apply the transfer-syntax rule to the received DICOM files (:mod:`xdsi.client.conform`);
    the lines to report for the files left in an unlisted syntax."""
    from xdsi.client.conform import conform

    refused: list[str] = []
    for saved in documents:
        if saved.mime_type != ns.MEDIA_DICOM:
            continue
        done = conform(saved.path, accepted)
        if done.converted:
            print(
                f"  note: {saved.path.name} arrived in {done.received}, which was not listed; "
                f"converted to {done.written}",
                file=sys.stderr,
            )
        elif done.written is None:
            refused.append(
                f"[{saved.document_unique_id}]: arrived in {done.received or 'an unreadable form'}"
                f", which was not listed, and was kept as received: {done.reason}"
            )
    return refused
