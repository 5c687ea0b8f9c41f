"""The defects of ably-python 3.1 that this package meets, and what replaces each: the one place that patches the SDK.

`adopt(client)` is called on every `AblyRealtime` the package is handed, the user's own included: by the
constructors that take a client (sessions, saver, callback handler), by `pacer_for`, through which every publish
passes, and by `connect()`. It checks the installed version (`SUPPORTED_VERSIONS`; any other raises
`UnsupportedSdkError`), installs the class-level replacements once, and refuses a client whose options cannot
work. Each defect has an upstream report in docs/ably-python-fixes.md.

Each fix: what ably-python 3.1.4 does, what replaces it, and the test that proves it.

1. Its WebSocket URL leaves out `port`/`tls_port` (REST honours them): a server on any port but 80/443 is
   unreachable. `_connect_with_port`. tests/test_connection.py::test_connect_reaches_a_server_on_a_non_default_port
2. It refuses Basic (key) auth on REST over plain HTTP (40103), and realtime history goes over REST.
   `connect()` signs token requests with the key there (`use_token_auth`); `adopt` refuses a client that sends
   its key over plain HTTP, saying how to build one that works.
   tests/sdk/test_fixes.py::test_a_user_built_client_with_a_key_over_plain_http_is_refused_with_how_to_fix_it
3. `ConnectionDetails` drops `maxInboundRate`, the publish rate the server allows, which the pacer keeps to.
   `_details_with_inbound_rate`. tests/sdk/test_fixes.py::test_the_publish_rate_the_server_announces_is_kept
4. Its queue of messages in flight breaks across reconnections: duplicates, wrong ACKs, messages lost on token
   expiry, `msgSerial` collisions after a connection that could not be resumed. `outbox`.
   tests/faults/test_socket_drops.py, tests/faults/test_token_expiry.py, tests/faults/test_server_crash.py
5. Its token requests leave out the `client_id` the client was built with unless it is also a default token
   parameter, and a token string from `auth_callback` is taken to carry clientId None, so a client with
   `client_id` fails to connect (40102, surfacing as 80019). `_request_token_for_client`.
   tests/faults/test_token_expiry.py (user-built clients too, whose callbacks return JWT strings)
6. Every REST request (history: each session open and checkpoint read) re-sends an unchanged token on the
   realtime connection (AUTH), and each CONNECTED answering it re-attaches every channel: attach storms under
   load. `_authorize_when_necessary`. tests/sdk/test_fixes.py::test_rest_requests_do_not_reauthorise_the_connection
7. `EventEmitter.off` sets the listener's entry to None instead of removing it, so an emitter keeps every
   listener ever removed (a channel that lives on keeps every session that watched it). `_off_and_forget`.
   tests/test_connection.py::test_a_listener_removed_from_a_channel_that_lives_on_is_not_kept
8. Closing a transport whose socket never opened (a connection attempt that failed), or has closed (after a fatal
   error), raises in a task no one awaits, so asyncio prints "Task exception was never retrieved" with a traceback
   on the user's terminal. `_close_if_open`.
   tests/sdk/test_fixes.py::test_a_failed_connection_attempt_prints_no_stray_task_traceback
9. Its read loop spawns a task for every frame it receives, though the handler of the frequent ones (ACK, NACK,
   MESSAGE, PRESENCE, HEARTBEAT) never awaits: two tasks per published token (its ACK and its echo), a fifth of
   a streaming agent's CPU; and that handler formats the repr of every frame for a debug line, logged or not.
   `_read_frames` handles those frames in the loop, as the SDK does but for the f-string.
   tests/sdk/test_fixes.py::test_frequent_frames_are_handled_without_a_task_each_and_in_order
10. Every frame received replaces the idle timer, a task (`Timer`): another task per frame, to note the time.
   `_note_activity` only notes the time while a timer runs; the SDK's own expiry handler waits again for the time
   left. tests/sdk/test_fixes.py::test_the_idle_timer_is_not_replaced_per_frame_and_still_fires

11. Every client builds its own `httpx.AsyncClient`, and with it a new SSL context that loads the CA bundle: 20 to 45
   ms in the event loop per client, however many came before. A `ConnectionPool` that opens connections while
   others stream stalls every stream in the process that long each time. `_HttpxSharingTls` gives the SDK's REST
   clients one SSL context, made once, as httpx makes its default (certificates verified, `SSL_CERT_FILE` and
   `SSL_CERT_DIR` honoured). tests/sdk/test_fixes.py::test_clients_share_one_verifying_ssl_context

12. Its `Timer` (channel attach and detach, connection state, the idle timer) is a task that sleeps, and
   cancelling it, as every attach and detach that succeeds does, leaves the task, its `CancelledError` and the
   frame its traceback holds in a reference cycle: garbage only the collector frees, which makes it run more
   often. `_LoopTimer` waits with `loop.call_later` instead.
   tests/sdk/test_fixes.py::test_sdk_timers_fire_and_cancel_without_a_task
13. `Channels.release` drops the channel, but the channel and its presence and annotations point at each other:
   every released channel, with its event emitters, waits for the collector (about 110 objects).
   `_release_unlinked` cuts the back-references once the channel is gone.
14. httpx binds each response's stream to the response, a cycle: every REST request (a history page, a token
   request) leaves about 30 objects for the collector. `_AcyclicAsyncClient` gives a response read in full a
   stream of its bytes instead. tests/sdk/test_fixes.py::test_channels_and_rest_requests_leave_no_garbage_in_cycles
15. Even handled in the loop (9), a frame waits a turn of the event loop: the websockets library queues it, from
   the socket's callback, for the read loop's task, which wakes in the next turn. A loaded agent's turns are long
   (about 13 ms at the median at 200 sessions in `benchmarks/load.py`), and every ACK a publisher awaits, a
   stream's create included, waits one. `_handle_in_place` handles a frequent frame in the socket's callback when
   the read loop is idle, waiting with nothing queued (so frames keep their order); any other frame, or one that
   comes while the loop is busy, is queued for it as before.
   tests/sdk/test_fixes.py::test_frequent_frames_are_handled_in_the_sockets_callback_in_order
16. A connection attempt waits for its transport to say connected or failed, but a refused socket (an `OSError`,
   which its `ws_connect` does not catch) and an attempt its timer gives up on say neither: each such attempt's task
   (`connect_base`) waits forever, holding its transport, while the retries start new ones, and `close` cancels
   only the last. A server down for a minute leaves a task per retry; a loop closed with them prints "Task was
   destroyed but it is pending!". `_connect_superseding` cancels the attempt a new one replaces.
   tests/sdk/test_fixes.py::test_a_connection_attempt_given_up_leaves_no_task_waiting
17. A fatal connection error (an ERROR frame for the connection: abuse of its rates, a key or account refused)
   sets the state to FAILED without `notify_state`, so none of what FAILED does elsewhere happens: the messages
   awaiting an ACK are not failed (RTN7e), and every publish in flight waits until the client is closed; the
   channels stay attached (RTL3a). `_on_error_failing` enters FAILED through `notify_state`, then disposes the
   transport. tests/sdk/test_fixes.py::test_a_fatal_connection_error_fails_every_publish_in_flight_at_once
18. `close` returns while tasks its transports started still run: the handler of a rare frame (CLOSED, ERROR,
   DISCONNECTED, ATTACHED...: each gets a task) and the task a dispose starts to await the cancelled read loop. When
   the socket had already closed, nothing yields in between, and a loop closed right after `close` (a test's, or
   `asyncio.run`'s) destroys them pending: "Task was destroyed but it is pending!", or "coroutine
   '_cleanup_tasks' was never awaited". `_close_when_done` has `close` wait for them (at most
   `TRANSPORT_TASKS_WAIT_S`, then cancels them); `_read_frames` and `_dispose_kept` hold them. A handler so
   cancelled is no error (`_handled_unless_cancelled`).
   tests/sdk/test_fixes.py::test_close_returns_after_the_tasks_its_transport_started_are_done
19. A client closed while its token is being renewed opens again once the auth callback answers, and stays open
   for good: a renewal the server asked for (AUTH) tells the connection of the new token, which reconnects it
   (RTC8c, meant for a user's `authorize` on a closed client), and a token error's (40142) retries at once.
   `_authorize_when_necessary` does not tell a connection closed meanwhile; `_notify_unless_closed` ignores any
   change out of CLOSING or CLOSED but to CLOSED or FAILED, which only a handler started before `close` asks for.
   tests/sdk/test_fixes.py::test_a_token_renewed_while_the_client_closes_does_not_reopen_it
20. A retry timer started while another runs (a second DISCONNECTED before the first one's retry, the connection
   restored meanwhile by a token renewal) replaces it without cancelling it, so `close` cancels only the last: the
   first fires later and opens the closed client, which then retries for good. `_retry_timer_replacing` cancels the
   timer it replaces. tests/sdk/test_fixes.py::test_close_cancels_a_retry_timer_another_replaced
21. Every REST request goes through httpx, about half the CPU of a history read (its models, httpcore's pool,
   anyio), and an agent reads history twice a run (11% of its CPU at 200 sessions). `rest_reads` sends a GET on
   keep-alive HTTP/1.1 connections of the client's own (h11 on asyncio streams) and leaves the rest to the SDK: an
   error status, a failure, other methods, a client with a proxy configured. tests/sdk/test_rest_reads.py

The replacements are class-level, so they reach clients built before `adopt`. A client handed over as soon as it
is built (before the event loop runs its first connection attempt) connects with all of them. One that connected
before has none of them for that first connection: on a port other than 80/443 it never connected (1), and until
it next connects it has no `maxInboundRate` (3), so it is paced at Ably's 50 msg/s.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import ssl
import urllib.parse
from collections.abc import Callable
from typing import Any

import ably
import httpx
from ably import AblyRealtime
from ably.http import http as ably_http
from ably.http.httputils import HttpUtils
from ably.realtime import channel as realtime_channel
from ably.realtime import connectionmanager
from ably.realtime.channel import Channels
from ably.rest.auth import Auth
from ably.transport import websockettransport
from ably.transport.websockettransport import ProtocolMessageAction
from ably.types.connectiondetails import ConnectionDetails
from ably.types.connectionstate import ConnectionState
from ably.types.operations import PublishResult
from ably.types.tokendetails import TokenDetails
from ably.util.eventemitter import EventEmitter
from ably.util.exceptions import AblyException
from ably.util.helper import is_token_error, unix_time_ms
from websockets.asyncio.messages import Assembler
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK
from websockets.frames import Frame, Opcode

from ..errors import ConfigurationError, UnsupportedSdkError
from . import outbox, rest_reads

log = logging.getLogger(__name__)
_MODULES_WITH_TIMERS = (realtime_channel, connectionmanager, websockettransport)  # each imported `Timer` by name
SUPPORTED_VERSIONS = ("3.1.",)  # the versions whose code these replacements were written against
_ADOPTED = "_langchain_ably_transport_adopted"


def check_version(version: str | None = None) -> None:
    """Raise `UnsupportedSdkError` unless ably-python's version is one the replacements were checked against."""
    version = version or ably.lib_version
    if not version.startswith(SUPPORTED_VERSIONS):
        raise UnsupportedSdkError(
            f"ably-python {version} is installed; langchain-ably-transport works around the defects of "
            f"{', '.join(v + 'x' for v in SUPPORTED_VERSIONS)} only: pip install 'ably>=3.1.4,<3.2'")


