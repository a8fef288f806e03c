"""Arguments and output steps that several `tokenopt` commands share."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from langchain_tokenopt.cli.commands import Handler
from langchain_tokenopt.cli.transcript import InputError
from langchain_tokenopt.errors import MissingExtraError


class _Result(Protocol):
    def to_dict(self) -> dict[str, Any]: ...

    def render_table(self) -> str: ...


def add_command(
    subparsers: Any, name: str, *, help: str, description: str, handler: Handler
) -> argparse.ArgumentParser:
    """A subcommand parser whose `handler(args)` returns the exit code."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name, help=help, description=description
    )
    parser.set_defaults(handler=handler)
    return parser


def add_model_option(parser: argparse.ArgumentParser, default: str, purpose: str) -> None:
    parser.add_argument("--model", default=default, help=f"{purpose} (default: {default})")


def add_output_options(parser: argparse.ArgumentParser, *, plot: bool) -> None:
    """`--json`, and `--plot PNG` for commands that draw a chart."""
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    if plot:
        parser.add_argument(
            "--plot", metavar="PNG", default=None, help="also save a chart (needs the viz extra)"
        )


def print_result(result: _Result, args: argparse.Namespace, *, indent: int | None = None) -> None:
    """The result as one JSON object (`--json`) or as its table."""
    print(json.dumps(result.to_dict(), indent=indent) if args.json else result.render_table())


def add_skip_invalid_option(parser: argparse.ArgumentParser, what: str) -> None:
    """`--skip-invalid`: leave out unreadable input, counted on stderr, instead of failing."""
    parser.add_argument(
        "--skip-invalid",
        action="store_true",
        help=f"leave out {what} that cannot be right (counted on stderr) instead of failing",
    )


def report_skipped(skipped: Sequence[str], *, total: int | None = None) -> None:
    """Say on stderr how many inputs `--skip-invalid` left out (`total`, default all of
    `skipped`), and the first of them."""
    count = len(skipped) if total is None else total
    if skipped:
        print(
            f"skipped {count:,} invalid {'entry' if count == 1 else 'entries'}; "
            f"first: {skipped[0]}",
            file=sys.stderr,
        )


def plot_path(path: str) -> Path:
    """Where `--plot PATH` will write: a file (".png" added without a suffix) in a folder
    that exists; InputError otherwise."""
    target = Path(path)
    if target.is_dir():
        raise InputError(f"--plot {path!r} is a folder: give a file name such as chart.png")
    if not target.parent.is_dir():
        raise InputError(f"--plot {path!r}: the folder {str(target.parent)!r} does not exist")
    return target if target.suffix else target.with_name(target.name + ".png")


def save_plot(plot: Callable[[str], object], path: str | None) -> None:
    """Save the chart when `--plot` asks for one, naming what went wrong if it cannot."""
    if not path:
        return
    target = plot_path(path)
    try:
        plot(str(target))
    except MissingExtraError as exc:
        raise InputError(str(exc)) from exc
    except OSError as exc:
        raise InputError(f"cannot write {str(target)!r}: {exc.strerror or exc}") from exc
    except ValueError as exc:  # matplotlib: an unsupported format suffix
        raise InputError(f"cannot write {str(target)!r}: {exc}") from exc
    print(f"chart saved to {target}", file=sys.stderr)
