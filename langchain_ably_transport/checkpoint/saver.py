"""`AblySaver`: a LangGraph checkpointer whose storage is Ably channels, one per thread.

The Ably client lives on one event loop. Async methods called from another loop, and sync methods
(which `graph.invoke` calls from worker threads), hand their work to that loop; a sync method called on
the client's own loop would deadlock, so it raises instead.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from contextlib import AsyncExitStack, contextmanager
from typing import Any, TypeVar

from ably import AblyRealtime
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from ..connection import connect
from ..errors import CheckpointStorageError, ConfigurationError, WrongLoopError
from ..loop import LoopThread
from ..pool import ConnectionPool
from ..sdk.channels import release_channel
from ..sdk.states import has_ended
from .log import ChannelLog
from .records import RUN, CheckpointRecord, EraseRecord, pack, unpack
from .thread import BlobCache, ThreadStore

T = TypeVar("T")
log = logging.getLogger(__name__)
STATE_NAMESPACE = "langgraph-state"
DEFAULT_DIRECTORY = f"{STATE_NAMESPACE}:__runs__"
ANNOUNCED_KEPT = 1024
HOLD_CHECKPOINTS_KEY = "__lcat_hold_checkpoints"  # "__": LangGraph leaves it out of checkpoint metadata
"""In `configurable`: the run's owner publishes what the saver holds when the run ends (`serve_graph` sets it)."""
SERVING_KEY = "__lcat_serving"
"""In `configurable`: one serving of a run (`serve_graph` sets its invocation id). The serving owns the thread while it
runs, so its reads after the first fold in nothing new from the channel: they skip the history request."""
DURABILITY_KEY = "__pregel_durability"  # LangGraph's, in `configurable` (`langgraph._internal._constants`)


def state_channel(thread_id: str) -> str:
    """The default home of a thread's state: `langgraph-state:<thread_id>`.

    A namespace of its own keeps graph state out of reach of a browser token scoped to the
    conversation's namespace (e.g. `conversations:*`).
    """
    return f"{STATE_NAMESPACE}:{thread_id}"


def same_channel(thread_id: str) -> str:
    """Store state on the conversation's own channel (the thread id is the channel name)."""
    return thread_id


