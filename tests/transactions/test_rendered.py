"""Retrieve Rendered semantics (PS3.18 2017b §6.4.2, §8.1/§8.2) over a real SQLite store.

Every parameter, every bad input of the issue, partial success, non-image objects (SR as text,
Encapsulated PDF) and the multi-frame animation, on the sample objects plus presentation states
and a PDF built for the tests (:mod:`tests.transactions.rendered_data`).
"""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import lxml.html
import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.encaps import encapsulate

from tests.transactions import rendered_data
from tests.transactions.rendered_data import (
    CT,
    KOS,
    MULTIFRAME,
    PDF_BYTES,
    RGB,
    SAMPLES,
    SR,
    Extras,
    presentation_of,
    request_for,
)
from xdsi import ns
from xdsi.config import Settings, load_settings
from xdsi.imaging.pipeline import WorkerPool
from xdsi.imaging.render import RenderParams, render
from xdsi.model import Status
from xdsi.store.base import Store
from xdsi.transactions import rendered
from xdsi.transactions.rendered import retrieve_rendered_imaging_document_set
from xdsi.transactions.rendered_model import (
    RenderedDocument,
    RenderedDocumentRequest,
    RenderedOutcome,
    RetrieveRenderedRequest,
)

PNG = ("image/png",)

# The shared fixtures: one real store per module with the samples, GSPSs and a PDF.
extras = rendered_data.extras
settings = rendered_data.settings
store = rendered_data.store


def run(
    store: Store, settings: Settings, *docs: RenderedDocumentRequest, **overrides: object
) -> RenderedOutcome:
    used = load_settings(None, environ={}, data_dir=settings.data_dir, **overrides)
    return retrieve_rendered_imaging_document_set(RetrieveRenderedRequest(docs), store, used)


def one(store: Store, settings: Settings, doc: RenderedDocumentRequest) -> RenderedDocument:
    outcome = run(store, settings, doc)
    assert outcome.errors == [], outcome.errors
    assert outcome.status is Status.SUCCESS
    (document,) = outcome.documents
    return document


def data(document: RenderedDocument) -> bytes:
    return b"".join(document.payload.chunks())


def image(document: RenderedDocument) -> Image.Image:
    with Image.open(io.BytesIO(data(document))) as opened:
        opened.load()
        copy = opened.copy()
        copy.format = opened.format  # kept for the assertions on the encoder used
        return copy


def error_code(store: Store, settings: Settings, doc: RenderedDocumentRequest) -> str:
    outcome = run(store, settings, doc)
    assert outcome.documents == []
    assert outcome.status is Status.FAILURE
    (error,) = outcome.errors
    assert error.location == doc.document_unique_id
    return error.error_code


# --- every parameter ---------------------------------------------------------------------------


def test_default_is_jpeg_at_full_size_with_the_values_used(
    store: Store, settings: Settings
) -> None:
    document = one(store, settings, request_for(CT))
    assert document.payload.media_type == ns.MEDIA_JPEG
    picture = image(document)
    assert (picture.format, picture.size, picture.mode) == ("JPEG", (128, 128), "L")
    used = document.used
    assert (used.rows, used.columns, used.image_quality) == (128, 128, 90)
    assert used.window_center is not None and used.window_width is not None  # min/max window
    assert used.frame_number is None and used.region is None and not used.anonymized
    assert document.payload.size == len(data(document))


@pytest.mark.parametrize(
    ("rows", "columns", "size"),
    [("64", None, (64, 64)), (None, "32", (32, 32)), ("64", "100", (64, 64)),
     ("300", "40", (40, 40))],
)
def test_rows_and_columns_are_a_box(
    store: Store, settings: Settings, rows: str | None, columns: str | None, size: tuple[int, int]
) -> None:
    document = one(store, settings, request_for(CT, rows=rows, columns=columns))
    assert image(document).size == size
    assert (document.used.columns, document.used.rows) == size


def test_rows_keep_the_aspect_ratio(store: Store, settings: Settings) -> None:
    document = one(store, settings, request_for(CT, region="0,0,1,0.5", rows="32"))
    assert image(document).size == (64, 32)


