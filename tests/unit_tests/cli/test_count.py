"""Specification of `tokenopt count`: tokens and input cost of a file or stdin."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import convert_to_messages, messages_to_dict

from langchain_tokenopt.cli.app import main
from langchain_tokenopt.core.pricing import price
from langchain_tokenopt.core.tokens import TokenCounter

REPO = Path(__file__).resolve().parents[3]

TRANSCRIPT = [
    {"role": "system", "content": "You are a terse assistant."},
    {"role": "user", "content": "What does a token cost?"},
    {"role": "assistant", "content": "Depends on the model."},
]


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    assert main([*argv, "--json"]) == 0
    result: dict[str, Any] = json.loads(capsys.readouterr().out)
    return result


def input_cost(model: str, tokens: int) -> Decimal:
    return price(model, {"input_tokens": tokens, "output_tokens": 0, "total_tokens": tokens})


def test_count_text_file_prints_tokens_and_input_cost(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = "Count the tokens of this sentence, then price them. " * 20
    path = tmp_path / "notes.txt"
    path.write_text(text, encoding="utf-8")
    tokens = TokenCounter("gpt-4o").count_text(text)

    assert main(["count", str(path), "--model", "gpt-4o"]) == 0
    out = capsys.readouterr().out
    assert f"tokens:   {tokens}\n" in out
    assert f"${input_cost('gpt-4o', tokens)} as input" in out
    assert "notes.txt (text)" in out


def test_count_json_transcript_counts_messages_with_chat_framing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "chat.json"
    path.write_text(json.dumps(TRANSCRIPT), encoding="utf-8")
    report = run_json(capsys, "count", str(path), "--model", "gpt-4o-mini")
    expected = TokenCounter("gpt-4o-mini").count_messages(TRANSCRIPT)
    assert report["kind"] == "messages"
    assert report["messages"] == 3
    assert report["tokens"] == expected
    assert report["tokens"] != TokenCounter("gpt-4o-mini").count_text(path.read_text())
    assert Decimal(report["input_cost_usd"]) == input_cost("gpt-4o-mini", expected)
    assert report["approximate"] is False
    assert report["encoding"] == "o200k_base"


def test_count_request_body_includes_its_tool_schemas(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tool = {"type": "function", "function": {"name": "ping", "description": "Ping a host."}}
    path = tmp_path / "request.json"
    path.write_text(json.dumps({"model": "gpt-4o", "messages": TRANSCRIPT, "tools": [tool]}))
    report = run_json(capsys, "count", str(path))
    assert report["tools"] == 1
    assert report["tokens"] == TokenCounter("gpt-4o").count_messages(TRANSCRIPT, tools=[tool])


def test_count_jsonl_transcript_from_stdin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    jsonl = "\n".join(json.dumps(m) for m in TRANSCRIPT) + "\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(jsonl.encode())))
    report = run_json(capsys, "count", "-", "--model", "gpt-4o")
    assert report["file"] == "<stdin>"
    assert report["kind"] == "messages"
    assert report["tokens"] == TokenCounter("gpt-4o").count_messages(TRANSCRIPT)


def test_count_reads_what_analyze_reads_langchain_message_dicts_included(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    messages = convert_to_messages(TRANSCRIPT)
    path = tmp_path / "chat.json"
    path.write_text(json.dumps(messages_to_dict(messages)), encoding="utf-8")
    report = run_json(capsys, "count", str(path))
    assert report["kind"] == "messages" and report["messages"] == 3
    assert report["tokens"] == TokenCounter("gpt-4o").count_messages(TRANSCRIPT)


def test_count_a_request_log_sums_the_input_of_every_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "requests.jsonl"
    path.write_text(
        "\n".join(json.dumps({"messages": TRANSCRIPT[: n + 1]}) for n in range(3)) + "\n"
    )
    counter = TokenCounter("gpt-4o")
    report = run_json(capsys, "count", str(path))
    assert report["messages"] == 1 + 2 + 3
    assert report["tokens"] == sum(counter.count_messages(TRANSCRIPT[: n + 1]) for n in range(3))
    assert main(["count", str(path)]) == 0
    assert "(request log, 6 messages, 3 requests)" in capsys.readouterr().out


def test_count_unknown_model_prints_approximate_tokens_and_unknown_cost(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "a.txt"
    path.write_text("hello world", encoding="utf-8")
    assert main(["count", str(path), "--model", "my-model"]) == 0
    out = capsys.readouterr().out
    assert "tokens:   2 (approximate)" in out
    assert "cost:     unknown (no price known for model 'my-model')" in out
    report = run_json(capsys, "count", str(path), "--model", "my-model")
    assert report["approximate"] is True
    assert report["input_cost_usd"] is None


def test_count_with_explicit_encoding(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "a.txt"
    path.write_text("naïve café ☕ " * 10, encoding="utf-8")
    report = run_json(capsys, "count", str(path), "--encoding", "cl100k_base")
    assert report["encoding"] == "cl100k_base"
    assert report["tokens"] == TokenCounter(encoding="cl100k_base").count_text(path.read_text())


@pytest.mark.parametrize("kind", ["missing", "directory", "binary"])
def test_unreadable_input_exits_2_naming_the_file(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / f"{kind}.bin"
    if kind == "directory":
        path.mkdir()
    elif kind == "binary":
        path.write_bytes(b"\xff\xfe\x00\x81 not utf-8")
    assert main(["count", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert str(path) in captured.err
    assert captured.err.startswith("tokenopt count: ")


def test_bad_encoding_exits_2_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "a.txt"
    path.write_text("x")
    assert main(["count", str(path), "--encoding", "nope"]) == 2
    assert "Unknown tiktoken encoding 'nope'" in capsys.readouterr().err


def test_no_subcommand_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "count" in capsys.readouterr().err


def test_python_dash_m_runs_the_cli(tmp_path: Path) -> None:
    path = tmp_path / "chat.json"
    path.write_text(json.dumps(TRANSCRIPT), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "langchain_tokenopt.cli.app", "count", str(path), "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["tokens"] == TokenCounter("gpt-4o").count_messages(TRANSCRIPT)
    missing = subprocess.run(
        [sys.executable, "-m", "langchain_tokenopt.cli.app", "count", str(tmp_path / "nope.txt")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert missing.returncode == 2
    assert "nope.txt" in missing.stderr


def test_count_sample_counts_the_built_in_conversation_with_tool_calls(
    capsys: pytest.CaptureFixture[str],
) -> None:
    sample = REPO / "langchain_tokenopt" / "data" / "sample_conversation.json"
    messages = json.loads(sample.read_text(encoding="utf-8"))
    assert any(m.get("tool_calls") for m in messages)
    report = run_json(capsys, "count", "--sample", "--model", "gpt-4o")
    assert report["kind"] == "messages"
    assert report["messages"] == len(messages)
    assert report["tokens"] == TokenCounter("gpt-4o").count_messages(messages)


def test_count_refuses_a_file_together_with_sample(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hi", encoding="utf-8")
    assert main(["count", str(path), "--sample"]) == 2
    assert "not both" in capsys.readouterr().err


def test_offline_without_cached_encodings_the_cli_says_how_to_fix_it(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "TIKTOKEN_CACHE_DIR": str(tmp_path),
        "HTTPS_PROXY": "http://127.0.0.1:9",  # any download attempt fails at once
        "HTTP_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "",
    }
    for command in (["count", "--sample"], ["analyze"]):
        result = subprocess.run(
            [sys.executable, "-m", "langchain_tokenopt.cli.app", *command],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=REPO,
        )
        assert result.returncode == 2, result.stderr
        assert "TIKTOKEN_CACHE_DIR" in result.stderr
        assert "Traceback" not in result.stderr
