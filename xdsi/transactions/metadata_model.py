"""Plain request/response objects of Retrieve Imaging Document Set Metadata (PS3.18 2017b §6.4.3;
XML elements named ``…Information…``).  The SOAP layer (:mod:`xdsi.soap.metadata`) converts wire
messages into these and back; nothing here knows XML."""

from __future__ import annotations

from dataclasses import dataclass

from xdsi.model import DocumentRequest, OutcomeOf


@dataclass(frozen=True)
class XPathExpression:
    """One ``wado:XPath``: the expression and the prefixes bound where it was written."""

    text: str
    namespaces: tuple[tuple[str, str], ...] = ()
    """(prefix, namespace URI) pairs in scope of the ``wado:XPath`` element."""


@dataclass(frozen=True)
class DocumentInformationRequest:
    """One ``wado:DocumentInformationRequest`` with the study/series it was listed under."""

    document: DocumentRequest
    xpaths: tuple[XPathExpression, ...]
    anonymize: str | None = None
    """Text of ``wado:Anonymize`` (``""`` for an empty element), ``None`` when absent."""
    study_sent: bool = True
    series_sent: bool = True
    """Whether ``studyInstanceUID`` / ``seriesInstanceUID`` attributes were present at all: the
    ihe-wadows-2017 schema's metadata request type has none, so clients generated from it
    cannot send them (an *empty* attribute is still an error)."""


@dataclass(frozen=True)
class RetrieveImagingDocumentSetInformationRequest:
    """``wado:RetrieveImagingDocumentSetInformationRequest`` (PS3.18 §6.4.3.1)."""

    documents: tuple[DocumentInformationRequest, ...]


@dataclass(frozen=True)
class DocumentInformation:
    """One ``wado:DocumentInformationResponse``: the echo and one result per XPath, in order."""

    request: DocumentRequest
    results: tuple[str, ...]


@dataclass
class MetadataOutcome(OutcomeOf[DocumentInformation]):
    """Answered documents and RegistryErrors (partial success is data, design note 5)."""


__all__ = [
    "DocumentInformation",
    "DocumentInformationRequest",
    "MetadataOutcome",
    "RetrieveImagingDocumentSetInformationRequest",
    "XPathExpression",
]