def install() -> None:
    """Install the class-level replacements once; idempotent."""
    check_version()
    transport = websockettransport.WebSocketTransport
    if transport.connect is not _connect_with_port:
        transport.connect = _connect_with_port  # type: ignore[method-assign]
        transport.close = _close_if_open  # type: ignore[method-assign]
        transport.ws_read_loop = _read_frames  # type: ignore[method-assign]
        transport.on_activity = _note_activity  # type: ignore[method-assign]
        transport.dispose = _dispose_kept  # type: ignore[method-assign]
    if not getattr(ConnectionDetails.from_dict, "keeps_inbound_rate", False):
        ConnectionDetails.from_dict = _details_with_inbound_rate(ConnectionDetails.from_dict)  # type: ignore
    outbox.install()
    rest_reads.install()
    if Auth._Auth__authorize_when_necessary is not _authorize_when_necessary:  # type: ignore[attr-defined]
        Auth._Auth__authorize_when_necessary = _authorize_when_necessary  # type: ignore[attr-defined]
    if not getattr(EventEmitter.off, "forgets", False):
        EventEmitter.off = _off_and_forget(EventEmitter.off)  # type: ignore[method-assign]
    if not getattr(Auth.request_token, "names_client", False):
        Auth.request_token = _request_token_for_client(Auth.request_token)  # type: ignore[method-assign]
    if not isinstance(ably_http.httpx, _HttpxSharingTls):
        ably_http.httpx = _HttpxSharingTls(ably_http.httpx)  # type: ignore[assignment]
    for module in _MODULES_WITH_TIMERS:
        module.Timer = _LoopTimer  # type: ignore[attr-defined]
    if not getattr(Channels.release, "unlinks", False):
        Channels.release = _release_unlinked(Channels.release)  # type: ignore[method-assign]
    if not getattr(Assembler.put, "handles_in_place", False):
        Assembler.put = _put_or_handle(Assembler.put)  # type: ignore[method-assign]
    manager = connectionmanager.ConnectionManager
    if not getattr(manager.start_connect, "supersedes", False):
        manager.start_connect = _connect_superseding(manager.start_connect)  # type: ignore[method-assign]
    if not getattr(manager.notify_state, "stays_closed", False):
        manager.notify_state = _notify_unless_closed(manager.notify_state)  # type: ignore[method-assign]
    if not getattr(manager.start_retry_timer, "replaces", False):
        manager.start_retry_timer = _retry_timer_replacing(manager.start_retry_timer)  # type: ignore[method-assign]
    if not getattr(manager.on_error, "fails_waiting", False):
        manager.on_error = _on_error_failing(manager.on_error)  # type: ignore[method-assign]
    if not getattr(AblyRealtime.close, "waits_for_transport_tasks", False):
        AblyRealtime.close = _close_when_done(AblyRealtime.close)  # type: ignore[method-assign]


