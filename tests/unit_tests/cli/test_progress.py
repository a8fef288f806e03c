"""The progress bar of `tokenopt analyze`, written to a real pseudo-terminal."""

from __future__ import annotations

import io
import os
import pty
import select
from collections.abc import Iterator
from typing import TextIO

import pytest

from langchain_tokenopt.cli.progress import AnalyzeProgress
from langchain_tokenopt.errors import ArgumentTypeError, InvalidArgumentError


@pytest.fixture
def terminal() -> Iterator[tuple[TextIO, int]]:
    """A pseudo-terminal: the stream the bar writes to, and the fd to read it back from."""
    controller, follower = pty.openpty()
    stream = os.fdopen(follower, "w", encoding="utf-8")
    try:
        yield stream, controller
    finally:
        stream.close()
        os.close(controller)


def _read_all(controller: int) -> str:
    """What was written to the terminal so far (the bar flushes after each draw)."""
    chunks = []
    while select.select([controller], [], [], 0.5)[0]:
        chunk = os.read(controller, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def test_on_a_terminal_it_shows_bytes_of_the_total_and_requests(
    terminal: tuple[TextIO, int],
) -> None:
    stream, controller = terminal
    progress = AnalyzeProgress(total_bytes=2_000_000, stream=stream, min_interval_seconds=0)

    progress.advance(bytes_read=500_000, requests=120)
    progress.advance(bytes_read=500_000, requests=130)
    shown = _read_all(controller)
    progress.close()

    assert progress.enabled
    assert "analyzing" in shown
    assert "50%" in shown
    assert "1.00M/2.00M" in shown
    assert "250 requests" in shown


def test_without_a_known_size_it_counts_bytes_and_requests(terminal: tuple[TextIO, int]) -> None:
    stream, controller = terminal
    with AnalyzeProgress(total_bytes=None, stream=stream, min_interval_seconds=0) as progress:
        progress.advance(bytes_read=4_200, requests=7)
        shown = _read_all(controller)

    assert "4.20kB" in shown
    assert "7 requests" in shown
    assert "%" not in shown


def test_closing_clears_the_line(terminal: tuple[TextIO, int]) -> None:
    stream, controller = terminal
    progress = AnalyzeProgress(total_bytes=10, stream=stream, min_interval_seconds=0)
    progress.advance(bytes_read=5, requests=1)
    _read_all(controller)

    progress.close()
    cleared = _read_all(controller)

    assert cleared.startswith("\r")
    assert "requests" not in cleared
    progress.advance(bytes_read=5, requests=1)  # after close it only counts
    assert progress.requests == 2
    assert _read_all(controller) == ""


def test_quiet_writes_nothing_even_on_a_terminal(terminal: tuple[TextIO, int]) -> None:
    stream, controller = terminal
    with AnalyzeProgress(total_bytes=100, stream=stream, quiet=True) as progress:
        progress.advance(bytes_read=100, requests=3)

    assert not progress.enabled
    assert progress.requests == 3
    assert _read_all(controller) == ""


def test_a_pipe_gets_nothing() -> None:
    reader, writer = os.pipe()
    with os.fdopen(writer, "w") as stream:
        with AnalyzeProgress(total_bytes=100, stream=stream, min_interval_seconds=0) as bar:
            bar.advance(bytes_read=100, requests=3)
        assert not bar.enabled
    with os.fdopen(reader) as pipe:
        assert pipe.read() == ""


def test_a_closed_stream_counts_as_no_terminal() -> None:
    stream = io.StringIO()
    stream.close()

    assert not AnalyzeProgress(total_bytes=None, stream=stream).enabled


@pytest.mark.parametrize(
    ("total", "error"),
    [(-1, InvalidArgumentError), (1.5, ArgumentTypeError), (True, ArgumentTypeError)],
)
def test_a_bad_total_is_refused(total: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="total_bytes"):
        AnalyzeProgress(total_bytes=total, stream=io.StringIO())  # type: ignore[arg-type]
