"""Serving a compiled graph in LangChain's agent streaming protocol, so that LangGraph's own front ends drive it.

`serve_thread(graph, session_name, client=...)` holds one session, which is the graph's thread, until `stop` is
set. A client's `run.start` starts a run, its `input.respond` resumes the suspended one, and its `state.get` reads
the checkpointer; each command gets an `lg-response`, and each run streams `lg-events` (`codec.agent_protocol`).

The run machinery is the session's, as for `serve_graph`. Every run publishes its lifecycle
(`ai-run-start`/`-resume`/`-suspend`/`-end`), which carries liveness. Any device cancels through `ai-cancel`,
which is what the JS transport's `stop()` publishes. `authorize` decides who may cancel and who may answer an
interrupt, and `AblySaver` keeps the thread. A session carries one codec: opening one that holds UIMessage traffic
is refused.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import warnings
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from ably import AblyRealtime
from langchain_core._api import LangChainBetaWarning
from langchain_core.messages import convert_to_messages
from langchain_core.runnables import RunnableConfig
from langgraph.types import Command, Durability, Send

from ..checkpoint.saver import HOLD_CHECKPOINTS_KEY
from ..codec.agent_protocol import (
    Command as ProtocolCommand,
)
from ..codec.agent_protocol import (
    EventBatcher,
    EventNormalizer,
    Refusal,
    failure,
    read_command,
    refused,
    success,
    to_json,
)
from ..codec.agent_protocol.commands import ErrorCode
from ..errors import ConfigurationError, ConnectionFailedError, RunError
from ..ledger import attributed_to
from ..pool import ConnectionPool, leased
from ..sdk.states import has_ended
from ..session import AgentSession, Run
from ..session.control import Authorize, run_owner_only
from ..wire import names
from ..wire.envelope import WireMessage
from .idempotency import RUN_ID_KEY
from .serve import STOPPED_MESSAGE
from .turns import (
    ActivePolicy,
    stopping,
    store_checkpoints_soon,
    store_waiting_writes,
    take_turn,
    thread_config,
    without_reused_ids,
)

log = logging.getLogger(__name__)

STRATEGIES: dict[str, ActivePolicy] = {"reject": "reject", "interrupt": "interrupt", "rollback": "interrupt",
                                       "enqueue": "queue"}
ECHO_WAIT_S = 5.0  # how long a started run waits to see its own lifecycle folded, before the next command
MAX_ERROR_TEXT = 500
CLOSE_WAIT_S = 10.0


@dataclass(frozen=True)
class _Options:
    on_active: ActivePolicy
    wait_for_active_s: float
    durability: Durability | None
    coalesce_window: float | None
    stop: asyncio.Event | None


async def serve_thread(
    graph: Any,
    session_name: str,
    *,
    client: AblyRealtime | ConnectionPool,
    config: RunnableConfig | None = None,
    authorize: Authorize = run_owner_only,
    trusted_agents: Iterable[str] | None = None,
    on_active: ActivePolicy = "reject",
    wait_for_active_s: float = 300.0,
    durability: Durability | None = None,
    coalesce_window: float | None = None,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Serve `graph` (compiled with a checkpointer) on `session_name` in the agent streaming protocol until `stop`.

    `on_active`: what a `run.start` does while a run is active, unless it names a `multitask_strategy` of its own
    (`reject`, the SDK's default; `interrupt`/`rollback`; `enqueue`): `reject` answers `invalid_argument`.
    `on_ready()` is called once the session is open and commands are heard. When `stop` is set, a run still
    streaming ends `error` as `serve_graph`'s do, and this returns. The other arguments are `serve_graph`'s.
    Nothing a client publishes raises out of here: every command gets an answer, an error one if need be.

    If Ably ends the connection for good, a `ConnectionPool` serves the thread on another of its connections: the
    runs cut off end there, `error`, and the commands sent in between are answered from there. On a lone client,
    `ConnectionFailedError` is raised.
    """
    options = _Options(on_active, wait_for_active_s, durability, coalesce_window, stop)
    cut_off: list[Run] = []
    heard_until: str | None = None
    while True:
        async with leased(client, session_name) as connection, \
                AgentSession(connection, session_name, history_pages=1, authorize=authorize,
                             trusted_agents=trusted_agents) as session:
            for run in cut_off:
                await session.end_cut_off(run)
            thread = _ProtocolThread(graph, session, thread_config(config, session_name), options, heard_until)
            await thread.open()
            if on_ready is not None:
                on_ready()
                on_ready = None
            try:
                ended = await _until_stopped_or_ended(stop, connection)
            finally:
                await thread.close()
        if not ended:
            return
        reason = connection.connection.error_reason
        if not isinstance(client, ConnectionPool):
            raise ConnectionFailedError(f"Ably ended the connection serving {session_name!r} ({reason})",
                                        code=getattr(reason, "code", None))
        log.warning("Ably ended the connection serving %s (%s): it is served on another", session_name, reason)
        cut_off, heard_until = thread.cut_off(), thread.heard_until


