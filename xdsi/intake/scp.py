"""C-STORE SCP: the DICOM door through which instances reach the store.

PS3.4 Annex B (Storage Service Class) as SCP, plus Verification (PS3.4 Annex A, C-ECHO).  Built on
pynetdicom: :func:`make_ae` configures the Application Entity, :func:`handle_store` is the one
``EVT_C_STORE`` handler (design note 7: a plain function returning a DIMSE status), and
:class:`StorageSCP` runs it on a socket with a start/stop API for ``xdsi scp`` and for tests.

The received data set is never decoded: the handler hands the bytes exactly as sent, behind a File
Meta Information header rebuilt from the C-STORE command and the presentation context (PS3.10 §7.1),
to :meth:`xdsi.store.base.Store.put`, which stores them crash-safely or refuses them.
"""

from __future__ import annotations

import errno
import io
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Protocol, cast

from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import AE, AllStoragePresentationContexts, VerificationPresentationContexts, evt
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.events import Event
from pynetdicom.transport import ThreadedAssociationServer

from xdsi import ns
from xdsi.config import MAX_TCP_PORT, Settings
from xdsi.errors import CorruptDicom, InvalidUID, NotDicom, StoreError
from xdsi.store.base import PutResult, PutStatus

if TYPE_CHECKING:
    from pathlib import Path
    from typing import BinaryIO

log = logging.getLogger(__name__)

# --- C-STORE response statuses (PS3.4 Annex B.2.3, Table B.2-1; PS3.7 Annex C) ------------------

STATUS_SUCCESS: Final = 0x0000
STATUS_OUT_OF_RESOURCES: Final = 0xA700
"""Refused: Out of Resources (PS3.4 Table B.2-1); transient, the sender may retry later."""
STATUS_CANNOT_UNDERSTAND: Final = 0xC000
"""Error: Cannot understand (PS3.4 Table B.2-1); the data set itself is refused, do not retry."""
STATUS_DATA_SET_DOES_NOT_MATCH_SOP_CLASS: Final = 0xA900
"""Error: Data Set does not match SOP Class (PS3.4 Table B.2-1)."""
STATUS_PROCESSING_FAILURE: Final = 0x0110
"""Processing failure (PS3.7 Annex C, a general failure status also valid for C-STORE)."""

SOP_CLASS_UID: Final = 0x00080016
SOP_INSTANCE_UID: Final = 0x00080018

MAX_ERROR_COMMENT: Final = 64
"""Error Comment (0000,0902) is LO: at most 64 characters (PS3.7 Table E.1-1)."""

RESOURCE_ERRNOS: Final = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.ENOMEM, errno.EMFILE, errno.ENFILE, errno.EFBIG}
)
"""``OSError`` numbers that mean "out of resources" rather than a fault of the data set."""

MAX_PDU_SIZE: Final = 128 * 1024
"""Maximum Length we announce for received P-DATA PDUs (PS3.8 Annex D.1).

pynetdicom handles each PDU in Python.  Measured with storescu sending 526 kB CT slices to a
store that discards them, on a loaded 2-core machine: 16 kB (pynetdicom's default) 75-76/s,
128 kB 81-111/s, "unlimited" (0) 8/s (not investigated further; a bound is wanted anyway, as
pynetdicom holds each PDU in memory whole).  131072 is also the largest PDU DCMTK tools offer.
"""

