"""Hostile input, fuzzed: the wire parser, the decoder, the accumulator, the tree and the view never raise, and the
view of a legitimate conversation is exactly what it was whatever harmless hostile messages are mixed into it.

The conversation is written by the real encoder (`FakeChannel` plays Ably's bookkeeping), the hostile messages come
from `tests/faults/hostile.py`, and everything is folded as a session folds it: `WireMessage.from_ably`, one
`Decoder`, one `ConversationTree`, the view of its selected branch, and the same view as LangChain messages.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from langchain_ably_transport.codec import Decoder, MessageEncoder, UIMessageAccumulator, chunks
from langchain_ably_transport.codec.langchain import ui_messages_to_langchain
from langchain_ably_transport.codec.vercel import decode_input, encode_input
from langchain_ably_transport.session.core import chain_messages
from langchain_ably_transport.session.tree import ConversationTree
from langchain_ably_transport.wire import WireMessage, build_transport_headers, names
from langchain_ably_transport.wire.headers import (
    run_end_message,
    run_start_message,
    step_end_message,
    step_start_message,
)
from tests.faults.hostile import (
    EVERY_KIND,
    HARMLESS,
    MISSHAPEN,
    Chooser,
    Kinds,
    Known,
    hostile,
    received,
)

from .channel import FakeChannel


def fuzz(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# --- The legitimate conversation -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Conversation:
    """Two finished turns and a third still streaming, as received live: `batches` are atomic publishes (a
    multi-part user message is one), nothing can come between their messages."""

    batches: list[list[dict[str, Any]]]

    @property
    def messages(self) -> list[dict[str, Any]]:
        return [message for batch in self.batches for message in batch]


class _Agent:
    """Writes runs to a `FakeChannel` as `session.agent.Run` does: lifecycle, a step, the encoder's messages."""

    def __init__(self, channel: FakeChannel) -> None:
        self.channel = channel

    async def user(self, text: str, *parts: dict[str, Any], parent: str | None = None) -> str:
        message = chunks.user_message({"id": f"ui-{text}", "role": "user",
                                       "parts": [{"type": "text", "text": text}, *parts]})
        cmid = f"user-{text}"
        transport = build_transport_headers(role="user", codec_message_id=cmid, parent=parent,
                                            input_event_id=f"event-{text}", run_client_id="alice")
        for wire in encode_input(message, transport):
            await self.channel.publish(wire)
        return cmid

    async def run(self, run_id: str, trigger: str, passes: list[list[dict[str, Any]]], *, end: bool = True) -> str:
        lifecycle = {"run_id": run_id, "invocation_id": f"inv-{run_id}", "input_codec_message_id": trigger}
        await self.channel.publish(run_start_message(**lifecycle, parent=trigger))
        cmid = trigger
        for number, chunk_list in enumerate(passes):
            step_id = f"{run_id}-step-{number}"
            serial = await self.channel.publish(step_start_message(run_id=run_id, step_id=step_id))
            cmid = f"{run_id}-message-{number}"
            transport = build_transport_headers(
                role="assistant", codec_message_id=cmid, run_id=run_id, parent=trigger, invocation_id="inv",
                input_codec_message_id=trigger, step_id=step_id, step_start_serial=serial)
            encoder = MessageEncoder(self.channel, transport, coalesce_window=0)
            for chunk in chunk_list:
                await encoder.write(chunk)
            if not end:
                return cmid  # still streaming: no close, no end
            await encoder.close()
            await self.channel.publish(step_end_message(run_id=run_id, step_id=step_id, step_start_serial=serial))
        await self.channel.publish(run_end_message(**lifecycle))
        return cmid


def _text(stream_id: str, *deltas: str, kind: str = "text") -> list[dict[str, Any]]:
    return [{"type": f"{kind}-start", "id": stream_id},
            *({"type": f"{kind}-delta", "id": stream_id, "delta": d} for d in deltas),
            {"type": f"{kind}-end", "id": stream_id}]


