"""Retrieve Imaging Document Set Metadata (PS3.18 2017b §6.4.3; elements named ``…Information…``).

"The logical equivalent of: 1. convert the non-pixel data ... into an XML encoded form 2. apply
each of the wado:XPath elements ... 3. provide the XPath response" (§6.4.3.2), one
``DocumentInformationRequest`` at a time.  Each is answered by a
:class:`~xdsi.transactions.metadata_model.DocumentInformation` (one result per XPath, in request
order) or by one RegistryError located at its DocumentUniqueId; the status follows
:func:`xdsi.model.status_of`.  Nothing here knows SOAP.

Checks, in order: those of :mod:`xdsi.transactions.resolve` (repository, community, UIDs), with
this operation's parameters as its parameter check (``urn:dicom:wado:0012``: no XPath, more than
:data:`MAX_XPATHS` of them, an XPath that is invalid or refused by
:mod:`xdsi.imaging.nativexpath`, an Anonymize value other than yes/true/1/no/false/0/empty), then
stored and consistent; then:

* the model is built (``urn:dicom:wado:0014`` if the stored file cannot be read), from the
  :class:`~xdsi.transactions.metadata_cache.NativeCache` unless Anonymize is requested (the cache
  fills on first use, or ahead with :func:`warm_cache`: ``xdsi serve --warm-metadata``);
* Anonymize: PS3.15 Basic Profile (:mod:`xdsi.imaging.anonymize`), one anonymizer per request so
  that new UIDs are consistent within the response; ``urn:dicom:wado:0001`` if it fails;
* the results fit the remaining ``max_metadata_response_bytes`` (``urn:dicom:wado:0005``).

A ``StudyRequest``/``SeriesRequest`` *without* its UID attribute (the ihe-wadows-2017 schema's
metadata request type declares none, so clients generated from it cannot send them) is taken to
mean the instance's own study/series; an empty attribute is ``0012`` as in RAD-69.

Study- and series-level requests: the request grammar (§6.4.3.1; both published schemas) makes
``DocumentUniqueId`` required in every ``DocumentInformationRequest``, so every request names
instances and every answer is per instance; a request without one gets ``0012``.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterable
from typing import Final

from pydicom import dcmread

from xdsi.config import Settings
from xdsi.errors import (
    AnonymizationFailed,
    InvalidParameter,
    ProcessingFailure,
    ResourceLimit,
    XdsiError,
)
from xdsi.imaging.anonymize import Anonymizer
from xdsi.imaging.nativexml import to_native_xml_bytes
from xdsi.imaging.nativexpath import CompiledXPath, NativeModel, XPathRejected
from xdsi.model import DocumentRequest
from xdsi.store.base import InstanceRecord, Store
from xdsi.transactions.metadata_cache import NativeCache, Produce
from xdsi.transactions.metadata_model import (
    DocumentInformation,
    DocumentInformationRequest,
    MetadataOutcome,
    RetrieveImagingDocumentSetInformationRequest,
    XPathExpression,
)
from xdsi.transactions.resolve import (
    Located,
    arrived,
    echoed,
    located,
    records_for,
    resolve,
    too_many,
)

__all__ = [
    "MAX_XPATHS",
    "native_text",
    "retrieve_imaging_document_set_information",
    "warm_cache",
]

log = logging.getLogger(__name__)

MAX_XPATHS: Final = 64
"""Most ``wado:XPath`` elements in one DocumentInformationRequest."""
DEFER_BYTES: Final = 64 * 1024
"""Values above this are not read from the stored file unless the model needs them."""
_YES: Final = frozenset({"", "yes", "true", "1"})
_NO: Final = frozenset({"no", "false", "0"})


def native_text(store: Store, record: InstanceRecord) -> bytes:
    """The stored instance's model text (bulk data omitted, no XML declaration)."""
    with store.open(record) as fh:
        ds = dcmread(fh, defer_size=DEFER_BYTES)
    return to_native_xml_bytes(ds, xml_declaration=False)


def warm_cache(cache: NativeCache, store: Store) -> int:
    """Fill ``cache`` with the models of stored instances, until it is full; returns how many.

    Needs a store that can list its instances (``iter_records``, as the SQL + file store has;
    the Store protocol itself has no listing); other stores are not warmed.
    """
    iterate: Callable[[], Iterable[InstanceRecord]] | None = getattr(store, "iter_records", None)
    if iterate is None:
        log.warning("metadata cache: %r cannot list its instances; not warmed", store)
        return 0
    started = time.monotonic()
    done = cache.warm(iterate(), lambda record: native_text(store, record))
    log.info("metadata cache: %d instance(s) warmed in %.1f s", done, time.monotonic() - started)
    return done


