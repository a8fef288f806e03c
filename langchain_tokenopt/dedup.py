"""Drop near-duplicate messages from a conversation before it is sent to a model.

Users paste the same text twice, agents re-read the same file, retries repeat a
question: every copy is paid for on every later turn. `deduplicate_messages` removes
the repeats (cosine similarity from `TextIndex`, at or above a threshold) while keeping
the conversation valid: system messages stay, a tool call and its results go or stay
together, and the newest turn is always kept.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.callbacks import CallbackManagerForChainRun
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.prompt_values import PromptValue
from langchain_core.runnables import Runnable, RunnableConfig

from langchain_tokenopt.core.messages import message_list
from langchain_tokenopt.core.runnables import call_in_run
from langchain_tokenopt.core.textindex import TextIndex
from langchain_tokenopt.core.tokens import TokenCounter
from langchain_tokenopt.core.validation import (
    finite_number,
    instance_of,
    int_in_range,
    optional,
    shown,
)
from langchain_tokenopt.errors import InvalidArgumentError

__all__ = ["DedupResult", "MessageDeduplicator", "deduplicate_messages"]

Keep = Literal["first", "last"]


@dataclass(frozen=True)
class DedupResult:
    """The kept messages and what removing the others saved.

    Example:
        >>> from langchain_core.messages import HumanMessage
        >>> q = "What is the refund policy for orders shipped to Canada?"
        >>> result = MessageDeduplicator().deduplicate(
        ...     [HumanMessage(q), HumanMessage(q), HumanMessage("And to Mexico?")])
        >>> result.removed_indices, result.tokens_before, result.tokens_after
        ([1], 41, 26)
    """

    messages: list[BaseMessage]
    removed_indices: list[int]
    tokens_before: int
    tokens_after: int

    @property
    def removed_tokens(self) -> int:
        """Tokens the removed messages cost in the request."""
        return self.tokens_before - self.tokens_after


@dataclass
class _Unit:
    """Messages removed or kept together: one message, or a tool call with its results."""

    indices: list[int]
    kind: str  # what a duplicate must also be: same message type(s) and name(s)
    text: str  # compared by similarity
    exact: str  # compared for equality: tool calls, non-text content
    protected: bool = False


def _exact_blocks(content: str | list[Any]) -> list[Any]:
    if isinstance(content, str):
        return []
    return [b for b in content if not (isinstance(b, Mapping) and b.get("type") == "text")]


def _text_blocks(content: str | list[Any]) -> str:
    if isinstance(content, str):
        return content
    return " ".join(
        b if isinstance(b, str) else str(b.get("text", ""))
        for b in content
        if isinstance(b, str) or (isinstance(b, Mapping) and b.get("type") == "text")
    )


def _units(messages: Sequence[BaseMessage]) -> list[_Unit]:
    units: list[_Unit] = []
    open_calls: set[str] = set()
    open_unit: _Unit | None = None  # the unit of the last AIMessage with tool calls
    for i, message in enumerate(messages):
        if isinstance(message, ToolMessage) and open_unit and message.tool_call_id in open_calls:
            unit = open_unit
        elif isinstance(message, ToolMessage) and units and not units[-1].protected:
            unit = units[-1]  # an orphan result stays with what precedes it
        else:
            unit = _Unit([], "", "", "", protected=isinstance(message, SystemMessage))
            units.append(unit)
            if not isinstance(message, SystemMessage):
                open_calls, open_unit = set(), None
        unit.indices.append(i)
        calls: list[list[Any]] = []
        if isinstance(message, AIMessage) and message.tool_calls:
            open_calls = {c["id"] for c in message.tool_calls if c["id"]}
            open_unit = unit
            calls = [[c["name"], c["args"]] for c in message.tool_calls]
        unit.kind += f"{message.type}:{message.name or ''};"
        unit.text += _text_blocks(message.content) + "\n"
        unit.exact += json.dumps(
            [calls, _exact_blocks(message.content)], sort_keys=True, default=str
        )
    return units


class MessageDeduplicator(Runnable[Sequence[Any] | PromptValue, list[BaseMessage]]):
    """A Runnable that removes near-duplicate messages (messages in, messages out).

    Two messages (or two tool-call turns) are duplicates when they have the same type
    and name, equal tool calls and non-text content, and a `TextIndex` cosine
    similarity of their text of at least `threshold`. Guarantees:

    - `SystemMessage`s are never removed.
    - An `AIMessage` with tool calls and the `ToolMessage`s answering it are compared,
      kept and removed as one unit, so no tool call or result is ever orphaned.
    - By default the first occurrence is kept (`keep="first"`): the request prefix
      stays the same as the conversation grows, so provider prompt caches keep hitting.
      `keep="last"` keeps the most recent copy instead.
    - The last unit (the current turn) is never removed.
    - Messages under `min_tokens` tokens ("ok", "thanks") are never removed: short
      replies repeat naturally and mean different things in different places.

    Example:
        >>> from langchain_core.messages import HumanMessage, AIMessage
        >>> dedup = MessageDeduplicator()
        >>> doc = "Here is the contract text: the tenant pays 1,200 EUR per month."
        >>> out = dedup.invoke([HumanMessage(doc), AIMessage("Got it."),
        ...                     HumanMessage(doc), HumanMessage("Is the rent fair?")])
        >>> [m.content for m in out]
        ['Here is the contract text: the tenant pays 1,200 EUR per month.', 'Got it.', \
'Is the rent fair?']
    """

    def __init__(
        self,
        threshold: float = 0.9,
        *,
        keep: Keep = "first",
        model: str = "gpt-4o",
        token_counter: TokenCounter | None = None,
        min_tokens: int = 8,
    ) -> None:
        finite_number(threshold, "threshold", above=0, maximum=1, hint="e.g. 0.9")
        if keep not in ("first", "last"):
            raise InvalidArgumentError(f"keep must be 'first' or 'last', not {shown(keep)}.")
        int_in_range(min_tokens, "min_tokens", minimum=0)
        optional(instance_of, token_counter, "token_counter", TokenCounter, "a TokenCounter")
        self.threshold = threshold
        self.keep: Keep = keep
        self.min_tokens = min_tokens
        self.token_counter = token_counter or TokenCounter(model)

    def deduplicate(self, messages: Sequence[Any] | PromptValue) -> DedupResult:
        """Remove duplicates and report what it saved."""
        batch = message_list(messages)
        units = _units(batch)
        if units:
            units[-1].protected = True
        candidates = {
            n: unit
            for n, unit in enumerate(units)
            if not unit.protected
            and unit.text.strip()
            and sum(self.token_counter.count_message(batch[i]) for i in unit.indices)
            >= self.min_tokens
        }
        removed_units = self._duplicates(candidates)
        removed = sorted(i for n in removed_units for i in units[n].indices)
        gone = set(removed)
        kept = [m for i, m in enumerate(batch) if i not in gone]
        before = int(self.token_counter.count_messages(batch))
        after = int(self.token_counter.count_messages(kept)) if removed else before
        return DedupResult(kept, removed, before, after)

    def _duplicates(self, candidates: dict[int, _Unit]) -> set[int]:
        if len(candidates) < 2:
            return set()
        index = TextIndex()
        index.add_many((n, unit.text) for n, unit in candidates.items())
        order = sorted(candidates, reverse=self.keep == "last")
        kept: set[int] = set()
        removed: set[int] = set()
        for n in order:
            unit = candidates[n]

            def same_kind(key: Any, unit: _Unit = unit) -> bool:
                other = candidates.get(key)
                return (
                    key in kept
                    and other is not None
                    and other.kind == unit.kind
                    and other.exact == unit.exact
                )

            if index.query(unit.text, k=1, min_score=self.threshold, where=same_kind):
                removed.add(n)
            else:
                kept.add(n)
        return removed

    def invoke(
        self,
        input: Sequence[Any] | PromptValue,
        config: RunnableConfig | None = None,
        **kwargs: Any,
    ) -> list[BaseMessage]:
        """The messages without near-duplicates."""

        def run(
            value: Sequence[Any] | PromptValue,
            run_manager: CallbackManagerForChainRun,
            config: RunnableConfig,
        ) -> list[BaseMessage]:
            return self.deduplicate(value).messages

        return call_in_run(self, run, input, config)


def deduplicate_messages(
    messages: Sequence[Any] | PromptValue,
    threshold: float = 0.9,
    *,
    keep: Keep = "first",
    model: str = "gpt-4o",
    token_counter: TokenCounter | None = None,
    min_tokens: int = 8,
) -> list[BaseMessage]:
    """`messages` without near-duplicates (see `MessageDeduplicator` for the rules).

    Example:
        >>> from langchain_core.messages import HumanMessage
        >>> q = "What is the refund policy for orders shipped to Canada?"
        >>> len(deduplicate_messages([HumanMessage(q), HumanMessage(q), HumanMessage("?")]))
        2
    """
    deduplicator = MessageDeduplicator(
        threshold, keep=keep, model=model, token_counter=token_counter, min_tokens=min_tokens
    )
    return deduplicator.deduplicate(messages).messages
