"""History lever: each request sends the summarizing history's view of its conversation
(pinned system messages, a summary, the recent turns within `max_tokens`) instead of
everything before it."""

from __future__ import annotations

from typing import Any

from langchain_tokenopt.analysis.levers.base import Lever, Step
from langchain_tokenopt.analysis.replay import Message, Sent
from langchain_tokenopt.chat_history.history import SummarizingChatMessageHistory

__all__ = ["HistoryLever"]


class _State:
    __slots__ = ("by_id", "history")

    def __init__(self, history: SummarizingChatMessageHistory) -> None:
        self.history = history
        self.by_id: dict[int, Message] = {}


class HistoryLever(Lever):
    """`SummarizingChatMessageHistory(max_tokens)` fed each conversation's new messages."""

    name = "history"

    def __init__(self, max_tokens: int = 1000) -> None:
        self.max_tokens = max_tokens
        self.folded = 0
        self._framing: dict[str, int] = {}  # a request's framing per encoding

    @property
    def label(self) -> str:
        return f"summarizing history (max {self.max_tokens:,} tokens)"

    def observe(self, step: Step) -> None:
        state: _State | None = step.conversation.state.get(self.name)
        counter = step.counters.counter(step.baseline.model)
        if state is None:
            history = SummarizingChatMessageHistory(
                max_tokens=self.max_tokens, token_counter=counter
            )
            state = step.conversation.state[self.name] = _State(history)
        new = step.new_messages
        if new:
            before = state.history.folded_message_count
            state.history.add_messages([m.base for m in new])
            self.folded += state.history.folded_message_count - before
            for message in new:
                state.by_id[id(message.base)] = message
        view = state.history.view()
        messages: list[Message] = []
        made: list[Message] = []  # the summary, the recall message, a truncated turn
        for base in view.messages:
            kept = state.by_id.get(id(base))
            if kept is None:
                kept = step.interner.add(Message.from_base(base))
                made.append(kept)
            messages.append(kept)
        if made:
            # The view's count is exact (`ContextView.tokens`): the last message it made
            # (the recall message, quoted lines whose counts the planner summed) takes
            # what the others leave instead of being encoded again.
            framing = self._framing.get(counter.encoding_name)
            if framing is None:
                framing = self._framing[counter.encoding_name] = int(counter.count_messages([]))
            others = sum(m.tokens(counter) for m in messages if m is not made[-1])
            made[-1].know_tokens(counter, view.tokens - framing - others)
        baseline_tokens = sum(m.tokens(counter) for m in step.baseline.messages)
        if sum(m.tokens(counter) for m in messages) < baseline_tokens:
            step.notes[self.name] = tuple(messages)

    def apply(self, sent: Sent, step: Step) -> Sent:
        view: tuple[Message, ...] | None = step.notes.get(self.name)
        if view is None or sent.answered:
            return sent
        return sent.with_messages(view)

    def note(self) -> str:
        return f"{self.folded:,} older messages folded into summaries"

    def summary(self) -> dict[str, Any]:
        return {"folded": self.folded}

    def absorb(self, summary: dict[str, Any]) -> None:
        self.folded += summary["folded"]

    def details(self) -> dict[str, Any]:
        return {"max_tokens": self.max_tokens, "folded_messages": self.folded}
