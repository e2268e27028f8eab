"""Every namespace, action, status URN, error code and media type xdsi uses.

This is the one place for such literals (design note 8): no other module writes ``"urn:`` or an
XML namespace URI itself.  Sources are cited as in ``../shared/docs/standards.md``:
PS3.18 2017b §6.4 (WADO-WS), IHE RAD TF-2 §4.69 (RAD-69), ITI TF-3 §4.2.4 (XDS error codes).
"""

from __future__ import annotations

from typing import Final

# --- XML namespaces -----------------------------------------------------------------------------

SOAP12_ENV: Final = "http://www.w3.org/2003/05/soap-envelope"
SOAP11_ENV: Final = "http://schemas.xmlsoap.org/soap/envelope/"
WSA: Final = "http://www.w3.org/2005/08/addressing"
WSA_ANONYMOUS: Final = "http://www.w3.org/2005/08/addressing/anonymous"
WSA_FAULT_ACTION: Final = "http://www.w3.org/2005/08/addressing/soap/fault"
WSSE: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
XOP: Final = "http://www.w3.org/2004/08/xop/include"
XMIME: Final = "http://www.w3.org/2005/05/xmlmime"
XSD: Final = "http://www.w3.org/2001/XMLSchema"
WSDL: Final = "http://schemas.xmlsoap.org/wsdl/"
WSDL_SOAP12: Final = "http://schemas.xmlsoap.org/wsdl/soap12/"
WSAW: Final = "http://www.w3.org/2006/05/addressing/wsdl"
"""WS-Addressing 1.0 WSDL Binding namespace (``wsaw:Action``, ``wsaw:UsingAddressing``)."""
XML: Final = "http://www.w3.org/XML/1998/namespace"
"""The ``xml:`` prefix namespace (``xml:lang`` on SOAP 1.2 ``env:Text``)."""
SOAP12_ROLE_NEXT: Final = "http://www.w3.org/2003/05/soap-envelope/role/next"
SOAP12_ROLE_ULTIMATE_RECEIVER: Final = "http://www.w3.org/2003/05/soap-envelope/role/ultimateReceiver"
"""SOAP 1.2 Part 1 §2.2 roles a receiving endpoint plays (header blocks it must process)."""

XDSI_B: Final = "urn:ihe:rad:xdsi-b:2009"
"""IHE XDS-I.b request namespace (RetrieveImagingDocumentSetRequest)."""
XDS_B: Final = "urn:ihe:iti:xds-b:2007"
"""IHE ITI XDS.b namespace (DocumentRequest, RetrieveDocumentSetResponse)."""
RS: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"
RIM: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
LCM: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
"""ebRS 3.0 LifeCycleManager namespace (an inline schema of the served WSDL)."""
WADO_WS: Final = "urn:dicom:wado:ws:2011"
"""DICOM WADO-WS schema namespace (PS3.18 2017b §6.4.1.1)."""
WADO_WS_LEGACY: Final = "urn:dicom:ws:wado:2011"
"""Mis-ordered spelling used by PS3.18 prose and dcm4chee samples (standards.md §3.9 #1)."""
WADO_WS_NAMESPACES: Final = (WADO_WS, WADO_WS_LEGACY)
"""Both spellings of the WADO-WS namespace, as requests and responses in the wild use them."""
NATIVE_DICOM: Final = "http://dicom.nema.org/PS3.19/models/NativeDICOM"
"""PS3.19 Native DICOM Model namespace (Annex A.1.6)."""

# --- WS-Addressing actions ----------------------------------------------------------------------

ACTION_RAD69: Final = "urn:ihe:rad:2009:RetrieveImagingDocumentSet"
ACTION_RAD69_LEGACY: Final = "urn:ihe:rad:xdsi-b:2009:RetrieveImagingDocumentSet"
"""Wrong variant in dcm4chee-xds's WSDL until 2013 (standards.md §1); accepted, never sent."""
ACTION_RAD69_RESPONSE: Final = "urn:ihe:iti:2007:RetrieveDocumentSetResponse"

