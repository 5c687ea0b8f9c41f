"""Serving a compiled LangGraph graph for one invocation: its run streams, suspends on `interrupt()`, resumes.

`serve_graph(graph, invocation, client=client)` is what an HTTP handler calls with the JS client's POST body.
A fresh user message becomes the graph's input; a message that names a suspended run (it carries the run id)
answers that run's pending interrupts with `Command(resume=...)`, in whatever process receives it, from the
graph's checkpointer alone. Model tokens, tool calls and tool results stream as one assistant message of the
run, one step per model pass, and each sub-agent's pass as a message of its own (`agents`). Pending
interrupts are published before the run suspends: LangChain's human-in-the-loop ones as
`tool-approval-request`s on the tool calls they gate (`approvals`), answered by the client's
`tool-approval-response`s, any other as a `data-interrupt` part. A client's cancel cancels the graph's task
(subgraphs and in-flight model calls included).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, Literal

from ably import AblyRealtime
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.types import Command, Durability, Interrupt

from ..checkpoint.saver import HOLD_CHECKPOINTS_KEY
from ..codec.langchain import ChunkTranslator, data_chunk, tool_output_chunk
from ..errors import ConfigurationError, ConnectionFailedError, ErrorCode, RunError
from ..ledger import MessageCounts, attributed_to, ledger
from ..pool import ConnectionPool, leased
from ..session import AgentSession, Run
from ..session.agent import CUT_OFF_MESSAGE, DEFAULT_TRIGGER_TIMEOUT_S
from ..session.control import Authorize, run_owner_only
from ..wire import names
from ..wire.invocation import Invocation
from .agents import AgentMessages, AgentScope, Visibility
from .approvals import approval_decisions, approval_request_chunks, approval_resume, gates_tool_calls
from .events import GraphEvent, GraphEvents
from .idempotency import RUN_ID_KEY
from .tasks import HeldRunningParts, task_chunk
from .turns import (
    ActivePolicy,
    serving_config,
    state_messages,
    stopping,
    store_checkpoints_soon,
    store_waiting_writes,
    take_turn,
    thread_config,
    without_reused_ids,
)

log = logging.getLogger(__name__)

Outcome = Literal["complete", "suspended", "cancelled", "error", "rejected"]
InputMapper = Callable[[Run], Any]
LostPolicy = Literal["end", "adopt"]
STOPPED_MESSAGE = "the agent process stopped before the run finished; send the message again"
INTERRUPT_PART = "interrupt"
SESSION_LINGER_S = 0.0  # opt-in: a lingering session holds everything it folded (docs/tuning.md)
RESUME_PART = "resume"


@dataclass
class GraphRunResult:
    """How serving ended, the run it served, and the interrupts it is waiting on when suspended.

    `rejected`: the invocation was refused without touching any run (`run_id` is `""` when its input was never
    found on the session); `error` carries why in `error` in every outcome that failed. `messages`: what the run
    has published from this process so far, by kind (`ledger`), its checkpoints included.
    """

    outcome: Outcome
    run_id: str
    interrupts: list[Interrupt] = field(default_factory=list)
    error: BaseException | None = None
    messages: MessageCounts = field(default_factory=MessageCounts)


def messages_input(run: Run) -> dict[str, Any]:
    """The default input of a fresh run for a message-state graph: the user's new message."""
    latest = [m for m in run.messages() if isinstance(m, HumanMessage)]
    return {"messages": latest[-1:]}


