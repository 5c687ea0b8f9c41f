"""The `langchain-ably-transport` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="langchain-ably-transport")
    commands = parser.add_subparsers(dest="command", required=True)
    devserver = commands.add_parser("devserver", help="run the local Ably-compatible dev server")
    from .devserver import cli as devserver_cli

    devserver_cli.add_arguments(devserver)
    _add_tail_arguments(commands.add_parser("tail", help="render a session in the terminal: history, then live"))
    args = parser.parse_args(argv)
    if args.command == "devserver":
        devserver_cli.run(args)
    elif args.command == "tail":
        from . import tail

        sys.exit(tail.run(args.session, key=args.key, endpoint=args.endpoint, history_pages=args.history_pages,
                          follow=args.follow, as_json=args.json))


def _add_tail_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("session", help="the session (channel) name, e.g. conversations:42")
    parser.add_argument("--json", action="store_true", help="print one JSON record per line instead of text")
    parser.add_argument("--key", default=None, help="Ably API key (default: $ABLY_API_KEY)")
    parser.add_argument("--endpoint", default=None, help="Ably endpoint or dev server URL (default: $ABLY_ENDPOINT)")
    parser.add_argument("--history-pages", type=int, default=None, metavar="N",
                        help="pages of 100 messages to hydrate from (default: all of the history)")
    parser.add_argument("--follow", action=argparse.BooleanOptionalAction, default=True,
                        help="keep following the session live (default); --no-follow prints the history and exits")


if __name__ == "__main__":
    main()
