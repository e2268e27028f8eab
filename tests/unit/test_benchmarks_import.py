"""The benchmarks are run on demand, not collected; importing each one here catches a benchmark
broken by a refactoring (a moved name) before someone needs its figures."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

BENCHMARKS = sorted(
    p.stem for p in (Path(__file__).resolve().parents[1] / "benchmarks").glob("*.py")
    if p.stem != "__init__"
)


@pytest.mark.parametrize("name", BENCHMARKS)
def test_benchmark_module_imports(name: str) -> None:
    importlib.import_module(f"tests.benchmarks.{name}")
