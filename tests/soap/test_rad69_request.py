"""The RAD-69 request reader (:func:`xdsi.soap.convert.request_from_wire`): what consumers send,
read leniently (IHE RAD TF-2 §4.69.4.1.2; conformance.md §1 "Lenient body"); and the response
writer's escaping."""

from __future__ import annotations

import pytest
from lxml import etree

from xdsi import ns
from xdsi.model import (
    DocumentRequest,
    Outcome,
    Payload,
    RetrievedDocument,
    RetrieveImagingDocumentSetRequest,
)
from xdsi.soap.convert import request_from_wire, response_to_wire


def _read(inner: str) -> RetrieveImagingDocumentSetRequest:
    return request_from_wire(
        etree.fromstring(
            f'<r:RetrieveImagingDocumentSetRequest xmlns:r="{ns.XDSI_B}" xmlns:x="{ns.XDS_B}"'
            f' xmlns:o="urn:example:other">{inner}</r:RetrieveImagingDocumentSetRequest>'
        )
    )


def _one(study: str = "1.2", series: str = "1.2.3", uid: str = "1.2.3.4", **extra: str) -> str:
    children = "".join(f"<x:{k}>{v}</x:{k}>" for k, v in extra.items())
    return (
        f'<r:StudyRequest studyInstanceUID="{study}"><r:SeriesRequest seriesInstanceUID="{series}">'
        f"<x:DocumentRequest>{children}<x:DocumentUniqueId>{uid}</x:DocumentUniqueId>"
        "</x:DocumentRequest></r:SeriesRequest></r:StudyRequest>"
    )


def test_the_schema_form() -> None:
    request = _read(
        _one(RepositoryUniqueId=" 1.9 ", HomeCommunityId="urn:oid:1.8")
        + "<r:TransferSyntaxUIDList>"
        "<r:TransferSyntaxUID> 1.2.840.10008.1.2.1 </r:TransferSyntaxUID>"
        "<r:TransferSyntaxUID/></r:TransferSyntaxUIDList>"
    )
    assert request == RetrieveImagingDocumentSetRequest(
        (DocumentRequest("1.2", "1.2.3", "1.2.3.4", "1.9", "urn:oid:1.8"),),
        ("1.2.840.10008.1.2.1",),
    )


def test_hierarchy_and_order_are_kept() -> None:
    request = _read(
        '<r:StudyRequest studyInstanceUID="1"><r:SeriesRequest seriesInstanceUID="1.1">'
        "<x:DocumentRequest><x:DocumentUniqueId>a</x:DocumentUniqueId></x:DocumentRequest>"
        "<x:DocumentRequest><x:DocumentUniqueId>b</x:DocumentUniqueId></x:DocumentRequest>"
        '</r:SeriesRequest><r:SeriesRequest seriesInstanceUID="1.2"><x:DocumentRequest>'
        "<x:DocumentUniqueId>c</x:DocumentUniqueId></x:DocumentRequest></r:SeriesRequest>"
        "</r:StudyRequest>" + _one("2", "2.1", "d")
    )
    assert [(d.study_instance_uid, d.series_instance_uid, d.document_unique_id)
            for d in request.documents] == [
        ("1", "1.1", "a"), ("1", "1.1", "b"), ("1", "1.2", "c"), ("2", "2.1", "d")
    ]
    assert request.transfer_syntax_uids == ()


@pytest.mark.parametrize(
    "inner",
    [
        # children in another namespace or none, as spyne's parser matched them by local name
        _one().replace("r:", "o:").replace("x:", "o:"),
        _one().replace("r:", "").replace("x:", ""),
        # attribute names in another case or namespace
        _one().replace("studyInstanceUID=", "StudyInstanceUID=").replace(
            "seriesInstanceUID=", "o:seriesInstanceUID="
        ),
        # stray text, comments and unknown children (PS3.18's wado:Anonymize) are ignored
        _one().replace("<x:DocumentUniqueId>", "text<!-- c --><o:Anonymize>yes</o:Anonymize>"
                       "<x:DocumentUniqueId>"),
        # whitespace around values
        _one(study=" 1.2 ", uid="\n 1.2.3.4 \n"),
    ],
    ids=["other namespace", "no namespace", "attribute spelling", "stray content", "whitespace"],
)
def test_lenient_forms_read_as_the_schema_form(inner: str) -> None:
    assert _read(inner).documents == (DocumentRequest("1.2", "1.2.3", "1.2.3.4"),)


def test_missing_values_are_empty_for_the_transaction_to_judge() -> None:
    request = _read(
        "<r:StudyRequest><r:SeriesRequest><x:DocumentRequest><x:DocumentUniqueId/>"
        "<x:RepositoryUniqueId> </x:RepositoryUniqueId></x:DocumentRequest></r:SeriesRequest>"
        "</r:StudyRequest>"
    )
    assert request.documents == (DocumentRequest("", "", "", None, None),)


def test_a_repeated_single_valued_child_counts_once_the_last() -> None:
    request = _read(
        _one(uid="second").replace("<x:DocumentRequest>", "<x:DocumentRequest>"
                                   "<x:DocumentUniqueId>first</x:DocumentUniqueId>")
        + "<r:TransferSyntaxUIDList><r:TransferSyntaxUID>1</r:TransferSyntaxUID>"
        "</r:TransferSyntaxUIDList><r:TransferSyntaxUIDList><r:TransferSyntaxUID>2"
        "</r:TransferSyntaxUID></r:TransferSyntaxUIDList>"
    )
    assert [d.document_unique_id for d in request.documents] == ["second"]
    assert request.transfer_syntax_uids == ("2",)


def test_an_empty_request_holds_no_documents() -> None:
    assert _read("") == RetrieveImagingDocumentSetRequest((), ())


# --- the response writer --------------------------------------------------------------------------


def test_echoed_values_are_escaped_in_the_response() -> None:
    """HomeCommunityId and RepositoryUniqueId are echoed as sent when no check applies: markup,
    quotes and a CR in them come back as the same text (response_to_wire writes text)."""
    odd = 'urn:oid:1.2 & <x> "q"\r\nend'
    outcome = Outcome(
        documents=[
            RetrievedDocument(
                DocumentRequest("1.2", "1.2.3", "1.2.3.4", odd, odd),
                Payload(ns.MEDIA_DICOM, lambda: iter([b"DICM"]), 4),
            )
        ]
    )
    element, attachments = response_to_wire(outcome)
    again = etree.fromstring(etree.tostring(element))
    names = {"x": ns.XDS_B, "xop": ns.XOP}
    assert again.findtext("x:DocumentResponse/x:HomeCommunityId", namespaces=names) == odd
    assert again.findtext("x:DocumentResponse/x:RepositoryUniqueId", namespaces=names) == odd
    include = again.find("x:DocumentResponse/x:Document/xop:Include", names)
    assert include.get("href") == "cid:" + attachments[0].content_id.replace(":", "%3A")
    assert etree.QName(again[0]).localname == "RegistryResponse"
    assert again[0].get("status") == ns.STATUS_SUCCESS
