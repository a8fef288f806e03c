"""Speed work keeps the figures: the shipped sample's report equals the one recorded
before the analysis was split into replay and pricing, and `--jobs 2` gives the same
report as one process (cache hits across conversations, shared system prompts,
conversations found by id and by prefix, a budget)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from langchain_tokenopt.analysis import analyze_log
from langchain_tokenopt.analysis.levers import CacheLever, Lever, Step
from langchain_tokenopt.analysis.parallel import analyze_parallel
from langchain_tokenopt.analysis.records import Request
from langchain_tokenopt.analysis.replay import Sent
from langchain_tokenopt.cli.app import main

_WORDS = [
    "invoice",
    "refund",
    "shipping",
    "weather",
    "forecast",
    "translate",
    "summary",
    "python",
    "error",
    "database",
    "index",
    "query",
    "latency",
    "budget",
    "token",
    "prompt",
    "cache",
    "server",
    "deploy",
    "rollback",
    "schema",
]


def _comparable(report: dict[str, Any]) -> dict[str, Any]:
    """The report without where it was read from, the version and the process count."""
    found: dict[str, Any] = json.loads(json.dumps(report, default=str, sort_keys=True))
    found.pop("sources", None)
    found.pop("version", None)
    found["settings"].pop("jobs", None)
    return found


def _log(path: Path, conversations: int = 24, seed: int = 7) -> Path:
    """Conversations on two providers, half agents with tools, some with ids; some
    questions asked again in other conversations (cache hits across partitions)."""
    rng = random.Random(seed)
    tools = [
        {"type": "function", "function": {"name": f"tool_{w}", "description": f"{w} lookup"}}
        for w in _WORDS[:8]
    ]
    systems = ["You are a support agent. " * 250, "You write code reviews. " * 250]
    shared_questions = [" ".join(rng.choices(_WORDS, k=12)) for _ in range(4)]
    lines = []
    for number in range(conversations):
        model = rng.choice(["gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet-latest"])
        system = rng.choice(systems)
        if number % 4 == 0:  # the same first request as other conversations: cache hits
            model, system = "gpt-4o", systems[0]
        messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
        for turn in range(rng.randint(2, 9)):
            if turn == 0 and number % 4 == 0:
                question = shared_questions[number % 8 // 4]
            else:
                question = " ".join(rng.choices(_WORDS, k=rng.randint(5, 60)))
            if rng.random() < 0.2 and len(messages) > 2:
                question = str(messages[-2]["content"])  # a repeated turn: dedup
            messages.append({"role": "user", "content": question})
            reply = {"role": "assistant", "content": " ".join(rng.choices(_WORDS, k=30))}
            body: dict[str, Any] = {"model": model, "messages": list(messages[-40:])}
            body["response"] = {"choices": [{"message": reply}]}
            if number % 2:
                body["tools"] = tools
            if number % 3 == 0:
                body["metadata"] = {"conversation_id": f"c{number}"}
            lines.append(body)
            messages.append(reply)
    rng.shuffle(lines)  # conversations interleave; each keeps its order below
    lines.sort(key=lambda body: len(body["messages"]))
    path.write_text("".join(json.dumps(body) + "\n" for body in lines), "utf-8")
    return path


@pytest.mark.parametrize("budget", [None, Decimal("0.05")])
def test_two_jobs_give_the_report_of_one_on_a_generated_log(
    tmp_path: Path, budget: Decimal | None
) -> None:
    path = _log(tmp_path / "requests.jsonl")
    one = analyze_log([str(path)], budget_usd=budget)
    two = analyze_log([str(path)], budget_usd=budget, jobs=2)
    assert two.settings["jobs"] == 2
    # the log exercises what crosses partitions: cache hits, a shared system prompt
    assert (
        one.lever("cache").details["exact_hits"] + one.lever("cache").details["semantic_hits"] > 0
    )
    assert one.baseline.cached_input_tokens > 0
    assert _comparable(two.to_dict()) == _comparable(one.to_dict())


def test_two_jobs_give_the_report_of_one_on_the_sample() -> None:
    one = analyze_log(sample="requests")
    two = analyze_log(sample="requests", jobs=3)
    assert _comparable(two.to_dict()) == _comparable(one.to_dict())


def test_the_command_takes_jobs_and_refuses_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _log(tmp_path / "requests.jsonl", conversations=6)
    outputs = []
    for jobs in ("1", "2"):
        assert main(["analyze", str(path), "--jobs", jobs, "--json"]) == 0
        outputs.append(_comparable(json.loads(capsys.readouterr().out)))
    assert outputs[0] == outputs[1]
    assert main(["analyze", str(path), "--jobs", "0"]) == 2
    assert "--jobs must be at least 1" in capsys.readouterr().err


def _requests(count: int) -> Iterator[Request]:
    """`count` requests, four per conversation (found by id), made as they are read."""
    for i in range(count):
        number, turn = divmod(i, 4)
        messages = [
            {"role": "system", "content": "You answer questions about invoices."},
            *(
                {"role": role, "content": f"turn {t} of conversation {number}: {role}"}
                for t in range(turn + 1)
                for role in ("user", "assistant")
            ),
        ][:-1]
        yield Request("log", i + 1, "gpt-4o-mini", messages, conversation_id=f"c{number}")


def _parent_peak(count: int) -> tuple[int, int]:
    """(peak bytes the parent allocated during `--jobs 2`, requests in its report)."""
    import tracemalloc

    tracemalloc.start()
    try:
        report = analyze_parallel(
            _requests(count),
            partial(_requests, count),
            lambda: [CacheLever(similarity=None)],
            2,
            default_model="gpt-4o-mini",
            max_open_conversations=20,
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, report.requests


def test_the_parent_of_two_jobs_keeps_nothing_per_request() -> None:
    """Workers group the log and decide the cache themselves: the parent's memory does
    not grow with the log (it used to keep a conversation number per request, each
    cache hit and each conversation's last request)."""
    _parent_peak(200)  # warm-up: imports and first-use caches
    small, small_requests = _parent_peak(1_000)
    large, large_requests = _parent_peak(6_000)
    assert (small_requests, large_requests) == (1_000, 6_000)
    # (before: 1.8 MB and 8.6 MB, about 1.4 kB more per request)
    assert large < small * 1.25 + 100_000, (small, large)


class _Breaks(Lever):
    """A lever that fails on request 5 (in whichever worker replays it)."""

    name = "breaks"

    @property
    def label(self) -> str:
        return "breaks"

    def observe(self, step: Step) -> None:
        if step.index == 5:
            raise ValueError("lever broke on request 5")

    def apply(self, sent: Sent, step: Step) -> Sent:
        return sent


def test_a_failing_worker_fails_the_analysis_with_its_error() -> None:
    with pytest.raises(ValueError, match="lever broke on request 5"):
        analyze_parallel(
            _requests(40),
            partial(_requests, 40),
            lambda: [CacheLever(similarity=None), _Breaks()],
            2,
            default_model="gpt-4o-mini",
        )
