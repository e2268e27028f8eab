"""Byte mutations for the deterministic fuzz tests (endpoint, client reader, store put).

Each operation changes a ``bytearray`` in place at a position the caller's seeded
``random.Random`` picks; :func:`mutate` applies a few of them, chosen with weights, so a test
states its mix of mutations and stays reproducible from its seed.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

Operation = Callable[[bytearray, int, random.Random], None]


def replace_with(tokens: Sequence[bytes], longest: int = 20) -> Operation:
    """Replace up to ``longest`` bytes at the position with one of ``tokens``."""

    def operation(data: bytearray, at: int, rng: random.Random) -> None:
        data[at : at + rng.randint(1, longest)] = rng.choice(tokens)

    return operation


def insert_bytes(longest: int = 1) -> Operation:
    """Insert 1..``longest`` random bytes."""

    def operation(data: bytearray, at: int, rng: random.Random) -> None:
        data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, longest)))

    return operation


def delete(longest: int) -> Operation:
    """Delete up to ``longest`` bytes."""

    def operation(data: bytearray, at: int, rng: random.Random) -> None:
        del data[at : at + rng.randint(1, longest)]

    return operation


def duplicate(longest: int) -> Operation:
    """Repeat up to ``longest`` bytes in place."""

    def operation(data: bytearray, at: int, rng: random.Random) -> None:
        data[at:at] = bytes(data[at : at + rng.randint(1, longest)])

    return operation


def set_byte(data: bytearray, at: int, rng: random.Random) -> None:
    """Overwrite one byte."""
    if at < len(data):
        data[at] = rng.randrange(256)


def truncate(data: bytearray, at: int, rng: random.Random) -> None:
    """Cut everything from the position on."""
    del data[at:]


def replace_text(tokens: Sequence[bytes]) -> Operation:
    """Replace the text between the next ``>`` and ``<`` (an element's content, the markup
    kept) with 1..3 copies of one of ``tokens``."""

    def operation(data: bytearray, at: int, rng: random.Random) -> None:
        start = data.find(b">", at)
        end = data.find(b"<", start)
        if start != -1 and end != -1:
            data[start + 1 : end] = rng.choice(tokens) * rng.randint(1, 3)

    return operation


def repeat_tag(data: bytearray, at: int, rng: random.Random) -> None:
    """Repeat the next ``<...>`` tag."""
    start = data.find(b"<", at)
    end = data.find(b">", start)
    if start != -1 and end != -1:
        data[start:start] = bytes(data[start : end + 1])


def mutate(
    data: bytes,
    rng: random.Random,
    operations: Sequence[tuple[float, Operation]],
    rounds: tuple[int, int] = (1, 4),
    focus: tuple[float, int] | None = None,
) -> bytes:
    """``data`` after ``rounds`` (least, most) operations, each chosen by its weight.

    ``focus`` = (probability, length): with that probability a position falls within the first
    ``length`` bytes (e.g. a DICOM header), else anywhere.
    """
    out = bytearray(data)
    weights = [weight for weight, _ in operations]
    for _ in range(rng.randint(*rounds)):
        end = len(out)
        if focus is not None and rng.random() < focus[0]:
            end = min(end, focus[1])
        at = rng.randrange(end) if end else 0
        (operation,) = rng.choices([op for _, op in operations], weights)
        operation(out, at, rng)
    return bytes(out)
