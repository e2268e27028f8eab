"""The C-STORE SCP (PS3.4 Annex B) against real senders: DCMTK storescu, pynetdicom, Orthanc C-MOVE.

What "stored unchanged" means here: a C-STORE carries the data set, not the File Meta Information
(PS3.7 §9.3.1; PS3.10 §7.1), so the SCP writes a new meta header.  The tests therefore compare the
**data set bytes** (everything after the meta group) and the Transfer Syntax UID where the sender
sends the file's own encoding (storescu, Orthanc), and **data set equality via pydicom** where the
sender re-encodes the elements itself (pynetdicom).
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE, _config
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from tests.peers import dcmtk
from tests.peers.orthanc import Orthanc, orthanc_factory  # noqa: F401  (pytest fixture)
from tests.peers.process import stop_process
from xdsi import ns
from xdsi.config import Settings
from xdsi.intake.scp import (
    STATUS_CANNOT_UNDERSTAND,
    STATUS_DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
    STATUS_OUT_OF_RESOURCES,
    STATUS_PROCESSING_FAILURE,
    STATUS_SUCCESS,
    StorageSCP,
)
from xdsi.store import open_store
from xdsi.store.base import PutResult, Store

AET = "XDSI_TEST"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"

# --- helpers ------------------------------------------------------------------------------------


def dataset_bytes(path: Path) -> bytes:
    """The encoded data set of a Part 10 file: what follows the File Meta group (PS3.10 §7.1).

    The meta group starts with (0002,0000) UL File Meta Information Group Length, so its end is
    at 128 + 4 + 12 + that length.
    """
    data = path.read_bytes()
    assert data[128:132] == b"DICM", f"{path} is not Part 10"
    group, element, vr, _, length = struct.unpack_from("<HH2sHI", data, 132)
    assert (group, element, vr) == (2, 0, b"UL"), f"{path}: meta group length missing"
    return data[144 + length :]


def transfer_syntax(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID)


def sop_instance_uid(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)


def stored_files(settings: Settings) -> set[Path]:
    """Every file under the data directory except the SQLite index and its journals."""
    index = Path(settings.effective_database_url.removeprefix("sqlite:///")).name
    return {p for p in settings.data_dir.rglob("*") if p.is_file() and not p.name.startswith(index)}


def scu(requested: list[tuple[str, str]]) -> AE:
    """A pynetdicom SCU proposing one context per (SOP class, transfer syntax)."""
    ae = AE(ae_title="PYSCU")
    for sop_class, ts in dict.fromkeys(requested):
        ae.add_requested_context(sop_class, ts)
    return ae


def c_store_file(port: int, path: Path) -> int:
    """Send one Part 10 file as it is encoded (pynetdicom chunked send: meta UIDs, raw data set).

    This is how a broken sender's data set reaches us: pynetdicom takes the command's UIDs from
    the meta header and does not look into the data set.
    """
    meta = pydicom.dcmread(path, stop_before_pixels=True).file_meta
    ae = scu([(meta.MediaStorageSOPClassUID, meta.TransferSyntaxUID)])
    assoc = ae.associate("127.0.0.1", port, ae_title=AET)
    assert assoc.is_established
    old = _config.STORE_SEND_CHUNKED_DATASET
    _config.STORE_SEND_CHUNKED_DATASET = True
    try:
        status = assoc.send_c_store(path)
    finally:
        _config.STORE_SEND_CHUNKED_DATASET = old
        assoc.release()
    assert status, "no C-STORE response"
    code: int = status.Status
    return code


def c_echo(port: int) -> int:
    ae = scu([(Verification, ExplicitVRLittleEndian)])
    assoc = ae.associate("127.0.0.1", port, ae_title=AET)
    assert assoc.is_established
    try:
        code: int = assoc.send_c_echo().Status
    finally:
        assoc.release()
    return code


def write_part10(path: Path, ds: Dataset, sop_class: str, sop_instance: str) -> Path:
    """Write ``ds`` as Part 10 with meta UIDs that may differ from the data set's own."""
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = UID(sop_class)
    ds.file_meta.MediaStorageSOPInstanceUID = UID(sop_instance)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.preamble = b"\x00" * 128
    # Not enforce_file_format: that would copy the data set's (bad) UIDs into the meta.
    ds.save_as(path, implicit_vr=False, little_endian=True)
    return path


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def settings(tmp_path: Path, free_port: int) -> Settings:
    return Settings(data_dir=tmp_path / "data", ae_title=AET, dicom_port=free_port)


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    opened = open_store(settings)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def scp(settings: Settings, store: Store) -> Iterator[StorageSCP]:
    with StorageSCP(settings, store) as running:
        yield running


