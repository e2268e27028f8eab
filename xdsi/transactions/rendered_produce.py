"""One rendering from its stored files (PS3.18 2017b §6.4.2; media types §8.1.5, Table 6.1.1-3).

The part of :mod:`xdsi.transactions.rendered` that runs in the render worker processes.  It
imports neither the store nor SQLAlchemy: a worker renders its first document after importing
pydicom, numpy, Pillow and the renderer only (importing the whole transaction module took
0.8 s, half of it the store's SQLAlchemy, which every worker paid on the first request).  What
crosses the pool's pipe is a :class:`RenderJob` and the stored files' paths; :func:`produce`
renders a job from datasets its caller reads.
"""

from __future__ import annotations

import codecs
import functools
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Final

from pydicom import dcmread
from pydicom.charset import python_encoding
from pydicom.dataset import Dataset
from pydicom.uid import UID

from xdsi import errors, ns
from xdsi.imaging import documents
from xdsi.imaging.grayscale import number_of_frames
from xdsi.imaging.render import (
    RENDERED_MEDIA_TYPES,
    SINGLE_IMAGE_MEDIA_TYPES,
    RenderParams,
    render,
)
from xdsi.transactions.rendered_model import RenderedDocumentRequest, ValuesUsed

log = logging.getLogger(__name__)

TEXT_MEDIA_TYPES: Final = (ns.MEDIA_TEXT_HTML, ns.MEDIA_TEXT_PLAIN)
"""Text category of PS3.18 2017b Table 6.1.1-3 that SR documents are rendered as (html default)."""
KNOWN_MEDIA_TYPES: Final = frozenset({*RENDERED_MEDIA_TYPES, *TEXT_MEDIA_TYPES, ns.MEDIA_PDF})
DEFAULT_CHARSET: Final = "utf-8"

Produced = tuple[bytes, str, ValuesUsed]
"""One rendering: its bytes, media type and the values used (§6.4.2.2)."""
Reader = Callable[[], Dataset]


@dataclass(frozen=True)
class RenderJob:
    """A document that passed the checks needing no file: what to render, and how."""

    request: RenderedDocumentRequest
    params: RenderParams
    listed: tuple[str, ...]
    """The requested media types, parameters dropped, lower case."""
    frame_given: bool


def render_files(job: RenderJob, path: str, presentation_path: str | None) -> Produced:
    """Worker-process side of one document: render it from the stored files, read by path."""
    gsps = None if presentation_path is None else functools.partial(dcmread, presentation_path)
    return produce(job, functools.partial(dcmread, path), gsps)


def render_batch(
    items: Sequence[tuple[RenderJob, str, str | None]],
) -> list[Produced | errors.XdsiError]:
    """Worker-process side of several documents: :func:`render_files` of each, its rendering or
    the error it is to be answered with (an unforeseen failure: ``0014``), in order."""
    results: list[Produced | errors.XdsiError] = []
    for job, path, presentation_path in items:
        try:
            results.append(render_files(job, path, presentation_path))
        except errors.XdsiError as exc:
            results.append(exc)
        except Exception as exc:  # reading the file, or a failure of this one document
            log.exception("rendering %s failed", path)
            results.append(errors.ProcessingFailure(f"cannot render this object: {exc}"))
    return results


def produce(job: RenderJob, image: Reader, presentation: Reader | None) -> Produced:
    """Render ``job`` from the object ``image()`` reads (and the presentation state
    ``presentation()`` reads, if the request names one)."""
    ds = image()
    media_type = choose_media_type(job.listed, ds, job.frame_given)
    if media_type in RENDERED_MEDIA_TYPES:
        return _render_image(job, ds, presentation, media_type)
    return _render_document(job, ds, media_type)


def choose_media_type(listed: Sequence[str], ds: Dataset, frame_given: bool) -> str:
    """The media type to render ``ds`` as, from the requested ContentTypeList (§8.1.5).

    The first listed type that fits the object is used: an image type for an image, text/html or
    text/plain for an SR, application/pdf for an Encapsulated PDF; a multi-frame image without
    FrameNumber takes the first multi-frame type (image/gif).  An empty list means the category's
    default (Table 6.1.1-3): image/jpeg (image/gif for a multi-frame image without FrameNumber),
    text/html, application/pdf.
    """
    if documents.is_encapsulated_pdf(ds):
        fits: tuple[str, ...] = (ns.MEDIA_PDF,)
    elif documents.is_structured_report(ds):
        fits = TEXT_MEDIA_TYPES
    elif "PixelData" in ds:
        fits = RENDERED_MEDIA_TYPES
    else:
        fits = ()
    animation = fits == RENDERED_MEDIA_TYPES and number_of_frames(ds) > 1 and not frame_given
    if not listed:
        if not fits:
            raise errors.FormatNotProvidable(_no_rendering(ds))
        return ns.MEDIA_GIF if animation else fits[0]
    known = [t for t in listed if t in KNOWN_MEDIA_TYPES]
    if not known:
        raise errors.FormatNotSupported(
            f"none of {', '.join(listed)} is supported; this source renders "
            f"{', '.join(sorted(KNOWN_MEDIA_TYPES))}"
        )
    candidates = [t for t in known if t in fits]
    if not candidates:
        raise errors.FormatNotProvidable(
            f"{_no_rendering(ds)} as {', '.join(known)}"
            + (f"; it can be rendered as {', '.join(fits)}" if fits else "")
        )
    if animation:
        multi = [t for t in candidates if t not in SINGLE_IMAGE_MEDIA_TYPES]
        if not multi:
            raise errors.SingleImageFormatUnavailable(
                f"{candidates[0]} holds one image and the object has {number_of_frames(ds)} "
                "frames: give FrameNumber or list image/gif"
            )
        return multi[0]
    return candidates[0]