async def _write_conversation() -> FakeChannel:
    channel = FakeChannel()
    agent = _Agent(channel)
    first = await agent.user("weather?")
    tool = [{"type": "tool-input-start", "toolCallId": "call-1", "toolName": "weather"},
            {"type": "tool-input-delta", "toolCallId": "call-1", "inputTextDelta": '{"city": '},
            {"type": "tool-input-delta", "toolCallId": "call-1", "inputTextDelta": '"Paris"}'},
            {"type": "tool-input-available", "toolCallId": "call-1", "toolName": "weather",
             "input": {"city": "Paris"}},
            {"type": "tool-output-available", "toolCallId": "call-1", "output": {"sky": "sunny"}}]
    reply = await agent.run("run-1", first, [
        [{"type": "start"}, {"type": "start-step"}, *_text("t0", "Let me ", "check."), *tool,
         {"type": "finish-step"}],
        [{"type": "start-step"}, *_text("t1", "Sunny, ", "21C."), {"type": "finish-step"}, {"type": "finish"}],
    ])
    second = await agent.user("thanks", {"type": "data-rating", "data": {"stars": 5}}, parent=reply)
    reply = await agent.run("run-2", second, [[{"type": "start"}, {"type": "start-step"},
                                               *_text("r0", "polite", kind="reasoning"), *_text("t0", "You're ",
                                               "welcome."), {"type": "finish-step"}, {"type": "finish"}]])
    third = await agent.user("more", parent=reply)
    await agent.run("run-3", third, [[{"type": "start"}, {"type": "start-step"},
                                      {"type": "text-start", "id": "t0"},
                                      {"type": "text-delta", "id": "t0", "delta": "Stream"}]], end=False)
    return channel


LEGIT_EVENTS = ("event-weather?", "event-thanks", "event-more")
ATTACKER = "connection-mallory"


@functools.cache
def conversation() -> Conversation:
    """Written once; the user's messages come from her connection, the agent's from its own (Ably stamps that)."""
    channel = asyncio.run(_write_conversation())
    batches: list[list[dict[str, Any]]] = []
    for received_message in channel.live:
        client = "alice" if received_message.get("name") == names.AI_INPUT else "agent"
        message = {**received_message, "connectionId": f"connection-{client}"}
        event_id = message["extras"]["ai"]["transport"].get(names.HEADER_EVENT_ID)
        previous = batches[-1][-1] if batches else None
        same_send = event_id and previous and previous["extras"]["ai"]["transport"].get("event-id") == event_id
        if same_send:
            batches[-1].append(message)
        else:
            batches.append([message])
    return Conversation(batches)


LEGIT_EVENTS = ("event-weather?", "event-thanks", "event-more")
ATTACKER = "connection-mallory"

# --- Folding as a session does ---------------------------------------------------------------------------------


@dataclass
class Folded:
    tree: ConversationTree
    view: list[dict[str, Any]]

    def state(self) -> tuple[Any, ...]:
        """What a client shows and an agent reads: the view, each visible node's status and where a message sent
        after it goes, and the input an agent finds for each of the conversation's event ids."""
        # A Python client sends its next message after the newest codec-message-id of the last visible node: where
        # that leads must not change, whichever node is last.
        visible = [(node.key, node.status, self.tree.owner(node.codec_message_ids[-1]).key)
                   if node.codec_message_ids else (node.key, node.status, None) for node in self.tree.visible()]
        triggers = {event: [w.serial for w in self.tree.inputs_by_event.get(event, [])] for event in LEGIT_EVENTS}
        return self.view, visible, triggers


def fold(messages: Iterable[dict[str, Any]]) -> Folded:
    """`from_ably`, decode, tree, view and LangChain messages: each step must take anything without raising."""
    decoder, tree = Decoder(), ConversationTree()
    for message in messages:
        wire = WireMessage.from_ably(message)
        if wire is not None:
            tree.apply(wire, decoder.decode(wire))
    view = chain_messages(tree.visible())
    ui_messages_to_langchain([entry["message"] for entry in view])
    for node in tree.nodes.values():
        chain_messages(tree.branch_to(node.key))
    return Folded(tree, view)


def legit_only() -> Folded:
    return fold(conversation().messages)


