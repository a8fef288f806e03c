"""Specification of `tokenopt analyze`: what each optimization would save on a transcript.

Every number is checked against an independent replay with the components themselves
(`TokenCounter`, `SummarizingChatMessageHistory`, `PromptCompressor`).
"""

from __future__ import annotations

import io
import json
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from langchain_core.load import dumpd
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    convert_to_messages,
    messages_to_dict,
)

from langchain_tokenopt.chat_history.history import SummarizingChatMessageHistory
from langchain_tokenopt.cli.analysis import analyze_transcript
from langchain_tokenopt.cli.app import main
from langchain_tokenopt.cli.commands import analyze as cli
from langchain_tokenopt.cli.transcript import read_transcript
from langchain_tokenopt.compression import PromptCompressor
from langchain_tokenopt.core.pricing import price
from langchain_tokenopt.core.tokens import TokenCounter

SAMPLE = json.loads(
    resources.files("langchain_tokenopt").joinpath("data/sample_conversation.json").read_text()
)
PRETTY = json.dumps({"order_id": "NW-1", "status": "shipped", "items": [1, 2, 3]}, indent=4)
DOCUMENT = (
    "Lease agreement: the tenant pays 1,200 EUR per month, due on the first day of "
    "each month, with a deposit of two months' rent held in a separate account."
)


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    assert main(["analyze", *argv, "--json"]) == 0
    result: dict[str, Any] = json.loads(capsys.readouterr().out)
    return result


def write(tmp_path: Path, name: str, content: Any) -> str:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content), "utf-8")
    return str(path)


def calls_of(messages: list[BaseMessage]) -> list[list[BaseMessage]]:
    return [messages[:i] for i, m in enumerate(messages) if isinstance(m, AIMessage) and i]


