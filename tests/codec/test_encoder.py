"""`MessageEncoder`: the wire a chunk sequence makes, pipelining, coalescing, size continuation, recovery."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from typing import Any

import pytest

from langchain_ably_transport.codec import Decoder, MessageEncoder, UIMessageAccumulator
from langchain_ably_transport.codec.step_markers import RunPhases
from langchain_ably_transport.errors import (
    EncoderClosedError,
    EncoderRecoveryFailedError,
    MissingSerialError,
    OversizeMessageError,
    StreamNotOpenError,
    UnsupportedChunkError,
)
from langchain_ably_transport.wire import WireMessage, build_transport_headers

from .channel import FakeChannel
from .oracle import as_op, js_decode, js_encode

HEADERS = build_transport_headers(
    role="assistant", codec_message_id="M", run_id="R", run_client_id="", parent="U", invocation_id="I",
    input_codec_message_id="U", step_id="I-step-0", step_client_id="",
)
T = {**HEADERS, "stream": "true", "status": "streaming"}


def text(stream_id: str, *deltas: str) -> list[dict[str, Any]]:
    return [{"type": "text-start", "id": stream_id}, *({"type": "text-delta", "id": stream_id, "delta": d}
                                                       for d in deltas), {"type": "text-end", "id": stream_id}]


async def encode(chunks: list[dict[str, Any]], channel: FakeChannel | None = None, **options: Any) -> FakeChannel:
    channel = channel or FakeChannel()
    options.setdefault("coalesce_window", 0)
    encoder = MessageEncoder(channel, HEADERS, **options)
    for chunk in chunks:
        await encoder.write(chunk)
    await encoder.close()
    return channel


def view(deliveries: list[dict[str, Any]], **options: Any) -> list[dict[str, Any]]:
    decoder, accumulator = Decoder(**options), UIMessageAccumulator()
    for delivery in deliveries:
        accumulator.apply_all(decoder.decode_ably(delivery))
    return accumulator.snapshot()


# --- The wire of one assistant message ------------------------------------------------------------------------


async def test_the_reference_trace_of_section_11():
    chunks = [{"type": "start"}, {"type": "start-step"}, *text("t0", "Hel", "lo"), {"type": "finish-step"},
              {"type": "finish", "finishReason": "stop"}]
    channel = await encode(chunks)
    wire = [(op, serial, m.name, m.data, m.transport, m.codec) for op, serial, m in channel.ops]
    s = "000000000003@fake"
    assert wire == [
        ("publish", "000000000001@fake", "ai-output", "", {**HEADERS, "stream": "false"},
         {"kind": "start", "messageId": "M"}),
        ("publish", "000000000002@fake", "ai-output", "", {**HEADERS, "stream": "false"}, {"kind": "start-step"}),
        ("publish", s, "ai-output", "", {**T, "stream-id": "t0"}, {"kind": "text", "id": "t0"}),
        ("append", s, None, "Hel", {**T, "stream-id": "t0"}, {"kind": "text", "id": "t0"}),
        ("append", s, None, "lo", {**T, "stream-id": "t0"}, {"kind": "text", "id": "t0"}),
        ("append", s, None, "", {**T, "stream-id": "t0", "status": "complete"}, {"kind": "text", "id": "t0"}),
        ("publish", "000000000007@fake", "ai-output", "", {**HEADERS, "stream": "false"}, {"kind": "finish-step"}),
        ("publish", "000000000008@fake", "ai-output", "", {**HEADERS, "stream": "false"},
         {"kind": "finish", "finishReason": "stop"}),
    ]


async def test_start_keeps_its_own_message_id():
    channel = await encode([{"type": "start", "messageId": "ui-1"}])
    assert channel.of("publish")[0].codec == {"kind": "start", "messageId": "ui-1"}


async def test_tool_input_stream_closes_with_name_and_metadata_only():
    channel = await encode([
        {"type": "tool-input-start", "toolCallId": "c1", "toolName": "weather", "title": "Weather"},
        {"type": "tool-input-delta", "toolCallId": "c1", "inputTextDelta": '{"city":"Paris"}'},
        {"type": "tool-input-available", "toolCallId": "c1", "toolName": "weather", "input": {"city": "Paris"},
         "title": "ignored"},
    ])
    close = channel.of("append")[-1]
    assert close.transport["status"] == "complete" and close.data == ""
    assert close.codec == {"kind": "tool-input", "toolCallId": "c1", "toolName": "weather", "title": "Weather"}


async def test_tool_input_available_without_a_stream_is_one_discrete_create():
    channel = await encode([{"type": "tool-input-available", "toolCallId": "c1", "toolName": "w", "input": [1]}])
    [message] = channel.of("publish")
    assert (message.transport["stream"], message.codec["kind"], message.data) == ("false", "tool-input", [1])


async def test_a_repeated_tool_input_available_is_not_published_again():
    call = [{"type": "tool-input-start", "toolCallId": "c1", "toolName": "w"},
            {"type": "tool-input-available", "toolCallId": "c1", "toolName": "w", "input": {}}]
    channel = await encode([*call, call[1]])
    assert [op for op, _, _ in channel.ops] == ["publish", "append"]


async def test_transient_data_is_published_ephemeral():
    channel = await encode([{"type": "data-progress", "data": 3, "transient": True}])
    assert channel.of("publish")[0].extras["ephemeral"] is True


async def test_hook_stamps_every_message_including_appends():
    def stamp(message: WireMessage) -> None:
        message.transport["step-start-serial"] = "S"

    channel = await encode([{"type": "start"}, *text("t0", "a")], on_message=stamp)
    assert [m.transport["step-start-serial"] for _, _, m in channel.ops] == ["S"] * 4


async def test_a_failing_hook_is_logged_not_raised(caplog):
    def broken(message: WireMessage) -> None:
        raise RuntimeError("hook")

    with caplog.at_level(logging.ERROR):
        channel = await encode([{"type": "start"}], on_message=broken)
    assert len(channel.ops) == 1 and "on_message hook raised" in caplog.text


# --- Misuse ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk", [{"type": "text-delta", "id": "x", "delta": "a"}, {"type": "text-end", "id": "x"},
                                   {"type": "reasoning-delta", "id": "x", "delta": "a"},
                                   {"type": "tool-input-delta", "toolCallId": "x", "inputTextDelta": "{"}])
async def test_deltas_and_ends_need_an_open_stream(chunk):
    with pytest.raises(StreamNotOpenError):
        await encode([chunk])


async def test_unsupported_chunks_raise_and_publish_nothing():
    channel = FakeChannel()
    with pytest.raises(UnsupportedChunkError):
        await encode([{"type": "tool-call", "toolCallId": "c"}], channel)
    assert channel.ops == []


async def test_writes_after_close_raise():
    encoder = MessageEncoder(FakeChannel(), HEADERS)
    await encoder.close()
    await encoder.close()
    with pytest.raises(EncoderClosedError) as caught:
        await encoder.write({"type": "start"})
    assert caught.value.code == 104004


async def test_a_create_without_serial_raises():
    class NoSerial(FakeChannel):
        async def publish(self, message: WireMessage) -> str:
            await super().publish(message)
            return ""

    with pytest.raises(MissingSerialError) as caught:
        await encode(text("t0"), NoSerial())
    assert caught.value.code == 50000


async def test_a_failed_create_is_raised_by_the_next_write_once_and_its_stream_takes_no_more_deltas():
    """Writing does not wait for a stream's create, so its failure comes later: the next write raises it (a delta's
    too, so a long reply does not stream into a message that does not exist), `write_now` takes nothing meanwhile,
    and closing raises it no more."""
    class RefusedCreate(FakeChannel):
        async def publish(self, message: WireMessage) -> str:
            raise RuntimeError("refused")

    channel = RefusedCreate()
    encoder = MessageEncoder(channel, HEADERS, coalesce_window=0)
    await encoder.write({"type": "text-start", "id": "t0"})
    await asyncio.sleep(0.01)
    assert not encoder.write_now({"type": "text-delta", "id": "t0", "delta": "lost"})
    with pytest.raises(RuntimeError, match="refused"):
        await encoder.write({"type": "text-delta", "id": "t0", "delta": "x"})
    await encoder.close()
    assert channel.ops == [], "nothing appended to a message that does not exist"


# --- Pipelining, cancel and close ---------------------------------------------------------------------------------


class HeldChannel(FakeChannel):
    """Appends whose ACKs arrive only when released."""

    def __init__(self) -> None:
        super().__init__()
        self.held: list[asyncio.Future[Any]] = []

    def append(self, serial: str, message: WireMessage) -> asyncio.Future[Any]:
        inner = super().append(serial, message)
        held: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.held.append(held)

        async def settle() -> Any:
            await held
            return await inner

        return asyncio.ensure_future(settle())

    def release(self) -> None:
        for future in self.held:
            if not future.done():
                future.set_result(None)


async def test_deltas_are_not_awaited_but_the_close_awaits_them():
    channel = HeldChannel()
    encoder = MessageEncoder(channel, HEADERS, coalesce_window=0)
    await encoder.write({"type": "text-start", "id": "t0"})
    for delta in "abc":
        await asyncio.wait_for(encoder.write({"type": "text-delta", "id": "t0", "delta": delta}), 1)
    closing = asyncio.ensure_future(encoder.write({"type": "text-end", "id": "t0"}))
    await asyncio.sleep(0.01)
    assert not closing.done()
    channel.release()
    await asyncio.wait_for(closing, 1)
    await encoder.close()


class HeldDiscretes(FakeChannel):
    """Discrete creates whose ACKs arrive only when released (or fail then, with `failure`)."""

    def __init__(self, failure: Exception | None = None) -> None:
        super().__init__()
        self.acks: asyncio.Event = asyncio.Event()
        self.failure = failure

    async def publish(self, message: WireMessage) -> str:
        serial = await super().publish(message)
        if message.transport.get("stream") == "false":
            await self.acks.wait()
            if self.failure is not None:
                raise self.failure
        return serial


async def test_discrete_chunks_are_not_awaited_but_the_close_awaits_them_in_order():
    channel = HeldDiscretes()
    encoder = MessageEncoder(channel, HEADERS, coalesce_window=0)
    for chunk in [{"type": "start"}, {"type": "start-step"}, {"type": "text-start", "id": "t0"},
                  {"type": "text-delta", "id": "t0", "delta": "a"}, {"type": "data-x", "data": 1}]:
        await asyncio.wait_for(encoder.write(chunk), 1)
    closing = asyncio.ensure_future(encoder.close())
    await asyncio.sleep(0.01)
    assert not closing.done(), "the close waits for the discretes' ACKs"
    channel.acks.set()
    await asyncio.wait_for(closing, 1)
    assert [(op, m.transport["stream"]) for op, _, m in channel.ops] == [
        ("publish", "false"), ("publish", "false"), ("publish", "true"), ("append", "true"), ("publish", "false"),
        ("append", "true")]


async def test_a_discrete_create_that_fails_is_raised_by_the_close():
    channel = HeldDiscretes(failure=RuntimeError("refused"))
    channel.acks.set()
    encoder = MessageEncoder(channel, HEADERS, coalesce_window=0)
    await encoder.write({"type": "data-x", "data": 1})
    with pytest.raises(RuntimeError, match="refused"):
        await encoder.close()
    assert encoder.closed


async def test_cancel_closes_open_streams_cancelled_and_skips_completed_ones():
    channel = FakeChannel()
    encoder = MessageEncoder(channel, HEADERS, coalesce_window=0)
    for chunk in [*text("done", "x"), {"type": "text-start", "id": "t1"},
                  {"type": "text-delta", "id": "t1", "delta": "y"}, {"type": "reasoning-start", "id": "r1"}]:
        await encoder.write(chunk)
    await encoder.cancel()
    await encoder.cancel()
    closes = [(m.transport["stream-id"], m.transport["status"], m.data) for m in channel.of("append")
              if m.transport["status"] != "streaming"]
    assert closes == [("done", "complete", ""), ("t1", "cancelled", ""), ("r1", "cancelled", "")]
    await encoder.write({"type": "finish"})  # still writable after a cancel, as `onCancelled` needs
    await encoder.close()


async def test_close_terminates_streams_left_open_as_cancelled():
    channel = FakeChannel()
    async with MessageEncoder(channel, HEADERS, coalesce_window=0) as encoder:
        await encoder.write({"type": "text-start", "id": "t0"})
        await encoder.write({"type": "text-delta", "id": "t0", "delta": "partial"})
        assert encoder.open_stream_ids == ["t0"]
    assert channel.of("append")[-1].transport["status"] == "cancelled"
    assert view(channel.history())[0]["message"]["parts"] == [{"type": "step-start"},
                                                              {"type": "text", "text": "partial"}]


async def test_restarting_an_open_stream_id_terminates_the_old_message():
    channel = await encode([{"type": "text-start", "id": "t0"}, {"type": "text-start", "id": "t0"}])
    statuses = [(m.transport.get("status"), m.data) for m in channel.of("append")]
    assert statuses == [("cancelled", ""), ("cancelled", "")]
    assert len(channel.of("publish")) == 2


# --- Recovery (§5.3) --------------------------------------------------------------------------------------------


async def test_a_failed_append_is_repaired_with_the_full_text():
    channel = FakeChannel(fail_appends={1})
    await encode(text("t0", "Hel", "lo", " world"), channel)
    [update] = channel.of("update")
    assert (update.data, update.transport["status"], update.codec) == ("Hello world", "complete",
                                                                        {"kind": "text", "id": "t0"})
    assert view(channel.history())[0]["message"]["parts"][-1] == {"type": "text", "text": "Hello world"}


async def test_a_cancelled_stream_is_repaired_as_cancelled():
    channel = FakeChannel(fail_appends={0})
    encoder = MessageEncoder(channel, HEADERS, coalesce_window=0)
    await encoder.write({"type": "text-start", "id": "t0"})
    await encoder.write({"type": "text-delta", "id": "t0", "delta": "x"})
    await encoder.cancel()
    assert [(m.data, m.transport["status"]) for m in channel.of("update")] == [("x", "cancelled")]


async def test_recovery_waits_for_the_stream_to_end():
    channel = FakeChannel(fail_appends={0})
    encoder = MessageEncoder(channel, HEADERS, coalesce_window=0)
    await encoder.write({"type": "text-start", "id": "a"})
    await encoder.write({"type": "text-delta", "id": "a", "delta": "1"})  # fails
    await encoder.write({"type": "text-start", "id": "b"})
    await encoder.write({"type": "text-end", "id": "b"})  # settles everything; `a` is still streaming
    assert channel.of("update") == []
    await encoder.write({"type": "text-delta", "id": "a", "delta": "2"})
    await encoder.write({"type": "text-end", "id": "a"})
    assert [m.data for m in channel.of("update")] == ["12"]
    await encoder.close()


async def test_failed_recovery_raises():
    channel = FakeChannel(fail_appends={0}, fail_updates=True)
    with pytest.raises(EncoderRecoveryFailedError) as caught:
        await encode(text("t0", "x"), channel)
    assert (caught.value.code, caught.value.stream_ids) == (104000, ["t0"])


# --- Ordering with coroutine appends ---------------------------------------------------------------------------


async def test_lazily_started_appends_keep_the_wire_in_call_order():
    channel = FakeChannel(lazy_appends=True)
    await encode([{"type": "text-start", "id": "t0"}, {"type": "text-delta", "id": "t0", "delta": "a"},
                  {"type": "data-x", "data": 1}, {"type": "text-delta", "id": "t0", "delta": "b"},
                  {"type": "text-end", "id": "t0"}], channel)
    assert [entry.split(":")[0] for entry in channel.wire_order] == ["publish", "append", "publish", "append", "append"]


# --- Coalescing -----------------------------------------------------------------------------------------------------


async def test_deltas_coalesce_to_one_append_per_window():
    channel = FakeChannel()
    encoder = MessageEncoder(channel, HEADERS, coalesce_window=0.05)
    await encoder.write({"type": "text-start", "id": "t0"})
    loop = asyncio.get_running_loop()
    started = loop.time()
    sent_at: list[float] = []
    original = channel.append

    def timed(serial: str, message: WireMessage) -> Any:
        sent_at.append(loop.time() - started)
        return original(serial, message)

    channel.append = timed  # type: ignore[method-assign]
    for i in range(40):
        await encoder.write({"type": "text-delta", "id": "t0", "delta": f"{i},"})
        await asyncio.sleep(0.005)
    await encoder.write({"type": "text-end", "id": "t0"})
    await encoder.close()
    appends = channel.of("append")
    assert "".join(m.data for m in appends) == "".join(f"{i}," for i in range(40))
    assert appends[-1].transport["status"] == "complete", "the closing append carries the held remainder"
    assert len(appends) <= 6  # about 0.2 s of deltas in 50 ms windows, the last one closing the stream
    assert sent_at[0] >= 0.045, "the window's clock starts with the stream's create"
    gaps = [b - a for a, b in itertools.pairwise(sent_at[:-1])]  # the close goes out as soon as the stream ends
    assert all(gap >= 0.045 for gap in gaps)


async def test_deltas_written_before_their_streams_create_is_acked_go_out_in_one_append_from_the_ack():
    """A loaded agent waits a window or more for a stream's create's ACK. Writing does not wait for it: the deltas are
    held, and the ACK's own callback sends them in one append (the window's clock started with the create), with no
    task's turn of the event loop between."""
    channel = FakeChannel()
    create = channel.publish
    stored: list[asyncio.Future[str]] = []
    ack: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def acked_when_told(message: WireMessage) -> asyncio.Future[str]:
        stored.append(asyncio.ensure_future(create(message)))
        return ack

    channel.publish = acked_when_told  # type: ignore[method-assign]
    encoder = MessageEncoder(channel, HEADERS, coalesce_window=0.05)
    await encoder.write({"type": "text-start", "id": "t0"})
    for delta in "abc":
        await encoder.write({"type": "text-delta", "id": "t0", "delta": delta})
    assert encoder.write_now({"type": "text-delta", "id": "t0", "delta": "d"}), "a producer's own task may write too"
    await asyncio.sleep(0.06)
    assert channel.of("append") == [], "no serial yet"
    ack.set_result(await stored[0])
    await asyncio.sleep(0)
    assert [m.data for m in channel.of("append")] == ["abcd"], "sent from the ACK's callback"
    await encoder.write({"type": "text-delta", "id": "t0", "delta": "e"})
    await asyncio.sleep(0.01)
    assert [m.data for m in channel.of("append")] == ["abcd"], "then a window between appends again"
    await encoder.write({"type": "text-end", "id": "t0"})
    await encoder.close()
    assert "".join(m.data for m in channel.of("append")) == "abcde"


