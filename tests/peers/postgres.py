"""A throw-away PostgreSQL cluster as a test peer (``docs/libraries.md`` §7).

``initdb`` refuses to run as root, so as root every server command runs as the ``postgres`` user
(``runuser -u postgres --``) on a data directory under /tmp chowned to it.  The cluster listens
on 127.0.0.1 and a free port only (its Unix socket lives in the same temp directory), uses
``trust`` authentication, and is stopped with ``pg_ctl stop`` (which signals the postmaster
recorded in its pid file) at the end of the session.

Use the fixtures::

    from tests.peers.postgres import postgres_cluster, postgres_url  # noqa: F401

    def test_x(postgres_url):          # a fresh, empty database per test
        engine = create_engine(postgres_url)
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import need_peer

HOST = "127.0.0.1"
SUPERUSER = "postgres"
START_TIMEOUT_S = 60


def postgres_bindir() -> Path | None:
    """Newest ``/usr/lib/postgresql/<version>/bin`` holding ``initdb`` and ``pg_ctl``."""
    candidates = [
        path.parent
        for path in Path("/usr/lib/postgresql").glob("*/bin/initdb")
        if (path.parent / "pg_ctl").exists()
    ]

    def version(bindir: Path) -> tuple[int, ...]:
        return tuple(int(p) for p in bindir.parent.name.split(".") if p.isdigit())

    return max(candidates, key=version, default=None)


def _as_postgres() -> list[str]:
    """Command prefix that runs the server tools as an unprivileged user."""
    if os.geteuid() != 0:
        return []  # already unprivileged: initdb runs as ourselves
    return ["runuser", "-u", SUPERUSER, "--"]


@dataclass
class PostgresCluster:
    """A running throw-away cluster: where it lives and how to reach it."""

    bindir: Path
    base: Path
    port: int
    _counter: Iterator[int]

    @property
    def datadir(self) -> Path:
        return self.base / "data"

    def url(self, database: str = SUPERUSER) -> str:
        """SQLAlchemy URL of ``database`` (psycopg 3 driver)."""
        return f"postgresql+psycopg://{SUPERUSER}@{HOST}:{self.port}/{database}"

    def create_database(self, prefix: str = "xdsi_test") -> str:
        """Create a new empty database and return its SQLAlchemy URL."""
        import psycopg

        name = f"{prefix}_{next(self._counter)}"
        dsn = f"host={HOST} port={self.port} user={SUPERUSER} dbname={SUPERUSER}"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # name is ours: prefix + counter
        return self.url(name)

    def pg_ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*_as_postgres(), str(self.bindir / "pg_ctl"), "-D", str(self.datadir), *args],
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_S,
            check=False,
        )


def start_cluster(bindir: Path, port: int, *, durable: bool = False) -> PostgresCluster:
    """``initdb`` + ``pg_ctl start`` in a new directory under /tmp; raises if either fails.

    ``durable=False`` (tests) runs the server with ``fsync=off``; benchmarks pass ``True`` so that
    commits cost what they cost in production.
    """
    base = Path(tempfile.mkdtemp(prefix="xdsi-pg-", dir="/tmp"))
    if os.geteuid() == 0:
        shutil.chown(base, SUPERUSER, SUPERUSER)
    cluster = PostgresCluster(bindir, base, port, itertools.count(1))
    init = subprocess.run(
        [
            *_as_postgres(),
            str(bindir / "initdb"),
            "-D",
            str(cluster.datadir),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",  # throw-away: skip the fsyncs, initdb takes a fraction of the time
        ],
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT_S,
        check=False,
    )
    if init.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        raise RuntimeError(f"initdb failed: {init.stderr.strip()}")
    fsync = "on" if durable else "off"
    options = f"-p {port} -k {base} -c listen_addresses={HOST} -c fsync={fsync}"
    start = cluster.pg_ctl("-l", str(base / "log.txt"), "-o", options, "-w", "start")
    if start.returncode != 0:
        log = (base / "log.txt").read_text(errors="replace") if (base / "log.txt").exists() else ""
        shutil.rmtree(base, ignore_errors=True)
        raise RuntimeError(f"pg_ctl start failed: {start.stderr.strip()} {log[-2000:]}")
    return cluster


def stop_cluster(cluster: PostgresCluster) -> None:
    """Stop the postmaster of this cluster (by its pid file) and delete its directory."""
    try:
        cluster.pg_ctl("-m", "fast", "-w", "stop")
    finally:
        shutil.rmtree(cluster.base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_cluster(free_port_factory: Callable[[], int]) -> Iterator[PostgresCluster]:
    """One throw-away cluster for the whole session (skipped/failed via ``need_peer`` if absent)."""
    bindir = postgres_bindir()
    need_peer("postgresql", bindir is not None, "no /usr/lib/postgresql/*/bin/initdb")
    assert bindir is not None
    need_peer(
        "postgresql",
        os.geteuid() != 0 or shutil.which("runuser") is not None,
        "running as root needs runuser to start the server as 'postgres'",
    )
    cluster = start_cluster(bindir, free_port_factory())
    try:
        yield cluster
    finally:
        stop_cluster(cluster)


@pytest.fixture
def postgres_url(postgres_cluster: PostgresCluster) -> str:
    """SQLAlchemy URL of a fresh, empty database in the session's cluster."""
    return postgres_cluster.create_database()
