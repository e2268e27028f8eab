"""DICOM instance stores behind the :class:`~xdsi.store.base.Store` protocol.

:func:`open_store` is the one way the rest of xdsi gets a store from :class:`~xdsi.config.Settings`;
:func:`open_source` picks between it and the PACS gateway for serving.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from xdsi.config import Settings
from xdsi.store.base import InstanceRecord, PutResult, PutStatus, Store

if TYPE_CHECKING:
    from xdsi.store.sqlfile import SqlFileStore


def __getattr__(name: str) -> Any:
    """``SqlFileStore`` on first use: importing the package (for ``xdsi.store.base``'s protocol
    types, as the render worker processes do) then does not pull in SQLAlchemy (~0.4 s)."""
    if name == "SqlFileStore":
        from xdsi.store.sqlfile import SqlFileStore

        return SqlFileStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_store(settings: Settings, *, recover: bool = True) -> SqlFileStore:
    """Open (creating on first use) the SQL index + file tree store of ``settings``.

    ``data_dir`` is created as needed; the index is ``settings.effective_database_url``.  Writes
    interrupted by a crash are rolled back unless ``recover`` is false (see
    :meth:`SqlFileStore.recover_interrupted_writes`).
    """
    from xdsi.store.sqlfile import SqlFileStore

    return SqlFileStore(
        settings.data_dir,
        settings.effective_database_url,
        duplicate_policy=settings.duplicate_policy,
        recover=recover,
    )


def open_source(settings: Settings) -> Store:
    """The store ``xdsi serve`` answers from: the PACS gateway when ``pacs_ae_title`` is set
    (:class:`~xdsi.store.gateway.GatewayStore`), else :func:`open_store`."""
    if settings.pacs_ae_title:
        from xdsi.store.gateway import GatewayStore  # pynetdicom only in gateway mode

        return GatewayStore(settings)
    return open_store(settings)


__all__ = [
    "InstanceRecord",
    "PutResult",
    "PutStatus",
    "SqlFileStore",
    "Store",
    "open_source",
    "open_store",
]
