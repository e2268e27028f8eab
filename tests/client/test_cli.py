"""``xdsi retrieve``: option handling and exit codes, end to end against the real endpoint."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from tests.client.live import LiveServer
from xdsi import ns
from xdsi.cli import build_parser
from xdsi.cli import retrieve as retrieve_command
from xdsi.cli.retrieve import UsageError, select_documents
from xdsi.client.kos import read_kos
from xdsi.config import load_settings
from xdsi.errors import InvalidManifest


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run ``xdsi retrieve`` in-process, as ``xdsi.cli.main`` wires it."""
    args: argparse.Namespace = build_parser([retrieve_command]).parse_args(["retrieve", *argv])
    code = retrieve_command.run(args, load_settings(environ={}))
    out, err = capsys.readouterr()
    return code, out, err


# --- choosing the documents --------------------------------------------------------------------


def _select(**options: object) -> list[str]:
    values: dict[str, object] = {
        "kos": None,
        "study": None,
        "series": None,
        "instances": (),
        "repository_id": None,
        "home_community_id": None,
    }
    values.update(options)
    return [d.document_unique_id for d in select_documents(**values)]  # type: ignore[arg-type]


def test_kos_gives_every_instance_with_its_retrieve_location(kos_path: Path) -> None:
    documents = select_documents(
        kos=kos_path,
        study=None,
        series=None,
        instances=(),
        repository_id=None,
        home_community_id=None,
    )
    assert documents == read_kos(kos_path)


def test_repository_id_overrides_the_kos(kos_path: Path) -> None:
    documents = select_documents(
        kos=kos_path,
        study=None,
        series=None,
        instances=(),
        repository_id="1.2.3",
        home_community_id=None,
    )
    assert {d.repository_unique_id for d in documents} == {"1.2.3"}