async def test_a_message_after_a_streams_create_waits_for_its_ack_and_goes_after_its_deltas():
    """Only a delta of an open stream is written before its create's ACK; anything else waits for it, so that the
    wire keeps the chunks' order: the stream's held deltas, then the next message."""
    channel = FakeChannel()
    create = channel.publish
    loop = asyncio.get_running_loop()
    ack: asyncio.Future[str] = loop.create_future()

    def acked_when_told(message: WireMessage) -> asyncio.Future[str]:
        stored = asyncio.ensure_future(create(message))
        stored.add_done_callback(lambda done: loop.call_later(0.02, ack.set_result, done.result()))
        return ack

    channel.publish = acked_when_told  # type: ignore[method-assign]
    encoder = MessageEncoder(channel, HEADERS, coalesce_window=0)
    await encoder.write({"type": "text-start", "id": "t0"})
    await encoder.write({"type": "text-delta", "id": "t0", "delta": "a"})
    channel.publish = create  # type: ignore[method-assign]
    await encoder.write({"type": "data-note", "data": {"n": 1}})
    await encoder.close()
    kinds = [(op, message.data) for op, _, message in channel.ops]
    assert kinds[:2] == [("publish", ""), ("append", "a")], kinds
    assert ("publish", {"n": 1}) in kinds[2:], kinds


