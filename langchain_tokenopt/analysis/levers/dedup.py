"""Dedup lever: each request sends its messages without near-duplicates of earlier messages
of its conversation (the newest turn is always kept)."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import HumanMessage

from langchain_tokenopt.analysis.levers.base import Lever, Step
from langchain_tokenopt.analysis.replay import Message, Sent
from langchain_tokenopt.dedup import MessageDeduplicator

__all__ = ["DedupLever"]

_SENTINEL = HumanMessage("")

#: Earlier messages each new message is compared with (bounds the work per message).
_WINDOW = 40


class _State:
    __slots__ = ("judged", "removed", "repeated")

    def __init__(self) -> None:
        self.judged: list[Message] = []
        self.removed: set[Any] = set()  # near-duplicates: never sent
        self.repeated: set[Any] = set()  # exact repeats: sent once, where they first appear


def _look_alikes(message: Message, earlier: list[Message], threshold: float) -> list[Message]:
    """The earlier messages of its role sharing at least `threshold / 2` of their words
    (Jaccard) with `message`: a cheap filter before the TF-IDF deduplicator, which only
    matches texts sharing most of their words."""
    words = message.words
    mine = len(words)
    if mine < 3:
        return []
    half = threshold / 2
    found = []
    for other in earlier:
        if other.role != message.role:
            continue
        theirs = other.words
        size = len(theirs)
        # the shared words are at most the smaller set, the union at least the larger
        if not size or min(mine, size) < half * max(mine, size):
            continue
        shared = len(words & theirs)
        if shared >= half * (mine + size - shared):  # the union's size
            found.append(other)
    return found


def _newest_unit_start(messages: tuple[Message, ...]) -> int:
    """Index where the request's newest unit (its last message, with the assistant message
    whose tool calls it answers) starts: never removed."""
    start = len(messages) - 1
    while start > 0 and messages[start].role == "tool":
        start -= 1
    return start


class DedupLever(Lever):
    """`MessageDeduplicator(threshold)`: each new message judged once against the
    conversation's previous `_WINDOW` messages (keep the first)."""

    name = "dedup"

    def __init__(self, threshold: float = 0.9) -> None:
        self.threshold = threshold
        self._deduplicators: dict[str, MessageDeduplicator] = {}
        self.removed_messages = 0

    @property
    def label(self) -> str:
        return f"de-duplication (similarity >= {self.threshold:g})"

    def observe(self, step: Step) -> None:
        state: _State = step.conversation.state.setdefault(self.name, _State())
        new = list(step.new_messages)
        if not new:
            return
        counter = step.counters.counter(step.baseline.model)
        deduplicator = self._deduplicators.get(counter.encoding_name)
        if deduplicator is None:
            deduplicator = MessageDeduplicator(self.threshold, token_counter=counter)
            self._deduplicators[counter.encoding_name] = deduplicator
        window = state.judged[-_WINDOW:]
        for position, message in enumerate(new):
            earlier = window + new[:position]
            similar = _look_alikes(message, earlier, self.threshold)
            if similar:
                # The deduplicator never removes its input's last unit; the sentinel makes
                # the new message judged (the newest one is protected in `apply`).
                batch = [*(m.base for m in similar), message.base, _SENTINEL]
                result = deduplicator.deduplicate(batch)
                if len(similar) in result.removed_indices:
                    if any(m.key == message.key for m in earlier):
                        state.repeated.add(message.key)
                    else:
                        state.removed.add(message.key)
                    self.removed_messages += 1
        state.judged = (window + new)[-_WINDOW:]

    def apply(self, sent: Sent, step: Step) -> Sent:
        state: _State | None = step.conversation.state.get(self.name)
        if state is None or not (state.removed or state.repeated) or sent.answered:
            return sent
        newest = _newest_unit_start(sent.messages)
        kept: list[Message] = []
        sent_once: set[Any] = set()
        for i, m in enumerate(sent.messages):
            if i < newest and (m.key in state.removed or m.key in sent_once):
                continue
            kept.append(m)
            if m.key in state.repeated:
                sent_once.add(m.key)
        return sent if len(kept) == len(sent.messages) else sent.with_messages(kept)

    def note(self) -> str:
        return f"{self.removed_messages:,} near-duplicate messages removed"

    def summary(self) -> dict[str, Any]:
        return {"removed_messages": self.removed_messages}

    def absorb(self, summary: dict[str, Any]) -> None:
        self.removed_messages += summary["removed_messages"]

    def details(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "removed_messages": self.removed_messages}
