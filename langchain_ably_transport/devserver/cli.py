"""Command-line flags of the dev server, shared by `python -m ...devserver` and `langchain-ably-transport devserver`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import signal
import sqlite3
import sys
from collections.abc import Callable, Sequence

from .config import DEFAULT_KEY, ApiKey, Limits, ServerConfig

log = logging.getLogger(__name__)
COLLECTOR_THRESHOLDS = (100_000, 10, 10)  # Python's default is (700, 10, 10)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = Limits()
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port to bind; 0 picks a free one (default 8080)")
    parser.add_argument("--data", default="ably-dev.sqlite3",
                        help="SQLite file that keeps history across restarts; ':memory:' keeps nothing "
                             "(default ably-dev.sqlite3, in the working directory)")
    parser.add_argument("--key", action="append", dest="keys", metavar="APPID.KEYID:SECRET",
                        help=f"an API key the server accepts; repeatable (default {DEFAULT_KEY})")
    parser.add_argument("--mutable", action="append", metavar="NAMESPACE",
                        help="enable updates/deletes/appends only for this channel namespace; repeatable "
                             "(default: every channel, '*')")
    parser.add_argument("--max-message-size", type=int, default=defaults.max_message_size,
                        help="bytes per message, and per aggregate for appends (40009 beyond) "
                             f"(default {defaults.max_message_size})")
    parser.add_argument("--inbound-rate", type=float, default=defaults.inbound_rate,
                        help="messages/s a connection may publish (42911 beyond); 0 disables "
                             f"(default {defaults.inbound_rate:g})")
    parser.add_argument("--account-rate", type=float, default=defaults.account_rate,
                        help="messages/s all connections may publish together (42910 beyond); 0 disables "
                             f"(default {defaults.account_rate:g})")
    parser.add_argument("--protocol-rate", type=float, default=defaults.protocol_rate,
                        help="protocol messages/s a connection may send before it is closed (42924); 0 disables "
                             f"(default {defaults.protocol_rate:g})")
    parser.add_argument("--connection-state-ttl", type=float, default=defaults.connection_state_ttl_s,
                        help="seconds a dropped connection stays resumable "
                             f"(default {defaults.connection_state_ttl_s:g})")
    parser.add_argument("--presence-leave-delay", type=float, default=defaults.presence_leave_delay_s,
                        help="seconds after an abrupt disconnect before the connection's presence members leave "
                             f"(default {defaults.presence_leave_delay_s:g})")
    parser.add_argument("--max-idle-interval", type=float, default=defaults.max_idle_interval_s,
                        help=f"seconds between server heartbeats at most (default {defaults.max_idle_interval_s:g})")
    parser.add_argument("--client-timeout", type=float, default=defaults.client_timeout_s,
                        help="seconds a client may send nothing, not even a pong to a WebSocket ping, before its "
                             "socket is dropped as lost (resumable; presence leaves after the leave delay); "
                             f"0 disables (default {defaults.client_timeout_s:g})")
    parser.add_argument("--retention", type=float, default=None,
                        help="seconds of history to keep (Ably keeps 120 without a persistence rule); default: all")
    parser.add_argument("--append-rollup-window", type=int, default=defaults.append_rollup_window_ms,
                        help="ms over which appends to one message are rolled up, unless a client sets its own "
                             f"(default {defaults.append_rollup_window_ms})")
    parser.add_argument("--commit-interval", type=float, default=ServerConfig.commit_interval_ms,
                        help="ms a busy server waits after a commit before the next, so that publishes, their ACKs "
                             "and deliveries go in groups (a quiet server commits at once); 0 commits every "
                             f"event-loop turn (default {ServerConfig.commit_interval_ms:g})")
    parser.add_argument("--log-level", default="WARNING",
                        help="Python logging level of the server's log on stderr: DEBUG, INFO, WARNING, ERROR or "
                             "CRITICAL, any case (default WARNING)")
    parser.add_argument("--uvloop", action="store_true",
                        help="run the server on uvloop's event loop instead of asyncio's (needs uvloop: pip install "
                             "'langchain-ably-transport[uvloop]'); INFO logs the loop in use (default: asyncio's)")


def config_from(args: argparse.Namespace) -> ServerConfig:
    limits = Limits(
        max_message_size=args.max_message_size,
        inbound_rate=args.inbound_rate,
        account_rate=args.account_rate,
        protocol_rate=args.protocol_rate,
        connection_state_ttl_s=args.connection_state_ttl,
        presence_leave_delay_s=args.presence_leave_delay,
        max_idle_interval_s=args.max_idle_interval,
        client_timeout_s=args.client_timeout,
        retention_s=args.retention,
        append_rollup_window_ms=args.append_rollup_window,
    )
    return ServerConfig(
        keys=tuple(ApiKey.parse(k) for k in (args.keys or [DEFAULT_KEY])),
        data_path=args.data,
        limits=limits,
        mutable_namespaces=tuple(args.mutable or ["*"]),
        commit_interval_ms=args.commit_interval,
    )


def run(args: argparse.Namespace) -> None:
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = config_from(args)
    except ValueError as exc:
        sys.exit(f"devserver: {exc}")
    with asyncio.Runner(loop_factory=_uvloop_factory() if args.uvloop else None) as runner:
        runner.run(_serve(config, args.host, args.port))


def _uvloop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    try:
        import uvloop
    except ImportError:
        sys.exit("devserver: --uvloop needs uvloop, which is not installed: pip install uvloop "
                 "(or pip install 'langchain-ably-transport[uvloop]')")
    return uvloop.new_event_loop


async def _serve(config: ServerConfig, host: str, port: int) -> None:
    from .app import DevServer

    try:
        server = DevServer(config)
        url = await server.start(host, port)
    except (OSError, sqlite3.Error) as error:  # a port taken or not ours, a data file that cannot be opened
        sys.exit(f"devserver: cannot start on {host}:{port} with --data {config.data_path}: {error}")
    loop = asyncio.get_running_loop()
    log.info("serving %s on the %s.%s event loop", url, type(loop).__module__, type(loop).__qualname__)
    _keep_the_collector_off_the_heap()
    print(f"ready {url}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()


def _keep_the_collector_off_the_heap() -> None:
    """Started: what is loaded now lives as long as the server, and the server leaves little garbage in reference
    cycles, so its collector need not walk that heap again, nor run per 700 objects (docs/tuning.md advises agents
    the same). With Python's defaults, its full collections walked the whole heap for up to 230 ms, and every
    message through the server waited for them."""
    gc.freeze()
    gc.set_threshold(*COLLECTOR_THRESHOLDS)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="langchain-ably-transport devserver",
                                     description="Run the local Ably-compatible dev server.")
    add_arguments(parser)
    run(parser.parse_args(argv))
