"""What a token-budgeted chat history folds and shows: pure planning, no I/O.

`SummarizingChatMessageHistory` keeps every message in a wrapped history and shows the
model pinned system messages, a running summary and the recent turns within a budget.
This module decides, from the messages with their token counts (a `Ledger`), the
summary state and the budget, which messages to fold into the summary next (in which
chunks) and which messages the view shows. It never reads a store or calls a
summarizer: the history does that, and this logic is tested without either.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
from bisect import bisect_left
from dataclasses import dataclass
from typing import Any, TypeGuard

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from langchain_tokenopt.core.messages import content_to_text
from langchain_tokenopt.core.tokens import TokenCounter

__all__ = [
    "MIN_BUDGET_TOKENS",
    "ContextPlanner",
    "FoldRange",
    "Ledger",
    "SummaryState",
    "fingerprint",
    "same_message",
]

logger = logging.getLogger(__name__)

#: Smallest budget a view can be built for (framing of an empty request + a little).
MIN_BUDGET_TOKENS = 16
#: Version of `SummaryState.to_json`.
STATE_VERSION = 1
_TRUNCATION_MARK = " …[truncated]… "


@dataclass(frozen=True)
class SummaryState:
    """What the summary covers; the history persists it as JSON in its state store.

    Example:
        >>> state = SummaryState(summary="User is Ada.", covered=4, fingerprint="ab", folds=1)
        >>> SummaryState.from_json(state.to_json()) == state
        True
    """

    summary: str = ""
    covered: int = 0  # messages [0, covered) of the wrapped history are folded
    fingerprint: str = ""  # of message covered - 1, to notice a rewritten history
    folds: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "summary": self.summary,
            "covered": self.covered,
            "fingerprint": self.fingerprint,
            "folds": self.folds,
        }

    @classmethod
    def from_json(cls, value: Any) -> SummaryState | None:
        """The state saved as `value`; None unless every field has its type and range."""
        if not isinstance(value, dict) or value.get("version") != STATE_VERSION:
            return None
        summary, covered = value.get("summary"), value.get("covered")
        fingerprint, folds = value.get("fingerprint"), value.get("folds")
        if not (isinstance(summary, str) and isinstance(fingerprint, str)):
            return None
        if not (_is_count(covered) and _is_count(folds)):
            return None
        return cls(summary=summary, covered=covered, fingerprint=fingerprint, folds=folds)


def _is_count(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


@dataclass(frozen=True)
class FoldRange:
    """Messages [start, end) go into the summary, in chunks; the summary's token cap."""

    start: int
    end: int
    chunks: list[list[BaseMessage]]
    cap_tokens: int


def fingerprint(message: BaseMessage) -> str:
    """A digest of a message's type and content, to notice a rewritten history."""
    payload = json.dumps([message.type, message.content], sort_keys=True, default=str)
    return hashlib.sha1(payload.encode("utf-8"), usedforsecurity=False).hexdigest()


def same_message(a: BaseMessage, b: BaseMessage) -> bool:
    """Whether `a` and `b` are the same stored message (type and content)."""
    return a is b or (a.type == b.type and a.content == b.content)


