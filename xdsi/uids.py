"""DICOM UID grammar (PS3.5 §9.1): the only gate through which a UID may become a file name.

A UID is at most 64 characters of digits and dots; each component is a non-empty run of digits
without a leading zero (except the single digit ``0``).  ``../../etc`` is therefore refused.
"""

from __future__ import annotations

import functools
import re
from typing import Final

from xdsi.errors import InvalidUID

MAX_UID_LENGTH: Final = 64
_UID_RE: Final = re.compile(r"(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))*")


def is_valid_uid(value: object) -> bool:
    """True if ``value`` is a str that matches the PS3.5 §9.1 UID grammar."""
    return isinstance(value, str) and 0 < len(value) <= MAX_UID_LENGTH and _matches(value)


@functools.lru_cache(maxsize=4096)
def _matches(value: str) -> bool:
    """The grammar check, remembered: a RAD-69 request repeats its study and series UIDs for
    every document and each is checked more than once (~1,600 checks for 400 documents)."""
    return _UID_RE.fullmatch(value) is not None


def require_uid(value: object, what: str = "UID") -> str:
    """Return ``value`` if it is a valid UID, else raise :class:`~xdsi.errors.InvalidUID`."""
    if not is_valid_uid(value):
        raise InvalidUID(f"{what} is not a valid DICOM UID (PS3.5 §9.1): {value!r}")
    assert isinstance(value, str)
    return value
