"""Fixtures shared by the whole suite.

* ``samples_dir`` / ``sample_files``: the committed demo instances (``samples/dicom``).
* ``need_peer(name, ok, why)``: skip a test whose outside peer (PostgreSQL, dcmtk, Orthanc, JAX-WS)
  is missing, or fail it when ``XDSI_REQUIRE_PEERS=1`` (set by ``.ci/run``).
* ``free_port``: a free TCP port on 127.0.0.1.
* ``xdsi``: the real command line, in-process, returning a :class:`Run`.
* An autouse guard that refuses socket connections to anything but loopback (design note 12).
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from xdsi.cli import main

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples" / "dicom"


def peers_required() -> bool:
    return os.environ.get("XDSI_REQUIRE_PEERS", "") == "1"


def need_peer(name: str, available: bool, why: str = "") -> None:
    """Skip (or, with XDSI_REQUIRE_PEERS=1, fail) when an outside peer is missing."""
    if available:
        return
    message = f"peer {name} not available{': ' + why if why else ''}"
    if peers_required():
        pytest.fail(message + " (XDSI_REQUIRE_PEERS=1)")
    pytest.skip(message)


def need_program(program: str) -> str:
    """Path of ``program`` on PATH, or skip/fail via :func:`need_peer`."""
    path = shutil.which(program)
    need_peer(program, path is not None, "not on PATH")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    return SAMPLES


@pytest.fixture(scope="session")
def sample_files() -> list[Path]:
    files = sorted(p for p in SAMPLES.rglob("*.dcm"))
    assert files, "samples/dicom is empty"
    return files


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def free_port() -> int:
    return _free_port()


@pytest.fixture(scope="session")
def free_port_factory() -> Callable[[], int]:
    return _free_port


_LOOPBACK_PREFIXES = ("127.", "::1", "localhost", "0:0:0:0:0:0:0:1")


def _is_loopback(address: object) -> bool:
    if isinstance(address, tuple) and address:
        host = str(address[0])
        return host.startswith(_LOOPBACK_PREFIXES) or host in ("", "0.0.0.0")
    return True  # AF_UNIX paths and the like


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests talk to servers they start on loopback, never to the outside network."""
    original = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> None:
        if not _is_loopback(address):
            raise AssertionError(f"test tried to connect to non-loopback address {address!r}")
        original(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded)
    yield


@dataclass(frozen=True)
class Run:
    """Exit status and output of one in-process ``xdsi`` command."""

    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def xdsi(capsys: pytest.CaptureFixture[str]) -> Callable[..., Run]:
    """Run the real ``xdsi`` command line in-process (``xdsi.cli.main``) on one data directory.

    In-process because each interpreter start costs seconds on a loaded CI machine; tests that
    need a process to kill run ``python -m xdsi`` instead.
    """

    def run(data_dir: Path, *args: str | Path) -> Run:
        capsys.readouterr()
        code = main(["--data-dir", str(data_dir), *map(str, args)])
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run
