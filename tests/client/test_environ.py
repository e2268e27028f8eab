"""Proxy and CA-bundle settings from the environment (``xdsi.client.environ``): requests' own
answers, read again whenever a variable or the session changes, through a real loopback proxy."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import requests

from tests.client.live import LiveServer
from xdsi import ns
from xdsi.client.environ import VARIABLES, send_settings
from xdsi.client.transport import post_envelope
from xdsi.errors import TransportFailure


@dataclass
class Proxy:
    url: str
    seen: list[str] = field(default_factory=list)
    """The request targets it received (absolute URIs, as clients send them to a proxy)."""


@pytest.fixture
def proxy() -> Iterator[Proxy]:
    """A loopback HTTP proxy that records each request and answers 502 (a gateway error)."""
    found = Proxy("")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            found.seen.append(self.path)
            self.send_response(502)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", "7")
            self.end_headers()
            self.wfile.write(b"proxied")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    found.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield found
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _went_direct(session: requests.Session, endpoint: str) -> bool:
    """Post a non-request to ``endpoint``: the server answers a SOAP fault, the proxy a 502."""
    try:
        with post_envelope(session, endpoint, b"<x/>", ns.ACTION_RAD69, False, 30.0) as answer:
            return answer.status_code in (400, 500)
    except TransportFailure as exc:
        assert "HTTP 502" in str(exc)
        return False


def test_environment_changes_take_effect_on_the_next_request(
    live: LiveServer, proxy: Proxy, clean_environment: pytest.MonkeyPatch
) -> None:
    env = clean_environment
    session = requests.Session()
    assert _went_direct(session, live.endpoint)
    env.setenv("HTTP_PROXY", proxy.url)
    assert not _went_direct(session, live.endpoint)
    assert proxy.seen == [live.endpoint]
    env.setenv("no_proxy", "127.0.0.1")
    assert _went_direct(session, live.endpoint)
    env.delenv("no_proxy")
    env.delenv("HTTP_PROXY")
    assert _went_direct(session, live.endpoint)
    env.setenv("all_proxy", proxy.url)
    assert not _went_direct(session, live.endpoint)
    assert len(proxy.seen) == 2


def test_session_changes_take_effect_on_the_next_request(
    live: LiveServer, proxy: Proxy, clean_environment: pytest.MonkeyPatch
) -> None:
    clean_environment.setenv("http_proxy", proxy.url)
    session = requests.Session()
    assert not _went_direct(session, live.endpoint)
    session.trust_env = False
    assert _went_direct(session, live.endpoint)
    session.proxies = {"http": proxy.url}
    assert not _went_direct(session, live.endpoint)
    assert len(proxy.seen) == 2


@pytest.mark.parametrize(
    "variables",
    [
        {},
        {"HTTPS_PROXY": "http://proxy.example:3128", "NO_PROXY": "localhost"},
        {"http_proxy": "http://p:1", "no_proxy": "host.example", "REQUESTS_CA_BUNDLE": "/ca.pem"},
        {"HTTP_PROXY": "http://p:1", "REQUEST_METHOD": "GET"},  # CGI: HTTP_PROXY is ignored
        {"CURL_CA_BUNDLE": "/curl.pem", "ALL_PROXY": "socks5://p:1"},
    ],
)
@pytest.mark.parametrize("url", ["http://host.example:8080/x", "https://localhost/y"])
def test_same_settings_as_requests(
    clean_environment: pytest.MonkeyPatch, variables: dict[str, str], url: str
) -> None:
    for name, value in variables.items():
        clean_environment.setenv(name, value)
    session = requests.Session()
    expected = dict(session.merge_environment_settings(url, {}, True, None, None))
    assert send_settings(session, url) == expected
    again = send_settings(session, url)  # from the cache now
    assert again == expected
    again["proxies"]["http"] = "http://changed:1"
    assert send_settings(session, url) == expected


def test_unhashable_session_settings_are_not_cached(clean_environment: pytest.MonkeyPatch) -> None:
    session = requests.Session()
    session.cert = ["client.pem", "client.key"]  # type: ignore[assignment]
    settings = send_settings(session, "http://host.example/x")
    assert settings["cert"] == ["client.pem", "client.key"]
