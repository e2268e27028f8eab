"""Import benchmark (not collected by pytest): ``python -m tests.benchmarks.bench_import``.

Generates a CT study (:func:`tests.benchmarks.studygen.generate_ct_study`: 400 instances of
512x512, about 210 MB) in a temp folder, then imports it into a fresh store in a child process,
once per backend: SQLite, and PostgreSQL when a throw-away cluster can be started
(``tests/peers/postgres.py``).  Reported per backend: instances/s and MB/s of the import itself
(the child times :func:`xdsi.intake.importer.import_paths`, without interpreter start-up), the
CPU time the import took per instance (user + system, without start-up: on a shared machine the
steadier figure) and the child's peak resident memory.  The peak is read with ``os.wait4`` for
each child: it is the same ``ru_maxrss`` that ``resource.getrusage(RUSAGE_CHILDREN)`` reports,
but for that child alone rather than the largest child so far.

Goals (issue): at least 250 instances/s on SQLite, peak memory below 200 MB.  Figures are
reported, never asserted (they vary with the machine and its other load).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from xdsi.intake.importer import DEFAULT_WORKERS

GOAL_RATE = 250.0
GOAL_RSS_MB = 200.0
REPO = Path(__file__).resolve().parents[2]


def child(source: Path, data_dir: Path, database_url: str, profile: bool, jobs: int) -> None:
    """Import ``source`` into a new store and print one JSON line of figures."""
    # Start-up, not import work: pydicom (numpy and its plugins, ~0.3 s) is imported lazily by
    # the first header parse since the serving path stopped importing it; import it before the
    # clock starts, as interpreter start-up is left out.
    import pydicom  # noqa: F401

    from xdsi.intake.importer import Outcome, import_paths
    from xdsi.store import SqlFileStore

    store = SqlFileStore(data_dir, database_url)
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    if profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        summary = profiler.runcall(import_paths, store, [source], None, jobs)
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(25)
    else:
        summary = import_paths(store, [source], workers=jobs)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    store.close()
    print(
        json.dumps(
            {
                "seconds": elapsed,
                "import_cpu_seconds": (after.ru_utime - before.ru_utime)
                + (after.ru_stime - before.ru_stime),
                "stored": summary.counts[Outcome.STORED],
                "failed": summary.failed,
            }
        )
    )


def run_child(source: Path, data_dir: Path, url: str, args: argparse.Namespace) -> dict[str, float]:
    command = [
        sys.executable,
        "-m",
        "tests.benchmarks.bench_import",
        "--jobs",
        str(args.jobs),
        "--child",
        str(source),
        str(data_dir),
        url,
    ]
    profile = args.profile
    if profile:
        command.append("--profile")
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    output = proc.stdout.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"import child failed with status {proc.returncode}")
    figures: dict[str, float] = json.loads(output.decode().strip().splitlines()[-1])
    figures["peak_rss_mb"] = usage.ru_maxrss / 1024  # Linux: kilobytes
    figures["cpu_seconds"] = usage.ru_utime + usage.ru_stime
    return figures


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def report(name: str, figures: dict[str, float], n: int, megabytes: float) -> None:
    rate = figures["stored"] / figures["seconds"]
    print(
        f"{name:<11} {figures['stored']:.0f}/{n} stored in {figures['seconds']:.2f} s: "
        f"{rate:.0f} instances/s, {megabytes / figures['seconds']:.0f} MB/s, "
        f"peak RSS {figures['peak_rss_mb']:.0f} MB, "
        f"CPU {1000 * figures['import_cpu_seconds'] / n:.1f} ms/instance "
        f"({1000 * figures['cpu_seconds'] / n:.1f} with start-up) "
        f"(goals: >= {GOAL_RATE:.0f}/s {'met' if rate >= GOAL_RATE else 'MISSED'}, "
        f"< {GOAL_RSS_MB:.0f} MB {'met' if figures['peak_rss_mb'] < GOAL_RSS_MB else 'MISSED'})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=400, help="instances (default 400)")
    parser.add_argument("--series", type=int, default=2)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--profile", action="store_true", help="cProfile the import (stderr)")
    parser.add_argument("--jobs", type=int, default=DEFAULT_WORKERS, help="concurrent puts")
    parser.add_argument("--child", nargs=3, metavar=("SOURCE", "DATA_DIR", "URL"))
    args = parser.parse_args()
    if args.child:
        source, data_dir, url = args.child
        child(Path(source), Path(data_dir), url, args.profile, args.jobs)
        return

    from tests.benchmarks.studygen import generate_ct_study

    work = Path(tempfile.mkdtemp(prefix="xdsi-bench-import-"))
    try:
        source = work / "study"
        start = time.perf_counter()
        paths = generate_ct_study(source, args.n, args.series)
        megabytes = sum(p.stat().st_size for p in paths) / 1e6
        print(
            f"generated {len(paths)} instances, {megabytes:.0f} MB, in "
            f"{time.perf_counter() - start:.1f} s"
        )
        report("sqlite", run_child(source, work / "sqlite", "", args), args.n, megabytes)
        if not args.no_postgres:
            _postgres(source, work, args, megabytes)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _postgres(source: Path, work: Path, args: argparse.Namespace, megabytes: float) -> None:
    from tests.peers.postgres import postgres_bindir, start_cluster, stop_cluster

    bindir = postgres_bindir()
    if bindir is None:
        print("postgresql  skipped: no /usr/lib/postgresql/*/bin/initdb")
        return
    cluster = start_cluster(bindir, _free_port(), durable=True)
    try:
        url = cluster.create_database("xdsi_bench")
        report("postgresql", run_child(source, work / "pg", url, args), args.n, megabytes)
    finally:
        stop_cluster(cluster)


if __name__ == "__main__":
    main()
