"""Helpers of the gateway tests: a PACS filled with the samples, xdsi in gateway mode over HTTP.

The oracle for a document fetched through the gateway: its data set bytes equal what DCMTK
encodes for the sample (``dataset_as_sent``: Orthanc and dcmqrscp both send through DCMTK, which
drops Data Set Trailing Padding and normalises encapsulated Pixel Data), its File Meta names the
sample's transfer syntax and SOP instance, and it is dataset-equal to the file the PACS holds
(apart from trailing padding, which DCMTK never sends, and the VR of encapsulated Pixel Data).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
from pydicom.filereader import _read_file_meta_info, read_preamble

from tests.client.live import serving
from tests.peers.dcmtk import dataset_as_sent
from xdsi.cli.retrieve import DEFAULT_TRANSFER_SYNTAXES
from xdsi.client.requester import Requester, request_for
from xdsi.client.result import RetrieveResult
from xdsi.config import Settings, load_settings
from xdsi.model import DocumentRequest
from xdsi.store.gateway import GatewayStore

TRAILING_PADDING = 0xFFFCFFFC


@dataclass(frozen=True)
class Sample:
    path: Path
    doc: DocumentRequest
    transfer_syntax_uid: str

    @property
    def uid(self) -> str:
        return self.doc.document_unique_id


def samples_of(files: list[Path], repository: str) -> list[Sample]:
    out = []
    for path in files:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        doc = DocumentRequest(
            str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID), repository
        )
        out.append(Sample(path, doc, str(ds.file_meta.TransferSyntaxUID)))
    return out


@dataclass
class Gateway:
    """xdsi serving a PACS over a loopback HTTP endpoint."""

    endpoint: str
    settings: Settings
    store: GatewayStore

    def retrieve(
        self, docs: list[DocumentRequest], out: Path, syntaxes: tuple[str, ...] = ()
    ) -> RetrieveResult:
        request = request_for(docs, syntaxes or DEFAULT_TRANSFER_SYNTAXES)
        return Requester(self.endpoint).retrieve(request, out)


@contextmanager
def gateway(data_dir: Path, pacs_ae: str, pacs_port: int, **overrides: Any) -> Iterator[Gateway]:
    """A :class:`GatewayStore` for the PACS at 127.0.0.1:``pacs_port`` behind the real app."""
    settings = load_settings(
        environ={},
        data_dir=data_dir,
        http_host="127.0.0.1",
        http_port=0,
        pacs_ae_title=pacs_ae,
        pacs_host="127.0.0.1",
        pacs_port=pacs_port,
        **overrides,
    )
    with GatewayStore(settings) as store, serving(settings, store) as endpoint:
        yield Gateway(endpoint, settings, store)


def data_set_bytes(part10: bytes) -> tuple[bytes, str]:
    """(data set bytes after the File Meta, the meta's transfer syntax) of a Part 10 file."""
    fh = io.BytesIO(part10)
    read_preamble(fh, False)
    meta = _read_file_meta_info(fh)
    return part10[fh.tell() :], str(meta.TransferSyntaxUID)


def assert_as_pacs_holds(sample: Sample, got: bytes, held: bytes | None, workdir: Path) -> None:
    """``got`` (a retrieved document) is the sample as the PACS sends it; see module docstring."""
    body, ts = data_set_bytes(got)
    assert ts == sample.transfer_syntax_uid
    assert body == dataset_as_sent(sample.path, workdir), sample.path.name
    ours = pydicom.dcmread(io.BytesIO(got))
    assert ours.SOPInstanceUID == sample.uid
    assert ours.file_meta.MediaStorageSOPInstanceUID == sample.uid
    if held is not None:
        theirs = pydicom.dcmread(io.BytesIO(held))
        if TRAILING_PADDING in theirs:
            del theirs[TRAILING_PADDING]
        # Values, not VRs: DCMTK writes encapsulated Pixel Data as OB where a file may say OW.
        assert [e.tag for e in ours] == [e.tag for e in theirs], sample.path.name
        for element in theirs:
            assert ours[element.tag].value == element.value, (sample.path.name, element.tag)


def codes(result: RetrieveResult) -> list[str]:
    return [e.error_code for e in result.errors]
