"""What the package would save on what an app sent: readers, levers and the replay.

This layer composes the components (cache, history, dedup, compression, tool
retrieval, routing) for the two surfaces that need it (the `tokenopt analyze` command
and the library call `analyze_log`); it sits above the components and below the
surfaces in the import-linter layers.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from functools import partial

from langchain_tokenopt.analysis.engine import LEVER_ORDER, analyze_requests, default_levers
from langchain_tokenopt.analysis.levers import Lever, Step
from langchain_tokenopt.analysis.meter import Meter, Progress
from langchain_tokenopt.analysis.parallel import analyze_parallel
from langchain_tokenopt.analysis.readers import LogFormat, LogReader
from langchain_tokenopt.analysis.records import Request
from langchain_tokenopt.analysis.report import Report
from langchain_tokenopt.compression import CompressionLevel
from langchain_tokenopt.errors import InvalidArgumentError

__all__ = [
    "LEVER_ORDER",
    "Lever",
    "LogReader",
    "Progress",
    "Report",
    "Request",
    "Step",
    "analyze_log",
    "analyze_requests",
    "default_levers",
]


def analyze_log(
    paths: Sequence[str] = (),
    *,
    sample: str | None = None,
    format: LogFormat = "auto",
    skip_invalid: bool = False,
    default_model: str = "gpt-4o",
    max_tokens: int = 1000,
    similarity: float = 0.9,
    compression: CompressionLevel = "lossless",
    budget_usd: Decimal | None = None,
    jobs: int = 1,
    progress: Progress | None = None,
) -> Report:
    """Read `paths` (or a shipped `sample`) and replay them through every lever.

    `progress(bytes_read, requests)` is called as the log is read and analysed, with
    what was done since its previous call (`LogReader.size_bytes()` is the total).

    Example:
        >>> report = analyze_log(sample="requests")
        >>> report.requests > 40, [lever.name for lever in report.levers][:3]
        (True, ['cache', 'tools', 'history'])
    """
    reader = _open_log(paths, format, skip_invalid, sample)
    if jobs < 1:
        raise InvalidArgumentError(f"jobs must be at least 1, not {jobs}")
    if "-" in paths:  # stdin is read once: one process
        jobs = 1
    settings = {
        "default_model": default_model,
        "max_tokens": max_tokens,
        "similarity": similarity,
        "compression": compression,
        "budget_usd": budget_usd,
        "jobs": jobs,
    }
    meter = Meter(progress, reader.stats, passes=1 if jobs == 1 else 2)
    make_levers = partial(
        default_levers, max_tokens=max_tokens, similarity=similarity, compression=compression
    )
    if jobs == 1:
        report = analyze_requests(
            meter.reading(reader),
            default_model=default_model,
            levers=make_levers(),
            budget_usd=budget_usd,
            settings=settings,
            on_analysed=meter.analysed,
        )
    else:
        # The parent's pass reads `reader` (its statistics are the report's); each
        # worker reads the files again with its own reader.
        report = analyze_parallel(
            meter.reading(reader),
            partial(_open_log, list(paths), format, skip_invalid, sample),
            make_levers,
            jobs,
            default_model=default_model,
            budget_usd=budget_usd,
            settings=settings,
            on_priced=meter.priced,
        )
    stats = reader.stats
    report.sources = stats.sources
    report.format = "+".join(sorted(stats.formats)) or format
    report.skipped = stats.skipped
    report.skipped_examples = stats.examples
    report.input_bytes = stats.input_bytes
    return report


def _open_log(
    paths: Sequence[str], format: LogFormat, skip_invalid: bool, sample: str | None
) -> LogReader:
    return LogReader(
        paths, format=format, skip_invalid=skip_invalid, default_model=None, sample=sample
    )
