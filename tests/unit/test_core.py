"""Tests of the shared core: UID grammar, Settings loading, status computation."""

from __future__ import annotations

from pathlib import Path

import pytest

from xdsi import ns
from xdsi.config import load_settings
from xdsi.errors import InvalidUID
from xdsi.model import RegistryError, Severity, Status, status_of
from xdsi.uids import is_valid_uid, require_uid


@pytest.mark.parametrize(
    "value",
    ["1.2.840.10008.1.2.1", "0", "1.0.3", "1." + "2" * 62],
)
def test_valid_uids(value: str) -> None:
    assert is_valid_uid(value)
    assert require_uid(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "",
        "../../etc",
        "1.2.",
        ".1.2",
        "1..2",
        "1.02",
        "1.2 ",
        "1.2/3",
        "1." + "2" * 63,
        None,
        12,
        "1.2\x00",
    ],
)
def test_invalid_uids_refused(value: object) -> None:
    assert not is_valid_uid(value)
    with pytest.raises(InvalidUID):
        require_uid(value)


def test_settings_precedence(tmp_path: Path) -> None:
    ini = tmp_path / "x.ini"
    ini.write_text("[xdsi]\nhttp_port = 9000\nrepository_unique_ids = 1.2.3, 1.2.4\nthreads = 3\n")
    env = {"XDSI_HTTP_PORT": "9100", "XDSI_CHECK_REPOSITORY_ID": "no"}
    s = load_settings(ini, environ=env, threads=5)
    assert s.http_port == 9100
    assert s.repository_unique_ids == ("1.2.3", "1.2.4")
    assert s.check_repository_id is False
    assert s.threads == 5
    assert s.effective_database_url.startswith("sqlite:///")


def test_settings_reject_typos_and_bad_values(tmp_path: Path) -> None:
    ini = tmp_path / "x.ini"
    ini.write_text("[xdsi]\nhttp_prot = 9000\n")
    with pytest.raises(ValueError, match="unknown setting"):
        load_settings(ini, environ={})
    with pytest.raises(ValueError, match="integer"):
        load_settings(None, environ={"XDSI_HTTP_PORT": "eighty"})
    with pytest.raises(ValueError, match="one of"):
        load_settings(None, environ={"XDSI_NOT_FOUND_CODE": "Nope"})
    # getaddrinfo() would keep the low 16 bits: 99999 served on 34463
    with pytest.raises(ValueError, match=r"http_port must be 0\.\.65535"):
        load_settings(None, environ={}, http_port=99999)
    with pytest.raises(ValueError, match=r"dicom_port must be 0\.\.65535"):
        load_settings(None, environ={"XDSI_DICOM_PORT": "-1"})
    with pytest.raises(ValueError, match=r"pacs_port must be 1\.\.65535"):
        load_settings(None, environ={}, pacs_port=0)
    assert load_settings(None, environ={}, http_port=0, dicom_port=65535).http_port == 0


def test_sample_ini_loads() -> None:
    sample = Path(__file__).resolve().parents[2] / "samples" / "xdsi.ini"
    s = load_settings(sample, environ={})
    assert s.endpoint_path == "/xdsi/ImagingDocumentSource"


def _err(sev: Severity = Severity.ERROR) -> RegistryError:
    return RegistryError(ns.XDS_DOCUMENT_UNIQUE_ID_ERROR, "x", sev, "1.2")


def test_status_of() -> None:
    assert status_of([object()], []) is Status.SUCCESS
    assert status_of([object()], [_err(Severity.WARNING)]) is Status.SUCCESS
    assert status_of([object()], [_err()]) is Status.PARTIAL_SUCCESS
    assert status_of([], [_err()]) is Status.FAILURE
    assert Status.PARTIAL_SUCCESS.value == ns.STATUS_PARTIAL_SUCCESS