@pytest.mark.parametrize(
    "region",
    ["0.25,0.25,0.75,0.75", {"xmin": "0.25", "ymin": "0.25", "xmax": "0.75", "ymax": "0.75"},
     {"Xmin": "0.25", "Ymin": "0.25", "Xmax": "0.75", "Ymax": "0.75"}],
)  # fmt: skip
def test_region_both_forms(store: Store, settings: Settings, region: object) -> None:
    document = one(store, settings, request_for(CT, region=region, content_types=("image/png",)))
    assert image(document).size == (64, 64)
    assert document.used.region == (0.25, 0.25, 0.75, 0.75)
    full = pydicom.dcmread(CT)
    params = RenderParams(content_type=ns.MEDIA_PNG, region=(0.25, 0.25, 0.75, 0.75))
    expected = render(full, params)
    assert data(document) == expected.data


def test_window_is_used_and_echoed(store: Store, settings: Settings) -> None:
    doc = request_for(CT, window_center="40", window_width="400", content_types=("image/png",))
    document = one(store, settings, doc)
    assert (document.used.window_center, document.used.window_width) == (40.0, 400.0)
    default = one(store, settings, request_for(CT, content_types=("image/png",)))
    assert data(document) != data(default)


def test_window_ds_values_with_exponent_and_spaces(store: Store, settings: Settings) -> None:
    document = one(store, settings, request_for(CT, window_center=" 4E1 ", window_width="400.0"))
    assert (document.used.window_center, document.used.window_width) == (40.0, 400.0)


def test_image_quality(store: Store, settings: Settings) -> None:
    low = one(store, settings, request_for(CT, image_quality="10"))
    high = one(store, settings, request_for(CT, image_quality="100"))
    assert (low.used.image_quality, high.used.image_quality) == (10, 100)
    assert len(data(low)) < len(data(high))


@pytest.mark.parametrize(
    ("media_type", "pil_format"),
    [("image/png", "PNG"), ("image/gif", "GIF"), ("image/jp2", "JPEG2000"), ("IMAGE/JPEG", "JPEG")],
)
def test_media_types(store: Store, settings: Settings, media_type: str, pil_format: str) -> None:
    document = one(store, settings, request_for(CT, content_types=(media_type,)))
    assert image(document).format == pil_format
    assert document.payload.media_type == media_type.lower()


def test_first_fitting_type_of_the_list_wins(store: Store, settings: Settings) -> None:
    doc = request_for(CT, content_types=("video/mpeg", "text/plain", "image/png", "image/jpeg"))
    assert one(store, settings, doc).payload.media_type == ns.MEDIA_PNG


def test_frame_number_of_a_multiframe_object(store: Store, settings: Settings) -> None:
    third = one(store, settings, request_for(MULTIFRAME, frame_number="3", content_types=PNG))
    first = one(store, settings, request_for(MULTIFRAME, frame_number="1", content_types=PNG))
    assert third.used.frame_number == "3"
    assert data(third) != data(first)
    params = RenderParams(content_type=ns.MEDIA_PNG, frame_number=3)
    expected = render(pydicom.dcmread(MULTIFRAME), params)
    assert data(third) == expected.data


def test_frame_number_is_ignored_for_single_frame_objects_but_echoed(
    store: Store, settings: Settings
) -> None:
    document = one(store, settings, request_for(CT, frame_number="5"))
    assert document.used.frame_number == "5"


def test_multiframe_as_animated_gif(store: Store, settings: Settings) -> None:
    for types in (("image/jpeg", "image/gif"), ()):
        document = one(store, settings, request_for(MULTIFRAME, content_types=types))
        assert document.payload.media_type == ns.MEDIA_GIF
        with Image.open(io.BytesIO(data(document))) as gif:
            assert gif.n_frames == 10
            assert gif.is_animated


def test_annotation_is_burned_in(store: Store, settings: Settings) -> None:
    plain = one(store, settings, request_for(CT, content_types=("image/png",)))
    for value in ("patient", "technique", "patient,technique", " Technique , PATIENT "):
        document = one(store, settings, request_for(CT, annotation=value, content_types=PNG))
        assert data(document) != data(plain)
        assert set(document.used.annotation) == {v.strip().lower() for v in value.split(",")}


