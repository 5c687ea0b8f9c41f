"""The dev server killed with -9 mid-run and restarted on the same data file and port.

The agent and the client (the same Python objects) reconnect on their own; the server lost every connection,
so each gets a new one (80008) with messages in flight. Nothing ACKed is lost and nothing is applied twice:
creates are resent (their ids let the server recognise one it already stored), appends in doubt are refused
and their stream is repaired by an update at its end. The run finishes, the client shows exactly what the
agent produced, and the saver's checkpoints (some written across the crash) read back whole.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from contextlib import AsyncExitStack

import pytest

from langchain_ably_transport import AblySaver, ClientSession, connect
from langchain_ably_transport.checkpoint.saver import state_channel
from langchain_ably_transport.codec import Decoder, MessageEncoder, UIMessageAccumulator
from langchain_ably_transport.devserver import RunningServer, start
from langchain_ably_transport.graph import serve_graph
from langchain_ably_transport.wire import build_transport_headers

from ..codec.channel import FakeChannel
from ..devserver.helpers import eventually
from ..graph.graphs import chat_graph
from .drops import (
    LOOP_STEPS,
    assert_shows_exactly,
    assistant_texts,
    duplicated_records,
    in_flight,
    loop_graph,
    runs_settled,
    unique_words,
)

SERVER_ARGS = ["--inbound-rate", "0"]
RETRY_S = 0.2  # reconnect attempts while the server is down: ably-python waits 15 s by default
SIDE_MESSAGES = 300


class RestartableServer:
    """A dev server on a fixed port and data file, which `crash_and_restart` kills with -9 and starts again."""

    def __init__(self, data: str) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.data = data
        self.running: RunningServer = self._start()

    def _start(self) -> RunningServer:
        return start(port=self.port, data=self.data, args=SERVER_ARGS)

    async def crash_and_restart(self) -> None:
        self.running.kill()
        self.running = await asyncio.to_thread(self._start)

    def stop(self) -> None:
        self.running.stop()


@pytest.fixture
def restartable(tmp_path) -> Iterator[RestartableServer]:
    server = RestartableServer(str(tmp_path / "ably.sqlite3"))
    try:
        yield server
    finally:
        server.stop()


async def test_a_run_and_its_checkpoints_survive_a_server_crash_and_restart(restartable, channel_name):
    server = restartable.running
    async with AsyncExitStack() as stack:
        agent, user, reader = [await stack.enter_async_context(connect(
            server.key, server.url, client_id=name, disconnected_retry_timeout=RETRY_S * 1000))
            for name in ("agent", "alice", "reader")]
        alice = await stack.enter_async_context(ClientSession(user, channel_name))
        reply = unique_words(500)
        graph = chat_graph(AblySaver(agent), reply, delay=0.004)
        sent = await alice.send("a long story, please")
        serving = asyncio.ensure_future(serve_graph(graph, sent.invocation, client=agent))
        loop_thread = {"configurable": {"thread_id": f"{channel_name}-loop"}, "recursion_limit": 100}
        looping = asyncio.ensure_future(loop_graph(AblySaver(agent), delay=0.06).ainvoke({"steps": []}, loop_thread))
        assert await alice.wait_for(lambda: len("".join(assistant_texts(alice)).split()) >= 100, timeout=30)
        side = agent.channels.get(f"{channel_name}-side")
        publishes = [asyncio.ensure_future(side.publish("n", str(i))) for i in range(SIDE_MESSAGES)]
        await eventually(lambda: in_flight(agent) > 0)
        connections = {c: c.connection.connection_manager.connection_id for c in (agent, user)}

        await restartable.crash_and_restart()

        result = await asyncio.wait_for(serving, 60)
        assert result.outcome == "complete"
        assert (await asyncio.wait_for(looping, 60))["steps"] == list(range(LOOP_STEPS))
        await asyncio.wait_for(asyncio.gather(*publishes), 30)  # every publish settles, none fails
        assert all(c.connection.connection_manager.connection_id != old for c, old in connections.items()), \
            "the server lost the connections: both got new ones"

        record = await graph.aget_state({"configurable": {"thread_id": channel_name}})  # the agent's own record
        assert record.values["messages"][-1].content == reply
        assert await alice.wait_for(lambda: runs_settled(alice, 1), timeout=30)
        assert_shows_exactly(assistant_texts(alice), [reply])
        history = await reader.channels.get(f"{channel_name}-side").history(direction="forwards", limit=1000)
        assert [m.data for m in history.items] == [str(i) for i in range(SIDE_MESSAGES)], "each once, in order"

        cold = chat_graph(AblySaver(reader))  # a saver that never saw the crash reads the checkpoints back
        state = await cold.aget_state({"configurable": {"thread_id": channel_name}})
        assert [m.content for m in state.values["messages"]] == ["a long story, please", reply]
        loops = loop_graph(AblySaver(reader))
        assert (await loops.aget_state(loop_thread)).values["steps"] == list(range(LOOP_STEPS))
        assert len([s async for s in loops.aget_state_history(loop_thread)]) == LOOP_STEPS + 2
        for thread in (channel_name, f"{channel_name}-loop"):
            assert await duplicated_records(reader, state_channel(thread)) == 0


async def test_after_a_failed_append_a_live_reader_gets_the_rest_from_the_repairing_update():
    """The repair has to extend what a live reader has: an append landing after the failed one would leave a gap
    that the update (which it then takes as a replacement of its text) cannot fill."""
    channel = FakeChannel(fail_appends={1})
    headers = build_transport_headers(role="assistant", codec_message_id="M", run_id="R", run_client_id="")
    encoder = MessageEncoder(channel, headers, coalesce_window=0)
    await encoder.write({"type": "text-start", "id": "t"})
    await asyncio.sleep(0.01)  # the create's ACK has come: each delta goes out when written
    for delta in ("Hel", "lo", " wor", "ld"):
        await encoder.write({"type": "text-delta", "id": "t", "delta": delta})
        await asyncio.sleep(0)  # the model's next token takes a turn of the loop: the failure is known by then
    await encoder.write({"type": "text-end", "id": "t"})
    await encoder.close()
    decoder, live = Decoder(), UIMessageAccumulator()
    for delivery in channel.live:
        live.apply_all(decoder.decode_ably(delivery))
    assert [p["text"] for p in live.snapshot()[0]["message"]["parts"] if p["type"] == "text"] == ["Hello world"]
    assert [m.data for m in channel.of("append")] == ["Hel", "lo"], "nothing appended after the failure"

