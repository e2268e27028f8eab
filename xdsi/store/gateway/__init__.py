"""Gateway mode: an existing PACS served as the Imaging Document Source (issue 7).

:class:`~xdsi.store.gateway.store.GatewayStore` implements the
:class:`~xdsi.store.base.Store` protocol with C-FIND and C-GET/C-MOVE
(:mod:`~xdsi.store.gateway.dimse`), a bounded LRU cache of fetched instances
(:mod:`~xdsi.store.gateway.cache`) and one-fetch-many-waiters retrieval
(:mod:`~xdsi.store.gateway.fetch`).  This package is the one place in ``store/`` that talks DICOM.
"""

from __future__ import annotations

from xdsi.store.gateway.store import GatewayStore

__all__ = ["GatewayStore"]
