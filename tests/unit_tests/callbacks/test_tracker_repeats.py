"""The tracker's "repeated prompt" uses the cache's notion of identical requests.

Five users replay the same 3-turn conversation (`tests.support.conversations`). A
repeat is a call a model would answer exactly as an earlier one: what `TokenOptCache`
serves. Calls the cache served are not repeats to advise on.
"""

from __future__ import annotations

from typing import Any

from langchain_core.caches import InMemoryCache
from langchain_core.messages import HumanMessage

from langchain_tokenopt.cache.llm_cache import TokenOptCache
from langchain_tokenopt.callbacks.tracker import UsageTracker, track_usage
from tests.support.chat_models import CountingFakeChatModel, repeating, reply_with_usage
from tests.support.conversations import SUPPORT_TURNS, replay_sessions

SESSIONS = 5
CALLS = SESSIONS * len(SUPPORT_TURNS)


def run(cache: Any) -> tuple[CountingFakeChatModel, UsageTracker]:
    model = repeating(reply_with_usage(200, 40), model="gpt-4o-mini", cache=cache)
    with track_usage() as tracker:
        replay_sessions(model, SESSIONS)
    return model, tracker


def cache_suggestions(tracker: UsageTracker) -> list[Any]:
    return [s for s in tracker.report().suggestions() if s.kind == "cache"]


def test_without_a_cache_every_replayed_turn_is_a_repeat() -> None:
    model, tracker = run(cache=False)
    assert len(model.generated) == CALLS
    (suggestion,) = cache_suggestions(tracker)
    assert suggestion.figures["repeated_calls"] == CALLS - len(SUPPORT_TURNS)


def test_repeats_served_by_token_opt_cache_are_not_advised_on() -> None:
    model, tracker = run(cache=TokenOptCache())
    assert len(model.generated) == len(SUPPORT_TURNS)
    events = tracker.events
    assert sum(e.cache_hit for e in events) == CALLS - len(SUPPORT_TURNS)
    assert cache_suggestions(tracker) == []


def test_repeats_a_whole_message_cache_misses_are_advised_on() -> None:
    """InMemoryCache misses a turn whose history holds a replayed answer (its
    `total_cost: 0` changes the prompt): those calls repeat earlier ones."""
    model, tracker = run(cache=InMemoryCache())
    misses = len(model.generated)
    assert misses > len(SUPPORT_TURNS)
    (suggestion,) = cache_suggestions(tracker)
    assert suggestion.figures["repeated_calls"] == misses - len(SUPPORT_TURNS)


def test_different_tools_or_settings_are_not_repeats() -> None:
    tracker = UsageTracker()
    model = repeating(reply_with_usage(), model="gpt-4o-mini")
    weather = {"type": "function", "function": {"name": "weather", "parameters": {}}}
    clock = {"type": "function", "function": {"name": "clock", "parameters": {}}}
    question = [HumanMessage("what now?")]
    for runnable in (
        model,
        model.bind(tools=[weather]),
        model.bind(tools=[clock]),
        repeating(reply_with_usage(), model="gpt-4o-mini", max_tokens=5),
        repeating(reply_with_usage(), model="gpt-4o"),
        model.bind(tools=[clock]),  # the only repeat
    ):
        runnable.invoke(question, config={"callbacks": [tracker]})
    hashes = [e.prompt_hash for e in tracker.events]
    assert len(set(hashes)) == 5 and hashes[2] == hashes[5]
