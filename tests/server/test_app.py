"""`create_app` in-process: invocations answered on the channel, the token route, refusals, metrics, and the drain."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import jwt
import pytest
from starlette.applications import Starlette

from langchain_ably_transport import ClientSession, browser_capability
from langchain_ably_transport.graph.serve import STOPPED_MESSAGE
from langchain_ably_transport.server import create_app

from .replica import counting_builder, demo_identify


@asynccontextmanager
async def serving(server: Any, **options: Any) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    """The app on `server`, its lifespan entered as uvicorn would, and an HTTP client of it."""
    options = {"identify": demo_identify, **options}
    app = create_app(options.pop("graph", counting_builder()), key=server.key, endpoint=server.url, **options)
    async with app.router.lifespan_context(app), \
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://replica") as http:
        yield app, http


async def _settled(app: Starlette) -> None:
    """Until the replica's background tasks have returned (a client sees a run end just before)."""
    for _ in range(100):
        if app.state.replica.runs.active == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("runs still active after 5 s")


def _session() -> str:
    return f"conversations:{uuid.uuid4().hex[:12]}"


async def _turn(http: httpx.AsyncClient, user: ClientSession, text: str) -> str:
    """Send `text`, POST its invocation, and return the reply's text once its run has ended."""
    before = len(user.runs())
    sent = await user.send(text)
    response = await http.post("/api/chat", json=sent.invocation.to_json())
    assert response.status_code == 202, response.text
    assert await user.wait_for(lambda: len(user.runs()) > before and user.runs()[-1].status != "active", timeout=20)
    return user.messages()[-1].content


async def test_invocations_are_answered_on_the_channel_and_the_thread_goes_on(server, clients):
    session = _session()
    async with serving(server) as (app, http), ClientSession(await clients(client_id="alice"), session) as alice:
        assert await _turn(http, alice, "hello") == "turn 1 from in-process"
        assert await _turn(http, alice, "again") == "turn 2 from in-process"
        assert [run.status for run in alice.runs()] == ["complete", "complete"]
        await _settled(app)
        text = (await http.get("/metrics")).text
    assert 'lcat_runs_total{outcome="complete"} 2' in text
    assert "lcat_runs_active 0" in text
    assert 'lcat_first_output_seconds_count 2' in text
    assert 'lcat_messages_published_total{kind="output-create"}' in text
    assert "lcat_sessions_watched 1" in text, "the session it served is watched for lost runs"


async def test_a_replica_watches_at_most_max_watched_sessions_and_none_when_it_ends_lost_runs(server, clients):
    async with serving(server, max_watched=2) as (app, http):
        for _ in range(3):
            async with ClientSession(await clients(client_id="alice"), _session()) as alice:
                await _turn(http, alice, "hello")
        await _settled(app)
        assert app.state.replica.watch.sessions == 2, "the least recently served made way"
    async with serving(server, serve_options={"on_lost": "end"}) as (app, http), \
            ClientSession(await clients(client_id="alice"), _session()) as alice:
        await _turn(http, alice, "hello")
        assert "lcat_sessions_watched 0" in (await http.get("/metrics")).text


@pytest.mark.parametrize(("body", "status", "says"), [
    (b"not json", 400, "expected {inputEventId, sessionName}: the invocation body is not JSON"),
    (b'{"inputEventId": 1}', 400, "expected {inputEventId, sessionName}: the invocation body needs string"),
    (b"[]", 400, "must be a JSON object"),
    (b"\xff\xfe", 400, "the invocation body is not JSON"),
    (b'{"inputEventId": "e", "sessionName": "other:1"}', 404, "no session 'other:1' here"),
    (b'{"inputEventId": "e", "sessionName": "conversations:"}', 404, "no session 'conversations:' here"),
    (b'{"inputEventId": "e", "sessionName": "conversations:' + b"x" * 5000 + b'"}', 413, "at most 4096 bytes"),
])
async def test_a_bad_invocation_is_refused_in_one_line(server, body, status, says):
    async with serving(server) as (app, http):
        response = await http.post("/api/chat", content=body, headers={"content-type": "application/json"})
        assert response.status_code == status and says in response.text and "\n" not in response.text
        assert app.state.replica.runs.active == 0
        assert "lcat_invocations_refused_total{reason=" in (await http.get("/metrics")).text


async def test_an_invocation_authorize_refuses_is_403_and_serves_nothing(server, clients):
    session = _session()
    async with serving(server, authorize=lambda request, invocation: False) as (app, http), \
            ClientSession(await clients(client_id="alice"), session) as alice:
        sent = await alice.send("hello")
        response = await http.post("/api/chat", json=sent.invocation.to_json())
        assert response.status_code == 403 and app.state.replica.runs.active == 0
        assert not await alice.wait_for(lambda: bool(alice.runs()), timeout=1)


