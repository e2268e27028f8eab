"""Mutated files, a deterministic fuzz of the store's put: every input is stored or refused
with one of the store's errors (NotDicom, CorruptDicom, InvalidUID: a StoreError), never another
exception, and the store stays whole (``xdsi check`` finds nothing).  Two bugs were found this
way: an unknown VR on an element the checks read, and a raw data set with Command Set elements."""

from __future__ import annotations

import io
import random
from pathlib import Path

from xdsi.errors import StoreError
from xdsi.store.integrity import find_damage
from xdsi.store.sqlfile import SqlFileStore

ITERATIONS = 800


def mutate(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        # mostly within the first kilobyte, where the elements the store reads are
        end = min(len(out), 1024) if rng.random() < 0.7 else len(out)
        at = rng.randrange(end) if end else 0
        kind = rng.random()
        if kind < 0.5 and out:
            out[at] = rng.randrange(256)
        elif kind < 0.7:
            del out[at : at + rng.randint(1, 64)]
        elif kind < 0.85:
            out[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        else:
            del out[at:]
    return bytes(out)


def test_mutated_files_are_stored_or_refused_and_the_store_stays_whole(
    store: SqlFileStore, sample_files: list[Path]
) -> None:
    rng = random.Random(20261127)
    sources = [p.read_bytes() for p in sample_files[:40]]
    outcomes: dict[str, int] = {}
    for _ in range(ITERATIONS):
        data = mutate(rng.choice(sources), rng)
        try:
            name = store.put(io.BytesIO(data)).status.name
        except StoreError as exc:
            name = type(exc).__name__
        outcomes[name] = outcomes.get(name, 0) + 1
    assert {"CorruptDicom", "NotDicom", "STORED"} <= set(outcomes), outcomes
    assert list(find_damage(store)) == []
    for record in store.iter_records():
        assert b"".join(store.iter_bytes(record)) == record.path.read_bytes()