def installed() -> bool:
    """Whether `install` has run in this process."""
    return (websockettransport.WebSocketTransport.connect is _connect_with_port and outbox.installed()
            and getattr(Auth.request_token, "names_client", False) and realtime_channel.Timer is _LoopTimer
            and rest_reads.installed())


def adopt(client: AblyRealtime) -> AblyRealtime:
    """Make `client` one the package can rely on: the replacements installed, and a key over plain HTTP refused
    (2) with how to build a client that works. Idempotent; returns `client`."""
    if getattr(client, _ADOPTED, False):
        return client
    install()
    options = client.options
    if not options.tls and client.auth.auth_mechanism == Auth.Method.BASIC:
        raise ConfigurationError(
            "This AblyRealtime sends its API key over plain HTTP, which ably-python refuses for history (40103): "
            "build it with AblyRealtime(**client_options(key, endpoint)), or pass use_token_auth=True")
    setattr(client, _ADOPTED, True)
    return client


# --- the class-level replacements ------------------------------------------------------------------------


def websocket_url(tls: bool, host: str, port: int | None, params: dict[str, Any]) -> str:
    scheme = "wss" if tls else "ws"
    netloc = host if port in (None, 443 if tls else 80) else f"{host}:{port}"
    return f"{scheme}://{netloc}?{urllib.parse.urlencode(params)}"


