"""What ``xdsi serve`` loads and how it sets up waitress (docs/performance.md, RAD-69 memory).

The memory figures themselves are measured by ``python -m tests.benchmarks.bench_soap``; these
tests pin the causes, which are deterministic: the serving path imports neither pydicom nor
numpy (about 55 MB resident with pydicom's pixel plugins) unless a document must be transcoded,
and the server is created with a bounded output buffer and, on glibc, one malloc arena.
"""

from __future__ import annotations

import importlib
import json
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from xdsi.cli import COMMANDS, _load_commands
from xdsi.config import load_settings
from xdsi.soap import server

HEAVY = ("pydicom", "numpy", "PIL", "gdcm", "tqdm", "pynetdicom")

PROBE = """
import json, sys
from pathlib import Path
from xdsi.cli import _load_commands, build_parser
from xdsi.config import load_settings
commands = _load_commands(["--data-dir", "d", "serve", "--port", "0"])
build_parser(commands)
from xdsi.soap import make_app
from xdsi.soap.server import create_server
from xdsi.store import open_store
settings = load_settings(None, data_dir=Path(sys.argv[1]))
server = create_server(make_app(settings, open_store(settings)), settings, "127.0.0.1", 0)
server.close()
print(json.dumps({"commands": [m.NAME for m in commands], "modules": sorted(sys.modules)}))
"""


def test_the_serving_path_does_not_import_pydicom_or_numpy(tmp_path: Path) -> None:
    """What ``xdsi serve`` runs up to serving: command loading, store, app (all operations),
    waitress server."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    loaded = json.loads(done.stdout)
    assert loaded["commands"] == ["serve"]
    tops = {name.split(".")[0] for name in loaded["modules"]}
    assert not tops & set(HEAVY), sorted(tops & set(HEAVY))


def test_every_command_word_names_its_module() -> None:
    for word, module in COMMANDS.items():
        loaded = importlib.import_module(f"xdsi.cli.{module}")
        assert word == loaded.NAME


def test_all_commands_are_loaded_when_no_command_word_is_given() -> None:
    assert [m.NAME for m in _load_commands(["--help"])] == list(COMMANDS)
    assert [m.NAME for m in _load_commands(["--data-dir", "import", "serve"])] == [
        "serve",
        "import",
    ]


def test_the_waitress_output_buffer_is_bounded() -> None:
    settings = load_settings(None)
    srv = server.create_server(lambda environ, start: [], settings, host="127.0.0.1", port=0)
    try:
        assert srv.adj.outbuf_high_watermark == server.OUTBUF_HIGH_WATERMARK
        assert server.OUTBUF_HIGH_WATERMARK < 16 << 20  # below waitress's own default
    finally:
        srv.close()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_malloc_is_tuned_on_glibc() -> None:
    assert server.tune_malloc() is True


def test_store_protocol_types_do_not_import_sqlalchemy() -> None:
    """``xdsi.store.base`` (the Store protocol and records, imported by the transactions and the
    worker-side modules) loads without the SQL store and SQLAlchemy (~0.4 s of imports)."""
    probe = (
        "import sys, xdsi.store.base, xdsi.transactions.produce, "
        "xdsi.transactions.rendered_produce, xdsi.imaging.pipeline; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'sqlalchemy' "
        "or m == 'xdsi.store.sqlfile'))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "[]"
