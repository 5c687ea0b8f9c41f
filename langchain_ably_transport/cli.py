"""The `langchain-ably-transport` command: `devserver`, `tail`, and `local` (the embedded default's server)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .errors import AblyTransportError


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="langchain-ably-transport")
    commands = parser.add_subparsers(dest="command", required=True)
    devserver = commands.add_parser("devserver", help="run the local Ably-compatible dev server")
    from .devserver import cli as devserver_cli

    devserver_cli.add_arguments(devserver)
    _add_tail_arguments(commands.add_parser("tail", help="render a session in the terminal: history, then live"))
    local_parser = commands.add_parser("local", help="the local dev server that ABLY_ENDPOINT=local runs on")
    local_parser.add_argument("action", choices=("status", "start", "stop"),
                              help="status: print where it runs; start: start it if it is not running; stop: stop it")
    args = parser.parse_args(argv)
    try:
        _run(args)
    except AblyTransportError as error:  # a user's mistake: one line, no traceback
        sys.exit(f"{parser.prog} {args.command}: {error}")


def _run(args: argparse.Namespace) -> None:
    if args.command == "devserver":
        from .devserver import cli as devserver_cli

        devserver_cli.run(args)
    elif args.command == "tail":
        from . import tail

        sys.exit(tail.run(args.session, key=args.key, endpoint=args.endpoint, history_pages=args.history_pages,
                          follow=args.follow, as_json=args.json))
    else:
        _local(args.action)


def _local(action: str) -> None:
    from . import local

    if action == "start":
        local.local_server()
        return
    server = local.stop() if action == "stop" else local.running()
    verb = "stopped" if action == "stop" else "running"
    print(f"{verb}: {server.url} (pid {server.pid}, history in {server.data})" if server else "not running")


def _add_tail_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("session", help="the session (channel) name, e.g. conversations:42")
    parser.add_argument("--json", action="store_true", help="print one JSON record per line instead of text")
    parser.add_argument("--key", default=None, help="Ably API key (default: $ABLY_API_KEY)")
    parser.add_argument("--endpoint", default=None,
                        help="Ably endpoint, dev server URL, or 'local' (default: $ABLY_ENDPOINT)")
    parser.add_argument("--history-pages", type=int, default=None, metavar="N",
                        help="pages of 100 messages to hydrate from (default: all of the history)")
    parser.add_argument("--follow", action=argparse.BooleanOptionalAction, default=True,
                        help="keep following the session live (default); --no-follow prints the history and exits")


if __name__ == "__main__":
    main()