async def _until_stopped_or_ended(stop: asyncio.Event | None, client: AblyRealtime) -> bool:
    """Wait for `stop`, or for Ably to end `client`'s connection for good; whether it ended."""
    loop = asyncio.get_running_loop()
    ended: asyncio.Future[None] = loop.create_future()

    def on_state(change: Any) -> None:
        if has_ended(client) and not ended.done():
            ended.set_result(None)

    client.connection.on(on_state)
    stopped = asyncio.ensure_future(stop.wait()) if stop is not None else loop.create_future()
    try:
        on_state(None)  # it may have ended already
        await asyncio.wait({stopped, ended}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        client.connection.off(on_state)
        stopped.cancel()
    return ended.done() and not (stop is not None and stop.is_set())


class _ProtocolThread:
    """One session's commands and runs; runs start one at a time, and share the thread's event numbering."""

    def __init__(self, graph: Any, session: AgentSession, config: RunnableConfig, options: _Options,
                 missed_after: str | None = None) -> None:
        """`missed_after`: the newest serial the thread's last session heard, if this one takes over from it (its
        connection ended): commands after it, in the history this session reads, were heard by neither."""
        self._graph = graph
        self._graph_name = getattr(graph, "name", None) or "agent"
        self._session = session
        self._config = config
        self._options = options
        self._last_seq: int | None = None
        self._seq: Iterator[int] = itertools.count(1)
        self._starting = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._in_hand: set[Run] = set()  # runs started and not yet ended (or cut off)
        self._missed_after = missed_after
        self.heard_until = missed_after  # the newest serial heard

    async def open(self) -> None:
        session = self._session
        session.listen(self._on_message, replay=True)
        await session.load_older_until(lambda: self._last_seq is not None or bool(session.carries(names.CODEC_NAMES)))
        if other := session.carries(names.CODEC_NAMES):
            session.unlisten(self._on_message)
            raise ConfigurationError(f"session {session.name!r} carries the UIMessage codec (it holds {other[0]} "
                                     "messages); one codec serves a session: use serve_graph, or a new session")
        self._seq = itertools.count((self._last_seq or 0) + 1)

    async def close(self) -> None:
        """Stop hearing commands, and let those in hand finish: a streaming run ends as `stop` makes it. One still
        waiting its turn after `CLOSE_WAIT_S` (a queued `run.start`) is dropped unanswered; its client times out."""
        self._session.unlisten(self._on_message)
        if not self._tasks:
            return
        _, waiting = await asyncio.wait(set(self._tasks), timeout=CLOSE_WAIT_S)
        for task in waiting:
            task.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)

    def _on_message(self, wire: WireMessage, events: list[Any], live: bool) -> None:
        missed = not live and self._missed_after is not None and (wire.serial or "") > self._missed_after
        if wire.serial and (self.heard_until is None or wire.serial > self.heard_until):
            self.heard_until = wire.serial
        if wire.name == names.PROTOCOL_EVENTS and (last := _int(wire.transport.get(names.HEADER_LAST_SEQ))) is not None:
            self._last_seq = max(self._last_seq or 0, last)
        elif live and wire.name in names.CODEC_NAMES:
            log.warning("%s from %r on %s ignored: the session carries the agent protocol", wire.name, wire.client_id,
                        self._session.name)
        elif (live or missed) and wire.name == names.PROTOCOL_COMMAND:
            task = asyncio.ensure_future(self._serve(wire))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    # --- commands ---

    async def _serve(self, wire: WireMessage) -> None:
        command = read_command(wire)
        if isinstance(command, Refusal):
            log.warning("command from %r on %s refused: %s", wire.client_id, self._session.name, command.message)
            if (answer := refused(command)) is not None:
                await self._answer(answer)
            return
        handlers = {"run.start": self._run_start, "input.respond": self._input_respond, "state.get": self._state_get}
        try:
            await handlers[command.method](command)
        except Exception as error:  # a command must never take the thread down
            log.exception("%s from %r on %s failed", command.method, wire.client_id, self._session.name)
            await self._answer(failure(command.key, command.id, "unknown_error", _text(error)))

    async def _answer(self, message: WireMessage) -> None:
        try:
            await self._session.publish(message)
        except Exception as error:  # the client's `send` times out and says so; the thread goes on
            log.warning("an answer on %s was not published: %s", self._session.name, error)

    async def _refuse(self, command: ProtocolCommand, code: ErrorCode, message: str) -> None:
        log.warning("%s from %r on %s refused: %s", command.method, command.wire.client_id,
                    self._session.name, message)
        await self._answer(failure(command.key, command.id, code, message))

    async def _run_start(self, command: ProtocolCommand) -> None:
        params = command.params
        configurable = (params.get("config") or {}).get("configurable") or {}
        if configurable.get("checkpoint_id"):
            return await self._refuse(command, "not_supported", "forking from a checkpoint is not supported")
        try:
            graph_input = _graph_input(params.get("input"))
        except (ValueError, TypeError, KeyError, NotImplementedError) as error:
            return await self._refuse(command, "invalid_argument", f"unreadable input: {_text(error)}")
        async with self._starting:
            policy = self._policy(params.get("multitask_strategy"))
            if not await take_turn(self._session, command.key, command.wire, policy, self._options.wait_for_active_s):
                return await self._refuse(command, "invalid_argument", "a run of this thread is active")
            graph_input = await without_reused_ids(self._graph, self._config, graph_input)
            run = await self._start(self._session.run_for_command(command.wire))
        with attributed_to(run.run_id):  # the answer is part of what the turn costs
            await self._answer(success(command, {"run_id": run.run_id}))
        await self._stream(run, graph_input)

    def _policy(self, strategy: Any) -> ActivePolicy:
        """The double-texting policy of a `run.start`. A run its user just stopped is not in the way: the SDK sends
        the next input at once, while the cancelled run is still ending, so that input waits for it."""
        session = self._session
        if all(session.stopping(run_id) for run_id in session.active_runs()):
            return "queue"
        return STRATEGIES.get(strategy, self._options.on_active) if isinstance(strategy, str) else \
            self._options.on_active

    async def _input_respond(self, command: ProtocolCommand) -> None:
        try:
            answers = _answers(command.params)
        except ValueError as error:
            return await self._refuse(command, "invalid_argument", _text(error))
        async with self._starting:
            suspended = await self._suspended()
            if not suspended:
                return await self._refuse(command, "no_such_run", "no run of this thread waits for input")
            pending = {interrupt.id for interrupt in (await self._graph.aget_state(self._config)).interrupts}
            if unknown := sorted(answers.keys() - pending):
                return await self._refuse(command, "no_such_interrupt", f"no pending interrupt {unknown[0][:64]!r}")
            if not await self._session.allows("resume", suspended[-1], command.wire):
                return await self._refuse(command, "permission_denied", "only the run's owner may answer it")
            run = await self._start(self._session.run_for_command(command.wire, resumes=suspended[-1]))
        with attributed_to(run.run_id):
            await self._answer(success(command))
        resume = Command(resume=answers, update=command.params.get("update"), goto=_goto(command.params.get("goto")))
        await self._stream(run, resume, answered=answers)

    async def _suspended(self) -> list[str]:
        """The thread's suspended runs. A client answers as soon as it sees `interrupted`, which comes before the
        run's `ai-run-suspend`: while a run is active, this waits a moment for it to suspend."""
        session = self._session
        if not session.suspended_runs() and session.active_runs():
            await session.wait_for(lambda: bool(session.suspended_runs() or not session.active_runs()), ECHO_WAIT_S)
        return session.suspended_runs()

    async def _state_get(self, command: ProtocolCommand) -> None:
        state = await self._graph.aget_state(self._config)
        checkpoint_id = (state.config.get("configurable") or {}).get("checkpoint_id")
        result: dict[str, Any] = {"values": to_json(state.values) if isinstance(state.values, dict) else {}}
        if checkpoint_id:
            result["checkpoint"] = {"id": checkpoint_id}
        await self._answer(success(command, result))

    def cut_off(self) -> list[Run]:
        """The runs whose end Ably's ending of the connection left unpublished (once the session has closed: it
        ends those still streaming)."""
        return [run for run in self._in_hand if run.cut_off]

    async def _start(self, run: Run) -> Run:
        """Start `run` and wait until the session shows it active, so that the next command sees it."""
        self._in_hand.add(run)
        await run.start()
        await self._session.wait_for(lambda: run.run_id in self._session.active_runs(), ECHO_WAIT_S)
        return run

    # --- runs ---

    async def _stream(self, run: Run, graph_input: Any, answered: Iterable[str] = ()) -> None:
        """Stream the graph into `run` as protocol events, then end it, suspend it on an interrupt, or fail it."""
        normalizer = EventNormalizer(self._graph_name)
        window = {} if self._options.coalesce_window is None else {"window": self._options.coalesce_window}
        batcher = EventBatcher(run.publish, run_id=run.run_id, invocation_id=run.invocation_id, seq=self._seq,
                               **window)
        batcher.add([normalizer.running(), *([normalizer.answered(answered)] if answered else [])])
        config: RunnableConfig = {**self._config, "configurable": {
            **self._config.get("configurable", {}), RUN_ID_KEY: run.run_id,
            HOLD_CHECKPOINTS_KEY: True}}  # stored before the run ends
        with stopping(run, self._options.stop), attributed_to(run.run_id):
            outcome, error = await _unless_cancelled(self._events(graph_input, config, normalizer, batcher), run)
            await store_waiting_writes(self._graph, run, self._config)
            if outcome == "complete" and (await self._graph.aget_state(self._config)).interrupts:
                outcome = "interrupted"
            stopped = outcome == "cancelled" and self._options.stop is not None and self._options.stop.is_set()
            message = STOPPED_MESSAGE if stopped else "cancelled" if outcome == "cancelled" else _text(error)
            status = {"complete": "completed", "interrupted": "interrupted"}.get(outcome, "failed")
            batcher.add([normalizer.finished(status, None if status != "failed" else message)])
            await self._finish(run, batcher, outcome, message if stopped or outcome == "error" else None)
        if not run.cut_off:
            self._in_hand.discard(run)

    async def _events(self, graph_input: Any, config: RunnableConfig, normalizer: EventNormalizer,
                      batcher: EventBatcher) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LangChainBetaWarning)  # v3 is experimental; the codec pins what it reads
            stream = await self._graph.astream_events(graph_input, config, version="v3",
                                                      transformers=normalizer.transformers(),
                                                      durability=self._options.durability)
        # Leaving the block aborts the run (LangGraph's `abort`): a stop cancels the graph's running node at once.
        # Freed without it, the graph's generator is closed by its finaliser, which fails while a pull is in
        # flight, and the node runs on (a model call billed to its end).
        async with stream:
            async for raw in stream:
                if raw.get("method") == "messages":
                    store_checkpoints_soon(self._graph, config)
                batcher.add(normalizer.normalize(raw))
        batcher.add(normalizer.flush())

    async def _finish(self, run: Run, batcher: EventBatcher, outcome: str, error: str | None) -> None:
        try:
            await batcher.close()
        except RunError:  # another process adopted the run: it publishes nothing more from here
            return
        except Exception as failed:
            log.warning("run %s: its events were not all published: %s", run.run_id, failed)
            outcome, error = "error", f"events not published: {_text(failed)}"
        if run.ended:
            return
        if error is not None:
            await run.end("error", error_message=error)
        elif outcome == "interrupted":
            await run.suspend()
        else:
            await run.end("cancelled" if outcome == "cancelled" else "complete")