def saving(report: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(s for s in report["savings"] if s["name"] == name)
    return found


def failure(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(["analyze", *argv]) == 2
    return capsys.readouterr().err


# ------------------------------------------------------------------ the numbers


def test_without_a_file_the_built_in_sample_is_analyzed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["analyze"]) == 0
    out = capsys.readouterr().out
    counter = TokenCounter("gpt-4o")
    messages = convert_to_messages(SAMPLE)
    baseline = sum(int(counter.count_messages(request)) for request in calls_of(messages))
    assert "<sample:data/sample_conversation.json>" in out
    assert f"input tokens  {baseline:>10,}" in out
    for label in ("summarizing history", "cache", "de-duplication", "compression"):
        assert label in out


def test_baseline_counts_every_call_with_the_whole_conversation_before_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    report = run_json(capsys, "--model", "gpt-4o-mini")
    counter = TokenCounter("gpt-4o-mini")
    requests = calls_of(convert_to_messages(SAMPLE))
    assert report["calls"] == len(requests) == 17
    assert report["full_input_tokens"] == [int(counter.count_messages(r)) for r in requests]
    cost = price(
        "gpt-4o-mini",
        {
            "input_tokens": report["input_tokens"],
            "output_tokens": report["output_tokens"],
        },
    )
    assert report["cost_usd"] == format(cost, "f")


def test_history_saving_is_a_replay_through_the_summarizing_history(
    capsys: pytest.CaptureFixture[str],
) -> None:
    report = run_json(capsys, "--max-tokens", "500")
    counter = TokenCounter("gpt-4o")
    history = SummarizingChatMessageHistory(max_tokens=500, token_counter=counter)
    expected = []
    messages = convert_to_messages(SAMPLE)
    fed = 0
    for request in calls_of(messages):
        # What arrived since the previous call (its reply, tool results, the new
        # question) is added, then the call is sent the history's view.
        history.add_messages(request[fed:])
        fed = len(request)
        full = int(counter.count_messages(request))
        expected.append(min(full, int(counter.count_messages(history.messages))))
    sent = saving(report, "history")["sent_input_tokens"]
    assert sent == expected
    assert max(sent) <= 500
    assert saving(report, "history")["input_tokens_saved"] == report["input_tokens"] - sum(sent)
    assert saving(report, "history")["input_tokens_saved"] > 0


def test_a_bigger_budget_saves_less(capsys: pytest.CaptureFixture[str]) -> None:
    small = saving(run_json(capsys, "--max-tokens", "400"), "history")["input_tokens_saved"]
    large = saving(run_json(capsys, "--max-tokens", "1200"), "history")["input_tokens_saved"]
    none = saving(run_json(capsys, "--max-tokens", "100000"), "history")["input_tokens_saved"]
    assert small > large > none == 0


def test_compressed_tool_output_is_saved_on_every_later_call(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conversation: list[dict[str, Any]] = [
        {"role": "user", "content": "Where is NW-1?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": '{"id": "NW-1"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": PRETTY},
        {"role": "assistant", "content": "Shipped."},
        {"role": "user", "content": "Thanks!"},
        {"role": "assistant", "content": "You're welcome."},
    ]
    report = run_json(capsys, write(tmp_path, "chat.json", conversation))
    counter = TokenCounter("gpt-4o")
    tool = convert_to_messages(conversation)[2]
    once = int(counter.count_message(tool)) - int(
        counter.count_message(PromptCompressor().compress_message(tool))
    )
    assert once > 0
    assert saving(report, "compression")["input_tokens_saved"] == 2 * once  # calls 2 and 3
    assert saving(report, "compression")["hits"] == 1


def test_a_pasted_duplicate_is_saved_on_the_calls_after_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conversation = [
        {"role": "user", "content": DOCUMENT},
        {"role": "assistant", "content": "Got it, I have read the lease."},
        {"role": "user", "content": DOCUMENT},
        {"role": "assistant", "content": "This is the same lease as before."},
        {"role": "user", "content": "Is the rent fair for Berlin?"},
        {"role": "assistant", "content": "It is about average."},
    ]
    report = run_json(capsys, write(tmp_path, "chat.json", conversation))
    counter = TokenCounter("gpt-4o")
    copy = int(counter.count_message(HumanMessage(DOCUMENT)))
    dedup = saving(report, "dedup")
    # Call 2 sends the copy as its newest message (kept); call 3 does not need it.
    assert dedup["sent_input_tokens"][:2] == report["full_input_tokens"][:2]
    assert dedup["input_tokens_saved"] == copy
    assert dedup["hits"] == 1


def test_a_log_of_requests_measures_the_cache(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    question = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}]
    other = [{"role": "user", "content": "What is your refund policy for damaged tents?"}]
    log = "\n".join(
        json.dumps({"model": "gpt-4o", "messages": m}) for m in (question, other, question)
    )
    report = run_json(capsys, write(tmp_path, "requests.jsonl", log))
    counter = TokenCounter("gpt-4o")
    assert report["kind"] == "requests"
    assert report["calls"] == 3
    cache = saving(report, "cache")
    assert cache["hits"] == 1
    assert cache["input_tokens_saved"] == counter.count_messages(question)
    assert cache["sent_input_tokens"][2] == 0


def test_a_single_conversation_says_the_cache_needs_a_request_log(
    capsys: pytest.CaptureFixture[str],
) -> None:
    cache = saving(run_json(capsys), "cache")
    assert cache["input_tokens_saved"] == 0
    assert "log of requests" in cache["note"]


def test_langchain_message_dicts_are_read_like_openai_messages(tmp_path: Path) -> None:
    messages = [SystemMessage("Be brief."), HumanMessage("Hi"), AIMessage("Hello!")]
    openai = read_transcript(
        json.dumps(
            [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello!"},
            ]
        )
    )
    for text in (
        json.dumps(messages_to_dict(messages)),
        json.dumps([dumpd(m) for m in messages]),
        json.dumps([{"type": m.type, "content": m.content} for m in messages]),
    ):
        transcript = read_transcript(text)
        assert [m.content for m in transcript.calls[0].messages] == ["Be brief.", "Hi"]
        assert (
            analyze_transcript(transcript).input_tokens == analyze_transcript(openai).input_tokens
        )


def test_json_lines_with_one_message_per_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "chat.jsonl", "\n".join(json.dumps(m) for m in SAMPLE) + "\n")
    assert run_json(capsys, path)["full_input_tokens"] == run_json(capsys)["full_input_tokens"]


def test_request_body_with_tools_counts_the_tools(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "lookup",
                "description": "Look up an order.",
                "parameters": {"type": "object", "properties": {"id": {"type": "string"}}},
            },
        }
    ]
    body = {"messages": SAMPLE[:3], "tools": tools}
    report = run_json(capsys, write(tmp_path, "body.json", body))
    counter = TokenCounter("gpt-4o")
    messages = convert_to_messages(SAMPLE[:2])
    assert report["tools"] == 1
    assert report["full_input_tokens"] == [counter.count_messages(messages, tools=tools)]


