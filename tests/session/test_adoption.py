"""Adoption claims, folded as every process folds them: the first claim of an attempt wins everywhere."""

from __future__ import annotations

from langchain_ably_transport.session.adoption import AdoptionClaims
from langchain_ably_transport.wire import names
from langchain_ably_transport.wire.envelope import WireMessage


def _claim(run_id: str, invocation_id: str, attempt: str | None, name: str = names.RUN_RESUME,
           serial: str | None = None) -> WireMessage:
    transport = {names.HEADER_RUN_ID: run_id, names.HEADER_INVOCATION_ID: invocation_id}
    if attempt is not None:
        transport[names.HEADER_ADOPTION] = attempt
    return WireMessage(name=name, transport=transport, serial=serial)


def test_the_first_claim_of_each_attempt_wins_and_attempts_count_up():
    claims = AdoptionClaims()
    for wire in (_claim("r", "a", "1"), _claim("r", "b", "1"), _claim("r", "c", "2"), _claim("other", "d", "1")):
        claims.fold(wire)
    assert claims.first("r", 1) == "a" and claims.first("r", 2) == "c" and claims.first("r", 3) is None
    assert claims.attempts("r") == 2 and claims.attempts("other") == 1 and claims.attempts("never") == 0


def test_only_resumes_with_a_well_formed_attempt_are_claims():
    claims = AdoptionClaims()
    for wire in (_claim("r", "a", None), _claim("r", "b", "x"), _claim("r", "c", "-1"), _claim("r", "d", "99999"),
                 _claim("r", "e", "1", name=names.RUN_START), _claim("", "f", "1")):
        claims.fold(wire)
    assert claims.attempts("r") == 0 and claims.first("r", 1) is None


def test_a_claim_that_came_second_in_its_attempt_has_lost_and_other_messages_never_lose():
    claims = AdoptionClaims()
    first, second, later = _claim("r", "a", "1"), _claim("r", "b", "1"), _claim("r", "c", "2")
    for wire in (first, second, later):
        claims.fold(wire)
    assert [claims.lost(w) for w in (first, second, later)] == [False, True, False]
    assert not claims.lost(_claim("r", "z", None)) and not claims.lost(_claim("r", "z", "1", name=names.RUN_END))


def test_the_earliest_claim_in_the_channels_order_wins_even_when_it_folds_later():
    """A process whose connection has no echo folds its own claim at its ACK, maybe before an earlier claim of
    another process arrives: the channel's order (the serial) decides, not the order of folding."""
    claims = AdoptionClaims()
    mine, earlier = _claim("r", "mine", "1", serial="0002"), _claim("r", "theirs", "1", serial="0001")
    claims.fold(mine)
    assert claims.first("r", 1) == "mine"
    claims.fold(earlier)
    assert claims.first("r", 1) == "theirs"
    assert [claims.lost(w) for w in (mine, earlier)] == [True, False]