async def _unless_cancelled(streaming: Awaitable[None], run: Run) -> tuple[str, BaseException | None]:
    """Run `streaming` until it ends or the run is cancelled: `complete`, `cancelled` or `error` (with why)."""
    work = asyncio.ensure_future(streaming)
    cancelled = asyncio.ensure_future(run.cancelled.wait())
    try:
        await asyncio.wait({work, cancelled}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        cancelled.cancel()
    if not work.done():
        work.cancel()
        await asyncio.gather(work, return_exceptions=True)
        return "cancelled", None
    error = work.exception()
    return ("error", error) if error is not None else ("complete", None)


def _graph_input(value: Any) -> Any:
    """A run's input as the graph takes it: a `messages` list of LangChain dicts (what the SDK sends) as messages."""
    if isinstance(value, dict) and isinstance(value.get("messages"), list):
        return {**value, "messages": convert_to_messages(value["messages"])}
    return value


def _answers(params: dict[str, Any]) -> dict[str, Any]:
    """`{interrupt id: response}` from one `input.respond` (one answer, or several as `responses`)."""
    entries = params.get("responses") if "responses" in params else [params]
    if not isinstance(entries, list) or not entries:
        raise ValueError("input.respond needs an interrupt_id and a response, or a list of responses")
    answers = {}
    for entry in entries:
        interrupt_id = entry.get("interrupt_id") if isinstance(entry, dict) else None
        if not isinstance(interrupt_id, str) or "response" not in entry:
            raise ValueError("each answer needs a string interrupt_id and a response")
        answers[interrupt_id] = entry["response"]
    return answers


def _goto(value: Any) -> Any:
    """The protocol's `goto` (a node, `{node, input}`, or a list of them) as LangGraph's `Command.goto`."""
    if isinstance(value, list):
        return [_goto(item) for item in value]
    if isinstance(value, dict) and isinstance(value.get("node"), str):
        return Send(value["node"], value.get("input"))
    return value if isinstance(value, str) else ()


def _int(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


def _text(error: BaseException | None) -> str:
    return (str(error) or type(error).__name__)[:MAX_ERROR_TEXT] if error is not None else ""
