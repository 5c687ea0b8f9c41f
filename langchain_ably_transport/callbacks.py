"""`AblyCallbackHandler`: pass it to any chain and its tokens, tool calls and errors stream into a session.

The handler's methods run on whatever thread LangChain calls them from (the caller's for `invoke`, pool
threads for tools, the event loop for `ainvoke`). They only append to a thread-safe deque; one consumer on
the Ably client's loop turns those events into runs and chunks. So the model's token loop never waits for
the network, and nothing the handler does raises into the chain, except the one thing meant to: after a
client cancels the run, the next callback raises `RunCancelledError`, which stops the chain there. (When Ably ends
the client's connection for good, the chain goes on, and its run, which can publish nothing more, reads as lost.)

Each outermost chain (each input of a `batch`) becomes a run. A run's model passes and tool results make
one assistant message, one step per pass, as the AI SDK streams a multi-step reply, so a `useChat` client
keeps streaming until the run ends.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from ably import AblyRealtime
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import LLMResult
from langchain_core.tracers._streaming import _StreamingCallbackHandler

from .codec.langchain import ChunkTranslator, error_chunk, tool_output_chunk
from .connection import connect
from .errors import AblyTransportError, ConfigurationError, ErrorCode, RunCancelledError
from .loop import LoopThread
from .sdk import adopt
from .session import AgentSession, ClientSession, Run
from .session.trust import configured_agents

log = logging.getLogger(__name__)

try:  # LangGraph control flow (interrupts, handoffs) arrives as errors but is not one.
    from langgraph.errors import GraphBubbleUp
except ImportError:  # pragma: no cover - langgraph is a dependency, but the handler works without it
    GraphBubbleUp = ()  # type: ignore[assignment,misc]


@dataclass
class _RunState:
    """One outermost chain: its run, the chunk queue its single pass reads, and what is streaming."""

    chunks: asyncio.Queue[dict[str, Any] | None] = field(default_factory=asyncio.Queue)
    run: Run | None = None
    pipe: asyncio.Future[Any] | None = None
    watcher: asyncio.Future[Any] | None = None
    models: dict[UUID, ChunkTranslator] = field(default_factory=dict)
    streamed: set[UUID] = field(default_factory=set)
    tool_calls: dict[UUID, str] = field(default_factory=dict)
    passes: int = 0
    usage: dict[str, Any] = field(default_factory=dict)


class AblyCallbackHandler(BaseCallbackHandler, _StreamingCallbackHandler):
    """Streams chains into a session: `chain.invoke(x, config={"callbacks": [handler]})`.

    Args:
        client: a connected `AblyRealtime` whose loop keeps running (e.g. your async app's). For plain sync
            programs use `AblyCallbackHandler.connect(...)`, which owns a client on a loop thread.
        session: the session channel; each outermost chain publishes its input as a user message and
            answers it in a new run.
        run: instead of `session`, an already started `Run` (from `AgentSession`) that chains stream into;
            its owner ends it.
        publish_input: in session mode, publish the chain's input as the user message the run answers.
    """

    run_inline = True

    def __init__(self, client: AblyRealtime | None = None, *, session: str | None = None, run: Run | None = None,
                 publish_input: bool = True, coalesce_window: float | None = None) -> None:
        if (session is None) == (run is None):
            raise ConfigurationError("AblyCallbackHandler needs exactly one of session= or run=")
        if run is None and client is None:
            raise ConfigurationError("a session handler needs the Ably client")
        self._client = adopt(client) if client is not None else run.client  # type: ignore[union-attr]
        self._loop: asyncio.AbstractEventLoop = self._client.options.loop
        self._session_name = session
        self._bound_run = run
        self._publish_input = publish_input
        self._coalesce_window = coalesce_window
        self._intake: collections.deque[tuple[str, tuple[Any, ...]]] = collections.deque()
        self._numbering = itertools.count(1)
        self._accepted = 0
        self._processed = 0
        self._kick_pending = False
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Future[Any]] = set()
        self._roots: dict[UUID, _RunState] = {}
        self._parents: dict[UUID, UUID] = {}
        self._cancelled_roots: set[UUID] = set()
        self._awaiting_input: set[UUID] = set()
        self._consumer: asyncio.Future[None] | None = None
        self._sessions: tuple[ClientSession, AgentSession] | None = None
        self._stack = AsyncExitStack()
        self.errors: list[BaseException] = []
        """Publishing failures so far (also logged); the chain itself never sees them."""

    @classmethod
    @contextmanager
    def connect(cls, session: str, key: str | None = None, endpoint: str | None = None,
                **options: Any) -> Iterator[AblyCallbackHandler]:
        """`with AblyCallbackHandler.connect("conversations:42") as handler:` for sync programs."""
        runner = LoopThread("ably-callbacks")
        stack = AsyncExitStack()
        handler_options = {k: options.pop(k) for k in ("publish_input", "coalesce_window") if k in options}
        try:
            client = runner.run(stack.enter_async_context(connect(key, endpoint, **options)))
            handler = cls(client, session=session, **handler_options)
            stack.push_async_callback(handler.aclose)
            yield handler
        finally:
            runner.run(stack.aclose())
            runner.stop()

    # --- the hot path: enqueue and return ---

    def _put(self, kind: str, *args: Any) -> None:
        """Append for the consumer; wake it only if no wake-up is already on its way (a deque append and a
        flag test per token). Appending before testing the flag means a pending wake-up always finds it."""
        self._intake.append((kind, args))
        self._accepted = next(self._numbering)
        if not self._kick_pending:
            self._kick_pending = True
            self._loop.call_soon_threadsafe(self._kick)

    @property
    def raise_error(self) -> bool:  # type: ignore[override]
        """False (callbacks never raise) until a client cancels a run: then the chain must stop."""
        return bool(self._cancelled_roots)

    def _check_cancel(self, run_id: UUID) -> None:
        if self._root_of(run_id) in self._cancelled_roots:
            raise RunCancelledError("the session run was cancelled by a client", code=ErrorCode.OPERATION_CANCELLED)

    def _root_of(self, run_id: UUID) -> UUID:
        while run_id in self._parents:
            run_id = self._parents[run_id]
        return run_id

    def on_chain_start(self, serialized: dict[str, Any] | None, inputs: Any, *, run_id: UUID,
                       parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        if parent_run_id is not None:
            self._parents[run_id] = parent_run_id
            self._check_cancel(run_id)
            if parent_run_id in self._awaiting_input:
                # A streamed chain announces `{"input": ""}`; its first step receives the real input.
                self._awaiting_input.discard(parent_run_id)
                self._put("root_input", parent_run_id, inputs)
            return
        if inputs == _STREAMED_INPUT:
            self._awaiting_input.add(run_id)
        self._put("root_start", run_id, inputs)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        if parent_run_id is None:
            self._put("root_end", run_id, None)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, parent_run_id: UUID | None = None,
                       **kwargs: Any) -> None:
        if parent_run_id is None:
            self._put("root_end", run_id, error)

    def on_chat_model_start(self, serialized: dict[str, Any] | None, messages: list[list[BaseMessage]], *,
                            run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        self._link(run_id, parent_run_id)
        self._put("model_start", self._root_of(run_id), run_id)

    def on_llm_new_token(self, token: str, *, chunk: Any = None, run_id: UUID, **kwargs: Any) -> None:
        self._check_cancel(run_id)
        message = getattr(chunk, "message", None)
        if message is not None:
            self._put("token", self._root_of(run_id), run_id, message)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        generations = response.generations[0] if response.generations else []
        message = getattr(generations[0], "message", None) if generations else None
        self._put("model_end", self._root_of(run_id), run_id, message)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._put("model_end", self._root_of(run_id), run_id, None)

    def on_tool_start(self, serialized: dict[str, Any] | None, input_str: str, *, run_id: UUID,
                      parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        self._link(run_id, parent_run_id)
        self._check_cancel(run_id)
        self._put("tool_start", self._root_of(run_id), run_id, kwargs.get("tool_call_id"))

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._put("tool_end", self._root_of(run_id), run_id, output, None)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        if not isinstance(error, GraphBubbleUp):
            self._put("tool_end", self._root_of(run_id), run_id, None, error)

    def tap_output_iter(self, run_id: UUID, output: Iterator[Any]) -> Iterator[Any]:
        return output

    def tap_output_aiter(self, run_id: UUID, output: AsyncIterator[Any]) -> AsyncIterator[Any]:
        return output

    def _link(self, run_id: UUID, parent_run_id: UUID | None) -> None:
        if parent_run_id is not None:
            self._parents[run_id] = parent_run_id

    # --- the consumer, on the client's loop ---

    def _kick(self) -> None:
        self._kick_pending = False
        self._wake.set()
        if self._consumer is None or self._consumer.done():
            self._consumer = asyncio.ensure_future(self._consume())

    async def _consume(self) -> None:
        """Process events in the order they were accepted, for as long as the handler lives."""
        while True:
            while self._intake:
                kind, args = self._intake.popleft()
                if kind == "token":
                    args = self._merge_waiting_tokens(args)
                try:
                    await getattr(self, f"_on_{kind}")(*args)
                except Exception as error:  # publishing failed: report, keep consuming
                    log.warning("AblyCallbackHandler could not publish %s: %s", kind, error)
                    self.errors.append(error)
                self._processed += 1
            self._wake.clear()
            if not self._intake:
                await self._wake.wait()

    def _merge_waiting_tokens(self, args: tuple[Any, ...]) -> tuple[Any, ...]:
        """Fold the tokens of the same model call queued behind this one into one chunk: when the model
        outpaces publishing, the consumer does one step per batch instead of one per token."""
        root, model_run, message = args
        while self._intake and self._intake[0][0] == "token" and self._intake[0][1][1] == model_run:
            message = message + self._intake.popleft()[1][2]
            self._processed += 1
        return root, model_run, message

    def _spawn(self, coro: Any) -> asyncio.Future[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _on_root_start(self, root: UUID, inputs: Any) -> None:
        self._roots[root] = _RunState()
        if inputs != _STREAMED_INPUT:
            await self._open_run(root, inputs)

    async def _on_root_input(self, root: UUID, inputs: Any) -> None:
        await self._open_run(root, inputs)

    async def _open_run(self, root: UUID, inputs: Any) -> None:
        state = self._roots.get(root)
        if state is None or state.run is not None:
            return
        if self._bound_run is not None:
            state.run = self._bound_run
        else:
            client_session, agent_session = await self._open_sessions()
            sent = await client_session.send(_input_text(inputs) if self._publish_input else "")
            state.run = await agent_session.create_run(sent.invocation)
            await state.run.start()
        state.pipe = self._spawn(state.run.pipe(_drain(state.chunks)))
        state.watcher = self._spawn(self._watch_cancel(root, state.run))

    async def _watch_cancel(self, root: UUID, run: Run) -> None:
        await run.cancelled.wait()
        if run.cut_off:  # no client cancelled: its connection ended for good, and the chain goes on without it
            return
        if root in self._roots:
            self._cancelled_roots.add(root)

    async def _on_model_start(self, root: UUID, model_run: UUID) -> None:
        state = self._roots.get(root)
        if state is None:
            return
        translator = ChunkTranslator(open_message=state.passes == 0)
        state.passes += 1
        state.models[model_run] = translator
        self._emit(state, translator.start())

    async def _on_token(self, root: UUID, model_run: UUID, message: Any) -> None:
        state = self._roots.get(root)
        translator = state.models.get(model_run) if state else None
        if translator is not None:
            state.streamed.add(model_run)
            self._emit(state, translator.feed(message))

    async def _on_model_end(self, root: UUID, model_run: UUID, message: Any) -> None:
        state = self._roots.get(root)
        translator = state.models.pop(model_run, None) if state else None
        if translator is None:
            return
        if model_run not in state.streamed and isinstance(message, AIMessage):
            self._emit(state, translator.feed(message))  # a model that did not stream: its whole answer
        state.usage = translator.message_metadata()
        self._emit(state, translator.finish(close_message=False))

    async def _on_tool_start(self, root: UUID, tool_run: UUID, tool_call_id: str | None) -> None:
        state = self._roots.get(root)
        if state is not None and tool_call_id:
            state.tool_calls[tool_run] = tool_call_id

    async def _on_tool_end(self, root: UUID, tool_run: UUID, output: Any, error: BaseException | None) -> None:
        state = self._roots.get(root)
        tool_call_id = state.tool_calls.pop(tool_run, None) if state else None
        if tool_call_id is None:
            return
        if error is not None:
            message = ToolMessage(content=str(error), tool_call_id=tool_call_id, status="error")
        elif isinstance(output, ToolMessage):
            message = output
        else:
            message = ToolMessage(content=output if isinstance(output, str) else json.dumps(output, default=str),
                                  tool_call_id=tool_call_id)
        self._emit(state, [tool_output_chunk(message)])

    async def _on_root_end(self, root: UUID, error: BaseException | None) -> None:
        self._awaiting_input.discard(root)
        await self._open_run(root, "")
        state = self._roots.pop(root, None)
        self._cancelled_roots.discard(root)
        if state is None or state.run is None or state.pipe is None:
            return
        failed = error is not None and not isinstance(error, GraphBubbleUp | RunCancelledError)
        if failed:
            self._emit(state, [error_chunk(error)])
        elif state.passes:
            self._emit(state, [{"type": "finish", "messageMetadata": state.usage}])
        state.chunks.put_nowait(None)
        result = await state.pipe
        if state.watcher is not None:
            state.watcher.cancel()
        if result.error is not None:
            self.errors.append(result.error)
        if self._bound_run is not None:
            return
        if isinstance(error, GraphBubbleUp):
            await state.run.suspend()
        elif failed:
            await state.run.end("error", error_message=str(error))
        elif result.reason == "error":  # the chain went on, but its reply could not be published in full
            code = result.error.code if isinstance(result.error, AblyTransportError) else None
            await state.run.end("error", error_code=code, error_message=str(result.error))
        else:
            await state.run.end("cancelled" if result.reason == "cancelled" else "complete")

    def _emit(self, state: _RunState, chunks: list[dict[str, Any]]) -> None:
        for chunk in chunks:
            state.chunks.put_nowait(chunk)

    async def _open_sessions(self) -> tuple[ClientSession, AgentSession]:
        if self._sessions is None:
            assert self._session_name is not None
            # Both sides share the client's session core, so they trust the same agents: the configured ones.
            trusted = configured_agents() or ()
            client_session = await self._stack.enter_async_context(
                ClientSession(self._client, self._session_name, trusted_agents=trusted))
            agent_session = await self._stack.enter_async_context(
                AgentSession(self._client, self._session_name, coalesce_window=self._coalesce_window,
                             trusted_agents=trusted))
            self._sessions = (client_session, agent_session)
        return self._sessions

    # --- lifecycle ---

    def flush(self, timeout: float = 30.0) -> None:
        """Block until everything accepted so far is published (from a thread that is not the client's loop)."""
        asyncio.run_coroutine_threadsafe(self.aflush(), self._loop).result(timeout)

    async def aflush(self) -> None:
        """Wait until every event accepted so far is processed (a finished chain's run has then ended)."""
        target = self._accepted
        while self._processed < target:
            await asyncio.sleep(0.005)

    async def aclose(self) -> None:
        """Publish what was accepted, then stop consuming and close the sessions this handler opened."""
        await self.aflush()
        for task in [self._consumer, *self._tasks]:
            if task is not None:
                task.cancel()
        await self._stack.aclose()


_STREAMED_INPUT = {"input": ""}


async def _drain(chunks: asyncio.Queue[dict[str, Any] | None]) -> AsyncIterator[dict[str, Any]]:
    while (chunk := await chunks.get()) is not None:
        yield chunk


def _input_text(inputs: Any) -> str:
    """The user message a chain's input stands for: text as is, a single text field, the last message."""
    if isinstance(inputs, str):
        return inputs
    if isinstance(inputs, BaseMessage):
        return inputs.text
    if isinstance(inputs, list) and inputs and isinstance(inputs[-1], BaseMessage):
        return inputs[-1].text
    if isinstance(inputs, dict):
        texts = [v for v in inputs.values() if isinstance(v, str)]
        if len(texts) == 1 and len(inputs) == 1:
            return texts[0]
        messages = inputs.get("messages")
        if isinstance(messages, list) and messages and isinstance(messages[-1], BaseMessage):
            return messages[-1].text
    return json.dumps(inputs, default=str)