async def test_a_delta_after_its_window_ended_goes_out_at_once_with_what_the_window_held():
    """On a busy loop the window's timer runs late, a turn or more after the window ended: a delta that comes
    meanwhile sends what the window held, and itself, in its own step."""
    channel = FakeChannel()
    encoder = MessageEncoder(channel, HEADERS, coalesce_window=0.05)
    await encoder.write({"type": "text-start", "id": "t0"})
    await encoder.write({"type": "text-delta", "id": "t0", "delta": "a"})
    await asyncio.sleep(0.07)
    assert [m.data for m in channel.of("append")] == ["a"]
    assert encoder.write_now({"type": "text-delta", "id": "t0", "delta": "b"})
    time.sleep(0.07)  # a long turn: the window ends, and its timer waits for the next turn
    assert encoder.write_now({"type": "text-delta", "id": "t0", "delta": "c"})
    assert [m.data for m in channel.of("append")] == ["a", "bc"], "sent in the delta's step"
    assert encoder.write_now({"type": "text-delta", "id": "t0", "delta": "d"})
    await asyncio.sleep(0.01)
    assert [m.data for m in channel.of("append")] == ["a", "bc"], "the window counts from that append"
    await encoder.close()
    assert "".join(m.data for m in channel.of("append")) == "abcd"


