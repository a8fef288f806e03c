"""The `tokenopt` command line: token counts and costs without writing Python.

This module builds the parser and dispatches; each subcommand lives in
`cli/commands/<name>.py` (its arguments and a handler `(args) -> exit code`), and
every command reads its input through `cli/transcript.py`.

Example:
    $ tokenopt analyze                      # what the package saves on a sample chat
    $ tokenopt analyze chat.json --model gpt-4o-mini --max-tokens 2000 --plot out.png
    $ tokenopt demo                         # an optimized chat app, offline
    $ tokenopt count notes.txt --model gpt-4o
    $ cat chat.json | tokenopt count - --model gpt-4o-mini --json
    $ tokenopt count --sample
    $ tokenopt router train traffic.csv -o scorer.json
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from langchain_tokenopt.cli.commands import Handler, analyze, count, demo, report, router
from langchain_tokenopt.cli.transcript import InputError
from langchain_tokenopt.errors import TokenOptError

__all__ = ["EXIT_USAGE", "build_parser", "main"]

#: Exit code for bad usage or input the command cannot read (argparse uses it too).
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    """The `tokenopt` parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="tokenopt",
        description="Spend fewer tokens, less money and less time in LangChain apps.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in (analyze, count, report, demo, router):
        command.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run `tokenopt` with `argv` (default: sys.argv[1:]); returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return handler(args)
    except (InputError, TokenOptError) as exc:  # our errors say what to do: no traceback
        print(f"tokenopt {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