def _connect_with_port(self: websockettransport.WebSocketTransport) -> None:
    """`WebSocketTransport.connect` with the configured port in the URL (1).

    The host itself is left alone: on CONNECTED the SDK compares it with the primary host (RTN17e).
    """
    options = self.options
    port = options.tls_port if options.tls else options.port
    url = websocket_url(options.tls, self.host, port, self.params)
    self.ws_connect_task = asyncio.create_task(self.ws_connect(url, HttpUtils.default_headers()))
    self.ws_connect_task.add_done_callback(self.on_ws_connect_done)


async def _close_if_open(self: websockettransport.WebSocketTransport) -> None:
    """`WebSocketTransport.close`, doing nothing for a socket that never opened or has closed (8): 3.1.4 raises
    there (`Exception()`, or websockets' `ConnectionClosed`), in a task the connection manager does not await."""
    if self.websocket is not None:
        with contextlib.suppress(ConnectionClosed):
            await self.send({"action": ProtocolMessageAction.CLOSE})


_HANDLED_IN_THE_LOOP = frozenset({ProtocolMessageAction.ACK, ProtocolMessageAction.NACK, ProtocolMessageAction.MESSAGE,
                                  ProtocolMessageAction.PRESENCE, ProtocolMessageAction.HEARTBEAT})
