"""spyne models of the RAD-69 messages (IHE RAD TF-2 §4.69.4; PS3.18 2017b §6.4.1).

The request follows ``schema/IHE/XDSI.b_ImagingDocumentSource.xsd``: the RAD elements live in
``urn:ihe:rad:xdsi-b:2009`` while ``DocumentRequest`` and its children are ITI XDS.b elements
(``urn:ihe:iti:xds-b:2007``, ``sub_ns``).  spyne matches children by local name and ignores
unknown ones (libraries.md §1.2), which is the leniency consumers need: PS3.18's
``wado:Anonymize``/``wado:FrameNumber`` and any order of the DocumentRequest children are accepted.

The response models describe ``ihe:RetrieveDocumentSetResponse`` (ITI TF-2b §3.43.4.2, element
order of the ITI XSD) for the service definition; the wire form is written by
:mod:`xdsi.soap.convert` (see there for why).
"""

from __future__ import annotations

from spyne import ByteArray, ComplexModel, Unicode, XmlAttribute

from xdsi import ns

UNBOUNDED = "unbounded"


class DocumentRequest(ComplexModel):  # type: ignore[misc]
    """``ihe:DocumentRequest`` (ITI XDS.b ``RetrieveDocumentSetRequestType``)."""

    __namespace__ = ns.XDS_B
    HomeCommunityId = Unicode
    RepositoryUniqueId = Unicode
    DocumentUniqueId = Unicode


class SeriesRequest(ComplexModel):  # type: ignore[misc]
    """``iherad:SeriesRequest`` (extends ``ihe:RetrieveDocumentSetRequestType``)."""

    __namespace__ = ns.XDSI_B
    seriesInstanceUID = XmlAttribute(Unicode)
    DocumentRequest = DocumentRequest.customize(max_occurs=UNBOUNDED, sub_ns=ns.XDS_B)


class StudyRequest(ComplexModel):  # type: ignore[misc]
    """``iherad:StudyRequest``."""

    __namespace__ = ns.XDSI_B
    studyInstanceUID = XmlAttribute(Unicode)
    SeriesRequest = SeriesRequest.customize(max_occurs=UNBOUNDED)


class TransferSyntaxUIDList(ComplexModel):  # type: ignore[misc]
    """``iherad:TransferSyntaxUIDList``."""

    __namespace__ = ns.XDSI_B
    TransferSyntaxUID = Unicode.customize(max_occurs=UNBOUNDED)


class RetrieveImagingDocumentSetRequest(ComplexModel):  # type: ignore[misc]
    """``iherad:RetrieveImagingDocumentSetRequest`` (RAD TF-2 §4.69.4.1.2)."""

    __namespace__ = ns.XDSI_B
    StudyRequest = StudyRequest.customize(max_occurs=UNBOUNDED)
    TransferSyntaxUIDList = TransferSyntaxUIDList


class RegistryError(ComplexModel):  # type: ignore[misc]
    """``rs:RegistryError`` (ebRS 3.0 rs.xsd)."""

    __namespace__ = ns.RS
    errorCode = XmlAttribute(Unicode)
    codeContext = XmlAttribute(Unicode)
    severity = XmlAttribute(Unicode)
    location = XmlAttribute(Unicode)


class RegistryErrorList(ComplexModel):  # type: ignore[misc]
    __namespace__ = ns.RS
    highestSeverity = XmlAttribute(Unicode)
    RegistryError = RegistryError.customize(max_occurs=UNBOUNDED)


class RegistryResponse(ComplexModel):  # type: ignore[misc]
    __namespace__ = ns.RS
    status = XmlAttribute(Unicode)
    RegistryErrorList = RegistryErrorList


class DocumentResponse(ComplexModel):  # type: ignore[misc]
    """``ihe:DocumentResponse``; ``Document`` travels as an XOP attachment."""

    __namespace__ = ns.XDS_B
    HomeCommunityId = Unicode
    RepositoryUniqueId = Unicode
    DocumentUniqueId = Unicode
    mimeType = Unicode
    Document = ByteArray


class RetrieveDocumentSetResponse(ComplexModel):  # type: ignore[misc]
    """``ihe:RetrieveDocumentSetResponse`` (the ITI-43 response reused by RAD-69)."""

    __namespace__ = ns.XDS_B
    RegistryResponse = RegistryResponse.customize(sub_ns=ns.RS)
    DocumentResponse = DocumentResponse.customize(max_occurs=UNBOUNDED)


__all__ = [
    "DocumentRequest",
    "DocumentResponse",
    "RetrieveDocumentSetResponse",
    "RetrieveImagingDocumentSetRequest",
    "SeriesRequest",
    "StudyRequest",
    "TransferSyntaxUIDList",
]
