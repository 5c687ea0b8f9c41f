"""`RunLiveness`, the pure rule that calls a run lost: marked, active, once listed (or in history), now unlisted."""

from __future__ import annotations

from ably.types.presence import PresenceAction, PresenceMessage

from langchain_ably_transport.session.liveness import AGENT_TAG, RunLiveness
from langchain_ably_transport.session.tree import ConversationTree
from langchain_ably_transport.wire import names
from langchain_ably_transport.wire.headers import run_end_message, run_start_message


def _start(tree: ConversationTree, liveness: RunLiveness, run_id: str, *, marked: bool = True) -> None:
    wire = run_start_message(run_id=run_id, invocation_id=f"inv-{run_id}", input_codec_message_id="u1")
    if marked:
        wire.transport[names.HEADER_LIVENESS] = names.LIVENESS_PRESENCE
    wire.serial = f"s-{run_id}"
    tree.apply(wire, [])
    liveness.on_lifecycle(wire)


def _member(action: int, runs: list[str], client_id: str = "agent", data: object = None) -> PresenceMessage:
    return PresenceMessage(action=action, client_id=client_id, connection_id="c1",
                           data={"agent": AGENT_TAG, "runs": runs} if data is None else data)


def test_a_listed_run_whose_member_leaves_is_lost_and_an_ended_one_is_not():
    tree, liveness = ConversationTree(), RunLiveness()
    _start(tree, liveness, "r1")
    _start(tree, liveness, "r2")
    liveness.on_presence(_member(PresenceAction.ENTER, ["r1", "r2"]))
    assert liveness.lost(tree) == []
    end = run_end_message(run_id="r2")
    end.serial = "s-z"
    tree.apply(end, [])
    liveness.on_presence(_member(PresenceAction.LEAVE, ["r1", "r2"]))
    lost = liveness.lost(tree)
    assert [run.run_id for run in lost] == ["r1"]
    assert lost[0].invocation_id == "inv-r1" and lost[0].input_codec_message_id == "u1"


def test_a_live_run_not_yet_listed_and_an_unmarked_run_are_never_lost():
    tree, liveness = ConversationTree(), RunLiveness()
    _start(tree, liveness, "new")
    _start(tree, liveness, "js", marked=False)
    liveness.snapshot_taken(ConversationTree())  # presence was read before these runs were folded
    assert liveness.lost(tree) == []


def test_runs_in_history_must_be_listed_in_the_snapshot():
    tree, liveness = ConversationTree(), RunLiveness()
    _start(tree, liveness, "old")
    _start(tree, liveness, "js", marked=False)
    liveness.snapshot_taken(tree)
    assert [run.run_id for run in liveness.lost(tree)] == ["old"]


def test_a_withdrawn_run_is_lost_only_if_still_active_and_updates_replace_the_list():
    tree, liveness = ConversationTree(), RunLiveness()
    _start(tree, liveness, "r1")
    liveness.on_presence(_member(PresenceAction.ENTER, ["r1"]))
    liveness.on_presence(_member(PresenceAction.UPDATE, []))
    assert [run.run_id for run in liveness.lost(tree)] == ["r1"], "withdrawn without an end: it was abandoned"
    liveness.on_presence(_member(PresenceAction.UPDATE, ["r1"]))
    assert liveness.lost(tree) == []


def test_only_trusted_members_and_well_formed_data_vouch_for_a_run():
    tree, liveness = ConversationTree(), RunLiveness(frozenset({"agent"}))
    _start(tree, liveness, "r1")
    liveness.on_presence(_member(PresenceAction.ENTER, ["r1"]))
    liveness.on_presence(_member(PresenceAction.LEAVE, ["r1"]))
    for hostile in (_member(PresenceAction.ENTER, ["r1"], client_id="mallory"),
                    _member(PresenceAction.ENTER, [], data={"agent": AGENT_TAG, "runs": "r1"}),
                    _member(PresenceAction.ENTER, [], data="r1")):
        liveness.on_presence(hostile)
        assert [run.run_id for run in liveness.lost(tree)] == ["r1"]
