"""Specification of `tokenopt analyze`: every lever on what an app sent, priced per request.

Dollar figures are checked against an independent computation with `TokenCounter` and
`price()`; the JSON report is checked against its shipped JSON Schema.
"""

from __future__ import annotations

import io
import json
import re
import sys
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from langchain_tokenopt.cli.app import main
from langchain_tokenopt.core.pricing import price
from langchain_tokenopt.core.tokens import TokenCounter
from langchain_tokenopt.core.usage import Usage

SCHEMA = json.loads(
    resources.files("langchain_tokenopt").joinpath("data/analyze_report.schema.json").read_text()
)
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
    for name, description in [
        ("get_weather", "Current weather in a city"),
        ("book_flight", "Book a flight to a city"),
        ("find_hotel", "Find hotels in a city"),
        ("convert_currency", "Convert an amount of money between currencies"),
        ("get_time", "The local time in a city"),
        ("translate_text", "Translate a phrase into another language"),
        ("get_news", "News headlines of a country"),
        ("send_email", "Send an email to a customer"),
    ]
]


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    assert main(["analyze", *argv, "--json"]) == 0
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    jsonschema.validate(report, SCHEMA)
    return report


def failure(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(["analyze", *argv]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1
    return err


def write_lines(path: Path, records: list[Any]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), "utf-8")
    return str(path)


def body(model: str | None, *texts: str, **extra: Any) -> dict[str, Any]:
    messages = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": text}
        for i, text in enumerate(texts)
    ]
    record: dict[str, Any] = {"messages": messages, **extra}
    if model is not None:
        record["model"] = model
    return record