def _no_rendering(ds: Dataset) -> str:
    name = UID(str(ds.get("SOPClassUID", ""))).name or "this object"
    return f"{name} cannot be rendered"


def _render_image(
    job: RenderJob, ds: Dataset, presentation: Reader | None, media_type: str
) -> Produced:
    gsps = presentation() if presentation is not None else None
    params = replace(job.params, content_type=media_type, presentation_state=gsps)
    if params.anonymize and gsps is not None and _has_text(gsps):
        raise errors.AnonymizationFailed(
            "the presentation state's text annotations cannot be checked for identifying content"
        )
    rendered = render(ds, params)
    used = ValuesUsed(
        annotation=tuple(sorted(rendered.annotation)),
        rows=rendered.rows,
        columns=rendered.columns,
        region=rendered.region,
        window_center=rendered.window_center,
        window_width=rendered.window_width,
        image_quality=rendered.image_quality,
        presentation_uid=job.request.presentation_uid if gsps is not None else None,
        presentation_series_uid=job.request.presentation_series_uid if gsps is not None else None,
        anonymized=params.anonymize,
        frame_number=job.request.frame_number,
    )
    return rendered.data, rendered.media_type, used


def _has_text(gsps: Dataset) -> bool:
    layers = gsps.get("GraphicAnnotationSequence") or []
    return any(layer.get("TextObjectSequence") for layer in layers)


def _render_document(job: RenderJob, ds: Dataset, media_type: str) -> Produced:
    """SR as text, Encapsulated PDF as itself; image parameters do not apply and are not echoed.

    Anonymization of a PDF or of free text cannot be verified: refused with ``0001`` (§8.1.7).
    """
    anonymize = job.params.anonymize
    used = ValuesUsed(anonymized=anonymize, frame_number=job.request.frame_number)
    if media_type == ns.MEDIA_PDF:
        if anonymize:
            raise errors.AnonymizationFailed("an encapsulated PDF cannot be anonymized")
        return documents.pdf_bytes(ds), ns.MEDIA_PDF, used
    if anonymize and _has_free_text(ds.ContentSequence):
        raise errors.AnonymizationFailed(
            "the report has free text or person names that cannot be anonymized by rendering"
        )
    try:
        if media_type == ns.MEDIA_TEXT_PLAIN:
            text = documents.sr_text(ds, anonymize=anonymize)
            charset, data = _encode_text(text, job.request.charsets)
        else:  # any charset will do: what it cannot encode becomes character references
            default = (DEFAULT_CHARSET, DEFAULT_CHARSET)
            charset, codec = next(_codecs(job.request.charsets), default)
            text = documents.sr_html(ds, anonymize=anonymize, charset=charset)
            data = text.encode(codec, errors="xmlcharrefreplace")
    except Exception as exc:
        raise errors.ProcessingFailure(f"cannot render this report: {exc}") from exc
    return data, f"{media_type}; charset={charset}", used


def _has_free_text(items: Sequence[Dataset]) -> bool:
    for item in items:
        if str(item.get("ValueType", "")) in ("TEXT", "PNAME"):
            return True
        if "ContentSequence" in item and _has_free_text(item.ContentSequence):
            return True
    return False


def _encode_text(text: str, charsets: Sequence[str]) -> tuple[str, bytes]:
    """``text`` in the first listed charset that can encode it, else UTF-8; returns the charset
    name for the media type (as the requester spelt it) and the bytes."""
    for name, codec in _codecs(charsets):
        try:
            return name, text.encode(codec)
        except UnicodeEncodeError:
            continue
    return DEFAULT_CHARSET, text.encode(DEFAULT_CHARSET)


def _codecs(charsets: Sequence[str]) -> Iterator[tuple[str, str]]:
    """(media type label, Python codec) of each listed charset Python knows: IANA names (the
    label is the name as listed) and the DICOM defined terms of Specific Character Set (PS3.18
    §6.1.2, §8.1.6; labelled with the codec's name, e.g. ``ISO_IR 100`` → ``iso8859-1``);
    unknown ones are skipped."""
    for listed in charsets:
        name = listed.strip()
        try:
            codec = codecs.lookup(python_encoding.get(name, name)).name
        except LookupError:
            continue
        yield (codec if name in python_encoding else name), codec


__all__ = [
    "DEFAULT_CHARSET",
    "KNOWN_MEDIA_TYPES",
    "TEXT_MEDIA_TYPES",
    "Produced",
    "RenderJob",
    "choose_media_type",
    "produce",
    "render_batch",
    "render_files",
]
