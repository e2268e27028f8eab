"""XPath over the Native DICOM Model (xdsi.imaging.nativexpath): namespace rule, result text,
cost limits."""

from __future__ import annotations

import pydicom
import pytest
from lxml import etree
from pydicom.data import get_testdata_file

from tests.imaging.nativeschema import assert_valid
from xdsi import ns
from xdsi.imaging.nativexml import to_native_xml_bytes
from xdsi.imaging.nativexpath import (
    MAX_DEEP_STEPS,
    CompiledXPath,
    NativeModel,
    XPathRejected,
)


@pytest.fixture(scope="module")
def model() -> NativeModel:
    path = get_testdata_file("CT_small.dcm")
    assert path is not None
    return NativeModel(to_native_xml_bytes(pydicom.dcmread(path), xml_declaration=False))


def test_slash_is_the_whole_model(model: NativeModel) -> None:
    text = CompiledXPath(" / ").evaluate(model)
    assert text == model.text.decode()
    assert_valid(etree.fromstring(text))


def test_unprefixed_and_prefixed_select_the_same(model: NativeModel) -> None:
    free = CompiledXPath("/NativeDicomModel/DicomAttribute[@keyword='PatientName']")
    bound = CompiledXPath(
        "/d:NativeDicomModel/d:DicomAttribute[@keyword='PatientName']", {"d": ns.NATIVE_DICOM}
    )
    assert not free.namespaced and bound.namespaced
    assert free.evaluate(model) == bound.evaluate(model)
    element = etree.fromstring(free.evaluate(model))
    assert element.tag == f"{{{ns.NATIVE_DICOM}}}DicomAttribute"
    # a prefix inside a string literal is not a prefix
    assert not CompiledXPath("//DicomAttribute[@keyword='d:x']", {"d": ns.NATIVE_DICOM}).namespaced


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("count(/NativeDicomModel/DicomAttribute[@keyword='Rows'])", "1"),
        ("number(/NativeDicomModel/DicomAttribute[@keyword='Rows']/Value) div 2", "64"),
        ("1 div 4", "0.25"),
        ("0 div 0", "NaN"),
        ("1 div 0", "Infinity"),
        ("-1 div 0", "-Infinity"),
        ("1 = 1", "true"),
        ("'<&>'", "<&>"),
        ("/NativeDicomModel/DicomAttribute[@keyword='Rows']/@vr", "US"),
        ("/NativeDicomModel/DicomAttribute[@keyword='Rows']/Value/text()", "128"),
        ("/NativeDicomModel/Nothing", ""),
    ],
)
def test_result_text(model: NativeModel, expression: str, expected: str) -> None:
    assert CompiledXPath(expression).evaluate(model) == expected


def test_node_sets_are_concatenated_in_document_order(model: NativeModel) -> None:
    text = CompiledXPath(
        "/NativeDicomModel/DicomAttribute[@keyword='Rows' or @keyword='Columns']"
    ).evaluate(model)
    wrapper = etree.fromstring(f"<w>{text}</w>")
    assert [e.get("keyword") for e in wrapper] == ["Rows", "Columns"]


@pytest.mark.parametrize(
    "expression",
    [
        "//*[.//Value]",
        "/*[following::*]",
        "//*[ancestor-or-self::Item]",
        "/" + "//a" * (MAX_DEEP_STEPS + 1),
        "//DicomAttribute[string(/) != '']",  # absolute path inside a predicate
        "/NativeDicomModel/DicomAttribute[Value = /NativeDicomModel/DicomAttribute/Value]",
        "/NativeDicomModel/DicomAttribute[@tag and /x]",
        "/NativeDicomModel[",
        "re:test('a', 'a')",
    ],
)
def test_refused(expression: str) -> None:
    with pytest.raises(XPathRejected):
        CompiledXPath(expression, {"re": "http://exslt.org/regular-expressions"}).evaluate(
            NativeModel(b"<NativeDicomModel/>")
        )


@pytest.mark.parametrize(
    "expression",
    [
        "/NativeDicomModel/DicomAttribute[@keyword='ViewCodeSequence']/Item[@number=1]"
        "/DicomAttribute[@keyword='CodeMeaning']/Value[@number=1]",  # PS3.19 A.1.7
        "/NativeDicomModel/DicomAttribute[Value = 'a/b']",  # '/' in a literal
        "/NativeDicomModel/DicomAttribute[count(Item/DicomAttribute) div 2 > 1]",
    ],
)
def test_accepted(expression: str) -> None:
    CompiledXPath(expression)


def test_allowed_descendant_steps_outside_predicates(model: NativeModel) -> None:
    found = CompiledXPath("//DicomAttribute[@keyword='Rows']//Value").evaluate(model)
    assert found.count("<Value") == 1
