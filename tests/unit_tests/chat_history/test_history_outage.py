"""SummarizingChatMessageHistory when its state store goes away: trimmed, never lost.

The state store is a real `MemoryStore` with an off switch: while `down`, its calls
raise `StoreUnavailableError`, as `RedisStore` does when Redis is unreachable (the
same against a killed redis-server is in tests/integration_tests/test_store_outage.py).
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from langchain_core._api import suppress_langchain_deprecation_warning
from langchain_core.chat_history import InMemoryChatMessageHistory
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.runnables import RunnableLambda

from langchain_tokenopt.chat_history.history import SummarizingChatMessageHistory
from langchain_tokenopt.core.tokens import TokenCounter
from tests.support.stores import SwitchableStore

COUNTER = TokenCounter("gpt-4o")
BUDGET = 150
HISTORY_LOGGER = "langchain_tokenopt.chat_history.history"
STATE_KEY = "tokenopt:history:s1"


class CountingSummarizer:
    """A real Runnable summarizer that counts its calls and records what it built on."""

    def __init__(self, watched: SwitchableStore | None = None) -> None:
        self.calls = 0
        self.previous_summaries: list[str] = []
        self.watched = watched
        self.saved_when_called: list[Any] = []  # the state in `watched` at each call
        self.runnable = RunnableLambda(self._summarize)

    def _summarize(self, request: dict[str, Any]) -> str:
        self.calls += 1
        self.previous_summaries.append(request["previous_summary"])
        if self.watched is not None and not self.watched.down:
            self.saved_when_called.append(self.watched.get(STATE_KEY))
        return f"summary #{self.calls} of {len(request['messages'])} messages"


def in_memory() -> InMemoryChatMessageHistory:
    with suppress_langchain_deprecation_warning():
        return InMemoryChatMessageHistory()


def turn(i: int) -> list[BaseMessage]:
    return [HumanMessage(f"My locker number {i} holds a blue umbrella."), AIMessage("Noted.")]


def make_history(
    state: SwitchableStore,
    summarizer: CountingSummarizer,
    wrapped: InMemoryChatMessageHistory | None = None,
) -> SummarizingChatMessageHistory:
    return SummarizingChatMessageHistory(
        wrapped if wrapped is not None else in_memory(),
        max_tokens=BUDGET,
        token_counter=COUNTER,
        summarizer=summarizer.runnable,
        state_store=state,
        session_id="s1",
    )


def saved_state(state: SwitchableStore) -> dict[str, Any]:
    saved = state.get(STATE_KEY)
    assert isinstance(saved, dict), "no summary state was saved"
    return saved


def outage_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == HISTORY_LOGGER
        and r.levelno == logging.WARNING
        and "SwitchableStore is unavailable" in r.getMessage()
    ]


def test_messages_stay_within_budget_and_adds_are_kept_while_the_state_store_is_down(
    caplog: pytest.LogCaptureFixture,
) -> None:
    state, summarizer = SwitchableStore(), CountingSummarizer()
    state.down = True
    history = make_history(state, summarizer)
    with caplog.at_level(logging.WARNING, logger=HISTORY_LOGGER):
        for i in range(30):
            history.add_messages(turn(i))
            view = history.messages
            assert COUNTER.count_messages(view) <= BUDGET
    assert len(history.full_messages) == 60
    assert view[-2:] == turn(29)  # the newest turn is shown
    assert summarizer.calls == 0  # no fold whose result could not be saved
    assert len(outage_warnings(caplog)) == 1  # rate-limited: one per 30 s


def test_a_fold_that_could_not_be_saved_stays_in_view_and_is_saved_later() -> None:
    state = SwitchableStore()
    summarizer = CountingSummarizer(watched=state)
    history = make_history(state, summarizer)
    history.add_messages(turn(0))  # reads the (empty) saved state
    state.down = True  # adds do not touch the state store until a fold saves
    i = 1
    while summarizer.calls == 0 and i < 50:  # add turns until one triggers a fold
        history.add_messages(turn(i))
        i += 1
    summary = history.summary
    assert summary and state.down
    assert history.messages[0].text.endswith(summary)  # in view, although unsaved
    for j in range(i, i + 10):
        history.add_messages(turn(j))
        assert COUNTER.count_messages(history.messages) <= BUDGET
    assert summarizer.calls == 1  # no further fold during the outage
    assert history.summary == summary
    state.down = False
    assert state.get(STATE_KEY) is None
    history.add_messages(turn(99))  # writes the kept state, then folds as usual
    # The kept state reached the store before the next fold, which built on it.
    assert summarizer.saved_when_called[0]["summary"] == summary
    assert summarizer.previous_summaries[1] == summary
    saved = state.get(STATE_KEY)
    assert saved is not None
    assert (saved["summary"], saved["covered"]) == (
        history.summary,
        history.folded_message_count,
    )


def test_a_saved_summary_is_still_shown_while_the_state_store_is_down() -> None:
    state, summarizer = SwitchableStore(), CountingSummarizer()
    history = make_history(state, summarizer)
    for i in range(20):
        history.add_messages(turn(i))
    summary = history.summary
    assert summary and state.get(STATE_KEY) is not None
    state.down = True
    view = history.messages
    assert view[0].text.endswith(summary)
    assert COUNTER.count_messages(view) <= BUDGET


def test_the_state_store_coming_back_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    state, summarizer = SwitchableStore(), CountingSummarizer()
    history = make_history(state, summarizer)
    state.down = True
    history.add_messages(turn(0))
    _ = history.messages
    state.down = False
    with caplog.at_level(logging.INFO, logger=HISTORY_LOGGER):
        _ = history.messages
    assert f"The state store of {STATE_KEY} answers again after 2 failed calls." in caplog.text


def test_clear_during_an_outage_clears_the_transcript_and_the_saved_state_later() -> None:
    state, summarizer = SwitchableStore(), CountingSummarizer()
    history = make_history(state, summarizer)
    for i in range(20):
        history.add_messages(turn(i))
    assert saved_state(state)["covered"] > 0
    state.down = True
    history.clear()
    assert history.full_messages == []
    state.down = False
    history.add_messages([HumanMessage("a new conversation")])
    assert saved_state(state)["covered"] == 0
    assert history.messages == [HumanMessage("a new conversation")]


async def test_async_reads_and_adds_while_the_state_store_is_down() -> None:
    state, summarizer = SwitchableStore(), CountingSummarizer()
    state.down = True
    history = make_history(state, summarizer)
    for i in range(20):
        await history.aadd_messages(turn(i))
        assert COUNTER.count_messages(await history.aget_messages()) <= BUDGET
    assert len(history.full_messages) == 40
    assert summarizer.calls == 0
    state.down = False
    await history.aadd_messages(turn(20))  # back: folds again and saves
    assert summarizer.calls > 0
    assert saved_state(state)["summary"] == history.summary


class FailingHistory(InMemoryChatMessageHistory):
    """A wrapped history whose own storage fails."""

    def add_messages(self, messages: Any) -> None:
        raise OSError("transcript storage is down")


def test_errors_of_the_wrapped_history_are_not_hidden() -> None:
    with suppress_langchain_deprecation_warning():
        wrapped = FailingHistory()
    history = make_history(SwitchableStore(), CountingSummarizer(), wrapped=wrapped)
    with pytest.raises(OSError, match="transcript storage is down"):
        history.add_messages(turn(0))
