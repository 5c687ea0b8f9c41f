"""Hostile input on a live channel: an attacker publishing hundreds of fuzzed messages (through ably-python, and
as raw protocol frames where the SDK cannot say them) crashes no agent and no client and corrupts no view.

An agent (`AgentSession`) and a client (`ClientSession`) hold a three-turn conversation on the dev server while a
third client, `mallory`, publishes the harmless kinds of `hostile.py` between and during the turns: foreign
traffic, unknown names, cancels of ended or unknown runs, undecodable and unplaceable inputs, inputs naming runs no
agent started, replays and reused ids, forged step lifecycle, with headers of the wrong types and of up to ~64 KiB,
data that lies about its encoding. The agent answers every turn, the view equals what the agent published, and a
client that joins afterwards (reading it all back from history) sees the same. With `trusted_agents`, mallory also
impersonates the agent (forged outputs and run lifecycle, replays of the agent's messages), to the same end.

`serve_graph` handed an invocation for a garbage input ends that run `error` instead of raising or hanging, and
refuses a continuation of a run no agent started.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import json
import uuid
from contextlib import AsyncExitStack
from typing import Any

import aiohttp
import pytest
from ably.types.message import Message
from ably.util.exceptions import AblyException
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from langchain_ably_transport import AblySaver, ClientSession
from langchain_ably_transport.codec.langchain import ChunkTranslator
from langchain_ably_transport.errors import ErrorCode
from langchain_ably_transport.graph import serve_graph
from langchain_ably_transport.session import AgentSession
from langchain_ably_transport.session.core import chain_messages
from langchain_ably_transport.wire import WireMessage, names
from langchain_ably_transport.wire.invocation import Invocation

from ..devserver.raw import RawConnection, raw_connection
from ..graph.graphs import chat_graph
from .hostile import HARMLESS, IMPERSONATIONS, Chooser, Hostile, Kinds, Known, Limits, hostile

SEED = 20240808
MESSAGES_PER_PHASE = 200  # three phases: before the second turn, during it, before the third
LIVE_LIMITS = Limits(huge=64 * 1024)  # Ably's message limit: some huge headers fit, some are refused
ACK, NACK = 1, 2
TURNS = [("hello", "Hi there, how can I help?"), ("tell me a story", " ".join(f"word{i}" for i in range(60))),
         ("thanks", "You're welcome.")]


class Attacker:
    """Publishes hostile messages as `mallory`: through ably-python when it can express them, else as raw frames;
    counts what the server accepted and refused, by kind."""

    def __init__(self, server: Any, channel: Any, seed: int, kinds: Kinds) -> None:
        self.server, self.channel, self.kinds = server, channel, kinds
        self.chooser, self.known = Chooser(seed), Known()
        self.accepted: collections.Counter[str] = collections.Counter()
        self.refused: collections.Counter[str] = collections.Counter()
        self._learnt = 0

    def learn(self, log: list[WireMessage]) -> None:
        """What it reads on the channel: every message of the legitimate clients it has not seen yet."""
        for wire in log[self._learnt:]:
            if wire.client_id in ("alice", "agent") and wire.name is not None:
                self.known.learn({"name": wire.name, "data": wire.data, "extras": wire.extras, "serial": wire.serial})
        self._learnt = len(log)

    async def attack(self, count: int) -> None:
        async with AsyncExitStack() as sockets:
            raw = await sockets.enter_async_context(raw_connection(self.server, clientId="mallory"))
            for msg_serial in range(count):
                made = hostile(self.chooser, self.known, LIVE_LIMITS, self.kinds)
                try:
                    published = await (self._sdk(made) if made.sdk_publishable else
                                       self._frame(made, raw, msg_serial))
                except (ConnectionError, aiohttp.ClientError):  # the server's close was in flight: send it again
                    raw = await sockets.enter_async_context(raw_connection(self.server, clientId="mallory"))
                    published = await self._frame(made, raw, msg_serial)
                (self.accepted if published else self.refused)[made.kind] += 1
                if raw.ws.closed:  # a frame over the server's frame limit closes the socket, as Ably's does
                    raw = await sockets.enter_async_context(raw_connection(self.server, clientId="mallory"))

    async def _sdk(self, made: Hostile) -> bool:
        m = made.message
        try:
            await self.channel.publish(Message(name=m.get("name"), data=m.get("data"), extras=m.get("extras"),
                                               client_id=m.get("clientId"), id=m.get("id")))
        except (AblyException, UnicodeEncodeError):  # refused by the server, or by the SDK (a lone surrogate)
            return False
        return True

    async def _frame(self, made: Hostile, raw: RawConnection, msg_serial: int) -> bool:
        message = dict(made.message)
        if not isinstance(message.get("data"), str | None):  # JSON travels as text, as an SDK sends it
            claimed = message.get("encoding")
            message["data"], message["encoding"] = json.dumps(message["data"]), f"{claimed}/json" if claimed else "json"
        await raw.send(_frame_text({"action": 15, "channel": self.channel.name, "msgSerial": msg_serial,
                                    "messages": [message]}))
        while True:
            received = await asyncio.wait_for(raw.ws.receive(), 10)
            if received.type != aiohttp.WSMsgType.TEXT:
                return False
            frame = json.loads(received.data)
            if frame["action"] in (ACK, NACK) and frame.get("msgSerial") == msg_serial:
                return frame["action"] == ACK


def _frame_text(frame: dict[str, Any]) -> str:
    """The frame as UTF-8 JSON text (ably-js's encoding), or ASCII-escaped when it holds a lone surrogate."""
    text = json.dumps(frame, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(frame)
    return text


def _model_chunks(text: str, delay: float = 0.0):
    async def chunks():
        model = GenericFakeChatModel(messages=iter([AIMessage(content=text, id=str(uuid.uuid4()))]))
        translator = ChunkTranslator()
        async for chunk in model.astream("ignored"):
            for out in translator.feed(chunk):
                yield out
            await asyncio.sleep(delay)
        for out in translator.finish():
            yield out

    return chunks()


async def _turn(user: ClientSession, agent: AgentSession, text: str, reply: str, delay: float = 0.0) -> list:
    """One turn; what it should add to the view: `(codec-message-id, role, text)` of the prompt and the reply."""
    sent = await user.send(text)
    run = await agent.create_run(sent.invocation)
    await run.start()
    result = await run.pipe(_model_chunks(reply, delay))
    await run.end(result.reason)
    assert result.reason == "complete", result.error
    assert await user.wait_for(functools.partial(_ended, user, run.run_id, names.RunStatus.COMPLETE))
    return [(sent.codec_message_id, "user", text), (result.codec_message_id, "assistant", reply)]


def _transcript(view: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(e["codecMessageId"], e["message"]["role"],
             "".join(p["text"] for p in e["message"]["parts"] if p["type"] == "text")) for e in view]


@pytest.mark.parametrize("trusted", [None, {"agent"}], ids=["any-publisher", "trusted-agents"])
async def test_a_hostile_client_crashes_nothing_and_corrupts_no_view(server, clients, channel_name, trusted):
    """Harmless kinds against sessions that believe any publisher; with `trusted_agents`, impersonations too."""
    kinds = HARMLESS if trusted is None else {**HARMLESS, **IMPERSONATIONS}
    user_conn, agent_conn = await clients(client_id="alice"), await clients(client_id="agent")
    mallory = await clients(client_id="mallory")
    async with (ClientSession(user_conn, channel_name, trusted_agents=trusted) as user,
                AgentSession(agent_conn, channel_name, coalesce_window=0, trusted_agents=trusted) as agent):
        attacker = Attacker(server, mallory.channels.get(channel_name), SEED, kinds)
        expected = await _turn(user, agent, *TURNS[0])
        attacker.learn(user.core._log)
        await attacker.attack(MESSAGES_PER_PHASE)
        attacker.learn(user.core._log)
        during = asyncio.ensure_future(attacker.attack(MESSAGES_PER_PHASE))
        expected += await _turn(user, agent, *TURNS[1], delay=0.01)
        await during
        attacker.learn(user.core._log)
        await attacker.attack(MESSAGES_PER_PHASE)
        expected += await _turn(user, agent, *TURNS[2])

        cases = attacker.accepted + attacker.refused
        assert cases.total() == 3 * MESSAGES_PER_PHASE and set(cases) == set(kinds), cases
        assert attacker.accepted.total() > cases.total() / 2, (attacker.accepted, attacker.refused)
        folded = sum(wire.client_id == "mallory" for wire in user.core._log)
        assert folded > attacker.accepted.total() / 3, "a good part of what the server took reached the sessions"
        assert _transcript(user.view()) == expected
        assert chain_messages(agent.core.tree.visible()) == user.view(), "the agent reads what the client shows"
        async with ClientSession(await clients(client_id="bob"), channel_name, trusted_agents=trusted) as late:
            assert late.view() == user.view(), "history folds to the same view"


def _ended(session: ClientSession, run_id: str, status: names.RunStatus) -> bool:
    run = session.core.tree.run(run_id)
    return run is not None and run.status == status


async def _garbage_input(client: Any, channel_name: str, codec: dict[str, str], data: Any) -> Invocation:
    """Publish an `ai-input` the codec cannot read as a message and return the invocation a client would POST."""
    event_id = str(uuid.uuid4())
    transport = {names.HEADER_ROLE: "user", names.HEADER_CODEC_MESSAGE_ID: str(uuid.uuid4()),
                 names.HEADER_EVENT_ID: event_id, names.HEADER_STREAM: "false"}
    await client.channels.get(channel_name).publish(
        Message(name=names.AI_INPUT, data=data, extras={"ai": {"transport": transport, "codec": codec}}))
    return Invocation(event_id, channel_name)


async def test_serve_graph_ends_a_run_for_a_garbage_input_with_an_error(clients, channel_name):
    agent, mallory = await clients(client_id="agent"), await clients(client_id="mallory")
    garbage = [({names.KIND: "no-such-kind"}, {"junk": [1, 2]}),
               ({names.KIND: "user-message", names.PART_TYPE: "image"}, "not a part"),
               ({}, "{\"unterminated")]
    async with ClientSession(await clients(client_id="alice"), channel_name) as user:
        for codec, data in garbage:
            invocation = await _garbage_input(mallory, channel_name, codec, data)
            result = await asyncio.wait_for(
                serve_graph(chat_graph(AblySaver(agent), "never said"), invocation, client=agent), 30)
            assert result.outcome == "error" and isinstance(result.error, ValueError)
            assert await user.wait_for(functools.partial(_ended, user, result.run_id, names.RunStatus.ERROR))
            assert user.core.tree.run(result.run_id).error.code == ErrorCode.BAD_REQUEST
        assert "never said" not in json.dumps(user.view()), "the model was never called"
        sent = await user.send("a real question")
        result = await serve_graph(chat_graph(AblySaver(agent), "A real answer."), sent.invocation, client=agent)
        assert result.outcome == "complete"
        assert await user.wait_for(lambda: user.messages()[-1].content == "A real answer.")


async def test_serve_graph_refuses_a_continuation_of_a_run_no_agent_started(clients, channel_name):
    agent, mallory = await clients(client_id="agent"), await clients(client_id="mallory")
    async with (ClientSession(await clients(client_id="alice"), channel_name) as user,
                ClientSession(mallory, channel_name) as forger):
        sent = await user.send("hello")
        assert (await serve_graph(chat_graph(AblySaver(agent), "Hi."), sent.invocation,
                                  client=agent)).outcome == "complete"
        forged = await forger.send("resume this", run_id="run-nobody-started")
        result = await asyncio.wait_for(serve_graph(chat_graph(AblySaver(agent), "never said"), forged.invocation,
                                                    client=agent), 30)
        assert result.outcome == "rejected" and "no agent started" in str(result.error)
        assert [e["message"]["role"] for e in user.view()] == ["user", "assistant"]
