"""Property tests of the planner's promises, over random conversations and budgets:
every view fits its budget (counted exactly), never splits a tool call from its result,
keeps pinned messages + summary as a byte-identical prefix between folds, and nothing
is lost: each message is folded exactly once, in order, or still shown."""

from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from langchain_tokenopt.chat_history.planner import (
    RECALL_HEADER,
    ContextPlanner,
    ContextView,
    Ledger,
    SummaryState,
    folded_state,
)
from langchain_tokenopt.core.tokens import TokenCounter

COUNTER = TokenCounter("gpt-4o")
WORDS = [
    "locker",
    "code",
    "gym",
    "room",
    "pear",
    "blue",
    "train",
    "Oslo",
    "Lima",
    "seven",
    "ticket",
    "bike",
]

words = st.lists(st.sampled_from(WORDS), min_size=1, max_size=8).map(" ".join)
turn = st.tuples(st.sampled_from(["chat", "tool", "system"]), words, words, st.integers(0, 2))
conversations = st.lists(turn, min_size=1, max_size=40)


def messages_of(turns: list[tuple[str, str, str, int]]) -> list[list[BaseMessage]]:
    """Each turn as the messages one step of a conversation appends."""
    steps: list[list[BaseMessage]] = []
    for i, (kind, said, answer, calls) in enumerate(turns):
        if kind == "system":
            steps.append([SystemMessage(f"Rule {i}: {said}.")])
            continue
        step: list[BaseMessage] = [HumanMessage(f"{said}?", id=f"h{i}")]
        if kind == "tool":
            ids = [f"c{i}-{j}" for j in range(calls + 1)]
            step.append(
                AIMessage(
                    "", tool_calls=[{"name": "find", "args": {"q": said}, "id": c} for c in ids]
                )
            )
            step += [ToolMessage(f"found {answer}", tool_call_id=c) for c in ids]
        step.append(AIMessage(f"{answer}.", id=f"a{i}"))
        steps.append(step)
    return steps


def assert_tool_pairs_intact(messages: list[BaseMessage]) -> None:
    for index, message in enumerate(messages):
        if isinstance(message, ToolMessage):
            assert any(
                isinstance(m, AIMessage) and message.tool_call_id in {c["id"] for c in m.tool_calls}
                for m in messages[:index]
            ), "a tool result without its call"
        if isinstance(message, AIMessage) and message.tool_calls:
            answered = {m.tool_call_id for m in messages[index:] if isinstance(m, ToolMessage)}
            assert {c["id"] for c in message.tool_calls} <= answered, "a call without its result"


def head_of(planner: ContextPlanner, ledger: Ledger, state: SummaryState) -> list[BaseMessage]:
    summary, _ = planner.summary_message(state.summary)
    pinned = [ledger.messages[i] for i in ledger.pinned]
    return pinned + ([summary] if summary is not None else [])


def check_view(
    planner: ContextPlanner, ledger: Ledger, state: SummaryState, view: ContextView, budget: int
) -> None:
    assert view.tokens == COUNTER.count_messages(view.messages) <= budget
    assert_tool_pairs_intact(view.messages)
    head = head_of(planner, ledger, state)
    assert view.messages[: len(head)] == head  # byte-identical cached prefix
    rest = view.messages[len(head) :]
    if view.recalled:
        assert str(rest[0].content).startswith(RECALL_HEADER)
        start = ledger.messages.index(rest[1])
        assert all(p < start and not ledger.is_pinned(ledger.messages[p]) for p in view.recalled)
        rest = rest[1:]
    # the recent turns: a contiguous run of the transcript, ending with its newest message
    unpinned = [m for m in ledger.messages if not ledger.is_pinned(m)]
    assert rest == unpinned[len(unpinned) - len(rest) :]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conversations, st.integers(160, 700), st.booleans())
def test_views_fit_keep_tool_pairs_and_a_stable_prefix_and_nothing_is_lost(
    turns: list[tuple[str, str, str, int]], budget: int, recall: bool
) -> None:
    planner = ContextPlanner(COUNTER, target_ratio=0.75, recall=recall)
    ledger = Ledger(pin_system=True)
    state = SummaryState()
    folded: list[BaseMessage] = []
    previous: tuple[int, list[BaseMessage]] | None = None
    for step in messages_of(turns):
        ledger.extend(step, COUNTER)
        plan = planner.plan(ledger, state, budget)
        check_view(planner, ledger, state, plan.view, budget)
        if plan.fold is not None:
            assert plan.fold.start == state.covered < plan.fold.end
            folded += [m for chunk in plan.fold.chunks for m in chunk]
            state = folded_state(state, f"summary {state.folds}", ledger, plan.fold.end)
        view = planner.view(ledger, state, budget)
        check_view(planner, ledger, state, view, budget)
        head = head_of(planner, ledger, state)
        if previous is not None and previous[0] == state.folds:
            assert view.messages[: len(previous[1])] == previous[1] or len(head) != len(previous[1])
        previous = (state.folds, head)
    # nothing lost: the folds saw every unpinned message before the boundary once, in order
    assert folded == [m for m in ledger.messages[: state.covered] if not ledger.is_pinned(m)]


# text that stresses the pre-tokenizer around the newlines the recall message joins
# lines with: whitespace runs, newlines, "/", punctuation, digits, letters of any script
hostile_text = st.text(
    alphabet=st.one_of(
        st.sampled_from(list(" \t\n\r/[]().:,'!?-_0123456789aZ")),
        st.characters(codec="utf-8"),
    ),
    max_size=40,
)


