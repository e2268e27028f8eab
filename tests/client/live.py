"""A real xdsi endpoint on a loopback port, for the client's end-to-end and interop tests.

The server is the real one (``xdsi.soap.app.make_app`` under waitress, as ``xdsi serve`` runs it)
over a real SQLite store filled with the sample instances; the tests talk to it over a socket.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
import pytest

from xdsi.config import Settings, load_settings
from xdsi.model import Outcome, RetrieveImagingDocumentSetRequest
from xdsi.store.base import Store

Retrieve = Callable[[RetrieveImagingDocumentSetRequest], Outcome]


@dataclass(frozen=True)
class LiveServer:
    endpoint: str
    settings: Settings
    files_by_uid: dict[str, Path]
    """Sample file of each stored SOP Instance UID (what a byte-exact retrieve must return)."""
    study_of: dict[str, tuple[str, str]]
    """(study, series) of each stored SOP Instance UID."""


def sample_index(files: list[Path]) -> tuple[dict[str, Path], dict[str, tuple[str, str]]]:
    by_uid: dict[str, Path] = {}
    study_of: dict[str, tuple[str, str]] = {}
    for path in files:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        by_uid[str(ds.SOPInstanceUID)] = path
        study_of[str(ds.SOPInstanceUID)] = (str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID))
    return by_uid, study_of


@contextmanager
def live_server(
    data_dir: Path,
    port: int,
    sample_files: list[Path],
    *,
    retrieve: Retrieve | None = None,
    **overrides: Any,
) -> Iterator[LiveServer]:
    """Serve the samples at ``http://127.0.0.1:<port>/xdsi/ImagingDocumentSource``.

    ``overrides`` are further :class:`Settings` fields; ``retrieve`` replaces the RAD-69
    transaction (failure injection only: a payload that breaks mid-stream).
    """
    from xdsi.store import open_store

    settings = load_settings(
        environ={}, data_dir=data_dir, http_host="127.0.0.1", http_port=port, **overrides
    )
    store = open_store(settings)
    try:
        for path in sample_files:
            store.put(path)
        with serving(settings, store, retrieve) as endpoint:
            by_uid, study_of = sample_index(sample_files)
            yield LiveServer(endpoint, settings, by_uid, study_of)
    finally:
        store.close()


@contextmanager
def serving(settings: Settings, store: Store, retrieve: Retrieve | None = None) -> Iterator[str]:
    """Serve ``store`` with the real app under waitress in a thread; yield the endpoint URL."""
    from xdsi.soap.app import make_app
    from xdsi.soap.server import create_server, stop_server

    app = make_app(settings, store) if retrieve is None else make_app(settings, retrieve=retrieve)
    server = create_server(app, settings)
    thread = threading.Thread(target=server.run, name="xdsi-live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}{settings.endpoint_path}"
    finally:
        stop_server(server, thread)


@pytest.fixture(scope="module")
def live(
    tmp_path_factory: pytest.TempPathFactory,
    free_port_factory: Callable[[], int],
    sample_files: list[Path],
) -> Iterator[LiveServer]:
    """One server per test module on a free loopback port, its store filled with the samples."""
    with live_server(
        tmp_path_factory.mktemp("live-data"), free_port_factory(), sample_files
    ) as server:
        yield server