async def test_buffered_deltas_go_out_before_the_next_discrete_message():
    channel = FakeChannel()
    encoder = MessageEncoder(channel, HEADERS, coalesce_window=10)
    for chunk in [{"type": "text-start", "id": "t0"}, {"type": "text-delta", "id": "t0", "delta": "a"},
                  {"type": "text-delta", "id": "t0", "delta": "b"}, {"type": "text-delta", "id": "t0", "delta": "c"},
                  {"type": "data-x", "data": 1}, {"type": "text-end", "id": "t0"}]:
        await encoder.write(chunk)
    await encoder.close()
    # The discrete is not awaited: the stream's close, an append of an earlier create, may overtake it on the wire.
    assert [(op, m.data) for op, _, m in channel.ops] == [
        ("publish", ""), ("append", "abc"), ("append", ""), ("publish", 1)]


async def test_a_quiet_stream_flushes_when_its_window_ends():
    channel = FakeChannel()
    encoder = MessageEncoder(channel, HEADERS, coalesce_window=0.02)
    await encoder.write({"type": "text-start", "id": "t0"})
    for delta in "abc":
        await encoder.write({"type": "text-delta", "id": "t0", "delta": delta})
    await asyncio.sleep(0.06)
    assert [m.data for m in channel.of("append")] == ["abc"], "held from the create until the window ends"
    await encoder.close()


