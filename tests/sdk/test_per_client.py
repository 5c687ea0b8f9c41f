"""What the package keeps per client lives as long as the client, and no longer."""

from __future__ import annotations

import gc
import weakref

from ably import AblyRealtime

from langchain_ably_transport.sdk.pacer import pacer_for
from langchain_ably_transport.session.fence import continuity_of
from langchain_ably_transport.session.liveness import agent_instance


async def test_a_client_is_freed_with_its_pacer_continuity_and_agent_instance():
    """Each refers back to its client (the pacer reads the client's rate). Kept in a WeakKeyDictionary, they kept
    every client the package was ever handed alive, with all it holds: each connection a pool closed."""
    client = AblyRealtime(key="app.key:secret", auto_connect=False)
    made = [pacer_for(client), continuity_of(client), agent_instance(client)]
    assert pacer_for(client) is made[0] and continuity_of(client) is made[1] and agent_instance(client) is made[2]
    freed = weakref.ref(client)
    del client, made
    gc.collect()
    assert freed() is None