# --- tests --------------------------------------------------------------------------------------


@pytest.mark.peers
def test_echo_answers_dcmtk_and_pynetdicom(scp: StorageSCP) -> None:
    port = scp.address[1]
    assert c_echo(port) == STATUS_SUCCESS
    result = dcmtk.echoscu(port, AET)
    assert result.returncode == 0, result.stderr


@pytest.mark.peers
def test_storescu_sends_every_sample_unconverted(
    scp: StorageSCP, store: Store, sample_files: list[Path], tmp_path: Path
) -> None:
    """DCMTK storescu (``-R -x?``: each file in its own TS): data set bytes and TS kept exactly.

    storescu normalises what it encodes (trailing padding dropped, encapsulated Pixel Data as OB,
    ...), so the expected bytes are DCMTK's own encoding of the file, ``dcmtk.dataset_as_sent``.
    """
    for result in dcmtk.storescu_unconverted(sample_files, scp.address[1], AET):
        assert result.returncode == 0, result.stderr
    for original in sample_files:
        record = store.get(sop_instance_uid(original))
        assert record is not None, f"{original.name} not stored"
        assert record.transfer_syntax_uid == transfer_syntax(original), original.name
        assert transfer_syntax(record.path) == transfer_syntax(original), original.name
        expected = dcmtk.dataset_as_sent(original, tmp_path)
        assert dataset_bytes(record.path) == expected, original.name


@pytest.mark.peers
@pytest.mark.parametrize(
    ("dcmconv_option", "ts"),
    [
        ("+tb", ns.TS_EXPLICIT_VR_BE),
        ("+td", ns.TS_DEFLATED_EXPLICIT_VR_LE),
        ("+ti", ns.TS_IMPLICIT_VR_LE),
    ],
    ids=["big-endian", "deflated", "implicit"],
)
def test_storescu_other_uncompressed_syntaxes_unconverted(
    scp: StorageSCP,
    store: Store,
    sample_files: list[Path],
    tmp_path: Path,
    dcmconv_option: str,
    ts: str,
) -> None:
    """Big Endian, Deflated and Implicit VR (none among the samples) arrive as sent, too.

    On the network a deflated stream of odd length carries one trailing NUL (PS3.5 §A.5: the
    data set is padded to even length); ``dcmconv``'s file does not, so the pad is expected.
    """
    converted = tmp_path / f"ct{dcmconv_option[1:]}.dcm"
    subprocess.run(
        [dcmtk.dcmtk_program("dcmconv"), dcmconv_option, str(sample_files[0]), str(converted)],
        check=True,
        capture_output=True,
    )
    assert transfer_syntax(converted) == ts
    for result in dcmtk.storescu_unconverted([converted], scp.address[1], AET):
        assert result.returncode == 0, result.stderr
    record = store.get(sop_instance_uid(converted))
    assert record is not None
    assert record.transfer_syntax_uid == ts
    expected = dcmtk.dataset_as_sent(converted, tmp_path)
    if ts == ns.TS_DEFLATED_EXPLICIT_VR_LE and len(expected) % 2:
        expected += b"\x00"
    assert dataset_bytes(record.path) == expected


def test_pynetdicom_scu_samples_dataset_equal(
    scp: StorageSCP, store: Store, sample_files: list[Path]
) -> None:
    """pynetdicom re-encodes the elements it sends: compare data sets with pydicom, and the TS."""
    originals = [pydicom.dcmread(f) for f in sample_files]
    ae = scu([(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID) for ds in originals])
    assoc = ae.associate("127.0.0.1", scp.address[1], ae_title=AET)
    assert assoc.is_established
    try:
        statuses = [assoc.send_c_store(ds).Status for ds in originals]
    finally:
        assoc.release()
    assert statuses == [STATUS_SUCCESS] * len(originals)
    for original in originals:
        record = store.get(original.SOPInstanceUID)
        assert record is not None
        stored = pydicom.dcmread(record.path)
        assert stored.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
        assert stored == original, original.SOPInstanceUID