def mixed(seed: int, kinds: Kinds) -> tuple[list[dict[str, Any]], list[str]]:
    """The conversation with up to 12 hostile messages after some of its atomic publishes, each knowing only what
    came before it, their serials between their neighbours'; and the kinds of the hostile messages."""
    ch, known, out, made_kinds = Chooser(seed), Known(), [], []
    batches = conversation().batches
    positions = sorted(ch.integer(0, len(batches)) for _ in range(ch.integer(1, 12)))
    for index, batch in enumerate([*batches, []]):
        for number in range(positions.count(index)):
            made = hostile(ch, known, kinds=kinds)
            made_kinds.append(made.kind)
            out.append(received(made.message, f"{_last_create(out)}~{number:04d}", connection_id=ATTACKER))
        for message in batch:
            known.learn(message)
            out.append(message)
    return out, made_kinds


def _last_create(messages: list[dict[str, Any]]) -> str:
    return max((m["version"]["serial"] for m in messages), default="0")


# --- Properties --------------------------------------------------------------------------------------------------


def test_the_legitimate_conversation_renders_as_written():
    folded = legit_only()
    texts = [[p.get("text") for p in e["message"]["parts"] if p["type"] == "text"] for e in folded.view]
    assert texts == [["weather?"], ["Let me check."], ["Sunny, 21C."], ["thanks"], ["You're welcome."], ["more"],
                     ["Stream"]]
    assert folded.view[1]["message"]["parts"][-1]["output"] == {"sky": "sunny"}
    assert folded.view[3]["message"]["parts"][1] == {"type": "data-rating", "data": {"stars": 5}}
    runs = [(key, status) for key, status, _ in folded.state()[1] if key.startswith("run")]
    assert runs == [("run-1", "complete"), ("run-2", "complete"), ("run-3", "active")]


SEEDS = st.integers(0, 2**64)


@fuzz(2000)
@given(SEEDS)
def test_harmless_hostile_messages_leave_the_view_exactly_as_it_was(seed):
    messages, kinds = mixed(seed, HARMLESS)
    assert fold(messages).state() == legit_only().state(), kinds


@fuzz(1000)
@given(SEEDS)
def test_impersonations_and_junk_the_protocol_permits_may_change_the_view_but_never_break_it(seed):
    fold(mixed(seed, EVERY_KIND)[0])


@fuzz(300)
@given(SEEDS, st.lists(st.tuples(st.sampled_from([0, 1, 2, 3, 4, 5, 9, "message.append", "x", None]),
                                 st.integers(0, 40)), min_size=1, max_size=8))
def test_mutations_of_any_serial_with_any_action_never_break_the_view(seed, mutations):
    """Updates, appends and deletes (and actions that do not exist) aimed at the conversation's own serials: what a
    client holding `message-update-any` could do to another's messages."""
    legit = conversation().messages
    ch, known = Chooser(seed), Known()
    for message in legit:
        known.learn(message)
    serials = sorted({m["serial"] for m in legit})
    messages = list(legit)
    for number, (action, index) in enumerate(mutations):
        made = hostile(ch, known, kinds=EVERY_KIND).message
        version = f"{_last_create(messages)}~{number:04d}"
        messages.append({**made, "action": action, "serial": serials[index % len(serials)],
                         "version": {"serial": version}, "connectionId": ATTACKER})
    fold(messages)


def test_the_fuzz_reaches_every_kind():
    kinds = {kind for seed in range(200) for kind in mixed(seed, EVERY_KIND)[1]}
    assert kinds == set(EVERY_KIND)


# --- Each layer on its own, with anything at all -----------------------------------------------------------------

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                                 max_size=4), max_leaves=20)
FIELDS = ("name", "data", "extras", "action", "serial", "version", "clientId", "timestamp", "id", "encoding")


@fuzz(400)
@given(st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=len(FIELDS)),
       st.dictionaries(st.sampled_from(("transport", "codec")), JSON | st.dictionaries(st.text(max_size=20), JSON)))
