"""The SOAP 1.2 endpoint of the Imaging Document Source (the only package that imports spyne).

Public entry point: :func:`make_app` (a WSGI application).  See :mod:`xdsi.soap.app` for the
request pipeline and the modules it names for each step.
"""

from __future__ import annotations

from xdsi.soap.app import make_app

__all__ = ["make_app"]