_SDK_TRANSPORT_LOG = logging.getLogger(websockettransport.__name__)
_IN_PLACE = "_langchain_ably_transport_in_place"
_TRANSPORT_TASKS = "_langchain_ably_transport_transport_tasks"
TRANSPORT_TASKS_WAIT_S = 1.0  # how long a close waits for its transports' tasks before cancelling them


async def _read_frames(self: websockettransport.WebSocketTransport) -> None:
    """`WebSocketTransport.ws_read_loop`, handling the frequent frames in the loop (9). Any other frame gets its
    task, as in 3.1.4, and the loop lets it take its first step before reading on, so frames are handled in the
    order they came, as tasks taking their first steps in creation order had them."""
    if not self.websocket:
        raise AblyException("ws_read_loop started with no websocket", 500, 50000)
    assembler = getattr(self.websocket, "recv_messages", None)
    if isinstance(assembler, Assembler):  # websockets' asyncio implementation, which ably-python 3.1 uses
        assembler.__dict__[_IN_PLACE] = functools.partial(_handle_in_place, self)
    try:
        async for raw in self.websocket:
            try:
                frame = self.decode_raw_websocket_frame(raw)
                if frame.get("action") in _HANDLED_IN_THE_LOOP:
                    _handle_frequent_frame(self, frame)
                    continue
                task = asyncio.create_task(self.on_protocol_message(frame))
                task.add_done_callback(functools.partial(_handled_unless_cancelled, self))
                _keep_task(self.connection_manager, task)
                await asyncio.sleep(0)
            except Exception:
                log.exception("a frame from Ably could not be handled")
    except (ConnectionClosedOK, GeneratorExit):
        return


def _handled_unless_cancelled(self: websockettransport.WebSocketTransport, task: asyncio.Task[Any]) -> None:
    """3.1's `on_protcol_message_handled`, for a handler that was not cancelled (by `close`, 18): its
    `task.exception()` raises a cancelled task's `CancelledError`, which asyncio printed as "Exception in callback"."""
    if not task.cancelled():
        self.on_protcol_message_handled(task)


def _handle_frequent_frame(self: websockettransport.WebSocketTransport, frame: dict[str, Any]) -> None:
    """What 3.1's `on_protocol_message` does with an ACK, NACK, MESSAGE, PRESENCE or HEARTBEAT frame, which never
    awaits (9), less its debug line's f-string: the repr of every frame, made whether debug logging is on or not
    (5 us for an append's echo)."""
    if _SDK_TRANSPORT_LOG.isEnabledFor(logging.DEBUG):
        _SDK_TRANSPORT_LOG.debug("WebSocketTransport.on_protocol_message(): received protocol message: %s", frame)
    self.on_activity()
    action, manager = frame.get("action"), self.connection_manager
    if action == ProtocolMessageAction.ACK:
        res = frame.get("res")
        manager.on_ack(frame.get("msgSerial", 0), frame.get("count", 1),
                       None if res is None else [PublishResult.from_dict(result) for result in res])
    elif action == ProtocolMessageAction.NACK:
        error = frame.get("error")
        manager.on_nack(frame.get("msgSerial", 0), frame.get("count", 1),
                        AblyException.from_dict(error) if error else None)
    elif action == ProtocolMessageAction.HEARTBEAT:
        manager.on_heartbeat(frame.get("id"))
    else:
        manager.on_channel_message(frame)


def _put_or_handle(put: Callable[[Assembler, Frame], None]) -> Callable[[Assembler, Frame], None]:
    """`Assembler.put`, for an ably-python transport's socket, handling the frame at once when it can (15)."""

    def put_or_handle(self: Assembler, frame: Frame) -> None:
        handle = self.__dict__.get(_IN_PLACE)
        if handle is None or not _read_loop_idle(self) or not handle(frame):
            put(self, frame)

    put_or_handle.handles_in_place = True  # type: ignore[attr-defined]
    return put_or_handle


