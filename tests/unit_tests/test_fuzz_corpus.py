"""Every crafted hostile input of tests/fuzz_corpus/ gets the answer its file names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from langchain_tokenopt import InvalidArgumentError, TokenOptError, UsageEvent, read_transcript
from langchain_tokenopt.cli.app import main
from tests.support.bounded import within
from tests.support.corpus import cases, text_of

CLI_CASES = [
    pytest.param(name, case, command, code, id=f"{command}-{name}")
    for name, case in cases("cli")
    for command, code in sorted(case["exit_codes"].items())
]


def test_the_corpus_holds_the_issues_cases() -> None:
    names = {name for name, _ in cases("cli")}
    assert {"deep_json_list", "cost_snan", "cache_hit_yes", "integer_of_5000_digits"} <= names
    assert cases("read_transcript") and cases("usage_event")


@pytest.mark.parametrize(("name", "case", "command", "code"), CLI_CASES)
def test_cli_answers_each_corpus_file_with_its_exit_code(
    name: str,
    case: dict[str, Any],
    command: str,
    code: int,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / f"{name}.json"
    path.write_text(text_of(case), encoding="utf-8")
    assert within(lambda: main([command, str(path)])) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if code == 2:
        assert len(err.strip().splitlines()) == 1 and str(path) in err


@pytest.mark.parametrize(("name", "case"), cases("read_transcript"))
def test_read_transcript_answers_each_corpus_file(name: str, case: dict[str, Any]) -> None:
    text = text_of(case)
    if case["expect"] == "error":
        with pytest.raises(InvalidArgumentError, match="line"):
            within(lambda: read_transcript(text, name))
    else:
        assert within(lambda: read_transcript(text, name)).messages == case["expect"]


@pytest.mark.parametrize(("name", "case"), cases("usage_event"))
def test_usage_events_answer_each_corpus_line(name: str, case: dict[str, Any]) -> None:
    data = json.loads(text_of(case))
    if case["expect"] == "error":
        with pytest.raises(TokenOptError, match="usage event field"):
            UsageEvent.from_dict(data)
    else:
        assert UsageEvent.from_dict(data).run_id == data["run_id"]
