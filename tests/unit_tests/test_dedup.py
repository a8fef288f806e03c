"""Specification of message de-duplication: what goes, what always stays."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda

from langchain_tokenopt.core.tokens import TokenCounter
from langchain_tokenopt.dedup import MessageDeduplicator, deduplicate_messages

COUNTER = TokenCounter("gpt-4o")
DOC = "The lease runs from 1 March 2025 for 24 months at 1,450 EUR a month, deposit 2,900 EUR."
QUESTION = "Can you check the shipping status of my order 77812 to Rotterdam please?"


def _call(call_id: str, path: str = "notes.txt") -> dict[str, Any]:
    return {"name": "read_file", "args": {"path": path}, "id": call_id}


def test_exact_repeat_is_removed_and_first_copy_kept() -> None:
    messages = [HumanMessage(DOC), AIMessage("Thanks, I read the lease."), HumanMessage(DOC)]
    messages.append(HumanMessage("How much is the deposit?"))
    out = deduplicate_messages(messages, token_counter=COUNTER)
    assert out == [messages[0], messages[1], messages[3]]


def test_keep_last_keeps_the_most_recent_copy() -> None:
    messages = [HumanMessage(DOC), AIMessage("Thanks, I read the lease."), HumanMessage(DOC)]
    messages.append(HumanMessage("How much is the deposit?"))
    out = deduplicate_messages(messages, keep="last", token_counter=COUNTER)
    assert out == [messages[1], messages[2], messages[3]]


def test_near_duplicates_above_the_threshold_go_and_different_texts_stay() -> None:
    near = QUESTION.replace("please?", "please.")
    other = "Can you check the return status of my order 99120 to Antwerp please?"
    messages = [HumanMessage(QUESTION), HumanMessage(near), HumanMessage(other), AIMessage("ok")]
    out = deduplicate_messages(messages, token_counter=COUNTER)
    assert out == [messages[0], messages[2], messages[3]]


def test_the_threshold_decides_how_similar_is_duplicate() -> None:
    other = "Can you check the return status of my order 99120 to Antwerp please?"
    messages = [HumanMessage(QUESTION), HumanMessage(other), AIMessage("Checking now.")]
    assert deduplicate_messages(messages, token_counter=COUNTER) == messages
    loose = deduplicate_messages(messages, threshold=0.3, token_counter=COUNTER)
    assert loose == [messages[0], messages[2]]


def test_system_messages_are_never_removed() -> None:
    rule = SystemMessage("Always answer in formal English and cite the clause number.")
    messages = [rule, HumanMessage(DOC), rule, HumanMessage("Summarize it.")]
    assert deduplicate_messages(messages, token_counter=COUNTER) == messages


def test_tool_call_and_its_results_are_removed_together() -> None:
    first = [
        AIMessage("", tool_calls=[_call("a")]),
        ToolMessage("Meeting with Dana at 15:00 on Thursday in room 4B.", tool_call_id="a"),
    ]
    again = [
        AIMessage("", tool_calls=[_call("b")]),
        ToolMessage("Meeting with Dana at 15:00 on Thursday in room 4B.", tool_call_id="b"),
    ]
    messages: list[BaseMessage] = [
        HumanMessage("When is my meeting with Dana?"),
        *first,
        AIMessage("Thursday at 15:00 in room 4B, according to your notes file."),
        *again,
        HumanMessage("And where?"),
    ]
    out = deduplicate_messages(messages, token_counter=COUNTER)
    assert out == messages[:4] + messages[6:]
    ids_called = {c["id"] for m in out if isinstance(m, AIMessage) for c in m.tool_calls}
    ids_answered = {m.tool_call_id for m in out if isinstance(m, ToolMessage)}
    assert ids_called == ids_answered


def test_a_tool_result_is_never_removed_alone() -> None:
    result = "Meeting with Dana at 15:00 on Thursday in room 4B."
    messages: list[BaseMessage] = [
        HumanMessage(result + " That is what my calendar says."),
        AIMessage("", tool_calls=[_call("a")]),
        ToolMessage(result, tool_call_id="a"),
        HumanMessage(result),
        AIMessage("Noted."),
    ]
    out = deduplicate_messages(messages, token_counter=COUNTER)
    assert messages[1] in out and messages[2] in out


def test_same_tool_results_from_different_calls_are_kept() -> None:
    messages: list[BaseMessage] = [
        AIMessage("", tool_calls=[_call("a", "a.txt")]),
        ToolMessage("File contents: the budget for 2025 is 48,000 USD.", tool_call_id="a"),
        AIMessage("", tool_calls=[_call("b", "b.txt")]),
        ToolMessage("File contents: the budget for 2025 is 48,000 USD.", tool_call_id="b"),
        HumanMessage("Which file should I trust?"),
    ]
    assert deduplicate_messages(messages, token_counter=COUNTER) == messages


def test_the_newest_turn_is_never_removed() -> None:
    messages = [HumanMessage(QUESTION), AIMessage("It left the warehouse."), HumanMessage(QUESTION)]
    assert deduplicate_messages(messages, token_counter=COUNTER) == messages


def test_short_messages_are_kept_even_when_repeated() -> None:
    messages = [
        HumanMessage("Book the 9:15 train to Ghent."),
        AIMessage("Done."),
        HumanMessage("And a table at Volta for 8 people."),
        AIMessage("Done."),
        HumanMessage("Thanks!"),
    ]
    assert deduplicate_messages(messages, token_counter=COUNTER) == messages


def test_images_with_the_same_caption_but_different_pictures_are_kept() -> None:
    def photo(url: str) -> HumanMessage:
        return HumanMessage(
            [
                {"type": "text", "text": "Here is a photo of the damaged parcel from the courier."},
                {"type": "image_url", "image_url": {"url": url}},
            ]
        )

    messages = [photo("https://x.test/1.png"), photo("https://x.test/2.png"), HumanMessage("?")]
    assert deduplicate_messages(messages, token_counter=COUNTER) == messages
    same = [photo("https://x.test/1.png"), photo("https://x.test/1.png"), HumanMessage("?")]
    assert deduplicate_messages(same, token_counter=COUNTER) == [same[0], same[2]]


def test_different_speakers_are_not_duplicates() -> None:
    messages = [
        HumanMessage(DOC, name="alice"),
        HumanMessage(DOC, name="bob"),
        AIMessage("Both of you sent the lease."),
    ]
    assert deduplicate_messages(messages, token_counter=COUNTER) == messages


def test_stats_report_the_tokens_saved() -> None:
    messages = [HumanMessage(DOC), AIMessage("Read it."), HumanMessage(DOC), HumanMessage("Ok?")]
    result = MessageDeduplicator(token_counter=COUNTER).deduplicate(messages)
    assert result.removed_indices == [2]
    assert result.tokens_before == COUNTER.count_messages(messages)
    assert result.tokens_after == COUNTER.count_messages(result.messages)
    assert result.removed_tokens == COUNTER.count_message(messages[2])


def test_deduplicator_is_a_runnable_over_messages_and_prompt_values() -> None:
    prompt = ChatPromptTemplate.from_messages(
        [
            ("system", "Be brief."),
            ("human", "{doc}"),
            ("ai", "Read."),
            ("human", "{doc}"),
            ("human", "Deposit?"),
        ]
    )
    chain = prompt | MessageDeduplicator(token_counter=COUNTER)
    out = chain.invoke({"doc": DOC})
    assert [m.type for m in out] == ["system", "human", "ai", "human"]
    assert out[-1].content == "Deposit?"
    tuples = MessageDeduplicator(token_counter=COUNTER).invoke(
        [("human", DOC), ("human", DOC), ("human", "and?")]
    )
    assert len(tuples) == 2
    batch = (RunnableLambda(lambda x: x) | MessageDeduplicator(token_counter=COUNTER)).batch(
        [[HumanMessage(DOC), HumanMessage(DOC), HumanMessage("x")]] * 2
    )
    assert [len(b) for b in batch] == [2, 2]


async def test_deduplicator_async_matches_sync() -> None:
    messages = [HumanMessage(DOC), HumanMessage(DOC), HumanMessage("next")]
    dedup = MessageDeduplicator(token_counter=COUNTER)
    assert await dedup.ainvoke(messages) == dedup.invoke(messages)


def test_empty_and_single_message_inputs() -> None:
    assert deduplicate_messages([], token_counter=COUNTER) == []
    assert deduplicate_messages([HumanMessage(DOC)], token_counter=COUNTER) == [HumanMessage(DOC)]


@pytest.mark.parametrize(
    "kwargs",
    [{"threshold": 0}, {"threshold": 1.5}, {"keep": "middle"}, {"min_tokens": -1}],
)
def test_bad_settings_raise_value_error(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        MessageDeduplicator(**kwargs)
