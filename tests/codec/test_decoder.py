"""`Decoder`: the §5.4 rules one by one, lifecycle repair, the replay guard, and encode→decode round trips."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from langchain_ably_transport.codec import DecodedEvent, Decoder, MessageEncoder, UIMessageAccumulator, chunks
from langchain_ably_transport.codec.chunks import FINISH_REASONS
from langchain_ably_transport.codec.vercel import encode_input
from langchain_ably_transport.wire import Action, WireMessage

from .channel import FakeChannel
from .oracle import js_decode
from .test_encoder import HEADERS, SEQUENCES

OUT = {"run-id": "R", "codec-message-id": "M", "role": "assistant"}


def stream_create(serial: str, kind: str = "text", stream_id: str = "t0", name: str | None = "ai-output",
                  data: Any = "", **codec: str) -> WireMessage:
    return WireMessage(name=name, data=data, action=Action.CREATE, serial=serial, version_serial=serial,
                       transport={**OUT, "stream": "true", "status": "streaming", "stream-id": stream_id},
                       codec={"kind": kind, "id": stream_id, **codec})


def mutation(action: Action, serial: str, version: str, data: Any, status: str = "streaming", *,
             name: str | None = None, kind: str = "text", stream_id: str = "t0", **codec: str) -> WireMessage:
    return WireMessage(name=name, data=data, action=action, serial=serial, version_serial=version,
                       transport={**OUT, "stream": "true", "status": status, "stream-id": stream_id},
                       codec={"kind": kind, "id": stream_id, **codec})


def discrete(serial: str, kind: str, data: Any = "", name: str = "ai-output", transport: dict[str, str] | None = None,
             **codec: str) -> WireMessage:
    return WireMessage(name=name, data=data, action=Action.CREATE, serial=serial, version_serial=serial,
                       transport={**OUT, "stream": "false", **(transport or {})}, codec={"kind": kind, **codec})


def events(decoder: Decoder, *messages: WireMessage) -> list[dict[str, Any]]:
    return [event.event for message in messages for event in decoder.decode(message)]


def fresh(**options: Any) -> Decoder:
    decoder = Decoder(**options)
    decoder.decode(discrete("00", "start"))  # the reader saw the message begin: no lifecycle repair
    decoder.decode(discrete("01", "start-step"))
    return decoder


# --- message.create ------------------------------------------------------------------------------------------


def test_a_stream_create_emits_the_start_and_ignores_its_data():
    decoder = fresh()
    assert events(decoder, stream_create("10", data="ignored")) == [{"type": "text-start", "id": "t0"}]
    assert events(decoder, stream_create("10")) == []  # a duplicate create


def test_a_discrete_create_decodes_by_kind():
    assert events(fresh(), discrete("10", "data-x", {"a": 1}, id="d")) == [{"type": "data-x", "id": "d",
                                                                          "data": {"a": 1}}]


def test_a_message_without_action_is_a_create():
    message = discrete("10", "finish")
    message.action = None
    assert events(fresh(), message) == [{"type": "finish", "finishReason": "stop"}]


# --- message.append ------------------------------------------------------------------------------------------


def test_appends_emit_deltas_then_the_end_on_complete():
    decoder = fresh()
    got = events(decoder, stream_create("10"), mutation(Action.APPEND, "10", "11", "Hel"),
                 mutation(Action.APPEND, "10", "12", "lo"), mutation(Action.APPEND, "10", "13", "", "complete"))
    assert got == [{"type": "text-start", "id": "t0"}, {"type": "text-delta", "id": "t0", "delta": "Hel"},
                   {"type": "text-delta", "id": "t0", "delta": "lo"}, {"type": "text-end", "id": "t0"}]


def test_a_cancelled_stream_closes_silently_and_later_appends_are_dropped():
    decoder = fresh()
    got = events(decoder, stream_create("10"), mutation(Action.APPEND, "10", "11", "a", "cancelled"),
                 mutation(Action.APPEND, "10", "12", "b"))
    assert got == [{"type": "text-start", "id": "t0"}, {"type": "text-delta", "id": "t0", "delta": "a"}]


def test_the_version_guard_drops_what_is_already_incorporated():
    decoder = fresh(guard_replays=False)
    got = events(decoder, stream_create("10"), mutation(Action.APPEND, "10", "12", "a"),
                 mutation(Action.APPEND, "10", "12", "a"), mutation(Action.APPEND, "10", "11", "old"),
                 mutation(Action.APPEND, "10", "13", "b"))
    assert [e.get("delta") for e in got] == [None, "a", "b"]


def test_a_closing_append_can_carry_a_last_delta_and_new_fields():
    decoder = fresh()
    got = events(decoder, stream_create("10"), mutation(Action.APPEND, "10", "11", "x", "complete",
                                                        providerMetadata='{"p":{}}'))
    assert got[1:] == [{"type": "text-delta", "id": "t0", "delta": "x"},
                       {"type": "text-end", "id": "t0", "providerMetadata": {"p": {}}}]


def test_an_append_to_an_unknown_serial_is_a_first_contact():
    decoder = fresh()
    got = events(decoder, mutation(Action.APPEND, "10", "15", "Hello", "complete", name="ai-output"))
    assert got == [{"type": "text-start", "id": "t0"}, {"type": "text-delta", "id": "t0", "delta": "Hello"},
                   {"type": "text-end", "id": "t0"}]
    nameless = fresh()  # JS only rebuilds streams it knows are `ai-output`
    assert events(nameless, mutation(Action.APPEND, "20", "21", "x")) == []


# --- message.update --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "tail"), [
    ("complete", [{"type": "text-end", "id": "t0"}]), ("streaming", []), ("cancelled", []),
])
def test_first_contact_update_emits_start_whole_text_and_end(status, tail):
    decoder = fresh()
    got = events(decoder, mutation(Action.UPDATE, "10", "19", "Hello", status, name="ai-output"))
    assert got == [{"type": "text-start", "id": "t0"}, {"type": "text-delta", "id": "t0", "delta": "Hello"}, *tail]


def test_first_contact_with_a_non_stream_is_discrete():
    message = discrete("10", "error", "bad")
    message.action = Action.UPDATE
    assert events(fresh(), message) == [{"type": "error", "errorText": "bad"}]


def test_an_update_extending_the_text_emits_the_suffix():
    decoder = fresh()
    got = events(decoder, stream_create("10"), mutation(Action.APPEND, "10", "11", "Hel"),
                 mutation(Action.UPDATE, "10", "12", "Hello", "complete", name="ai-output"))
    assert got[2:] == [{"type": "text-delta", "id": "t0", "delta": "lo"}, {"type": "text-end", "id": "t0"}]


def test_a_replacing_update_emits_nothing_and_becomes_the_new_base():
    decoder = fresh()
    got = events(decoder, stream_create("10"), mutation(Action.APPEND, "10", "11", "Hello"),
                 mutation(Action.UPDATE, "10", "12", "Bye"), mutation(Action.UPDATE, "10", "13", "Bye now"))
    assert [e.get("delta") for e in got] == [None, "Hello", " now"]


def test_a_history_aggregate_after_live_deltas_is_dropped():
    decoder = fresh(guard_replays=False)
    live = [stream_create("10"), mutation(Action.APPEND, "10", "11", "a"), mutation(Action.APPEND, "10", "12", "b")]
    events(decoder, *live)
    assert events(decoder, mutation(Action.UPDATE, "10", "12", "ab", "streaming", name="ai-output")) == []


# --- message.delete ----------------------------------------------------------------------------------------------


def test_delete_closes_the_tracker_and_emits_nothing():
    decoder = fresh()
    got = events(decoder, stream_create("10"), mutation(Action.DELETE, "10", "11", None),
                 mutation(Action.APPEND, "10", "12", "late"))
    assert got == [{"type": "text-start", "id": "t0"}]
    assert events(decoder, mutation(Action.DELETE, "99", "99", None)) == []


# --- Direction, inputs, foreign messages ---------------------------------------------------------------------------


def test_inputs_decode_by_kind_with_their_routing():
    wires = encode_input(chunks.user_message({"id": "ui", "role": "user", "parts": [{"type": "text", "text": "hi"}]}),
                         {"role": "user", "codec-message-id": "U", "event-id": "E"})
    wires += encode_input(chunks.tool_result("A", "c1", 5), {"role": "user", "run-id": "R"})
    wires += encode_input(chunks.regenerate("A", "U"), {"codec-message-id": "G", "msg-regenerate": "A"})
    decoded = [d for i, w in enumerate(wires) for d in Decoder().decode(
        WireMessage(name=w.name, data=w.data, transport=w.transport, codec=w.codec, action=Action.CREATE,
                    serial=f"s{i}"))]
    assert decoded == [
        DecodedEvent("input", {"kind": "user-message", "message": {"id": "ui", "role": "user", "parts": [
            {"type": "text", "text": "hi"}]}}, "U", None, "s0"),
        DecodedEvent("input", {"kind": "tool-result", "codecMessageId": "A", "payload": {
            "toolCallId": "c1", "output": 5}}, "A", "R", "s1"),
    ]


def test_a_stream_under_another_name_emits_nothing():
    decoder = fresh()
    assert events(decoder, stream_create("10", name="ai-input"), mutation(Action.APPEND, "10", "11", "x"),
                  mutation(Action.APPEND, "10", "12", "", "complete")) == []
    assert events(decoder, discrete("20", "finish", name="chat")) == []


def test_foreign_messages_decode_to_nothing():
    decoder = Decoder()
    assert decoder.decode_ably({"name": "chat", "data": "hi", "action": 0, "serial": "1"}) == []
    assert decoder.decode_ably({"action": 5, "serial": "1", "data": "x", "extras": {"headers": {}}}) == []


def test_lifecycle_names_are_not_codec_messages():
    assert Decoder().decode(WireMessage(name="ai-run-start", transport={"run-id": "R"}, action=Action.CREATE,
                                        serial="1")) == []


def test_events_carry_codec_message_id_run_id_and_serial():
    decoder = Decoder()
    [*_, delta] = decoder.decode(stream_create("10")) + decoder.decode(mutation(Action.APPEND, "10", "11", "x"))
    assert delta == DecodedEvent("output", {"type": "text-delta", "id": "t0", "delta": "x"}, "M", "R", "10")


# --- Lifecycle repair (§5.6) ---------------------------------------------------------------------------------------


def test_a_mid_stream_join_is_given_start_and_start_step():
    decoder = Decoder()
    got = events(decoder, mutation(Action.UPDATE, "10", "11", "Hi", name="ai-output"))
    assert got[:2] == [{"type": "start"}, {"type": "start-step"}]
    assert events(decoder, stream_create("20", stream_id="t1"))[0] == {"type": "text-start", "id": "t1"}


def test_a_discrete_tool_input_is_repaired_too():
    got = events(Decoder(), discrete("10", "tool-input", {"a": 1}, toolCallId="c", toolName="w"))
    assert [e["type"] for e in got] == ["start", "start-step", "tool-input-start", "tool-input-available"]


def test_finish_step_resets_only_the_step_and_finish_clears_the_run():
    decoder = fresh()
    assert [e["type"] for e in events(decoder, discrete("10", "finish-step"), stream_create("11"))] == [
        "finish-step", "start-step", "text-start"]
    assert [e["type"] for e in events(decoder, discrete("12", "finish"), stream_create("13", stream_id="t1"))] == [
        "finish", "start", "start-step", "text-start"]


def test_repair_is_per_run():
    decoder = fresh()
    other = stream_create("10")
    other.transport["run-id"] = "R2"
    assert [e["type"] for e in events(decoder, other)] == ["start", "start-step", "text-start"]


# --- Replay guard (`wire-log.ts`) ---------------------------------------------------------------------------------


def test_live_then_history_decodes_each_discrete_once():
    message = discrete("10", "data-x", 1)
    assert len(fresh().decode(message) + fresh().decode(message)) == 2
    guarded = fresh()
    assert len(guarded.decode(message) + guarded.decode(message)) == 1
    unguarded = fresh(guard_replays=False)  # the JS decoder alone decodes a discrete replay again
    assert len(unguarded.decode(message) + unguarded.decode(message)) == 2


def test_an_edited_discrete_is_dropped():
    decoder = fresh()
    events(decoder, discrete("10", "error", "first"))
    edit = discrete("10", "error", "second")
    edit.action, edit.version_serial = Action.UPDATE, "11"
    assert decoder.decode(edit) == []


# --- Continuations ---------------------------------------------------------------------------------------------------


def continued_stream(decoder: Decoder) -> list[dict[str, Any]]:
    return events(decoder, stream_create("10"), mutation(Action.APPEND, "10", "11", "Hello "),
                  mutation(Action.APPEND, "10", "12", "", "complete", continued="true"),
                  stream_create("13", continues="true"), mutation(Action.APPEND, "13", "14", "world"),
                  mutation(Action.APPEND, "13", "15", "", "complete", continues="true"))


def test_a_continued_stream_decodes_as_one_by_default():
    assert continued_stream(fresh()) == [
        {"type": "text-start", "id": "t0"}, {"type": "text-delta", "id": "t0", "delta": "Hello "},
        {"type": "text-delta", "id": "t0", "delta": "world"}, {"type": "text-end", "id": "t0"}]


def test_without_merging_a_continued_stream_decodes_as_js_does():
    assert [e["type"] for e in continued_stream(fresh(merge_continuations=False))] == [
        "text-start", "text-delta", "text-end", "text-start", "text-delta", "text-end"]


def test_a_continuation_whose_first_part_was_not_seen_starts_its_own_stream():
    got = events(fresh(), stream_create("13", continues="true"), mutation(Action.APPEND, "13", "14", "world"))
    assert got == [{"type": "text-start", "id": "t0"}, {"type": "text-delta", "id": "t0", "delta": "world"}]


# --- Round trips ------------------------------------------------------------------------------------------------------


def fold(decoded: list[DecodedEvent]) -> list[dict[str, Any]]:
    accumulator = UIMessageAccumulator()
    accumulator.apply_all(decoded)
    return accumulator.snapshot()


def fold_chunks(sequence: list[dict[str, Any]]) -> list[dict[str, Any]]:
    accumulator = UIMessageAccumulator()
    for chunk in sequence:
        accumulator.fold_output(chunk, "M")
    return accumulator.snapshot()


def read(deliveries: list[dict[str, Any]], **options: Any) -> list[DecodedEvent]:
    decoder = Decoder(**options)
    return [event for delivery in deliveries for event in decoder.decode_ably(delivery)]


async def written(sequence: list[dict[str, Any]], **options: Any) -> FakeChannel:
    channel = FakeChannel()
    async with MessageEncoder(channel, HEADERS, **options) as encoder:
        for chunk in sequence:
            await encoder.write(chunk)
    return channel


def _json_values() -> st.SearchStrategy[Any]:
    scalars = st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=8)
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.text(max_size=5), inner, max_size=3), max_leaves=6)


@st.composite
def assistant_messages(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A well-formed assistant message: start, steps of streams and discrete parts, finish."""
    counter = iter(range(1000))
    sequence: list[dict[str, Any]] = [{"type": "start", **draw(st.sampled_from([{}, {"messageId": "ui-1"}]))}]
    tool_ids: list[str] = []
    for _ in range(draw(st.integers(1, 3))):
        sequence.append({"type": "start-step"})
        for block in draw(st.lists(st.sampled_from(["text", "reasoning", "long", "tool", "tool-discrete", "output",
                                                    "data", "source", "file", "metadata"]), max_size=5)):
            n = next(counter)
            if block == "long":  # enough text, with breaks and fences, to outgrow a small message limit
                prose = st.text(alphabet=st.sampled_from(list("ab é漢\n`")), min_size=20, max_size=80)
                deltas = draw(st.lists(prose, min_size=8, max_size=25))
                sequence += [{"type": "text-start", "id": f"long{n}"},
                             *({"type": "text-delta", "id": f"long{n}", "delta": d} for d in deltas),
                             {"type": "text-end", "id": f"long{n}"}]
            elif block in ("text", "reasoning"):
                deltas = draw(st.lists(st.text(max_size=60), max_size=20))
                sequence += [{"type": f"{block}-start", "id": f"{block}{n}"},
                             *({"type": f"{block}-delta", "id": f"{block}{n}", "delta": d} for d in deltas),
                             {"type": f"{block}-end", "id": f"{block}{n}"}]
            elif block == "tool":
                tool_input = draw(st.dictionaries(st.text(max_size=4), _json_values(), max_size=3))
                body = json.dumps(tool_input, ensure_ascii=False)
                cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=4)))
                pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
                name, dynamic = draw(st.sampled_from(["weather", "search"])), draw(st.booleans())
                sequence += [{"type": "tool-input-start", "toolCallId": f"c{n}", "toolName": name, "dynamic": dynamic},
                             *({"type": "tool-input-delta", "toolCallId": f"c{n}", "inputTextDelta": p}
                               for p in pieces),
                             {"type": "tool-input-available", "toolCallId": f"c{n}", "toolName": name,
                              "input": tool_input, "dynamic": dynamic}]
                tool_ids.append(f"c{n}")
            elif block == "tool-discrete":
                # (a whole-`data` JSON null travels as no data: ably-python cannot send null, see `envelope.py`)
                sequence.append({"type": "tool-input-available", "toolCallId": f"c{n}", "toolName": "now",
                                 "input": draw(_json_values().filter(lambda v: v is not None))})
                tool_ids.append(f"c{n}")
            elif block == "output" and tool_ids:
                target = draw(st.sampled_from(tool_ids))
                sequence.append(draw(st.sampled_from([
                    {"type": "tool-output-available", "toolCallId": target, "output": draw(_json_values())},
                    {"type": "tool-output-error", "toolCallId": target, "errorText": "failed"},
                    {"type": "tool-approval-request", "toolCallId": target, "approvalId": f"a{n}"},
                ])))
            elif block == "data":
                sequence.append({"type": "data-note", "data": draw(_json_values().filter(lambda v: v is not None)),
                                 **draw(st.sampled_from([{}, {"id": "n1"}, {"transient": True}]))})
            elif block == "source":
                sequence.append({"type": "source-url", "sourceId": f"s{n}", "url": "https://x", "title": "X"})
            elif block == "file":
                sequence.append({"type": "file", "url": "https://f", "mediaType": "image/png"})
            elif block == "metadata":
                # (JSON header fields never carry null, in JS either)
                sequence.append({"type": "message-metadata",
                                 "messageMetadata": draw(_json_values().filter(lambda v: v is not None))})
        sequence.append({"type": "finish-step"})
    sequence.append({"type": "finish", **draw(st.sampled_from([{}, {"finishReason": draw(st.sampled_from(
        FINISH_REASONS))}]))})
    return sequence


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sequence=assistant_messages(), window=st.sampled_from([0, 3600]),
       limit=st.sampled_from([65536, 1300]))
