"""The conversation tree folded from wire messages: nodes, parents, siblings, branches, run status."""

from __future__ import annotations

from langchain_ably_transport.session.tree import ConversationTree
from langchain_ably_transport.wire import names
from langchain_ably_transport.wire.envelope import WireMessage
from langchain_ably_transport.wire.headers import run_end_message, run_start_message, run_suspend_message


def _input(serial: str, codec_id: str, *, parent: str | None = None, fork_of: str | None = None,
           run_id: str | None = None, event_id: str | None = None) -> WireMessage:
    # Each send has an event id of its own: the tree refuses a later input reusing one as a replay.
    transport = {names.HEADER_ROLE: names.ROLE_USER, names.HEADER_CODEC_MESSAGE_ID: codec_id,
                 names.HEADER_EVENT_ID: event_id or f"event-{codec_id}"}
    for key, value in ((names.HEADER_PARENT, parent), (names.HEADER_FORK_OF, fork_of),
                       (names.HEADER_RUN_ID, run_id)):
        if value:
            transport[key] = value
    return WireMessage(name=names.AI_INPUT, data="text", transport=transport, serial=serial)


def _output(serial: str, run_id: str, codec_id: str, parent: str) -> WireMessage:
    transport = {names.HEADER_ROLE: names.ROLE_ASSISTANT, names.HEADER_RUN_ID: run_id,
                 names.HEADER_CODEC_MESSAGE_ID: codec_id, names.HEADER_PARENT: parent}
    return WireMessage(name=names.AI_OUTPUT, data="", transport=transport, serial=serial)


def _at(message: WireMessage, serial: str) -> WireMessage:
    message.serial = serial
    return message


USER = [("input", {"kind": "user-message"})]
CHUNK = [("output", {"type": "text-delta"})]


def _conversation() -> ConversationTree:
    """u1 -> r1 (a1) -> u2 -> r2 (a2)."""
    tree = ConversationTree()
    tree.apply(_input("01", "u1"), USER)
    tree.apply(_at(run_start_message(run_id="r1", parent="u1", input_codec_message_id="u1"), "02"), [])
    tree.apply(_output("03", "r1", "a1", "u1"), CHUNK)
    tree.apply(_at(run_end_message(run_id="r1"), "04"), [])
    tree.apply(_input("05", "u2", parent="a1"), USER)
    tree.apply(_at(run_start_message(run_id="r2", parent="u2"), "06"), [])
    tree.apply(_output("07", "r2", "a2", "u2"), CHUNK)
    return tree


def test_inputs_and_runs_chain_through_parent_codec_message_ids():
    tree = _conversation()
    assert [n.key for n in tree.visible()] == ["u1", "r1", "u2", "r2"]
    assert tree.owner("a2").key == "r2" and tree.run("r1").status == names.RunStatus.COMPLETE
    assert tree.run("r2").status == names.RunStatus.ACTIVE
    assert [n.key for n in tree.branch_to("u2")] == ["u1", "r1", "u2"]


def test_an_edit_is_a_sibling_input_and_the_newest_is_shown_until_another_is_selected():
    tree = _conversation()
    tree.apply(_input("08", "u2-edit", parent="a1", fork_of="u2"), USER)
    tree.apply(_at(run_start_message(run_id="r3", parent="u2-edit", fork_of="u2"), "09"), [])
    tree.apply(_output("10", "r3", "a3", "u2-edit"), CHUNK)
    assert [n.key for n in tree.visible()] == ["u1", "r1", "u2-edit", "r3"]
    assert [n.key for n in tree.siblings("u2")] == ["u2", "u2-edit"]
    tree.select("u2")
    assert [n.key for n in tree.visible()] == ["u1", "r1", "u2", "r2"]


def test_a_regenerated_reply_is_a_sibling_run():
    tree = _conversation()
    tree.apply(_at(run_start_message(run_id="r2b", parent="u2", regenerates="a2"), "08"), [])
    tree.apply(_output("09", "r2b", "a2b", "u2"), CHUNK)
    assert [n.key for n in tree.siblings("r2")] == ["r2", "r2b"]
    assert tree.visible()[-1].key == "r2b" and tree.run("r2b").regenerates == "a2"


def test_steers_and_continuations_fold_into_the_run_they_name():
    tree = _conversation()
    tree.apply(_input("08", "steer-1", run_id="r2", event_id="s"), USER)
    run = tree.run("r2")
    assert "steer-1" in run.codec_message_ids and run.events[-1] == USER[0]
    assert "steer-1" not in tree.nodes and tree.inputs_by_event["s"][0].serial == "08"


def test_suspend_resume_and_end_follow_the_js_state_machine():
    tree = _conversation()
    tree.apply(_at(run_suspend_message(run_id="r2", invocation_id="i1"), "08"), [])
    assert tree.run("r2").status == names.RunStatus.SUSPENDED
    resume = WireMessage(name=names.RUN_RESUME, transport={names.HEADER_RUN_ID: "r2",
                                                           names.HEADER_INVOCATION_ID: "i2"}, serial="09")
    tree.apply(resume, [])
    assert tree.run("r2").status == names.RunStatus.ACTIVE
    tree.apply(_at(run_suspend_message(run_id="r2", invocation_id="i1"), "10"), [])
    assert tree.run("r2").status == names.RunStatus.ACTIVE, "a stale invocation's suspend is ignored"
    tree.apply(_at(run_end_message(run_id="r2", reason="error", error_code=50000, error_message="boom"), "11"), [])
    run = tree.run("r2")
    assert run.status == names.RunStatus.ERROR and run.error.code == 50000 and run.error.message == "boom"
    tree.apply(_at(run_end_message(run_id="r2"), "12"), [])
    assert tree.run("r2").status == names.RunStatus.ERROR, "terminal states do not change"