def lever(report: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(r for r in report["levers"] if r["name"] == name)
    return found


def cost(model: str, messages: list[dict[str, Any]], output: int = 0, **kw: Any) -> Decimal:
    counted = int(TokenCounter(model).count_messages(messages, tools=kw.get("tools")))
    return price(model, Usage(input_tokens=counted, output_tokens=output))


# ------------------------------------------------------------------ samples


def test_the_readme_command_analyzes_the_built_in_conversation(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["analyze"]) == 0
    out = capsys.readouterr().out
    assert "sample_conversation.json> (conversation, 17 requests in 1 conversation)" in out
    assert "all together" in out and "Traceback" not in out


def test_the_shipped_request_log_shows_every_lever_saving(
    capsys: pytest.CaptureFixture[str],
) -> None:
    report = run_json(capsys, "--sample", "requests")
    assert {row["model"] for row in report["models"]} >= {
        "gpt-4o",
        "gpt-4o-mini",
        "claude-3-5-sonnet-latest",
    }
    for result in report["levers"]:
        saved = result["input_tokens_saved"] + result["output_tokens_saved"]
        assert result["requests_changed"] > 0, result["name"]
        assert saved > 0 or Decimal(result["cost_saved_usd"]) > 0, result["name"]
    assert lever(report, "tools")["details"]["requests_with_tools"] > 0
    assert Decimal(report["combined"]["cost_saved_usd"]) > 0
    assert report["provider_cache"]["baseline_cached_input_tokens"] > 0


# ------------------------------------------------------------------ pricing


def test_each_request_is_priced_with_its_own_model_and_model_only_fills_in(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = [
        body("gpt-4o", "Summarize the lease in one line."),
        body("gpt-4o-mini", "Translate 'good morning' into French."),
        body(None, "What is the boiling point of water?"),
    ]
    path = write_lines(tmp_path / "log.jsonl", records)
    report = run_json(capsys, path, "--model", "gpt-4.1")
    expected = (
        cost("gpt-4o", records[0]["messages"])
        + cost("gpt-4o-mini", records[1]["messages"])
        + cost("gpt-4.1", records[2]["messages"])
    )
    assert Decimal(report["baseline"]["cost_usd"]) == expected
    assert {row["model"]: row["requests"] for row in report["models"]} == {
        "gpt-4o": 1,
        "gpt-4o-mini": 1,
        "gpt-4.1": 1,
    }


def test_logged_usage_wins_over_our_count_and_the_difference_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = body("gpt-4o-mini", "Hello there")
    record["response"] = {
        "choices": [{"message": {"role": "assistant", "content": "Hi!"}}],
        "usage": {"prompt_tokens": 50, "completion_tokens": 7, "total_tokens": 57},
    }
    report = run_json(capsys, write_lines(tmp_path / "log.jsonl", [record]))
    assert report["baseline"]["input_tokens"] == 50
    assert report["baseline"]["output_tokens"] == 7
    counted = int(TokenCounter("gpt-4o-mini").count_messages(record["messages"]))
    assert report["usage_check"]["counted_input_tokens"] == counted
    assert report["usage_check"]["logged_input_tokens"] == 50
    assert Decimal(report["baseline"]["cost_usd"]) == price(
        "gpt-4o-mini", Usage(input_tokens=50, output_tokens=7)
    )


def test_openai_prefix_caching_is_in_the_baseline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = "".join(f"Policy clause number {n} applies. " for n in range(400))
    system: dict[str, Any] = {"role": "system", "content": text}
    first: dict[str, Any] = {
        "model": "gpt-4o",
        "messages": [system, {"role": "user", "content": "Q1"}],
    }
    second: dict[str, Any] = {
        "model": "gpt-4o",
        "messages": [system, {"role": "user", "content": "Q2"}],
    }
    report = run_json(capsys, write_lines(tmp_path / "log.jsonl", [first, second]))
    prefix = int(TokenCounter("gpt-4o").count_message(system))
    assert prefix > 1024
    cached = 1024 + (prefix - 1024) // 128 * 128
    assert report["baseline"]["cached_input_tokens"] == cached
    total = int(TokenCounter("gpt-4o").count_messages(second["messages"]))
    expected = cost("gpt-4o", first["messages"]) + price(
        "gpt-4o", Usage(input_tokens=total, cache_read_tokens=cached)
    )
    assert Decimal(report["baseline"]["cost_usd"]) == expected
    assert Decimal(report["provider_cache"]["baseline_discount_usd"]) > 0


def test_anthropic_caches_only_with_cache_control(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = "".join(f"Rule {n}: be kind to the customer. " for n in range(300))
    marked = {
        "role": "system",
        "content": [{"type": "text", "text": text, "cache_control": {"type": "ephemeral"}}],
    }
    plain = {"role": "system", "content": text}
    for system, expect_cache in ((marked, True), (plain, False)):
        records = [
            {
                "model": "claude-3-5-sonnet-latest",
                "messages": [system, {"role": "user", "content": q}],
            }
            for q in ("first question", "second question")
        ]
        report = run_json(capsys, write_lines(tmp_path / "log.jsonl", records))
        assert (report["baseline"]["cached_input_tokens"] > 0) is expect_cache
        assert (report["baseline"]["cache_write_tokens"] > 0) is expect_cache


# ------------------------------------------------------------------ levers


def test_an_identical_request_is_answered_by_the_cache(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = body("gpt-4o-mini", "What are your opening hours?")
    record["response"] = {"choices": [{"message": {"role": "assistant", "content": "9 to 5."}}]}
    report = run_json(capsys, write_lines(tmp_path / "log.jsonl", [record, record]))
    cache = lever(report, "cache")
    assert cache["details"]["exact_hits"] == 1
    assert cache["after"]["requests"] == 2
    assert cache["input_tokens_saved"] == report["baseline"]["input_tokens"] // 2
    assert Decimal(cache["cost_saved_usd"]) * 2 == Decimal(report["baseline"]["cost_usd"])


def test_tool_binding_binds_the_tool_the_model_called(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = body("gpt-4o", "What is the weather in Oslo today?", tools=TOOLS)
    call = {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    record["response"] = {
        "choices": [{"message": {"role": "assistant", "content": None, "tool_calls": [call]}}]
    }
    report = run_json(capsys, write_lines(tmp_path / "log.jsonl", [record]))
    tools = lever(report, "tools")
    assert tools["details"]["tools_offered"] == len(TOOLS)
    assert 0 < tools["details"]["tools_bound"] < len(TOOLS)
    assert tools["details"]["called_bound_share"] == 1.0
    assert tools["input_tokens_saved"] > 0


def test_routing_moves_an_easy_request_to_the_cheaper_tier(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = body("gpt-4o", "What is the capital of France?")
    report = run_json(capsys, write_lines(tmp_path / "log.jsonl", [record]))
    routing = lever(report, "routing")
    assert routing["details"]["moved_requests"] == 1
    assert routing["details"]["tiers"] == {"gpt-4o": "gpt-4o-mini"}
    assert routing["details"]["moved_cost_share"] == 1.0
    assert Decimal(routing["details"]["moved_cost_usd"]) == Decimal(report["baseline"]["cost_usd"])
    assert 0 < routing["details"]["expected_quality_kept"] <= 1
    assert Decimal(routing["after"]["cost_usd"]) == cost("gpt-4o-mini", record["messages"])


def test_history_and_dedup_act_per_conversation_grouped_by_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = "The tenant pays 1,200 EUR per month, due on the first day of each month. " * 30
    questions = [
        "Who pays for repairs?",
        "Can I keep a cat in the flat?",
        "When is the rent due?",
        "How long is the notice period?",
        "Is the deposit returned with interest?",
        "May I sublet a room?",
        "Who pays the heating bill?",
        "Can the rent go up this year?",
        "What happens if I pay late?",
        "Is parking included?",
        "Can I paint the walls?",
        "Who owns the furniture?",
    ]
    messages: list[dict[str, Any]] = []
    records = []
    for turn in range(12):
        text = document if turn in (1, 6) else questions[turn]
        messages.append({"role": "user", "content": text})
        records.append(
            {"model": "gpt-4o", "messages": list(messages), "metadata": {"thread_id": "t1"}}
        )
        messages.append({"role": "assistant", "content": questions[-1 - turn].upper()})
    report = run_json(capsys, write_lines(tmp_path / "log.jsonl", records), "--max-tokens", "400")
    assert report["conversations"] == 1 and report["grouping"]["by_id"] == 1
    assert lever(report, "history")["input_tokens_saved"] > 0
    assert lever(report, "dedup")["details"]["removed_messages"] == 1
    assert report["conversations_top"][0]["id"] == "t1"


def test_requests_without_ids_are_grouped_by_shared_messages(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = [
        body("gpt-4o", "Hi, I am Ann."),
        body("gpt-4o", "Hi, I am Bob."),
        body("gpt-4o", "Hi, I am Ann.", "Hello Ann!", "What is my name?"),
        body("gpt-4o", "Hi, I am Bob.", "Hello Bob!", "What is my name?"),
    ]
    report = run_json(capsys, write_lines(tmp_path / "log.jsonl", records))
    assert report["conversations"] == 2 and report["grouping"]["by_prefix"] == 2


def test_a_budget_reports_what_it_would_have_stopped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = [body("gpt-4o", f"Write a long essay number {n}.") for n in range(4)]
    one = cost("gpt-4o", records[0]["messages"])
    report = run_json(
        capsys, write_lines(tmp_path / "log.jsonl", records), "--budget", str(one * Decimal("2.5"))
    )
    assert report["budget"]["stopped_requests"] == 2
    assert report["budget"]["first_stopped_request"] == 2


# ------------------------------------------------------------------ inputs


def test_a_json_array_a_folder_a_glob_and_stdin_read_the_same_requests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    records = [body("gpt-4o-mini", f"Question {n}?") for n in range(3)]
    lines = write_lines(tmp_path / "a.jsonl", records)
    (tmp_path / "sub").mkdir()
    array = tmp_path / "sub" / "b.json"
    array.write_text(json.dumps(records, indent=2), "utf-8")
    expected = run_json(capsys, lines)["baseline"]
    assert run_json(capsys, str(array))["baseline"] == expected
    assert run_json(capsys, str(tmp_path / "sub"))["baseline"] == expected
    assert run_json(capsys, str(tmp_path / "sub" / "*.json"))["baseline"] == expected
    both = run_json(capsys, str(tmp_path))
    assert both["requests"] == 6 and len(both["sources"]) == 2
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(Path(lines).read_bytes())))
    assert run_json(capsys, "-")["baseline"] == expected


def test_langchain_message_dicts_and_a_langsmith_export_are_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conversation = [
        {"type": "human", "content": "Hi"},
        {"type": "ai", "content": "Hello! How can I help?"},
    ]
    path = tmp_path / "chat.json"
    path.write_text(json.dumps(conversation), "utf-8")
    report = run_json(capsys, str(path))
    assert report["format"] == "conversation" and report["requests"] == 1
    run = {
        "run_type": "llm",
        "trace_id": "tr-1",
        "inputs": {"messages": [[{"role": "user", "content": "What time is it in Oslo?"}]]},
        "outputs": {
            "generations": [[{"message": {"type": "ai", "content": "It is noon."}}]],
            "llm_output": {
                "token_usage": {"prompt_tokens": 14, "completion_tokens": 4, "total_tokens": 18}
            },
        },
        "extra": {"invocation_params": {"model": "gpt-4o-mini"}},
    }
    chain = {"run_type": "chain", "inputs": {}, "outputs": {}}
    report = run_json(capsys, write_lines(tmp_path / "runs.jsonl", [chain, run]))
    assert report["format"] == "langsmith" and report["requests"] == 1
    assert report["models"][0]["model"] == "gpt-4o-mini"
    assert report["baseline"]["input_tokens"] == 14


def test_a_bad_record_is_named_by_file_line_and_field_or_skipped_and_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = body("gpt-4o", "Hi")
    bad = {"model": "gpt-4o", "messages": [{"role": "user", "content": 5}]}
    path = write_lines(tmp_path / "log.jsonl", [good, bad, good])
    err = failure(capsys, path)
    assert f"{path}, line 2: field 'messages[0].content'" in err
    report = run_json(capsys, path, "--skip-invalid")
    assert report["requests"] == 2 and report["skipped"]["count"] == 1
    assert "line 2" in report["skipped"]["examples"][0]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", "is empty"),
        ("hello", "not a request log"),
        ('{"model": "gpt-4o", "messages": []}\n', "field 'messages'"),
        ('{"messages": [{"role": "tool", "content": "x"}]}\n', "tool_call_id"),
        ('{"messages": [{"role": "robot", "content": "x"}]}\n', "unknown role"),
        ("[1, 2", "invalid JSON"),
    ],
)
def test_unreadable_input_is_named_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, expected: str
) -> None:
    path = tmp_path / "log.jsonl"
    path.write_text(content, "utf-8")
    assert expected in failure(capsys, str(path))


def test_bad_options_and_missing_files_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "no such file" in failure(capsys, str(tmp_path / "missing.jsonl"))
    assert "--budget" in failure(capsys, "--budget", "lots")
    assert "--similarity" in failure(capsys, "--similarity", "nan")
    assert "--max-tokens" in failure(capsys, "--max-tokens", "3")


def test_small_savings_are_never_shown_as_zero_dollars(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = body("gpt-4o-mini", "Please   **summarize**   this:   " + "word  " * 20)
    path = write_lines(tmp_path / "log.jsonl", [record])
    report = run_json(capsys, path)
    saved = Decimal(lever(report, "compression")["cost_saved_usd"])
    assert 0 < saved < Decimal("0.00005")
    assert main(["analyze", path]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if "compression (" in line)
    assert re.search(r"\$0\.0000(?!\d)", row) is None and "$0.00000" in row
