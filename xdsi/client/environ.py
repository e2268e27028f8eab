"""requests' environment settings for one request — proxies, CA bundle — read once per change.

With ``Session.trust_env`` (the default), every ``Session.request`` calls
``merge_environment_settings``, which walks and decodes all of ``os.environ`` twice
(``getproxies`` and ``proxy_bypass_environment``): ~160 µs per request on the reference
machine, more than the client's own reading of a one-document response.  :func:`send_settings`
returns the same dictionary, computed by requests itself, from a small cache keyed by what the
answer depends on: the URL, the session's ``trust_env``/``proxies``/``verify``/``cert``, and the
values of the variables requests and urllib consult for an HTTP(S) URL — ``http_proxy``,
``https_proxy``, ``all_proxy``, ``no_proxy`` in lower and upper case (the spellings curl,
wget, requests and urllib document), ``REQUEST_METHOD`` (urllib ignores ``HTTP_PROXY`` under
CGI), ``REQUESTS_CA_BUNDLE`` and ``CURL_CA_BUNDLE``.  Changing any of them, or the session,
takes effect on the next request, as with requests alone.  Not seen: a mixed-case spelling
(``Https_Proxy``) changed while the process runs.

Where urllib reads proxies from the operating system as well as the environment (macOS
System Configuration, the Windows registry), nothing is cached: requests does its own lookup.
"""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Hashable
from typing import Any, Final

import requests

__all__ = ["send_settings"]

VARIABLES: Final = (
    "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
    "no_proxy", "NO_PROXY", "REQUEST_METHOD", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
)  # fmt: skip
"""The environment variables requests' settings for an http(s) URL depend on."""
_ENVIRONMENT_ONLY: Final = urllib.request.getproxies is urllib.request.getproxies_environment
"""True where urllib takes proxies from the environment alone (Linux and other POSIX but macOS)."""
_MAX_ENTRIES: Final = 64

_cache: dict[Hashable, dict[str, Any]] = {}


def send_settings(session: requests.Session, url: str) -> dict[str, Any]:
    """``session.merge_environment_settings(url, {}, stream=True, None, None)``, cached.

    The result is what ``Session.request`` passes to ``Session.send`` (``proxies``, ``stream``,
    ``verify``, ``cert``); the caller gets its own copy.
    """
    if not _ENVIRONMENT_ONLY:
        return _merged(session, url)
    try:
        key: Hashable = (
            url,
            session.trust_env,
            tuple(os.environ.get(name) for name in VARIABLES) if session.trust_env else None,
            frozenset(session.proxies.items()),
            session.verify,
            session.cert,
        )
        settings = _cache.get(key)
    except TypeError:  # an unhashable verify/cert/proxy value: no caching
        return _merged(session, url)
    if settings is None:
        settings = _merged(session, url)
        if len(_cache) >= _MAX_ENTRIES:
            _cache.clear()
        _cache[key] = settings
    return {**settings, "proxies": dict(settings["proxies"])}


def _merged(session: requests.Session, url: str) -> dict[str, Any]:
    """What ``Session.request`` computes for a streamed request to ``url``, uncached."""
    merged: dict[str, Any] = dict(session.merge_environment_settings(url, {}, True, None, None))
    return merged