def test_foreign_and_incomplete_messages_change_nothing():
    tree = ConversationTree()
    tree.apply(WireMessage(name=names.AI_OUTPUT, transport={}, serial="01"), CHUNK)
    tree.apply(WireMessage(name=names.RUN_END, transport={}, serial="02"), [])
    tree.apply(_input("03", "u1"), [])
    assert tree.nodes == {} and tree.visible() == []


def _from(message: WireMessage, client_id: str | None, connection_id: str = "c1") -> WireMessage:
    message.client_id, message.connection_id = client_id, connection_id
    return message


def _owned_conversation() -> ConversationTree:
    """u1 (alice) -> r1, whose start names alice as its input's publisher."""
    tree = ConversationTree()
    tree.apply(_from(_input("01", "u1"), "alice"), USER)
    start = run_start_message(run_id="r1", parent="u1", input_codec_message_id="u1", input_client_id="alice")
    tree.apply(_from(_at(start, "02"), "agent"), [])
    tree.apply(_from(_output("03", "r1", "a1", "u1"), "agent"), CHUNK)
    return tree


def test_an_input_into_a_run_is_folded_only_from_the_runs_owner_but_kept_for_the_agent_to_find():
    tree = _owned_conversation()
    tree.apply(_from(_input("04", "s1", run_id="r1"), "mallory", "c2"), USER)
    assert tree.run("r1").codec_message_ids == ["a1"] and "event-s1" in tree.inputs_by_event
    assert tree.run_owner("r1") == "alice"
    tree.apply(_from(_input("05", "s2", run_id="r1"), "alice"), USER)
    assert tree.run("r1").codec_message_ids == ["a1", "s2"]


def test_a_run_whose_input_is_not_folded_is_owned_by_the_publisher_its_start_names():
    tree = ConversationTree()
    start = run_start_message(run_id="r9", input_codec_message_id="u-old", input_client_id="alice")
    tree.apply(_from(_at(start, "10"), "agent"), [])
    assert tree.run_owner("r9") == "alice" and tree.run_owner("nope") is None


def test_a_user_message_whose_ids_are_out_of_shape_is_no_node_and_bad_anchors_read_as_absent():
    tree = _owned_conversation()
    tree.apply(_from(_input("04", "x" * 300), "mallory", "c2"), USER)
    tree.apply(_from(_input("05", "u2", parent="has space", fork_of="y" * 300), "mallory", "c2"), USER)
    assert "x" * 300 not in tree.nodes and f"event-{'x' * 300}" in tree.inputs_by_event
    assert (tree.nodes["u2"].parent, tree.nodes["u2"].fork_of) == (None, None)


def test_a_part_not_from_a_user_and_an_input_claiming_to_stream_are_refused():
    tree = ConversationTree()
    first = _from(_input("01", "u1", event_id="e1"), "mallory")
    system = _from(_input("02", "u1", event_id="e1"), "mallory")
    system.transport[names.HEADER_ROLE] = "system"
    tree.apply(first, USER)
    tree.apply(system, USER)
    assert [w.serial for w in tree.inputs_by_event["e1"]] == ["01"]
    streaming = _from(_input("03", "u3"), "mallory")
    streaming.transport[names.HEADER_STREAM] = names.TRUE
    tree.apply(streaming, [])
    assert "event-u3" not in tree.inputs_by_event


def test_a_runs_consecutive_deltas_of_one_part_are_kept_as_one_event_and_accumulate_the_same():
    """A node keeps an event per stretch of a stream, not one per append: its memory follows the parts, and what its
    messages accumulate to is the same."""
    from langchain_ably_transport.codec import UIMessageAccumulator
    from langchain_ably_transport.codec.decoder import DecodedEvent
    from langchain_ably_transport.session.core import node_messages

    def output(serial: str, chunk: dict) -> DecodedEvent:
        return DecodedEvent("output", chunk, "a1", "r1", serial)

    events = [output("03", {"type": "start"}), output("03", {"type": "text-start", "id": "t0"}),
              output("04", {"type": "text-delta", "id": "t0", "delta": "Hel"}),
              output("05", {"type": "text-delta", "id": "t0", "delta": "lo"}),
              output("06", {"type": "reasoning-start", "id": "r0"}),
              output("07", {"type": "reasoning-delta", "id": "r0", "delta": "hm"}),
              output("08", {"type": "text-delta", "id": "t0", "delta": " wor"}),
              output("09", {"type": "text-delta", "id": "t0", "delta": "ld"})]
    tree = ConversationTree()
    tree.apply(_input("01", "u1"), USER)
    tree.apply(_at(run_start_message(run_id="r1", parent="u1", input_codec_message_id="u1"), "02"), [])
    for event in events:
        tree.apply(_output(event.serial, "r1", "a1", "u1"), [event])
    run = tree.run("r1")
    assert [e.event.get("delta") for e in run.events] == [None, None, "Hello", None, "hm", " world"]
    assert all(isinstance(e, DecodedEvent) for e in run.events)
    whole = UIMessageAccumulator()
    whole.apply_all(events)
    assert node_messages(run) == whole.entries
    assert "Hello world" in str(node_messages(run))