# --- Writing at once, from the producer's task ----------------------------------------------------------------------


async def test_write_now_takes_the_deltas_of_an_open_stream_in_order_with_writes():
    channel = FakeChannel()
    encoder = MessageEncoder(channel, HEADERS, coalesce_window=0)
    await encoder.write({"type": "text-start", "id": "t0"})
    assert encoder.write_now({"type": "text-delta", "id": "t0", "delta": "Hel"})
    await encoder.write({"type": "text-delta", "id": "t0", "delta": "lo"})
    assert encoder.write_now({"type": "text-delta", "id": "t0", "delta": "!"})
    await encoder.write({"type": "text-end", "id": "t0"})
    await encoder.close()
    assert [(op, m.data) for op, _, m in channel.ops] == [
        ("publish", ""), ("append", "Hel"), ("append", "lo"), ("append", "!"), ("append", "")]


@pytest.mark.parametrize("chunk", [
    {"type": "text-start", "id": "t1"},  # a create: `write` sends it
    {"type": "text-delta", "id": "t9", "delta": "x"},  # no such stream
    {"type": "text-end", "id": "t0"},  # an end settles the stream's appends
    {"type": "data-x", "data": 1},
    {"type": 7},
])
async def test_write_now_refuses_what_is_no_delta_of_an_open_stream_and_sends_nothing(chunk):
    channel = FakeChannel()
    encoder = MessageEncoder(channel, HEADERS, coalesce_window=0)
    await encoder.write({"type": "text-start", "id": "t0"})
    assert not encoder.write_now(chunk)
    await asyncio.sleep(0.01)
    assert [op for op, _, _ in channel.ops] == ["publish"]
    await encoder.close()


