"""A real Orthanc (Debian package ``orthanc``) as a throw-away test peer.

``docs/libraries.md`` §6: Orthanc 1.10 runs without systemd as ``Orthanc <config.json>``, is ready
when ``GET /system`` answers, and stops on SIGTERM.  It has no bind-address option, so its DICOM
port listens on every interface: send it traffic on 127.0.0.1 only.

Use :func:`running_orthanc` (a context manager) or the :func:`orthanc_factory` fixture::

    from tests.peers.orthanc import orthanc_factory  # noqa: F401  (pytest fixture)

    def test_x(orthanc_factory):
        orthanc = orthanc_factory(modalities={"XDSI": ("XDSI", "127.0.0.1", 11112)})
        orthanc.upload(path)
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import need_peer
from tests.peers.process import stop_process

STARTUP_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
HOST = "127.0.0.1"
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
"""Orthanc's DICOMweb plugin (Debian ``orthanc-dicomweb``): WADO-RS under ``/dicom-web/``."""

DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"

Modality = tuple[str, str, int]
"""``(AE title, host, port)`` of a DICOM peer Orthanc may send to (``DicomModalities``)."""


def orthanc_program() -> str:
    """Path of the ``Orthanc`` binary; skips the test (fails if XDSI_REQUIRE_PEERS=1) if absent."""
    path = shutil.which("Orthanc") or shutil.which("Orthanc", path="/usr/sbin:/usr/local/sbin")
    need_peer("Orthanc", path is not None, "install the Debian package 'orthanc'")
    assert path is not None
    return path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Orthanc:
    """A running Orthanc: its AE title, ports, and a few REST helpers."""

    aet: str
    http_port: int
    dicom_port: int
    workdir: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.http_port}"

    def get(self, path: str) -> Any:
        response = requests.get(self.url + path, timeout=60)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: bytes | str, content_type: str = "application/json") -> Any:
        response = requests.post(
            self.url + path, data=body, headers={"Content-Type": content_type}, timeout=300
        )
        response.raise_for_status()
        return response.json()

    def upload(self, path: Path) -> str:
        """Store one Part 10 file through ``POST /instances``; returns Orthanc's instance id."""
        answer = self.post("/instances", path.read_bytes(), "application/dicom")
        instance_id: str = answer["ID"]
        return instance_id

    def log_tail(self, lines: int = 40) -> str:
        log = self.workdir / "orthanc.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM, wait, and SIGKILL only if Orthanc does not exit in time."""
        stop_process(self.process, signal.SIGTERM, STOP_TIMEOUT)


def write_config(
    workdir: Path,
    aet: str,
    http_port: int,
    dicom_port: int,
    modalities: Mapping[str, Modality],
    plugins: Sequence[str] = (),
) -> Path:
    """A minimal Orthanc configuration for tests; storage and index live under ``workdir``.

    ``plugins``: shared libraries to load (e.g. :data:`DICOMWEB_PLUGIN` for WADO-RS)."""
    config = {
        "Name": f"xdsi-test-{aet}",
        "StorageDirectory": str(workdir / "storage"),
        "IndexDirectory": str(workdir / "index"),
        "Plugins": list(plugins),
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "DicomAet": aet,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomCheckCalledAet": False,
        "DicomAlwaysAllowStore": True,
        "DicomAlwaysAllowFind": True,
        "DicomAlwaysAllowGet": True,
        "DicomAlwaysAllowMove": True,
        "DicomModalities": {name: list(m) for name, m in modalities.items()},
        "StorageCompression": False,
    }
    path = workdir / "config.json"
    path.write_text(json.dumps(config, indent=2))
    return path


@contextmanager
def running_orthanc(
    workdir: Path,
    modalities: Mapping[str, Modality] | None = None,
    aet: str = "ORTHANC",
    http_port: int | None = None,
    dicom_port: int | None = None,
    plugins: Sequence[str] = (),
) -> Iterator[Orthanc]:
    """Start Orthanc with a temporary configuration, yield it once ``/system`` answers, stop it.

    ``plugins``: shared libraries to load, e.g. :data:`DICOMWEB_PLUGIN` (package
    ``orthanc-dicomweb``) for WADO-RS at ``/dicom-web/``.
    """
    program = orthanc_program()
    workdir.mkdir(parents=True, exist_ok=True)
    http_port = http_port or _free_port()
    dicom_port = dicom_port or _free_port()
    config = write_config(workdir, aet, http_port, dicom_port, modalities or {}, plugins)
    with (workdir / "orthanc.log").open("wb") as log:
        process = subprocess.Popen(
            [program, str(config)], stdout=log, stderr=subprocess.STDOUT, cwd=workdir
        )
    orthanc = Orthanc(aet, http_port, dicom_port, workdir, process)
    try:
        _wait_ready(orthanc)
        yield orthanc
    finally:
        orthanc.stop()


def _wait_ready(orthanc: Orthanc) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if orthanc.process.poll() is not None:
            code = orthanc.process.returncode
            raise RuntimeError(f"Orthanc exited with {code}:\n{orthanc.log_tail()}")
        try:
            requests.get(orthanc.url + "/system", timeout=2).raise_for_status()
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError(f"Orthanc did not answer within {STARTUP_TIMEOUT} s:\n" + orthanc.log_tail())


@pytest.fixture
def orthanc_factory(tmp_path: Path) -> Iterator[Callable[..., Orthanc]]:
    """Start Orthancs on demand (``factory(modalities=..., aet=...)``); all stop at teardown."""
    with ExitStack() as stack:
        count = 0

        def start(
            modalities: Mapping[str, Modality] | None = None, aet: str = "ORTHANC"
        ) -> Orthanc:
            nonlocal count
            count += 1
            return stack.enter_context(
                running_orthanc(tmp_path / f"orthanc{count}", modalities, aet)
            )

        yield start
