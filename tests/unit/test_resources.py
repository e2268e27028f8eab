"""The WSDL/XSD set reaches installs that are not a checkout (setup.cfg data_files,
xdsi/resources.py)."""

from __future__ import annotations

import configparser
import glob
import shutil
from pathlib import Path

from xdsi import resources
from xdsi.soap.wsdl import WsdlDocuments

ROOT = Path(__file__).resolve().parents[2]


def _data_files() -> dict[str, set[str]]:
    parser = configparser.ConfigParser()
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keep DICOM, IHE
    parser.read(ROOT / "setup.cfg")
    installed: dict[str, set[str]] = {}
    for target, patterns in parser["options.data_files"].items():
        for pattern in filter(None, (p.strip() for p in patterns.splitlines())):
            for name in glob.glob(str(ROOT / pattern)):
                installed.setdefault(target, set()).add(Path(name).name)
    return installed


def test_every_wsdl_file_is_installed_at_its_relative_place() -> None:
    installed = _data_files()
    wsdl = ROOT / "wsdl"
    for path in (p for p in wsdl.rglob("*") if p.is_file()):
        target = str(Path("share/xdsi/wsdl") / path.parent.relative_to(wsdl)).rstrip("/.")
        assert path.name in installed.get(target, set()), f"{path} is not in [options.data_files]"


def test_an_installed_copy_serves_the_wsdl(tmp_path: Path) -> None:
    copy = tmp_path / "share" / "xdsi" / "wsdl"
    shutil.copytree(ROOT / "wsdl", copy)
    served = WsdlDocuments(copy).wsdl("http://127.0.0.1:1/xdsi")
    assert b"ImagingDocumentSource" in served
    assert b"?xsd=" in served


def test_a_checkout_uses_its_own_wsdl() -> None:
    assert resources.wsdl_dir() == ROOT / "wsdl"