async def test_write_now_refuses_a_delta_that_needs_a_new_message_or_a_held_marker_or_a_closed_encoder():
    channel = FakeChannel()
    encoder = MessageEncoder(channel, HEADERS, coalesce_window=0, max_message_bytes=SMALL)
    await encoder.write({"type": "text-start", "id": "t0"})
    assert not encoder.write_now({"type": "text-delta", "id": "t0", "delta": "w " * SMALL}), "it would not fit"
    await asyncio.sleep(0.01)
    assert [op for op, _, _ in channel.ops] == ["publish"]
    await encoder.write({"type": "text-delta", "id": "t0", "delta": "w " * SMALL})  # `write` continues it
    await asyncio.sleep(0.01)
    assert len(channel.of("publish")) > 2
    await encoder.close()
    assert not encoder.write_now({"type": "text-delta", "id": "t0", "delta": "late"})

    held = MessageEncoder(FakeChannel(), HEADERS, coalesce_window=0, phases=RunPhases("R"))
    await held.write({"type": "text-start", "id": "t0"})
    await held.write({"type": "finish-step"})  # held until the next chunk tells whether it is needed
    assert not held.write_now({"type": "text-delta", "id": "t0", "delta": "x"})
    await held.close()


async def test_write_now_coalesces_with_the_window_like_write():
    channel = FakeChannel()
    encoder = MessageEncoder(channel, HEADERS, coalesce_window=10)
    await encoder.write({"type": "text-start", "id": "t0"})
    assert all(encoder.write_now({"type": "text-delta", "id": "t0", "delta": d}) for d in "abc")
    await encoder.write({"type": "text-end", "id": "t0"})
    await encoder.close()
    assert [(op, m.data) for op, _, m in channel.ops] == [("publish", ""), ("append", "abc")]


# --- Size ------------------------------------------------------------------------------------------------------------

SMALL = 2048