class Ledger:
    """Every stored message with its token count, grouped into units that move together.

    A unit is a message plus, for an `AIMessage` with tool calls, the `ToolMessage`s
    that follow it (an orphan `ToolMessage` joins the unit before it). Running sums
    make "tokens of the messages from i to the end" O(1), so a growing history is
    never recounted.

    Example:
        >>> from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
        >>> ledger = Ledger(pin_system=True)
        >>> for message, tokens in [(SystemMessage("Be brief."), 7), (HumanMessage("Hi"), 5),
        ...                         (AIMessage("Hello!"), 6)]:
        ...     ledger.append(message, tokens)
        >>> ledger.pinned, ledger.unit_starts, ledger.window_tokens(1)
        ([0], [1, 2], 11)
    """

    def __init__(self, pin_system: bool) -> None:
        self.pin_system = pin_system
        self.messages: list[BaseMessage] = []
        self.tokens: list[int] = []
        self.cum = [0]  # cum[i] = tokens of unpinned messages in [0, i)
        self.pinned: list[int] = []
        self.pinned_tokens = 0
        self.unit_starts: list[int] = []
        self.human_starts: list[int] = []

    def __len__(self) -> int:
        return len(self.messages)

    def is_pinned(self, message: BaseMessage) -> bool:
        return self.pin_system and isinstance(message, SystemMessage)

    def append(self, message: BaseMessage, tokens: int) -> None:
        index = len(self.messages)
        self.messages.append(message)
        self.tokens.append(tokens)
        if self.is_pinned(message):
            self.pinned.append(index)
            self.pinned_tokens += tokens
            self.cum.append(self.cum[-1])
            return
        self.cum.append(self.cum[-1] + tokens)
        if not isinstance(message, ToolMessage) or not self.unit_starts:
            self.unit_starts.append(index)
            if isinstance(message, HumanMessage):
                self.human_starts.append(index)

    def window_tokens(self, start: int) -> int:
        return self.cum[-1] - self.cum[start]

    def can_start(self, index: int) -> bool:
        """A window may start at a unit whose head is not a `ToolMessage`."""
        return not isinstance(self.messages[index], ToolMessage)

    def first_start_at_or_after(self, index: int) -> int:
        """Position in `unit_starts` of the first valid window start >= `index`."""
        pos = bisect_left(self.unit_starts, index)
        while pos < len(self.unit_starts) and not self.can_start(self.unit_starts[pos]):
            pos += 1
        return pos

    def start_fitting(self, lowest: int, room_tokens: int) -> int | None:
        """Best window start >= `lowest` whose tail fits in `room_tokens`, or None.

        Prefers a unit that starts with a `HumanMessage` (some providers want the
        first turn to be the user's); falls back to any unit not starting with a
        `ToolMessage`, so a long agent loop still shows its latest steps.
        """
        first = self.first_start_at_or_after(lowest)
        cum = self.cum
        # cum at unit starts is non-decreasing: binary search the first that fits.
        pos = bisect_left(self.unit_starts, cum[-1] - room_tokens, lo=first, key=lambda i: cum[i])
        if pos >= len(self.unit_starts):
            return None
        pos = self.first_start_at_or_after(self.unit_starts[pos])
        if pos >= len(self.unit_starts):
            return None
        start = self.unit_starts[pos]
        human = bisect_left(self.human_starts, start)
        return self.human_starts[human] if human < len(self.human_starts) else start

    def last_start(self, after: int) -> int | None:
        """The newest window start > `after` (a human turn if there is one)."""
        if self.human_starts and self.human_starts[-1] > after:
            return self.human_starts[-1]
        for start in reversed(self.unit_starts):
            if start <= after:
                break
            if self.can_start(start):
                return start
        return None

    def units(self, start: int) -> list[list[BaseMessage]]:
        """Unpinned messages from `start` on, grouped by unit (start must be a unit start)."""
        pos = bisect_left(self.unit_starts, start)
        bounds = [*self.unit_starts[pos:], len(self.messages)]
        return [
            [m for m in self.messages[a:b] if not self.is_pinned(m)]
            for a, b in itertools.pairwise(bounds)
        ]


