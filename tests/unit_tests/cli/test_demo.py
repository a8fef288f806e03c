"""Specification of `tokenopt demo`: an optimized chat app, offline, and what it saved."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from langchain_tokenopt.cli.app import main
from langchain_tokenopt.cli.demo import (
    CUSTOMERS,
    FOLLOW_UPS,
    OPENERS,
    SYSTEM_PROMPT,
    DemoChatModel,
    run_demo,
)
from langchain_tokenopt.core.pricing import price
from langchain_tokenopt.core.tokens import TokenCounter


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    assert main(["demo", *argv, "--json"]) == 0
    result: dict[str, Any] = json.loads(capsys.readouterr().out)
    return result


def test_demo_prints_what_the_optimized_app_saved(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "plain app" in out and "optimized" in out
    assert "answered from TokenOptCache" in out
    assert "folded into running summaries" in out
    assert "PromptCompressor" in out


def test_optimized_run_spends_fewer_tokens_and_dollars(capsys: pytest.CaptureFixture[str]) -> None:
    report = run_json(capsys, "--sessions", "4")
    base, best = report["baseline"], report["optimized"]
    assert base["calls"] == best["calls"] == 4 * (1 + len(FOLLOW_UPS))
    assert best["input_tokens"] < base["input_tokens"]
    assert Decimal(best["cost_usd"]) < Decimal(base["cost_usd"])
    assert report["input_tokens_saved"] == base["input_tokens"] - best["input_tokens"]
    # Two openers shared by four sessions: the cache answers at least the two repeats
    # (and any later request the summarized context made byte-identical).
    assert report["cache_hits"] >= 2
    assert best["cache_hits"] == report["cache_hits"]
    assert report["folded_messages"] > 0
    assert report["compression_tokens_saved"] > 0


def test_baseline_numbers_are_the_exact_counts_of_the_plain_conversation() -> None:
    result = run_demo(sessions=2)
    counter = TokenCounter("gpt-4o-mini")
    model = DemoChatModel()
    system = SystemMessage(SYSTEM_PROMPT)
    input_tokens = output_tokens = 0
    for opener, name in zip(OPENERS[:2], CUSTOMERS[:2], strict=True):
        history: list[BaseMessage] = []
        for question in [opener, *(q.replace("{name}", name) for q in FOLLOW_UPS)]:
            request = [system, *history, HumanMessage(question)]
            reply = model.invoke(request)
            assert isinstance(reply, AIMessage)
            input_tokens += int(counter.count_messages(request))
            output_tokens += int(counter.count_text(str(reply.content)))
            history += [request[-1], reply]
    assert result.baseline.input_tokens == input_tokens
    assert result.baseline.output_tokens == output_tokens
    expected = price("gpt-4o-mini", {"input_tokens": input_tokens, "output_tokens": output_tokens})
    assert result.baseline.cost_usd == expected


def test_demo_model_answers_from_its_script_with_usage() -> None:
    reply = DemoChatModel().invoke("Does the discount code SPRING15 work on tents?")
    assert isinstance(reply, AIMessage)
    assert "15% off" in str(reply.content)
    assert reply.usage_metadata is not None
    assert reply.usage_metadata["output_tokens"] == TokenCounter("gpt-4o-mini").count_text(
        str(reply.content)
    )


def test_other_priced_models_can_be_demoed(capsys: pytest.CaptureFixture[str]) -> None:
    report = run_json(capsys, "--model", "gpt-4o", "--sessions", "2")
    assert report["model"] == "gpt-4o"
    assert Decimal(report["cost_saved_usd"]) > 0


def test_bad_options_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--model", "my-model"]) == 2
    assert "no price is known for model 'my-model'" in capsys.readouterr().err
    assert main(["demo", "--sessions", "0"]) == 2
    assert "--sessions must be at least 1" in capsys.readouterr().err