ACCEPTED_TRANSFER_SYNTAXES: Final[tuple[str, ...]] = (
    ns.TS_EXPLICIT_VR_LE,
    ns.TS_IMPLICIT_VR_LE,
    ns.TS_DEFLATED_EXPLICIT_VR_LE,
    ns.TS_EXPLICIT_VR_BE,
    ns.TS_RLE,
    ns.TS_JPEG_BASELINE,
    ns.TS_JPEG_EXTENDED,
    ns.TS_JPEG_LOSSLESS_P14,
    ns.TS_JPEG_LOSSLESS_SV1,
    ns.TS_JPEG_LS_LOSSLESS,
    ns.TS_JPEG_LS_NEAR_LOSSLESS,
    ns.TS_JPEG2000_LOSSLESS,
    ns.TS_JPEG2000,
    ns.TS_HTJ2K_LOSSLESS,
    ns.TS_HTJ2K_LOSSLESS_RPCL,
    ns.TS_HTJ2K,
)
"""Transfer syntaxes accepted for every storage SOP class (PS3.5 Annex A).

The instance is stored in the syntax it was sent in, so the SCP accepts every syntax in which
xdsi can later serve or transcode it; referenced-pixel syntaxes (JPIP) are left out because the
pixel data would not be in the store at all.  pynetdicom, as acceptor, takes the first syntax of
each proposed context that is in this set, so the sender's order of preference decides.
"""


def make_ae(settings: Settings) -> AE:
    """The Application Entity of the SCP, with its supported presentation contexts.

    Every storage SOP class pynetdicom knows (its ``AllStoragePresentationContexts``; the
    128-context limit of PS3.8 §9.3.2.2 binds requestors only) with
    :data:`ACCEPTED_TRANSFER_SYNTAXES`, and Verification with the uncompressed syntaxes.
    The called AE title is not checked, as most archives do not; any calling AE may store.

    Raises
    ------
    ValueError
        For an AE title, port or association limit that cannot be used.
    """
    if settings.max_associations < 1:
        raise ValueError(f"max_associations must be at least 1, got {settings.max_associations}")
    if not 0 <= settings.dicom_port <= MAX_TCP_PORT:
        raise ValueError(f"dicom_port must be 0..{MAX_TCP_PORT}, got {settings.dicom_port}")
    ae = AE(ae_title=settings.ae_title)  # ValueError for a title that is no AE (PS3.5 Table 6.2-1)
    ae.maximum_associations = settings.max_associations
    ae.maximum_pdu_size = MAX_PDU_SIZE
    ae.require_called_aet = False
    for context in AllStoragePresentationContexts:
        ae.add_supported_context(
            cast(str, context.abstract_syntax), list(ACCEPTED_TRANSFER_SYNTAXES)
        )
    for context in VerificationPresentationContexts:
        ae.add_supported_context(
            cast(str, context.abstract_syntax), [ns.TS_EXPLICIT_VR_LE, ns.TS_IMPLICIT_VR_LE]
        )
    return ae


class InstanceSink(Protocol):
    """Where received instances go: a :class:`~xdsi.store.base.Store`, or the gateway's cache."""

    def put(self, source: BinaryIO | Path) -> PutResult: ...


# --- Event handlers ---------------------------------------------------------------------------


def _failure(status: int, comment: str) -> Dataset:
    """A C-STORE response status with an Error Comment (PS3.7 Annex C)."""
    ds = Dataset()
    ds.Status = status
    ds.ErrorComment = comment[:MAX_ERROR_COMMENT]
    return ds