class ContextPlanner:
    """Decides what a budgeted history folds and shows; counts tokens, does no I/O.

    Priority when not everything fits: pinned messages > newest turn > summary > older
    turns. A fold brings summary + recent turns down to the target (`target_tokens`,
    or `target_ratio` of what pinned messages leave of the budget), and the summary
    text is capped at `max_summary_tokens` (at most half of what pinned messages leave).

    Example:
        >>> from langchain_core.messages import AIMessage, HumanMessage
        >>> planner = ContextPlanner(TokenCounter("gpt-4o"), target_ratio=0.75)
        >>> ledger = Ledger(pin_system=True)
        >>> for i in range(20):
        ...     for message in (HumanMessage(f"Note {i}: room {100 + i}."), AIMessage("Noted.")):
        ...         ledger.append(message, planner.token_counter.count_message(message))
        >>> fold = planner.fold(ledger, SummaryState(), summary_tokens=0, budget=200)
        >>> fold.start, fold.end, len(fold.chunks)
        (0, 36, 2)
        >>> view = planner.view(ledger, covered=0, summary_message=None, summary_tokens=0,
        ...                     budget=200)
        >>> planner.token_counter.count_messages(view) <= 200, view[-1].content
        (True, 'Noted.')
    """

    def __init__(
        self,
        token_counter: TokenCounter,
        *,
        target_ratio: float,
        target_tokens: int | None = None,
        max_summary_tokens: int | None = None,
        summary_frame_tokens: int = 0,
    ) -> None:
        """`summary_frame_tokens`: what the summary message costs beyond its text."""
        self.token_counter = token_counter
        self.target_ratio = target_ratio
        self.target_tokens = target_tokens
        self.max_summary_tokens = max_summary_tokens
        self.summary_frame_tokens = summary_frame_tokens
        self.overhead_tokens = int(token_counter.count_messages([]))

    # ------------------------------------------------------------- budget

    def base_tokens(self, ledger: Ledger, summary_tokens: int) -> int:
        """Tokens of the request framing, the pinned messages and the summary."""
        return self.overhead_tokens + ledger.pinned_tokens + summary_tokens

    def available(self, ledger: Ledger, budget: int) -> int:
        """What the budget leaves for summary + recent turns after pinned messages."""
        return max(0, budget - self.base_tokens(ledger, 0))

    def summary_cap(self, ledger: Ledger, budget: int) -> int:
        """Most tokens the summary text may take."""
        half = self.available(ledger, budget) // 2
        if self.max_summary_tokens is None:
            return max(1, half)
        return max(1, min(self.max_summary_tokens, half))

    def target(self, ledger: Ledger, budget: int) -> int:
        """Tokens the view should take right after a fold."""
        if self.target_tokens is not None:
            return min(self.target_tokens, budget)
        return self.base_tokens(ledger, 0) + int(self.available(ledger, budget) * self.target_ratio)

    # ------------------------------------------------------------ folding

    def fold(
        self, ledger: Ledger, state: SummaryState, summary_tokens: int, budget: int
    ) -> FoldRange | None:
        """The messages to fold next, or None while the unfolded turns fit the budget.

        A range without chunks holds only pinned messages: the boundary moves, the
        summary stays.
        """
        unfolded = ledger.window_tokens(state.covered)
        if self.base_tokens(ledger, summary_tokens) + unfolded <= budget:
            return None
        cap = self.summary_cap(ledger, budget)
        summary_room = self.summary_frame_tokens + cap + 1
        room = self.target(ledger, budget) - self.base_tokens(ledger, summary_room)
        end = ledger.start_fitting(state.covered, max(room, 0)) if room > 0 else None
        last = ledger.last_start(state.covered)
        if end is None or (last is not None and end > last):
            end = last
        if end is None or end <= state.covered:
            return None
        chunks = self.chunks(ledger, state.covered, end, budget)
        return FoldRange(start=state.covered, end=end, chunks=chunks, cap_tokens=cap)

    @staticmethod
    def chunks(ledger: Ledger, start: int, end: int, chunk_tokens: int) -> list[list[BaseMessage]]:
        """Unpinned messages [start, end) in unit-aligned chunks of about `chunk_tokens`."""
        chunks: list[list[BaseMessage]] = []
        current: list[BaseMessage] = []
        size = 0
        unit_set_pos = bisect_left(ledger.unit_starts, start)
        unit_starts = set(ledger.unit_starts[unit_set_pos:])
        for i in range(start, end):
            message = ledger.messages[i]
            if ledger.is_pinned(message):
                continue
            if current and i in unit_starts and size + ledger.tokens[i] > chunk_tokens:
                chunks.append(current)
                current, size = [], 0
            current.append(message)
            size += ledger.tokens[i]
        if current:
            chunks.append(current)
        return chunks

    def cap_summary(self, summary: str, cap_tokens: int) -> str:
        """`summary`, cut to at most `cap_tokens` tokens if it is longer."""
        count = self.token_counter.count_text
        if count(summary) <= cap_tokens:
            return summary
        logger.debug("Summary over its cap of %d tokens; truncating.", cap_tokens)
        tokens = self.token_counter.encode(summary)
        keep = cap_tokens
        while keep > 0:
            text = self.token_counter.decode(tokens[:keep]).rstrip()
            if count(text) <= cap_tokens:
                return text
            keep -= 1
        return ""

    # --------------------------------------------------------------- view

    def view(
        self,
        ledger: Ledger,
        covered: int,
        summary_message: BaseMessage | None,
        summary_tokens: int,
        budget: int,
    ) -> list[BaseMessage]:
        """What the model sees: pinned messages, the summary and the newest turns that fit.

        `covered` messages from the start are in the summary; `summary_message` (None
        before the first fold) costs `summary_tokens`. Never more than `budget` tokens.
        """
        if budget < MIN_BUDGET_TOKENS:
            logger.warning(
                "A budget of %d tokens is below the minimum of %d; returning no messages.",
                budget,
                MIN_BUDGET_TOKENS,
            )
            return []
        pinned = [ledger.messages[i] for i in ledger.pinned]
        head = pinned + ([summary_message] if summary_message is not None else [])
        room = budget - self.base_tokens(ledger, summary_tokens)
        start = ledger.start_fitting(covered, room) if room > 0 else None
        if start is not None:
            view = head + [m for unit in ledger.units(start) for m in unit]
            if self.token_counter.count_messages(view) <= budget:
                return view
        # Slow path: the newest turn, the summary or the pinned messages do not fit.
        first = ledger.first_start_at_or_after(covered)
        lowest = ledger.unit_starts[first] if first < len(ledger.unit_starts) else None
        units = ledger.units(lowest) if lowest is not None else []
        return self._fit(pinned, summary_message, units, budget)

    def _fit(
        self,
        pinned: list[BaseMessage],
        summary: BaseMessage | None,
        units: list[list[BaseMessage]],
        budget: int,
    ) -> list[BaseMessage]:
        """Priority when not everything fits: pinned > newest turn > summary > older turns."""
        count = self.token_counter.count_messages
        if count(pinned) > budget:
            logger.warning("Pinned system messages exceed the budget; truncating them in view.")
            return self._truncate_messages([], pinned, budget)
        newest = units[-1] if units else []
        if newest and count(pinned + newest) > budget:
            logger.warning(
                "The newest turn (%d tokens) does not fit the budget of %d tokens; "
                "showing it truncated (the store keeps it whole).",
                count(newest),
                budget,
            )
            newest = self._truncate_messages(pinned, newest, budget)
        head = list(pinned)
        if summary is not None:
            if count([*head, summary, *newest]) <= budget:
                head.append(summary)
            else:
                room = budget - count(newest) + self.overhead_tokens
                shrunk = self._truncate_messages(head, [summary], room)
                head.extend(shrunk)
        older: list[BaseMessage] = []
        for unit in reversed(units[:-1]):
            if count(head + unit + older + newest) > budget:
                break
            older = unit + older
        view = head + older + newest
        if count(view) > budget:  # cannot happen with additive counts; stay safe anyway
            view = pinned if count(pinned) <= budget else []
        return view

    def _truncate_messages(
        self, prefix: list[BaseMessage], unit: list[BaseMessage], budget: int
    ) -> list[BaseMessage]:
        """Shorten the longest texts in `unit` until `prefix + unit` fits; [] if impossible."""
        count = self.token_counter.count_messages
        unit = list(unit)
        for _ in range(8):
            excess = count(prefix + unit) - budget
            if excess <= 0:
                return unit
            sizes = [self.token_counter.count_text(content_to_text(m.content)) for m in unit]
            longest = max(range(len(unit)), key=lambda i: sizes[i])
            keep = sizes[longest] - excess - self.token_counter.count_text(_TRUNCATION_MARK) - 2
            if keep <= 0:
                target = unit[longest]
                if isinstance(target, AIMessage) and target.tool_calls:
                    break  # tool-call arguments cannot be cut without breaking them
                unit[longest] = unit[longest].model_copy(update={"content": ""})
                continue
            unit[longest] = unit[longest].model_copy(
                update={"content": self._shorten_text(content_to_text(unit[longest].content), keep)}
            )
        if count(prefix + unit) <= budget:
            return unit
        logger.warning("A turn does not fit the budget even truncated; leaving it out of view.")
        return []

    def _shorten_text(self, text: str, keep_tokens: int) -> str:
        tokens = self.token_counter.encode(text)
        head = max(1, keep_tokens * 2 // 3)
        tail = max(0, keep_tokens - head)
        end = self.token_counter.decode(tokens[-tail:]) if tail else ""
        return self.token_counter.decode(tokens[:head]) + _TRUNCATION_MARK + end
