"""Specification of SummarizingChatMessageHistory: budget, folding, tool pairs, resume."""

from __future__ import annotations

import logging
import random
import threading
import warnings
from collections.abc import Sequence
from typing import Any

import pytest
from langchain_core._api import suppress_langchain_deprecation_warning
from langchain_core.chat_history import InMemoryChatMessageHistory
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.runnables import RunnableConfig, RunnableLambda

from langchain_tokenopt.chat_history.history import SummarizingChatMessageHistory
from langchain_tokenopt.chat_history.summarizers import BaseSummarizer, LLMSummarizer
from langchain_tokenopt.core.tokens import TokenCounter
from langchain_tokenopt.stores import MemoryStore

COUNTER = TokenCounter("gpt-4o")
WORDS = str.split(
    "alpha budget Paris invoice meeting 42 Monday delivery Alice report contract "
    "2024 server latency coffee espresso warranty ticket refund Seattle blue project"
)


def _in_memory() -> InMemoryChatMessageHistory:
    with suppress_langchain_deprecation_warning():
        return InMemoryChatMessageHistory()


class RecordingSummarizer(BaseSummarizer):
    """A real summarizer that records what it is asked and returns a short text."""

    def __init__(self, reply: str | None = None, fail_times: int = 0) -> None:
        self.calls: list[tuple[str, list[BaseMessage], int | None]] = []
        self.reply = reply
        self.fail_times = fail_times

    def summarize(
        self,
        messages: Sequence[BaseMessage],
        previous_summary: str = "",
        max_tokens: int | None = None,
        *,
        config: RunnableConfig | None = None,
    ) -> str:
        self.calls.append((previous_summary, list(messages), max_tokens))
        if self.fail_times > 0:
            self.fail_times -= 1
            raise RuntimeError("summarizer is down")
        return self.reply if self.reply is not None else f"summary #{len(self.calls)}"


def _sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)) + "."


def _random_turn(rng: random.Random, turn: int) -> list[BaseMessage]:
    kind = rng.random()
    if kind < 0.1:
        return [SystemMessage(f"Rule {turn}: {_sentence(rng, 5)}")]
    human: BaseMessage = HumanMessage(_sentence(rng, rng.randint(1, 40)))
    if kind < 0.2:
        human = HumanMessage(
            [
                {"type": "text", "text": _sentence(rng, 6)},
                {
                    "type": "image_url",
                    "image_url": {"url": "https://x.test/a.png", "detail": "low"},
                },
            ]
        )
    if kind < 0.3:
        human = HumanMessage(_sentence(rng, rng.randint(200, 600)))  # long
    if kind < 0.55:
        calls = [
            {"name": f"tool_{j}", "args": {"q": _sentence(rng, 3)}, "id": f"call_{turn}_{j}"}
            for j in range(rng.randint(1, 3))
        ]
        results = [
            ToolMessage(_sentence(rng, rng.randint(1, 120)), tool_call_id=c["id"], name=c["name"])
            for c in calls
        ]
        return [human, AIMessage("", tool_calls=calls), *results, AIMessage(_sentence(rng, 8))]
    return [human, AIMessage(_sentence(rng, rng.randint(1, 60)))]


def _assert_tool_pairs_intact(view: list[BaseMessage], stored: list[BaseMessage]) -> None:
    answered = {m.tool_call_id for m in stored if isinstance(m, ToolMessage)}
    shown_calls: set[str] = set()
    for i, message in enumerate(view):
        if isinstance(message, AIMessage):
            ids = [c["id"] for c in message.tool_calls if c["id"] is not None]
            shown_calls.update(ids)
            following = {
                m.tool_call_id for m in view[i + 1 : i + 1 + len(ids)] if isinstance(m, ToolMessage)
            }
            assert {x for x in ids if x in answered} <= following, "tool results left behind"
        if isinstance(message, ToolMessage):
            assert message.tool_call_id in shown_calls, "orphaned ToolMessage in view"


def _first_turn(view: list[BaseMessage]) -> BaseMessage | None:
    return next((m for m in view if not isinstance(m, SystemMessage)), None)


