"""Reusable pieces of the HTTP benchmarks (not collected by pytest).

* :func:`prepare_study`: a generated CT study (:mod:`tests.benchmarks.studygen`) imported into a
  fresh store with ``xdsi import``;
* :class:`ServerProcess`: a server started as a child process on a loopback port, its memory read
  from ``/proc/<pid>/status`` (``VmHWM`` = peak resident set) and stopped by its PID;
  :func:`xdsi_server` runs ``xdsi serve`` of this checkout that way, :func:`import_into` fills
  its store;
* :func:`stream`: one request whose body is read and discarded as it arrives (bytes, time to
  first byte, total time);
* :func:`concurrent`: ``clients`` threads each sending requests with its own connection;
  latencies, requests/s and percentiles.

Figures are reported, never asserted.
"""

from __future__ import annotations

import contextlib
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from tests.benchmarks.studygen import generate_ct_study
from tests.peers.process import stop_process
from tests.soap.support import Doc

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Study:
    """A generated study, its instances' identifiers and the store it was imported into."""

    files: list[Path]
    docs: list[Doc]
    syntax: str
    data_dir: Path

    @property
    def total_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.files)


def xdsi_command(data_dir: Path) -> list[str]:
    """``python -m xdsi --data-dir DIR`` of this checkout."""
    return [sys.executable, "-m", "xdsi", "--data-dir", str(data_dir)]


def child_env() -> dict[str, str]:
    """The environment for child processes: this checkout first on ``PYTHONPATH``."""
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": str(REPO) + (os.pathsep + path if path else "")}


def prepare_study(workdir: Path, instances: int, series: int = 2) -> Study:
    """Generate ``instances`` CT slices below ``workdir/study`` and import them into a fresh
    store in ``workdir/store``."""
    files = generate_ct_study(workdir / "study", n=instances, series=series)
    docs = []
    for path in files:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        docs.append(Doc(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID))
    syntax = str(pydicom.dcmread(files[0], stop_before_pixels=True).file_meta.TransferSyntaxUID)
    data_dir = workdir / "store"
    import_into(data_dir, workdir / "study")
    return Study(files, docs, syntax, data_dir)


def import_into(data_dir: Path, source: Path, env: Mapping[str, str] | None = None) -> None:
    """``xdsi import SOURCE`` of this checkout into the store at ``data_dir``."""
    subprocess.run(
        [*xdsi_command(data_dir), "import", str(source)],
        check=True,
        capture_output=True,
        env={**child_env(), **(env or {})},
    )


class ServerProcess:
    """A child process that prints ``... at <url> ...`` on its first line once it serves."""

    def __init__(
        self, name: str, command: Sequence[str], env: Mapping[str, str] | None = None
    ) -> None:
        self.name = name
        self.process = subprocess.Popen(
            list(command), stdout=subprocess.PIPE, text=True, env={**child_env(), **(env or {})}
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if " at " not in line:
            self.stop()
            raise RuntimeError(f"{name} did not start: {line!r}")
        self.url = line.split(" at ", 1)[1].split()[0]

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        """SIGINT (waitress shuts down cleanly), SIGKILL if it does not exit in time."""
        stop_process(self.process, signal.SIGINT)


@contextlib.contextmanager
def xdsi_server(
    data_dir: Path, *options: str, env: Mapping[str, str] | None = None
) -> Iterator[ServerProcess]:
    """``xdsi serve`` of this checkout on a free loopback port (``env``: extra ``XDSI_*``
    settings), stopped by its PID on exit."""
    server = ServerProcess(
        "xdsi",
        [*xdsi_command(data_dir), "serve", "--port", "0", "--host", "127.0.0.1", *options],
        env,
    )
    try:
        yield server
    finally:
        server.stop()


def memory_mb(pid: int) -> dict[str, float]:
    """``VmRSS`` (now) and ``VmHWM`` (peak resident set) of a live process, in MB (10^6)."""
    values: dict[str, float] = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) * 1024 / 1e6
    return values


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a live process has used so far (all its threads; /proc/PID/stat).

    Less sensitive to other load on the machine than wall time: comparing servers by the CPU
    each spends on the same response still means something while other work shares the cores.
    """
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def new_session() -> requests.Session:
    """A keep-alive session that retries an idempotent request once when the server closed the
    idle connection under it (Orthanc closes keep-alive connections after about a second)."""
    session = requests.Session()
    session.mount("http://", HTTPAdapter(max_retries=Retry(total=1, read=1, connect=1)))
    return session


@dataclass(frozen=True)
class Streamed:
    """One response read to its end."""

    received: int
    first_byte: float
    seconds: float

    @property
    def mb_per_s(self) -> float:
        return self.received / 1e6 / self.seconds

    @property
    def streaming_mb_per_s(self) -> float:
        """The rate once the first byte has arrived (request handling left out)."""
        return self.received / 1e6 / max(self.seconds - self.first_byte, 1e-9)


def stream(
    session: requests.Session,
    method: str,
    url: str,
    *,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
    chunk: int = 1 << 20,
) -> Streamed:
    """Send one request and read the body as it arrives, discarding it."""
    start = time.perf_counter()
    with session.request(
        method, url, data=data, headers=headers, stream=True, timeout=600
    ) as response:
        if response.status_code != 200:
            raise RuntimeError(f"{method} {url}: HTTP {response.status_code}")
        # The first read asks for one byte: urllib3's read(n) waits for n bytes, so a first
        # read of ``chunk`` would time the first MiB, not the first byte.  Only read() is used
        # (mixing it with stream() breaks urllib3's chunked decoding).
        received = len(response.raw.read(1, decode_content=False))
        first = time.perf_counter() - start
        while piece := response.raw.read(chunk, decode_content=False):
            received += len(piece)
    elapsed = time.perf_counter() - start
    return Streamed(received, first, elapsed)


@dataclass
class Load:
    """Latencies of the requests of one :func:`concurrent` run."""

    clients: int
    seconds: float
    latencies: list[float] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def concurrent(
    send: Callable[[requests.Session, int], None], clients: int, requests_per_client: int
) -> Load:
    """``clients`` threads, each with its own keep-alive connection, each calling
    ``send(session, i)`` ``requests_per_client`` times; one warm-up request each first."""
    load = Load(clients, 0.0)
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)
    errors: list[BaseException] = []

    def client(k: int) -> None:
        mine: list[float] = []
        with new_session() as session:
            try:
                send(session, k)
                barrier.wait()
                for i in range(requests_per_client):
                    start = time.perf_counter()
                    send(session, k * requests_per_client + i)
                    mine.append(time.perf_counter() - start)
            except BaseException as exc:
                errors.append(exc)
                barrier.abort()
        with lock:
            load.latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for thread in threads:
        thread.start()
    with contextlib.suppress(threading.BrokenBarrierError):  # a warm-up failed: raised below
        barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    load.seconds = time.perf_counter() - start
    if errors:
        raise errors[0]
    return load


def median(values: Sequence[float]) -> float:
    return statistics.median(values)
