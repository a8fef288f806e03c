"""The progress bar of `tokenopt analyze`: on a terminal's stderr for a large input, off
with `--quiet`, for a small input or off a terminal, never on stdout, and filled once
whether one process or `--jobs` workers do the work."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from langchain_tokenopt.analysis import LogReader, analyze_log
from langchain_tokenopt.cli.app import main
from langchain_tokenopt.cli.commands import analyze as analyze_command


class _Terminal(io.StringIO):
    """A stderr that says it is a terminal (what tqdm draws on)."""

    def isatty(self) -> bool:
        return True


def _on_terminal(monkeypatch: pytest.MonkeyPatch) -> _Terminal:
    """stderr replaced by a terminal (in the test body: pytest's capture resets it after
    fixtures run)."""
    stream = _Terminal()
    monkeypatch.setattr(sys, "stderr", stream)
    return stream


@pytest.fixture
def any_size_is_large(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(analyze_command, "PROGRESS_MIN_BYTES", 0)


@pytest.mark.usefixtures("any_size_is_large")
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_large_log_shows_a_bar_on_the_terminal_and_json_stays_clean(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], jobs: str
) -> None:
    terminal = _on_terminal(monkeypatch)
    assert main(["analyze", "--sample", "requests", "--json", "--jobs", jobs]) == 0

    report = json.loads(capsys.readouterr().out)
    shown = terminal.getvalue()
    size = LogReader([], sample="requests").size_bytes()
    assert size is not None and size == report["input_bytes"]
    # throttled redraws: the first state is drawn, the last one may not be
    assert f"analyzing:   0%|          | 0.00/{size / 1000:.0f}k" in shown
    assert "0 requests]" in shown
    assert shown.endswith("\r")  # the line is cleared at the end


@pytest.mark.usefixtures("any_size_is_large")
def test_quiet_turns_the_bar_off(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    terminal = _on_terminal(monkeypatch)
    assert main(["analyze", "--sample", "requests", "--quiet"]) == 0

    assert terminal.getvalue() == ""
    assert "requests" in capsys.readouterr().out


def test_a_small_log_gets_no_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = _on_terminal(monkeypatch)
    assert main(["analyze", "--sample", "requests"]) == 0

    assert "analyzing" not in terminal.getvalue()


@pytest.mark.usefixtures("any_size_is_large")
def test_off_a_terminal_nothing_is_drawn(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", "--sample", "requests", "--json"]) == 0

    captured = capsys.readouterr()
    assert "analyzing" not in captured.err
    json.loads(captured.out)


@pytest.mark.usefixtures("any_size_is_large")
def test_a_bad_log_under_the_bar_fails_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    terminal = _on_terminal(monkeypatch)
    path = tmp_path / "log.jsonl"
    good = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    path.write_text(json.dumps(good) + "\n" + "{not json\n", "utf-8")

    assert main(["analyze", str(path)]) == 2

    shown = terminal.getvalue()
    assert "Traceback" not in shown
    assert "line 2" in shown


@pytest.mark.parametrize("jobs", [1, 2])
def test_the_bar_is_given_every_byte_and_request_once(jobs: int) -> None:
    calls: list[tuple[int, int]] = []

    report = analyze_log(sample="requests", jobs=jobs, progress=lambda b, r: calls.append((b, r)))

    assert sum(b for b, _ in calls) == report.input_bytes
    assert sum(r for _, r in calls) == report.requests
    assert all(b >= 0 and r in (0, 1) for b, r in calls)
    # the bar moves while requests are analysed, not only while the log is read
    assert sum(b for b, r in calls if r) > 0 if jobs > 1 else True
