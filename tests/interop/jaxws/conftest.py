"""The JAX-WS tests use the same live server fixture as the client tests."""

from tests.client.live import live  # noqa: F401  (fixture)