@pytest.mark.parametrize("seed", range(12))
def test_view_never_exceeds_budget_nor_orphans_tool_calls(
    seed: int, caplog: pytest.LogCaptureFixture
) -> None:
    rng = random.Random(seed)
    budget = rng.choice([40, 90, 200, 500, 1500])
    history = SummarizingChatMessageHistory(max_tokens=budget, token_counter=COUNTER)
    added: list[BaseMessage] = []
    for turn in range(40):
        batch = _random_turn(rng, turn)
        history.add_messages(batch)
        added.extend(batch)
        view = history.messages
        assert COUNTER.count_messages(view) <= budget
        assert not isinstance(_first_turn(view), ToolMessage)
        _assert_tool_pairs_intact(view, added)
    assert history.full_messages == added
    assert "Summarizer failed" not in caplog.text


def test_full_messages_keeps_every_original_message() -> None:
    history = SummarizingChatMessageHistory(max_tokens=100, token_counter=COUNTER)
    added = [HumanMessage(f"message number {i} about the Oslo trip") for i in range(50)]
    for message in added:
        history.add_message(message)
    assert history.full_messages == added
    assert history.folded_message_count > 0
    assert len(history.messages) < len(added)


def test_default_view_is_pinned_system_then_summary_then_recent_turns() -> None:
    history = SummarizingChatMessageHistory(max_tokens=150, token_counter=COUNTER)
    history.add_messages([SystemMessage("You are a travel agent.")])
    for i in range(20):
        history.add_messages([HumanMessage(f"Flight {i} leaves at {i}:30."), AIMessage("Ok.")])
    view = history.messages
    assert view[0] == SystemMessage("You are a travel agent.")
    assert isinstance(view[1], SystemMessage)
    assert view[1].text.startswith("Summary of the earlier conversation:")
    assert view[-2:] == [HumanMessage("Flight 19 leaves at 19:30."), AIMessage("Ok.")]


def test_summary_message_stays_byte_identical_until_the_next_fold() -> None:
    summarizer = RecordingSummarizer()
    history = SummarizingChatMessageHistory(
        max_tokens=200, summarizer=summarizer, token_counter=COUNTER
    )
    seen: list[tuple[int, str]] = []
    for i in range(40):
        history.add_messages([HumanMessage(f"turn {i} " + "word " * 10), AIMessage("ok")])
        summary = history.messages[0]
        assert isinstance(summary.content, str)
        seen.append((len(summarizer.calls), summary.content))
    by_fold: dict[int, set[str]] = {}
    for folds, content in seen:
        by_fold.setdefault(folds, set()).add(content)
    assert len(by_fold) > 2
    assert all(len(contents) == 1 for contents in by_fold.values())


def test_folding_has_hysteresis_down_to_the_target() -> None:
    summarizer = RecordingSummarizer(reply="short summary")
    history = SummarizingChatMessageHistory(
        max_tokens=500, target_tokens=250, summarizer=summarizer, token_counter=COUNTER
    )
    turn_tokens = COUNTER.count_messages([HumanMessage("x " * 20), AIMessage("y " * 20)])
    sizes_after_fold = []
    for _ in range(60):
        before = len(summarizer.calls)
        history.add_messages([HumanMessage("x " * 20), AIMessage("y " * 20)])
        if len(summarizer.calls) > before:
            sizes_after_fold.append(COUNTER.count_messages(history.messages))
    assert sizes_after_fold and all(size <= 250 for size in sizes_after_fold)
    # Each fold frees about (500 - 250) tokens, so far fewer folds than turns.
    assert len(summarizer.calls) <= 60 * turn_tokens // 200


def test_summarizer_gets_previous_summary_and_only_newly_folded_messages() -> None:
    summarizer = RecordingSummarizer()
    history = SummarizingChatMessageHistory(
        max_tokens=120, summarizer=summarizer, token_counter=COUNTER
    )
    added = []
    for i in range(30):
        batch = [HumanMessage(f"question {i} " + "w " * 8), AIMessage(f"answer {i}")]
        history.add_messages(batch)
        added.extend(batch)
    assert len(summarizer.calls) >= 3
    folded: list[BaseMessage] = []
    for n, (previous, messages, cap) in enumerate(summarizer.calls):
        assert previous == ("" if n == 0 else f"summary #{n}")
        assert cap is not None and cap <= 60
        folded.extend(messages)
    # Consecutive, never repeated: the folds together are a prefix of the transcript.
    assert folded == added[: len(folded)]
    assert history.folded_message_count == len(folded)


