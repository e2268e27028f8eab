"""Where the files that are not Python live: the WSDL/XSD set (``wsdl/``) and the sample studies.

In a source checkout (``pip install -e .``, the README's way) they are the checkout's own
``wsdl/`` and ``samples/``.  A wheel installs ``wsdl/`` as data files under
``<prefix>/share/xdsi/wsdl`` (``setup.cfg`` ``[options.data_files]``), so a plain ``pip install .``
serves its WSDL too.  The samples are not installed; ``xdsi serve --demo`` needs a checkout.
"""

from __future__ import annotations

import sys
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
"""The directory above the ``xdsi`` package: the repository root in a checkout."""
INSTALLED_SHARE = Path(sys.prefix) / "share" / "xdsi"


def wsdl_dir() -> Path:
    """``wsdl/`` of the checkout, else the installed copy (which may not exist)."""
    checkout = CHECKOUT / "wsdl"
    if checkout.is_dir():
        return checkout
    return INSTALLED_SHARE / "wsdl"


def samples_dir() -> Path:
    """``samples/dicom`` of the checkout (never installed)."""
    return CHECKOUT / "samples" / "dicom"


__all__ = ["samples_dir", "wsdl_dir"]