ACTION_RENDERED: Final = "urn:dicom:wado:ws:2011:RetrieveRenderedImagingDocumentSet"
ACTION_RENDERED_LEGACY: Final = "urn:dicom:ws:wado:2011:RetrieveRenderedImagingDocumentSet"
ACTION_METADATA: Final = "urn:dicom:wado:ws:2011:RetrieveImagingDocumentSetInformation"
ACTION_METADATA_PROSE: Final = "urn:wado:2011:RetrieveImagingDocumentSetInformation"

RESPONSE_SUFFIX: Final = "Response"
"""Rendered and metadata replies use the request's action spelling plus this suffix."""

# --- ebRS status and severity (PS3.18 2017b §6.4.1.2.1) ----------------------------------------

STATUS_SUCCESS: Final = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
STATUS_PARTIAL_SUCCESS: Final = "urn:ihe:iti:2007:ResponseStatusType:PartialSuccess"
STATUS_FAILURE: Final = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"

SEVERITY_ERROR: Final = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"
SEVERITY_WARNING: Final = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Warning"

# --- RegistryError codes --------------------------------------------------------------------------
# ITI TF-3 Table 4.2.4.1-2 (retrieve applicable codes) and PS3.18 2017b Table 6.4-1.

XDS_DOCUMENT_UNIQUE_ID_ERROR: Final = "XDSDocumentUniqueIdError"
XDS_MISSING_DOCUMENT: Final = "XDSMissingDocument"
XDS_UNKNOWN_REPOSITORY_ID: Final = "XDSUnknownRepositoryId"
XDS_UNKNOWN_COMMUNITY: Final = "XDSUnknownCommunity"
XDS_REPOSITORY_ERROR: Final = "XDSRepositoryError"
XDS_REPOSITORY_BUSY: Final = "XDSRepositoryBusy"
XDS_REPOSITORY_OUT_OF_RESOURCES: Final = "XDSRepositoryOutOfResources"

WADO_UNABLE_TO_ANONYMIZE: Final = "urn:dicom:wado:0001"
WADO_ANONYMIZE_NOT_SUPPORTED: Final = "urn:dicom:wado:0002"
WADO_NOT_IMMEDIATELY_AVAILABLE: Final = "urn:dicom:wado:0003"
WADO_NO_LONGER_AVAILABLE: Final = "urn:dicom:wado:0004"
WADO_RESOURCE_LIMIT: Final = "urn:dicom:wado:0005"
WADO_FORMAT_NOT_SUPPORTED: Final = "urn:dicom:wado:0006"
WADO_FORMAT_NOT_PROVIDABLE: Final = "urn:dicom:wado:0007"
WADO_MULTIFRAME_SINGLE_IMAGE: Final = "urn:dicom:wado:0008"
WADO_SOP_CLASS_MISMATCH: Final = "urn:dicom:wado:0009"
WADO_INCONSISTENT_IDENTIFIERS: Final = "urn:dicom:wado:0010"
WADO_SOP_CLASS_NOT_SUPPORTED: Final = "urn:dicom:wado:0011"
WADO_INVALID_PARAMETER: Final = "urn:dicom:wado:0012"
WADO_UNSUPPORTED_PARAMETER: Final = "urn:dicom:wado:0013"
WADO_PROCESSING_FAILURE: Final = "urn:dicom:wado:0014"
WADO_UNKNOWN_STUDY: Final = "urn:dicom:wado:0015"
WADO_UNKNOWN_SERIES: Final = "urn:dicom:wado:0016"
WADO_UNKNOWN_DOCUMENT: Final = "urn:dicom:wado:0017"
WADO_FRAME_OUT_OF_RANGE: Final = "urn:dicom:wado:0018"
WADO_UNKNOWN_PRESENTATION: Final = "urn:dicom:wado:0019"
WADO_UNKNOWN_PRESENTATION_SERIES: Final = "urn:dicom:wado:0020"

# --- Media types --------------------------------------------------------------------------------