class AblySaver(BaseCheckpointSaver[str]):
    """Checkpoints on Ably: `builder.compile(checkpointer=AblySaver(client))`.

    Args:
        client: a connected `AblyRealtime` (see `connect()`), or a `ConnectionPool`, which puts each thread's
            channel on its session's connection; the saver never closes either.
        serde: serializer for checkpoints, metadata and values (`EncryptedSerializer` works).
        channel_for: thread id -> channel name (default `state_channel`; `same_channel` shares the
            conversation channel).
        directory_channel: where each run id is recorded against its thread, for `delete_for_runs`.
        max_message_size: Ably's per-message limit for the app (64 KiB unless your plan raises it).
        cached_threads: threads whose index this process keeps warm.
        blob_cache_bytes: decoded values kept in memory, across threads.
        writes_wait_s: how long a task's writes may wait for the next checkpoint, to travel in its message
            (one message per super-step) rather than in one of their own. Writes that may end a run (errors,
            interrupts, resumes) and writes a read needs never wait; `aflush()` publishes the rest now.
        checkpoint_wait_s: how long a checkpoint of a run that `serve_graph` serves (with durability other
            than `"sync"`) may wait for the next ones, so that a burst of super-steps is one message.
            `serve_graph` publishes it sooner: when the run's output streams, and before the run ends. A process
            that dies meanwhile loses at most this much progress, which an adopter runs again.
    """

    def __init__(
        self,
        client: AblyRealtime | ConnectionPool,
        *,
        serde: SerializerProtocol | None = None,
        channel_for: Callable[[str], str] = state_channel,
        directory_channel: str = DEFAULT_DIRECTORY,
        max_message_size: int = 65536,
        cached_threads: int = 256,
        blob_cache_bytes: int = 64 * 1024 * 1024,
        writes_wait_s: float = 0.5,
        checkpoint_wait_s: float = 0.25,
    ) -> None:
        super().__init__(serde=serde)
        self._pool = client if isinstance(client, ConnectionPool) else None
        self._client = client.home if isinstance(client, ConnectionPool) else client
        self._loop: asyncio.AbstractEventLoop = self._client.options.loop
        self._channel_for = channel_for
        self._directory = ChannelLog(self._client.channels.get(directory_channel), max_message_size)
        self._max_message_size = max_message_size
        self._threads: OrderedDict[str, ThreadStore] = OrderedDict()
        self._cached_threads = cached_threads
        self._blobs = BlobCache(blob_cache_bytes)
        self._writes_wait_s = writes_wait_s
        self._checkpoint_wait_s = checkpoint_wait_s
        self._retiring: set[asyncio.Task[None]] = set()
        # The runs recently announced in the directory: a run puts several checkpoints, announced once. Only
        # the newest are remembered (a long-lived saver serves runs without end); announcing again is harmless.
        self._announced: OrderedDict[tuple[str, str], None] = OrderedDict()

    @property
    def client(self) -> AblyRealtime:
        """The client given, or the pool's home (another connection takes its place if Ably ends it)."""
        return self._pool.home if self._pool is not None else self._client

    @classmethod
    @contextmanager
    def connect(
        cls, key: str | None = None, endpoint: str | None = None, **options: Any
    ) -> Iterator[AblySaver]:
        """`with AblySaver.connect() as saver:` a saver owning its client, on a loop thread of its own.

        For plain `graph.invoke` in programs without an event loop. Saver options (`serde`,
        `channel_for`, ...) and `connect()` options may be mixed.
        """
        saver_options = {k: options.pop(k) for k in list(options) if k in _SAVER_OPTIONS}
        runner = LoopThread()
        stack = AsyncExitStack()

        async def open_client() -> AblyRealtime:
            return await stack.enter_async_context(connect(key, endpoint, **options))

        saver: AblySaver | None = None
        try:
            client = runner.run(open_client())
            saver = cls(client, **saver_options)
            yield saver
        finally:
            try:
                if saver is not None:
                    saver.flush()
            finally:
                runner.run(stack.aclose())
                runner.stop()

    # --- plumbing ---

    def _thread(self, thread_id: str) -> ThreadStore:
        client = self._pool.client_for(thread_id) if self._pool is not None else self.client
        store = self._threads.get(thread_id)
        if store is not None and store.log.channel.ably is not client and self._may_move(store):
            left = store.log.channel
            store.move_to(store.log.on(client.channels.get(self._channel_for(thread_id))))
            release_channel(left.ably, left)
        if store is None:
            channel = client.channels.get(self._channel_for(thread_id))
            store = self._threads[thread_id] = ThreadStore(ChannelLog(channel, self._max_message_size),
                                                           self.serde, self._blobs, self._writes_wait_s,
                                                           self._checkpoint_wait_s)
            while len(self._threads) > self._cached_threads:
                self._forget(self._threads.popitem(last=False)[1])
        self._threads.move_to_end(thread_id)
        return store

    @staticmethod
    def _may_move(store: ThreadStore) -> bool:
        """A thread follows its session to another connection (the pool moved it off a full one, or its own ended)
        once its writes are out: until then it stays where they are, so that they land before anything the next
        connection writes, and a read there finds them. It moves with what it knows of the thread: a read there
        asks only for what is newer (a thread read afresh costs a page of history and a fetch of its values)."""
        return store.settled or has_ended(store.log.channel.ably)

    def _forget(self, store: ThreadStore) -> None:
        """A thread no longer cached: its blobs and its channel go too (memory follows the warm threads), once
        the writes waiting there are published."""
        self._blobs.drop(store.log.name)
        if not store.waiting:
            release_channel(store.log.channel.ably, store.log.channel)
            return
        task = asyncio.ensure_future(self._retire(store))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _retire(self, store: ThreadStore) -> None:
        try:
            await store.flush()
        except CheckpointStorageError as error:
            log.warning("writes waiting on %s, a thread no longer cached, were not stored: %s", store.log.name, error)
        finally:
            release_channel(store.log.channel.ably, store.log.channel)

    async def _on_client_loop(self, coro: Coroutine[Any, Any, T]) -> T:
        if asyncio.get_running_loop() is self._loop:
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    def _blocking(self, coro: Coroutine[Any, Any, T]) -> T:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            coro.close()
            raise WrongLoopError(
                "AblySaver's sync methods were called on its client's event loop, which would deadlock: "
                "use ainvoke/astream there, or AblySaver.connect(), which runs its own loop."
            )
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    async def aflush(self, thread_id: str | None = None) -> None:
        """Publish now what waits: writes waiting for a checkpoint (at most `writes_wait_s` old) and held
        checkpoints (at most `checkpoint_wait_s`), on `thread_id`'s channel or on every thread's."""
        await self._on_client_loop(self._flush(thread_id))

    def flush(self, thread_id: str | None = None) -> None:
        self._blocking(self._flush(thread_id))

    def flush_soon(self, thread_id: str) -> None:
        """Publish the checkpoints held on `thread_id`'s channel as soon as the client's loop allows, without
        waiting: the run's output is about to show, and the checkpoint it comes from should be stored first (an
        adopter then resumes the same step, with the same idempotency key). Callable from any thread."""
        store = self._threads.get(str(thread_id))
        if store is None or not store.waiting:
            return
        try:
            on_loop = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            store.publish_soon()
        else:
            self._loop.call_soon_threadsafe(store.publish_soon)

    async def _flush(self, thread_id: str | None) -> None:
        if thread_id is not None:
            if (store := self._threads.get(str(thread_id))) is not None:
                await store.flush()
            return
        await asyncio.gather(*(store.flush() for store in list(self._threads.values())), *list(self._retiring))

    # --- reads ---

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await self._on_client_loop(self._get_tuple(config))

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self._blocking(self._get_tuple(config))

    async def _get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        configurable = config["configurable"]
        thread_id = str(configurable["thread_id"])
        ns = configurable.get("checkpoint_ns", "")
        store = self._thread(thread_id)
        checkpoint_id = get_checkpoint_id(config)
        serving = configurable.get(SERVING_KEY)
        entry = await (store.by_id(ns, checkpoint_id) if checkpoint_id else store.latest(ns, serving))
        if entry is None:
            return None
        tuple_ = await self._tuple(thread_id, store, entry[1])
        if not checkpoint_id:
            store.remember(entry[1])
        return tuple_

    async def _tuple(self, thread_id: str, store: ThreadStore, record: CheckpointRecord) -> CheckpointTuple:
        values = await store.values(record)
        checkpoint: Checkpoint = {**self.serde.loads_typed(record.checkpoint), "channel_values": values}
        writes = store.index.pending_writes(record.ns, record.id)
        written = await asyncio.gather(*(store.write_value(w.value) for w in writes))
        return CheckpointTuple(
            config=_config(thread_id, record.ns, record.id),
            checkpoint=checkpoint,
            metadata=self.serde.loads_typed(record.metadata),
            parent_config=_config(thread_id, record.ns, record.parent) if record.parent else None,
            pending_writes=[(w.task_id, w.channel, value) for w, value in zip(writes, written, strict=True)],
        )

    async def alist(
        self, config: RunnableConfig | None, *, filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None, limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        for item in await self._on_client_loop(self._list(config, filter, before, limit)):
            yield item

    def list(
        self, config: RunnableConfig | None, *, filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None, limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        yield from self._blocking(self._list(config, filter, before, limit))

    async def _list(self, config: RunnableConfig | None, filter: dict[str, Any] | None,
                    before: RunnableConfig | None, limit: int | None) -> list[CheckpointTuple]:
        configurable = (config or {}).get("configurable", {})
        thread_ids = [str(configurable["thread_id"])] if "thread_id" in configurable else await self._known_threads()
        before_id = get_checkpoint_id(before) if before else None
        wanted_id = configurable.get("checkpoint_id")
        results: list[CheckpointTuple] = []
        for thread_id in thread_ids:
            store = self._thread(thread_id)
            await store.load_all()
            for _, record in store.index.newest_first(configurable.get("checkpoint_ns")):
                if limit is not None and len(results) >= limit:
                    return results
                if (wanted_id and record.id != wanted_id) or (before_id and record.id >= before_id):
                    continue
                metadata = self.serde.loads_typed(record.metadata)
                if filter and any(metadata.get(k) != v for k, v in filter.items()):
                    continue
                results.append(await self._tuple(thread_id, store, record))
        return results

    # --- writes ---

    async def aput(self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata,
                   new_versions: ChannelVersions) -> RunnableConfig:
        return await self._on_client_loop(self._put(config, checkpoint, metadata, new_versions))

    def put(self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata,
            new_versions: ChannelVersions) -> RunnableConfig:
        return self._blocking(self._put(config, checkpoint, metadata, new_versions))

    async def _put(self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata,
                   new_versions: ChannelVersions) -> RunnableConfig:
        configurable = config["configurable"]
        thread_id = str(configurable["thread_id"])
        ns = configurable.get("checkpoint_ns", "")
        stored_metadata = get_checkpoint_metadata(config, metadata)
        run_id = stored_metadata.get("run_id")
        hold = bool(configurable.get(HOLD_CHECKPOINTS_KEY)) and configurable.get(DURABILITY_KEY) != "sync"
        await self._thread(thread_id).put(
            ns, dict(checkpoint), configurable.get("checkpoint_id"), self.serde.dumps_typed(stored_metadata),
            dict(new_versions), str(run_id) if run_id is not None else None, hold=hold,
        )
        if run_id is not None:
            await self._announce(str(run_id), thread_id)
        return _config(thread_id, ns, checkpoint["id"])

    async def aput_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str,
                          task_path: str = "") -> None:
        await self._on_client_loop(self._put_writes(config, writes, task_id, task_path))

    def put_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str,
                   task_path: str = "") -> None:
        self._blocking(self._put_writes(config, writes, task_id, task_path))

    async def _put_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str,
                          task_path: str) -> None:
        configurable = config["configurable"]
        serialised = [
            (WRITES_IDX_MAP.get(channel, idx), channel, self.serde.dumps_typed(value))
            for idx, (channel, value) in enumerate(writes)
        ]
        await self._thread(str(configurable["thread_id"])).put_writes(
            configurable.get("checkpoint_ns", ""), configurable["checkpoint_id"], task_id, task_path, serialised
        )

    def get_next_version(self, current: str | None, channel: None) -> str:
        """`<counter>.<random>` like the official savers: forks from one parent never share a version."""
        number = 0 if current is None else current if isinstance(current, int) else int(str(current).split(".")[0])
        return f"{number + 1:032}.{random.random():016}"

    # --- deletion, copying, pruning ---

    async def adelete_thread(self, thread_id: str) -> None:
        await self._on_client_loop(self._thread(str(thread_id)).erase(EraseRecord(thread=True)))

    def delete_thread(self, thread_id: str) -> None:
        self._blocking(self._thread(str(thread_id)).erase(EraseRecord(thread=True)))

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await self._on_client_loop(self._delete_for_runs(run_ids))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        self._blocking(self._delete_for_runs(run_ids))

    async def _delete_for_runs(self, run_ids: Sequence[str]) -> None:
        wanted = {str(run_id) for run_id in run_ids}
        if not wanted:
            return
        for thread_id in await self._threads_of_runs(wanted):
            store = self._thread(thread_id)
            await store.load_all()
            doomed = [(r.ns, r.id) for _, r in store.index.newest_first() if r.run_id in wanted]
            if doomed:
                await store.erase(EraseRecord(checkpoints=doomed))

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await self._on_client_loop(self._copy_thread(source_thread_id, target_thread_id))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self._blocking(self._copy_thread(source_thread_id, target_thread_id))

    async def _copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        source = self._thread(str(source_thread_id))
        await source.load_all()
        target = self._thread(str(target_thread_id))
        for _, record in sorted(source.index.newest_first(), key=lambda entry: entry[0]):
            await self._replay(source, record, target)
        await target.flush()

    async def _replay(self, source: ThreadStore, record: CheckpointRecord, target: ThreadStore) -> None:
        """Put `record` (values and pending writes) again into `target`, as a new writer would."""
        checkpoint = {**self.serde.loads_typed(record.checkpoint), "channel_values": await source.values(record)}
        await target.put(record.ns, checkpoint, record.parent, record.metadata,
                         dict(checkpoint["channel_versions"]), record.run_id, hold=True)
        by_task: dict[tuple[str, str], list[tuple[int, str, Any]]] = {}
        for write in source.index.pending_writes(record.ns, record.id):
            value = self.serde.dumps_typed(await source.write_value(write.value))
            by_task.setdefault((write.task_id, write.task_path), []).append((write.idx, write.channel, value))
        for (task_id, task_path), writes in by_task.items():
            await target.put_writes(record.ns, record.id, task_id, task_path, writes)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        await self._on_client_loop(self._prune(thread_ids, strategy))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        self._blocking(self._prune(thread_ids, strategy))

    async def _prune(self, thread_ids: Sequence[str], strategy: str) -> None:
        """`delete`: erase the threads. `keep_latest`: erase them, then put back each namespace's latest."""
        if strategy not in ("keep_latest", "delete"):
            raise ConfigurationError(f"prune strategy must be 'keep_latest' or 'delete', not {strategy!r}")
        for thread_id in map(str, thread_ids):
            store = self._thread(thread_id)
            await store.load_all()
            namespaces = {record.ns for _, record in store.index.newest_first()}
            keep = [store.index.latest(ns) for ns in namespaces] if strategy == "keep_latest" else []
            snapshot = [(record, await store.values(record)) for _, record in filter(None, keep)]
            writes = {id(record): [(w, await store.write_value(w.value))
                                   for w in store.index.pending_writes(record.ns, record.id)]
                      for record, _ in snapshot}
            await store.erase(EraseRecord(thread=True))
            for record, values in snapshot:
                checkpoint = {**self.serde.loads_typed(record.checkpoint), "channel_values": values}
                await store.put(record.ns, checkpoint, record.parent, record.metadata,
                                dict(checkpoint["channel_versions"]), record.run_id, hold=True)
                for write, value in writes[id(record)]:
                    await store.put_writes(record.ns, record.id, write.task_id, write.task_path,
                                           [(write.idx, write.channel, self.serde.dumps_typed(value))])
            await store.flush()

    # --- the run directory ---

    async def _announce(self, run_id: str, thread_id: str) -> None:
        if (run_id, thread_id) in self._announced:
            return
        await self._directory_log().publish(RUN, pack({"run_id": run_id, "thread_id": thread_id}))
        self._announced[(run_id, thread_id)] = None
        while len(self._announced) > ANNOUNCED_KEPT:
            self._announced.popitem(last=False)

    async def _directory_entries(self) -> list[dict[str, str]]:
        entries = []
        async for page in self._directory_log().newest_first():
            runs = [e for e in page if e.name == RUN and isinstance(e.data, bytes | bytearray)]
            entries.extend(unpack(bytes(e.data)) for e in runs)
        return entries

    def _directory_log(self) -> ChannelLog:
        """The run directory, on the home as it is now."""
        if self._directory.channel.ably is not self.client:
            self._directory = self._directory.on(self.client.channels.get(self._directory.name))
        return self._directory

    async def _threads_of_runs(self, run_ids: set[str]) -> list[str]:
        threads = {e["thread_id"] for e in await self._directory_entries() if e.get("run_id") in run_ids}
        return sorted(threads)

    async def _known_threads(self) -> list[str]:
        return sorted({e["thread_id"] for e in await self._directory_entries()} | set(self._threads))


_SAVER_OPTIONS = frozenset({"serde", "channel_for", "directory_channel", "max_message_size", "cached_threads",
                            "blob_cache_bytes", "writes_wait_s", "checkpoint_wait_s"})


def _config(thread_id: str, ns: str, checkpoint_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint_id}}