def test_duplicate_is_success_and_logged(
    scp: StorageSCP, store: Store, sample_files: list[Path], caplog: pytest.LogCaptureFixture
) -> None:
    path = sample_files[0]
    caplog.set_level(logging.INFO, logger="xdsi.intake.scp")
    assert c_store_file(scp.address[1], path) == STATUS_SUCCESS
    assert c_store_file(scp.address[1], path) == STATUS_SUCCESS
    assert any("duplicate" in r.getMessage() for r in caplog.records)
    record = store.get(sop_instance_uid(path))
    assert record is not None
    assert dataset_bytes(record.path) == dataset_bytes(path)


def altered_sample(sample: Path, sop_instance_uid: str | None) -> Dataset:
    """A valid explicit VR LE sample in a new study, its SOP Instance UID replaced or removed."""
    ds = pydicom.dcmread(sample)
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    if sop_instance_uid is None:
        del ds.SOPInstanceUID
    else:
        ds.SOPInstanceUID = sop_instance_uid
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    return ds


@pytest.mark.parametrize(
    ("bad_uid", "in_command"),
    [
        (None, False),
        ("1.2.840.abc", True),
        ("1.2.03.4", True),
        ("../../etc/passwd", True),
        ("1." + "2" * 70, False),
    ],
    ids=["missing", "letters", "leading-zero", "path", "too-long"],
)
def test_bad_sop_instance_uid_refused_and_nothing_stored(
    scp: StorageSCP,
    store: Store,
    settings: Settings,
    tmp_path: Path,
    bad_uid: str | None,
    in_command: bool,
    sample_files: list[Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """0xC000 (PS3.4 Table B.2-1), nothing stored, and the SCP keeps serving (C-ECHO after).

    Where pynetdicom lets the bad UID into the command too, it reaches the store (which refuses
    it); otherwise the command names a valid UID and the data set alone is wrong.
    """
    ds = altered_sample(sample_files[0], bad_uid)
    command_uid = bad_uid if in_command and bad_uid is not None else generate_uid()
    path = write_part10(tmp_path / "bad.dcm", ds, ds.SOPClassUID, command_uid)

    before = stored_files(settings)
    caplog.set_level(logging.WARNING, logger="xdsi.intake.scp")
    assert c_store_file(scp.address[1], path) == STATUS_CANNOT_UNDERSTAND
    refusals = [r.getMessage() for r in caplog.records if "refused (0xC000)" in r.getMessage()]
    assert len(refusals) == 1
    assert "SOP Instance UID" in refusals[0], refusals[0]  # refused for the UID, nothing else
    assert store.study(ds.StudyInstanceUID) == []
    assert stored_files(settings) == before
    assert c_echo(scp.address[1]) == STATUS_SUCCESS


@pytest.mark.parametrize(
    ("field", "expected"),
    [("instance", STATUS_CANNOT_UNDERSTAND), ("class", STATUS_DATA_SET_DOES_NOT_MATCH_SOP_CLASS)],
    ids=["instance", "class"],
)
def test_command_and_data_set_disagree_refused(
    scp: StorageSCP,
    store: Store,
    settings: Settings,
    tmp_path: Path,
    sample_files: list[Path],
    field: str,
    expected: int,
) -> None:
    """Valid UIDs, but not the ones the command names: refused before anything is written."""
    ds = altered_sample(sample_files[0], generate_uid())
    sop_class = SECONDARY_CAPTURE if field == "class" else ds.SOPClassUID
    sop_instance = generate_uid() if field == "instance" else ds.SOPInstanceUID
    path = write_part10(tmp_path / "other.dcm", ds, sop_class, sop_instance)
    before = stored_files(settings)
    assert c_store_file(scp.address[1], path) == expected
    assert store.get(ds.SOPInstanceUID) is None
    assert store.get(sop_instance) is None
    assert stored_files(settings) == before


class _FailingStore:
    """Failure injection a real disk cannot produce on demand: ``put`` raises ``exc``."""

    def __init__(self, inner: Store, exc: BaseException) -> None:
        self._inner = inner
        self._exc = exc

    def put(self, source: BinaryIO | Path) -> PutResult:
        raise self._exc

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), STATUS_OUT_OF_RESOURCES),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), STATUS_OUT_OF_RESOURCES),
        (OSError(errno.EIO, "Input/output error"), STATUS_PROCESSING_FAILURE),
        (RuntimeError("bug"), STATUS_PROCESSING_FAILURE),
    ],
    ids=["enospc", "edquot", "eio", "bug"],
)
def test_store_failures_map_to_statuses(
    settings: Settings,
    store: Store,
    sample_files: list[Path],
    exc: BaseException,
    expected: int,
) -> None:
    failing: Any = _FailingStore(store, exc)
    with StorageSCP(settings, failing) as scp:
        assert c_store_file(scp.address[1], sample_files[0]) == expected
        assert c_echo(scp.address[1]) == STATUS_SUCCESS
    assert store.get(sop_instance_uid(sample_files[0])) is None


