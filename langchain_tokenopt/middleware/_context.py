"""The context an agent's model call is sent, planned from agent state: what
`SummaryRecallMiddleware` and `TokenBudgetMiddleware` share.

The summary state lives in agent state, under a key each middleware declares in its
`state_schema`, so the graph's checkpointer saves it with the messages. This module
reads it, runs a fold when the planner asks for one, and returns the view and the new
state for the hook to write back. The per-conversation `Ledger` (token counts, recall
index) is derived data kept for speed only: it is checked against the call's messages
every time and rebuilt from them when it does not match, so a second worker, a restart
or a concurrent thread can cost a rebuild but never sees another conversation's state.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cachetools import LRUCache
from langchain_core.language_models import BaseLanguageModel
from langchain_core.messages import BaseMessage
from langchain_core.runnables import Runnable

from langchain_tokenopt.chat_history.folding import as_summarizer, asummarize_fold, summarize_fold
from langchain_tokenopt.chat_history.planner import (
    ContextPlanner,
    ContextView,
    FoldRange,
    Ledger,
    SummaryRole,
    SummaryState,
    folded_state,
    state_matches,
)
from langchain_tokenopt.core.tokens import TokenCounter

__all__ = ["ContextWindow", "PlannedContext"]

logger = logging.getLogger(__name__)

#: Conversations whose ledgers one middleware keeps between calls (derived data only).
_CACHED_LEDGERS = 64


@dataclass(frozen=True)
class PlannedContext:
    """What one model call sends (`view`), the summary state to save, and the tokens
    of the whole conversation (messages only) for the middleware's stats."""

    view: ContextView
    state: SummaryState
    full_tokens: int

    def state_update(self, summary_key: str) -> dict[str, Any]:
        """The agent state keys to write: the summary state as JSON."""
        return {summary_key: self.state.to_json()}


class ContextWindow:
    """Plans the context of one model call from the agent's messages and saved state.

    `plan(messages, saved, budget)` returns the view (pinned system messages, the
    summary, recalled messages, the newest turns, within `budget` tokens) and the
    summary state after any fold it made; `aplan` awaits an LLM summarizer natively.
    A fold sees only the previous summary and the newly folded turns. A summarizer
    failure is logged and the call goes on with the previous state (trimmed to the
    budget); the fold is tried again at the next call.
    """

    def __init__(
        self,
        *,
        token_counter: TokenCounter,
        summarizer: Runnable[Any, Any] | BaseLanguageModel[Any] | None,
        target_ratio: float,
        max_summary_tokens: int | None,
        summary_role: SummaryRole,
        recall: bool,
        recall_share: float,
    ) -> None:
        self.token_counter = token_counter
        self.planner = ContextPlanner(
            token_counter,
            target_ratio=target_ratio,
            max_summary_tokens=max_summary_tokens,
            summary_role=summary_role,
            recall=recall,
            recall_share=recall_share,
        )
        self.summarizer = as_summarizer(summarizer, token_counter)
        self._ledgers: LRUCache[str, Ledger] = LRUCache(_CACHED_LEDGERS)
        self._lock = threading.Lock()

    # -- the ledger of a call's messages (derived, checked, rebuilt on a miss) -----------

    def _checkout(self, messages: list[BaseMessage]) -> Ledger:
        """A ledger of exactly `messages`, for this call alone."""
        key = messages[0].id if messages else None
        with self._lock:
            ledger = self._ledgers.pop(key, None) if key else None
        if ledger is None or not _is_prefix(ledger.messages, messages):
            ledger = Ledger(pin_system=True)
        ledger.extend(messages[len(ledger) :], self.token_counter)
        return ledger

    def _checkin(self, ledger: Ledger) -> None:
        key = ledger.messages[0].id if ledger.messages else None
        if key:
            with self._lock:
                self._ledgers[key] = ledger

    def _saved_state(self, ledger: Ledger, saved: Any) -> SummaryState:
        if saved is None:
            return SummaryState()
        state = SummaryState.from_json(saved)
        if state is None or not state_matches(state, ledger.messages):
            logger.warning(
                "The summary state in agent state does not match the conversation's "
                "messages (rewritten history?); starting a new summary."
            )
            return SummaryState()
        return state

    def _planned(self, ledger: Ledger, state: SummaryState, budget: int) -> PlannedContext:
        view = self.planner.view(ledger, state, budget)
        full = self.planner.overhead_tokens + ledger.total_tokens()
        return PlannedContext(view, state, full)

    @staticmethod
    def _after_fold(
        ledger: Ledger, state: SummaryState, fold: FoldRange, summary: str | None
    ) -> SummaryState:
        if summary is None:
            return state
        return folded_state(state, summary, ledger, fold.end)

    # -- the recipe: ledger, saved state, fold if due, view ---------------------------

    def plan(self, messages: Sequence[BaseMessage], saved: Any, budget: int) -> PlannedContext:
        """The context of a call sending `messages` within `budget` tokens."""
        ledger = self._checkout(list(messages))
        try:
            state = self._saved_state(ledger, saved)
            fold = self.planner.fold(ledger, state, budget)
            if fold is not None:
                summary: str | None = state.summary
                if fold.chunks:
                    try:
                        summary = summarize_fold(self.summarizer, self.planner, fold, state.summary)
                    except Exception as exc:  # any summarizer failure degrades to trimming
                        summary = _failed(exc)
                state = self._after_fold(ledger, state, fold, summary)
            return self._planned(ledger, state, budget)
        finally:
            self._checkin(ledger)

    async def aplan(
        self, messages: Sequence[BaseMessage], saved: Any, budget: int
    ) -> PlannedContext:
        """Async `plan` (an LLM summarizer is awaited natively)."""
        ledger = self._checkout(list(messages))
        try:
            state = self._saved_state(ledger, saved)
            fold = self.planner.fold(ledger, state, budget)
            if fold is not None:
                summary: str | None = state.summary
                if fold.chunks:
                    try:
                        summary = await asummarize_fold(
                            self.summarizer, self.planner, fold, state.summary
                        )
                    except Exception as exc:  # any summarizer failure degrades to trimming
                        summary = _failed(exc)
                state = self._after_fold(ledger, state, fold, summary)
            return self._planned(ledger, state, budget)
        finally:
            self._checkin(ledger)


def _failed(error: Exception) -> str | None:
    """Log a summarizer failure; no new summary."""
    logger.warning(
        "Summarizer failed (%s: %s); trimming to the budget this call and retrying at "
        "the next one. Agent state keeps every message.",
        type(error).__name__,
        error,
    )
    return None


def _is_prefix(known: list[BaseMessage], messages: list[BaseMessage]) -> bool:
    """Whether `known` is the start of `messages`: same ids and contents, position by
    position (a message edited in place under the same id does not match)."""
    if len(known) > len(messages):
        return False
    return all(
        a is b or (a.id == b.id and a.type == b.type and a.content == b.content)
        for a, b in zip(known, messages, strict=False)
    )
