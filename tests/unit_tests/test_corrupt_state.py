"""State written by something else: what the cache, the budget and the history make of it.

A value nested 100,000 levels deep (or not JSON at all) is planted straight into the
store, under the keys the components use. The cache treats it as a miss and carries
on; the budget and the summarizing history raise `CorruptStateError` naming the key
(fail closed), log it once, and work again once the key is deleted. Never a
`RecursionError`. `CorruptStateSuite` runs here on SQLite files and, in
tests/integration_tests/test_corrupt_state_redis.py, on a real Redis.
"""

from __future__ import annotations

import itertools
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, Generation

from langchain_tokenopt.cache.llm_cache import TokenOptCache
from langchain_tokenopt.callbacks.budget import TokenBudget
from langchain_tokenopt.chat_history.history import SummarizingChatMessageHistory
from langchain_tokenopt.core.tokens import TokenCounter
from langchain_tokenopt.errors import CorruptStateError, TokenOptError
from tests.support.chat_models import CountingFakeChatModel
from tests.support.planted import DEEP_JSON, NOT_JSON, Planted, sqlite_planted

QUESTION = [HumanMessage("What is the capital of France?")]
INPUT_TOKENS = int(TokenCounter("gpt-4o").count_messages(QUESTION))
UNREADABLE = [DEEP_JSON, NOT_JSON]


def unreadable_id(raw: str) -> str:
    return "deep" if raw == DEEP_JSON else "not-json"


def answer(text: str = "Paris.") -> AIMessage:
    return AIMessage(
        text,
        response_metadata={"model_name": "gpt-4o"},
        usage_metadata={"input_tokens": 100, "output_tokens": 10, "total_tokens": 110},
    )


def fake_model(**kwargs: Any) -> CountingFakeChatModel:
    reply = AIMessage(
        "Paris.",
        usage_metadata={
            "input_tokens": INPUT_TOKENS,
            "output_tokens": 10,
            "total_tokens": INPUT_TOKENS + 10,
        },
    )
    return CountingFakeChatModel(messages=itertools.repeat(reply), **kwargs)


def budget_key(name: str) -> str:
    return f"tokenopt:budget:{{{name}}}:all:tokens:all"


