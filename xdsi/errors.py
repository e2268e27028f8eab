"""The xdsi error hierarchy: each class carries the RegistryError code it is reported with.

Design note 4: XDS-level problems of one document become ``rs:RegistryError`` entries
(``XdsiError.to_registry_error``); only envelope-level problems become SOAP faults, and those are
raised inside :mod:`xdsi.soap` with their own classes.  Codes: ITI TF-3 §4.2.4 and PS3.18 2017b
Table 6.4-1 (constants in :mod:`xdsi.ns`).
"""

from __future__ import annotations

from xdsi import ns
from xdsi.model import RegistryError, Severity


class XdsiError(Exception):
    """A problem that is reported to the requester as one ``RegistryError``.

    Parameters
    ----------
    context:
        Human-readable text for ``@codeContext``.
    location:
        ``@location``: the DocumentUniqueId the error concerns, where there is one.
    code:
        Overrides the class's default ``error_code`` (e.g. the configurable not-found code).
    """

    error_code: str = ns.XDS_REPOSITORY_ERROR
    severity: Severity = Severity.ERROR

    def __init__(self, context: str, location: str | None = None, code: str | None = None) -> None:
        super().__init__(context)
        self.context = context
        self.location = location
        if code is not None:
            self.error_code = code

    def to_registry_error(self) -> RegistryError:
        return RegistryError(self.error_code, self.context, self.severity, self.location)


class RepositoryError(XdsiError):
    """Internal failure with no more detailed code (ITI: ``XDSRepositoryError``)."""


class UnknownRepository(XdsiError):
    """The RepositoryUniqueId is not one of ours (NIST ids_4812 case 1)."""

    error_code = ns.XDS_UNKNOWN_REPOSITORY_ID


class UnknownCommunity(XdsiError):
    """The HomeCommunityId names a community other than the configured one."""

    error_code = ns.XDS_UNKNOWN_COMMUNITY


class DocumentNotFound(XdsiError):
    """No instance with this SOP Instance UID (code configurable: ITI or dcm4chee style)."""

    error_code = ns.XDS_DOCUMENT_UNIQUE_ID_ERROR


class InconsistentIdentifiers(XdsiError):
    """The instance exists but not in the named series/study (PS3.18 ``0010``)."""

    error_code = ns.WADO_INCONSISTENT_IDENTIFIERS


class InvalidParameter(XdsiError):
    """A request value is empty or malformed (PS3.18 ``0012``)."""

    error_code = ns.WADO_INVALID_PARAMETER


class UnsupportedParameter(XdsiError):
    """A request parameter the server does not support (PS3.18 ``0013``)."""

    error_code = ns.WADO_UNSUPPORTED_PARAMETER


class FormatNotProvidable(XdsiError):
    """This object cannot be provided in the requested format (PS3.18 ``0007``).

    E.g. an SR or KOS (no Pixel Data) asked for as image/jpeg: the server supports the format, the
    object cannot be provided in it.
    """

    error_code = ns.WADO_FORMAT_NOT_PROVIDABLE


class TransferSyntaxUnavailable(FormatNotProvidable):
    """None of the listed transfer syntaxes can be produced (PS3.18 ``0007``, RAD69-005)."""


class FormatNotSupported(XdsiError):
    """The requested media type/format is not supported at all (PS3.18 ``0006``)."""

    error_code = ns.WADO_FORMAT_NOT_SUPPORTED


class ResourceLimit(XdsiError):
    """Size or count beyond configured limits (PS3.18 ``0005``)."""

    error_code = ns.WADO_RESOURCE_LIMIT


class ProcessingFailure(XdsiError):
    """Decoding, transcoding or rendering failed for this document (PS3.18 ``0014``)."""

    error_code = ns.WADO_PROCESSING_FAILURE


class AnonymizationFailed(XdsiError):
    """Anonymization was requested and cannot be honoured (PS3.18 ``0001``)."""

    error_code = ns.WADO_UNABLE_TO_ANONYMIZE



