"""Step markers a reader does without: fewer messages, the same messages in the genuine JS reader and ours."""

from __future__ import annotations

from typing import Any

import pytest

from langchain_ably_transport.codec import MessageEncoder
from langchain_ably_transport.codec.step_markers import MarkerFate, RunPhases, held_marker_fate
from langchain_ably_transport.wire import WireMessage, build_transport_headers

from .channel import FakeChannel
from .oracle import js_decode
from .test_encoder import HEADERS, encode, text, view

START, START_STEP, FINISH_STEP = {"type": "start"}, {"type": "start-step"}, {"type": "finish-step"}
FINISH = {"type": "finish", "finishReason": "stop"}
TASK = {"type": "data-task", "id": "task-1", "data": {"node": "wrap", "status": "done"}}
CALL = {"type": "tool-input-available", "toolCallId": "c1", "toolName": "add", "input": {"a": 1}}
RESULT = {"type": "tool-output-available", "toolCallId": "c1", "output": 2}

# name: (chunks, the step markers the agent still publishes)
SEQUENCES: dict[str, tuple[list[dict[str, Any]], list[str]]] = {
    "one pass, then task parts": ([START, TASK, START_STEP, *text("t0", "Hel", "lo"), FINISH_STEP, TASK, FINISH],
                                  []),
    "two passes": ([START, START_STEP, CALL, RESULT, FINISH_STEP, START_STEP, *text("t1", "two"), FINISH_STEP,
                    FINISH], ["finish-step"]),
    "a data part opens the step": ([START, START_STEP, TASK, *text("t0", "x"), FINISH_STEP, FINISH],
                                   ["start-step"]),
    "an empty pass": ([START, START_STEP, FINISH_STEP, FINISH], ["start-step"]),
    "no finish": ([START, START_STEP, *text("t0", "x"), FINISH_STEP], ["finish-step"]),
}


def markers(channel: FakeChannel) -> list[str]:
    kinds = [message.codec.get("kind") for op, _, message in channel.ops if op == "publish"]
    return [kind for kind in kinds if kind in ("start-step", "finish-step")]


@pytest.mark.parametrize("name", list(SEQUENCES))
async def test_markers_left_out_change_no_message_in_the_js_reader_or_ours(name):
    chunks, kept = SEQUENCES[name]
    full = await encode(chunks)
    lean = await encode(chunks, phases=RunPhases("R"))
    assert markers(lean) == kept
    assert len(lean.of("publish")) == len(full.of("publish")) - len(markers(full)) + len(kept)
    for deliveries in ("live", "history"):
        theirs_full = js_decode(full.live if deliveries == "live" else full.history())["messages"]
        theirs_lean = js_decode(lean.live if deliveries == "live" else lean.history())["messages"]
        assert theirs_lean == theirs_full, deliveries
    assert view(lean.live) == view(full.live) and view(lean.history()) == view(full.history())


async def test_a_step_another_message_of_the_run_holds_open_keeps_its_start_step():
    """Readers track steps per run: with another message's step open, a stream start synthesises nothing."""
    channel, phases = FakeChannel(), RunPhases("R")
    other = build_transport_headers(
        role="assistant", codec_message_id="N", run_id="R", run_client_id="", parent="U", invocation_id="I",
        input_codec_message_id="U", step_id="I-step-1", step_client_id="",
    )
    first = MessageEncoder(channel, HEADERS, coalesce_window=0, phases=phases)
    second = MessageEncoder(channel, other, coalesce_window=0, phases=phases)
    for chunk in [START, START_STEP, {"type": "text-start", "id": "a"}]:
        await first.write(chunk)
    for chunk in [START, START_STEP, *text("b", "second"), FINISH_STEP, FINISH]:
        await second.write(chunk)
    for chunk in [{"type": "text-delta", "id": "a", "delta": "first"}, {"type": "text-end", "id": "a"},
                  FINISH_STEP, FINISH]:
        await first.write(chunk)
    await first.close()
    await second.close()
    assert markers(channel) == ["start-step"], "the second message's start-step goes out: the first's step is open"
    messages = {m["codecMessageId"]: m["message"] for m in js_decode(channel.live)["messages"]}
    assert [p["type"] for p in messages["M"]["parts"]] == ["step-start", "text"]
    assert [p["type"] for p in messages["N"]["parts"]] == ["step-start", "text"]


@pytest.mark.parametrize(("held", "next_type", "starts_step", "step_open", "fate"), [
    ("start-step", "text-start", True, False, MarkerFate.DROP),
    ("start-step", "text-start", True, True, MarkerFate.SEND),
    ("start-step", "data-task", False, False, MarkerFate.SEND),
    ("start-step", "finish-step", False, False, MarkerFate.SEND),
    ("finish-step", "finish", False, True, MarkerFate.DROP),
    ("finish-step", "data-task", False, True, MarkerFate.HOLD),
    ("finish-step", "start-step", False, True, MarkerFate.SEND),
    ("finish-step", "tool-output-available", False, True, MarkerFate.SEND),
])
def test_held_marker_fate(held, next_type, starts_step, step_open, fate):
    assert held_marker_fate(held, next_type, starts_step=starts_step, step_open=step_open) is fate


async def test_a_step_opened_by_a_message_written_outside_the_encoders_keeps_the_next_start_step():
    """`Run.publish` reports a codec's own messages: the copy stays what readers hold."""
    channel, phases = FakeChannel(), RunPhases("R")
    raw = WireMessage(name="ai-output", data="", transport={**HEADERS, "stream": "false"},
                      codec={"kind": "start-step"})
    phases.sent(raw)
    await channel.publish(raw)
    assert phases.step_open
    await encode([START, START_STEP, *text("t0", "x"), FINISH_STEP, FINISH], channel, phases=phases)
    assert markers(channel) == ["start-step", "start-step"], "the raw one and the encoder's own"
