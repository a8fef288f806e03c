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
import os
import sys
from collections.abc import Sequence
from importlib import metadata

from langchain_tokenopt.cli.commands import Handler, analyze, count, demo, report, router
from langchain_tokenopt.cli.transcript import InputError
from langchain_tokenopt.errors import TokenOptError

__all__ = ["DEBUG_VARIABLE", "EXIT_INTERNAL", "EXIT_USAGE", "build_parser", "main"]

#: Exit code for bad usage or input the command cannot read (argparse uses it too).
EXIT_USAGE = 2
#: Exit code for an error that is a bug of ours, not of the input.
EXIT_INTERNAL = 1
#: Exit code after Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130
#: Set to 1 to let unexpected errors show their traceback.
DEBUG_VARIABLE = "TOKENOPT_DEBUG"
#: The distribution whose version `tokenopt --version` prints.
DISTRIBUTION = "langchain-tokenopt"


def _version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    """The `tokenopt` parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="tokenopt",
        description="Spend fewer tokens, less money and less time in LangChain apps.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s ({DISTRIBUTION}) {_version()}"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in (analyze, count, report, demo, router):
        command.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run `tokenopt` with `argv` (default: sys.argv[1:]); returns the exit code.

    Input the command cannot read exits with 2 and one line naming it; any other error
    exits with 1 and one line asking for a report. No traceback reaches the user unless
    `TOKENOPT_DEBUG=1` is set.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2), already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return handler(args)
    except (InputError, TokenOptError) as exc:  # our errors say what to do: no traceback
        print(f"tokenopt {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"tokenopt {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        if os.environ.get(DEBUG_VARIABLE, "") not in ("", "0"):
            raise
        detail = str(exc).splitlines()[0][:300] if str(exc) else ""
        print(
            f"tokenopt {args.command}: internal error: {type(exc).__name__}: {detail} "
            "(a bug in langchain-tokenopt: please report this with the command you ran; "
            f"{DEBUG_VARIABLE}=1 shows the traceback)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
