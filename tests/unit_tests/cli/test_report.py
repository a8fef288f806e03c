"""Specification of `tokenopt report`: a table (and a chart) of recorded usage."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from langchain_tokenopt.callbacks.tracker import UsageTracker
from langchain_tokenopt.cli.app import main


def record_events(path: Path) -> int:
    """Run a fake model through a real tracker and export its events; returns calls."""
    usage = {"input_tokens": 1200, "output_tokens": 80, "total_tokens": 1280}
    model = GenericFakeChatModel(messages=itertools.repeat(AIMessage("ok", usage_metadata=usage)))
    tracker = UsageTracker()
    for agent in ("planner", "planner", "writer"):
        model.invoke("hello", config={"callbacks": [tracker], "metadata": {"agent": agent}})
    return tracker.report().to_jsonl(path)


def test_report_prints_totals_per_agent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = tmp_path / "events.jsonl"
    assert record_events(events) == 3
    assert main(["report", str(events), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["totals"]["calls"] == 3
    assert report["totals"]["input_tokens"] == 3 * 1200
    assert set(report["by_agent"]) == {"planner", "writer"}
    assert report["by_agent"]["planner"]["calls"] == 2

    assert main(["report", str(events)]) == 0
    table = capsys.readouterr().out
    assert "planner" in table and "writer" in table


def test_report_saves_a_png_chart(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = tmp_path / "events.jsonl"
    record_events(events)
    chart = tmp_path / "usage.png"
    assert main(["report", str(events), "--plot", str(chart)]) == 0
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_names_the_missing_file_and_the_bad_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(tmp_path / "nope.jsonl")]) == 2
    assert "nope.jsonl" in capsys.readouterr().err

    events = tmp_path / "events.jsonl"
    record_events(events)
    with events.open("a", encoding="utf-8") as handle:
        handle.write("{not json\n")
    assert main(["report", str(events)]) == 2
    err = capsys.readouterr().err
    assert "line 4" in err