class CorruptStateSuite:
    """Subclasses provide a `planted` fixture (a real store plus raw writes)."""

    # -- the cache: a miss, never an error -----------------------------------------

    @pytest.mark.parametrize("raw", UNREADABLE, ids=unreadable_id)
    def test_an_unreadable_cache_entry_is_a_miss_deleted_and_logged(
        self, planted: Planted, raw: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        cache = TokenOptCache(planted.store, flush_interval_seconds=0)
        cache.update("prompt", "llm", [ChatGeneration(message=answer())])
        ((key, _),) = list(planted.store.scan("tokenopt:cache:e:"))
        planted.plant(key, raw)
        with caplog.at_level(logging.WARNING, logger="langchain_tokenopt.cache.llm_cache"):
            assert cache.lookup("prompt", "llm") is None
        assert planted.read_raw(key) is None  # the cache dropped its own entry
        assert "Dropping unreadable cache entry" in caplog.text
        cache.update("prompt", "llm", [ChatGeneration(message=answer("Paris again."))])
        hit = cache.lookup("prompt", "llm")
        assert hit is not None and hit[0].text == "Paris again."
        stats = cache.stats()
        assert (stats.hits, stats.misses, stats.entries) == (1, 1, 1)

    async def test_an_unreadable_cache_entry_is_an_async_miss(self, planted: Planted) -> None:
        cache = TokenOptCache(planted.store, flush_interval_seconds=0)
        await cache.aupdate("prompt", "llm", [Generation(text="x")])
        ((key, _),) = list(planted.store.scan("tokenopt:cache:e:"))
        planted.plant(key, DEEP_JSON)
        assert await cache.alookup("prompt", "llm") is None
        assert planted.read_raw(key) is None

    def test_a_deep_payload_inside_a_readable_entry_is_a_miss(self, planted: Planted) -> None:
        cache = TokenOptCache(planted.store, similarity_threshold=0.9)
        cache.update("prompt", "llm", [Generation(text="x")])
        ((key, entry),) = list(planted.store.scan("tokenopt:cache:e:"))
        planted.store.set(key, {**entry, "g": DEEP_JSON})
        assert cache.lookup("prompt", "llm") is None
        assert planted.store.get(key) is None

    @pytest.mark.parametrize("raw", UNREADABLE, ids=unreadable_id)
    def test_stats_read_unreadable_counters_as_zero_and_count_on(
        self, planted: Planted, raw: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        namespace = f"ns{uuid.uuid4().hex[:8]}"  # counters are logged once per key
        cache = TokenOptCache(planted.store, namespace=namespace, flush_interval_seconds=0)
        cache.update("prompt", "llm", [ChatGeneration(message=answer())])
        assert cache.lookup("prompt", "llm") is not None
        assert cache.lookup("other", "llm") is None
        stats_ns = f"{namespace}:cachestats"
        for name in ("hits", "misses", "m:gpt-4o:in"):
            planted.plant(f"{stats_ns}:{name}", raw)
        with caplog.at_level(logging.WARNING):
            stats = cache.stats()
            assert (stats.hits, stats.misses, stats.entries) == (0, 0, 1)
            assert stats.by_model["gpt-4o"].hits == 1  # readable counters still count
            cache.lookup("prompt", "llm")  # writes through: the counter restarts from 0
            cache.lookup("nothing", "llm")
            again = cache.stats()
        assert (again.hits, again.misses) == (1, 1)
        assert caplog.text.count(f"{stats_ns}:hits cannot be read") == 1

    async def test_async_stats_read_unreadable_counters_as_zero(self, planted: Planted) -> None:
        cache = TokenOptCache(planted.store, flush_interval_seconds=0)
        await cache.aupdate("prompt", "llm", [Generation(text="x")])
        await cache.alookup("prompt", "llm")
        planted.plant("tokenopt:cachestats:hits", DEEP_JSON)
        stats = await cache.astats()
        assert (stats.hits, stats.misses, stats.entries) == (0, 0, 1)

    # -- the budget: fails closed, names the key ------------------------------------

    @pytest.mark.parametrize("raw", UNREADABLE, ids=unreadable_id)
    def test_an_unreadable_budget_counter_stops_calls_until_its_key_is_deleted(
        self, planted: Planted, raw: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        name = f"b{uuid.uuid4().hex[:8]}"
        budget = TokenBudget(max_tokens=10_000, window=None, store=planted.store, name=name)
        model = fake_model()
        model.invoke(QUESTION, config={"callbacks": [budget]})
        planted.plant(budget_key(name), raw)
        with caplog.at_level(logging.ERROR):
            with pytest.raises(CorruptStateError) as remaining_error:
                budget.remaining()
            with pytest.raises(CorruptStateError) as call_error:
                model.invoke(QUESTION, config={"callbacks": [budget]})
        for error in (remaining_error.value, call_error.value):
            assert error.key == budget_key(name)
            assert "delete this key" in str(error)
            assert isinstance(error, (TokenOptError, ValueError))
        assert len(model.generated) == 1  # the refused call never reached the model
        assert planted.read_raw(budget_key(name)) == raw  # left for the user to inspect
        assert caplog.text.count("cannot be read") == 1  # logged once
        assert not list(planted.store.scan(f"tokenopt:budget-lease:{{{name}}}:"))
        planted.store.delete(budget_key(name))
        model.invoke(QUESTION, config={"callbacks": [budget]})
        assert budget.remaining().used_tokens == INPUT_TOKENS + 10

    def test_a_counter_that_turns_unreadable_mid_call_is_logged_not_raised(
        self, planted: Planted, caplog: pytest.LogCaptureFixture
    ) -> None:
        name = f"b{uuid.uuid4().hex[:8]}"
        budget = TokenBudget(max_tokens=10_000, window=None, store=planted.store, name=name)

        class Corrupting(CountingFakeChatModel):
            def _generate(self, *args: Any, **kwargs: Any) -> Any:
                planted.plant(budget_key(name), DEEP_JSON)
                return super()._generate(*args, **kwargs)

        model = Corrupting(messages=itertools.repeat(AIMessage("Paris.")))
        with caplog.at_level(logging.ERROR):
            result = model.invoke(QUESTION, config={"callbacks": [budget]})
        assert result.content == "Paris."  # the paid answer is delivered
        assert budget_key(name) in caplog.text
        with pytest.raises(CorruptStateError):
            budget.remaining()

    # -- the summarizing history: refuses, names the key, appends nothing -----------

    @pytest.mark.parametrize("raw", UNREADABLE, ids=unreadable_id)
    def test_an_unreadable_summary_state_raises_and_nothing_is_appended(
        self, planted: Planted, raw: str
    ) -> None:
        session = f"s{uuid.uuid4().hex[:8]}"
        key = f"tokenopt:history:{session}"
        planted.plant(key, raw)
        history = SummarizingChatMessageHistory(
            max_tokens=200, state_store=planted.store, session_id=session
        )
        with pytest.raises(CorruptStateError) as caught:
            history.add_messages([HumanMessage("hello")])
        assert caught.value.key == key
        assert "Delete this key" in str(caught.value)
        assert history.full_messages == []
        with pytest.raises(CorruptStateError):
            _ = history.messages
        planted.store.delete(key)
        history.add_messages([HumanMessage("hello")])
        assert [m.content for m in history.messages] == ["hello"]

    async def test_an_unreadable_summary_state_raises_from_async_reads(
        self, planted: Planted
    ) -> None:
        planted.plant("tokenopt:history:async", DEEP_JSON)
        history = SummarizingChatMessageHistory(
            max_tokens=200, state_store=planted.store, session_id="async"
        )
        with pytest.raises(CorruptStateError):
            await history.aadd_messages([HumanMessage("hello")])
        with pytest.raises(CorruptStateError):
            await history.aget_messages()
        assert history.full_messages == []


class TestCorruptStateOnSQLite(CorruptStateSuite):
    @pytest.fixture
    def planted(self, tmp_path: Path) -> Iterator[Planted]:
        built = sqlite_planted(tmp_path / "state.db")
        yield built
        built.store.close()  # type: ignore[attr-defined]
