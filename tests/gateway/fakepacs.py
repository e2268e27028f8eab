"""A small pynetdicom Query/Retrieve SCP for failures real archives do not produce on demand.

Failure injection only (CLAUDE rules: mocks only where a real peer cannot produce the fault):
one instance whose C-GET sub-operation fails, and a PACS that answers too slowly.  It serves
three Explicit VR LE MR instances of one series (copies of the sample ``mr_small_explicit.dcm``).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE, evt
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    MRImageStorage,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
)

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"


@dataclass
class FakePacs:
    port: int
    instances: list[Dataset]
    get_delay: float = 0.0
    stopping: threading.Event = field(default_factory=threading.Event)
    broken: set[str] = field(default_factory=set)
    """SOP Instance UIDs whose C-GET sub-operation fails (sent with an SOP class the requester
    did not propose, so pynetdicom counts it failed and lists it in the final response)."""

    @property
    def study(self) -> str:
        return str(self.instances[0].StudyInstanceUID)

    @property
    def series(self) -> str:
        return str(self.instances[0].SeriesInstanceUID)

    def uids(self) -> list[str]:
        return [str(ds.SOPInstanceUID) for ds in self.instances]


def three_instances(sample: Path) -> list[Dataset]:
    source = pydicom.dcmread(sample)
    out = []
    for number in range(1, 4):
        ds = copy.deepcopy(source)
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = number
        out.append(ds)
    return out


def _handle_find(event: Any, pacs: FakePacs) -> Iterator[tuple[int, Dataset | None]]:
    query = event.identifier
    for ds in pacs.instances:
        if query.get("SeriesInstanceUID") not in ("", None, ds.SeriesInstanceUID):
            continue
        answer = Dataset()
        for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID"):
            setattr(answer, keyword, getattr(ds, keyword))
        answer.QueryRetrieveLevel = "IMAGE"
        yield 0xFF00, answer


def _handle_get(event: Any, pacs: FakePacs) -> Iterator[Any]:
    query = event.identifier
    wanted = query.get("SOPInstanceUID") or None
    chosen = [ds for ds in pacs.instances if wanted in (None, ds.SOPInstanceUID)]
    yield len(chosen)
    for ds in chosen:
        if pacs.get_delay and pacs.stopping.wait(pacs.get_delay):
            return
        if str(ds.SOPInstanceUID) in pacs.broken:
            ds = copy.deepcopy(ds)
            ds.SOPClassUID = SECONDARY_CAPTURE
        yield 0xFF00, ds


@contextmanager
def fake_pacs(
    sample: Path, port: int, *, get_delay: float = 0.0, broken: int | None = None
) -> Iterator[FakePacs]:
    """Run the fake as ``FAKEPACS`` on 127.0.0.1:``port``; ``broken`` is an instance index."""
    pacs = FakePacs(port, three_instances(sample), get_delay)
    if broken is not None:
        pacs.broken.add(str(pacs.instances[broken].SOPInstanceUID))
    ae = AE(ae_title="FAKEPACS")
    ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind)
    ae.add_supported_context(StudyRootQueryRetrieveInformationModelGet)
    ae.add_supported_context(MRImageStorage, ExplicitVRLittleEndian, scu_role=True, scp_role=True)
    handlers = [(evt.EVT_C_FIND, _handle_find, [pacs]), (evt.EVT_C_GET, _handle_get, [pacs])]
    server = ae.start_server(("127.0.0.1", port), block=False, evt_handlers=handlers)
    assert server is not None
    try:
        yield pacs
    finally:
        pacs.stopping.set()
        server.shutdown()
        ae.shutdown()
