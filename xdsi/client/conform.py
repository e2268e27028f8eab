"""The server's transfer-syntax rule, applied by the consumer to what it received (RAD69-005).

An Imaging Document Source must answer in one of the listed transfer syntaxes (RAD69-005), but
not every one does: dcm4chee answers in the stored syntax even when it is not listed
(:mod:`xdsi.imaging.transcode`, module docstring).  ``xdsi retrieve --ts`` therefore checks every
received DICOM document; one in a syntax that was not listed is converted locally with the same
rule and the same transcoder the server uses (:func:`~xdsi.imaging.transcode.choose_transfer_syntax`
and :func:`~xdsi.imaging.transcode.transcode`): the first listed syntax it can be produced in
losslessly, a listed lossy one only when no lossless one is listed.  If no listed syntax can be
produced, the file is kept as received and the caller reports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pydicom import dcmread
from pydicom.errors import InvalidDicomError

from xdsi.errors import XdsiError
from xdsi.fsutil import replace_atomically
from xdsi.imaging.transcode import choose_transfer_syntax, transcode


@dataclass(frozen=True)
class Conformed:
    """What :func:`conform` did to one received file."""

    received: str
    """Transfer Syntax UID the document arrived in ("" if it is not a DICOM Part 10 file)."""
    written: str | None
    """The listed syntax the file is now in; None if none could be produced (file unchanged)."""
    reason: str = ""
    """Why no listed syntax could be produced."""

    @property
    def converted(self) -> bool:
        return self.written is not None and self.written != self.received


def conform(path: Path, accepted: Sequence[str]) -> Conformed:
    """Make the DICOM file at ``path`` be in one of ``accepted`` (in preference order).

    A file already in a listed syntax is left alone; otherwise it is replaced, atomically, by
    its conversion to the syntax the rule chooses.
    """
    try:
        with path.open("rb") as fh:
            header = dcmread(fh, stop_before_pixels=True)
    except (InvalidDicomError, EOFError, ValueError, KeyError, OSError) as exc:
        return Conformed("", None, f"not a readable DICOM file: {exc}")
    meta = getattr(header, "file_meta", None)
    received = str(meta.get("TransferSyntaxUID", "")).strip() if meta is not None else ""
    listed = [uid.strip() for uid in accepted]
    if received in listed:
        return Conformed(received, received)
    target = choose_transfer_syntax(received, listed, header)
    if target is None:
        return Conformed(received, None, "no listed transfer syntax can be produced from it")
    try:
        data = transcode(path, target)
    except XdsiError as exc:
        return Conformed(received, None, exc.context)
    replace_atomically(path, data, prefix=".conform-", suffix=".dcm")
    return Conformed(received, target)


__all__ = ["Conformed", "conform"]
