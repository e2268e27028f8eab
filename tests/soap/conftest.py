"""Fixtures of the SOAP tests: a real store filled with ``samples/dicom`` and the real RAD-69
transaction behind the WSGI application."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest

from tests.soap.support import Doc
from xdsi.config import Settings, load_settings
from xdsi.model import Outcome, RetrieveImagingDocumentSetRequest
from xdsi.soap import make_app
from xdsi.store import open_store
from xdsi.store.base import Store
from xdsi.transactions.rad69 import retrieve_imaging_document_set


@dataclass(frozen=True)
class Sample:
    path: Path
    doc: Doc
    transfer_syntax: str

    @property
    def data(self) -> bytes:
        return self.path.read_bytes()


@pytest.fixture(scope="session")
def samples(sample_files: list[Path]) -> dict[str, Sample]:
    """SOP Instance UID → sample, read from the files themselves (no hard-coded UIDs)."""
    out: dict[str, Sample] = {}
    for path in sample_files:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        doc = Doc(str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID))
        out[doc.sop] = Sample(path, doc, str(ds.file_meta.TransferSyntaxUID))
    return out


@pytest.fixture(scope="session")
def ct_study(samples: dict[str, Sample], samples_dir: Path) -> list[Sample]:
    """The images of the "ct" demo study (patient DEMO001, several series)."""
    chosen = [s for s in samples.values() if s.path.is_relative_to(samples_dir / "ct")]
    assert len({s.doc.series for s in chosen}) >= 2
    return sorted(chosen, key=lambda s: s.path)


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return load_settings(environ={}, data_dir=tmp_path_factory.mktemp("soap-store"))


@pytest.fixture(scope="session")
def store(settings: Settings, sample_files: list[Path]) -> Iterator[Store]:
    store = open_store(settings)
    for path in sample_files:
        store.put(path)
    yield store
    store.close()


@pytest.fixture(scope="session")
def retrieve(
    store: Store, settings: Settings
) -> Callable[[RetrieveImagingDocumentSetRequest], Outcome]:
    def run(request: RetrieveImagingDocumentSetRequest) -> Outcome:
        return retrieve_imaging_document_set(request, store, settings)

    return run


@pytest.fixture(scope="session")
def app(settings: Settings, store: Store):  # type: ignore[no-untyped-def]
    return make_app(settings, store)
