"""Generate a realistic CT study for benchmarks: ``generate_ct_study(dest, n, series)``.

Every instance is pydicom-data's ``693_UNCR.dcm`` (512x512, 16 bits allocated, Explicit VR Little
Endian, about 526 kB) with its own SOP Instance UID, one Study Instance UID for the whole study
and one Series Instance UID per series; instance number and slice position advance through each
series.  400 instances make about 210 MB.
"""

from __future__ import annotations

import copy
from pathlib import Path

from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import FileDataset
from pydicom.uid import generate_uid

SOURCE_NAME = "693_UNCR.dcm"
SLICE_SPACING_MM = 1.25


def ct_source() -> FileDataset:
    """The source slice; raises SystemExit with a hint when pydicom-data is missing."""
    path = get_testdata_file(SOURCE_NAME)
    if path is None:
        raise SystemExit("pydicom-data is needed (pip install pydicom-data)")
    return dcmread(path)


def generate_ct_study(
    dest: Path, n: int = 400, series: int = 2, source: FileDataset | None = None
) -> list[Path]:
    """Write ``n`` instances of one CT study, spread over ``series`` series, below ``dest``.

    Files are ``dest/series<k>/ct<i>.dcm``; the list is returned in instance order.
    """
    # One private copy, rewritten in place for every instance: each varying attribute is set on
    # every round, and copying the 512 kB of pixel data per instance would only cost time.
    ds = ct_source() if source is None else copy.deepcopy(source)
    study_uid = generate_uid()
    series_uids = [generate_uid() for _ in range(series)]
    paths: list[Path] = []
    per_series = -(-n // series)  # ceiling: the last series may be shorter
    for i in range(n):
        k, position = divmod(i, per_series)
        sop_uid = generate_uid()
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uids[k]
        ds.SeriesNumber = k + 1
        ds.SOPInstanceUID = sop_uid
        ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
        ds.InstanceNumber = position + 1
        ds.ImagePositionPatient = [0.0, 0.0, -position * SLICE_SPACING_MM]
        ds.SliceLocation = -position * SLICE_SPACING_MM
        folder = dest / f"series{k + 1}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"ct{i:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