def test_kos_filtered_by_series_and_instance(kos_path: Path) -> None:
    documents = read_kos(kos_path)
    series = documents[-1].series_instance_uid
    in_series = [d.document_unique_id for d in documents if d.series_instance_uid == series]
    assert _select(kos=kos_path, series=series) == in_series
    assert _select(kos=kos_path, instances=[in_series[1]]) == [in_series[1]]
    with pytest.raises(UsageError, match="not referenced"):
        _select(kos=kos_path, series=series, instances=[documents[0].document_unique_id])
    with pytest.raises(UsageError, match="no instance"):
        _select(kos=kos_path, study="1.2.3")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "--study"),
        ({"study": "1.2.3"}, "SOP Instance UIDs"),
        ({"study": "1.2.3", "series": "1.2.3.4"}, "SOP Instance UIDs"),
        ({"study": "1.2.3", "instances": ["1.2.3.4.5"]}, "--series"),
        ({"study": "1.2.3", "series": "1.2.3.4", "instances": ["1.5"]}, "--repository-id"),
        ({"study": "1.2..3"}, "not a valid DICOM UID"),
        ({"study": "1.2.3", "series": "1.2", "instances": ["x"]}, "not a valid DICOM UID"),
    ],
)
def test_options_that_make_no_request(options: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        _select(**options)


def test_not_a_manifest(samples_dir: Path) -> None:
    with pytest.raises(InvalidManifest):
        _select(kos=samples_dir / "ct" / "series1" / "ct_small.dcm")


def test_usage_error_exit_code_and_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(
        ["--endpoint", "http://127.0.0.1:9/x", "--study", "1.2.3", "--out", str(tmp_path)],
        capsys,
    )
    assert code == 1
    assert out == ""
    assert err.startswith("xdsi retrieve: RAD-69 requests name SOP Instance UIDs")
    assert err.count("\n") == 1


# --- against the real endpoint -----------------------------------------------------------------


def _same_bytes(live: LiveServer, out: Path) -> list[str]:
    names = sorted(p.name for p in out.iterdir())
    for name in names:
        assert (out / name).read_bytes() == live.files_by_uid[name[: -len(".dcm")]].read_bytes()
    return names


@pytest.mark.parametrize("extra", [[], ["--mtom"]], ids=["soap", "mtom"])
def test_whole_study_via_kos(
    live: LiveServer,
    kos_path: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
) -> None:
    out = tmp_path / "out"
    code, stdout, _ = run_cli(
        ["--endpoint", live.endpoint, "--kos", str(kos_path), "--out", str(out), *extra], capsys
    )
    assert code == 0
    assert "4 of 4 document(s)" in stdout
    assert "status SUCCESS" in stdout
    assert _same_bytes(live, out) == sorted(
        f"{d.document_unique_id}.dcm" for d in read_kos(kos_path)
    )


def test_instance_list(
    live: LiveServer, kos_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = read_kos(kos_path)[1:3]
    argv = [
        "--endpoint", live.endpoint,
        "--repository-id", live.settings.repository_unique_id,
        "--study", docs[0].study_instance_uid,
        "--series", docs[0].series_instance_uid,
        "--instance", docs[0].document_unique_id,
        "--instance", docs[1].document_unique_id,
        "--ts", ns.TS_EXPLICIT_VR_LE, "--ts", ns.TS_JPEG_LS_LOSSLESS, "--ts", ns.TS_RLE,
        "--out", str(tmp_path),
    ]  # fmt: skip
    code, stdout, _ = run_cli(argv, capsys)
    assert code == 0, stdout
    assert "2 of 2 document(s)" in stdout


def test_unknown_instance_exit_1_with_the_registry_error(
    live: LiveServer, kos_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = read_kos(kos_path)[0]
    argv = [
        "--endpoint", live.endpoint,
        "--repository-id", live.settings.repository_unique_id,
        "--study", doc.study_instance_uid,
        "--series", doc.series_instance_uid,
        "--instance", "1.2.3.4.5.6.7",
        "--out", str(tmp_path),
    ]  # fmt: skip
    code, stdout, _ = run_cli(argv, capsys)
    assert code == 1
    assert "status FAILURE" in stdout
    assert f"error {live.settings.not_found_code} [1.2.3.4.5.6.7]:" in stdout
    assert list(tmp_path.iterdir()) == []


def test_partial_success_exit_2(
    live: LiveServer, kos_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = read_kos(kos_path)[0]
    argv = [
        "--endpoint", live.endpoint,
        "--repository-id", live.settings.repository_unique_id,
        "--study", doc.study_instance_uid,
        "--series", doc.series_instance_uid,
        "--instance", doc.document_unique_id,
        "--instance", "1.2.3.4.5.6.8",
        "--out", str(tmp_path),
    ]  # fmt: skip
    code, stdout, _ = run_cli(argv, capsys)
    assert code == 2
    assert "1 of 2 document(s)" in stdout
    assert "status PARTIAL_SUCCESS" in stdout
    assert "[1.2.3.4.5.6.8]" in stdout
    assert _same_bytes(live, tmp_path) == [f"{doc.document_unique_id}.dcm"]


def test_transport_error_exit_1_one_line(
    free_port: int, kos_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    endpoint = f"http://127.0.0.1:{free_port}/xdsi/ImagingDocumentSource"
    code, stdout, err = run_cli(
        ["--endpoint", endpoint, "--kos", str(kos_path), "--out", str(tmp_path)], capsys
    )
    assert code == 1
    assert stdout == ""
    assert err.startswith(f"xdsi retrieve: cannot reach {endpoint}")
    assert err.count("\n") == 1
    assert "Traceback" not in err


@pytest.mark.parametrize("wsdl", ["README.md", "wsdl/wsdl/XCA-I-RespondingGateway.wsdl", "nope"])
def test_unusable_wsdl_exit_1_one_line(
    wsdl: str, kos_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = kos_path.parents[3] / wsdl
    code, stdout, err = run_cli(
        ["--endpoint", "http://127.0.0.1:9/x", "--kos", str(kos_path), "--wsdl", str(path),
         "--out", str(tmp_path)],
        capsys,
    )  # fmt: skip
    assert code == 1
    assert stdout == ""
    assert err.startswith("xdsi retrieve: ")
    assert str(path) in err
    assert err.count("\n") == 1
