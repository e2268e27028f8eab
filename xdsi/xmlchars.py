"""Characters an XML 1.0 document can carry (XML 1.0 §2.2, the ``Char`` production).

Text that reaches our XML from outside the parsed request — HTTP header values quoted in a SOAP
fault, exception messages about a stored file's content, DICOM values in the Native DICOM Model —
may hold characters XML 1.0 cannot carry even as character references (most C0 controls,
U+FFFE/U+FFFF, lone surrogates).  lxml refuses to write them (``ValueError``), so they are
replaced by U+FFFD first: a fault must still be a well-formed fault.
"""

from __future__ import annotations

import re
from typing import Final

XML_INVALID: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
"""One character outside the XML 1.0 ``Char`` production."""


def xml_chars(text: str) -> str:
    """``text`` with every character XML 1.0 cannot carry replaced by U+FFFD."""
    return XML_INVALID.sub("\ufffd", text)


__all__ = ["XML_INVALID", "xml_chars"]