def test_from_ably_reads_anything_as_a_wire_message_of_strings_or_as_foreign(message, ai):
    if ai and isinstance(message.get("extras"), dict):
        message["extras"]["ai"] = ai
    wire = WireMessage.from_ably(message)
    if wire is None:
        return
    for value in (wire.name, wire.serial, wire.version_serial, wire.client_id):
        assert value is None or isinstance(value, str)
    assert wire.timestamp is None or isinstance(wire.timestamp, int)
    for tier in (wire.transport, wire.codec):
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in tier.items())


HEADER_TEXT = st.sampled_from(["", "true", "false", "user", "text", "file", "data-x", "user-message", "regenerate",
                               "tool-result", "tool-result-error", "tool-approval-response", "{", "[]"]) | st.text()
TIER = st.dictionaries(st.sampled_from(["kind", "partType", "toolCallId", "approved", "reason", "messageId",
                                        "mediaType", "id", "role", "codec-message-id"]) | st.text(max_size=5),
                       HEADER_TEXT, max_size=6)


@fuzz(800)
@given(TIER, TIER, JSON | st.binary(max_size=8))
def test_decode_input_never_raises_and_its_events_fold(codec, transport, data):
    events = decode_input(codec, transport, data)
    accumulator = UIMessageAccumulator()
    for event in events:
        accumulator.fold_input(event, transport.get("codec-message-id"))
    ui_messages_to_langchain([m for m in accumulator.messages if m.get("role") in ("user", "assistant")])


WIRE_NAMES = st.sampled_from([*sorted(names.ALL_NAMES), "chat", None])
SERIALS = st.sampled_from(["01", "02", "03", "04"])


@st.composite
def wire_messages(draw: st.DrawFn) -> WireMessage:
    """A wire message whose fields collide often: few serials, few ids, every action, any headers and data."""
    transport = draw(st.dictionaries(st.sampled_from(sorted(names.TRANSPORT_HEADERS)),
                                     st.sampled_from(["true", "streaming", "complete", "cancelled", "R", "M", "user",
                                                      "assistant", "01", ""]), max_size=8))
    codec = draw(st.dictionaries(st.sampled_from(["kind", "partType", "id", "toolCallId", "toolName", "continues",
                                                  "continued", "dynamic", "messageId", "messageMetadata"]),
                                 st.sampled_from(["text", "reasoning", "tool-input", "start", "finish", "data-x",
                                                  "tool-output-available", "user-message", "true", "x"])
                                 | st.sampled_from(MISSHAPEN).map(json.dumps), max_size=5))
    return WireMessage(name=draw(WIRE_NAMES), data=draw(JSON | st.text()), transport=transport, codec=codec,
                       action=draw(st.sampled_from([None, *names.Action])), serial=draw(st.none() | SERIALS),
                       version_serial=draw(st.none() | SERIALS))


@fuzz(250)
@given(st.lists(wire_messages(), max_size=15))
def test_any_sequence_of_wire_messages_decodes_folds_and_renders(sequence):
    decoder, tree = Decoder(), ConversationTree()
    for wire in sequence:
        tree.apply(wire, decoder.decode(wire))
    view = chain_messages(tree.visible())
    ui_messages_to_langchain([entry["message"] for entry in view])


# --- What fuzzing found, one example each ------------------------------------------------------------------------


def _legit_with(*extra: dict[str, Any], after: int | None = None) -> list[dict[str, Any]]:
    """The conversation with `extra` received after its first `after` atomic publishes (all of them: None)."""
    batches = conversation().batches
    cut = len(batches) if after is None else after
    head = [m for batch in batches[:cut] for m in batch]
    tail = [m for batch in batches[cut:] for m in batch]
    serial = _last_create(head)
    return [*head, *(received(m, f"{serial}~{i:04d}", connection_id=ATTACKER) for i, m in enumerate(extra)), *tail]


def _input(transport: dict[str, Any], codec: dict[str, Any], data: Any = "hi") -> dict[str, Any]:
    return {"name": names.AI_INPUT, "data": data, "extras": {"ai": {"transport": transport, "codec": codec}}}


USER_TEXT = {"kind": "user-message", "partType": "text"}


