"""Replicas in processes of their own: uvicorn behind a round-robin proxy, a SIGTERM in the middle of a run, and a
replica killed with -9 mid-stream whose run a survivor finishes while the genuine JS client watches."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import ClientSession as HttpSession
from aiohttp import web

from langchain_ably_transport import ClientSession
from langchain_ably_transport.devserver import spawn
from langchain_ably_transport.wire import names

from ..interop.test_ai_transport import js

ROOT = Path(__file__).resolve().parents[2]
LEAVE_DELAY_S = 1.0  # the dev server's presence leave delay in the crash test (Ably's is 15 s)


@pytest.fixture(scope="module")
def crash_server():
    with spawn(args=["--presence-leave-delay", str(LEAVE_DELAY_S), "--client-timeout", "1"]) as running:
        yield running


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def replica(server, name: str, **env: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`uvicorn tests.server.replica:app --factory` on a free port, ready (its /readyz answers 200)."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "tests.server.replica:app", "--factory", "--port", str(port),
         "--log-level", "warning"], cwd=ROOT, text=True, stderr=subprocess.PIPE,
        env={**os.environ, "ABLY_API_KEY": server.key, "ABLY_ENDPOINT": server.url, "REPLICA_NAME": name, **env})
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process)
        yield url, process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def _wait_ready(url: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read() if process.stderr else "replica exited"
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"replica at {url} not ready after 30 s")


@asynccontextmanager
async def round_robin(*upstreams: str) -> AsyncIterator[tuple[str, list[str]]]:
    """Any load balancer: each request to the next replica in turn, no stickiness; yields its URL and the log."""
    turns, served = itertools.cycle(upstreams), []

    async def forward(request: web.Request) -> web.Response:
        upstream = next(turns)
        served.append(upstream)
        async with HttpSession() as http, http.request(request.method, f"{upstream}{request.rel_url}",
                                                       data=await request.read(), headers=request.headers) as reply:
            return web.Response(status=reply.status, body=await reply.read(), headers=reply.headers)

    app = web.Application()
    app.router.add_route("*", "/{path:.*}", forward)
    runner = web.AppRunner(app)
    await runner.setup()
    port = _free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}", served
    finally:
        await runner.cleanup()


async def test_a_conversations_turns_alternate_between_two_replicas_and_its_thread_continues(server, clients):
    session = f"conversations:{uuid.uuid4().hex[:12]}"
    with replica(server, "a") as (a, _), replica(server, "b") as (b, _):
        async with round_robin(a, b) as (balancer, served), \
                ClientSession(await clients(client_id="alice"), session) as alice, httpx.AsyncClient() as http:
            replies = []
            for turn in range(4):
                sent = await alice.send(f"message {turn}")
                assert (await http.post(f"{balancer}/api/chat", json=sent.invocation.to_json())).status_code == 202
                assert await alice.wait_for(lambda n=turn: len(alice.runs()) == n + 1
                                            and alice.runs()[-1].status == "complete", timeout=20)
                replies.append(alice.messages()[-1].content)
    assert replies == ["turn 1 from a", "turn 2 from b", "turn 3 from a", "turn 4 from b"]
    assert served == [a, b, a, b]


async def test_sigterm_mid_run_ends_it_cleanly_within_the_grace_period_and_the_replica_exits(server, clients):
    """A run longer than the grace period: the replica stops taking invocations, ends the run `error` (nothing is
    left streaming), and exits, all within the grace period plus the stop's own bound."""
    session = f"conversations:{uuid.uuid4().hex[:12]}"
    with replica(server, "a", REPLY_DELAY_S="0.5", GRACE_PERIOD_S="1") as (url, process):
        async with ClientSession(await clients(client_id="alice"), session) as alice, httpx.AsyncClient() as http:
            sent = await alice.send("a long answer, please")
            assert (await http.post(f"{url}/api/chat", json=sent.invocation.to_json())).status_code == 202
            assert await alice.wait_for(lambda: any(m.type == "ai" and m.content for m in alice.messages()), 10)
            started = time.monotonic()
            process.send_signal(signal.SIGTERM)
            assert await alice.wait_for(lambda: alice.runs()[-1].status != "active", timeout=15)
            run = alice.runs()[-1]
            assert run.status == "error" and "stopped before the run finished" in run.error.message
            # uvicorn re-raises the signal once its graceful shutdown is done, as a process killed by it would end
            assert process.wait(timeout=15) in (0, -signal.SIGTERM)
            assert time.monotonic() - started < 1 + 10


