"""An aggregate's stream id is the name-based UUID (version 5) of its kind
and domain id in the ledger's namespace: the same id always finds the same
stream, in this release and in every ledger written before it."""

from __future__ import annotations

from uuid import NAMESPACE_URL, uuid5

import pytest

from ledger.domain.common import LEDGER_NAMESPACE, stream_id
from ledger.domain.honours import Honours
from ledger.domain.volunteers import Volunteer


@pytest.mark.parametrize(
    ("kind", "domain_id"),
    [
        ("volunteer", "V1"),
        ("honours", "KS0570000"),
        ("venue", "昆山市新时代文明实践中心"),
        ("session", ""),
        ("order", "O-" + "9" * 60),
    ],
)
def test_a_stream_id_is_the_uuid5_of_its_kind_and_domain_id(
    kind: str, domain_id: str
) -> None:
    made = stream_id(kind, domain_id)

    assert made == uuid5(LEDGER_NAMESPACE, f"{kind}:{domain_id}")
    assert (made.version, made.variant) == (5, "specified in RFC 4122")


def test_aggregates_find_their_streams_by_kind_and_id() -> None:
    assert Volunteer.create_id("V1") == uuid5(LEDGER_NAMESPACE, "volunteer:V1")
    assert Honours.create_id("V1") == uuid5(LEDGER_NAMESPACE, "honours:V1")
    assert uuid5(NAMESPACE_URL, "urn:wenming-shijian-ledger") == LEDGER_NAMESPACE