def test_a_replayed_user_message_does_not_repeat_its_parts():
    """Even published right after the original, where only the connection tells the replay from a second part."""
    original = conversation().batches[0][0]
    replay = {k: original[k] for k in ("name", "data", "extras")}
    assert fold(_legit_with(replay, after=1)).state() == legit_only().state()


def test_a_replayed_continuation_does_not_answer_a_tool_call_again():
    replay = _input({"role": "user", "codec-message-id": "run-1-message-0", "run-id": "run-1",
                     "event-id": "event-weather?"}, {"kind": "tool-result", "toolCallId": "call-1"}, {"output": "x"})
    assert fold(_legit_with(replay)).state() == legit_only().state()


def test_a_user_message_reusing_an_assistant_message_id_is_not_merged_into_it():
    steer = _input({"role": "user", "codec-message-id": "run-1-message-1", "run-id": "run-1", "event-id": "e"},
                   USER_TEXT, "pwned")
    assert fold(_legit_with(steer)).state() == legit_only().state()


def test_an_input_naming_a_run_no_agent_started_shows_nowhere():
    phantom = _input({"role": "user", "codec-message-id": "c", "run-id": "no-such-run", "event-id": "e"}, USER_TEXT)
    folded = fold(_legit_with(phantom))
    assert folded.state() == legit_only().state() and not folded.tree.nodes["no-such-run"].from_agent


def test_an_input_under_another_run_does_not_take_its_codec_message_id_along():
    """An undecodable input naming run-2 and the first prompt's id used to make that id run-2's newest, so a Python
    client's next message went under the first prompt: a new branch that hid the rest of the conversation."""
    stray = _input({"role": "user", "codec-message-id": "user-weather?", "run-id": "run-2", "event-id": "e"},
                   {"kind": "bogus"})
    assert fold(_legit_with(stray)).state() == legit_only().state()


def test_a_run_less_tool_result_is_not_a_turn():
    """It used to become a root input node with no message, newer than the first prompt, so the view was empty."""
    result = _input({"role": "user", "codec-message-id": "c", "event-id": "e"},
                    {"kind": "tool-result", "toolCallId": "call-1"}, {"output": 1})
    assert fold(_legit_with(result)).state() == legit_only().state()


def test_an_error_code_beyond_the_largest_double_reads_as_the_default_code():
    end = {"name": names.RUN_END, "extras": {"ai": {"transport": {
        "run-id": "run-1", "run-reason": "error", "error-code": "0x" + "f" * 300}}}}
    assert fold(_legit_with(end, after=2)).tree.nodes["run-1"].error.code == 104008


def test_junk_usage_in_message_metadata_renders():
    finish = {"name": names.AI_OUTPUT, "data": "", "extras": {"ai": {
        "transport": {"run-id": "run-2", "codec-message-id": "run-2-message-0", "stream": "false"},
        "codec": {"kind": "finish", "messageMetadata": json.dumps({"usage": {
            "inputTokens": 1, "outputTokens": "2", "inputTokenDetails": [1]}})}}}}
    [*_, reply] = ui_messages_to_langchain([e["message"] for e in fold(_legit_with(finish)).view][:5])
    assert reply.usage_metadata == {"input_tokens": 1, "output_tokens": 0, "total_tokens": 1}


def test_a_fork_seed_of_junk_messages_is_left_out():
    junk = [{"codecMessageId": "s1", "message": {"role": "tool", "parts": []}},
            {"codecMessageId": "s2", "message": {"role": "assistant", "parts": [
                {"type": "tool-x", "toolCallId": ["unhashable"], "state": "output-available"},
                {"type": "text", "text": 5}, {"type": "text", "text": "kept"}]}}]
    continuation = _input({"role": "user", "codec-message-id": "elsewhere", "run-id": "run-2", "event-id": "e"},
                          {"kind": "tool-result", "toolCallId": "t"}, {"output": 1, "forkSeed": {"messages": junk}})
    view = fold(_legit_with(continuation)).view
    assert view[5] == {"codecMessageId": "s2", "message": {"role": "assistant", "parts": [
        {"type": "text", "text": "kept"}]}}