def test_wrapped_enospc_is_out_of_resources(
    settings: Settings, store: Store, sample_files: list[Path]
) -> None:
    """A store that wraps the OSError in its own StoreError still yields 0xA700."""
    from xdsi.errors import StoreError

    try:
        raise OSError(errno.ENOSPC, "No space left on device")
    except OSError as cause:
        wrapped = StoreError("cannot write the instance")
        wrapped.__cause__ = cause
    failing: Any = _FailingStore(store, wrapped)
    with StorageSCP(settings, failing) as scp:
        assert c_store_file(scp.address[1], sample_files[0]) == STATUS_OUT_OF_RESOURCES


def c_move_study(orthanc: Orthanc, study_uid: str, destination: str) -> Dataset:
    """Study Root C-MOVE (PS3.4 Annex C.4.2) of one study to ``destination``; the final status."""
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = study_uid
    ae = scu([(StudyRootQueryRetrieveInformationModelMove, ExplicitVRLittleEndian)])
    assoc = ae.associate("127.0.0.1", orthanc.dicom_port, ae_title=orthanc.aet)
    assert assoc.is_established
    try:
        model = StudyRootQueryRetrieveInformationModelMove
        responses = list(assoc.send_c_move(query, destination, model))
    finally:
        assoc.release()
    final: Dataset = responses[-1][0]
    return final


@pytest.mark.peers
@pytest.mark.slow
def test_orthanc_c_move_studies_to_scp(
    scp: StorageSCP,
    store: Store,
    sample_files: list[Path],
    tmp_path: Path,
    orthanc_factory: Any,  # noqa: F811
) -> None:
    """Orthanc, asked by C-MOVE, sends each whole study to us; every instance arrives unchanged.

    Orthanc (DCMTK inside) sends a stored file in its own TS when we accept it, and we accept
    every TS of the samples, so the data set bytes must be DCMTK's encoding of the original
    (``dcmtk.dataset_as_sent``).  Should Orthanc pick another TS, the decoded pixels must match.
    """
    orthanc = orthanc_factory(modalities={"xdsi": (AET, "127.0.0.1", scp.address[1])})
    for path in sample_files:
        orthanc.upload(path)
    by_study: dict[str, list[Path]] = {}
    for path in sample_files:
        uid = str(pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID)
        by_study.setdefault(uid, []).append(path)
    assert len(by_study) >= 2

    for study_uid, study_files in by_study.items():
        final = c_move_study(orthanc, study_uid, AET)
        assert final.Status == STATUS_SUCCESS, orthanc.log_tail()
        assert final.NumberOfCompletedSuboperations == len(study_files)
        assert len(store.study(study_uid)) == len(study_files)
        for original in study_files:
            record = store.get(sop_instance_uid(original))
            assert record is not None, original.name
            if record.transfer_syntax_uid == transfer_syntax(original):
                expected = dcmtk.dataset_as_sent(original, tmp_path)
                assert dataset_bytes(record.path) == expected, original.name
            else:
                got, want = pydicom.dcmread(record.path), pydicom.dcmread(original)
                assert (got.pixel_array == want.pixel_array).all(), original.name


def test_stop_then_port_is_free(settings: Settings, store: Store) -> None:
    scp = StorageSCP(settings, store)
    port = scp.start()[1]
    assert c_echo(port) == STATUS_SUCCESS
    scp.stop()
    assert not scp.running
    again = StorageSCP(settings, store)
    assert again.start()[1] == port
    again.stop()


