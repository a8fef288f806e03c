"""Specification of the summarizers: what they keep, their cap, their Runnable interface."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableLambda

from langchain_tokenopt.chat_history.summarizers import ExtractiveSummarizer, LLMSummarizer
from langchain_tokenopt.core.messages import content_to_text, message_to_text
from langchain_tokenopt.core.tokens import TokenCounter

COUNTER = TokenCounter("gpt-4o")

CHAT = [
    HumanMessage("Hi there! How are you doing today?"),
    AIMessage("I'm doing well, thanks for asking. How can I help you?"),
    HumanMessage(
        "My name is Priya Raman and I moved to Denver last spring. "
        "I ordered the walnut desk on March 14 and paid $1,249 for it. "
        "Honestly the weather has been lovely and I really enjoy it here."
    ),
    AIMessage("Thanks, Priya. I see the order. Is there anything wrong with it?"),
    HumanMessage(
        "Yes, the left drawer arrived cracked. I would like a replacement by Friday, "
        "because my sister Anika visits that weekend. It is what it is, I suppose."
    ),
    AIMessage("Sorry to hear that. I will open a replacement ticket, number 88213."),
]


class Capture(BaseCallbackHandler):
    def __init__(self) -> None:
        self.prompts: list[list[BaseMessage]] = []

    def on_chat_model_start(
        self, serialized: Any, messages: list[list[BaseMessage]], **kwargs: Any
    ) -> None:
        self.prompts.append(messages[0])


# ------------------------------------------------------------------ extractive


def test_extractive_keeps_names_numbers_and_dates_over_small_talk() -> None:
    summary = ExtractiveSummarizer(token_counter=COUNTER).summarize(CHAT, max_tokens=90)
    for fact in ("Priya Raman", "Denver", "March 14", "$1,249", "cracked", "Friday", "88213"):
        assert fact in summary
    assert "How are you doing" not in summary
    assert "weather has been lovely" not in summary
    assert COUNTER.count_text(summary) <= 90


def test_extractive_summary_never_exceeds_its_cap() -> None:
    rng = random.Random(7)
    words = str.split("order Paris 12 invoice Tuesday Maria refund 3.5% contract the a is of")
    summarizer = ExtractiveSummarizer(token_counter=COUNTER)
    for cap in (1, 5, 17, 40, 120, 400):
        messages = [
            HumanMessage(" ".join(rng.choice(words) for _ in range(rng.randint(1, 90))) + ".")
            for _ in range(30)
        ]
        summary = summarizer.summarize(messages, "User: earlier fact 99.", max_tokens=cap)
        assert COUNTER.count_text(summary) <= cap


def test_extractive_keeps_original_order_and_speakers() -> None:
    summary = ExtractiveSummarizer(token_counter=COUNTER).summarize(CHAT, max_tokens=200)
    lines = summary.splitlines()
    assert all(line.startswith(("User: ", "Assistant: ")) for line in lines)
    assert summary.index("Priya Raman") < summary.index("cracked") < summary.index("88213")


def test_extractive_carries_previous_summary_forward_when_there_is_room() -> None:
    previous = "User: My account number is 5512 and I live in Lyon."
    summary = ExtractiveSummarizer(token_counter=COUNTER).summarize(
        [HumanMessage("Also, my dog Rex is 4 years old.")], previous, max_tokens=100
    )
    assert summary.startswith(previous)
    assert "Rex is 4 years old" in summary


def test_extractive_drops_covered_repetition_before_new_facts() -> None:
    repeated = [HumanMessage("My flight UA 882 leaves Boston on June 2.") for _ in range(5)]
    new = HumanMessage("The hotel booking code is QX77 for 3 nights.")
    summary = ExtractiveSummarizer(token_counter=COUNTER).summarize([*repeated, new], max_tokens=40)
    assert summary.count("UA 882") == 1
    assert "QX77" in summary


def test_extractive_uses_placeholders_for_non_text_content() -> None:
    messages = [
        HumanMessage(
            [
                {"type": "text", "text": "Here is the receipt from Zurich."},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            ]
        ),
        AIMessage("", tool_calls=[{"name": "find_order", "args": {"id": 4411}, "id": "c1"}]),
        ToolMessage("Order 4411 shipped on May 5.", tool_call_id="c1", name="find_order"),
    ]
    summary = ExtractiveSummarizer(token_counter=COUNTER).summarize(messages, max_tokens=100)
    assert "[image]" in summary
    assert "[tool call: find_order(" in summary
    assert "Order 4411 shipped on May 5." in summary
    assert "base64" not in summary


def test_extractive_summarizes_nothing_to_an_empty_string() -> None:
    summarizer = ExtractiveSummarizer(token_counter=COUNTER)
    assert summarizer.summarize([]) == ""
    assert summarizer.summarize([HumanMessage("")]) == ""


def test_extractive_splits_very_long_sentences_into_clauses() -> None:
    long_sentence = (
        "I went to the store, and then I walked along the river for a while, and I "
        "thought about many things, and eventually the locker code 7734 came back to me, "
        "and after that I went home and slept for a very long time without dreaming."
    )
    summary = ExtractiveSummarizer(token_counter=COUNTER, max_sentence_tokens=20).summarize(
        [HumanMessage(long_sentence)], max_tokens=25
    )
    assert "7734" in summary
    assert COUNTER.count_text(summary) <= 25


def test_extractive_is_a_runnable_taking_messages_or_a_request() -> None:
    summarizer = ExtractiveSummarizer(token_counter=COUNTER, max_summary_tokens=60)
    from_list = summarizer.invoke(CHAT)
    from_dict = summarizer.invoke({"messages": CHAT, "previous_summary": "", "max_tokens": 60})
    assert from_list == from_dict
    assert summarizer.batch([CHAT, CHAT[:3]])[0] == from_list
    assert (RunnableLambda(lambda m: m) | summarizer).invoke(CHAT) == from_list


async def test_extractive_async_matches_sync() -> None:
    summarizer = ExtractiveSummarizer(token_counter=COUNTER)
    assert await summarizer.ainvoke(CHAT) == summarizer.invoke(CHAT)


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("just a string", TypeError),
        ({"previous_summary": "x"}, TypeError),
        ([HumanMessage("ok"), "not a message"], TypeError),
        ({"messages": [], "max_tokens": 0}, ValueError),
        ({"messages": [], "previous_summary": 3}, TypeError),
    ],
)
def test_summarizer_input_is_checked(value: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        ExtractiveSummarizer(token_counter=COUNTER).invoke(value)


def test_content_placeholders() -> None:
    assert content_to_text("plain") == "plain"
    assert (
        content_to_text(
            [
                {"type": "text", "text": "Listen"},
                {"type": "input_audio", "input_audio": {"data": "AAAA"}},
                {"type": "file", "file": {"file_id": "f"}},
                {"type": "reasoning", "reasoning": "secret"},
                {"type": "tool_use", "name": "search", "input": {"q": "x" * 200}},
            ]
        )
        == 'Listen [audio] [file] [tool call: search({"q": "' + "x" * 72 + "…)]"
    )
    assert message_to_text(
        AIMessage("Checking.", tool_calls=[{"name": "ping", "args": {}, "id": "1"}])
    ) == ("Checking. [tool call: ping()]")


class Runs(BaseCallbackHandler):
    """The chain runs a callback handler sees: (name, parent run id)."""

    def __init__(self) -> None:
        self.started: list[tuple[Any, Any]] = []
        self.ended = 0

    def on_chain_start(self, serialized: Any, inputs: Any, **kwargs: Any) -> None:
        self.started.append((kwargs.get("name"), kwargs.get("parent_run_id")))

    def on_chain_end(self, outputs: Any, **kwargs: Any) -> None:
        self.ended += 1


def test_extractive_invoke_makes_a_run_when_a_handler_sees_it_and_none_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from langchain_core.runnables import Runnable

    summarizer = ExtractiveSummarizer(token_counter=COUNTER)
    request = {"messages": CHAT, "previous_summary": "", "max_tokens": 60}
    expected = summarizer.summarize(CHAT, max_tokens=60)
    runs_made: list[str] = []
    original = Runnable._call_with_config

    def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
        runs_made.append(type(self).__name__)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Runnable, "_call_with_config", spy)
    # nobody sees a run: none is made, the same summary
    assert summarizer.invoke(request) == expected
    assert runs_made == []
    # a handler given: the run is made and reported
    seen = Runs()
    assert summarizer.invoke(request, {"callbacks": [seen]}) == expected
    assert seen.started == [("ExtractiveSummarizer", None)] and seen.ended == 1
    # a handler of a parent run: the summary is its child run
    parent = Runs()
    outer: RunnableLambda[Any, str] = RunnableLambda(
        lambda value: summarizer.invoke(value), name="outer"
    )
    assert outer.invoke(request, {"callbacks": [parent]}) == expected
    names = [name for name, _ in parent.started]
    assert names == ["outer", "ExtractiveSummarizer"] and parent.started[1][1] is not None


# ------------------------------------------------------------------------- LLM


def test_llm_summarizer_sends_previous_summary_and_only_new_messages() -> None:
    model = GenericFakeChatModel(messages=iter(["Priya (Denver) wants a new drawer by Friday."]))
    capture = Capture()
    result = LLMSummarizer(model).invoke(
        {"messages": CHAT[2:], "previous_summary": "User greeted.", "max_tokens": 100},
        {"callbacks": [capture]},
    )
    assert result == "Priya (Denver) wants a new drawer by Friday."
    system, user = capture.prompts[0]
    for duty in ("name", "number", "date", "decision", "open task"):
        assert duty in system.content
    assert "75 words" in system.content
    assert isinstance(user.content, str)
    assert "User greeted." in user.content
    assert "User: My name is Priya Raman" in user.content
    assert "Hi there" not in user.content  # folded earlier, not re-sent


async def test_llm_summarizer_is_natively_async() -> None:
    model = GenericFakeChatModel(messages=iter([AIMessage("Async summary.")]))
    assert await LLMSummarizer(model).ainvoke(CHAT) == "Async summary."


def test_llm_summarizer_reads_text_out_of_content_blocks() -> None:
    reply = AIMessage([{"type": "text", "text": "Block summary."}])
    model = GenericFakeChatModel(messages=iter([reply]))
    assert LLMSummarizer(model).invoke(CHAT) == "Block summary."


def test_llm_summarizer_accepts_any_runnable_returning_text() -> None:
    echo: RunnableLambda[Any, str] = RunnableLambda(lambda prompt: f"{len(prompt)} prompt messages")
    assert LLMSummarizer(echo).invoke(CHAT) == "2 prompt messages"


def test_llm_summarizer_with_nothing_new_keeps_the_previous_summary() -> None:
    model = GenericFakeChatModel(messages=iter([]))
    assert LLMSummarizer(model).invoke({"messages": [], "previous_summary": "old"}) == "old"


def test_llm_summarizer_errors_propagate() -> None:
    def broken(_: Any) -> str:
        raise ConnectionError("provider down")

    with pytest.raises(ConnectionError):
        LLMSummarizer(RunnableLambda(broken)).invoke(CHAT)


def test_llm_summarizer_rejects_bad_configuration() -> None:
    with pytest.raises(TypeError):
        LLMSummarizer("gpt-4o")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        LLMSummarizer(RunnableLambda(str), system_prompt="no placeholder")
    with pytest.raises(TypeError, match="must return a message or a string"):
        LLMSummarizer(RunnableLambda(lambda _: 42)).invoke(CHAT)


def _index_centrality(texts: list[str]) -> list[float]:
    """What the summarizer computed before: a `TextIndex` of the pieces, queried with
    all of them joined (cosines, 0 for a piece sharing no term)."""
    from langchain_tokenopt.core.textindex import TextIndex

    index = TextIndex(stop_words="english", word_ngram_range=(1, 1))
    index.add_many(enumerate(texts))
    scores = dict(index.query(" ".join(texts), k=len(texts)))
    return [float(scores.get(i, 0.0)) for i in range(len(texts))]


_PIECE_WORDS = st.lists(
    st.sampled_from(
        [
            "Priya",
            "desk",
            "walnut",
            "drawer",
            "cracked",
            "Denver",
            "order",
            "the",
            "and",
            "replacement",
            "Friday",
            "ticket",
            "88213",
            "$1,249",
            "it",
            "is",
            "weather",
            "über",
        ]
    ),
    min_size=0,
    max_size=14,
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_PIECE_WORDS.map(" ".join), min_size=1, max_size=12))
def test_centrality_is_bit_for_bit_the_text_index_cosine(texts: list[str]) -> None:
    from langchain_tokenopt.chat_history.summarizers import _centrality_scores, _term_counts

    assert _centrality_scores([_term_counts(t) for t in texts]) == _index_centrality(texts)


def test_centrality_on_real_sentences_equals_the_text_index_cosine() -> None:
    from langchain_tokenopt.chat_history.summarizers import _centrality_scores, _term_counts

    summarizer = ExtractiveSummarizer(token_counter=COUNTER)
    texts = [piece.text for piece in summarizer._pieces(CHAT, "")]

    assert len(texts) > 5
    assert _centrality_scores([_term_counts(t) for t in texts]) == _index_centrality(texts)
