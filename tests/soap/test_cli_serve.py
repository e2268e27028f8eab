"""``xdsi serve --demo`` as a user runs it: a subprocess on a free port, the printed
``xdsi retrieve`` command run as printed, the retrieved files compared with the samples."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests


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
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
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
