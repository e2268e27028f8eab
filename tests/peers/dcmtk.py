"""Run DCMTK command-line tools (Debian package ``dcmtk``) as test peers.

pynetdicom installs console scripts with the same names as DCMTK's (``storescu``, ``echoscu``,
``storescp`` ...), and under pyenv its shims come first on PATH, so ``shutil.which`` is not enough:
:func:`dcmtk_program` picks the first executable of that name whose ``--version`` says DCMTK.
"""

from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

import pydicom

from tests.conftest import need_peer
from xdsi import ns

STORESCU_PROPOSE: dict[str, str] = {
    ns.TS_EXPLICIT_VR_LE: "-xe",
    ns.TS_IMPLICIT_VR_LE: "-xi",
    ns.TS_EXPLICIT_VR_BE: "-xb",
    ns.TS_DEFLATED_EXPLICIT_VR_LE: "-xd",
    ns.TS_RLE: "-xr",
    ns.TS_JPEG_BASELINE: "-xy",
    ns.TS_JPEG_EXTENDED: "-xx",
    ns.TS_JPEG_LOSSLESS_SV1: "-xs",
    ns.TS_JPEG_LS_LOSSLESS: "-xt",
    ns.TS_JPEG_LS_NEAR_LOSSLESS: "-xu",
    ns.TS_JPEG2000_LOSSLESS: "-xv",
    ns.TS_JPEG2000: "-xw",
}
"""storescu 3.6.7 option that proposes a transfer syntax (``storescu --help``).

With ``-R`` storescu proposes only the SOP classes of its input files, but with the syntaxes of
the one ``-x?`` option given; a compressed file whose syntax is not among them is decompressed
(or fails).  Sending each file unconverted therefore needs one run per transfer syntax.
"""


@functools.cache
def find_dcmtk(name: str) -> str | None:
    """Path of DCMTK's ``name`` on PATH, or ``None`` (for scripts; tests use dcmtk_program)."""
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        candidate = Path(folder or ".") / name
        if not (candidate.is_file() and os.access(candidate, os.X_OK)):
            continue
        try:
            out = subprocess.run(
                [str(candidate), "--version"], capture_output=True, text=True, timeout=20
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if "dcmtk" in (out.stdout + out.stderr).lower():
            return str(candidate)
    return None


def dcmtk_program(name: str) -> str:
    """Path of DCMTK's ``name``; skips the test (fails under XDSI_REQUIRE_PEERS=1) if absent."""
    path = find_dcmtk(name)
    need_peer(f"dcmtk {name}", path is not None, "no DCMTK build of it on PATH")
    assert path is not None
    return path


def _run(args: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)


def storescu(
    inputs: Iterable[Path],
    port: int,
    called_aet: str,
    *,
    host: str = "127.0.0.1",
    calling_aet: str = "STORESCU",
    options: Sequence[str] = ("-R", "+sd", "+r", "-nh"),
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """Send files or folders with DCMTK ``storescu``.

    The default options send each file in its own transfer syntax, unconverted: ``-R`` proposes
    only the contexts the files need (their SOP class with their own transfer syntax, which for a
    compressed file is the only way it is sent without decompression), ``+sd +r`` scans folders
    recursively, ``-nh`` carries on after a refused file.  ``-v`` output is in ``stderr``.
    """
    args = [dcmtk_program("storescu"), "-v", "-aet", calling_aet, "-aec", called_aet, *options]
    args += [host, str(port), *(str(p) for p in inputs)]
    return _run(args, timeout)


def storescu_unconverted(
    files: Iterable[Path], port: int, called_aet: str, host: str = "127.0.0.1"
) -> list[subprocess.CompletedProcess[str]]:
    """Send every file in its own transfer syntax: one ``storescu -R -x?`` run per syntax."""
    by_syntax: dict[str, list[Path]] = {}
    for path in files:
        ts = str(pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID)
        by_syntax.setdefault(ts, []).append(path)
    runs = []
    for ts, group in by_syntax.items():
        if ts not in STORESCU_PROPOSE:
            raise ValueError(f"storescu has no option proposing {ts}; use a --config-file")
        options = (STORESCU_PROPOSE[ts], "-R", "-nh")
        runs.append(storescu(group, port, called_aet, host=host, options=options))
    return runs


def dataset_as_sent(path: Path, workdir: Path) -> bytes:
    """The data set bytes storescu puts on the wire for ``path`` (no meta, same TS).

    DCMTK normalises while it encodes (drops Data Set Trailing Padding, writes encapsulated Pixel
    Data as OB, trims padding of empty values), so the original file's bytes are not the oracle;
    ``dcmconv -F -p`` (data set only, no padding, same transfer syntax) runs the same encoder.
    """
    out = workdir / (path.name + ".dataset")
    subprocess.run(
        [dcmtk_program("dcmconv"), "-F", "-p", str(path), str(out)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return out.read_bytes()


def echoscu(
    port: int, called_aet: str, *, host: str = "127.0.0.1", timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """One C-ECHO with DCMTK ``echoscu``; ``returncode`` 0 means success."""
    return _run([dcmtk_program("echoscu"), "-aec", called_aet, host, str(port)], timeout)
