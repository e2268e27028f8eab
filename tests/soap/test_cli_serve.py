"""``xdsi serve --demo`` as a user runs it: a subprocess on a free port, the printed
``xdsi retrieve`` command run as printed, the retrieved files compared with the samples."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.peers.process import stop_process


@pytest.fixture
def demo_server(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "xdg")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "xdsi", "serve", "--demo", "--port", "0", "--host", "127.0.0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(3)]
        url = lines[0].split(" at ", 1)[1].split(" ", 1)[0]
        command = shlex.split(lines[2])
        yield url, command
    finally:
        stop_process(proc, signal.SIGINT)
    assert (tmp_path / "xdg" / "xdsi" / "demo").is_dir()  # the per-user demo data dir


def test_demo_serves_and_prints_a_working_retrieve_command(
    demo_server: tuple[str, list[str]], tmp_path: Path, samples_dir: Path
) -> None:
    url, command = demo_server
    assert requests.get(url + "?wsdl", timeout=30).status_code == 200
    assert command[:2] == ["xdsi", "retrieve"]
    assert command[command.index("--endpoint") + 1] == url
    out = tmp_path / "retrieved"
    command[command.index("--out") + 1] = str(out)
    done = subprocess.run(
        [sys.executable, "-m", "xdsi", *command[1:]], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    retrieved = sorted(p.read_bytes() for p in out.iterdir())
    expected = sorted(p.read_bytes() for p in (samples_dir / "ct").rglob("*.dcm"))
    assert retrieved == expected


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as a script's `xdsi serve &` inherits it


def _running(pid: int) -> bool:
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def _children(pid: int) -> set[int]:
    found = set()
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        if f"\nPPid:\t{pid}\n" in text:
            found.add(int(status.parent.name))
    return found


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serve_stops_cleanly_on_sigterm_and_on_an_ignored_sigint(
    tmp_path: Path, signum: signal.Signals
) -> None:
    """A service manager's SIGTERM, and SIGINT even when the shell had it ignored, end the server
    with exit status 0 and take its transcoding workers with it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "xdsi", "--data-dir", str(tmp_path / "d"), "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_ignore_sigint,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split(" at ", 1)[1].split(" ", 1)[0]
        assert requests.get(url + "?wsdl", timeout=30).status_code == 200
        workers = _children(proc.pid)
        proc.send_signal(signum)
        assert proc.wait(30) == 0
        # The workers are joined before the server exits; multiprocessing's resource tracker
        # (also a child) ends when it reads EOF from the exited server: allow it a moment.
        deadline = time.monotonic() + 15
        while (alive := {pid for pid in workers if _running(pid)}) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive, f"processes left behind: {sorted(alive)}"
    finally:
        stop_process(proc, signal.SIGKILL)  # only if the test failed before it exited
