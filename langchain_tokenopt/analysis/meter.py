"""How far an analysis has got, for a progress bar: bytes of the log read, requests done.

One process reads and analyses each request in one pass. Under `--jobs` the parent
passes over the log twice: it reads it first (for its statistics and the number of
requests), then prices the workers' records in log order; each pass moves the bar over
half of the log's bytes, so the bar fills once, at the end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from langchain_tokenopt.analysis.readers import ReadStats
from langchain_tokenopt.analysis.records import Request

__all__ = ["Meter", "Progress"]

Progress = Callable[[int, int], None]
"""Called with (bytes read, requests analysed) since its previous call."""


class Meter:
    """Turns an analysis's passes into `Progress` calls (nothing without `progress`)."""

    def __init__(self, progress: Progress | None, stats: ReadStats, passes: int = 1) -> None:
        self._progress = progress
        self._stats = stats
        self._passes = passes
        self._reported = 0

    def reading(self, requests: Iterable[Request]) -> Iterator[Request]:
        """`requests`, reporting the bytes read so far (their share) as each arrives."""
        progress = self._progress
        if progress is None:
            yield from requests
            return
        stats = self._stats
        for request in requests:
            target = stats.input_bytes // self._passes
            if target > self._reported:
                progress(target - self._reported, 0)
                self._reported = target
            yield request

    def analysed(self) -> None:
        """One more request analysed (the one-pass analysis)."""
        if self._progress is not None:
            self._progress(0, 1)

    def priced(self, position: int, count: int) -> None:
        """Request `position` of `count` priced (the second pass under `--jobs`): the rest
        of the log's bytes, spread evenly over the requests."""
        if self._progress is None:
            return
        total = self._stats.input_bytes
        first = total // self._passes
        target = first + (total - first) * (position + 1) // count
        self._progress(max(target - self._reported, 0), 1)
        self._reported = max(target, self._reported)
