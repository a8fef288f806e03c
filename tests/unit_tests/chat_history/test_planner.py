"""The context planner on its own: no store, no summarizer, only messages and counts."""

from __future__ import annotations

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from langchain_tokenopt.chat_history.planner import (
    RECALL_HEADER,
    ContextPlanner,
    Ledger,
    SummaryState,
)
from langchain_tokenopt.core.tokens import TokenCounter

COUNTER = TokenCounter("gpt-4o")


def planner(**kwargs: object) -> ContextPlanner:
    return ContextPlanner(COUNTER, target_ratio=0.75, **kwargs)  # type: ignore[arg-type]


def ledger_of(messages: list[BaseMessage]) -> Ledger:
    return Ledger.of(messages, COUNTER, pin_system=True)


def tool_turn(i: int) -> list[BaseMessage]:
    call = {"name": "lookup", "args": {"q": f"item {i}"}, "id": f"c{i}"}
    return [
        HumanMessage(f"Look up item {i} in the catalogue, please."),
        AIMessage("", tool_calls=[call]),
        ToolMessage(f"Item {i} is a blue umbrella in aisle {i}.", tool_call_id=f"c{i}"),
        AIMessage(f"Item {i} is a blue umbrella."),
    ]


def chat_with_a_fact(question: str, notes: int = 20) -> list[BaseMessage]:
    messages: list[BaseMessage] = [
        SystemMessage("You are a helpful assistant."),
        HumanMessage("My locker code at the gym is 4417.", id="fact"),
        AIMessage("Noted."),
    ]
    for i in range(notes):
        messages += [HumanMessage(f"Note {i}: room {100 + i} is free."), AIMessage("Ok.")]
    return [*messages, HumanMessage(question)]


def test_nothing_is_folded_while_the_turns_fit() -> None:
    ledger = ledger_of([HumanMessage("Hi"), AIMessage("Hello!")])
    assert planner().fold(ledger, SummaryState(), budget=200) is None


def test_a_fold_never_splits_a_tool_call_from_its_result() -> None:
    ledger = ledger_of([m for i in range(12) for m in tool_turn(i)])
    fold = planner().fold(ledger, SummaryState(), budget=300)
    assert fold is not None and fold.start == 0
    assert isinstance(ledger.messages[fold.end], HumanMessage)
    folded = [m for chunk in fold.chunks for m in chunk]
    assert folded == ledger.messages[: fold.end]


def test_the_view_fits_the_budget_keeps_pinned_messages_first_and_starts_with_a_user_turn() -> None:
    system = SystemMessage("You are a catalogue assistant.")
    ledger = ledger_of([system, *[m for i in range(12) for m in tool_turn(i)]])
    view = planner().view(ledger, SummaryState(), budget=200)
    assert COUNTER.count_messages(view.messages) == view.tokens <= 200
    assert view.messages[0] is system and isinstance(view.messages[1], HumanMessage)
    assert view.messages[-1] is ledger.messages[-1]


def test_the_summary_is_capped_in_tokens() -> None:
    text = "The user keeps a blue umbrella in locker 12 and a red one in locker 14. " * 5
    capped = planner().cap_summary(text, cap_tokens=10)
    assert COUNTER.count_text(capped) <= 10 and text.startswith(capped)


def test_recall_quotes_an_old_message_relevant_to_the_question() -> None:
    ledger = ledger_of(chat_with_a_fact("What is my locker code at the gym?"))
    view = planner().view(ledger, SummaryState(), budget=150)
    assert view.recalled == (1,) and view.recalled_ids == ("fact",)
    recalled = str(view.messages[1].content)
    assert (
        recalled.startswith(RECALL_HEADER)
        and "[1] User:\nMy locker code at the gym is 4417. \n" in recalled
    )
    assert view.tokens == COUNTER.count_messages(view.messages) <= 150
    assert view.messages[-1] is ledger.messages[-1]


def test_without_recall_an_old_fact_is_gone_from_the_view() -> None:
    ledger = ledger_of(chat_with_a_fact("What is my locker code at the gym?"))
    view = planner(recall=False).view(ledger, SummaryState(), budget=150)
    assert view.recalled == ()
    assert not any("4417" in str(m.content) for m in view.messages)


def test_recall_goes_after_the_pinned_messages_and_the_summary_which_stay_identical() -> None:
    messages = chat_with_a_fact("What is my locker code at the gym?")
    state = SummaryState(summary="The user listed free rooms.", covered=3, fingerprint="x")
    plain = planner(recall=False).view(ledger_of(messages[:-1]), state, budget=160)
    asked = planner().view(ledger_of(messages), state, budget=160)
    assert asked.messages[:2] == plain.messages[:2]  # system prompt + summary: the cached prefix
    assert str(asked.messages[1].content).endswith("The user listed free rooms.")
    assert str(asked.messages[2].content).startswith(RECALL_HEADER)
    assert isinstance(asked.messages[3], HumanMessage)


def test_nothing_is_recalled_once_the_question_is_answered() -> None:
    messages = [*chat_with_a_fact("What is my locker code at the gym?"), AIMessage("It is 4417.")]
    view = planner().view(ledger_of(messages), SummaryState(), budget=150)
    assert view.recalled == ()