async def serve_graph(
    graph: Any,
    invocation: Invocation,
    *,
    client: AblyRealtime | ConnectionPool,
    config: RunnableConfig | None = None,
    to_input: InputMapper = messages_input,
    coalesce_window: float | None = None,
    on_active: ActivePolicy = "queue",
    wait_for_active_s: float = 300.0,
    visibility: Mapping[str, Visibility] | None = None,
    authorize: Authorize = run_owner_only,
    trusted_agents: Iterable[str] | None = None,
    durability: Durability | None = None,
    stop: asyncio.Event | None = None,
    trigger_timeout_s: float = DEFAULT_TRIGGER_TIMEOUT_S,
    on_lost: LostPolicy = "end",
    max_adoptions: int = 3,
    session_linger_s: float = SESSION_LINGER_S,
) -> GraphRunResult:
    """Answer `invocation` with `graph` (compiled with a checkpointer); the thread id defaults to the session.

    `client`: a connected `AblyRealtime`, or a `ConnectionPool`, which serves the session on a connection of its
    own choosing (give the graph an `AblySaver` of the same pool, and the thread's records go on that connection).

    `on_active` is what a fresh input does while another run of the session is still active (double
    texting): `queue` (the default) waits for it to end, up to `wait_for_active_s`; `interrupt` cancels it
    and then runs; `reject` ends the new run at once with error 40900 and leaves the active one alone.
    `authorize` decides who may cancel or steer the run (default: its owner and this agent's clientId), and whose
    input may `interrupt` another's run (one it refuses queues instead). `trusted_agents`: the clientIds whose run
    lifecycle counts besides this agent's own (default: `$ABLY_TRUSTED_AGENTS`); a run anyone else starts is
    ignored, never waited for. `durability`: LangGraph's, passed to the graph's stream (None: the graph's default,
    `async`); `exit` checkpoints once per run instead of once per super-step, the cheapest in messages.
    `stop`: set when this process shuts down. A run still streaming then stops as a cancel would stop it, and
    ends `error` (`STOPPED_MESSAGE`), so that no run is left streaming; its last checkpoint stays for a retry.
    `trigger_timeout_s`: how long to wait for the invocation's input to show on the session before the invocation
    is `rejected` (a client POSTs right after publishing, so it is usually there already).
    `on_lost`: what to do with runs of the session whose agent died (`AgentSession.lost_runs`) before serving the
    invocation: `end` them `error` ("agent lost"), or `adopt` them: resume the graph from the thread's newest
    checkpoint under the same run id and finish it (steps that had not checkpointed run again: at-least-once),
    or restart it from its input when its graph had not started; a run adopted `max_adoptions` times is ended
    `error` instead. Only one process adopts a run (`AgentSession.adopt_run`).
    `session_linger_s`: how long the session stays attached and followed after the run, so that the conversation's
    next turn, served by this process on the same connection, opens the session at once, without an attach, a
    presence sync or a history request (default 0: detach at once; a lingering session holds what it folded).
    """
    # The graph's context is in its checkpointer: the session's newest page is enough to find the trigger.
    async with leased(client, invocation.session_name) as connection, \
            AgentSession(connection, invocation.session_name, coalesce_window=coalesce_window, history_pages=1,
                         authorize=authorize, trusted_agents=trusted_agents,
                         end_lost_runs=on_lost == "end", linger_s=session_linger_s) as session:
        options = _Options(to_input, on_active, wait_for_active_s, visibility, durability, stop)
        run_config = thread_config(config, invocation.session_name)
        if on_lost == "adopt":
            await _adopt_lost_runs(session, graph, run_config, options, max_adoptions)
        if carried := session.carries(names.PROTOCOL_NAMES):
            error = ConfigurationError(f"session {invocation.session_name!r} carries the agent protocol (it holds "
                                       f"{carried[0]} messages); one codec serves a session: use serve_thread")
            log.warning("invocation %s refused: %s", invocation.input_event_id, error)
            return GraphRunResult("rejected", "", error=error)
        try:
            run = await session.create_run(invocation, timeout=trigger_timeout_s)
        except RunError as error:  # no such input on the session (a stale or made-up invocation): nothing to answer
            log.warning("invocation %s on %s refused: %s", invocation.input_event_id, invocation.session_name, error)
            return GraphRunResult("rejected", "", error=error)
        with attributed_to(run.run_id):  # the saver's records, written from the graph's tasks, count to the run
            result = await _answer(session, run, graph, run_config, options)
        result.messages = ledger.run(run.run_id)
    if run.cut_off:
        return await _end_cut_off(client, invocation.session_name, run, trusted_agents)
    return result


