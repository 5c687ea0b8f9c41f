"""`RunLiveness`, the pure rule that calls a run lost: it names an agent instance, is active, and that instance, once
seen present (live, or at the session's opening for runs in history), is present no more."""

from __future__ import annotations

from ably.types.presence import PresenceAction, PresenceMessage

from langchain_ably_transport.session.liveness import AGENT_TAG, RunLiveness
from langchain_ably_transport.session.tree import ConversationTree
from langchain_ably_transport.wire import names
from langchain_ably_transport.wire.headers import run_end_message, run_start_message

ONE, TWO = "a" * 32, "b" * 32


def _start(tree: ConversationTree, liveness: RunLiveness, run_id: str, instance: str | None = ONE) -> None:
    wire = run_start_message(run_id=run_id, invocation_id=f"inv-{run_id}", input_codec_message_id="u1")
    if instance is not None:
        wire.transport[names.HEADER_LIVENESS] = instance
    wire.serial = f"s-{run_id}"
    tree.apply(wire, [])
    liveness.on_lifecycle(wire)


def _member(action: int, instance: str = ONE, client_id: str = "agent", data: object = None,
            connection_id: str = "c1") -> PresenceMessage:
    return PresenceMessage(action=action, client_id=client_id, connection_id=connection_id,
                           data={"agent": AGENT_TAG, "instance": instance} if data is None else data)


def _lost(tree: ConversationTree, liveness: RunLiveness) -> list[str]:
    return [run.run_id for run in liveness.lost(tree)]


def test_a_run_whose_instance_leaves_is_lost_and_an_ended_one_is_not():
    tree, liveness = ConversationTree(), RunLiveness()
    _start(tree, liveness, "r1")
    _start(tree, liveness, "r2")
    liveness.on_presence(_member(PresenceAction.ENTER))
    assert liveness.lost(tree) == [] and liveness.is_present("r1")
    end = run_end_message(run_id="r2")
    end.serial = "s-z"
    tree.apply(end, [])
    liveness.on_presence(_member(PresenceAction.LEAVE))
    lost = liveness.lost(tree)
    assert [run.run_id for run in lost] == ["r1"] and not liveness.is_present("r1")
    assert lost[0].invocation_id == "inv-r1" and lost[0].input_codec_message_id == "u1" and lost[0].instance == ONE


def test_only_the_instance_that_left_loses_its_runs():
    tree, liveness = ConversationTree(), RunLiveness()
    _start(tree, liveness, "mine", ONE)
    _start(tree, liveness, "theirs", TWO)
    liveness.on_presence(_member(PresenceAction.ENTER, ONE, connection_id="c1"))
    liveness.on_presence(_member(PresenceAction.ENTER, TWO, connection_id="c2"))
    liveness.on_presence(_member(PresenceAction.LEAVE, TWO, connection_id="c2"))
    assert _lost(tree, liveness) == ["theirs"]


def test_a_live_run_whose_instance_was_not_seen_yet_and_an_unmarked_run_are_never_lost():
    tree, liveness = ConversationTree(), RunLiveness()
    _start(tree, liveness, "new")
    _start(tree, liveness, "js", instance=None)
    _start(tree, liveness, "old-agent", instance="presence")  # an earlier version's mark names no instance
    liveness.snapshot_taken(ConversationTree())  # presence was read before these runs were folded
    assert liveness.lost(tree) == []


def test_runs_in_history_need_their_instance_present_at_the_snapshot():
    tree, liveness = ConversationTree(), RunLiveness()
    _start(tree, liveness, "old")
    _start(tree, liveness, "js", instance=None)
    liveness.snapshot_taken(tree)
    assert _lost(tree, liveness) == ["old"]
    liveness.on_presence(_member(PresenceAction.PRESENT))
    assert liveness.lost(tree) == []


def test_a_reconnected_instance_on_a_new_connection_still_vouches_for_its_runs():
    tree, liveness = ConversationTree(), RunLiveness()
    _start(tree, liveness, "r1")
    liveness.on_presence(_member(PresenceAction.ENTER, connection_id="c1"))
    liveness.on_presence(_member(PresenceAction.ENTER, connection_id="c2"))
    liveness.on_presence(_member(PresenceAction.LEAVE, connection_id="c1"))
    assert liveness.lost(tree) == []


def test_only_trusted_members_and_well_formed_data_vouch_for_a_run():
    tree, liveness = ConversationTree(), RunLiveness(frozenset({"agent"}))
    _start(tree, liveness, "r1")
    liveness.on_presence(_member(PresenceAction.ENTER))
    liveness.on_presence(_member(PresenceAction.LEAVE))
    for hostile in (_member(PresenceAction.ENTER, client_id="mallory", connection_id="m"),
                    _member(PresenceAction.ENTER, data={"agent": AGENT_TAG, "instance": [ONE]}, connection_id="m2"),
                    _member(PresenceAction.ENTER, data={"agent": AGENT_TAG, "runs": ["r1"]}, connection_id="m3"),
                    _member(PresenceAction.ENTER, data=ONE, connection_id="m4")):
        liveness.on_presence(hostile)
        assert _lost(tree, liveness) == ["r1"]
