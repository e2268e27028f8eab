"""The PS3.19 A.1.6 RELAX NG schema, converted from compact syntax by ``rnc2rng`` (not by hand).

Two minimal text fixes before conversion, both documented in libraries.md §5 / standards.md §3.8:
the copied grammar has a stray ``| |`` in the VR choice (a syntax error), and it lacks the
``xml:space="preserve"`` that Table A.1.5-1 requires on the root.
"""

from __future__ import annotations

import functools
from pathlib import Path

import rnc2rng  # type: ignore[import-untyped]
from lxml import etree

RNC = Path("/work/shared/reference/ps3.19/NativeDicomModel_PS3.19_A.1.6.rnc")


@functools.cache
def native_schema() -> etree.RelaxNG:
    """The compiled schema (one per test session)."""
    text = RNC.read_text(encoding="utf-8")
    fixed = text.replace('"OV" | | "OW"', '"OV" | "OW"').replace(
        "start = element NativeDicomModel { DicomDataSet }",
        'start = element NativeDicomModel { attribute xml:space { "preserve" }, DicomDataSet }',
    )
    assert fixed.count("| |") == 0 and "xml:space" in fixed, "reference text changed; revisit"
    rng = rnc2rng.dumps(rnc2rng.loads(fixed))
    return etree.RelaxNG(etree.fromstring(rng.encode("utf-8")))


def assert_valid(root: etree._Element) -> None:
    """Fail with libxml2's error log unless ``root`` is a valid Native DICOM Model."""
    schema = native_schema()
    assert schema.validate(root), schema.error_log