def test_what_a_reader_renders_survives_the_wire(sequence, window, limit):
    channel = asyncio.run(written(sequence, coalesce_window=window, max_message_bytes=limit))
    expected = fold_chunks(expand(sequence))
    assert fold(read(channel.live)) == expected
    assert fold(read(channel.history())) == expected
    both = channel.live + channel.history()  # live, then a history page over the same messages
    assert fold(read(both)) == expected


@settings(max_examples=80, deadline=None)
@given(sequence=assistant_messages())
def test_the_decoded_chunks_are_the_written_ones_up_to_what_the_wire_drops(sequence):
    channel = asyncio.run(written(sequence, coalesce_window=0))
    decoded = [event.event for event in read(channel.live)]
    assert [normalise(c) for c in decoded] == [normalise(c) for c in expand(sequence)]


def expand(sequence: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The chunks a reader gets back: a stream-less tool input arrives as start + available, empty deltas vanish."""
    open_tools: set[str] = set()
    out = []
    for chunk in sequence:
        if chunk["type"] == "tool-input-start":
            open_tools.add(chunk["toolCallId"])
        if chunk["type"] == "tool-input-available" and chunk["toolCallId"] not in open_tools:
            out.append({"type": "tool-input-start", "toolCallId": chunk["toolCallId"], "toolName": chunk["toolName"]})
        if chunk["type"].endswith("-delta") and not (chunk.get("delta") or chunk.get("inputTextDelta")):
            continue
        out.append(chunk)
    return out


def normalise(chunk: dict[str, Any]) -> dict[str, Any]:
    """Drop what the wire does not carry back unchanged (§6.2): defaults, the pipe's message id, flags."""
    chunk = dict(chunk)
    if chunk["type"] == "finish":
        chunk.setdefault("finishReason", "stop")
    if chunk["type"] == "start":
        chunk.pop("messageId", None)
    if chunk["type"] == "tool-input-available":
        chunk.pop("dynamic", None)
        if chunk.get("input") is None:
            chunk.pop("input", None)
    return chunk


# --- Parity with the JS decoder and reducer ------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(SEQUENCES))
async def test_decoding_matches_the_js_codec(name):
    channel = await written(SEQUENCES[name], coalesce_window=0)
    for deliveries in (channel.live, channel.history()):
        theirs = js_decode(deliveries)
        ours = read(deliveries, merge_continuations=False)
        assert [{"direction": e.direction, "event": e.event} for e in ours] == theirs["events"]
        assert fold(ours) == theirs["messages"]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sequence=assistant_messages())
def test_random_messages_decode_and_fold_as_in_js(sequence):
    channel = asyncio.run(written(sequence, coalesce_window=0))
    for deliveries in (channel.live, channel.history()):
        theirs = js_decode(deliveries)
        ours = read(deliveries, merge_continuations=False)
        assert [{"direction": e.direction, "event": e.event} for e in ours] == json.loads(json.dumps(theirs["events"]))
        assert fold(ours) == theirs["messages"]