async def test_beyond_max_runs_an_invocation_is_429_with_retry_after(server, clients):
    session = _session()
    async with serving(server, graph=counting_builder(delay=0.1), max_runs=1) as (_app, http), \
            ClientSession(await clients(client_id="alice"), session) as alice:
        first, second = await alice.send("one"), await alice.send("two")
        assert (await http.post("/api/chat", json=first.invocation.to_json())).status_code == 202
        busy = await http.post("/api/chat", json=second.invocation.to_json())
        assert busy.status_code == 429 and busy.headers["retry-after"] == "1"
        assert 'lcat_invocations_refused_total{reason="busy"} 1' in (await http.get("/metrics")).text


async def test_the_token_route_issues_a_token_for_one_conversation_to_whom_identify_names(server):
    session = _session()
    async with serving(server) as (_, http):
        response = await http.get("/api/token", params={"session": session, "clientId": "alice"})
        assert response.status_code == 200 and response.headers["content-type"].startswith("application/jwt")
        claims = jwt.decode(response.text, server.key.split(":")[1], algorithms=["HS256"])
        assert claims["x-ably-clientId"] == "alice"
        assert claims["x-ably-capability"] == jwt.api_jws.json.dumps(browser_capability(session), separators=(",", ":"))
        assert (await http.get("/api/token", params={"session": session})).status_code == 401
        assert (await http.get("/api/token", params={"session": session, "clientId": "agent"})).status_code == 401
        assert (await http.get("/api/token", params={"session": "other:1", "clientId": "alice"})).status_code == 404
    async with serving(server, identify=None) as (_, http):
        assert (await http.get("/api/token", params={"session": session, "clientId": "alice"})).status_code == 401


async def test_health_and_readiness(server):
    async with serving(server) as (app, http):
        assert (await http.get("/healthz")).text == "ok"
        assert (await http.get("/readyz")).status_code == 200
        app.state.replica.runs.draining = True
        assert (await http.get("/readyz")).status_code == 503
        refused = await http.post("/api/chat", json={"inputEventId": "e", "sessionName": "conversations:1"})
        assert refused.status_code == 503 and refused.headers["retry-after"] == "5"


async def test_a_drain_lets_a_short_run_finish_and_ends_a_long_one_within_the_grace_period(server, clients):
    """Nothing is left streaming: a run that outlasts the grace period ends `error`, saying the agent stopped."""
    quick, slow = _session(), _session()
    user = await clients(client_id="alice")
    async with ClientSession(user, quick) as alice, ClientSession(user, slow) as bob:
        loop = asyncio.get_running_loop()
        async with serving(server, graph=counting_builder(delay=0.3), grace_period_s=1.0) as (_, http):
            for session in (alice, bob):
                sent = await session.send("hello")
                assert (await http.post("/api/chat", json=sent.invocation.to_json())).status_code == 202
            assert await bob.wait_for(lambda: bool(bob.runs()), timeout=10)
            draining_from = loop.time()
        drained_in = loop.time() - draining_from
        assert drained_in < 1.0 + 10.0
        for session in (alice, bob):
            assert await session.wait_for(lambda s=session: s.runs()[-1].status != "active", timeout=10)
            run = session.runs()[-1]
            assert run.status == "error" and run.error.message == STOPPED_MESSAGE


async def test_mounted_under_a_parent_app_whose_lifespan_runs_the_replicas(server, clients):
    """docs/deploy.md's FastAPI recipe, on Starlette (FastAPI's base): a mounted app's lifespan does not run by
    itself, so the parent's runs it, and invocations under the mount are served."""
    from contextlib import asynccontextmanager as lifespan_of

    from starlette.routing import Mount

    agent = create_app(counting_builder(), key=server.key, endpoint=server.url, identify=demo_identify)

    @lifespan_of
    async def lifespan(parent: Starlette) -> AsyncIterator[None]:
        async with agent.router.lifespan_context(agent):
            yield

    parent = Starlette(routes=[Mount("/agent", app=agent)], lifespan=lifespan)
    session = _session()
    async with parent.router.lifespan_context(parent), \
            httpx.AsyncClient(transport=httpx.ASGITransport(app=parent), base_url="http://api") as http, \
            ClientSession(await clients(client_id="alice"), session) as alice:
        sent = await alice.send("hello")
        assert (await http.post("/agent/api/chat", json=sent.invocation.to_json())).status_code == 202
        assert await alice.wait_for(lambda: bool(alice.runs()) and alice.runs()[-1].status == "complete", 20)
        assert alice.messages()[-1].content == "turn 1 from in-process"