def test_summary_longer_than_its_cap_is_truncated() -> None:
    summarizer = RecordingSummarizer(reply="very long summary " * 200)
    history = SummarizingChatMessageHistory(
        max_tokens=300, max_summary_tokens=50, summarizer=summarizer, token_counter=COUNTER
    )
    for i in range(30):
        history.add_messages([HumanMessage(f"fact {i} " + "z " * 15), AIMessage("noted")])
    assert summarizer.calls
    assert 0 < COUNTER.count_text(history.summary) <= 50
    assert COUNTER.count_messages(history.messages) <= 300


def test_tool_call_and_its_results_fold_together() -> None:
    summarizer = RecordingSummarizer()
    history = SummarizingChatMessageHistory(
        max_tokens=250, summarizer=summarizer, token_counter=COUNTER
    )
    for i in range(15):
        call = {"name": "lookup", "args": {"order": i}, "id": f"c{i}"}
        history.add_messages(
            [
                HumanMessage(f"Where is order {i}?"),
                AIMessage("", tool_calls=[call]),
                ToolMessage(f"Order {i} is in Berlin " + "x " * 30, tool_call_id=f"c{i}"),
                AIMessage(f"Order {i} is in Berlin."),
            ]
        )
    for _, messages, _ in summarizer.calls:
        ids = [c["id"] for m in messages if isinstance(m, AIMessage) for c in m.tool_calls]
        results = [m.tool_call_id for m in messages if isinstance(m, ToolMessage)]
        assert ids == results
    view = history.messages
    _assert_tool_pairs_intact(view, history.full_messages)
    assert isinstance(_first_turn(view), HumanMessage)


def test_window_prefers_to_start_on_a_human_turn() -> None:
    history = SummarizingChatMessageHistory(max_tokens=200, token_counter=COUNTER)
    for i in range(30):
        history.add_messages([HumanMessage(f"q{i} " + "a " * 10), AIMessage(f"r{i} " + "b " * 10)])
        assert isinstance(_first_turn(history.messages), HumanMessage)


def test_pinned_system_messages_are_never_folded() -> None:
    summarizer = RecordingSummarizer()
    history = SummarizingChatMessageHistory(
        max_tokens=200, summarizer=summarizer, token_counter=COUNTER
    )
    history.add_messages([SystemMessage("Always answer in French.")])
    for i in range(20):
        history.add_messages([HumanMessage(f"hello {i} " + "m " * 10), AIMessage("bonjour")])
        if i == 10:
            history.add_messages([SystemMessage("The user is vegetarian.")])
    folded = [m for _, messages, _ in summarizer.calls for m in messages]
    assert not any(isinstance(m, SystemMessage) for m in folded)
    view = history.messages
    assert view[:2] == [
        SystemMessage("Always answer in French."),
        SystemMessage("The user is vegetarian."),
    ]


def test_summarizer_failure_trims_within_budget_and_retries_next_turn(
    caplog: pytest.LogCaptureFixture,
) -> None:
    summarizer = RecordingSummarizer(fail_times=1)
    history = SummarizingChatMessageHistory(
        max_tokens=150, summarizer=summarizer, token_counter=COUNTER
    )
    added: list[BaseMessage] = []
    with caplog.at_level(logging.WARNING, logger="langchain_tokenopt.chat_history.history"):
        while not summarizer.calls:
            batch = [HumanMessage("tell me more " * 4), AIMessage("sure " * 10)]
            history.add_messages(batch)
            added.extend(batch)
    assert "Summarizer failed" in caplog.text
    assert history.summary == ""  # nothing folded
    assert COUNTER.count_messages(history.messages) <= 150
    assert len(summarizer.calls) == 1  # reads do not hammer a failing summarizer
    assert history.full_messages == added
    history.add_messages([HumanMessage("one more")])
    assert len(summarizer.calls) >= 2
    assert history.summary == f"summary #{len(summarizer.calls)}"
    assert COUNTER.count_messages(history.messages) <= 150