async def _end_cut_off(client: AblyRealtime | ConnectionPool, session_name: str, run: Run,
                       trusted_agents: Iterable[str] | None) -> GraphRunResult:
    """A run whose connection Ably ended for good: a pool ends it on another of its connections, so that no client
    waits on it. (A lone client has no other: the agent's presence left with its connection, so the run reads as
    lost, and the next session opened on it ends it.) Its last checkpoint stays, for a retry."""
    reason = run.client.connection.error_reason
    error = ConnectionFailedError(f"{CUT_OFF_MESSAGE} ({reason})", code=getattr(reason, "code", None))
    if isinstance(client, ConnectionPool):
        try:
            async with client.lease(session_name, streaming=False) as connection, \
                    AgentSession(connection, session_name, history_pages=1, trusted_agents=trusted_agents) as session:
                await session.end_cut_off(run)
        except Exception as failed:  # nothing raises out of serve_graph: the run is then left to liveness
            log.warning("run %s: its end could not be published on another connection either: %s", run.run_id, failed)
    return GraphRunResult("error", run.run_id, error=error, messages=ledger.run(run.run_id))


@dataclass(frozen=True)
class _Options:
    """How `serve_graph` was asked to serve: the input mapping, double texting, sub-agents, durability."""

    to_input: InputMapper
    on_active: ActivePolicy
    wait_for_active_s: float
    visibility: Mapping[str, Visibility] | None
    durability: Durability | None
    stop: asyncio.Event | None


async def _answer(session: AgentSession, run: Run, graph: Any, run_config: RunnableConfig,
                  options: _Options) -> GraphRunResult:
    """Everything `serve_graph` does once the trigger is found: refuse, start, stream, suspend or end."""
    run_config = serving_config(run_config, run)
    if run.trigger.refusal:  # `start` ends it `error` (40003) at once
        await run.start()
        return GraphRunResult("error", run.run_id, error=ValueError(f"input refused: {run.trigger.refusal}"))
    if run.is_continuation and (refusal := await _continuation_refusal(session, run)):
        log.warning("run %s: continuation %s refused: %s", run.run_id, run.trigger.codec_message_id, refusal)
        return GraphRunResult("rejected", run.run_id, error=RuntimeError(refusal))
    if not run.is_continuation and _already_answered(session, run):
        log.warning("run %s: input %s already has a run; a replayed invocation is refused", run.run_id,
                    run.trigger.codec_message_id)
        return GraphRunResult("rejected", run.run_id, error=RuntimeError("the input already has a run"))
    if not run.is_continuation and _says_nothing(run):
        return await _end_unreadable(run, ValueError("the input is no message, tool result or approval"))
    if not run.is_continuation and not await take_turn(session, run.run_id, run.trigger.wire, options.on_active,
                                                    options.wait_for_active_s):
        await run.start()
        await run.end("error", error_code=ErrorCode.CONFLICT, error_message="another run of this session is active")
        return GraphRunResult("error", run.run_id, error=RuntimeError("another run of this session is active"))
    try:
        graph_input = await _resume_command(graph, run, run_config) if run.is_continuation else options.to_input(run)
    except ValueError as error:  # the input cannot be read as what the graph takes
        if run.is_continuation:
            log.warning("run %s: continuation %s refused: %s", run.run_id, run.trigger.codec_message_id, error)
            return GraphRunResult("rejected", run.run_id, error=error)
        return await _end_unreadable(run, error)
    stream = _GraphStream(graph, graph_input, run_config, run, options)  # checks `visibility` first
    if run.is_continuation:
        await run.start()
    elif (unread := await _start_taking_fresh_ids(graph, run, run_config, stream)) is not None:
        return unread
    if graph_input is None:  # approvals that answer no pending interrupt in full: keep waiting
        await run.suspend()
        return GraphRunResult("suspended", run.run_id, interrupts=list(await _pending(graph, run_config)))
    return await _stream_and_finish(graph, stream, run, run_config, options)


