"""SOP classes to propose for a C-GET when the PACS's C-FIND does not return SOP Class UID.

SOP Class UID (0008,0016) is an optional return key at IMAGE level (PS3.4 Table C.6-5), and
dcmqrscp, for one, leaves it empty.  Without it the C-GET could propose no storage context for
the instance, so the Modality (0008,0060), a series-level key most archives return, picks likely
classes (PS3.4 Annex B.5); unknown modalities get a broad default set.  C-MOVE needs none of
this: our storage SCP accepts every storage class.
"""

from __future__ import annotations

from typing import Final

from pydicom import uid

_SR: Final = (
    uid.BasicTextSRStorage,
    uid.EnhancedSRStorage,
    uid.ComprehensiveSRStorage,
    uid.KeyObjectSelectionDocumentStorage,
)
_SC: Final = (
    uid.SecondaryCaptureImageStorage,
    uid.MultiFrameTrueColorSecondaryCaptureImageStorage,
    uid.MultiFrameGrayscaleByteSecondaryCaptureImageStorage,
    uid.MultiFrameGrayscaleWordSecondaryCaptureImageStorage,
)

BY_MODALITY: Final[dict[str, tuple[str, ...]]] = {
    "CT": (uid.CTImageStorage, uid.EnhancedCTImageStorage),
    "MR": (uid.MRImageStorage, uid.EnhancedMRImageStorage),
    "US": (uid.UltrasoundImageStorage, uid.UltrasoundMultiFrameImageStorage),
    "CR": (uid.ComputedRadiographyImageStorage,),
    "DX": (uid.DigitalXRayImageStorageForPresentation,),
    "MG": (uid.DigitalMammographyXRayImageStorageForPresentation,),
    "XA": (uid.XRayAngiographicImageStorage,),
    "NM": (uid.NuclearMedicineImageStorage,),
    "PT": (uid.PositronEmissionTomographyImageStorage,),
    "RTIMAGE": (uid.RTImageStorage,),
    "SR": _SR,
    "KO": (uid.KeyObjectSelectionDocumentStorage,),
    "PR": (uid.GrayscaleSoftcopyPresentationStateStorage,),
    "DOC": (uid.EncapsulatedPDFStorage,),
    "XC": (uid.VLPhotographicImageStorage,),
    "SC": _SC,
    "OT": _SC,
}

DEFAULT: Final = (
    uid.CTImageStorage,
    uid.MRImageStorage,
    uid.EnhancedMRImageStorage,
    uid.UltrasoundMultiFrameImageStorage,
    *_SC[:2],
    *_SR,
)
"""Proposed when neither SOP Class nor a known Modality is given."""


def likely_sop_classes(modality: str) -> tuple[str, ...]:
    """Storage SOP classes an instance of ``modality`` probably has (SC and SR ones too, as
    secondary captures and reports often carry the modality of their study)."""
    found = BY_MODALITY.get(modality.strip().upper())
    if found is None:
        return DEFAULT
    return tuple(dict.fromkeys((*found, *_SC[:1], uid.KeyObjectSelectionDocumentStorage)))


__all__ = ["likely_sop_classes"]
