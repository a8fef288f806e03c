"""The replay: a lever is one object behind one interface, the combined replay chains
them, and memory is bounded by the open conversations, not the log."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from langchain_tokenopt.analysis import Lever, Request, Step, analyze_requests
from langchain_tokenopt.analysis.levers import CacheLever, CompressionLever
from langchain_tokenopt.analysis.replay import Sent
from langchain_tokenopt.core.pricing import price
from langchain_tokenopt.core.tokens import TokenCounter
from langchain_tokenopt.core.usage import Usage


class DropSystemPrompt(Lever):
    """A lever of a test's own: never send system messages."""

    name = "no_system"

    def __init__(self) -> None:
        self.seen = 0

    @property
    def label(self) -> str:
        return "no system prompt"

    def observe(self, step: Step) -> None:
        self.seen += 1

    def apply(self, sent: Sent, step: Step) -> Sent:
        return sent.with_messages([m for m in sent.messages if m.role != "system"])


class HalveOutput(Lever):
    name = "short_answers"

    @property
    def label(self) -> str:
        return "shorter answers"

    def observe(self, step: Step) -> None:
        pass

    def apply(self, sent: Sent, step: Step) -> Sent:
        return replace(sent, output_tokens=sent.output_tokens // 2)


def request(*texts: str, conversation: str | None = None, model: str = "gpt-4o-mini") -> Request:
    messages: list[dict[str, Any]] = [{"role": "system", "content": "You answer in French."}]
    messages += [{"role": "user", "content": text} for text in texts]
    reply = {"role": "assistant", "content": "D'accord, voici une réponse assez longue."}
    return Request("log", 1, model, messages, [], reply, None, conversation)


def test_a_new_lever_is_one_object_and_the_combined_replay_chains_them() -> None:
    drop, halve = DropSystemPrompt(), HalveOutput()
    requests = [request("Bonjour"), request("Merci")]
    report = analyze_requests(requests, levers=[drop, halve])
    assert drop.seen == 2 and [r.name for r in report.levers] == ["no_system", "short_answers"]
    counter = TokenCounter("gpt-4o-mini")
    system = int(counter.count_message({"role": "system", "content": "You answer in French."}))
    assert report.lever("no_system").after.input_tokens == report.baseline.input_tokens - 2 * system
    assert report.lever("short_answers").after.output_tokens == sum(
        out // 2 for out in [report.baseline.output_tokens // 2] * 2
    )
    assert report.combined.input_tokens == report.lever("no_system").after.input_tokens
    assert report.combined.output_tokens == report.lever("short_answers").after.output_tokens
    expected = price(
        "gpt-4o-mini",
        Usage(
            input_tokens=report.combined.input_tokens, output_tokens=report.combined.output_tokens
        ),
    )
    assert report.combined.cost_usd == expected


def test_conversations_beyond_the_open_limit_are_closed_and_still_counted() -> None:
    requests = [request(f"Question {n}", conversation=f"c{n}") for n in range(30)]
    report = analyze_requests(requests, levers=[CompressionLever()], max_open_conversations=4)
    assert report.conversations == 30 and report.requests == 30
    assert len(report.conversations_top) == 30
    assert sum((row.costs[0] for row in report.conversations_top), Decimal(0)) == (
        report.baseline.cost_usd
    )


def test_the_per_call_series_is_thinned_evenly_and_bounded() -> None:
    requests = [request(f"Q{n}", conversation="one") for n in range(4500)]
    report = analyze_requests(requests, levers=[])
    calls = report.calls
    assert len(calls["index"]) < 2000 and calls["every"] == 4
    assert calls["index"][:3] == [0, 4, 8]


def test_a_model_without_a_price_is_counted_not_priced() -> None:
    report = analyze_requests([request("Hi", model="my-own-model"), request("Hi again")], levers=[])
    assert report.baseline.unpriced_requests == 1 and report.baseline.priced_requests == 1
    assert report.to_dict()["models"][-1]["cost_usd"] is None or any(
        not row["priced"] for row in report.to_dict()["models"]
    )


def _cache_hits(requests: list[Request], lever: CacheLever) -> tuple[int, int]:
    analyze_requests(requests, levers=[lever])
    return lever.exact_hits, lever.semantic_hits


def test_the_cache_lever_matches_a_reworded_question_in_the_same_context_only() -> None:
    asked = request("Bonjour", "What is the weather forecast for Paris tomorrow?")
    reworded = request("Bonjour", "what is the weather forecast for paris tomorrow")
    elsewhere = request("Salut", "what is the weather forecast for paris tomorrow")
    assert _cache_hits([asked, asked, reworded, elsewhere], CacheLever(0.9)) == (1, 1)
    assert _cache_hits([asked, reworded], CacheLever(None)) == (0, 0)


def test_the_cache_lever_indexes_texts_only_once_a_partition_repeats() -> None:
    lever = CacheLever(0.9)
    requests = [request(f"Question {n} about the weather in Paris?") for n in range(5)]
    assert _cache_hits(requests, lever) == (0, 0)
    assert lever._semantic is not None and len(lever._semantic.index) == 0
    # a repeated partition indexes everything before it, in order, and then matches
    requests.append(request("question 4 about the weather in paris"))
    lever = CacheLever(0.9)
    assert _cache_hits(requests, lever) == (0, 1)
    assert lever._semantic is not None and len(lever._semantic.index) == 5


def test_the_cache_lever_forgets_its_oldest_entries_beyond_its_size() -> None:
    first = request("Bonjour", "What is the weather forecast for Paris tomorrow?")
    second = request("Salut", "Which museums open late in Lyon on Fridays?")
    again = request("Bonjour", "what is the weather forecast for paris tomorrow")
    assert _cache_hits([first, second, again], CacheLever(0.9, max_semantic_entries=2)) == (0, 1)
    small = CacheLever(0.9, max_semantic_entries=1)
    assert _cache_hits([first, second, again], small) == (0, 0)
    assert small._semantic is not None and len(small._semantic.index) == 1


def test_the_history_lever_takes_the_recall_message_count_from_the_exact_view(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from langchain_tokenopt.analysis.levers import HistoryLever
    from langchain_tokenopt.analysis.replay import Message
    from langchain_tokenopt.chat_history.planner import RECALL_HEADER

    known: list[tuple[Message, int]] = []
    original = Message.know_tokens

    def spy(self: Message, counter: TokenCounter, tokens: int) -> None:
        known.append((self, tokens))
        original(self, counter, tokens)

    monkeypatch.setattr(Message, "know_tokens", spy)
    facts = [
        f"Note {n}: the {animal} in room {n} eats {food} at {n + 6} o'clock every day."
        for n, (animal, food) in enumerate(
            [("otter", "fish"), ("parrot", "seeds"), ("tortoise", "lettuce"), ("ferret", "eggs")]
            * 4
        )
    ]
    texts: list[str] = []
    requests = []
    for fact in [*facts, "What does the parrot in room 1 eat, and when?"]:
        texts.append(fact)
        requests.append(request(*texts, conversation="c1"))
    lever = HistoryLever(max_tokens=300)
    report = analyze_requests(requests, levers=[lever])
    assert lever.folded > 0
    counter = TokenCounter("gpt-4o-mini")
    recalled = [m for m, _ in known if m.text.startswith(RECALL_HEADER)]
    assert recalled, "the last question recalls the parrot's note"
    for message, tokens in known:
        assert tokens == counter.count_message(message.base)
        assert message.tokens(counter) == tokens
    assert report.requests == len(requests)


def test_the_cache_lever_works_out_exactness_features_only_when_a_context_repeats(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from langchain_tokenopt.analysis.levers import cache

    seen: list[str] = []
    original = cache.exactness_features  # type: ignore[attr-defined]

    def spy(text: str) -> tuple[Any, ...]:
        seen.append(text)
        return original(text)

    monkeypatch.setattr(cache, "exactness_features", spy)
    fresh = [request(f"Hello {n}", f"What is {n} plus {n}?") for n in range(4)]
    assert _cache_hits(fresh, CacheLever(0.9)) == (0, 0)
    assert seen == []  # no context came twice: no partition was needed
    again = [
        *fresh,
        request("Hello 2", "what is 2 plus 2"),
        request("Hello 2", "What is 2 plus 3?"),
    ]
    seen.clear()
    assert _cache_hits(again, CacheLever(0.9)) == (0, 1)
    # the repeated context's query indexes every earlier turn, in order (so each one's
    # partition is worked out then), and each turn is worked out once
    assert sorted(seen) == sorted(
        [f"What is {n} plus {n}?" for n in range(4)] + ["what is 2 plus 2", "What is 2 plus 3?"]
    )
