"""What every way of serving a graph on a session shares: the thread's config, double texting, fresh ids for new
messages, the writes a cut-short step leaves, and a process's stop."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from langchain_core.messages import BaseMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver

from ..checkpoint import AblySaver
from ..checkpoint.saver import SERVING_KEY
from ..errors import CheckpointStorageError
from ..session import AgentSession, Run
from ..wire.envelope import WireMessage

log = logging.getLogger(__name__)

ActivePolicy = Literal["queue", "interrupt", "reject"]


def thread_config(config: RunnableConfig | None, session_name: str) -> RunnableConfig:
    merged: dict[str, Any] = dict(config or {})
    configurable = dict(merged.get("configurable") or {})
    configurable.setdefault("thread_id", session_name)
    merged["configurable"] = configurable
    return merged  # type: ignore[return-value]


def serving_config(config: RunnableConfig, run: Run) -> RunnableConfig:
    """`config` for one serving of `run`: its reads of the thread after the first skip the channel's history, which
    only its own puts can have changed since (`saver.SERVING_KEY`)."""
    return {**config, "configurable": {**config.get("configurable", {}), SERVING_KEY: run.invocation_id}}


async def take_turn(session: AgentSession, run_id: str, trigger: WireMessage, policy: ActivePolicy,
                    timeout: float) -> bool:
    """Apply the double-texting policy for the run `run_id` that `trigger` asks for; False: it is rejected. An
    `interrupt` cancels only the runs whose cancel `authorize` would take from the trigger's sender, and waits for
    the others."""

    def active() -> list[str]:
        return session.active_runs(besides=run_id)

    busy = active()
    if not busy:
        return True
    if policy == "reject":
        return False
    if policy == "interrupt":
        for busy_id in busy:
            if await session.allows("cancel", busy_id, trigger):
                await session.cancel_run(busy_id)
    if not await session.wait_for(lambda: not active(), timeout):
        log.warning("runs %s still active after %.0f s; %s goes ahead", active(), timeout, run_id)
    return True


async def without_reused_ids(graph: Any, config: RunnableConfig, graph_input: Any) -> Any:
    """A client names its message's id, and LangGraph's `add_messages` replaces the thread's message of the same id:
    a new message reusing one (anyone's, read off the channel) gets a fresh id, so no input rewrites history."""
    messages = graph_input.get("messages") if isinstance(graph_input, dict) else None
    if not messages:
        return graph_input
    taken = {message.id for message in await _thread_messages(graph, config) if message.id}
    fresh = [m.model_copy(update={"id": str(uuid.uuid4())}) if isinstance(m, BaseMessage) and m.id in taken else m
             for m in messages]
    return {**graph_input, "messages": fresh}


async def _thread_messages(graph: Any, config: RunnableConfig) -> list[BaseMessage]:
    """The thread's messages, with those of writes not yet applied: read off the checkpointer, as building the
    graph's whole state snapshot (`aget_state`) costs more than the read."""
    saver = graph.checkpointer
    if not isinstance(saver, BaseCheckpointSaver):
        return state_messages((await graph.aget_state(config)).values)
    newest = await saver.aget_tuple(config)
    if newest is None:
        return []
    pending = [value for _, channel, value in newest.pending_writes or [] if channel == "messages"]
    written = [m for value in pending for m in (value if isinstance(value, list) else [value])]
    return [*state_messages(newest.checkpoint["channel_values"]), *written]


def state_messages(values: Any) -> list[BaseMessage]:
    return list(values.get("messages") or []) if isinstance(values, dict) else []


async def store_waiting_writes(graph: Any, run: Run, config: RunnableConfig) -> None:
    """Writes of finished tasks waiting for a checkpoint that will not come (a cancelled or failed step) are
    stored before the run ends, so another process resuming it finds them."""
    if not isinstance(graph.checkpointer, AblySaver):
        return
    try:
        await graph.checkpointer.aflush(config["configurable"]["thread_id"])
    except CheckpointStorageError as error:
        log.warning("run %s: its finished tasks' writes were not stored: %s", run.run_id, error)


def store_checkpoints_soon(graph: Any, config: RunnableConfig) -> None:
    """The run's output is about to show: the checkpoints the saver holds are published now, without waiting, so
    that an adopter resumes the step whose output streams (and its idempotency key) rather than an earlier one."""
    if isinstance(graph.checkpointer, AblySaver):
        graph.checkpointer.flush_soon(config["configurable"]["thread_id"])


@contextmanager
def stopping(run: Run, stop: asyncio.Event | None) -> Iterator[None]:
    """While the run streams, `stop` being set cancels it as a client's cancel would."""
    if stop is None:
        yield
        return
    watcher = asyncio.ensure_future(stop.wait())
    watcher.add_done_callback(lambda done: run.cancelled.set() if not done.cancelled() else None)
    try:
        yield
    finally:
        watcher.cancel()
