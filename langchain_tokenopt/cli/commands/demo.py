"""`tokenopt demo`: an optimized chat app on a built-in offline model, and what it saved."""

from __future__ import annotations

import argparse
from typing import Any

from langchain_tokenopt.cli.commands._options import (
    add_command,
    add_model_option,
    add_output_options,
    print_result,
)
from langchain_tokenopt.cli.transcript import InputError
from langchain_tokenopt.errors import UnknownModelError

#: Most sessions one demo runs (each takes a fraction of a second; more proves nothing).
MAX_SESSIONS = 1000


def register(subparsers: Any) -> None:
    parser = add_command(
        subparsers,
        "demo",
        help="an optimized chat app on a built-in offline model, and what it saved",
        description=(
            "Run scripted support sessions twice on a built-in offline model: as a plain "
            "app and with summarizing history, caching, compression and usage tracking; "
            "print what the optimized run saved. No network, no API key."
        ),
        handler=run,
    )
    parser.add_argument(
        "--sessions", type=int, default=4, help="customer sessions to run (default: 4)"
    )
    add_model_option(parser, "gpt-4o-mini", "model the tokens are priced as")
    add_output_options(parser, plot=False)


def run(args: argparse.Namespace) -> int:
    # Imported here so the other commands do not pay for the cache and history.
    from langchain_tokenopt.cli.demo import run_demo

    if not 1 <= args.sessions <= MAX_SESSIONS:
        raise InputError(
            f"--sessions must be at least 1 and at most {MAX_SESSIONS}, not {args.sessions}"
        )
    try:
        result = run_demo(sessions=args.sessions, model=args.model)
    except UnknownModelError as exc:
        raise InputError(
            f"no price is known for model {args.model!r}: pick one with a "
            "known price, e.g. --model gpt-4o-mini"
        ) from exc
    print_result(result, args)
    return 0
