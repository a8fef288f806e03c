"""`tokenopt analyze`: what every lever would save on what an app sent, priced per request."""

from __future__ import annotations

import argparse
import logging
import math
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from langchain_tokenopt.cli.commands._options import (
    add_command,
    add_output_options,
    add_skip_invalid_option,
    print_result,
    report_skipped,
)
from langchain_tokenopt.cli.transcript import InputError

if TYPE_CHECKING:
    from langchain_tokenopt.analysis import Report
    from langchain_tokenopt.cli.progress import AnalyzeProgress

_FORMATS = ("auto", "requests", "conversation", "langsmith")
#: Inputs at least this big (or of unknown size, stdin) get a progress bar on a terminal.
PROGRESS_MIN_BYTES = 1_000_000
_SAMPLES = ("conversation", "requests")


def register(subparsers: Any) -> None:
    parser = add_command(
        subparsers,
        "analyze",
        help="what caching, tool binding, history, dedup, compression and routing would save",
        description=(
            "Replay what an app sent through every lever (cache, tool binding, summarizing "
            "history, de-duplication, compression, routing), each alone and all together, "
            "and print the tokens and dollars each would save. Each request is priced with "
            "its own model, net of the provider's prefix caching. LOG is JSON Lines or a "
            "JSON array of chat-completions request bodies, a conversation (OpenAI or "
            "LangChain messages), a LangSmith runs export, a folder or a glob of them, or "
            "'-' for stdin; without it the built-in sample conversation is analyzed."
        ),
        handler=run,
    )
    parser.add_argument(
        "paths", nargs="*", metavar="LOG", help="files, folders or globs; '-' is stdin"
    )
    parser.add_argument(
        "--sample",
        choices=_SAMPLES,
        default=None,
        help="analyze a shipped sample: 'conversation' (the default without LOG) or "
        "'requests' (a request log with mixed models and tools)",
    )
    parser.add_argument("--format", choices=_FORMATS, default="auto", help="input format (auto)")
    parser.add_argument(
        "--model",
        default="gpt-4o",
        help="model for records that name none (default: gpt-4o); a record's own model wins",
    )
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
    parser.add_argument(
        "--compression",
        choices=("lossless", "light", "aggressive"),
        default="lossless",
        help="compression level (lossless)",
    )
    parser.add_argument(
        "--budget",
        default=None,
        metavar="USD",
        help="also report what this budget would have stopped",
    )
    parser.add_argument(
        "--html",
        default=None,
        metavar="PATH",
        help="also write the report as one self-contained HTML page with charts",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="processes to analyze in, partitioned by conversation; same report (default: 1)",
    )
    parser.add_argument(
        "--quiet", action="store_true", help="no progress bar on stderr (shown on a terminal)"
    )
    add_skip_invalid_option(parser, "records")
    add_output_options(parser, plot=False)


def _budget(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise InputError(
            f"--budget must be an amount of dollars such as 25 or 0.5, not {text!r}"
        ) from None
    if not value.is_finite() or value <= 0:
        raise InputError(f"--budget must be a positive amount of dollars, not {text!r}")
    return value


def run(args: argparse.Namespace) -> int:
    # Imported here so `tokenopt count` does not pay for the levers.

    if args.max_tokens < 16:
        raise InputError(f"--max-tokens must be at least 16, not {args.max_tokens}")
    if not 0 < args.similarity <= 1 or math.isnan(args.similarity):
        raise InputError(f"--similarity must be in (0, 1], not {args.similarity}")
    if args.jobs < 1:
        raise InputError(f"--jobs must be at least 1, not {args.jobs}")
    if args.sample is not None and args.paths:
        raise InputError("give either LOG files or --sample, not both")
    budget = _budget(args.budget)
    html_target = _html_path(args.html)
    # The replay folds one summarizing history per conversation of the log; its warnings
    # about a turn too big for --max-tokens describe the replay, not the user's app.
    history_log = logging.getLogger("langchain_tokenopt.chat_history")
    level = history_log.level
    history_log.setLevel(logging.ERROR)
    try:
        return _analyze(args, budget, html_target)
    finally:  # the command may run inside a larger process (tests, notebooks)
        history_log.setLevel(level)


def _analyze(args: argparse.Namespace, budget: Decimal | None, html_target: Path | None) -> int:
    from langchain_tokenopt.analysis import LogReader
    from langchain_tokenopt.cli.progress import AnalyzeProgress
    from langchain_tokenopt.compression import CompressionLevel

    sample = args.sample if args.sample is not None or args.paths else "conversation"
    assert args.compression in get_args(CompressionLevel)
    try:
        size = LogReader(args.paths, sample=sample).size_bytes() if not args.quiet else 0
        small = size is not None and size < PROGRESS_MIN_BYTES
        with AnalyzeProgress(size, quiet=args.quiet or small) as progress:
            report = _run_analysis(args, sample, budget, progress)
    except (TypeError, ValueError) as exc:  # InvalidRecordError and friends name the input
        raise InputError(str(exc)) from exc
    report_skipped(report.skipped_examples if report.skipped else [], total=report.skipped)
    if report.requests == 0:
        raise InputError("no model calls found in the input")
    if html_target is not None:
        _write_html(report.to_dict(), html_target)
    print_result(report, args)
    return 0


def _run_analysis(
    args: argparse.Namespace,
    sample: str | None,
    budget: Decimal | None,
    progress: AnalyzeProgress,
) -> Report:
    from langchain_tokenopt.analysis import analyze_log

    def advance(bytes_read: int, requests: int) -> None:
        progress.advance(bytes_read=bytes_read, requests=requests)

    return analyze_log(
        args.paths,
        sample=sample,
        format=args.format,
        skip_invalid=args.skip_invalid,
        default_model=args.model,
        max_tokens=args.max_tokens,
        similarity=args.similarity,
        compression=args.compression,
        budget_usd=budget,
        jobs=args.jobs,
        progress=advance if progress.enabled else None,
    )


def _html_path(path: str | None) -> Path | None:
    """Where `--html PATH` will write, checked before the (long) analysis runs."""
    if path is None:
        return None
    target = Path(path)
    if target.is_dir():
        raise InputError(f"--html {path!r} is a folder: give a file name such as report.html")
    if not target.parent.is_dir():
        raise InputError(f"--html {path!r}: the folder {str(target.parent)!r} does not exist")
    return target


def _write_html(report: dict[str, Any], target: Path) -> None:
    from langchain_tokenopt.cli.html_report import render_html

    try:
        target.write_text(render_html(report), encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write {str(target)!r}: {exc.strerror or exc}") from exc