def test_during_a_tool_loop_recall_follows_the_users_question() -> None:
    call = {"name": "gym", "args": {}, "id": "g1"}
    messages = [
        *chat_with_a_fact("Open my locker at the gym with my code."),
        AIMessage("", tool_calls=[call]),
        ToolMessage("The gym API needs the code.", tool_call_id="g1"),
    ]
    view = planner().view(ledger_of(messages), SummaryState(), budget=170)
    assert view.recalled == (1,)
    assert view.messages[-2].tool_calls == [{**call, "type": "tool_call"}]  # type: ignore[attr-defined]


def test_a_long_recalled_message_is_shown_in_part() -> None:
    filler = " ".join(f"Sentence {i} is about weather in town number {i}." for i in range(60))
    messages: list[BaseMessage] = [
        HumanMessage(f"{filler} My locker code at the gym is 4417. {filler}"),
        AIMessage("Noted."),
    ]
    for i in range(20):
        messages += [HumanMessage(f"Note {i}: room {100 + i} is free."), AIMessage("Ok.")]
    messages.append(HumanMessage("What is my locker code at the gym?"))
    view = planner().view(ledger_of(messages), SummaryState(), budget=300)
    assert view.recalled == (0,) and view.tokens <= 300
    recalled = str(view.messages[0].content)
    assert "locker code at the gym is 4417" in recalled
    assert len(recalled) < len(str(messages[0].content)) / 2


def test_a_long_message_recalled_again_is_cut_the_same_way_for_another_question() -> None:
    """The sentences of a long message are split once (memoized by text), and a later
    question still picks its own sentences from them."""
    filler = " ".join(f"Sentence {i} is about weather in town number {i}." for i in range(60))
    fact = "My locker code at the gym is 4417. My bike lock code at the station is 9021."
    messages: list[BaseMessage] = [HumanMessage(f"{filler} {fact} {filler}"), AIMessage("Noted.")]
    for i in range(20):
        messages += [HumanMessage(f"Note {i}: room {100 + i} is free."), AIMessage("Ok.")]
    p = planner()
    first = p.view(
        ledger_of([*messages, HumanMessage("What is my locker code at the gym?")]),
        SummaryState(),
        budget=300,
    )
    second = p.view(
        ledger_of([*messages, HumanMessage("What is the bike lock code at the station?")]),
        SummaryState(),
        budget=300,
    )
    assert "locker code at the gym is 4417" in str(first.messages[0].content)
    assert "bike lock code at the station is 9021" in str(second.messages[0].content)
    assert len(p._sentences) == 1  # one long message, split once
    fresh = planner().view(
        ledger_of([*messages, HumanMessage("What is the bike lock code at the station?")]),
        SummaryState(),
        budget=300,
    )
    assert fresh.messages == second.messages


def test_each_message_is_indexed_once_however_often_recall_runs() -> None:
    p = planner()
    ledger = ledger_of(chat_with_a_fact("What is my locker code at the gym?", notes=40))
    first = p.view(ledger, SummaryState(), budget=150)
    indexed = ledger.indexed_count
    for i in range(5):
        ledger.extend([AIMessage("Ok."), HumanMessage(f"And the code of locker {i}?")], COUNTER)
        p.view(ledger, SummaryState(), budget=150)
    assert first.recalled == (1,)
    assert indexed <= ledger.indexed_count <= indexed + 10  # only the messages added since


def test_recall_looks_for_rare_words_and_skips_words_most_messages_hold() -> None:
    """A word held by more than 256 earlier messages cannot pick out a few of them: the
    query leaves it out (its postings would grow with the conversation) and still finds
    the message that shares the question's rare word."""
    messages: list[BaseMessage] = []
    for i in range(300):
        messages.append(HumanMessage(f"note {i}: the weather report said rain again"))
        messages.append(AIMessage("Noted."))
    messages[401] = AIMessage("Your locker code is 4417; the weather report said rain.")
    messages.append(HumanMessage("What did the weather report say about my locker?"))
    ledger = ledger_of(messages)
    positions = ledger.recall("What did the weather report say about my locker?", 590, 8, 0.05)
    assert positions and positions[0] == 401
    assert ledger._rare_words("weather report locker") == "locker"


def test_recall_query_keeps_the_rarest_words_while_their_messages_stay_few() -> None:
    """After the rarest word, the query takes the next rarest only while the words'
    messages number at most 32 together, so its posting lists stay short however long
    the conversation; the rarest word is kept even when more messages hold it."""
    messages: list[BaseMessage] = []
    for i in range(60):
        words = ["harbor"] if i < 20 else []
        words += ["lantern"] if i % 6 == 0 else []  # 10 messages
        words += ["violet"] if i % 12 == 0 else []  # 5 messages
        words += ["meadow"] * (i < 40)  # 40 messages
        messages.append(HumanMessage(f"note {i}: " + " ".join(words)))
        messages.append(AIMessage("Noted."))
    messages[33] = AIMessage("Your locker is by the violet lantern at the harbor.")
    question = "Which locker sits by the harbor lantern, the violet one?"
    messages.append(HumanMessage(question))
    ledger = ledger_of(messages)
    positions = ledger.recall(question, len(messages) - 1, 8, 0.05)
    assert positions and positions[0] == 33
    # locker 1 message, violet 6, lantern 11 (18 together); harbor's 21 would make 39
    assert ledger._rare_words(question) == "locker violet lantern"
    assert ledger._rare_words("meadow harbor") == "harbor"  # 21 + 40 > 32
    assert ledger._rare_words("meadow") == "meadow"  # the rarest, though 40 > 32
