"""The streaming MTOM writer on its own: lazy production, closing, and refusing to end a package
whose document came out short or broken (never a silently short document)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.soap.support import parse_multipart
from xdsi import ns
from xdsi.soap.mtom import Attachment, MtomResponse, PayloadStreamError, cid_url, content_id

ENVELOPE = b"<env:Envelope xmlns:env='http://www.w3.org/2003/05/soap-envelope'/>"


class Source:
    """A payload that records what happened to it."""

    def __init__(self, parts: list[bytes], fail_after: int | None = None) -> None:
        self.parts = parts
        self.fail_after = fail_after
        self.started = False
        self.closed = False

    def __call__(self) -> Iterator[bytes]:
        self.started = True
        try:
            for i, part in enumerate(self.parts):
                if self.fail_after is not None and i >= self.fail_after:
                    raise OSError("read error (injected)")
                yield part
        finally:
            self.closed = True


def test_parts_are_produced_lazily_and_in_order() -> None:
    first, second = Source([b"\r\nDICM", b"\x00\n"]), Source([b"second"])
    package = MtomResponse(
        ENVELOPE,
        [
            Attachment(content_id("1.2.3", 1), ns.MEDIA_DICOM, first, 8),
            Attachment(content_id("1.2.3", 2), ns.MEDIA_DICOM, second, None),
        ],
    )
    stream = iter(package)
    root = next(stream)
    assert root.startswith(b"--" + package.boundary.encode()) and root.endswith(ENVELOPE)
    assert not first.started and not second.started  # nothing read before its part is due
    body = root + b"".join(stream)
    assert first.closed and second.closed
    parsed = parse_multipart(package.content_type, body)
    assert parsed.parts == {
        "1.2.3-1@urn:ihe:iti:xds-b:2007": b"\r\nDICM\x00\n",
        "1.2.3-2@urn:ihe:iti:xds-b:2007": b"second",
    }


def test_content_length_is_the_package_length_when_every_size_is_known() -> None:
    def package(second_size: int | None) -> MtomResponse:
        return MtomResponse(
            ENVELOPE,
            [
                Attachment(content_id("1.2.3", 1), ns.MEDIA_JPEG, Source([b"\xff\xd8", b"x"]), 3),
                Attachment(content_id("1.2.4", 2), ns.MEDIA_PNG, Source([b"png"]), second_size),
            ],
        )

    sized = package(3)
    assert sized.content_length == len(b"".join(sized))
    assert package(None).content_length is None
    assert MtomResponse(ENVELOPE, []).content_length == len(b"".join(MtomResponse(ENVELOPE, [])))


@pytest.mark.parametrize("case", ["raises", "short", "raises at start"])
def test_a_broken_payload_never_ends_the_package(case: str) -> None:
    if case == "raises":
        source, size = Source([b"abc", b"def"], fail_after=1), None
    elif case == "short":
        source, size = Source([b"abc"]), 10
    else:
        source, size = Source([b"abc"], fail_after=0), None
    package = MtomResponse(ENVELOPE, [Attachment("x@y", ns.MEDIA_DICOM, source, size)])
    produced = b""
    with pytest.raises(PayloadStreamError):
        for chunk in package:
            produced += chunk
    assert source.closed
    assert f"--{package.boundary}--".encode() not in produced


def test_close_mid_stream_closes_the_open_payload() -> None:
    source = Source([b"a" * 10] * 100)
    package = MtomResponse(ENVELOPE, [Attachment("x@y", ns.MEDIA_DICOM, source, None)])
    stream = iter(package)
    next(stream), next(stream), next(stream)  # root, part header, first chunk
    assert source.started and not source.closed
    package.close()  # what the WSGI server does when the client disconnects
    assert source.closed


def test_cid_url_is_percent_encoded() -> None:
    cid = content_id("1.2.840.1", 3)
    assert cid == f"1.2.840.1-3@{ns.XDS_CID_DOMAIN}"
    assert cid_url(cid) == "cid:1.2.840.1-3@urn%3Aihe%3Aiti%3Axds-b%3A2007"
