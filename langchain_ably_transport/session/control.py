"""Who may cancel, steer or resume a run: the control requests an agent receives, and the policies that decide them.

Ably verifies a message's `clientId` against its publisher's credentials, so a policy decides on that, never on a
header's claim. A policy answers synchronously or with an awaitable; one that raises refuses.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from ..wire.envelope import WireMessage

log = logging.getLogger(__name__)

ControlAction = Literal["cancel", "steer", "resume"]


@dataclass(frozen=True)
class ControlRequest:
    """A cancel, a steer or a resume (an answer to a suspended run) as it arrived: what it asks, who sent it, and
    who owns the run it targets.

    `client_id` and `owner_client_id` are Ably `message.clientId`s, which Ably verifies against the sender's
    credentials (None for an anonymous client); headers such as `run-client-id` are only claims.
    """

    action: ControlAction
    run_id: str
    client_id: str | None
    owner_client_id: str | None
    agent_client_id: str | None
    wire: WireMessage


Authorize = Callable[[ControlRequest], bool | Awaitable[bool]]


def run_owner_only(request: ControlRequest) -> bool:
    """The default policy: only the client whose input started the run may cancel or steer it, besides the
    agent's own clientId (another of its processes cancelling for a double-texting `interrupt`)."""
    from_agent = request.client_id is not None and request.client_id == request.agent_client_id
    return from_agent or request.client_id == request.owner_client_id


def owner_or(*client_ids: str) -> Authorize:
    """The run's owner, or any of `client_ids` (an operator console, a supervising agent)."""
    allowed = frozenset(client_ids)
    return lambda request: run_owner_only(request) or request.client_id in allowed


def anyone(request: ControlRequest) -> bool:
    """Every client that can publish on the channel may cancel and steer every run (the JS SDK's behaviour)."""
    return True


def verdict(authorize: Authorize, request: ControlRequest) -> bool | Awaitable[bool]:
    """`authorize(request)` as a bool, or the awaitable it returned; a policy that raises refuses."""
    try:
        answer = authorize(request)
    except Exception:
        return _policy_failed(request)
    return answer if inspect.isawaitable(answer) else bool(answer)


def _policy_failed(request: ControlRequest) -> bool:
    log.exception("the authorisation policy failed on a %s of run %s; refused", request.action, request.run_id)
    return False


async def awaited(verdict: Awaitable[bool], request: ControlRequest) -> bool:
    try:
        return bool(await verdict)
    except Exception:
        return _policy_failed(request)


def settle(request: ControlRequest, apply: Callable[[WireMessage], None], allowed: bool) -> None:
    if allowed:
        apply(request.wire)
    else:
        log_refusal(request)


def log_refusal(request: ControlRequest) -> None:
    log.warning("%s of run %s from %r refused: the run belongs to %r", request.action, request.run_id,
                request.client_id, request.owner_client_id)