async def _stream_and_finish(graph: Any, stream: _GraphStream, run: Run, run_config: RunnableConfig,
                             options: _Options) -> GraphRunResult:
    """Pipe the graph's stream into the started run, then end, suspend or stop it."""
    denied = _denied_calls(run)  # most runs deny nothing: their tokens pass through no filter
    chunks = _without_denied_outputs(stream.chunks(), denied) if denied else stream.chunks()
    with stopping(run, options.stop):
        result = await run.pipe(chunks)
    await stream.settle()  # sub-agent messages a cancel cut short end before the run does
    if result.reason == "cancelled" and options.stop is not None and options.stop.is_set():
        await store_waiting_writes(graph, run, run_config)
        await run.end("error", error_message=STOPPED_MESSAGE)
        return GraphRunResult("error", run.run_id, error=RunError(STOPPED_MESSAGE))
    return await _finish(graph, run, run_config, result, stream)


async def watch_session(
    graph: Any,
    session_name: str,
    *,
    client: AblyRealtime | ConnectionPool,
    watch_s: float,
    config: RunnableConfig | None = None,
    to_input: InputMapper = messages_input,
    coalesce_window: float | None = None,
    visibility: Mapping[str, Visibility] | None = None,
    authorize: Authorize = run_owner_only,
    trusted_agents: Iterable[str] | None = None,
    durability: Durability | None = None,
    stop: asyncio.Event | None = None,
    max_adoptions: int = 3,
) -> list[GraphRunResult]:
    """Watch `session_name` for `watch_s` seconds (or until `stop` is set) and adopt every run of it whose agent
    dies meanwhile, as `serve_graph(on_lost="adopt")` does; what the adopted runs ended as.

    A replica watches the sessions it served recently, so that a run whose replica is killed is finished by a
    survivor about one presence leave delay later, with no new message from the user. Watching publishes nothing:
    it costs an attached channel. Several watchers of one session race to claim a lost run; one wins
    (`AgentSession.adopt_run`). The other keyword arguments are `serve_graph`'s.
    """
    options = _Options(to_input, "queue", 0.0, visibility, durability, stop)
    run_config = thread_config(config, session_name)
    results: list[GraphRunResult] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + watch_s
    async with leased(client, session_name, streaming=False) as connection, \
            AgentSession(connection, session_name, coalesce_window=coalesce_window, history_pages=1,
                         authorize=authorize, trusted_agents=trusted_agents, end_lost_runs=False) as session:
        while (remaining := deadline - loop.time()) > 0 and not (stop is not None and stop.is_set()):
            if await _unless_stopped(session.wait_for(lambda: bool(session.lost_runs()), remaining), stop):
                async with leased(client, session_name):  # the adopted run streams: it takes a stream's place
                    results += await _adopt_lost_runs(session, graph, run_config, options, max_adoptions)
    return results