def test_concurrent_associations_all_stored(
    store: Store, settings: Settings, sample_files: list[Path]
) -> None:
    """One association per sample, all at once: each in its own SCP thread, all stored.

    The limit is raised above the number of senders: an association stays counted until its
    thread ends, a moment after the release, so the default of 10 could reject a sender here.
    """
    roomy = dataclasses.replace(settings, max_associations=4 * len(sample_files))

    def send(path: Path) -> int:
        # Not c_store_file: its chunked mode is a pynetdicom global, toggled per call.
        ds = pydicom.dcmread(path)
        ae = scu([(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)])
        assoc = ae.associate("127.0.0.1", running.address[1], ae_title=AET)
        assert assoc.is_established
        try:
            code: int = assoc.send_c_store(ds).Status
        finally:
            assoc.release()
        return code

    running = StorageSCP(roomy, store)
    with running, ThreadPoolExecutor(len(sample_files)) as pool:
        statuses = list(pool.map(send, sample_files))
    assert statuses == [STATUS_SUCCESS] * len(sample_files)
    for path in sample_files:
        assert store.get(sop_instance_uid(path)) is not None, path.name


def test_association_limit_rejects_then_recovers(store: Store, settings: Settings) -> None:
    """Beyond ``max_associations`` an association is rejected (transient), later accepted."""
    limited = dataclasses.replace(settings, max_associations=1)
    with StorageSCP(limited, store) as scp:
        first = scu([(Verification, ExplicitVRLittleEndian)]).associate(
            "127.0.0.1", scp.address[1], ae_title=AET
        )
        assert first.is_established
        try:
            second = scu([(Verification, ExplicitVRLittleEndian)]).associate(
                "127.0.0.1", scp.address[1], ae_title=AET
            )
            assert second.is_rejected
        finally:
            first.release()
        deadline = time.monotonic() + 30
        while scp.ae.active_associations and time.monotonic() < deadline:
            time.sleep(0.05)
        assert c_echo(scp.address[1]) == STATUS_SUCCESS


# --- the ``xdsi scp`` command -------------------------------------------------------------------


def wait_for_echo(port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Poll with C-ECHO until the SCP in ``process`` answers (start-up includes imports)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "xdsi scp exited during start-up"
        ae = scu([(Verification, ExplicitVRLittleEndian)])
        ae.acse_timeout = ae.network_timeout = 5
        assoc = ae.associate("127.0.0.1", port, ae_title=AET)
        if assoc.is_established:
            assoc.release()
            return
        time.sleep(0.2)
    raise AssertionError("xdsi scp did not answer C-ECHO in time")


def xdsi_command(settings: Settings, *args: str) -> list[str]:
    return [sys.executable, "-m", "xdsi", "-v", "--data-dir", str(settings.data_dir), *args]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_xdsi_scp_command_stores_and_stops_on_signal(
    settings: Settings, tmp_path: Path, sample_files: list[Path], signum: int
) -> None:
    port = settings.dicom_port
    log_path = tmp_path / "scp.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            xdsi_command(settings, "scp", "--ae-title", AET, "--port", str(port)),
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_echo(port, process)
        assert c_store_file(port, sample_files[0]) == STATUS_SUCCESS
        process.send_signal(signum)
        assert process.wait(60) == 0, log_path.read_text()
    finally:
        stop_process(process, signal.SIGKILL)  # only if the test failed before it exited
    output = log_path.read_text()
    assert "Traceback" not in output
    assert "association accepted" in output and "stored" in output
    with open_store(settings) as store:
        record = store.get(sop_instance_uid(sample_files[0]))
    assert record is not None


def test_xdsi_scp_command_port_in_use_is_a_clear_error(settings: Settings) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", settings.dicom_port))
        busy.listen()
        result = subprocess.run(
            xdsi_command(settings, "scp", "--port", str(settings.dicom_port)),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 1
    assert "cannot listen on 127.0.0.1:" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("option", "value"),
    [("--ae-title", "MUCH_TOO_LONG_AE_TITLE"), ("--max-associations", "0"), ("--port", "70000")],
    ids=["ae-title", "max-associations", "port"],
)
def test_xdsi_scp_command_bad_setting_is_a_clear_error(
    settings: Settings, option: str, value: str
) -> None:
    result = subprocess.run(
        xdsi_command(settings, "scp", option, value), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    # the port is refused with the other settings (xdsi.config), the rest by the SCP itself
    by_config = option == "--port"
    expected = "configuration error: dicom_port" if by_config else "xdsi scp: invalid setting:"
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
