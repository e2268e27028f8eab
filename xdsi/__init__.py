"""xdsi: a DICOM WADO-WS / IHE XDS-I.b Imaging Document Source.

IHE RAD TF-2 §4.69 (RAD-69 Retrieve Imaging Document Set) and DICOM PS3.18 2017b §6.4
(WADO-WS: Retrieve Imaging Document Set, Rendered, Metadata), served from a DICOM store.
"""

from xdsi.config import Settings, load_settings

__version__ = "0.1.0"

__all__ = ["Settings", "__version__", "load_settings"]