def retrieve_imaging_document_set_information(
    request: RetrieveImagingDocumentSetInformationRequest,
    store: Store,
    settings: Settings,
    cache: NativeCache,
) -> MetadataOutcome:
    """Answer one metadata request from ``store`` (PS3.18 2017b §6.4.3.2)."""
    outcome = MetadataOutcome()
    documents = [d.document for d in request.documents]
    outcome.errors.extend(too_many(documents, settings))
    if outcome.errors:
        return outcome
    records = records_for(documents, store)
    compiled: dict[XPathExpression, CompiledXPath | XPathRejected] = {}
    anonymizer: Anonymizer | None = None
    budget = settings.max_metadata_response_bytes

    def produce(record: InstanceRecord) -> bytes:
        return native_text(store, record)

    for item in request.documents:
        doc = item.document
        try:
            expressions, problem = _parameters(item, compiled)
            doc = _completed(item, records)
            record = arrived(store, resolve(doc, records, settings, problem))
            if _anonymize(item.anonymize):
                anonymizer = anonymizer or Anonymizer()
                text = _anonymized_text(store, record, anonymizer)
            else:
                text = _cached_text(cache, record, produce)
            results = _evaluate(expressions, NativeModel(text))
            size = sum(len(r) for r in results)
            if size > budget:
                raise ResourceLimit(
                    f"the XPath results of {doc.document_unique_id} ({size} characters) exceed "
                    f"the remaining response limit ({budget} of "
                    f"{settings.max_metadata_response_bytes})"
                )
            budget -= size
            outcome.documents.append(DocumentInformation(echoed(doc, settings), results))
        except XdsiError as exc:
            outcome.errors.append(located(exc, doc))
    return outcome


def _completed(item: DocumentInformationRequest, records: Located) -> DocumentRequest:
    """The document with the study/series UIDs a schema-generated client could not send taken
    from the store (see :attr:`DocumentInformationRequest.study_sent`)."""
    doc = item.document
    record = records.get(doc.document_unique_id)
    if not isinstance(record, InstanceRecord) or (item.study_sent and item.series_sent):
        return doc
    return dataclasses.replace(
        doc,
        study_instance_uid=doc.study_instance_uid if item.study_sent else record.study_instance_uid,
        series_instance_uid=doc.series_instance_uid
        if item.series_sent
        else record.series_instance_uid,
    )


def _anonymize(value: str | None) -> bool:
    return value is not None and value.strip().lower() in _YES


def _parameters(
    item: DocumentInformationRequest,
    compiled: dict[XPathExpression, CompiledXPath | XPathRejected],
) -> tuple[list[CompiledXPath], str | None]:
    """The compiled XPaths and the first parameter problem (``None`` if there is none)."""
    if item.anonymize is not None:
        value = item.anonymize.strip().lower()
        if value not in _YES and value not in _NO:
            return [], f"Anonymize must be yes/true or no/false, not {item.anonymize!r}"
    if not item.xpaths:
        return [], "DocumentInformationRequest has no XPath"
    if len(item.xpaths) > MAX_XPATHS:
        return [], f"{len(item.xpaths)} XPath elements; at most {MAX_XPATHS} are answered"
    expressions: list[CompiledXPath] = []
    for expression in item.xpaths:
        found = compiled.get(expression)
        if found is None:
            try:
                found = CompiledXPath(expression.text, dict(expression.namespaces))
            except XPathRejected as exc:
                found = exc
            compiled[expression] = found
        if isinstance(found, XPathRejected):
            return [], str(found)
        expressions.append(found)
    return expressions, None


def _cached_text(cache: NativeCache, record: InstanceRecord, produce: Produce) -> bytes:
    try:
        return cache.get(record, produce)
    except Exception as exc:  # unreadable or vanished file: this document's error only
        log.warning("metadata of %s: %s", record.sop_instance_uid, exc, exc_info=True)
        raise ProcessingFailure(
            f"the stored instance {record.sop_instance_uid} cannot be read: {exc}"
        ) from exc


def _anonymized_text(store: Store, record: InstanceRecord, anonymizer: Anonymizer) -> bytes:
    try:
        with store.open(record) as fh:
            ds = dcmread(fh, defer_size=DEFER_BYTES)
    except Exception as exc:
        raise ProcessingFailure(
            f"the stored instance {record.sop_instance_uid} cannot be read: {exc}"
        ) from exc
    try:
        anonymizer.anonymize(ds)
        return to_native_xml_bytes(ds, xml_declaration=False)
    except Exception as exc:  # a value pydicom cannot convert: refuse, never leak it
        log.warning("anonymizing %s failed: %s", record.sop_instance_uid, exc, exc_info=True)
        raise AnonymizationFailed(
            f"instance {record.sop_instance_uid} cannot be anonymized: {exc}"
        ) from exc


def _evaluate(expressions: list[CompiledXPath], model: NativeModel) -> tuple[str, ...]:
    results: list[str] = []
    for expression in expressions:
        try:
            results.append(expression.evaluate(model))
        except XPathRejected as exc:
            raise InvalidParameter(str(exc)) from None
        except ValueError as exc:
            raise ProcessingFailure(str(exc)) from None
    return tuple(results)