def test_presentation_state_from_the_store(
    store: Store, settings: Settings, extras: Extras
) -> None:
    doc = request_for(CT, content_types=("image/png",), **presentation_of(extras.gsps))
    document = one(store, settings, doc)
    assert document.used.presentation_uid == doc.presentation_uid
    assert document.used.presentation_series_uid == doc.presentation_series_uid
    assert (document.used.window_center, document.used.window_width) == (40.0, 400.0)
    expected = render(
        pydicom.dcmread(CT),
        RenderParams(content_type=ns.MEDIA_PNG, presentation_state=pydicom.dcmread(extras.gsps)),
    )
    assert data(document) == expected.data


def test_rgb_image_has_no_window(store: Store, settings: Settings) -> None:
    document = one(store, settings, request_for(RGB, content_types=("image/png",)))
    assert image(document).mode == "RGB"
    assert document.used.window_center is None and document.used.window_width is None


def test_anonymize_is_honoured_and_echoed(store: Store, settings: Settings) -> None:
    document = one(store, settings, request_for(CT, anonymize="yes", annotation="technique"))
    assert document.used.anonymized
    for value in ("YES", "true", ""):
        assert one(store, settings, request_for(CT, anonymize=value)).used.anonymized
    assert not one(store, settings, request_for(CT, anonymize="no")).used.anonymized


