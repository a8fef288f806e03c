"""A chat history that stays inside a token budget and never loses a turn.

Long conversations outgrow any context window. `SummarizingChatMessageHistory` wraps
any LangChain chat history (in memory, SQL, Redis, ...) that keeps every message, and
shows the model only pinned system messages, a running summary of the old turns, older
messages relevant to the user's pending turn and the most recent turns, whose exact
token count never exceeds `max_tokens`.

What to fold, recall and show is decided by the pure `ContextPlanner`
(`chat_history.planner`), the same planner `SummaryRecallMiddleware` uses for agents;
this module is the `BaseChatMessageHistory` adapter around it: it reads and writes the
wrapped history and the summary state store, calls the summarizer, and keeps
concurrent readers and writers consistent.

Which to choose: for an agent built with `create_agent`, `SummaryRecallMiddleware`
(summary state in agent state, saved by the graph's checkpointer). This history is for
LCEL chains that already keep a `BaseChatMessageHistory`, e.g. with
`RunnableWithMessageHistory`; langchain-core deprecates both (removal in 2.0) and this
package does not hide their warnings.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.chat_history import BaseChatMessageHistory, InMemoryChatMessageHistory
from langchain_core.language_models import BaseLanguageModel
from langchain_core.messages import BaseMessage
from langchain_core.runnables import Runnable
from langchain_core.runnables.config import run_in_executor

from langchain_tokenopt.chat_history.folding import as_summarizer, asummarize_fold, summarize_fold
from langchain_tokenopt.chat_history.planner import (
    MIN_BUDGET_TOKENS,
    ContextPlanner,
    ContextView,
    FoldRange,
    Ledger,
    SummaryRole,
    SummaryState,
    fingerprint,
    folded_state,
    same_message,
)
from langchain_tokenopt.chat_history.summarizers import ExtractiveSummarizer
from langchain_tokenopt.core.logs import OutageLog, log_once
from langchain_tokenopt.core.tokens import TokenCounter
from langchain_tokenopt.core.validation import (
    check_depth,
    finite_number,
    instance_of,
    int_in_range,
    optional,
    shown,
)
from langchain_tokenopt.errors import (
    ArgumentTypeError,
    CorruptStateError,
    InvalidArgumentError,
    TokenOptError,
)
from langchain_tokenopt.stores import Store

__all__ = ["SummarizingChatMessageHistory", "SummaryRole"]

logger = logging.getLogger(__name__)

# While the state store is unavailable, at most one warning per history this often.
_OUTAGE_WARNING_INTERVAL_SECONDS = 30.0


@dataclass(frozen=True)
class _FoldPlan:
    """A fold in progress: made under the lock, summarized outside it, then committed."""

    fold: FoldRange
    previous: SummaryState
    ledger_size: int
    ledger: Ledger  # the index the plan was made on (replaced if the store is rewritten)


class SummarizingChatMessageHistory(BaseChatMessageHistory):
    """A token-budgeted `BaseChatMessageHistory` over any other chat history.

    Guarantees:

    - `messages` is pinned system messages + one summary message + (recall) one
      message quoting older messages relevant to the newest user turn + the most
      recent turns, and `TokenCounter(model).count_messages(messages) <= max_tokens`
      always (for budgets of at least 16 tokens; below that it returns `[]` and logs).
    - Recall (`recall=True`, the default): when the newest message is a user turn
      (or an agent's tool loop answering one), up to `recall_share` of the room left
      by pinned messages and the summary goes to older messages (folded or out of the
      window) that a TF-IDF index of the transcript finds like it, quoted oldest first
      in one message, after the summary and before the recent turns. `view()` says
      which (`ContextView.recalled_ids`, positions in `recalled`). With
      `RunnableWithMessageHistory` the history is read before the new question is
      added, so nothing is recalled there; add the question, then read.
    - Every original message stays in the wrapped history (`full_messages`); nothing
      is ever deleted or rewritten there.
    - When the unfolded turns no longer fit, the oldest ones are folded into the
      summary, down to `target_tokens` (hysteresis, so most turns do not fold). The
      summarizer gets only the previous summary and the newly folded messages; the
      summary text is capped at `max_summary_tokens`. Between folds the summary
      message is byte-identical, so provider prompt caches keep hitting.
    - An `AIMessage` with tool calls and its `ToolMessage`s are folded or shown
      together; the recent window never starts with a `ToolMessage`; system messages
      (every `SystemMessage` in the history, when `pin_system_messages`) are never
      folded and always come first.
    - If the newest turn alone does not fit, the view shows it truncated in the middle
      (the wrapped history keeps it whole) and logs a warning; oversized tool-call
      turns that cannot be truncated are left out of the view.
    - If the summarizer fails, a warning is logged, the view falls back to plain
      trimming for that read (within the budget), the store is untouched and the fold
      is retried after the next added message.
    - If the `state_store` is unavailable (`StoreUnavailableError`, e.g. Redis down),
      reads and adds keep working: `messages` shows the last known summary (none if
      it was never read) and the recent turns trimmed to the budget, no fold runs (its
      result could not be saved), `add_messages` still appends to the wrapped
      history, and a summary state that could not be saved stays in memory and is
      written on a later read or add (last writer wins, as with concurrent folds).
      Each later read or add tries the state store once, so a stalled store costs
      up to its own timeout per call. A WARNING is logged at most once per 30 s,
      with the number of failures left unlogged, and an INFO when it is back.
      Errors of the wrapped history itself (the transcript) are not hidden: they
      propagate from `messages` and `add_messages` unchanged.
    - A saved summary state the store cannot read (not JSON, nested too deep, too
      large: written by something else) raises `CorruptStateError` naming the key,
      logged once, from the read that meets it (`messages`; `add_messages` before
      appending anything). Deleting the key is the fix: the summary is rebuilt from
      the wrapped history.
    - Cost per added message is flat: token counts are kept per message with running
      sums, only new messages are counted, and each message goes to the recall index
      once, queried with the question's rarest words. Reading re-reads the wrapped
      history (its own cost: O(1) in memory, a query for SQL or Redis) to pick up messages
      other processes appended.

    The summary state (text, how many messages it covers and a fingerprint of the last
    one) lives in `state_store` under `"{namespace}:{session_id}"`, not in the wrapped
    history, which stays a plain transcript other readers understand. The default is a
    private `MemoryStore`; to resume after a restart pass a persistent store
    (`SQLiteStore`, `RedisStore`) and the session id. Without saved state, a wrapped
    history that is already long is folded in chunks of at most `max_tokens`.
    Thread-safe: concurrent `add_messages` from several threads store each message
    exactly once. For agents prefer `SummaryRecallMiddleware` (same planner, state in
    the checkpoint); `BaseChatMessageHistory` is deprecated by langchain-core. Use
    `RunnableWithMessageHistory(..., history_messages_key=...)`; without it,
    LangChain slices the input by the length of two reads, which only agree if the
    budget does not change between them.

    Example:
        >>> from langchain_core.messages import HumanMessage, AIMessage
        >>> history = SummarizingChatMessageHistory(max_tokens=200)
        >>> for i in range(30):
        ...     history.add_messages([HumanMessage(f"Note {i}: room {100 + i}."),
        ...                           AIMessage("Noted.")])
        >>> len(history.full_messages)
        60
        >>> history.token_counter.count_messages(history.messages) <= 200
        True
    """

    def __init__(
        self,
        store: BaseChatMessageHistory | None = None,
        *,
        max_tokens: int | Callable[[], int] = 4000,
        model: str = "gpt-4o",
        token_counter: TokenCounter | None = None,
        summarizer: Runnable[Any, Any] | BaseLanguageModel[Any] | None = None,
        target_ratio: float | None = None,
        target_tokens: int | None = None,
        max_summary_tokens: int | None = None,
        summary_role: SummaryRole = "system",
        summary_prefix: str = "Summary of the earlier conversation:\n",
        pin_system_messages: bool = True,
        state_store: Store | None = None,
        session_id: str | None = None,
        namespace: str = "tokenopt:history",
        recall: bool = True,
        recall_share: float = 0.25,
    ) -> None:
        """Wrap `store` (a new in-memory history by default).

        Args:
            store: the history that keeps every message.
            max_tokens: budget of `messages`, or a callable returning it at read time.
            model: model whose tokenizer and chat framing count tokens.
            token_counter: a counter to share; wins over `model`.
            summarizer: a `BaseSummarizer`/Runnable taking a `SummaryRequest` and
                returning text, or a chat model (wrapped in `LLMSummarizer`). Default:
                `ExtractiveSummarizer` (offline).
            target_ratio: after a fold, summary + recent turns take at most this share
                of what pinned messages leave of `max_tokens` (default 0.75 with the
                extractive summarizer, 0.6 with a model, whose folds are paid calls).
            target_tokens: absolute fold target; wins over `target_ratio`.
            max_summary_tokens: cap on the summary text (default and upper bound:
                half of what pinned messages leave of the budget).
            summary_role: message type of the summary ("system", "human" or "ai").
            summary_prefix: text before the summary in its message.
            pin_system_messages: keep every `SystemMessage` of the history in view.
            state_store: where the summary state lives (default: a private MemoryStore).
            session_id: key of the state; default the wrapped history's `session_id`.
            namespace: key prefix of the state.
            recall: when the newest message is a user turn, also show older messages
                relevant to it (see `view`).
            recall_share: most of the room left after pinned messages and the summary
                that recalled messages may take.
        """
        super().__init__()
        if store is None:
            store = InMemoryChatMessageHistory()
        if not isinstance(store, BaseChatMessageHistory):
            raise ArgumentTypeError(
                f"store must be a BaseChatMessageHistory, not {shown(type(store))}."
            )
        if not callable(max_tokens):
            _check_budget(max_tokens, "max_tokens")
        optional(finite_number, target_ratio, "target_ratio", above=0, maximum=1)
        finite_number(recall_share, "recall_share", above=0, maximum=1, hint="e.g. 0.25")
        instance_of(recall, "recall", bool, "True or False")
        optional(instance_of, token_counter, "token_counter", TokenCounter, "a TokenCounter")
        optional(instance_of, state_store, "state_store", Store, "a Store")
        instance_of(model, "model", str, "a model name such as 'gpt-4o'")
        instance_of(summary_prefix, "summary_prefix", str, "a str")
        instance_of(namespace, "namespace", str, "a str")
        optional(instance_of, session_id, "session_id", str, "a str")
        if target_tokens is not None:
            _check_budget(target_tokens, "target_tokens")
        optional(int_in_range, max_summary_tokens, "max_summary_tokens", minimum=1)
        if summary_role not in ("system", "human", "ai"):
            raise InvalidArgumentError(
                f"summary_role must be system, human or ai, not {shown(summary_role)}."
            )
        self._store = store
        self._max_tokens = max_tokens
        self.token_counter = token_counter or TokenCounter(model)
        self._summarizer = as_summarizer(summarizer, self.token_counter)
        # Extractive folds are cheap: fold a quarter of the budget at a time. A model
        # summarizer is a paid call per fold: fold 40% at a time.
        if target_ratio is None:
            target_ratio = 0.75 if isinstance(self._summarizer, ExtractiveSummarizer) else 0.6
        self._owns_state_store = state_store is None
        if state_store is None:
            from langchain_tokenopt.stores import MemoryStore

            state_store = MemoryStore()
        self._state_store: Store = state_store
        sid = session_id if session_id is not None else getattr(store, "session_id", None)
        self._state_key = f"{namespace}:{sid if sid is not None else 'default'}"
        # IO-free stores let the async methods skip the executor hop.
        self._inline_io = type(store) is InMemoryChatMessageHistory and self._owns_state_store

        self._lock = threading.RLock()
        self._ledger = Ledger(pin_system_messages)
        self._state = SummaryState()
        self._planner = ContextPlanner(
            self.token_counter,
            target_ratio=target_ratio,
            target_tokens=target_tokens,
            max_summary_tokens=max_summary_tokens,
            summary_role=summary_role,
            summary_prefix=summary_prefix,
            recall=recall,
            recall_share=recall_share,
        )
        self._folding = False
        self._failed_at_size: int | None = None
        # State store outage: the last state read or write failed; self._state is not
        # in the store yet; the rate-limited warnings about it.
        self._state_store_down = False
        self._state_unsaved = False
        self._state_outage = OutageLog(
            logger,
            f"The state store of {self._state_key}",
            interval_seconds=_OUTAGE_WARNING_INTERVAL_SECONDS,
        )
        self._view_cache: tuple[tuple[int, int, int], ContextView] | None = None
        self._loaded = False

    # ------------------------------------------------------------------ config

    def _budget(self) -> int:
        value = self._max_tokens() if callable(self._max_tokens) else self._max_tokens
        if not isinstance(value, int) or isinstance(value, bool):
            raise ArgumentTypeError(f"max_tokens() must return an int, not {type(value).__name__}.")
        return value

    # ------------------------------------------------------------ public API

    @property
    def messages(self) -> list[BaseMessage]:
        """Pinned system messages + summary + recalled + recent turns, within `max_tokens`."""
        return self.view().messages

    @messages.setter
    def messages(self, value: Sequence[BaseMessage]) -> None:
        self.clear()
        self.add_messages(value)

    def view(self) -> ContextView:
        """What `messages` shows, with what went into it.

        `ContextView.recalled_ids` (and `recalled`, positions in `full_messages`) name
        the older messages quoted because they look relevant to the newest message, a
        user turn: add the user's question first, then read, to get them.
        """
        budget = self._budget()
        with self._lock:
            self._refresh_locked()
        self._ensure_within_budget(budget)
        with self._lock:
            return self._view_locked(budget)

    async def aget_messages(self) -> list[BaseMessage]:
        """Async `messages`: the summarizer is awaited natively."""
        return (await self.aview()).messages

    async def aview(self) -> ContextView:
        """Async `view`: the summarizer is awaited natively."""
        budget = self._budget()
        if self._inline_io:
            with self._lock:
                self._refresh_locked()
        else:
            await run_in_executor(None, self._refresh)
        await self._aensure_within_budget(budget)
        with self._lock:
            return self._view_locked(budget)

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Append to the wrapped history, then fold old turns if over budget."""
        messages = _checked_messages(messages)
        self._append(messages)
        self._ensure_within_budget(self._budget())

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Async `add_messages`: the summarizer is awaited natively."""
        messages = _checked_messages(messages)
        if self._inline_io:
            self._append(messages)
        else:
            await run_in_executor(None, self._append, messages)
        await self._aensure_within_budget(self._budget())

    def clear(self) -> None:
        """Remove every message from the wrapped history and forget the summary."""
        with self._lock:
            self._store.clear()
            self._reset_locked()
            self._loaded = True
            try:
                self._state_store.delete(self._state_key)
            except TokenOptError as exc:
                # The empty state is written when the store is back: until then a
                # stale saved summary could be read by another process.
                self._state_unsaved = True
                self._state_failed_locked("delete", exc)
                return
            self._state_answered_locked()

    async def aclear(self) -> None:
        """Async `clear`."""
        if self._inline_io:
            self.clear()
        else:
            await run_in_executor(None, self.clear)

    @property
    def full_messages(self) -> list[BaseMessage]:
        """Every message ever added, as the wrapped history keeps it."""
        return list(self._store.messages)

    @property
    def summary(self) -> str:
        """The running summary text ("" before the first fold)."""
        with self._lock:
            self._refresh_locked()
            return self._state.summary

    @property
    def folded_message_count(self) -> int:
        """How many of `full_messages` (from the start) the summary covers."""
        with self._lock:
            self._refresh_locked()
            return self._state.covered

    # ------------------------------------------------------- store syncing

    def _append(self, messages: Sequence[BaseMessage]) -> None:
        batch = list(messages)
        for message in batch:
            if not isinstance(message, BaseMessage):
                raise ArgumentTypeError(f"Expected BaseMessage, got {type(message).__name__}.")
        if not batch:
            return
        with self._lock:
            synced = not self._loaded
            if synced:
                self._refresh_locked()
            self._store.add_messages(batch)
            for message in batch:
                self._ledger.append(message, int(self.token_counter.count_message(message)))
            if self._state_store_down and not synced:
                self._sync_state_locked()  # once per add while the state store is down

    def _refresh(self) -> None:
        with self._lock:
            self._refresh_locked()

    def _refresh_locked(self) -> None:
        """Pick up messages appended by others and the latest saved summary state."""
        stored = self._store.messages
        ledger = self._ledger
        mine = len(ledger)
        if len(stored) == mine and (mine == 0 or same_message(stored[-1], ledger.messages[-1])):
            pass
        elif len(stored) > mine and (
            mine == 0 or same_message(stored[mine - 1], ledger.messages[-1])
        ):
            for message in stored[mine:]:
                ledger.append(message, int(self.token_counter.count_message(message)))
        else:
            logger.info(
                "The wrapped history changed under %s (%d stored vs %d known messages); "
                "re-indexing it.",
                self._state_key,
                len(stored),
                mine,
            )
            self._reset_locked()
            for message in stored:
                self._ledger.append(message, int(self.token_counter.count_message(message)))
        if self._state_unsaved or not self._loaded or not self._owns_state_store:
            self._sync_state_locked()
        self._loaded = True

    def _sync_state_locked(self) -> None:
        """Write the state if the store lacks it, else read the saved one."""
        if self._state_unsaved:
            self._save_state_locked()
        else:
            self._load_state_locked()

    def _save_state_locked(self) -> None:
        try:
            self._state_store.set(self._state_key, self._state.to_json())
        except TokenOptError as exc:
            self._state_unsaved = True
            self._state_failed_locked("save", exc)
            return
        self._state_unsaved = False
        self._state_answered_locked()

    def _state_failed_locked(self, action: str, error: Exception) -> None:
        """Note a state store failure; warn unless this history warned less than 30 s ago."""
        self._state_store_down = True
        self._state_outage.failed(
            f"Could not {action} summary state {self._state_key} ({error}); messages are the "
            "recent turns trimmed to the budget, without new folds, until the state store "
            "is back."
        )

    def _state_answered_locked(self) -> None:
        if not self._state_store_down:
            return
        self._state_store_down = False
        self._state_outage.answered()

    def _load_state_locked(self) -> None:
        try:
            raw = self._state_store.get(self._state_key)
        except CorruptStateError as exc:
            raise self._corrupt_state(exc) from None
        except TokenOptError as exc:
            self._state_failed_locked("read", exc)
            return
        self._state_answered_locked()
        if raw is None:
            if self._state.covered and self._loaded and not self._owns_state_store:
                self._set_state_locked(SummaryState())
            return
        state = SummaryState.from_json(raw)
        if state is None:
            logger.warning("Ignoring unreadable summary state at %s.", self._state_key)
            return
        if state == self._state:
            return
        ledger = self._ledger
        if state.covered > len(ledger) or (
            state.covered and fingerprint(ledger.messages[state.covered - 1]) != state.fingerprint
        ):
            logger.warning(
                "Saved summary state %s does not match the wrapped history (covers %d of "
                "%d messages); starting a new summary.",
                self._state_key,
                state.covered,
                len(ledger),
            )
            self._set_state_locked(SummaryState())
            return
        self._set_state_locked(state)

    def _corrupt_state(self, error: CorruptStateError) -> CorruptStateError:
        """The error for a saved summary state the store cannot read (logged once per key)."""
        corrupt = CorruptStateError(
            self._state_key,
            error.detail,
            store=error.store,
            remedy=(
                "Delete this key from the state store: the wrapped history keeps every "
                "message, so the summary is rebuilt from it. Until then this history "
                "refuses reads and adds (no message is appended)."
            ),
        )
        log_once(logger, f"corrupt-history-state:{self._state_key}", logging.ERROR, "%s", corrupt)
        return corrupt

    def _reset_locked(self) -> None:
        self._ledger = Ledger(self._ledger.pin_system)
        self._set_state_locked(SummaryState())
        self._failed_at_size = None
        self._state_unsaved = False  # the saved state is checked against the new ledger

    def _set_state_locked(self, state: SummaryState) -> None:
        self._state = state
        self._view_cache = None

    # ------------------------------------------------------------- folding

    def _plan_fold_locked(self, budget: int) -> _FoldPlan | None:
        ledger = self._ledger
        state = self._state
        if self._folding or self._failed_at_size == len(ledger) or self._state_store_down:
            return None  # a fold whose result cannot be saved waits for the store
        fold = self._planner.fold(ledger, state, budget)
        if fold is None:
            return None
        if not fold.chunks:
            # Only pinned messages in the range: move the boundary, keep the summary.
            self._commit_locked(state, fold.end, state.summary)
            return None
        self._folding = True
        return _FoldPlan(fold, state, len(ledger), ledger)

    def _commit_locked(self, previous: SummaryState, end: int, summary: str) -> bool:
        if self._state != previous:
            return False  # someone else folded meanwhile; their result stands
        self._set_state_locked(folded_state(previous, summary, self._ledger, end))
        self._save_state_locked()
        return True

    def _finish_fold(self, plan: _FoldPlan, summary: str | None, error: Exception | None) -> None:
        with self._lock:
            self._folding = False
            if error is not None or summary is None:
                self._failed_at_size = plan.ledger_size
                logger.warning(
                    "Summarizer failed (%s: %s); trimming to the budget this turn and "
                    "retrying after the next message. Nothing was removed from the store.",
                    type(error).__name__,
                    error,
                )
                self._view_cache = None
                return
            self._failed_at_size = None
            if plan.ledger is self._ledger:
                self._commit_locked(
                    plan.previous,
                    plan.fold.end,
                    self._planner.cap_summary(summary, plan.fold.cap_tokens),
                )

    def _ensure_within_budget(self, budget: int) -> None:
        with self._lock:
            plan = self._plan_fold_locked(budget)
        if plan is None:
            return
        summary: str | None = None
        error: Exception | None = None
        try:
            summary = summarize_fold(
                self._summarizer, self._planner, plan.fold, plan.previous.summary
            )
        except Exception as exc:  # any summarizer failure degrades to trimming
            summary, error = None, exc
        self._finish_fold(plan, summary, error)

    async def _aensure_within_budget(self, budget: int) -> None:
        with self._lock:
            plan = self._plan_fold_locked(budget)
        if plan is None:
            return
        summary: str | None = None
        error: Exception | None = None
        try:
            summary = await asummarize_fold(
                self._summarizer, self._planner, plan.fold, plan.previous.summary
            )
        except Exception as exc:  # any summarizer failure degrades to trimming
            summary, error = None, exc
        if self._inline_io:
            self._finish_fold(plan, summary, error)
        else:
            await run_in_executor(None, self._finish_fold, plan, summary, error)

    # ---------------------------------------------------------------- view

    def _view_locked(self, budget: int) -> ContextView:
        key = (len(self._ledger), self._state.folds, budget)
        if self._view_cache is None or self._view_cache[0] != key:
            self._view_cache = (key, self._planner.view(self._ledger, self._state, budget))
        view = self._view_cache[1]
        return ContextView(list(view.messages), view.tokens, view.recalled, view.recalled_ids)


def _check_budget(value: Any, name: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ArgumentTypeError(f"{name} must be an int (or a callable returning one).")
    if value < MIN_BUDGET_TOKENS:
        raise InvalidArgumentError(
            f"{name} must be at least {MIN_BUDGET_TOKENS} tokens, not {value}."
        )


def _checked_messages(messages: Any) -> list[BaseMessage]:
    """What `add_messages` appends: a list of `BaseMessage`, no deeper than MAX_DEPTH."""
    if isinstance(messages, (str, bytes, BaseMessage)) or not isinstance(messages, Sequence):
        raise ArgumentTypeError(
            f"messages must be a list of BaseMessage, got {type(messages).__name__}."
        )
    for position, message in enumerate(messages):
        if not isinstance(message, BaseMessage):
            raise ArgumentTypeError(
                f"messages[{position}] must be a BaseMessage, got {type(message).__name__}."
            )
    check_depth(messages, "messages")
    return list(messages)
