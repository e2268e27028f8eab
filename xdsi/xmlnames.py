"""Names of lxml elements in Clark notation (``{namespace}local``), read without building an
``etree.QName`` per element: the readers of rendered requests (server) and responses (client)
walk every child by name, and a QName each was a third of reading a one-document request."""

from __future__ import annotations


def split_tag(tag: str) -> tuple[str, str]:
    """(namespace, local name) of a Clark-notation tag; the namespace is ``""`` for none."""
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return "", tag


__all__ = ["split_tag"]