def _read_loop_idle(assembler: Assembler) -> bool:
    """The read loop waits for a frame and none is queued: one handled now comes after everything before it."""
    frames = assembler.frames
    waiting = frames.get_waiter
    return not frames.queue and waiting is not None and not waiting.done() and not assembler.closed


def _handle_in_place(self: websockettransport.WebSocketTransport, frame: Frame) -> bool:
    """Handle a whole ACK, NACK, MESSAGE, PRESENCE or HEARTBEAT frame now, in the socket's callback (15); False
    leaves the frame to the read loop (any other frame, a fragment, or one that cannot be decoded)."""
    if not frame.fin or frame.opcode not in (Opcode.TEXT, Opcode.BINARY):
        return False
    try:
        decoded = self.decode_raw_websocket_frame(frame.data if frame.opcode is Opcode.BINARY else
                                                  bytes(frame.data).decode())
    except Exception:
        return False  # the read loop meets it, and logs it as it logs every frame it cannot handle
    if decoded.get("action") not in _HANDLED_IN_THE_LOOP:
        return False
    try:
        _handle_frequent_frame(self, decoded)
    except Exception:
        log.exception("a frame from Ably could not be handled")
    return True


def _connect_superseding(start_connect: Any) -> Any:
    """`ConnectionManager.start_connect`, cancelling the attempt it replaces if that still waits (16): its wait ends
    only when its transport says connected or failed, and a refused or timed-out one says neither."""

    def start_connect_superseding(self: connectionmanager.ConnectionManager) -> None:
        replaced = self.connect_base_task
        if replaced is not None and not replaced.done() and replaced is not asyncio.current_task():
            replaced.cancel()  # 3.1's `try_host` returns quietly on cancellation
        start_connect(self)

    start_connect_superseding.supersedes = True  # type: ignore[attr-defined]
    return start_connect_superseding


def _retry_timer_replacing(start_retry_timer: Any) -> Any:
    """`ConnectionManager.start_retry_timer`, cancelling the timer it replaces (20)."""

    def start_replacing(self: connectionmanager.ConnectionManager, interval: int) -> None:
        self.cancel_retry_timer()
        start_retry_timer(self, interval)

    start_replacing.replaces = True  # type: ignore[attr-defined]
    return start_replacing


def _on_error_failing(on_error: Any) -> Any:
    """`ConnectionManager.on_error`, a fatal connection error entering FAILED through `notify_state`, as every other
    way there does (17): 3.1.4 sets the state alone, so the messages awaiting an ACK wait for good and the channels
    stay attached. A channel's error (RTN15i) and a token error (RTN14b) are handled as before."""

    async def on_error_failing(self: connectionmanager.ConnectionManager, msg: dict[str, Any],
                               exception: AblyException) -> None:
        if msg.get("channel") is not None or is_token_error(exception):
            await on_error(self, msg, exception)
            return
        transport = self.transport
        self.notify_state(ConnectionState.FAILED, exception)  # fails what waits (RTN7e) and the channels (RTL3a)
        if transport is not None:
            await transport.dispose()

    on_error_failing.fails_waiting = True  # type: ignore[attr-defined]
    return on_error_failing


def _keep_task(manager: connectionmanager.ConnectionManager, task: asyncio.Task[Any]) -> None:
    """Hold a task a transport started (a frame's handler, a dispose's clean-up) until it is done, for `close` to
    wait for (18)."""
    tasks: set[asyncio.Task[Any]] = manager.__dict__.setdefault(_TRANSPORT_TASKS, set())
    tasks.add(task)
    task.add_done_callback(tasks.discard)


async def _dispose_kept(self: websockettransport.WebSocketTransport) -> None:
    """`WebSocketTransport.dispose`, whose task awaiting the cancelled read loop is held for `close` too (18)."""
    self.is_disposed = True
    cancelled = [task for task in (self.read_loop, self.ws_connect_task) if task is not None]
    for task in cancelled:
        task.cancel()
    if self.idle_timer is not None:
        self.idle_timer.cancel()
    if cancelled:  # awaited in a task of its own: dispose may be called from within one of them
        _keep_task(self.connection_manager, asyncio.create_task(self._cleanup_tasks(cancelled)))
    if self.websocket is not None:
        with contextlib.suppress(asyncio.CancelledError):
            await self.websocket.close()


