"""Gateway mode against DCMTK's ``dcmqrscp`` as the PACS (a second real peer).

The test writes the dcmqrscp configuration (one storage area ``DCMQRSCP``, our C-MOVE
destination in its HostTable), indexes the samples into it with ``dcmqridx``, and runs it on a
loopback port (it forks one process per association and listens on every interface:
the tests send to 127.0.0.1 only).  dcmqrscp checks the called AE title, which gives the
"association refused" fault with a real peer.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.gateway.support import Sample, assert_as_pacs_holds, codes, gateway, samples_of
from tests.peers.dcmtk import dcmtk_program, echoscu
from tests.peers.process import stop_process
from xdsi import ns
from xdsi.config import Settings
from xdsi.model import Status

AET = "DCMQRSCP"
REPOSITORY = Settings().repository_unique_id


def _wait_ready(port: int, process: subprocess.Popen[bytes]) -> None:
    """Wait until a C-ECHO succeeds (a bare TCP probe makes dcmqrscp -s log a failed reject)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dcmqrscp exited with {process.returncode}")
        if echoscu(port, AET, timeout=10).returncode == 0:
            return
        time.sleep(0.2)
    raise RuntimeError("dcmqrscp did not answer C-ECHO within 30 s")


@pytest.fixture(scope="module")
def dcmqrscp(
    tmp_path_factory: pytest.TempPathFactory,
    sample_files: list[Path],
    free_port_factory: Callable[[], int],
) -> Iterator[tuple[int, int]]:
    """dcmqrscp holding the samples; yields (its port, our C-MOVE destination port)."""
    program = dcmtk_program("dcmqrscp")
    workdir = tmp_path_factory.mktemp("dcmqrscp")
    storage = workdir / "storage"
    storage.mkdir()
    copies = []
    for i, path in enumerate(sample_files):
        copy = storage / f"{i:03d}_{path.name}"
        shutil.copyfile(path, copy)
        copies.append(str(copy))
    subprocess.run(
        [dcmtk_program("dcmqridx"), str(storage), *copies], check=True, capture_output=True
    )
    port, move_port = free_port_factory(), free_port_factory()
    config = workdir / "dcmqrscp.cfg"
    config.write_text(
        f"NetworkTCPPort = {port}\nMaxPDUSize = 131072\nMaxAssociations = 16\n"
        f"HostTable BEGIN\nxdsi = (XDSI, 127.0.0.1, {move_port})\nHostTable END\n"
        "VendorTable BEGIN\nVendorTable END\n"
        f"AETable BEGIN\n{AET} {storage} R (200, 1024mb) ANY\nAETable END\n"
    )
    with (workdir / "dcmqrscp.log").open("wb") as log:
        process = subprocess.Popen(
            [program, "-v", "-c", str(config), str(port)], stdout=log, stderr=log
        )
    try:
        _wait_ready(port, process)
        yield port, move_port
    finally:
        stop_process(process, signal.SIGTERM, timeout=10)


@pytest.fixture(scope="module")
def samples(sample_files: list[Path]) -> list[Sample]:
    return samples_of(sample_files, REPOSITORY)


@pytest.mark.parametrize("method", ["c-get", "c-move"])
def test_every_sample_from_dcmqrscp(
    dcmqrscp: tuple[int, int], samples: list[Sample], tmp_path: Path, method: str
) -> None:
    """dcmqrscp (default options) neither accepts nor proposes compressed syntaxes and cannot
    convert compressed files: those instances fail on its side, and are reported as
    urn:dicom:wado:0014 while the uncompressed ones are delivered (PartialSuccess).  Its C-FIND
    gives no SOP Class UID, so the C-GET proposes classes from the Modality."""
    port, move_port = dcmqrscp
    overrides = {"pacs_retrieve": method, "dicom_port": move_port, "pacs_stream": False}
    with gateway(tmp_path / "data", AET, port, **overrides) as gw:
        result = gw.retrieve([s.doc for s in samples], tmp_path / "out")
    plain = [s for s in samples if s.transfer_syntax_uid in ns.UNCOMPRESSED_TRANSFER_SYNTAXES]
    compressed = [s for s in samples if s not in plain]
    assert result.status is Status.PARTIAL_SUCCESS
    assert [d.document_unique_id for d in result.documents] == [s.uid for s in plain]
    assert codes(result) == [ns.WADO_PROCESSING_FAILURE] * len(compressed)
    assert [e.location for e in result.errors] == [s.uid for s in compressed]
    for s in plain:
        got = (tmp_path / "out" / f"{s.uid}.dcm").read_bytes()
        assert_as_pacs_holds(s, got, s.path.read_bytes(), tmp_path)


def test_streaming_from_dcmqrscp(
    dcmqrscp: tuple[int, int], samples: list[Sample], tmp_path: Path
) -> None:
    port, _move_port = dcmqrscp
    plain = [s for s in samples if s.transfer_syntax_uid in ns.UNCOMPRESSED_TRANSFER_SYNTAXES]
    with gateway(tmp_path / "data", AET, port) as gw:
        result = gw.retrieve([s.doc for s in plain], tmp_path / "out")
    assert result.status is Status.SUCCESS, result.errors
    for s in plain:
        got = (tmp_path / "out" / f"{s.uid}.dcm").read_bytes()
        assert_as_pacs_holds(s, got, s.path.read_bytes(), tmp_path)


def test_association_refused(
    dcmqrscp: tuple[int, int], samples: list[Sample], tmp_path: Path
) -> None:
    """A called AE title dcmqrscp does not serve: every document XDSRepositoryError saying the
    association was rejected; the same gateway then serves with the right title."""
    port, _move_port = dcmqrscp
    with gateway(tmp_path / "wrong", "NOT_THERE", port) as gw:
        result = gw.retrieve([s.doc for s in samples[:3]], tmp_path / "out")
    assert result.status is Status.FAILURE
    assert codes(result) == [ns.XDS_REPOSITORY_ERROR] * 3
    context = result.errors[0].code_context
    # dcmqrscp's child process sends A-ASSOCIATE-RJ and exits at once; about one run in twenty
    # the connection is torn down before pynetdicom has read the RJ, and it reports an abort.
    # Both are the documented answer for an association that could not be had.
    assert "rejected the association" in context or "cannot be reached" in context
    assert "NOT_THERE@127.0.0.1" in context