def test_callable_budget_is_read_at_each_read() -> None:
    budget = {"tokens": 1000}
    history = SummarizingChatMessageHistory(
        max_tokens=lambda: budget["tokens"], token_counter=COUNTER
    )
    for i in range(30):
        history.add_messages([HumanMessage(f"Invoice {i} is due on May {i % 28 + 1}.")])
    assert COUNTER.count_messages(history.messages) > 200
    for tokens in (600, 300, 120, 60):
        budget["tokens"] = tokens
        assert COUNTER.count_messages(history.messages) <= tokens
    assert len(history.full_messages) == 30


def test_too_large_newest_message_is_truncated_in_view_but_kept_in_store(
    caplog: pytest.LogCaptureFixture,
) -> None:
    history = SummarizingChatMessageHistory(max_tokens=100, token_counter=COUNTER)
    huge = HumanMessage("Please read this contract. " + "clause " * 500 + "What is the fee?")
    with caplog.at_level(logging.WARNING, logger="langchain_tokenopt.chat_history.history"):
        history.add_messages([huge])
        view = history.messages
    assert COUNTER.count_messages(view) <= 100
    assert view[-1].text.startswith("Please read this contract.")
    assert view[-1].text.endswith("What is the fee?")
    assert "truncated" in caplog.text
    assert history.full_messages == [huge]


def test_concurrent_adds_store_every_message_exactly_once() -> None:
    history = SummarizingChatMessageHistory(max_tokens=300, token_counter=COUNTER)
    barrier = threading.Barrier(4)

    def writer(worker: int) -> None:
        barrier.wait()
        for i in range(40):
            history.add_messages([HumanMessage(f"worker {worker} message {i}")])
            assert COUNTER.count_messages(history.messages) <= 300

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    texts = [m.content for m in history.full_messages]
    assert sorted(texts) == sorted(f"worker {w} message {i}" for w in range(4) for i in range(40))
    assert COUNTER.count_messages(history.messages) <= 300
    # The summary covers a prefix and the view shows the newest stored message.
    assert history.messages[-1] == history.full_messages[-1]


async def test_async_methods_fold_with_the_async_summarizer() -> None:
    history = SummarizingChatMessageHistory(max_tokens=120, token_counter=COUNTER)
    for i in range(20):
        await history.aadd_messages([HumanMessage(f"Ticket {i} opened by Bob on June {i + 1}.")])
        view = await history.aget_messages()
        assert COUNTER.count_messages(view) <= 120
    assert len(history.full_messages) == 20
    assert "Ticket" in history.summary
    await history.aclear()
    assert history.full_messages == []
    assert await history.aget_messages() == []
    assert history.summary == ""


async def test_concurrent_async_adds_keep_order_and_budget() -> None:
    import asyncio

    store = _in_memory()
    history = SummarizingChatMessageHistory(store, max_tokens=100, token_counter=COUNTER)

    async def add(i: int) -> None:
        await history.aadd_messages([HumanMessage(f"note {i}")])

    await asyncio.gather(*(add(i) for i in range(50)))
    assert sorted(m.content for m in history.full_messages) == sorted(
        f"note {i}" for i in range(50)
    )
    assert COUNTER.count_messages(await history.aget_messages()) <= 100


def test_restart_over_the_same_stores_resumes_without_resummarizing() -> None:
    store, state = _in_memory(), MemoryStore()
    first = SummarizingChatMessageHistory(
        store, max_tokens=150, state_store=state, session_id="s1", token_counter=COUNTER
    )
    for i in range(20):
        first.add_messages([HumanMessage(f"My locker is number {i}."), AIMessage("Noted.")])
    view_before = first.messages
    assert first.summary

    summarizer = RecordingSummarizer()
    second = SummarizingChatMessageHistory(
        store,
        max_tokens=150,
        state_store=state,
        session_id="s1",
        summarizer=summarizer,
        token_counter=COUNTER,
    )
    assert second.messages == view_before
    assert second.summary == first.summary
    assert summarizer.calls == []
    other = SummarizingChatMessageHistory(
        store, max_tokens=150, state_store=state, session_id="s2", summarizer=summarizer
    )
    assert other.folded_message_count == 0  # a session id is its own state


