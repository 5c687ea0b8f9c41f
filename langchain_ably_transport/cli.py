"""The `langchain-ably-transport` command."""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="langchain-ably-transport")
    commands = parser.add_subparsers(dest="command", required=True)
    devserver = commands.add_parser("devserver", help="run the local Ably-compatible dev server")
    from .devserver import cli as devserver_cli

    devserver_cli.add_arguments(devserver)
    args = parser.parse_args(argv)
    if args.command == "devserver":
        devserver_cli.run(args)


if __name__ == "__main__":
    main()