async def test_a_long_text_continues_in_new_messages_that_each_fit():
    words = [f"word{i} " for i in range(600)]
    channel = await encode(text("t0", *words), max_message_bytes=SMALL)
    creates = channel.of("publish")
    assert len(creates) > 2
    assert creates[0].codec == {"kind": "text", "id": "t0"}
    assert all(c.codec == {"kind": "text", "id": "t0", "continues": "true"} for c in creates[1:])
    assert {c.transport["stream-id"] for c in creates} == {"t0"}
    for stored in channel.stored.values():  # every aggregate is within Ably's limit
        assert WireMessage(name=stored.name, data=stored.data, transport=stored.extras["ai"]["transport"],
                           codec=stored.extras["ai"].get("codec", {})).size() <= SMALL
    closes = [m for m in channel.of("append") if m.transport["status"] == "complete"]
    assert [c.codec.get("continued") for c in closes] == ["true"] * (len(creates) - 1) + [None]
    whole = "".join(words)
    for deliveries in (channel.live, channel.history()):
        [entry] = view(deliveries)  # (the reader joined without a `start`, so one is synthesised)
        assert entry["message"]["parts"] == [{"type": "step-start"}, {"type": "text", "text": whole}]
        unmerged = view(deliveries, merge_continuations=False)[0]["message"]["parts"][1:]
        assert len(unmerged) == len(creates) and "".join(p["text"] for p in unmerged) == whole


async def test_continuation_prefers_a_paragraph_break_outside_code():
    paragraphs = [f"Paragraph {i}. " + "lorem ipsum " * 12 + "\n\n" for i in range(12)]
    fence = "```python\n" + "x = 1\n\n" * 40 + "```\n\n"
    channel = await encode(text("t0", *paragraphs, fence, *paragraphs), max_message_bytes=SMALL)
    texts = [s.data for s in channel.stored.values() if s.extras["ai"].get("codec", {}).get("kind") == "text"]
    assert len(texts) > 2
    for piece in texts[:-1]:
        assert piece.endswith("\n"), repr(piece[-20:])
    assert "".join(texts) == "".join(paragraphs) + fence + "".join(paragraphs)


async def test_one_huge_delta_is_split_across_messages():
    huge = "é" * 3000
    channel = await encode(text("t0", huge), max_message_bytes=SMALL)
    assert len(channel.of("publish")) >= 3
    assert view(channel.live)[0]["message"]["parts"][-1]["text"] == huge


async def test_an_end_with_large_metadata_moves_to_a_fresh_message():
    body = "a" * 900
    end = {"type": "text-end", "id": "t0", "providerMetadata": {"p": {"blob": "m" * 700}}}
    channel = await encode([{"type": "text-start", "id": "t0"}, {"type": "text-delta", "id": "t0", "delta": body},
                            end], max_message_bytes=SMALL)
    assert len(channel.of("publish")) == 2
    assert view(channel.live)[0]["message"]["parts"][-1]["text"] == body


async def test_a_tool_input_too_large_for_one_message_raises():
    chunks = [{"type": "tool-input-start", "toolCallId": "c1", "toolName": "w"},
              {"type": "tool-input-delta", "toolCallId": "c1", "inputTextDelta": '{"x":"' + "a" * 3000 + '"}'}]
    with pytest.raises(OversizeMessageError) as caught:
        await encode(chunks, max_message_bytes=SMALL)
    assert caught.value.limit == SMALL - 512 and caught.value.size > caught.value.limit


@pytest.mark.parametrize("chunk", [
    {"type": "data-table", "data": "y" * 70000},
    {"type": "tool-input-available", "toolCallId": "c1", "toolName": "w", "input": "z" * 70000},
    {"type": "text-start", "id": "t0", "providerMetadata": {"a": "m" * 70000}},
])
async def test_oversize_payloads_raise_a_typed_error_before_publishing(chunk):
    channel = FakeChannel()
    with pytest.raises(OversizeMessageError) as caught:
        await encode([chunk], channel)
    assert caught.value.code == 40009 and caught.value.limit == 65536 - 512
    assert "bytes" in str(caught.value)
    assert channel.of("publish") == []


