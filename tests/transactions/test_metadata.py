"""The metadata transaction's cache warming (``xdsi serve --warm-metadata``) over a real store."""

from __future__ import annotations

import threading
from pathlib import Path

from tests.soap.metadata_support import Ask, metadata_request, read_answer
from tests.soap.support import Doc, call, envelope
from xdsi import ns
from xdsi.config import Settings
from xdsi.soap import make_app
from xdsi.store.base import Store
from xdsi.transactions.metadata import warm_cache
from xdsi.transactions.metadata_cache import NativeCache


def _cached(settings: Settings) -> list[Path]:
    return sorted((settings.data_dir / "cache").rglob("*.xml"))


def test_warm_cache_fills_every_instance(settings: Settings, store: Store) -> None:
    cache = NativeCache(settings.data_dir, settings.metadata_cache_bytes)
    count = warm_cache(cache, store)
    records = list(store.iter_records())  # type: ignore[attr-defined]
    assert count == len(records) == len(_cached(settings))
    assert cache.misses == count


def test_warming_stops_when_the_cache_is_full(settings: Settings, store: Store) -> None:
    cache = NativeCache(settings.data_dir, 30_000)  # room for a few models only
    count = warm_cache(cache, store)
    assert 0 < count < len(list(store.iter_records()))  # type: ignore[attr-defined]
    assert sum(p.stat().st_size for p in _cached(settings)) <= 30_000


def test_served_with_warm_metadata(settings: Settings, store: Store) -> None:
    app = make_app(settings, store, warm_metadata=True)
    for thread in threading.enumerate():
        if thread.name == "xdsi-metadata-warm":
            thread.join(timeout=120)
    records = list(store.iter_records())  # type: ignore[attr-defined]
    assert len(_cached(settings)) == len(records)
    record = records[0]
    doc = Doc(record.study_instance_uid, record.series_instance_uid, record.sop_instance_uid)
    reply = call(app, envelope(metadata_request([Ask(doc)]), action=ns.ACTION_METADATA))
    answer = read_answer(reply.xml())
    assert answer.status == ns.STATUS_SUCCESS
    cached = next(p for p in _cached(settings) if record.sop_instance_uid in p.name)
    assert answer.results[record.sop_instance_uid] == [cached.read_text(encoding="utf-8")]