def _close_when_done(close: Any) -> Any:
    """`AblyRealtime.close`, returning once the tasks its transports started are done (18)."""

    async def close_when_done(self: AblyRealtime) -> None:
        await close(self)
        await _transport_tasks_done(self.connection.connection_manager)

    close_when_done.waits_for_transport_tasks = True  # type: ignore[attr-defined]
    return close_when_done


async def _transport_tasks_done(manager: connectionmanager.ConnectionManager) -> None:
    """Wait up to `TRANSPORT_TASKS_WAIT_S` for the transports' tasks, then cancel what still runs and let it end."""
    current = asyncio.current_task()
    running = [task for task in manager.__dict__.get(_TRANSPORT_TASKS, ()) if task is not current]
    if not running:
        return
    _, late = await asyncio.wait(running, timeout=TRANSPORT_TASKS_WAIT_S)
    for task in late:
        task.cancel()
    if late:
        await asyncio.wait(late, timeout=TRANSPORT_TASKS_WAIT_S)


def _note_activity(self: websockettransport.WebSocketTransport) -> None:
    """`WebSocketTransport.on_activity`, starting the idle timer only when none runs (10): on expiry, 3.1's
    `on_idle_timer_expire` disconnects if the connection has been idle that long, else waits the time left."""
    if not self.max_idle_interval:
        return
    self.last_activity = unix_time_ms()
    if self.idle_timer is None:
        self.set_idle_timer(self.max_idle_interval + 100)


def _details_with_inbound_rate(from_dict: Any) -> Any:
    """`ConnectionDetails.from_dict`, keeping `maxInboundRate` as `max_inbound_rate` (3)."""

    def parse(json_dict: dict[str, Any]) -> ConnectionDetails:
        details = from_dict(json_dict)
        details.max_inbound_rate = (json_dict or {}).get("maxInboundRate")
        return details

    parse.keeps_inbound_rate = True  # type: ignore[attr-defined]
    return staticmethod(parse)


async def _authorize_when_necessary(self: Auth, token_params: Any = None, auth_options: Any = None,
                                    force: bool = False) -> Any:
    """`Auth.__authorize_when_necessary`, telling the realtime connection only of a new token (6), and not if it was
    closed while the token was requested (19)."""
    previous = self._Auth__token_details  # type: ignore[attr-defined]
    was_closed = self.ably._is_realtime and self.ably.connection.state in _CLOSING_OR_CLOSED
    token_details = await self._ensure_valid_auth_credentials(token_params, auth_options, force)
    closed_meanwhile = self.ably._is_realtime and self.ably.connection.state in _CLOSING_OR_CLOSED and not was_closed
    if self.ably._is_realtime and (force or token_details is not previous) and not closed_meanwhile:
        await self.ably.connection.connection_manager.on_auth_updated(token_details)
    return token_details


_CLOSING_OR_CLOSED = (ConnectionState.CLOSING, ConnectionState.CLOSED)


def _notify_unless_closed(notify_state: Any) -> Any:
    """`ConnectionManager.notify_state`, ignoring a change out of CLOSING or CLOSED but to CLOSED or FAILED (19)."""

    def notify_unless_closed(self: connectionmanager.ConnectionManager, state: ConnectionState,
                             reason: AblyException | None = None, retry_immediately: bool | None = None) -> None:
        if self.state in _CLOSING_OR_CLOSED and state not in (ConnectionState.CLOSED, ConnectionState.FAILED):
            log.debug("a %s the client's close overtook is ignored: it stays %s", state, self.state)
            return
        notify_state(self, state, reason, retry_immediately)

    notify_unless_closed.stays_closed = True  # type: ignore[attr-defined]
    return notify_unless_closed


def _off_and_forget(off: Any) -> Any:
    """`EventEmitter.off`, then the removed listener's entry dropped (7)."""

    def off_and_forget(self: EventEmitter, *args: Any) -> None:
        off(self, *args)
        wrapped = self._EventEmitter__wrapped_listeners  # type: ignore[attr-defined]
        if args and wrapped.get(args[-1], False) is None:
            del wrapped[args[-1]]

    off_and_forget.forgets = True  # type: ignore[attr-defined]
    return off_and_forget