def _quoted_message(kind: str, text: str) -> BaseMessage:
    """A message to quote: plain ones take the path that reuses the ledger's count, the
    others (a name, tool calls, a tool result) are counted as lines."""
    if kind == "human":
        return HumanMessage(text)
    if kind == "ai":
        return AIMessage(text)
    if kind == "system":
        return SystemMessage(text)
    if kind == "named":
        return HumanMessage(text, name="ana")
    if kind == "tool_call":
        return AIMessage(text, tool_calls=[{"name": "look", "args": {"q": text}, "id": "c1"}])
    return ToolMessage(text, tool_call_id="c1", name="look")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    model=st.sampled_from(["gpt-4o", "gpt-4"]),
    role=st.sampled_from(["system", "human", "ai"]),
    quoted=st.lists(
        st.tuples(
            st.sampled_from(["human", "ai", "system", "named", "tool_call", "tool"]), hostile_text
        ),
        min_size=1,
        max_size=6,
    ),
    room=st.integers(16, 2000),
)
def test_recall_message_count_from_line_counts_is_exact(
    model: str, role: str, quoted: list[tuple[str, str]], room: int
) -> None:
    """The recall message's tokens, summed from the ledger's counts of plain messages and
    memoized counts of the other lines, equal a whole recount, for o200k (gpt-4o) and
    cl100k (gpt-4), whatever the quoted text holds (whole or shown in part)."""
    counter = TokenCounter(model)
    planner = ContextPlanner(counter, target_ratio=0.75, summary_role=role, recall=True)  # type: ignore[arg-type]
    messages = [_quoted_message(kind, text) for kind, text in quoted]
    ledger = Ledger.of([*messages, HumanMessage("and now?")], counter, pin_system=False)
    positions = list(range(len(messages)))
    for _ in range(2):  # the second time from memoized lines: the same answer
        message, chosen, tokens = planner._recall_message(ledger, positions, room)
        if message is None:
            assert chosen == [] and tokens == 0
        else:
            assert tokens == int(counter.count_message(message)) <= room
            assert str(message.content).startswith(RECALL_HEADER + "\n[")


def test_recall_message_without_line_heads_is_counted_whole() -> None:
    """A line not starting with "[" (no proven split point) is counted exactly, whole."""
    counter = TokenCounter("gpt-4o")
    planner = ContextPlanner(counter, target_ratio=0.75, recall=True)
    quoted: list[tuple[str, int | None]] = [("[1] User:\nx. \n", None), ("\n\n  tail", None)]
    message = planner.make_message(RECALL_HEADER + "\n" + "".join(line for line, _ in quoted))
    assert planner._recall_tokens(message, quoted) == int(counter.count_message(message))


def test_every_short_digit_run_and_the_line_end_are_one_token() -> None:
    """What `ContextPlanner._line_frame_tokens` relies on: one token per run of up to three
    digits, so a line head's count depends on how many digits its position has."""
    for model in ("gpt-4o", "gpt-4"):
        counter = TokenCounter(model)
        runs = [f"{i:0{width}d}" for width in (1, 2, 3) for i in range(10**width)]
        assert {int(counter.count_text(run)) for run in runs} == {1}
        assert int(counter.count_text(" \n")) == 1


def test_recall_message_count_is_exact_for_positions_of_many_digits() -> None:
    counter = TokenCounter("gpt-4o")
    planner = ContextPlanner(counter, target_ratio=0.75, recall=True)
    texts = ["The locker code is 4417.", "ok", "Lima, then Oslo!", "x" * 30, "(see above)"]
    messages: list[BaseMessage] = [
        (HumanMessage if i % 2 else AIMessage)(texts[i % len(texts)]) for i in range(12_000)
    ]
    ledger = Ledger.of([*messages, HumanMessage("and now?")], counter, pin_system=False)
    positions = [7, 58, 999, 1_000, 1_003, 11_999]
    message, chosen, tokens = planner._recall_message(ledger, positions, room=2_000)
    assert message is not None and chosen == positions
    assert tokens == int(counter.count_message(message))


@settings(max_examples=300, deadline=None)
@given(
    model=st.sampled_from(["gpt-4o", "gpt-4", "claude-3-5-haiku-latest"]),
    role=st.sampled_from(["system", "human", "ai"]),
    prefix=st.sampled_from(["Summary of the earlier conversation:\n", "Earlier:\n\n", "S: ", ""]),
    summary=hostile_text.filter(bool),
)
# a summary starting with a newline: ":\n\n" is one token, ":\n" + "\n" two
@example(model="gpt-4o", role="system", prefix="Earlier:\n", summary="\nfoo")
@example(model="gpt-4", role="human", prefix="Earlier:\n", summary="\n\nfoo")
def test_summary_message_count_from_the_summary_text_count_is_exact(
    model: str, role: str, prefix: str, summary: str
) -> None:
    """The summary message's tokens, taken from the (memoized) count of its text where the
    prefix ends with a newline, equal a whole recount, whatever the summary starts with."""
    counter = TokenCounter(model)
    planner = ContextPlanner(
        counter,
        target_ratio=0.75,
        summary_role=role,  # type: ignore[arg-type]
        summary_prefix=prefix,
    )
    for _ in range(2):  # the second time from the memo: the same answer
        message, tokens = planner.summary_message(summary)
        assert message is not None and message.content == prefix + summary
        assert tokens == int(counter.count_message(message))
        planner.summary_message(summary + "!")  # a fold between