def test_structured_report_as_plain_text_and_html(store: Store, settings: Settings) -> None:
    text = one(store, settings, request_for(SR, content_types=("text/plain",)))
    assert text.payload.media_type == "text/plain; charset=utf-8"
    body = data(text).decode("utf-8")
    assert "DEMO^COLOUR^SR" in body and "Diameter: 3" in body
    assert text.used.rows is None and text.used.window_center is None
    page = one(store, settings, request_for(SR, content_types=("text/html",)))
    assert page.payload.media_type == "text/html; charset=utf-8"
    html = data(page).decode("utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert "&amp;%$§&quot;!()&lt;&gt;{}/;" in html  # the sample's special characters, escaped
    tree = lxml.html.document_fromstring(html)
    assert {ul.getparent().tag for ul in tree.iter("ul")} == {"body", "li"}  # valid nesting
    assert len(tree.findall(".//li")) == len(documents_tree_items(pydicom.dcmread(SR)))
    default = one(store, settings, request_for(SR, content_types=()))
    assert default.payload.media_type.startswith(ns.MEDIA_TEXT_HTML)


def test_key_object_selection_as_text(store: Store, settings: Settings) -> None:
    document = one(store, settings, request_for(KOS, content_types=("text/plain",)))
    assert "Manifest" in data(document).decode()


@pytest.mark.parametrize(
    ("charsets", "label", "codec"),
    [(("ISO-8859-1",), "ISO-8859-1", "latin-1"), (("ISO_IR 100",), "iso8859-1", "latin-1"),
     (("x-unknown", "utf-8"), "utf-8", "utf-8"), (("us-ascii",), "utf-8", "utf-8")],
)  # fmt: skip
def test_charset_list(
    store: Store, settings: Settings, charsets: tuple[str, ...], label: str, codec: str
) -> None:
    doc = request_for(SR, content_types=("text/plain",), charsets=charsets)
    document = one(store, settings, doc)
    assert document.payload.media_type == f"text/plain; charset={label}"
    assert "§" in data(document).decode(codec)  # us-ascii cannot hold "§": UTF-8 instead


def test_encapsulated_pdf(store: Store, settings: Settings, extras: Extras) -> None:
    document = one(store, settings, request_for(extras.pdf, content_types=("application/pdf",)))
    assert document.payload.media_type == ns.MEDIA_PDF
    assert data(document) == PDF_BYTES


def test_repository_echo_and_home_community(store: Store, settings: Settings) -> None:
    document = one(store, settings, request_for(CT, repository_unique_id=None))
    assert document.request.repository_unique_id == settings.repository_unique_id
    document = one(store, settings, request_for(CT, home_community_id="urn:oid:1.2.3"))
    assert document.request.home_community_id == "urn:oid:1.2.3"


def documents_tree_items(ds: pydicom.Dataset) -> list[pydicom.Dataset]:
    items = []
    for item in ds.ContentSequence:
        items.append(item)
        if "ContentSequence" in item:
            items += documents_tree_items(item)
    return items


# --- bad input ------------------------------------------------------------------------------------

BAD_VALUES = [
    ({"rows": "abc"}, ns.WADO_INVALID_PARAMETER),
    ({"rows": "0"}, ns.WADO_INVALID_PARAMETER),
    ({"columns": "-5"}, ns.WADO_INVALID_PARAMETER),
    ({"columns": "1.5"}, ns.WADO_INVALID_PARAMETER),
    ({"rows": "100000"}, ns.WADO_RESOURCE_LIMIT),
    ({"image_quality": "0"}, ns.WADO_INVALID_PARAMETER),
    ({"image_quality": "101"}, ns.WADO_INVALID_PARAMETER),
    ({"image_quality": "high"}, ns.WADO_INVALID_PARAMETER),
    ({"window_center": "40"}, ns.WADO_INVALID_PARAMETER),
    ({"window_width": "400"}, ns.WADO_INVALID_PARAMETER),
    ({"window_center": "40", "window_width": "0"}, ns.WADO_INVALID_PARAMETER),
    ({"window_center": "forty", "window_width": "400"}, ns.WADO_INVALID_PARAMETER),
    ({"window_center": "nan", "window_width": "400"}, ns.WADO_INVALID_PARAMETER),
    ({"region": "0,0,1.5,1"}, ns.WADO_INVALID_PARAMETER),
    ({"region": "-0.1,0,1,1"}, ns.WADO_INVALID_PARAMETER),
    ({"region": "0.8,0,0.2,1"}, ns.WADO_INVALID_PARAMETER),
    ({"region": "0.5,0.5,0.5,0.9"}, ns.WADO_INVALID_PARAMETER),
    ({"region": "0,0,1"}, ns.WADO_INVALID_PARAMETER),
    ({"region": {"xmin": "0", "ymin": "0", "xmax": "1"}}, ns.WADO_INVALID_PARAMETER),
    ({"annotation": "everything"}, ns.WADO_INVALID_PARAMETER),
    ({"annotation": ""}, ns.WADO_INVALID_PARAMETER),
    ({"anonymize": "maybe"}, ns.WADO_INVALID_PARAMETER),
    ({"frame_number": "0"}, ns.WADO_FRAME_OUT_OF_RANGE),
    ({"frame_number": "x"}, ns.WADO_INVALID_PARAMETER),
    ({"content_types": ("image/bmp",)}, ns.WADO_FORMAT_NOT_SUPPORTED),
    ({"content_types": ("text/plain",)}, ns.WADO_FORMAT_NOT_PROVIDABLE),
    ({"content_types": ("application/pdf",)}, ns.WADO_FORMAT_NOT_PROVIDABLE),
    ({"anonymize": "yes", "annotation": "patient"}, ns.WADO_UNABLE_TO_ANONYMIZE),
    ({"presentation_uid": "1.2.3.4"}, ns.WADO_INVALID_PARAMETER),
    ({"presentation_series_uid": "1.2.3.4"}, ns.WADO_INVALID_PARAMETER),
    ({"presentation_uid": "1.2.3.4", "presentation_series_uid": "1.2.3"},
     ns.WADO_UNKNOWN_PRESENTATION),
    ({"presentation_uid": "1..2", "presentation_series_uid": "1.2.3"}, ns.WADO_INVALID_PARAMETER),
    ({"unsupported": ("TransferSyntaxUIDList",)}, ns.WADO_UNSUPPORTED_PARAMETER),
]


@pytest.mark.parametrize(("values", "code"), BAD_VALUES, ids=[str(v) for v, _ in BAD_VALUES])
def test_bad_values_of_a_ct_image(
    store: Store, settings: Settings, values: dict[str, object], code: str
) -> None:
    assert error_code(store, settings, request_for(CT, **values)) == code


def test_multiframe_without_frame_for_a_single_image_type(store: Store, settings: Settings) -> None:
    doc = request_for(MULTIFRAME, content_types=("image/jpeg", "image/png"))
    assert error_code(store, settings, doc) == ns.WADO_MULTIFRAME_SINGLE_IMAGE


def test_frame_number_too_large(store: Store, settings: Settings) -> None:
    doc = request_for(MULTIFRAME, frame_number="11")
    assert error_code(store, settings, doc) == ns.WADO_FRAME_OUT_OF_RANGE


def test_non_image_object_with_an_image_type(
    store: Store, settings: Settings, extras: Extras
) -> None:
    doc = request_for(SR, content_types=("image/jpeg",))
    assert error_code(store, settings, doc) == ns.WADO_FORMAT_NOT_PROVIDABLE
    doc = request_for(extras.pdf, content_types=("image/png",))
    assert error_code(store, settings, doc) == ns.WADO_FORMAT_NOT_PROVIDABLE


def test_presentation_uid_of_an_image_is_a_sop_class_mismatch(
    store: Store, settings: Settings
) -> None:
    doc = request_for(CT, **presentation_of(RGB))
    assert error_code(store, settings, doc) == ns.WADO_SOP_CLASS_MISMATCH


def test_presentation_in_another_series(store: Store, settings: Settings, extras: Extras) -> None:
    values = presentation_of(extras.gsps) | {"presentation_series_uid": "1.2.3.4.5"}
    doc = request_for(CT, **values)
    assert error_code(store, settings, doc) == ns.WADO_UNKNOWN_PRESENTATION_SERIES


def test_colour_presentation_state_is_unsupported(
    store: Store, settings: Settings, extras: Extras
) -> None:
    doc = request_for(CT, **presentation_of(extras.color_ps))
    assert error_code(store, settings, doc) == ns.WADO_UNSUPPORTED_PARAMETER


@pytest.mark.parametrize(
    "values", [{"region": "0,0,1,1"}, {"window_center": "1", "window_width": "2"}]
)
def test_presentation_state_excludes_region_and_window(
    store: Store, settings: Settings, extras: Extras, values: dict[str, str]
) -> None:
    doc = request_for(CT, **presentation_of(extras.gsps), **values)
    assert error_code(store, settings, doc) == ns.WADO_INVALID_PARAMETER


def test_anonymize_refused_where_it_cannot_be_honoured(
    store: Store, settings: Settings, extras: Extras
) -> None:
    cases = [
        request_for(CT, anonymize="yes", **presentation_of(extras.gsps_text)),
        request_for(extras.pdf, anonymize="yes", content_types=("application/pdf",)),
        request_for(SR, anonymize="yes", content_types=("text/plain",)),
    ]
    for doc in cases:
        assert error_code(store, settings, doc) == ns.WADO_UNABLE_TO_ANONYMIZE
    # the KOS has no free text: its rendering leaves the patient out
    kos = one(store, settings, request_for(KOS, anonymize="yes", content_types=("text/plain",)))
    assert "DEMO^CT^MR" not in data(kos).decode() and kos.used.anonymized


def test_identifier_checks_are_those_of_rad69(store: Store, settings: Settings) -> None:
    assert error_code(store, settings, request_for(CT, repository_unique_id="1.2.3")) == (
        ns.XDS_UNKNOWN_REPOSITORY_ID
    )
    assert error_code(store, settings, request_for(CT, series_instance_uid="1.2.3")) == (
        ns.WADO_INCONSISTENT_IDENTIFIERS
    )
    assert error_code(store, settings, request_for(CT, document_unique_id="1.2.3.999")) == (
        ns.XDS_DOCUMENT_UNIQUE_ID_ERROR
    )
    assert error_code(store, settings, request_for(CT, document_unique_id="not a uid")) == (
        ns.WADO_INVALID_PARAMETER
    )


# --- several documents --------------------------------------------------------------------------


def test_partial_success_keeps_request_order(store: Store, settings: Settings) -> None:
    good, bad, other = request_for(CT), request_for(CT, rows="x"), request_for(RGB)
    outcome = run(store, settings, good, bad, other)
    assert outcome.status is Status.PARTIAL_SUCCESS
    assert [d.request.document_unique_id for d in outcome.documents] == [
        good.document_unique_id,
        other.document_unique_id,
    ]
    (error,) = outcome.errors
    assert (error.error_code, error.location) == (ns.WADO_INVALID_PARAMETER, bad.document_unique_id)


def test_thread_pool_gives_the_same_answer(store: Store, settings: Settings) -> None:
    types = ("image/png", "text/plain")
    docs = [request_for(p, rows="32", content_types=types) for p in (CT, RGB, SR)]
    docs.append(request_for(CT, rows="nope"))
    alone = run(store, settings, *docs)
    with ThreadPoolExecutor(3) as pool:
        pooled = retrieve_rendered_imaging_document_set(
            RetrieveRenderedRequest(tuple(docs)), store, settings, pool
        )
    assert [data(d) for d in pooled.documents] == [data(d) for d in alone.documents]
    assert pooled.errors == alone.errors


def test_worker_processes_give_the_same_answer(store: Store, settings: Settings) -> None:
    """The pool ``xdsi serve`` renders in: files read by path in spawned processes, results
    and XdsiErrors sent back through the pipe, answers in request order."""
    types = ("image/png", "text/plain")
    docs = [request_for(p, rows="32", content_types=types) for p in (CT, RGB, SR, CT)]
    docs.insert(1, request_for(CT, rows="nope"))
    docs.append(request_for(SR, content_types=("image/jpeg",)))  # 0007, raised in a worker
    docs *= 4  # 20 jobs: batches of two (rendered.batch_size), errors inside batches
    assert rendered.batch_size(20) == 2
    alone = run(store, settings, *docs)
    pool = WorkerPool(2)
    try:
        pooled = retrieve_rendered_imaging_document_set(
            RetrieveRenderedRequest(tuple(docs)), store, settings, pool
        )
    finally:
        pool.shutdown()
    assert [data(d) for d in pooled.documents] == [data(d) for d in alone.documents]
    assert [d.used for d in pooled.documents] == [d.used for d in alone.documents]
    assert pooled.errors == alone.errors
    assert [e.error_code for e in pooled.errors] == [
        ns.WADO_INVALID_PARAMETER, ns.WADO_FORMAT_NOT_PROVIDABLE
    ] * 4


def test_large_renderings_are_spooled_to_disk(
    store: Store, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_memory = data(one(store, settings, request_for(CT, content_types=("image/png",))))
    monkeypatch.setattr(rendered, "SPOOL_IN_MEMORY_BYTES", 0)
    on_disk = one(store, settings, request_for(CT, content_types=("image/png",)))
    assert data(on_disk) == in_memory


def test_limits(store: Store, settings: Settings) -> None:
    docs = (request_for(CT), request_for(RGB))
    outcome = run(store, settings, *docs, max_documents_per_request=1)
    assert [e.error_code for e in outcome.errors] == [ns.WADO_RESOURCE_LIMIT] * 2
    outcome = run(store, settings, *docs, max_response_bytes=100)
    assert [e.error_code for e in outcome.errors] == [ns.WADO_RESOURCE_LIMIT] * 2


def test_undecodable_pixels_are_a_processing_failure(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    ds = pydicom.dcmread(SAMPLES / "sc" / "series1" / "sc_jpeg_baseline.dcm")
    ds.PixelData = encapsulate([b"\xff\xd8 not a JPEG stream \xff\xd9"])
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    path = tmp_path / "broken.dcm"
    ds.save_as(path, enforce_file_format=True)
    store.put(path)
    outcome = run(store, settings, request_for(path), request_for(CT))
    assert [e.error_code for e in outcome.errors] == [ns.WADO_PROCESSING_FAILURE]
    assert np.asarray(image(outcome.documents[0])).size > 0