def _request_token_for_client(request_token: Any) -> Any:
    """`Auth.request_token` for the client's own `client_id` (5): asked for in the token request, and assumed of a
    token string (which says nothing of it). The server still checks the token: CONNECTED names the clientId it
    granted, and the SDK refuses a mismatch (40102)."""

    async def request_for_client(self: Auth, token_params: dict[str, Any] | None = None, **auth_options: Any) -> Any:
        client_id = self.client_id or self.auth_options.client_id
        if client_id:
            token_params = {"client_id": client_id, **(token_params or {})}
        details = await request_token(self, token_params, **auth_options)
        if not client_id or details.client_id is not None:
            return details
        return TokenDetails(token=details.token, expires=details.expires, issued=details.issued,
                            capability=dict(details.capability), client_id=client_id)

    request_for_client.names_client = True  # type: ignore[attr-defined]
    return request_for_client


class _HttpxSharingTls:
    """`httpx` as ably-python's `Http` sees it (11): its `AsyncClient`s verify with one SSL context, made on first
    use as httpx makes its default one, instead of each loading the CA bundle again. Everything else is httpx's."""

    def __init__(self, module: Any) -> None:
        self._module = module
        self._context: ssl.SSLContext | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)

    def AsyncClient(self, *args: Any, **kwargs: Any) -> Any:  # named as the httpx class it stands in for
        if "verify" not in kwargs:
            if self._context is None:
                self._context = self._module.create_ssl_context()
            kwargs["verify"] = self._context
        return _AcyclicAsyncClient(*args, **kwargs)


class _AcyclicAsyncClient(httpx.AsyncClient):
    """httpx's `AsyncClient`, but a response read in full keeps its bytes as its stream, not a stream bound to the
    response (14): the response is then freed when the SDK is done with it, not by the collector. It holds the
    client's kept connections for reads (21), closed with it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reads = rest_reads.KeepAliveConnections.for_client(kwargs.get("verify"))

    async def aclose(self) -> None:
        if self.reads is not None:
            self.reads.close()
        await super().aclose()

    async def send(self, request: httpx.Request, *args: Any, stream: bool = False, **kwargs: Any) -> httpx.Response:
        response = await super().send(request, *args, stream=stream, **kwargs)
        if not stream:
            response.stream = httpx.ByteStream(response.content)
        return response


class _LoopTimer:
    """ably-python's `Timer` (12): calls `callback` after `timeout` ms, a coroutine function in a task of its own,
    unless cancelled first; waiting is a `call_later` handle, which cancelling leaves in no cycle."""

    def __init__(self, timeout: float, callback: Callable[[], Any]) -> None:
        self._callback = callback
        self._handle: asyncio.TimerHandle | None = asyncio.get_running_loop().call_later(timeout / 1000, self._fire)
        self._task: asyncio.Task[Any] | None = None

    def _fire(self) -> None:
        self._handle = None
        if asyncio.iscoroutinefunction(self._callback):
            self._task = asyncio.ensure_future(self._callback())
        else:
            self._callback()

    def cancel(self) -> None:
        """Stop the wait, or the coroutine callback it started, as cancelling 3.1's task would."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._task is not None:
            self._task.cancel()


def _release_unlinked(release: Any) -> Any:
    """`Channels.release`, then the released channel's presence and annotations no longer pointing back at it (13),
    so that dropping the channel frees it and everything it holds at once."""

    def release_unlinked(self: Channels, name: str) -> None:
        channel = self._Channels__all.get(name)  # type: ignore[attr-defined]
        release(self, name)
        if channel is None or name in self._Channels__all:  # type: ignore[attr-defined]
            return
        channel.presence.channel = None
        annotations = channel._Channel__annotations
        annotations._RealtimeAnnotations__channel = None
        annotations._RealtimeAnnotations__rest_annotations._RestAnnotations__channel = None

    release_unlinked.unlinks = True  # type: ignore[attr-defined]
    return release_unlinked
