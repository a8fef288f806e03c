"""`tokenopt report`: usage and cost of recorded model calls (a UsageTracker JSONL file)."""

from __future__ import annotations

import argparse
from typing import Any

from langchain_tokenopt.cli.commands._options import (
    add_command,
    add_output_options,
    add_skip_invalid_option,
    plot_path,
    print_result,
    report_skipped,
    save_plot,
)
from langchain_tokenopt.cli.transcript import InputError


def register(subparsers: Any) -> None:
    parser = add_command(
        subparsers,
        "report",
        help="usage and cost of recorded model calls (a UsageTracker JSONL file)",
        description=(
            "Aggregate the events written by UsageReport.to_jsonl(): totals, per model, "
            "per agent and per day, and the optimizations the numbers call for."
        ),
        handler=run,
    )
    parser.add_argument("events", help="JSON Lines file of usage events")
    parser.add_argument(
        "--timezone", default="UTC", help="IANA timezone that decides days (default: UTC)"
    )
    add_skip_invalid_option(parser, "event lines")
    add_output_options(parser, plot=True)


def run(args: argparse.Namespace) -> int:
    # Imported here so `tokenopt count` does not pay for the callback machinery.
    from langchain_tokenopt.analytics.report import UsageReport

    if args.plot:
        plot_path(args.plot)  # a bad --plot fails before the work, not after
    try:
        report = UsageReport.from_jsonl(
            args.events, timezone=args.timezone, skip_invalid=args.skip_invalid
        )
    except OSError as exc:
        raise InputError(f"cannot read {args.events!r}: {exc.strerror or exc}") from exc
    except ValueError as exc:  # a bad line (named in the message) or timezone
        raise InputError(str(exc)) from exc
    report_skipped(report.skipped)
    print_result(report, args, indent=2)
    save_plot(report.plot, args.plot)
    return 0
