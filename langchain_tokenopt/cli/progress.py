"""The progress bar of a long `tokenopt analyze` run, on stderr and only on a terminal.

It shows the bytes read (of the total when the input's size is known, so with a bar and
an estimate of the time left), the requests analysed and their rate. Redirected to a
file or a pipe, or with `--quiet`, it writes nothing, so logs and CI output stay clean.
Drawing is tqdm's (a dependency already), throttled so a fast loop does not pay for it.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Any, TextIO

from tqdm import tqdm

from langchain_tokenopt.core.validation import int_in_range, optional

#: How often the bar redraws at most, in seconds.
MIN_INTERVAL_SECONDS = 0.2


class AnalyzeProgress:
    """Progress of reading and analysing a log, shown on a terminal only.

    `advance(bytes_read=..., requests=...)` adds what was read and analysed since the
    last call; `close()` (or leaving the `with` block) clears the line. When the stream
    is not a terminal or `quiet` is true nothing is ever written and `advance` costs a
    single attribute check.

    Example:
        >>> import io
        >>> with AnalyzeProgress(total_bytes=1_000, stream=io.StringIO()) as progress:
        ...     progress.advance(bytes_read=500, requests=3)
        >>> progress.enabled, progress.requests
        (False, 3)
    """

    def __init__(
        self,
        total_bytes: int | None,
        *,
        quiet: bool = False,
        stream: TextIO | None = None,
        min_interval_seconds: float = MIN_INTERVAL_SECONDS,
    ) -> None:
        optional(int_in_range, total_bytes, "total_bytes", minimum=0)
        self.stream = sys.stderr if stream is None else stream
        self.enabled = not quiet and _is_terminal(self.stream)
        self.requests = 0
        self._min_interval_seconds = min_interval_seconds
        self._postfix_at = float("-inf")
        self._bar: tqdm[Any] | None = None
        if self.enabled:
            self._bar = tqdm(
                total=total_bytes or None,
                desc="analyzing",
                unit="B",
                unit_scale=True,
                unit_divisor=1000,
                file=self.stream,
                leave=False,
                mininterval=min_interval_seconds,
                miniters=1,
                postfix="0 requests",
            )

    def advance(self, *, bytes_read: int = 0, requests: int = 0) -> None:
        """Count `bytes_read` more bytes read and `requests` more requests analysed."""
        self.requests += requests
        bar = self._bar
        if bar is None:
            return
        now = time.monotonic()
        if now - self._postfix_at >= self._min_interval_seconds:
            self._postfix_at = now
            elapsed = bar.format_dict["elapsed"]
            rate = f", {self.requests / elapsed:,.0f}/s" if elapsed > 0 else ""
            bar.set_postfix_str(f"{self.requests:,} requests{rate}", refresh=False)
        bar.update(bytes_read)

    def close(self) -> None:
        """Clear the bar from the terminal; later calls to `advance` only count."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> AnalyzeProgress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
