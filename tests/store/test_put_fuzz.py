"""Mutated files, a deterministic fuzz of the store's put: every input is stored or refused
with one of the store's errors (NotDicom, CorruptDicom, InvalidUID: a StoreError), never another
exception, and the store stays whole (``xdsi check`` finds nothing).  Two bugs were found this
way: an unknown VR on an element the checks read, and a raw data set with Command Set elements."""

from __future__ import annotations

import io
import random
from pathlib import Path

from tests.mutations import delete, insert_bytes, mutate, set_byte, truncate
from xdsi.errors import StoreError
from xdsi.store.integrity import find_damage
from xdsi.store.sqlfile import SqlFileStore

ITERATIONS = 800


MUTATIONS = [(0.5, set_byte), (0.2, delete(64)), (0.15, insert_bytes(8)), (0.15, truncate)]
HEADER = (0.7, 1024)
"""Mostly within the first kilobyte, where the elements the store reads are."""


def test_mutated_files_are_stored_or_refused_and_the_store_stays_whole(
    store: SqlFileStore, sample_files: list[Path]
) -> None:
    rng = random.Random(20261127)
    sources = [p.read_bytes() for p in sample_files[:40]]
    outcomes: dict[str, int] = {}
    for _ in range(ITERATIONS):
        data = mutate(rng.choice(sources), rng, MUTATIONS, (1, 6), HEADER)
        try:
            name = store.put(io.BytesIO(data)).status.name
        except StoreError as exc:
            name = type(exc).__name__
        outcomes[name] = outcomes.get(name, 0) + 1
    assert {"CorruptDicom", "NotDicom", "STORED"} <= set(outcomes), outcomes
    assert list(find_damage(store)) == []
    for record in store.iter_records():
        assert b"".join(store.iter_bytes(record)) == record.path.read_bytes()