def test_saved_state_that_no_longer_matches_the_store_is_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store, state = _in_memory(), MemoryStore()
    first = SummarizingChatMessageHistory(
        store, max_tokens=100, state_store=state, token_counter=COUNTER
    )
    for i in range(20):
        first.add_messages([HumanMessage(f"entry {i} with some words in it")])
    assert first.folded_message_count > 0
    store.clear()
    store.add_messages([HumanMessage("a brand new conversation")])
    second = SummarizingChatMessageHistory(
        store, max_tokens=100, state_store=state, token_counter=COUNTER
    )
    with caplog.at_level(logging.WARNING, logger="langchain_tokenopt.chat_history.history"):
        assert second.messages == [HumanMessage("a brand new conversation")]
    assert "does not match" in caplog.text


def test_messages_appended_by_another_writer_are_picked_up() -> None:
    store = _in_memory()
    history = SummarizingChatMessageHistory(store, max_tokens=1000, token_counter=COUNTER)
    history.add_messages([HumanMessage("first")])
    store.add_messages([AIMessage("written by another process")])
    assert history.messages == [HumanMessage("first"), AIMessage("written by another process")]


def test_existing_long_history_is_folded_in_bounded_chunks() -> None:
    store = _in_memory()
    store.add_messages([HumanMessage(f"old message {i} " + "k " * 20) for i in range(200)])
    summarizer = RecordingSummarizer()
    history = SummarizingChatMessageHistory(
        store, max_tokens=300, summarizer=summarizer, token_counter=COUNTER
    )
    assert COUNTER.count_messages(history.messages) <= 300
    assert len(summarizer.calls) > 1
    for _, messages, _ in summarizer.calls:
        assert COUNTER.count_messages(messages) <= 300 + 30  # one chunk ~ the budget


def test_per_turn_work_does_not_grow_with_the_history() -> None:
    class CountingCounter(TokenCounter):
        calls = 0

        def count_message(self, message: Any) -> Any:
            CountingCounter.calls += 1
            return super().count_message(message)

    counter = CountingCounter("gpt-4o")
    history = SummarizingChatMessageHistory(max_tokens=400, token_counter=counter)

    def turn(i: int) -> int:
        before = CountingCounter.calls
        history.add_messages([HumanMessage(f"turn {i} " + "q " * 10), AIMessage("ok " * 5)])
        history.messages  # noqa: B018
        return CountingCounter.calls - before

    work = [turn(i) for i in range(600)]
    early, late = sum(work[100:200]), sum(work[500:600])
    assert late <= early * 1.2 + 10


def test_runnable_with_message_history_uses_the_budgeted_view() -> None:
    from langchain_core.callbacks import BaseCallbackHandler
    from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
    from langchain_core.runnables.history import RunnableWithMessageHistory

    class Capture(BaseCallbackHandler):
        def __init__(self) -> None:
            self.sent: list[list[BaseMessage]] = []

        def on_chat_model_start(
            self, serialized: Any, messages: list[list[BaseMessage]], **kwargs: Any
        ) -> None:
            self.sent.append(messages[0])

    sessions: dict[str, SummarizingChatMessageHistory] = {}

    def get_history(session_id: str) -> SummarizingChatMessageHistory:
        if session_id not in sessions:
            sessions[session_id] = SummarizingChatMessageHistory(
                max_tokens=200, token_counter=COUNTER
            )
        return sessions[session_id]

    model = GenericFakeChatModel(messages=iter([f"Reply {i}: noted." for i in range(25)]))
    prompt = ChatPromptTemplate.from_messages(
        [MessagesPlaceholder("history"), ("human", "{question}")]
    )
    # langchain-core deprecates RunnableWithMessageHistory; nothing here hides that.
    with pytest.warns(DeprecationWarning, match="RunnableWithMessageHistory is deprecated"):
        chain = RunnableWithMessageHistory(
            prompt | model,
            get_history,
            input_messages_key="question",
            history_messages_key="history",
        )
    capture = Capture()
    for i in range(25):
        chain.invoke(
            {"question": f"My code number {i} is {1000 + i}."},
            {"configurable": {"session_id": "u1"}, "callbacks": [capture]},
        )
    history = sessions["u1"]
    assert len(history.full_messages) == 50
    assert history.full_messages[-1] == AIMessage(
        "Reply 24: noted.", id=history.full_messages[-1].id
    )
    question_tokens = COUNTER.count_messages([HumanMessage("My code number 24 is 1024.")]) - 3
    assert all(COUNTER.count_messages(sent) <= 200 + question_tokens for sent in capture.sent)
    assert history.summary