class SingleImageFormatUnavailable(XdsiError):
    """A single-image media type asked for a multi-frame object without FrameNumber (``0008``)."""

    error_code = ns.WADO_MULTIFRAME_SINGLE_IMAGE


class FrameOutOfRange(XdsiError):
    """FrameNumber is below 1 or above Number of Frames (PS3.18 ``0018``)."""

    error_code = ns.WADO_FRAME_OUT_OF_RANGE


class SopClassMismatch(XdsiError):
    """An identifier names an object of another kind, e.g. a PresentationUID that is not a
    presentation state (PS3.18 ``0009``)."""

    error_code = ns.WADO_SOP_CLASS_MISMATCH


class UnknownPresentation(XdsiError):
    """No presentation state with the PresentationUID is stored (PS3.18 ``0019``)."""

    error_code = ns.WADO_UNKNOWN_PRESENTATION


class UnknownPresentationSeries(XdsiError):
    """The presentation state is not in the PresentationSeriesUID series (PS3.18 ``0020``)."""

    error_code = ns.WADO_UNKNOWN_PRESENTATION_SERIES


class PacsUnavailable(RepositoryError):
    """Gateway mode: the PACS could not be asked or stopped answering (``XDSRepositoryError``).

    Unreachable, association rejected or aborted, or no answer within the configured timeouts;
    ``codeContext`` names the PACS and what happened.
    """


class RemoteRetrieveFailed(ProcessingFailure):
    """Gateway mode: the PACS reported a failed C-GET/C-MOVE sub-operation for this instance, or
    ended the retrieval without delivering it (PS3.18 ``0014``)."""


class OutOfResources(XdsiError):
    """Gateway mode: the instance does not fit in the cache of fetched instances now (ITI
    ``XDSRepositoryOutOfResources``; transient: retry when responses in progress have ended)."""

    error_code = ns.XDS_REPOSITORY_OUT_OF_RESOURCES


class StoreError(Exception):
    """Raised by a store for refused or failed writes; not sent on the wire as such."""


class InvalidUID(StoreError, ValueError):
    """A string is not a DICOM UID (PS3.5 §9.1) and must not be used, e.g. as a file name."""


class NotDicom(StoreError):
    """The input is not a DICOM Part 10 file or dataset."""


class CorruptDicom(StoreError):
    """The input looks like DICOM but cannot be parsed completely."""


# --- Requester side (xdsi.client) -----------------------------------------------------------------


class ClientError(Exception):
    """A problem on the requester side (:mod:`xdsi.client`); reported locally, never sent."""


class InvalidManifest(ClientError):
    """A KOS manifest that cannot give RAD-69 document requests (not DICOM, no evidence)."""


class InvalidRequest(ClientError):
    """The request cannot be built: values that do not fit the WSDL's types (e.g. no documents),
    or a WSDL without the RAD-69 operation."""


class TransportFailure(ClientError):
    """No usable HTTP exchange: connection refused or broken, or a non-SOAP HTTP error."""


class MalformedResponse(ClientError):
    """The response cannot be read completely: truncated multipart, missing part, not SOAP.

    Any document file being written when this is raised has been removed (RAD-69 issue: never a
    silently short document).
    """


class RemoteFault(ClientError):
    """The source answered with a SOAP Fault (SOAP 1.2 Part 1 §5.4).

    ``code`` is the ``env:Code/env:Value`` QName text (e.g. ``env:Sender``), ``subcodes`` the
    nested ``env:Subcode/env:Value`` texts outermost first, ``reason`` the ``env:Reason/env:Text``.
    """

    def __init__(self, code: str, subcodes: tuple[str, ...], reason: str) -> None:
        chain = " / ".join((code, *subcodes))
        super().__init__(f"SOAP fault {chain}: {reason}")
        self.code = code
        self.subcodes = subcodes
        self.reason = reason
