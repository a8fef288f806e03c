"""`tokenopt analyze`: what summarizing history, caching, de-duplication and compression
would save on a logged conversation or request log."""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Any

from langchain_tokenopt.cli.commands._options import (
    add_command,
    add_model_option,
    add_output_options,
    add_skip_invalid_option,
    plot_path,
    print_result,
    report_skipped,
    save_plot,
)
from langchain_tokenopt.cli.transcript import InputError, read_input, read_transcript

#: Below this many model calls the progress bar is not worth showing.
PROGRESS_MIN_CALLS = 50


def register(subparsers: Any) -> None:
    parser = add_command(
        subparsers,
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
        handler=run,
    )
    parser.add_argument("transcript", nargs="?", default=None, help="file to analyze; '-' is stdin")
    add_model_option(parser, "gpt-4o", "model name")
    parser.add_argument(
        "--max-tokens",
        type=int,
        default=1000,
        metavar="N",
        help="token budget of the summarizing history per call (default: 1000)",
    )
    parser.add_argument(
        "--similarity",
        type=float,
        default=0.9,
        metavar="S",
        help="similarity at which messages are duplicates and requests cache hits (0.9)",
    )
    add_skip_invalid_option(parser, "messages, lines or requests")
    add_output_options(parser, plot=True)


def progress_bar(items: Any, total: int) -> Any:
    """A tqdm bar on stderr for long input when stderr is a terminal."""
    if total < PROGRESS_MIN_CALLS or not sys.stderr.isatty():
        return items
    try:
        tqdm = importlib.import_module("tqdm").tqdm
    except ImportError:  # the bar is a nicety
        return items
    return tqdm(items, total=total, desc="replaying", unit="call", file=sys.stderr, leave=False)


def run(args: argparse.Namespace) -> int:
    # Imported here so `tokenopt count` does not pay for the cache, history and dedup.
    from langchain_tokenopt.cli.analysis import analyze_transcript

    if args.max_tokens < 16:
        raise InputError(f"--max-tokens must be at least 16, not {args.max_tokens}")
    if not 0 < args.similarity <= 1:  # also refuses nan
        raise InputError(f"--similarity must be in (0, 1], not {args.similarity}")
    if args.plot:
        plot_path(args.plot)  # a bad --plot fails before the work, not after
    name, text = read_input(args.transcript, sample=args.transcript is None)
    try:
        transcript = read_transcript(text, name, skip_invalid=args.skip_invalid)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    report_skipped(transcript.skipped)
    try:
        result = analyze_transcript(
            transcript,
            model=args.model,
            max_tokens=args.max_tokens,
            dedup_threshold=args.similarity,
            cache_similarity=args.similarity,
            progress=progress_bar,
        )
    except (TypeError, ValueError) as exc:  # e.g. an unknown encoding for the model
        raise InputError(str(exc)) from exc
    print_result(result, args)
    save_plot(result.plot, args.plot)
    return 0
