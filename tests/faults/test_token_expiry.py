"""Short-lived tokens renewed mid-stream: a run streams across several expiries of every party's token, and
the clients show exactly what the agent produced, with nothing lost or duplicated.

Every connection authenticates with tokens of 2 s from an `auth_callback` (JWTs minted from the dev server's
key, as an app server would). The dev server asks for a new token (an AUTH frame) halfway through a token's
life and the SDK renews in place (alice). A party whose renewal comes too late (the agent, bob) has its token
expire: the server disconnects it with 40142, and the SDK renews and resumes, the agent with appends in flight.
"""

from __future__ import annotations

from contextlib import AsyncExitStack

from ably import AblyRealtime

from langchain_ably_transport import ClientSession
from langchain_ably_transport.devserver.config import ApiKey
from langchain_ably_transport.session import AgentSession

from .drops import TokenIssuer, assert_shows_exactly, assistant_texts, model_chunks, runs_settled, unique_words

TOKEN_TTL_MS = 2000
STREAM_S = 7.0
WORDS = 700


async def _connected(any_clients, issuer: TokenIssuer) -> AblyRealtime:
    client = await any_clients(auth_callback=issuer.token, client_id=issuer.client_id)
    issuer.watch(client)
    return client


async def test_a_long_stream_runs_across_token_renewals_and_expiries(server, any_clients, channel_name):
    """With clients from `connect()` and with clients the user built (`any_clients`), whose callbacks return JWT
    strings (ably-python 3.1.4 refused those with a `client_id`: sdk fix 5)."""
    key = ApiKey.parse(server.key)
    late = {"agent": TOKEN_TTL_MS / 1000, "alice": 0.0, "bob": TOKEN_TTL_MS / 1000}
    issuers = {name: TokenIssuer(key, name, TOKEN_TTL_MS, late_by=late_by) for name, late_by in late.items()}
    async with AsyncExitStack() as stack:
        connections = {name: await _connected(any_clients, issuer) for name, issuer in issuers.items()}
        alice = await stack.enter_async_context(ClientSession(connections["alice"], channel_name))
        bob = await stack.enter_async_context(ClientSession(connections["bob"], channel_name))
        record: list[str] = []
        sent = await alice.send("a long answer, please")
        async with AgentSession(connections["agent"], channel_name, coalesce_window=0.0) as session:
            run = await session.create_run(sent.invocation)
            await run.start()
            result = await run.pipe(model_chunks(unique_words(WORDS), record, delay=STREAM_S / (2 * WORDS)))
            await run.end(result.reason)
        assert result.reason == "complete"
        produced = "".join(record)
        for reader in (alice, bob):
            assert await reader.wait_for(lambda r=reader: runs_settled(r, 1), timeout=30)
            assert_shows_exactly(assistant_texts(reader), [produced])
    assert all(issuer.issued >= 4 for issuer in issuers.values()), {n: i.issued for n, i in issuers.items()}
    assert issuers["alice"].disconnects == [], "alice renewed in place"
    assert all(40142 in issuers[name].disconnects for name in ("agent", "bob")), "their tokens expired first"
