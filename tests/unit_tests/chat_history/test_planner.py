"""The context planner on its own: no store, no summarizer, only messages and counts."""

from __future__ import annotations

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from langchain_tokenopt.chat_history.planner import ContextPlanner, Ledger, SummaryState
from langchain_tokenopt.core.tokens import TokenCounter

COUNTER = TokenCounter("gpt-4o")


def planner(**kwargs: object) -> ContextPlanner:
    return ContextPlanner(COUNTER, target_ratio=0.75, **kwargs)  # type: ignore[arg-type]


def ledger_of(messages: list[BaseMessage]) -> Ledger:
    ledger = Ledger(pin_system=True)
    for message in messages:
        ledger.append(message, int(COUNTER.count_message(message)))
    return ledger


def tool_turn(i: int) -> list[BaseMessage]:
    call = {"name": "lookup", "args": {"q": f"item {i}"}, "id": f"c{i}"}
    return [
        HumanMessage(f"Look up item {i} in the catalogue, please."),
        AIMessage("", tool_calls=[call]),
        ToolMessage(f"Item {i} is a blue umbrella in aisle {i}.", tool_call_id=f"c{i}"),
        AIMessage(f"Item {i} is a blue umbrella."),
    ]


def test_nothing_is_folded_while_the_turns_fit() -> None:
    ledger = ledger_of([HumanMessage("Hi"), AIMessage("Hello!")])
    assert planner().fold(ledger, SummaryState(), summary_tokens=0, budget=200) is None


def test_a_fold_never_splits_a_tool_call_from_its_result() -> None:
    ledger = ledger_of([m for i in range(12) for m in tool_turn(i)])
    fold = planner().fold(ledger, SummaryState(), summary_tokens=0, budget=300)
    assert fold is not None and fold.start == 0
    assert isinstance(ledger.messages[fold.end], HumanMessage)
    folded = [m for chunk in fold.chunks for m in chunk]
    assert folded == ledger.messages[: fold.end]


def test_the_view_fits_the_budget_keeps_pinned_messages_first_and_starts_with_a_user_turn() -> None:
    system = SystemMessage("You are a catalogue assistant.")
    ledger = ledger_of([system, *[m for i in range(12) for m in tool_turn(i)]])
    view = planner().view(ledger, covered=0, summary_message=None, summary_tokens=0, budget=200)
    assert COUNTER.count_messages(view) <= 200
    assert view[0] is system and isinstance(view[1], HumanMessage)
    assert view[-1] is ledger.messages[-1]


def test_the_summary_is_capped_in_tokens() -> None:
    text = "The user keeps a blue umbrella in locker 12 and a red one in locker 14. " * 5
    capped = planner().cap_summary(text, cap_tokens=10)
    assert COUNTER.count_text(capped) <= 10 and text.startswith(capped)
