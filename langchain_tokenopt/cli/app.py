"""The `tokenopt` command line: token counts and costs without writing Python.

This module only parses arguments, calls library code and prints. Each subcommand
is one `_add_<name>_parser(subparsers)` function that registers its arguments and
sets `handler` to a function `(args) -> exit code`; `main` dispatches.

Example:
    $ tokenopt analyze                      # what the package saves on a sample chat
    $ tokenopt analyze chat.json --model gpt-4o-mini --max-tokens 2000 --plot out.png
    $ tokenopt demo                         # an optimized chat app, offline
    $ tokenopt count notes.txt --model gpt-4o
    $ cat chat.json | tokenopt count - --model gpt-4o-mini --json
    $ tokenopt count --sample
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable, Sequence
from decimal import Decimal
from importlib import resources
from typing import Any

from langchain_tokenopt.core.pricing import price
from langchain_tokenopt.core.tokens import TokenCount, TokenCounter, parse_chat_transcript
from langchain_tokenopt.errors import MissingExtraError, TokenOptError, UnknownModelError

__all__ = ["build_parser", "main"]

#: Exit code for bad usage or input the command cannot read (argparse uses it too).
EXIT_USAGE = 2

#: The built-in sample conversation, shipped inside the package.
SAMPLE_CONVERSATION = "data/sample_conversation.json"

Handler = Callable[[argparse.Namespace], int]


class _InputError(Exception):
    """Input the command cannot read; the message names it."""


def build_parser() -> argparse.ArgumentParser:
    """The `tokenopt` parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="tokenopt",
        description="Spend fewer tokens, less money and less time in LangChain apps.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_analyze_parser(subparsers)
    _add_count_parser(subparsers)
    _add_report_parser(subparsers)
    _add_demo_parser(subparsers)
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
    except (_InputError, TokenOptError) as exc:  # our errors say what to do: no traceback
        print(f"tokenopt {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE


# ------------------------------------------------------------------------- count


def _add_count_parser(subparsers: Any) -> None:
    count = subparsers.add_parser(
        "count",
        help="tokens and input cost of a file or stdin",
        description=(
            "Count the tokens of a text file, or of a chat transcript (a JSON list of "
            "OpenAI-format messages, a request body with 'messages', or JSON Lines), "
            "and price them as input tokens."
        ),
    )
    count.add_argument("file", nargs="?", default="-", help="file to count; '-' is stdin")
    count.add_argument(
        "--sample",
        action="store_true",
        help="count the built-in sample conversation (a support chat with tool calls)",
    )
    count.add_argument("--model", default="gpt-4o", help="model name (default: gpt-4o)")
    count.add_argument("--encoding", default=None, help="tiktoken encoding (overrides --model)")
    count.add_argument("--json", action="store_true", help="print one JSON object")
    count.set_defaults(handler=_run_count)


def _read_input(file: str, *, sample: bool = False) -> tuple[str, str]:
    """(display name, text) of a file, stdin or the built-in sample conversation."""
    if sample:
        resource = resources.files("langchain_tokenopt").joinpath(SAMPLE_CONVERSATION)
        return f"<sample:{SAMPLE_CONVERSATION}>", resource.read_text(encoding="utf-8")
    if file == "-":
        name, data = "<stdin>", sys.stdin.buffer.read()
    else:
        name = file
        try:
            with open(file, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            raise _InputError(f"cannot read {file!r}: {exc.strerror or exc}") from exc
    try:
        return name, data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _InputError(f"{name!r} is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc


def _input_cost(model: str, tokens: int) -> Decimal | None:
    try:
        return price(model, {"input_tokens": tokens, "output_tokens": 0, "total_tokens": tokens})
    except UnknownModelError:
        return None


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _run_count(args: argparse.Namespace) -> int:
    if args.sample and args.file != "-":
        raise _InputError("give a FILE or --sample, not both")
    name, text = _read_input(args.file, sample=args.sample)
    try:
        counter = TokenCounter(args.model, encoding=args.encoding)
    except (TypeError, ValueError) as exc:
        raise _InputError(str(exc)) from exc
    transcript = parse_chat_transcript(text)
    tokens: TokenCount
    if transcript is not None:
        kind = "messages"
        tokens = counter.count_messages(transcript.messages, tools=transcript.tools or None)
    else:
        kind = "text"
        tokens = counter.count_text(text)
    cost = _input_cost(args.model, int(tokens))
    if args.json:
        report = {
            "file": name,
            "model": args.model,
            "encoding": counter.encoding_name,
            "kind": kind,
            "messages": len(transcript.messages) if transcript is not None else None,
            "tools": len(transcript.tools) if transcript is not None else None,
            "tokens": int(tokens),
            "approximate": tokens.approximate,
            "input_cost_usd": str(cost) if cost is not None else None,
        }
        print(json.dumps(report))
        return 0
    what = "text"
    if transcript is not None:
        what = f"chat transcript, {_plural(len(transcript.messages), 'message')}"
        if transcript.tools:
            what += f", {_plural(len(transcript.tools), 'tool')}"
    print(f"file:     {name} ({what})")
    print(f"model:    {args.model} ({counter.encoding_name})")
    print(f"tokens:   {int(tokens)}{' (approximate)' if tokens.approximate else ''}")
    if cost is None:
        print(f"cost:     unknown (no price known for model {args.model!r})")
    else:
        print(f"cost:     ${cost} as input")
    return 0


# ------------------------------------------------------------------------- report


def _add_report_parser(subparsers: Any) -> None:
    report = subparsers.add_parser(
        "report",
        help="usage and cost of recorded model calls (a UsageTracker JSONL file)",
        description=(
            "Aggregate the events written by UsageReport.to_jsonl(): totals, per model, "
            "per agent and per day, and the optimizations the numbers call for."
        ),
    )
    report.add_argument("events", help="JSON Lines file of usage events")
    report.add_argument(
        "--plot", metavar="PNG", default=None, help="also save a chart (needs the viz extra)"
    )
    report.add_argument(
        "--timezone", default="UTC", help="IANA timezone that decides days (default: UTC)"
    )
    report.add_argument("--json", action="store_true", help="print one JSON object")
    report.set_defaults(handler=_run_report)


def _run_report(args: argparse.Namespace) -> int:
    # Imported here so `tokenopt count` does not pay for the callback machinery.
    from langchain_tokenopt.analytics.report import UsageReport

    try:
        report = UsageReport.from_jsonl(args.events, timezone=args.timezone)
    except OSError as exc:
        raise _InputError(f"cannot read {args.events!r}: {exc.strerror or exc}") from exc
    except ValueError as exc:  # a bad line (named in the message) or timezone
        raise _InputError(str(exc)) from exc
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.render_table())
    if args.plot:
        try:
            report.plot(args.plot)
        except MissingExtraError as exc:
            raise _InputError(str(exc)) from exc
        print(f"chart saved to {args.plot}", file=sys.stderr)
    return 0


# ------------------------------------------------------------------------ analyze

#: Below this many model calls the progress bar is not worth showing.
PROGRESS_MIN_CALLS = 50


def _add_analyze_parser(subparsers: Any) -> None:
    analyze = subparsers.add_parser(
        "analyze",
        help="what summarizing history, caching, de-duplication and compression would save",
        description=(
            "Replay a conversation model call by model call through the summarizing "
            "history, the cache, de-duplication and compression, and print the tokens "
            "and dollars each would save for the chosen model. TRANSCRIPT is a JSON list "
            "of OpenAI or LangChain messages, an object with 'messages' (and 'tools'), "
            "JSON Lines with one message per line, or JSON Lines with one request body "
            "per line; without it a built-in sample conversation is analyzed."
        ),
    )
    analyze.add_argument(
        "transcript", nargs="?", default=None, help="file to analyze; '-' is stdin"
    )
    analyze.add_argument("--model", default="gpt-4o", help="model name (default: gpt-4o)")
    analyze.add_argument(
        "--max-tokens",
        type=int,
        default=1000,
        metavar="N",
        help="token budget of the summarizing history per call (default: 1000)",
    )
    analyze.add_argument(
        "--similarity",
        type=float,
        default=0.9,
        metavar="S",
        help="similarity at which messages are duplicates and requests cache hits (0.9)",
    )
    analyze.add_argument("--json", action="store_true", help="print one JSON object")
    analyze.add_argument(
        "--plot", metavar="PNG", default=None, help="also save a chart (needs the viz extra)"
    )
    analyze.set_defaults(handler=_run_analyze)


def _progress_bar(items: Any, total: int) -> Any:
    """A tqdm bar on stderr for long input when stderr is a terminal."""
    if total < PROGRESS_MIN_CALLS or not sys.stderr.isatty():
        return items
    try:
        tqdm = importlib.import_module("tqdm").tqdm
    except ImportError:  # the bar is a nicety
        return items
    return tqdm(items, total=total, desc="replaying", unit="call", file=sys.stderr, leave=False)


def _run_analyze(args: argparse.Namespace) -> int:
    from langchain_tokenopt.cli.analyze import analyze_transcript, read_transcript

    if args.max_tokens < 16:
        raise _InputError(f"--max-tokens must be at least 16, not {args.max_tokens}")
    if not 0 < args.similarity <= 1:
        raise _InputError(f"--similarity must be in (0, 1], not {args.similarity}")
    if args.transcript is None:
        name, text = _read_input("-", sample=True)
    else:
        name, text = _read_input(args.transcript)
    try:
        transcript = read_transcript(text, name)
    except ValueError as exc:
        raise _InputError(str(exc)) from exc
    try:
        result = analyze_transcript(
            transcript,
            model=args.model,
            max_tokens=args.max_tokens,
            dedup_threshold=args.similarity,
            cache_similarity=args.similarity,
            progress=_progress_bar,
        )
    except (TypeError, ValueError) as exc:  # e.g. an unknown encoding for the model
        raise _InputError(str(exc)) from exc
    print(json.dumps(result.to_dict()) if args.json else result.render_table())
    if args.plot:
        try:
            result.plot(args.plot)
        except MissingExtraError as exc:
            raise _InputError(str(exc)) from exc
        except OSError as exc:
            raise _InputError(f"cannot write {args.plot!r}: {exc.strerror or exc}") from exc
        print(f"chart saved to {args.plot}", file=sys.stderr)
    return 0


# --------------------------------------------------------------------------- demo


def _add_demo_parser(subparsers: Any) -> None:
    demo = subparsers.add_parser(
        "demo",
        help="an optimized chat app on a built-in offline model, and what it saved",
        description=(
            "Run scripted support sessions twice on a built-in offline model: as a plain "
            "app and with summarizing history, caching, compression and usage tracking; "
            "print what the optimized run saved. No network, no API key."
        ),
    )
    demo.add_argument(
        "--sessions", type=int, default=4, help="customer sessions to run (default: 4)"
    )
    demo.add_argument(
        "--model", default="gpt-4o-mini", help="model the tokens are priced as (gpt-4o-mini)"
    )
    demo.add_argument("--json", action="store_true", help="print one JSON object")
    demo.set_defaults(handler=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from langchain_tokenopt.cli.demo import run_demo

    if args.sessions < 1:
        raise _InputError(f"--sessions must be at least 1, not {args.sessions}")
    try:
        result = run_demo(sessions=args.sessions, model=args.model)
    except UnknownModelError as exc:
        raise _InputError(
            f"no price is known for model {args.model!r}: pick one with a "
            "known price, e.g. --model gpt-4o-mini"
        ) from exc
    print(json.dumps(result.to_dict()) if args.json else result.render_table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
