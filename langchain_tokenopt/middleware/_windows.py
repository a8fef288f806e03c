"""The conversation window that `SummaryRecallMiddleware` and `TokenBudgetMiddleware`
send: a `SummarizingChatMessageHistory` per conversation, fed the agent state."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.language_models import BaseLanguageModel
from langchain_core.messages import BaseMessage
from langchain_core.runnables import Runnable
from langchain_core.runnables.config import ensure_config

from langchain_tokenopt.chat_history.history import SummarizingChatMessageHistory, SummaryRole
from langchain_tokenopt.chat_history.planner import MIN_BUDGET_TOKENS
from langchain_tokenopt.core.tokens import TokenCounter
from langchain_tokenopt.core.validation import int_in_range
from langchain_tokenopt.stores import Store

__all__ = ["ConversationWindows"]


def _session_key(messages: Sequence[BaseMessage]) -> str:
    """The conversation a model call belongs to: the LangGraph thread, else the id of
    its first message (the agent's message reducer gives every message an id)."""
    configurable = ensure_config().get("configurable") or {}
    thread = configurable.get("thread_id")
    if thread is not None:
        return f"thread:{thread}"
    first = messages[0].id if messages else None
    return f"first:{first}" if first else "default"


class _StateMessages(BaseChatMessageHistory):
    """The agent state's messages seen as a chat history (read-only, swapped per call).

    `SummarizingChatMessageHistory` wraps it: on each read it notices the messages
    appended since the last call and counts only those.
    """

    def __init__(self) -> None:
        self.messages: list[BaseMessage] = []
        self.budget_tokens = 4000

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        # The history appends only when asked to, which the middleware never does.
        self.messages.extend(messages)

    def clear(self) -> None:
        self.messages = []


class ConversationWindows:
    """One `SummarizingChatMessageHistory` per conversation (LRU-bounded).

    `view(messages, budget)` returns what a model call should be sent: pinned system
    messages, the running summary and the newest turns within `budget` tokens.
    Summaries are folded incrementally: a call folds only the turns that left the
    window since the previous call of the same conversation.
    """

    def __init__(
        self,
        *,
        token_counter: TokenCounter,
        summarizer: Runnable[Any, Any] | BaseLanguageModel[Any] | None,
        target_ratio: float,
        max_summary_tokens: int | None,
        summary_role: SummaryRole,
        state_store: Store | None,
        namespace: str,
        max_sessions: int,
    ) -> None:
        int_in_range(max_sessions, "max_sessions", minimum=1)
        self.token_counter = token_counter
        self._summarizer = summarizer
        self._target_ratio = target_ratio
        self._max_summary_tokens = max_summary_tokens
        self._summary_role: SummaryRole = summary_role
        self._state_store = state_store
        self._namespace = namespace
        self._max_sessions = max_sessions
        self._sessions: OrderedDict[str, tuple[_StateMessages, SummarizingChatMessageHistory]]
        self._sessions = OrderedDict()
        self._lock = threading.Lock()
        # Fail on bad settings now, not at the first model call.
        self._new_history("check", _StateMessages())

    def _new_history(self, session: str, source: _StateMessages) -> SummarizingChatMessageHistory:
        return SummarizingChatMessageHistory(
            source,
            max_tokens=lambda: source.budget_tokens,
            token_counter=self.token_counter,
            summarizer=self._summarizer,
            target_ratio=self._target_ratio,
            max_summary_tokens=self._max_summary_tokens,
            summary_role=self._summary_role,
            state_store=self._state_store,
            session_id=session,
            namespace=self._namespace,
        )

    def _history(
        self, messages: Sequence[BaseMessage], budget_tokens: int
    ) -> SummarizingChatMessageHistory:
        session = _session_key(messages)
        with self._lock:
            entry = self._sessions.get(session)
            if entry is None:
                source = _StateMessages()
                entry = (source, self._new_history(session, source))
                self._sessions[session] = entry
                while len(self._sessions) > self._max_sessions:
                    self._sessions.popitem(last=False)
            else:
                self._sessions.move_to_end(session)
        source, history = entry
        source.messages = list(messages)
        source.budget_tokens = max(budget_tokens, MIN_BUDGET_TOKENS)
        return history

    def view(self, messages: Sequence[BaseMessage], budget_tokens: int) -> list[BaseMessage]:
        """What a call of this conversation sends within `budget_tokens`."""
        return self._history(messages, budget_tokens).messages

    async def aview(self, messages: Sequence[BaseMessage], budget_tokens: int) -> list[BaseMessage]:
        """Async `view` (an LLM summarizer is awaited natively)."""
        return await self._history(messages, budget_tokens).aget_messages()
