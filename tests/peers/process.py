"""Stopping a child process started by a test or benchmark: by its PID, politely first."""

from __future__ import annotations

import signal
import subprocess

STOP_TIMEOUT = 30.0


def stop_process(
    process: subprocess.Popen[bytes] | subprocess.Popen[str],
    sig: signal.Signals = signal.SIGTERM,
    timeout: float = STOP_TIMEOUT,
) -> None:
    """Send ``sig``, wait, and SIGKILL only if the process does not exit within ``timeout``."""
    if process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout)
