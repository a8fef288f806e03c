"""What the command line does with input that cannot be right (issue 20)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from langchain_tokenopt.cli.app import main
from langchain_tokenopt.cli.commands import count

EVENT = {
    "run_id": "r1",
    "agent": "a",
    "model": "gpt-4o",
    "input_tokens": 10,
    "cost_usd": "0.0001",
    "started_at": "2025-01-01T00:00:00+00:00",
}


def _events(tmp_path: Path, *changes: dict[str, Any]) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps({**EVENT, **c}) for c in changes) + "\n")
    return path


def test_count_reports_malformed_json_with_its_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "chat.json"
    path.write_text('[{"role": "user",\n  "content": "hi"')
    assert main(["count", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}, line 2: invalid JSON at column" in err and "--text" in err


def test_count_text_counts_json_looking_files_as_plain_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "chat.json"
    path.write_text('[{"role": "user", "content": "hi"')
    assert main(["count", str(path), "--text", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["kind"] == "text"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"cost_usd": "NaN"}, "cost_usd"),
        ({"cost_usd": "Infinity"}, "cost_usd"),
        ({"cost_usd": "-0.5"}, "cost_usd"),
        ({"cost_usd": "1e999999999"}, "cost_usd"),
        ({"cost_usd": "1e-900000"}, "cost_usd"),
        ({"cache_hit": "yes"}, "cache_hit"),
        ({"started_at": "9999-12-31T23:59:59-05:00"}, "started_at"),
    ],
)
def test_report_refuses_values_that_cannot_be_right_naming_file_line_and_field(
    change: dict[str, Any], field: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _events(tmp_path, {}, change)
    assert main(["report", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{path}, line 2: usage event field {field!r}" in err


def test_report_skip_invalid_leaves_bad_lines_out_and_counts_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _events(tmp_path, {}, {"cost_usd": "NaN"}, {"cache_hit": "yes"}, {"run_id": "r2"})
    assert main(["report", str(path), "--skip-invalid", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["totals"]["calls"] == 2
    assert "skipped 2 invalid entries; first: " in captured.err and "line 2" in captured.err


def test_analyze_skip_invalid_leaves_bad_messages_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "chat.jsonl"
    path.write_text(
        '{"role": "user", "content": "hi"}\n{"role": "robot"}\n'
        '{"role": "assistant", "content": "hello"}\n'
    )
    assert main(["analyze", str(path)]) == 2
    assert "line 2" in capsys.readouterr().err
    assert main(["analyze", str(path), "--skip-invalid", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["requests"] == 1  # the user turn and its reply
    assert "skipped 1 invalid entry" in captured.err


def test_plot_to_a_folder_or_a_missing_folder_fails_before_the_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = _events(tmp_path, {})
    assert main(["report", str(events), "--plot", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert main(["report", str(events), "--plot", str(tmp_path / "no" / "c.png")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_plot_without_a_suffix_says_the_file_it_wrote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = _events(tmp_path, {})
    assert main(["report", str(events), "--plot", str(tmp_path / "chart")]) == 0
    assert (tmp_path / "chart.png").is_file()
    assert f"chart saved to {tmp_path / 'chart.png'}" in capsys.readouterr().err


def test_an_unexpected_error_is_one_line_and_exit_1_unless_debugging(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(args: Any) -> int:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(count, "run", broken)
    monkeypatch.delenv("TOKENOPT_DEBUG", raising=False)
    assert main(["count", "--sample"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error: RuntimeError: boom" in err
    assert "please report" in err and "Traceback" not in err
    monkeypatch.setenv("TOKENOPT_DEBUG", "1")
    with pytest.raises(RuntimeError, match="boom"):
        main(["count", "--sample"])


def test_usage_errors_return_2_instead_of_exiting() -> None:
    assert main(["frobnicate"]) == 2
    assert main(["count", "--bogus"]) == 2