def _is_out_of_resources(exc: BaseException) -> bool:
    """True if ``exc`` or an exception it was raised from is a resource-type ``OSError``."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in RESOURCE_ERRNOS:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _peer(event: Event) -> str:
    remote = event.assoc.requestor
    return f"{remote.ae_title}@{remote.address}:{remote.port}"


def _identity_mismatch(request: C_STORE, part10: bytes) -> tuple[int, str] | None:
    """Status and comment if the data set is not the instance the C-STORE command names.

    The File Meta header is built from the command's Affected SOP Class/Instance UIDs while the
    store indexes the data set's own (0008,0016)/(0008,0018); a sender that lets them differ
    would leave a file whose meta contradicts its content.  Only those two elements are read
    (pixel data is not); a data set pydicom cannot read is left to the store to refuse.
    """
    try:
        ds = dcmread(
            io.BytesIO(part10),
            stop_before_pixels=True,
            specific_tags=[SOP_CLASS_UID, SOP_INSTANCE_UID],
        )
        sop_class, sop_instance = ds.get(SOP_CLASS_UID), ds.get(SOP_INSTANCE_UID)
    except Exception:  # pydicom raises many types; the store reports unreadable input properly
        return None
    if sop_class is not None and sop_class.value != request.AffectedSOPClassUID:
        return (
            STATUS_DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
            f"SOP Class UID {sop_class.value} is not the command's {request.AffectedSOPClassUID}",
        )
    if sop_instance is not None and sop_instance.value != request.AffectedSOPInstanceUID:
        return (
            STATUS_CANNOT_UNDERSTAND,
            "SOP Instance UID of the data set differs from the command's",
        )
    return None


def handle_store(event: Event, store: InstanceSink) -> Dataset | int:
    """``EVT_C_STORE`` handler: put the received instance into ``store``.

    Returns the C-STORE status (PS3.4 Table B.2-1):

    * ``0x0000`` Success: stored, replaced, or a duplicate kept (policy ``keep``; logged as such);
    * ``0xC000`` Cannot understand: not DICOM, unparsable, an invalid UID, or a data set whose
      SOP Instance UID is not the command's (nothing stored);
    * ``0xA900`` Data Set does not match SOP Class: its SOP Class UID is not the command's;
    * ``0xA700`` Out of resources: the store ran out of disk, quota, memory or file handles;
    * ``0x0110`` Processing failure: any other store failure (logged with its traceback).

    The data set is passed on exactly as received (``Event.encoded_dataset``, PS3.10 §7.1 meta
    built from the command and the presentation context), never decoded and re-encoded.  It is
    in memory (pynetdicom receives it whole; ``encoded_dataset`` adds one copy).  pynetdicom's
    ``_config.STORE_RECV_CHUNKED_DATASET`` would spool it to a temporary file instead, but that
    is a process-wide switch that would change every other pynetdicom user in the process.
    """
    request = cast(C_STORE, event.request)
    sop_instance = str(request.AffectedSOPInstanceUID or "")
    peer = _peer(event)
    part10 = event.encoded_dataset()
    mismatch = _identity_mismatch(request, part10)
    if mismatch is not None:
        status, comment = mismatch
        log.warning("C-STORE %s from %s refused (0x%04X): %s", sop_instance, peer, status, comment)
        return _failure(status, comment)
    try:
        result = store.put(io.BytesIO(part10))
    except (NotDicom, CorruptDicom, InvalidUID) as exc:
        log.warning("C-STORE %s from %s refused (0xC000): %s", sop_instance, peer, exc)
        return _failure(STATUS_CANNOT_UNDERSTAND, str(exc))
    except (OSError, StoreError) as exc:
        if _is_out_of_resources(exc):
            log.error("C-STORE %s from %s: out of resources (0xA700): %s", sop_instance, peer, exc)
            return _failure(STATUS_OUT_OF_RESOURCES, f"out of resources: {exc}")
        log.error("C-STORE %s from %s failed (0x0110): %s", sop_instance, peer, exc, exc_info=exc)
        return _failure(STATUS_PROCESSING_FAILURE, f"store failed: {exc}")
    except Exception as exc:
        # A bug must not become pynetdicom's generic 0xC211 without a trace in our log.
        log.exception("C-STORE %s from %s: unexpected error (0x0110)", sop_instance, peer)
        return _failure(STATUS_PROCESSING_FAILURE, f"internal error: {type(exc).__name__}")

    record = result.record
    if result.status is PutStatus.DUPLICATE:
        log.info(
            "C-STORE %s from %s: duplicate, kept the stored copy%s",
            record.sop_instance_uid,
            peer,
            f" ({result.detail})" if result.detail else "",
        )
    else:
        log.info(
            "C-STORE %s from %s: %s (%s, %d bytes, study %s)",
            record.sop_instance_uid,
            peer,
            result.status.value,
            record.transfer_syntax_uid,
            record.size,
            record.study_instance_uid,
        )
    return STATUS_SUCCESS


def handle_echo(event: Event) -> int:
    """``EVT_C_ECHO`` handler (PS3.4 Annex A): always success."""
    log.debug("C-ECHO from %s", _peer(event))
    return STATUS_SUCCESS


def _log_association(event: Event) -> None:
    """Listener for association events; pynetdicom ignores what notification handlers raise."""
    log.info("association %s: %s", event.event.name.removeprefix("EVT_").lower(), _peer(event))


_ASSOCIATION_EVENTS: Final = (evt.EVT_ACCEPTED, evt.EVT_REJECTED, evt.EVT_RELEASED, evt.EVT_ABORTED)


def event_handlers(store: InstanceSink) -> list[Any]:
    """The ``evt_handlers`` list binding :func:`handle_store` to ``store`` plus the listeners."""
    handlers: list[Any] = [
        (evt.EVT_C_STORE, handle_store, [store]),
        (evt.EVT_C_ECHO, handle_echo),
    ]
    handlers.extend((event, _log_association) for event in _ASSOCIATION_EVENTS)
    return handlers


# --- Running the SCP ---------------------------------------------------------------------------


@dataclass
class StorageSCP:
    """A C-STORE SCP serving ``store`` at ``settings.dicom_host:dicom_port``.

    Use as a context manager (tests) or call :meth:`start` / :meth:`stop`.  Each association runs
    in its own pynetdicom thread, so ``store.put`` must be thread-safe (the SOAP service shares the
    store the same way).
    """

    settings: Settings
    store: InstanceSink
    ae: AE = field(init=False)
    _server: ThreadedAssociationServer | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.ae = make_ae(self.settings)

    def start(self) -> tuple[str, int]:
        """Start listening in a background thread; returns the bound ``(host, port)``."""
        if self._server is not None:
            raise RuntimeError("the SCP is already running")
        address = (self.settings.dicom_host, self.settings.dicom_port)
        self._server = self.ae.start_server(
            address, block=False, evt_handlers=event_handlers(self.store)
        )
        host, port = self.address
        log.info("C-STORE SCP %s listening on %s:%d", self.settings.ae_title, host, port)
        return host, port

    @property
    def address(self) -> tuple[str, int]:
        """The bound ``(host, port)`` (the real port when ``dicom_port`` was 0)."""
        if self._server is None:
            raise RuntimeError("the SCP is not running")
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def running(self) -> bool:
        return self._server is not None

    def stop(self, grace: float = 10.0) -> None:
        """Stop accepting, let open associations finish for ``grace`` seconds, abort the rest.

        An aborted transfer leaves nothing behind: ``put`` only ever commits whole instances.
        """
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        deadline = time.monotonic() + grace
        active: Sequence[threading.Thread] = list(self.ae.active_associations)
        for assoc in active:
            assoc.join(max(0.0, deadline - time.monotonic()))
        left = [a for a in self.ae.active_associations if a.is_alive()]
        if left:
            log.warning("aborting %d association(s) still open after %.0f s", len(left), grace)
        self.ae.shutdown()
        log.info("C-STORE SCP %s stopped", self.settings.ae_title)

    def __enter__(self) -> StorageSCP:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve(
    settings: Settings,
    store: InstanceSink,
    block: bool = True,
    stop_event: threading.Event | None = None,
) -> StorageSCP:
    """Run the C-STORE SCP.

    With ``block=False`` return the started :class:`StorageSCP` (the caller stops it).  With
    ``block=True`` wait until ``stop_event`` is set (the ``xdsi scp`` command sets it from
    SIGINT/SIGTERM) or ``KeyboardInterrupt``, then stop cleanly and return the stopped SCP.
    """
    scp = StorageSCP(settings, store)
    scp.start()
    if not block:
        return scp
    stop = stop_event or threading.Event()
    try:
        # A timed wait keeps the main thread responsive to signals on every platform.
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        log.info("interrupted")
    finally:
        scp.stop()
    return scp
