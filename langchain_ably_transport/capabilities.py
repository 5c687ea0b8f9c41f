"""Ably capabilities for the two parties of a session: a browser user of one conversation, and agent workers.

A capability says which operations a token may perform on which channels (`{"channel pattern": [ops]}`);
Ably refuses anything else with 40160. Put these in the tokens your backend issues (a signed token request
or a JWT, with a fixed `clientId` for users); `docs/security.md` says what they do and do not prevent.
"""

from __future__ import annotations

from .checkpoint import STATE_NAMESPACE
from .session.liveness import LIVENESS_CHANNEL

Capability = dict[str, list[str]]


def browser_capability(session_name: str) -> Capability:
    """A user's token for one conversation: read it live and from history, be present on it, publish to it.

    Nothing else: not other conversations (publish and attach refused with 40160), not the graph state
    channels, which hold what the user never sees. Appends and updates are the agent's; a user needs none. The
    agents' liveness channel it may only watch, to see a crashed agent's run as lost.
    """
    return {session_name: ["subscribe", "history", "presence", "publish"], LIVENESS_CHANNEL: ["subscribe"]}


def agent_capability(session_namespace: str = "conversations", state_namespace: str = STATE_NAMESPACE) -> Capability:
    """An agent worker's token: every session of `session_namespace` (its replies are appended to, which
    takes `message-update-own`), the `AblySaver` state channels (publish and history), and the liveness channel,
    where it is present while it lives."""
    return {
        f"{session_namespace}:*": ["subscribe", "history", "presence", "publish", "message-update-own"],
        f"{state_namespace}:*": ["publish", "history"],
        LIVENESS_CHANNEL: ["presence", "subscribe"],
    }
