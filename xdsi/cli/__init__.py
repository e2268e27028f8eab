"""The ``xdsi`` console script: one thin subcommand per runnable (wiring only).

Each subcommand lives in its own module of this package and exposes::

    NAME: str                      # the subcommand word
    HELP: str                      # one line for ``xdsi --help``
    def add_arguments(parser: argparse.ArgumentParser) -> None: ...
    def run(args: argparse.Namespace, settings: Settings) -> int: ...

Common options (``--config``, ``--data-dir``, ``--database-url``) are parsed here and turned into
one :class:`~xdsi.config.Settings`; a subcommand may pass further overrides through
``settings_overrides(args) -> dict`` if it defines one.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from xdsi import __version__
from xdsi.config import load_settings

# Subcommand word -> module, in the order ``xdsi --help`` lists them.
COMMANDS: dict[str, str] = {
    "serve": "serve",
    "import": "importer",
    "check": "check",
    "scp": "scp",
    "retrieve": "retrieve",
    "dump": "dump",
}
COMMAND_MODULES: tuple[str, ...] = tuple(COMMANDS.values())


def _load_commands(argv: Sequence[str] | None = None) -> list[ModuleType]:
    """The subcommand modules the command line can need.

    Only those whose word appears in ``argv`` are imported (all of them when none does, e.g. for
    ``xdsi --help``): some import pydicom, numpy or tqdm at module level, which a long-running
    ``xdsi serve`` would otherwise carry for nothing (about 55 MB resident; docs/performance.md).
    A word that is really an option's value only makes the set larger, never wrong.
    """
    words = set(sys.argv[1:] if argv is None else argv)
    names = [module for word, module in COMMANDS.items() if word in words] or COMMAND_MODULES
    return [importlib.import_module(f"xdsi.cli.{name}") for name in names]


def build_parser(commands: Sequence[ModuleType]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xdsi",
        description="DICOM WADO-WS / IHE XDS-I.b Imaging Document Source",
    )
    parser.add_argument("--version", action="version", version=f"xdsi {__version__}")
    parser.add_argument("--config", type=Path, help="ini file (default: $XDSI_CONFIG)")
    parser.add_argument("--data-dir", type=Path, help="store directory (default: per-user)")
    parser.add_argument("--database-url", help="SQLAlchemy URL of the index")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in commands:
        p = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    commands = _load_commands(argv)
    args = build_parser(commands).parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    module: ModuleType = args._module
    overrides = {"data_dir": args.data_dir, "database_url": args.database_url}
    if hasattr(module, "settings_overrides"):
        overrides.update(module.settings_overrides(args))
    try:
        settings = load_settings(args.config, **overrides)
    except (OSError, ValueError) as exc:
        print(f"xdsi: configuration error: {exc}", file=sys.stderr)
        return 2
    result: int = module.run(args, settings)
    return result