async def _unless_stopped(waiting: Awaitable[bool], stop: asyncio.Event | None) -> bool:
    """What `waiting` answers, or False as soon as `stop` is set."""
    answer = asyncio.ensure_future(waiting)
    stopped = asyncio.ensure_future(stop.wait() if stop is not None else asyncio.Event().wait())
    try:
        await asyncio.wait({answer, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        answer.cancel()
    return answer.done() and not answer.cancelled() and answer.result()


async def _adopt_lost_runs(session: AgentSession, graph: Any, run_config: RunnableConfig, options: _Options,
                           max_adoptions: int) -> list[GraphRunResult]:
    """Finish, here, the session's runs whose agent died: from the thread's newest checkpoint when the graph was
    mid-run, else from the run's input."""
    results = []
    for lost in session.lost_runs():
        run = await session.adopt_run(lost, max_attempts=max_adoptions)
        if run is None:
            continue
        config = serving_config(run_config, run)
        with attributed_to(run.run_id):
            pending = (await graph.aget_state(config)).next
            graph_input = None if pending else await without_reused_ids(graph, config, options.to_input(run))
            stream = _GraphStream(graph, graph_input, config, run, options)
            result = await _stream_and_finish(graph, stream, run, config, options)
        log.warning("run %s: adopted, %s", run.run_id, result.outcome)
        result.messages = ledger.run(run.run_id)
        results.append(result)
    return results




def _says_nothing(run: Run) -> bool:
    """An input that decodes to nothing and is not a regenerate (which is carried by headers alone)."""
    return not run.trigger_inputs() and run.trigger.regenerates is None


async def _start_taking_fresh_ids(graph: Any, run: Run, run_config: RunnableConfig,
                                  stream: _GraphStream) -> GraphRunResult | None:
    """Start the run while its input's message ids are checked against the thread (`without_reused_ids`): the
    thread's read (a history request) and `ai-run-start`'s round trip overlap instead of adding up before the first
    token. A read that fails ends the started run `error` (its result is returned); None when all went well."""
    starting = asyncio.ensure_future(run.start())
    try:
        stream.graph_input = await without_reused_ids(graph, run_config, stream.graph_input)
    except Exception as error:  # the thread cannot be read (Ably refused or failed): the run ends, nothing raises
        await starting
        log.warning("run %s: the thread could not be read: %s", run.run_id, error)
        await run.end("error", error_message=f"the thread could not be read: {error}")
        return GraphRunResult("error", run.run_id, error=error)
    except BaseException:  # cancelled: the start goes with the serving, as an awaited one would
        starting.cancel()
        raise
    await starting
    return None


async def _end_unreadable(run: Run, error: ValueError) -> GraphRunResult:
    """A fresh input the graph cannot take: its run starts and ends `error` (40000) at once, so the client's
    `run_id()` resolves and the error shows, and nothing raises into the caller's web handler."""
    log.warning("run %s: input %s cannot be answered: %s", run.run_id, run.trigger.codec_message_id, error)
    await run.start()
    await run.end("error", error_code=ErrorCode.BAD_REQUEST, error_message=f"unreadable input: {error}")
    return GraphRunResult("error", run.run_id, error=error)


async def _continuation_refusal(session: AgentSession, run: Run) -> str | None:
    """Why a continuation cannot resume its run, or None. The first answer to a suspended run wins; a later one
    (another client, another tab) is refused without touching the run, and so is one that says nothing, names
    a run no agent of this session started, or comes from a client `authorize` does not let resume the run. A run
    older than the page this process read is looked for further back in the session's history."""
    node = await session.agent_run(run.run_id)
    if node is None:
        return f"no agent started run {run.run_id}"
    if node.status != names.RunStatus.SUSPENDED:
        return f"run {run.run_id} is not suspended"
    if not await session.allows("resume", run.run_id, run.trigger.wire):
        return f"{run.trigger.wire.client_id!r} may not answer run {run.run_id}"
    return "the input is no message, tool result or approval" if _says_nothing(run) else None


def _already_answered(session: AgentSession, run: Run) -> bool:
    """A user message an agent's run already answers: its invocation is a replay (a second POST of it)."""
    return session.answered(run.trigger.codec_message_id, besides=run.run_id)








async def _resume_command(graph: Any, run: Run, config: RunnableConfig) -> Command | None:
    """The answer to a suspended run, from the continuation's inputs.

    `tool-approval-response`s answer the human-in-the-loop interrupts whose tool calls they name; a batched
    request needs a decision for each of its calls, taken from the trigger first and then from earlier
    responses sent into the run (the Vercel ChatTransport sends all of a turn's responses as one input event).
    Without approvals, the continuation message's text answers every pending interrupt. None: approvals that
    complete no interrupt, so the run stays suspended.
    """
    state = await graph.aget_state(config)
    messages = state_messages(state.values)
    answers = _answers_by_id(run.trigger_inputs())
    if answers is not None:
        reviews = {interrupt.id for interrupt in state.interrupts if gates_tool_calls(interrupt)}
        if answered_reviews := reviews & answers.keys():
            log.warning("run %s: answers by id to tool reviews %s ignored: tool calls are approved or denied",
                        run.run_id, sorted(answered_reviews))
        pending = {interrupt.id for interrupt in state.interrupts} - reviews
        resume = {interrupt_id: value for interrupt_id, value in answers.items() if interrupt_id in pending}
        return Command(resume=resume) if resume else None
    on_trigger = approval_decisions(run.trigger_inputs())
    if not on_trigger:
        answer = _continuation_text(run)
        return Command(resume={interrupt.id: answer for interrupt in state.interrupts})
    decisions = {**approval_decisions(run.inputs()), **on_trigger}  # earlier answers: the owner's (`tree`)
    resume = {i.id: value for i in state.interrupts if (value := approval_resume(i, messages, decisions)) is not None}
    return Command(resume=resume) if resume else None


def _answers_by_id(inputs: list[Any]) -> dict[str, Any] | None:
    """`{interrupt id: value}` from the `data-resume` parts of the continuation, if it has any."""
    answers: dict[str, Any] = {}
    found = False
    for event in inputs:
        message = event.get("message") if isinstance(event, dict) else None
        for part in (message or {}).get("parts", []):
            if part.get("type") == f"data-{RESUME_PART}" and isinstance(part.get("data"), dict):
                answers.update(part["data"])
                found = True
    return answers if found else None


def _denied_calls(run: Run) -> set[str]:
    """The tool calls the trigger denies. Their results are dropped: the client's own denial already showed them as
    `output-denied`, and the rejection `ToolMessage` the middleware adds would turn them into `output-error`
    (`tool-output-denied` cannot say it instead: it must share the tool call's codec-message-id)."""
    return {call_id for call_id, d in approval_decisions(run.trigger_inputs()).items() if not d.approved}


async def _without_denied_outputs(chunks: AsyncGenerator[dict[str, Any], None],
                                  denied: set[str]) -> AsyncIterator[dict[str, Any]]:
    async with aclosing(chunks):  # closed with this one: a run stopped early stops its graph
        async for chunk in chunks:
            if not (chunk.get("type") == "tool-output-error" and chunk.get("toolCallId") in denied):
                yield chunk




async def _pending(graph: Any, config: RunnableConfig) -> tuple[Interrupt, ...]:
    return (await graph.aget_state(config)).interrupts


async def _interrupt_chunks(graph: Any, config: RunnableConfig, interrupts: list[Interrupt]) -> list[dict[str, Any]]:
    """Each interrupt as `tool-approval-request`s when it is a human-in-the-loop one, else a `data-interrupt`."""
    if not interrupts:
        return []
    messages = state_messages((await graph.aget_state(config)).values)
    chunks: list[dict[str, Any]] = []
    for interrupt in interrupts:
        approvals = approval_request_chunks(interrupt, messages)
        chunks += approvals if approvals is not None else [
            data_chunk(INTERRUPT_PART, {"id": interrupt.id, "value": interrupt.value}, id=interrupt.id)]
    return chunks


def _continuation_text(run: Run) -> str:
    for entry in reversed(run.ui_messages()):
        message = entry["message"]
        if entry["codecMessageId"] == run.trigger.codec_message_id:
            return "".join(p.get("text", "") for p in message.get("parts", []) if p.get("type") == "text")
    return ""


async def _finish(graph: Any, run: Run, config: RunnableConfig, result: Any, stream: _GraphStream) -> GraphRunResult:
    await store_waiting_writes(graph, run, config)
    if result.reason == "cancelled":
        await run.end("cancelled")
        return GraphRunResult("cancelled", run.run_id)
    if result.reason == "error":
        await run.end("error", error_message=str(result.error))
        return GraphRunResult("error", run.run_id, error=result.error)
    if stream.interrupts:
        await run.suspend()
        return GraphRunResult("suspended", run.run_id, interrupts=stream.interrupts)
    await run.end("complete")
    return GraphRunResult("complete", run.run_id)




class _GraphStream:
    """The graph's `messages`, `updates` and `tasks` streams as the run's assistant messages.

    The root graph's model passes and tool results, and the task parts of every (visible) node, are the chunks of
    the run's main multi-step message, which `chunks()` yields for the caller to pipe. A sub-agent's model pass
    (from a subgraph namespace, or carrying an `lc_agent_name`) is an assistant message of its own, published
    beside it (`AgentMessages`) and labelled with the agent and namespace; all of them are published before the
    main message finishes. `visibility` shows, hides or summarises (task parts only) each sub-agent.
    """

    def __init__(self, graph: Any, graph_input: Any, config: RunnableConfig, run: Run, options: _Options) -> None:
        self._graph = graph
        self.graph_input = graph_input
        self._config = config
        self._run = run
        self._run_id = run.run_id
        self._durability = options.durability
        self._passes: dict[str, ChunkTranslator] = {}
        self._scope = AgentScope(graph, options.visibility)
        self._agents = AgentMessages(run)
        self._running = HeldRunningParts()
        self.interrupts: list[Interrupt] = []

    async def settle(self) -> None:
        """Wait for every sub-agent message to be published (closing any still open)."""
        await self._agents.settle()

    async def chunks(self) -> AsyncGenerator[dict[str, Any], None]:
        config = {**self._config, "configurable": {**self._config.get("configurable", {}), RUN_ID_KEY: self._run_id,
                                                   HOLD_CHECKPOINTS_KEY: True}}  # stored before the run ends
        try:
            async with GraphEvents(self._graph, self.graph_input, config, ["messages", "updates", "tasks"],
                                   self._durability, take=self._take_now) as events:
                # The graph is under way: its start and its model's first token overlap the round trip of the
                # step the pass opens on this first chunk, instead of waiting for it.
                yield {"type": "start"}  # the run's one assistant message opens before its first task part
                while (batch := await events.next(self._running.due_in())) is not None:
                    for chunk in await self._events(batch) if batch else self._running.due():
                        yield chunk
        except Exception as error:
            await self._agents.settle(error)
            raise
        await self._agents.settle()
        for chunk in self._close_passes():
            yield chunk
        for chunk in await _interrupt_chunks(self._graph, self._config, self._unique_interrupts()):
            yield chunk
        yield {"type": "finish"}

    async def _events(self, batch: list[GraphEvent]) -> list[dict[str, Any]]:
        chunks: list[dict[str, Any]] = []
        for event in batch:
            chunks += await self._event(*event)
        return chunks

    def _take_now(self, event: GraphEvent) -> GraphEvent | None:
        """A root pass's `messages` event, in the model's task (`GraphEvents`'s `take`): its chunks go straight into
        the run's pass (`Run.write_now`) as long as they can; the rest, and a sub-agent's event, are left to the
        reader, as chunks already made (`_MADE`) or as the event itself. A chunk that fails to be made or written
        fails the reader's pass, as it would have there (`_FAILED`): LangChain would only log an error raised here."""
        namespace, _, (message, metadata) = event
        if self._scope.is_sub_agent(namespace, metadata):
            return event
        try:
            chunks = self._main_message(message, metadata)
            for position, chunk in enumerate(chunks):
                if not self._run.write_now(chunk):
                    return namespace, _MADE, chunks[position:]
        except Exception as error:
            return namespace, _FAILED, error
        return None

    async def _event(self, namespace: tuple[str, ...], mode: str, data: Any) -> list[dict[str, Any]]:
        if mode == _MADE:
            return data  # type: ignore[no-any-return]
        if mode == _FAILED:
            raise data
        if mode == "messages":
            message, metadata = data
            if not self._scope.is_sub_agent(namespace, metadata):
                return self._main_message(message, metadata)
            store_checkpoints_soon(self._graph, self._config)
            chunks = await self._sub_agent_message(namespace, message, metadata)
            if chunks:
                self._running.shown(_task_id(metadata))
            return chunks
        if mode == "tasks":
            return self._task(namespace, data)
        if isinstance(data, dict) and "__interrupt__" in data:
            self.interrupts.extend(data["__interrupt__"])
        return []

    def _task(self, namespace: tuple[str, ...], task: dict[str, Any]) -> list[dict[str, Any]]:
        metadata = task.get("metadata")
        self._scope.learn(namespace, metadata)
        if self._scope.visibility(namespace, metadata, node=task.get("name")) == "hide":
            return []
        agent = self._scope.agent(namespace, metadata) if self._scope.is_sub_agent(namespace, metadata) else None
        return self._running.add(task_chunk(namespace, task, agent))

    def _main_message(self, message: BaseMessage, metadata: dict[str, Any]) -> list[dict[str, Any]]:
        """A root-graph `messages` event's chunks; its task shows running once they show."""
        store_checkpoints_soon(self._graph, self._config)
        chunks = self._message(message, metadata)
        if chunks:
            self._running.shown(_task_id(metadata))
        return chunks

    def _message(self, message: BaseMessage, metadata: dict[str, Any]) -> list[dict[str, Any]]:
        """A root-graph pass or tool result, in the main message."""
        if isinstance(message, ToolMessage):
            return [*self._close_passes(), tool_output_chunk(message)]
        if not isinstance(message, AIMessage):
            return []
        key = message.id or str(metadata.get("langgraph_checkpoint_ns", ""))
        translator = self._passes.get(key)
        if translator is None:
            translator = self._passes[key] = ChunkTranslator(open_message=False)
        chunks = translator.feed(message)
        if isinstance(message, AIMessageChunk) and message.chunk_position == "last":
            chunks += self._passes.pop(key).finish(close_message=False)  # the step ends with its pass
        return chunks

    async def _sub_agent_message(self, namespace: tuple[str, ...], message: BaseMessage,
                                 metadata: dict[str, Any]) -> list[dict[str, Any]]:
        """A sub-agent's pass goes to a message of its own; its tool result to the main message, which is where
        a client that finds tool parts by call id across the run looks, once the pass making the call is out."""
        if self._scope.visibility(namespace, metadata) != "show":
            return []
        if isinstance(message, ToolMessage):
            self._agents.close_within(namespace)
            await self._agents.flush()
            return [tool_output_chunk(message)]
        if isinstance(message, AIMessage):
            identity = {"agent": self._scope.agent(namespace, metadata), "namespace": list(namespace)}
            self._agents.feed(str(metadata.get("langgraph_checkpoint_ns", "")), namespace, message, identity)
        return []

    def _close_passes(self) -> list[dict[str, Any]]:
        closing = [chunk for t in self._passes.values() for chunk in t.finish(close_message=False)]
        self._passes.clear()
        return closing

    def _unique_interrupts(self) -> list[Interrupt]:
        """A subgraph's interrupt surfaces in its namespace and again at the root: publish each id once."""
        seen: dict[str, Interrupt] = {}
        for interrupt in self.interrupts:
            seen.setdefault(interrupt.id, interrupt)
        self.interrupts = list(seen.values())
        return self.interrupts


_MADE = "chunks made"  # the modes of what `_GraphStream._take_now` leaves for the reader
_FAILED = "chunks failed"


def _task_id(metadata: dict[str, Any]) -> str:
    """The id of the task a streamed message comes from: the last segment of its `"<node>:<task id>"` path."""
    return str(metadata.get("langgraph_checkpoint_ns", "")).rpartition("|")[2].partition(":")[2]