@pytest.mark.parametrize(("chunk", "field"), [
    ({"type": "tool-output-available", "toolCallId": "c1", "output": "é\n" * 40000}, "output"),
    ({"type": "tool-output-available", "toolCallId": "c1", "output": {"rows": ['"x"' * 100] * 700}}, "output"),
    ({"type": "tool-output-error", "toolCallId": "c1", "errorText": "boom " * 20000}, "errorText"),
])
async def test_a_tool_result_over_the_limit_is_cut_to_fit_with_a_marker_naming_its_size(chunk, field):
    channel = await encode([chunk])
    [(_, _, message)] = channel.ops
    assert 0.9 * (65536 - 512) < message.size() <= 65536 - 512, "cut to fit, not shorter than it must"
    whole = chunk[field] if isinstance(chunk[field], str) else json.dumps(chunk[field], ensure_ascii=False)
    sent = message.data[field]
    head, marker = sent.split("\n\n[output truncated: ")
    assert whole.startswith(head)
    assert marker == f"{len(whole.encode())} bytes in all, over the 65536-byte Ably message limit]"


# --- Parity with the JS encoder -----------------------------------------------------------------------------------

SEQUENCES = {
    "text": [{"type": "start"}, {"type": "start-step"}, *text("t0", "Hel", "lo é"), {"type": "finish-step"},
             {"type": "finish", "finishReason": "stop", "messageMetadata": {"u": 1}}],
    "tools": [
        {"type": "start", "messageId": "ui-9"}, {"type": "start-step"},
        {"type": "reasoning-start", "id": "r", "providerMetadata": {"a": {"b": 1}}},
        {"type": "reasoning-delta", "id": "r", "delta": "think", "providerMetadata": {"x": {}}},
        {"type": "reasoning-end", "id": "r"},
        {"type": "tool-input-start", "toolCallId": "c1", "toolName": "weather", "dynamic": True, "title": "W"},
        {"type": "tool-input-delta", "toolCallId": "c1", "inputTextDelta": '{"city":'},
        {"type": "tool-input-delta", "toolCallId": "c1", "inputTextDelta": '"P"}'},
        {"type": "tool-input-available", "toolCallId": "c1", "toolName": "weather", "input": {"city": "P"},
         "dynamic": True},
        {"type": "tool-input-available", "toolCallId": "c2", "toolName": "now", "input": {}, "providerExecuted": True},
        {"type": "tool-approval-request", "approvalId": "ap1", "toolCallId": "c2"},
        {"type": "tool-output-available", "toolCallId": "c1", "output": {"t": 20}, "preliminary": False},
        {"type": "tool-output-error", "toolCallId": "c3", "errorText": "x", "dynamic": True},
        {"type": "tool-output-denied", "toolCallId": "c2"},
        {"type": "tool-input-error", "toolCallId": "c4", "toolName": "bad", "input": "{", "errorText": "parse"},
        {"type": "finish-step"}, {"type": "finish", "finishReason": "tool-calls"},
    ],
    "content": [
        {"type": "file", "url": "https://f", "mediaType": "image/png"},
        {"type": "source-url", "sourceId": "s", "url": "https://s", "title": "S"},
        {"type": "source-document", "sourceId": "d", "mediaType": "text/plain", "title": "D", "filename": "d.txt"},
        {"type": "data-weather", "id": "w", "data": {"t": 1}}, {"type": "data-tick", "data": 2, "transient": True},
        {"type": "message-metadata", "messageMetadata": {"k": [1, 2]}},
        {"type": "error", "errorText": "oops"}, {"type": "abort", "reason": "stop"}, {"type": "abort"},
    ],
    "left-open": [{"type": "text-start", "id": "t0"}, {"type": "text-delta", "id": "t0", "delta": "half"}],
}


@pytest.mark.parametrize("name", list(SEQUENCES))
async def test_the_wire_is_the_js_encoders_wire(name):
    chunks = SEQUENCES[name]
    channel = await encode(chunks)
    ours = [as_op(op, serial, message) for op, serial, message in channel.ops]
    theirs = js_encode(chunks, HEADERS, "M")
    assert "error" not in theirs
    assert json.dumps(ours, sort_keys=True, indent=1) == json.dumps(theirs["ops"], sort_keys=True, indent=1)


async def test_js_renders_a_continued_text_as_adjacent_parts():
    words = [f"word{i} " for i in range(400)]
    channel = await encode([{"type": "start"}, *text("t0", *words)], max_message_bytes=SMALL)
    creates = len(channel.of("publish")) - 1
    for deliveries in (channel.live, channel.history()):
        [entry] = js_decode(deliveries)["messages"]
        parts = entry["message"]["parts"]
        assert [p["type"] for p in parts] == ["step-start"] + ["text"] * creates
        assert "".join(p["text"] for p in parts[1:]) == "".join(words)
