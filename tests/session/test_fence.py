"""Fencing: after a break (a stalled process, a dropped connection), a run checks that it still holds its run
before publishing again; on the healthy path nothing is checked and nothing extra is published."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from langchain_ably_transport import ClientSession
from langchain_ably_transport.session import AgentSession
from langchain_ably_transport.session.channel import ChannelWriter
from langchain_ably_transport.session.fence import STALL_S, FencedWriter, continuity_of
from langchain_ably_transport.wire import names
from langchain_ably_transport.wire.envelope import WireMessage

from ..faults.drops import drop_socket


def _freeze_loop(seconds: float) -> None:
    """What SIGSTOP does to a process, as its event loop sees it: time passes and nothing runs."""
    time.sleep(seconds)


async def test_a_stalled_loop_is_a_break_and_a_quiet_one_is_not(clients):
    continuity = continuity_of(await clients())
    continuity.hold()
    try:
        mark = continuity.mark()
        await asyncio.sleep(STALL_S + 0.3)  # quiet, but the loop runs: no break
        assert not continuity.broken_since(mark)
        _freeze_loop(STALL_S + 0.1)
        assert continuity.broken_since(mark), "seen at the next check, before the ticker runs"
        assert continuity.breaks == mark + 1
        await asyncio.sleep(0.6)
        assert continuity.breaks == mark + 1, "one stall counts once"
    finally:
        continuity.release()


async def test_a_dropped_connection_is_a_break(clients):
    client = await clients()
    continuity = continuity_of(client)
    mark = continuity.mark()
    assert drop_socket(client)
    await asyncio.wait_for(client.connection.once_async("connected"), 15)
    assert continuity.broken_since(mark)


async def _published(client: Any, channel_name: str, count: int) -> list[WireMessage]:
    page = await client.channels.get(channel_name).history(limit=100)
    wires = [w for m in reversed(page.items) if (w := WireMessage.from_ably(m)) is not None]
    return wires[-count:]


async def test_after_a_break_publishes_wait_for_one_check_in_order_and_a_failed_check_publishes_nothing(
        clients, channel_name):
    client = await clients()
    continuity = continuity_of(client)
    checks: list[bool] = []
    answer = asyncio.get_running_loop().create_future()

    async def verify() -> bool:
        checks.append(True)
        return await answer

    writer = FencedWriter(ChannelWriter(client.channels.get(channel_name)), continuity, verify)
    await writer.publish(WireMessage(name="before", data="1"))
    assert checks == [], "no check on the healthy path"
    continuity.breaks += 1  # a break
    waiting = [asyncio.ensure_future(writer.publish(WireMessage(name="after", data=str(n)))) for n in range(3)]
    await asyncio.sleep(0.2)
    assert checks == [True] and not any(task.done() for task in waiting), "one check; publishes wait for it"
    answer.set_result(True)
    await asyncio.gather(*waiting)
    assert [(w.name, w.data) for w in await _published(client, channel_name, 4)] == \
        [("before", "1"), ("after", "0"), ("after", "1"), ("after", "2")]

    lost = FencedWriter(ChannelWriter(client.channels.get(channel_name)), continuity, _no)
    continuity.breaks += 1
    assert await lost.publish(WireMessage(name="lost", data="x")) is None and lost.lost
    assert await lost.append("some-serial", WireMessage(data="y")) is None
    assert [w.name for w in await _published(client, channel_name, 1)] == ["after"], "nothing published"


async def _no() -> bool:
    return False


async def test_a_run_cut_off_that_no_one_adopted_claims_itself_again_and_finishes(clients, channel_name):
    """A stall long enough that the agent's presence may have left: no other process published for the run,
    so the run claims itself again (one `ai-run-resume`) and streams on."""
    async with ClientSession(await clients(client_id="alice"), channel_name) as user:
        sent = await user.send("hello")
        async with AgentSession(await clients(client_id="agent"), channel_name) as session:
            run = await session.create_run(sent.invocation)
            await run.start()

            async def stalling() -> AsyncIterator[dict[str, Any]]:
                yield {"type": "text-start", "id": "t"}
                yield {"type": "text-delta", "id": "t", "delta": "before the stall, "}
                _freeze_loop(STALL_S + 0.2)
                yield {"type": "text-delta", "id": "t", "delta": "and after it"}
                yield {"type": "text-end", "id": "t"}

            assert (await run.pipe(stalling())).reason == "complete"
            await run.end()
        assert await user.wait_for(lambda: user.runs()[-1].status == "complete", 10)
        assert user.messages()[-1].content == "before the stall, and after it"
        claims = [w for w in user.core._log if names.HEADER_ADOPTION in w.transport]
        assert [(w.name, w.transport[names.HEADER_INVOCATION_ID], w.transport[names.HEADER_ADOPTION])
                for w in claims] == [(names.RUN_RESUME, run.invocation_id, "1")]