MEDIA_DICOM: Final = "application/dicom"
MEDIA_DICOM_XML: Final = "application/dicom+xml"
MEDIA_SOAP12: Final = "application/soap+xml"
MEDIA_XOP: Final = "application/xop+xml"
MEDIA_MULTIPART_RELATED: Final = "multipart/related"
MEDIA_JPEG: Final = "image/jpeg"
MEDIA_PNG: Final = "image/png"
MEDIA_GIF: Final = "image/gif"
MEDIA_JP2: Final = "image/jp2"
MEDIA_TEXT_PLAIN: Final = "text/plain"
MEDIA_TEXT_HTML: Final = "text/html"
MEDIA_TEXT_XML: Final = "text/xml"
MEDIA_PDF: Final = "application/pdf"
MEDIA_OCTET_STREAM: Final = "application/octet-stream"
"""Generic binary (RFC 2046 §4.5.1): PS3.18 2017b E.3 labels MTOM document parts with it."""

URN_OID: Final = "urn:oid:"
"""RFC 3061 prefix of OIDs written as URNs, the form of a HomeCommunityId (ITI TF-3 §4.2.3.2.1)."""

XDS_CID_DOMAIN: Final = "urn:ihe:iti:xds-b:2007"
"""Right-hand side of the Content-IDs of MTOM parts, as CXF and dcm4chee write them."""

# --- DICOM transfer syntaxes (PS3.5 Annex A; PS3.18 2017b Table 6.1.1.8-2) --------------------

TS_IMPLICIT_VR_LE: Final = "1.2.840.10008.1.2"
TS_EXPLICIT_VR_LE: Final = "1.2.840.10008.1.2.1"
TS_DEFLATED_EXPLICIT_VR_LE: Final = "1.2.840.10008.1.2.1.99"
TS_EXPLICIT_VR_BE: Final = "1.2.840.10008.1.2.2"
TS_RLE: Final = "1.2.840.10008.1.2.5"
TS_JPEG_BASELINE: Final = "1.2.840.10008.1.2.4.50"
TS_JPEG_EXTENDED: Final = "1.2.840.10008.1.2.4.51"
TS_JPEG_LOSSLESS_P14: Final = "1.2.840.10008.1.2.4.57"
TS_JPEG_LOSSLESS_SV1: Final = "1.2.840.10008.1.2.4.70"
TS_JPEG_LS_LOSSLESS: Final = "1.2.840.10008.1.2.4.80"
TS_JPEG_LS_NEAR_LOSSLESS: Final = "1.2.840.10008.1.2.4.81"
TS_JPEG2000_LOSSLESS: Final = "1.2.840.10008.1.2.4.90"
TS_JPEG2000: Final = "1.2.840.10008.1.2.4.91"
TS_JPIP: Final = "1.2.840.10008.1.2.4.94"
TS_JPIP_DEFLATE: Final = "1.2.840.10008.1.2.4.95"
TS_HTJ2K_LOSSLESS: Final = "1.2.840.10008.1.2.4.201"
TS_HTJ2K_LOSSLESS_RPCL: Final = "1.2.840.10008.1.2.4.202"
TS_HTJ2K: Final = "1.2.840.10008.1.2.4.203"
"""High-Throughput JPEG 2000 (PS3.5 Annex A.4, added by Supplement 235; known to pydicom 3)."""

VIDEO_TRANSFER_SYNTAXES: Final = frozenset(
    {
        # MPEG2 MP@ML/MP@HL, MPEG-4 AVC/H.264 profiles (PS3.18 2017b Table 6.1.1.8-2, WS video
        # column) with their fragmentable ".1" variants, and HEVC/H.265 Main / Main 10.
        *(f"1.2.840.10008.1.2.4.{n}" for n in range(100, 107)),
        *(f"1.2.840.10008.1.2.4.{n}.1" for n in range(100, 107)),
        "1.2.840.10008.1.2.4.107",
        "1.2.840.10008.1.2.4.108",
    }
)
"""Video syntaxes (PS3.5 §8.2.5-8.2.7): passed through when stored and listed, never transcoded."""

UNCOMPRESSED_TRANSFER_SYNTAXES: Final = frozenset(
    {TS_IMPLICIT_VR_LE, TS_EXPLICIT_VR_LE, TS_DEFLATED_EXPLICIT_VR_LE, TS_EXPLICIT_VR_BE}
)