async def test_kill_9_mid_stream_the_surviving_replica_finishes_the_run_and_a_js_client_sees_one_run(crash_server,
                                                                                                      clients):
    """Replica b served the conversation's first turn, so it watches the session. The genuine @ably/ai-transport
    client sends the second; replica a streams it and is killed with -9. b adopts the run: the client sees it
    reach `complete` with b's answer, under the same run id, and no second run; the user sent nothing more."""
    session = f"conversations:{uuid.uuid4().hex[:12]}"
    with replica(crash_server, "a", REPLY_DELAY_S="0.1") as (a, doomed), \
            replica(crash_server, "b", REPLY_DELAY_S="0.1") as (b, _):
        async with ClientSession(await clients(crash_server, client_id="alice"), session) as alice, \
                httpx.AsyncClient() as http:
            first = await alice.send("hello")
            assert (await http.post(f"{b}/api/chat", json=first.invocation.to_json())).status_code == 202
            assert await alice.wait_for(lambda: len(alice.runs()) == 1 and alice.runs()[0].status == "complete", 20)

            client = await js(crash_server, "client-send.mjs", SESSION=session, TEXT="and then?", CLIENT_ID="alice",
                              TIMEOUT_MS="45000")
            sent = await client.next_line()
            assert (await http.post(f"{a}/api/chat", json=sent["invocation"])).status_code == 202
            assert await alice.wait_for(lambda: "turn 2 from a word" in _assistant_text(alice), 20), "a streams"
            doomed.kill()
            killed_at = time.monotonic()
            result = await client.result()
            adopted_after = time.monotonic() - killed_at
            assert await alice.wait_for(lambda: len(alice.runs()) == 2 and alice.runs()[1].status == "complete", 10)

    assert result["run"]["status"] == "complete" and not result["timedOut"]
    assert [run["status"] for run in result["runs"]] == ["complete", "complete"], "one run per turn, no second"
    texts = [_text(message) for message in result["messages"] if message["role"] == "assistant"]
    words = " word" * 20
    assert texts[0] == "turn 1 from b" + words
    cut, continued = texts[1:]
    assert cut.startswith("turn 2 from a word") and len(cut) < len(continued), "the cut-off text, closed"
    assert continued == "turn 2 from b" + words, "then b's whole answer, in the same run"
    print(f"kill -9 to the run complete in the survivor: {adopted_after:.2f} s (leave delay {LEAVE_DELAY_S} s)")


async def test_a_replica_paused_while_its_run_was_adopted_publishes_nothing_more_to_it(crash_server, clients):
    """Fencing: replica a is frozen (SIGSTOP) mid-stream; the dev server drops its silent socket (1 s) and its
    presence leaves (1 s); b, watching, adopts and finishes the run. a resumes (SIGCONT): it sees that it was cut
    off, finds b's hold on the run, and stops without publishing anything more to it."""
    session = f"conversations:{uuid.uuid4().hex[:12]}"
    with replica(crash_server, "a", REPLY_DELAY_S="0.1") as (a, paused), \
            replica(crash_server, "b", REPLY_DELAY_S="0.1") as (b, _):
        async with ClientSession(await clients(crash_server, client_id="alice"), session) as alice, \
                httpx.AsyncClient() as http:
            for turn, url in enumerate((b, a)):
                sent = await alice.send(f"message {turn}")
                assert (await http.post(f"{url}/api/chat", json=sent.invocation.to_json())).status_code == 202
                assert await alice.wait_for(lambda n=turn: len(alice.runs()) == n + 1, 10)
                if turn == 0:
                    assert await alice.wait_for(lambda: alice.runs()[0].status == "complete", 10)
            assert await alice.wait_for(lambda: "turn 2 from a word" in _assistant_text(alice), 20), "a streams"
            paused.send_signal(signal.SIGSTOP)
            try:
                assert await alice.wait_for(lambda: alice.runs()[1].status == "complete", 20), "b finished the run"
            finally:
                paused.send_signal(signal.SIGCONT)
            await asyncio.sleep(3)  # a wakes, and would publish its next words by now
            assert paused.poll() is None, "a lives on, serving other sessions"
            seen = list(alice.core._log)  # every message as it arrived, appends included

    run_id = alice.runs()[1].key
    [started] = [w for w in seen if w.name == names.RUN_START and w.transport[names.HEADER_RUN_ID] == run_id]
    [claim] = [w for w in seen if names.HEADER_ADOPTION in w.transport]
    a_invocation, b_invocation = (w.transport[names.HEADER_INVOCATION_ID] for w in (started, claim))
    repaired = seen[seen.index(claim) + 1:]
    b_step = next(i for i, w in enumerate(repaired) if w.name == names.STEP_START)
    closed = {(w.name, w.transport[names.HEADER_INVOCATION_ID], w.transport.get(names.HEADER_STATUS))
              for w in repaired[:b_step]}
    assert closed == {(names.STEP_END, a_invocation, None), (names.AI_OUTPUT, a_invocation, "cancelled")}, \
        "b closed what a left open"
    after = repaired[b_step:]
    assert {w.transport.get(names.HEADER_INVOCATION_ID) for w in after} == {b_invocation}, "a published nothing more"
    assert [w.name for w in after if w.name in names.RUN_LIFECYCLE_NAMES] == [names.RUN_END]


def _text(message: dict[str, Any]) -> str:
    return "".join(part.get("text", "") for part in message["parts"] if part["type"] == "text")


def _assistant_text(session: ClientSession) -> str:
    return " ".join(message.content for message in session.messages() if message.type == "ai")