def test_chat_model_given_as_summarizer_is_used_through_llm_summarizer() -> None:
    model = GenericFakeChatModel(messages=iter(["The user collects stamps."] * 10))
    history = SummarizingChatMessageHistory(max_tokens=100, summarizer=model, token_counter=COUNTER)
    assert isinstance(history._summarizer, LLMSummarizer)
    for i in range(10):
        history.add_messages([HumanMessage(f"I bought stamp {i} today in Lisbon.")])
    assert history.summary == "The user collects stamps."


def test_a_plain_runnable_can_summarize() -> None:
    summarizer: RunnableLambda[Any, str] = RunnableLambda(
        lambda request: f"{len(request['messages'])} messages, after: {request['previous_summary']}"
    )
    history = SummarizingChatMessageHistory(
        max_tokens=100, summarizer=summarizer, token_counter=COUNTER
    )
    for i in range(10):
        history.add_messages([HumanMessage(f"entry {i} " + "p " * 10)])
    assert "messages, after:" in history.summary


def test_summary_can_be_a_human_message() -> None:
    history = SummarizingChatMessageHistory(
        max_tokens=100, summary_role="human", summary_prefix="Earlier: ", token_counter=COUNTER
    )
    for i in range(10):
        history.add_messages([HumanMessage(f"entry {i} about Rome " + "p " * 10)])
    first = history.messages[0]
    assert isinstance(first, HumanMessage)
    assert isinstance(first.content, str) and first.content.startswith("Earlier: ")


def test_setting_messages_replaces_the_history() -> None:
    history = SummarizingChatMessageHistory(max_tokens=1000, token_counter=COUNTER)
    history.add_messages([HumanMessage("old")])
    history.messages = [HumanMessage("new")]
    assert history.full_messages == [HumanMessage("new")]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"max_tokens": 5}, ValueError),
        ({"max_tokens": "100"}, TypeError),
        ({"target_ratio": 0}, ValueError),
        ({"max_summary_tokens": 0}, ValueError),
        ({"summary_role": "tool"}, ValueError),
        ({"summarizer": "gpt-4o"}, TypeError),
        ({"store": []}, TypeError),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        SummarizingChatMessageHistory(**kwargs)


def test_adding_something_that_is_not_a_message_raises_type_error() -> None:
    history = SummarizingChatMessageHistory(max_tokens=100, token_counter=COUNTER)
    with pytest.raises(TypeError, match="BaseMessage"):
        history.add_messages(["hello"])  # type: ignore[list-item]
    assert history.full_messages == []


def test_budget_below_the_minimum_from_a_callable_gives_an_empty_view(
    caplog: pytest.LogCaptureFixture,
) -> None:
    history = SummarizingChatMessageHistory(max_tokens=lambda: 3, token_counter=COUNTER)
    history.add_messages([HumanMessage("hello")])
    with caplog.at_level(logging.WARNING, logger="langchain_tokenopt.chat_history.history"):
        assert history.messages == []
    assert "below the minimum" in caplog.text
    assert history.full_messages == [HumanMessage("hello")]


def test_the_history_leaves_upstream_deprecation_warnings_alone() -> None:
    filters = list(warnings.filters)
    history = SummarizingChatMessageHistory(max_tokens=200)
    history.add_messages([HumanMessage("Hi"), AIMessage("Hello")])
    assert history.messages and warnings.filters == filters