def test_plot_writes_a_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "savings.png"
    assert main(["analyze", "--plot", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "chart saved to" in capsys.readouterr().err


def test_progress_bar_only_on_a_terminal_and_long_input(monkeypatch: pytest.MonkeyPatch) -> None:
    items = list(range(cli.PROGRESS_MIN_CALLS))
    assert cli.progress_bar(items, len(items)) is items  # stderr is not a terminal here

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert cli.progress_bar(items[:3], 3) == items[:3]  # short input: no bar
    assert list(cli.progress_bar(items, len(items))) == items
    assert "replaying" in terminal.getvalue()


# ------------------------------------------------------------------------ errors


def test_a_missing_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = failure(capsys, str(tmp_path / "nope.json"))
    assert "tokenopt analyze: cannot read" in err
    assert "nope.json" in err


def test_invalid_json_names_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "chat.json", '[\n  {"role": "user", "content": "hi"},\n  {"role": }\n]')
    err = failure(capsys, path)
    assert "chat.json, line 3: invalid JSON" in err


def test_a_bad_json_lines_line_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = [json.dumps(SAMPLE[0]), json.dumps(SAMPLE[1]), '{"role": "user", "content": ']
    err = failure(capsys, write(tmp_path, "chat.jsonl", "\n".join(lines)))
    assert "chat.jsonl, line 3: invalid JSON" in err


def test_an_unknown_role_names_line_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    messages = [{"role": "user", "content": "hi"}, {"role": "robot", "content": "beep"}]
    text = json.dumps(messages, indent=2)
    err = failure(capsys, write(tmp_path, "chat.json", text))
    line = text.splitlines().index("  {") + 1 + 4  # the second object starts 4 lines later
    assert f"chat.json, line {line}: field 'messages[1].role': unknown role 'robot'" in err


def test_a_tool_message_without_its_call_id_names_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = {"messages": [{"role": "user", "content": "hi"}, {"role": "tool", "content": "x"}]}
    err = failure(capsys, write(tmp_path, "body.json", json.dumps(body, indent=1)))
    assert "field 'messages[1].tool_call_id' is missing" in err
    assert "body.json, line 7" in err  # where the second message's object starts


def test_malformed_tool_call_arguments_name_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{oops"}}
    lines = [
        json.dumps({"role": "user", "content": "hi"}),
        json.dumps({"role": "assistant", "content": None, "tool_calls": [call]}),
    ]
    err = failure(capsys, write(tmp_path, "chat.jsonl", "\n".join(lines)))
    assert "chat.jsonl, line 2: field 'tool_calls[0].function.arguments' is not valid JSON" in err


def test_content_of_the_wrong_type_names_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = failure(capsys, write(tmp_path, "chat.json", [{"role": "user", "content": 42}]))
    assert "field 'messages[0].content' must be a string or a list" in err


def test_text_that_is_not_a_transcript_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = failure(capsys, write(tmp_path, "notes.txt", "just some notes"))
    assert "notes.txt, line 1: not a chat transcript" in err
    assert "is empty" in failure(capsys, write(tmp_path, "empty.json", "  \n"))


def test_not_utf8_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes('[{"role": "user", "content": "caf\u00e9"}]'.encode("latin-1"))
    assert "is not UTF-8" in failure(capsys, str(path))


def test_bad_options_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert "--max-tokens must be at least 16" in failure(capsys, "--max-tokens", "3")
    assert "--similarity must be in (0, 1]" in failure(capsys, "--similarity", "0")


def test_the_batch_api_lever_prices_the_same_calls_at_the_batch_rate(
    capsys: pytest.CaptureFixture[str],
) -> None:
    analysis = analyze_transcript(read_transcript(json.dumps(SAMPLE)), model="gpt-4o-mini")
    standard = price(
        "gpt-4o-mini",
        {"input_tokens": analysis.input_tokens, "output_tokens": analysis.output_tokens},
    )
    assert analysis.cost_usd == standard
    assert analysis.batch_cost_usd == standard / 2
    assert analysis.to_dict()["batch_cost_usd"] == format(standard / 2, "f")
    assert main(["analyze", "--model", "gpt-4o-mini"]) == 0
    assert "batch API" in capsys.readouterr().out
