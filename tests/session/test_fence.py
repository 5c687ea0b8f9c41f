"""Fencing: after a break (a stalled process, a dropped connection), a run checks that it still holds its run
before publishing again; on the healthy path nothing is checked and nothing extra is published."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from langchain_ably_transport import ClientSession
from langchain_ably_transport.session import AgentSession
from langchain_ably_transport.session.channel import ChannelWriter
from langchain_ably_transport.session.fence import STALL_S, FencedWriter, continuity_of
from langchain_ably_transport.wire import names
from langchain_ably_transport.wire.envelope import WireMessage

from ..conftest import flood_until_failed
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
        assert continuity.mark() == (mark[0], mark[1] + 1)
        await asyncio.sleep(0.6)
        assert continuity.mark() == (mark[0], mark[1] + 1), "one stall counts once"
        assert await continuity.lived_through_stalls(), "a heartbeat shows the connection lived through it"
    finally:
        continuity.release()


async def test_a_dropped_connection_is_a_break(clients):
    client = await clients()
    continuity = continuity_of(client)
    mark = continuity.mark()
    assert drop_socket(client)
    await asyncio.wait_for(client.connection.once_async("connected"), 15)
    assert continuity.broken_since(mark) and continuity.drops == mark[0] + 1


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
    continuity.drops += 1  # a break
    waiting = [asyncio.ensure_future(writer.publish(WireMessage(name="after", data=str(n)))) for n in range(3)]
    await asyncio.sleep(0.2)
    assert checks == [True] and not any(task.done() for task in waiting), "one check; publishes wait for it"
    answer.set_result(True)
    await asyncio.gather(*waiting)
    assert [(w.name, w.data) for w in await _published(client, channel_name, 4)] == \
        [("before", "1"), ("after", "0"), ("after", "1"), ("after", "2")]

    lost = FencedWriter(ChannelWriter(client.channels.get(channel_name)), continuity, _no)
    continuity.drops += 1
    assert await lost.publish(WireMessage(name="lost", data="x")) is None and lost.lost
    assert await lost.append("some-serial", WireMessage(data="y")) is None
    assert [w.name for w in await _published(client, channel_name, 1)] == ["after"], "nothing published"


async def _no() -> bool:
    return False


def _claims(user: ClientSession) -> list[tuple[str | None, str, str]]:
    return [(w.name, w.transport[names.HEADER_INVOCATION_ID], w.transport[names.HEADER_ADOPTION])
            for w in user.core._log if names.HEADER_ADOPTION in w.transport]


@asynccontextmanager
async def stalled_run(clients: Any, channel_name: str, during_stall: Any) -> AsyncIterator[tuple[ClientSession, Any]]:
    """A run whose producer stalls the loop mid-stream (`during_stall(agent_client)` runs first): the user's
    session once the run has ended, whole, and the run."""
    async with ClientSession(await clients(client_id="alice"), channel_name) as user:
        sent = await user.send("hello")
        agent = await clients(client_id="agent")
        async with AgentSession(agent, channel_name) as session:
            run = await session.create_run(sent.invocation)
            await run.start()

            async def stalling() -> AsyncIterator[dict[str, Any]]:
                yield {"type": "text-start", "id": "t"}
                yield {"type": "text-delta", "id": "t", "delta": "before the stall, "}
                during_stall(agent)
                _freeze_loop(STALL_S + 0.2)
                yield {"type": "text-delta", "id": "t", "delta": "and after it"}
                yield {"type": "text-end", "id": "t"}

            assert (await run.pipe(stalling())).reason == "complete"
            await run.end()
        assert await user.wait_for(lambda: user.runs()[-1].status == "complete", 10)
        assert user.messages()[-1].content == "before the stall, and after it"
        yield user, run


async def test_a_stall_the_connection_lived_through_costs_a_heartbeat_and_no_message(clients, channel_name):
    """An overloaded loop stalls: one ping shows the connection never dropped, so no run claims itself again."""
    async with stalled_run(clients, channel_name, lambda agent: None) as (user, _):
        assert _claims(user) == []


async def test_a_run_whose_connection_dropped_in_a_stall_and_no_one_adopted_claims_itself_again(clients,
                                                                                               channel_name):
    """The stall and a dropped socket: the agent may have left presence, so the run checks, finds no other
    process on it, claims it again (one `ai-run-resume`) and streams on."""
    async with stalled_run(clients, channel_name, drop_socket) as (user, run):
        assert _claims(user) == [(names.RUN_RESUME, run.invocation_id, "1")]


async def test_a_run_whose_connection_ably_ended_stops_its_producer_at_once(strict, clients, channel_name):
    """Its next publish would find the cut-off, but a producer between chunks (a model thinking, or a pass whose
    append failed, which sends no other until its stream ends) may publish nothing for long, its model streaming
    on meanwhile, billed."""
    async with ClientSession(await clients(strict, client_id="alice"), channel_name) as user:
        sent = await user.send("hello")
        agent = await clients(strict, client_id="agent")
        async with AgentSession(agent, channel_name) as session:
            run = await session.create_run(sent.invocation)
            await run.start()
            produced = asyncio.Event()

            async def thinking() -> AsyncIterator[dict[str, Any]]:
                yield {"type": "text-start", "id": "t"}
                yield {"type": "text-delta", "id": "t", "delta": "let me think"}
                produced.set()
                await asyncio.sleep(60)  # publishes nothing meanwhile
                yield {"type": "text-end", "id": "t"}

            piping = asyncio.ensure_future(run.pipe(thinking()))
            await asyncio.wait_for(produced.wait(), 10)
            assert await user.wait_for(lambda: (user.messages()[-1].content or "") == "let me think", 10)
            await flood_until_failed(agent)  # with nothing of the run's left to publish
            result = await asyncio.wait_for(piping, 5)
            assert (result.reason, run.cut_off) == ("cancelled", True)
