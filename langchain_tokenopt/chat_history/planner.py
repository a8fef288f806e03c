"""What a token-budgeted conversation folds, recalls and shows: pure planning, no I/O.

Both front doors, `SummarizingChatMessageHistory` (LCEL chains) and
`SummaryRecallMiddleware` (agents built with `create_agent`), keep every message and show
the model pinned system messages, a running summary, older messages recalled for the
question being asked, and the recent turns, within a budget. This module decides it,
from the messages with their token counts (a `Ledger`), the summary state and the
budget: which messages to fold into the summary next (in which chunks), and what the
view shows (`ContextView`). It never reads a store or calls a summarizer: the front
doors do that, and this logic is tested without either.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import re
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeGuard

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from langchain_tokenopt.core.messages import content_to_text, message_to_text, role_label
from langchain_tokenopt.core.tokens import SEAM_ADDITIVE_ENCODINGS, TokenCounter

if TYPE_CHECKING:
    from collections.abc import Collection, Hashable

    from langchain_tokenopt.core.textindex import TextIndex

__all__ = [
    "MIN_BUDGET_TOKENS",
    "ContextPlan",
    "ContextPlanner",
    "ContextView",
    "FoldRange",
    "Ledger",
    "SummaryRole",
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
# the mark but its last space, which a partial recalled line counts with the sentence after
# it (see `ContextPlanner._part_tokens`)
_MARK_PIECE = _TRUNCATION_MARK.removesuffix(" ")
#: The first line of the message that carries recalled text.
_LINE_MEMO_SIZE = 4096
_SENTENCE_MEMO_SIZE = 256
RECALL_HEADER = "Earlier messages recalled as relevant to the latest user message ([n]: position):"
#: Room a recalled line needs besides the header, at least, when the share is smaller.
_RECALL_MIN_LINE_TOKENS = 40
#: A recalled message longer than this share of the recall room is shown in part.
_RECALL_PART_SHARE = 0.5
#: Characters of the question used as the recall query.
_QUERY_CHARS = 2000
#: Messages go to the recall index in batches of this many (fewer numpy calls per
#: message), or sooner when recall needs one that is not in yet.
_INDEX_BATCH = 16
#: The recall query is the question's rarest words in the conversation, at most this
#: many, ...
_QUERY_WORDS = 8
#: ... each held by at most this many indexed messages (a word more common than that
#: cannot pick out the few messages recall shows), ...
_QUERY_MAX_MESSAGES = 256
#: ... and, after the rarest, only while the words' messages number at most this many
#: together: the query's posting lists stay short, so it costs about the same at turn
#: 100 and 10,000, and common words do not drown the rare ones' matches
#: (docs/benchmarks.md, "Chat history", stop 26: chosen on the DEV split).
_QUERY_MAX_POSTINGS = 32
#: Tokens of a recalled line's head ("[1234] Assistant:\n") and end, at most.
_LINE_HEAD_TOKENS = 8
#: What ends each recalled line. The space keeps the newline from joining the text's
#: last piece (see `ContextPlanner._recall_tokens`).
_LINE_END = " \n"
# the message types whose recalled line is counted from the ledger (see `_whole_line_tokens`)
_PLAIN_KINDS = frozenset({HumanMessage, AIMessage, SystemMessage})
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_SPACE_BEFORE_TEXT = re.compile(r" (?=\S)")
_WORD = re.compile(r"[a-z0-9]{3,}")

SummaryRole = Literal["system", "human", "ai"]


def _fewest_tokens(text: str) -> int:
    """A lower bound of the tokens of non-empty `text` in cl100k and o200k: one per space
    followed by a non-space, and one at least.

    A pre-tokenizer piece holds a space only as its first character or in a run of
    whitespace; such a run ends with a newline, or before more whitespace, or (the last
    alternative, `\\s+`) at that space. So at each space followed by a non-space a piece
    starts, at the space or at the non-space, a different piece each time, and each piece
    is a token at least. (Python's whitespace holds Unicode's, so what Python takes for a
    non-space is one to the pre-tokenizer.)
    """
    return max(1, len(_SPACE_BEFORE_TEXT.findall(text)))


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


def state_matches(state: SummaryState, messages: list[BaseMessage]) -> bool:
    """Whether `state` can describe `messages` (it covers a prefix they still hold)."""
    if state.covered == 0:
        return True
    return state.covered <= len(messages) and (
        fingerprint(messages[state.covered - 1]) == state.fingerprint
    )


def folded_state(previous: SummaryState, summary: str, ledger: Ledger, end: int) -> SummaryState:
    """The state after folding messages [previous.covered, end) into `summary`."""
    return SummaryState(
        summary=summary,
        covered=end,
        fingerprint=fingerprint(ledger.messages[end - 1]) if end else "",
        folds=previous.folds + 1,
    )


class Ledger:
    """Every stored message with its token count, grouped into units that move together.

    A unit is a message plus, for an `AIMessage` with tool calls, the `ToolMessage`s
    that follow it (an orphan `ToolMessage` joins the unit before it). Running sums
    make "tokens of the messages from i to the end" O(1), so a growing history is
    never recounted. For recall, messages are added to a TF-IDF `TextIndex` (made on
    first use, so a conversation that never needs recall never loads scikit-learn)
    in batches, and at the latest when they leave the recent window: each message is
    indexed once.

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
        self._index: TextIndex | None = None
        self._indexed = 0  # messages [0, _indexed) went to the index
        self._word_counts: Counter[str] = Counter()  # in how many indexed messages
        self._stop_words: frozenset[str] = frozenset()  # the index's, which it never holds
        # the last question read into words (a question is asked again through its tool
        # loop, and its view cuts several long messages for it)
        self._question_words: tuple[str, frozenset[str]] = ("", frozenset())
        # the last recall query: (question, messages indexed, its rarest words); the words'
        # counts change only when more messages are indexed
        self._query_memo: tuple[str, int, str] = ("", -1, "")

    def __len__(self) -> int:
        return len(self.messages)

    @classmethod
    def of(cls, messages: list[BaseMessage], counter: TokenCounter, pin_system: bool) -> Ledger:
        """A ledger of `messages`, each counted with `counter`."""
        ledger = cls(pin_system)
        ledger.extend(messages, counter)
        return ledger

    def extend(self, messages: list[BaseMessage], counter: TokenCounter) -> None:
        """Append `messages`, counting each once."""
        for message in messages:
            self.append(message, int(counter.count_message(message)))

    @property
    def indexed_count(self) -> int:
        """How many messages (from the start) have gone to the recall index."""
        return self._indexed

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

    def total_tokens(self) -> int:
        """Tokens of every message (pinned ones included)."""
        return self.cum[-1] + self.pinned_tokens

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
        if room_tokens <= 0:
            return None
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

    def unpinned_from(self, start: int) -> list[BaseMessage]:
        """Unpinned messages from `start` on, in order."""
        if not self.pinned or self.pinned[-1] < start:
            return self.messages[start:]
        return [m for m in self.messages[start:] if not self.is_pinned(m)]

    # ------------------------------------------------------------- recall

    def question(self) -> str | None:
        """The user turn the next answer is for, or None when no answer is pending.

        The newest message when it is a `HumanMessage`; while an agent is still
        working on a turn (the newest message is a tool call or a tool result), the
        user message that started it, so recall stays the same through a tool loop.
        """
        if not self.messages:
            return None
        last = self.messages[-1]
        if isinstance(last, HumanMessage):
            return content_to_text(last.content)[:_QUERY_CHARS]
        pending = isinstance(last, ToolMessage) or (isinstance(last, AIMessage) and last.tool_calls)
        if pending and self.human_starts:
            return content_to_text(self.messages[self.human_starts[-1]].content)[:_QUERY_CHARS]
        return None

    def question_words(self) -> frozenset[str]:
        """The words of `question()` (none when no answer is pending), as recall reads them."""
        return self.words_of(self.question() or "")

    def words_of(self, question: str) -> frozenset[str]:
        """The words of `question` (lowercase runs of three letters or digits at least)."""
        text, words = self._question_words
        if question != text:
            words = frozenset(_WORD.findall(question.lower()))
            self._question_words = (question, words)
        return words

    def recall(self, question: str, before: int, limit: int, min_score: float) -> list[int]:
        """Positions < `before` of the unpinned messages most like `question`, best first."""
        if before <= 0 or limit <= 0:
            return []
        batch_end = len(self.messages) - (len(self.messages) - self._indexed) % _INDEX_BATCH
        index = self._index_upto(max(before, batch_end))
        if index is None:
            return []
        hits = index.query(
            self._rare_words(question),
            k=limit,
            min_score=min_score,
            where=lambda key: isinstance(key, int) and key < before,
        )
        return [key for key, _ in hits if isinstance(key, int)]

    def _rare_words(self, question: str) -> str:
        """The question's words that the fewest indexed messages hold: the rarest, then
        the next rarest while the words' messages number at most `_QUERY_MAX_POSTINGS`
        together (at most `_QUERY_WORDS` words, each held by at most
        `_QUERY_MAX_MESSAGES` messages). Memoized until more messages are indexed (an
        agent's tool loop asks the same question again)."""
        asked, indexed, query = self._query_memo
        if asked != question or indexed != self._indexed:
            query = self._rarest_words(question)
            self._query_memo = (question, self._indexed, query)
        return query

    def _rarest_words(self, question: str) -> str:
        """`_rare_words`, worked out."""
        counts = self._word_counts
        words = sorted(
            {w for w in self.words_of(question) if 0 < counts.get(w, 0) <= _QUERY_MAX_MESSAGES},
            key=lambda w: (counts[w], w),
        )
        chosen: list[str] = []
        postings = 0
        for word in words[:_QUERY_WORDS]:
            postings += counts[word]
            if chosen and postings > _QUERY_MAX_POSTINGS:
                break
            chosen.append(word)
        return " ".join(chosen)

    def _index_upto(self, end: int) -> TextIndex | None:
        if self._index is None or self._indexed < end:
            if self._index is None:
                from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

                from langchain_tokenopt.core.textindex import TextIndex

                self._index = TextIndex(stop_words="english", word_ngram_range=(1, 1))
                self._stop_words = frozenset(ENGLISH_STOP_WORDS)
            items = [
                (i, text)
                for i in range(self._indexed, end)
                if not self.is_pinned(self.messages[i])
                and (text := message_to_text(self.messages[i]))
            ]
            self._index.add_many(items, seen_words=self._count_words)
            self._indexed = end
        return self._index

    def _count_words(self, position: Hashable, terms: Collection[str]) -> None:
        """Count the words of a message just indexed under the word `terms` (lowercase,
        no stop words) the index read it into: the words `_WORD` finds in its lowercased
        text, less stop words, without reading the text again.

        The index's terms are the text's maximal runs of two word characters at least
        (scikit-learn's default `token_pattern`), less stop words. A run of `_WORD`'s
        characters, which are word characters, lies in one of them, so `_WORD` finds in
        the terms what it finds in the text, except in stop words; those hold only
        letters, so `_WORD` finds in them only themselves (or nothing), and they are
        taken out either way.
        """
        self._word_counts.update(set(_WORD.findall(" ".join(terms))) - self._stop_words)

    def recall_line(self, position: int) -> str:
        """The line a recalled message is shown as whole."""
        return self.line_head(position) + message_to_text(self.messages[position]) + _LINE_END

    def recall_line_tokens(self, position: int) -> int:
        """About how many tokens the line of message `position` takes (`recall_line`),
        without making it: the message's count plus its head. Not exact: the recalled
        message is counted exactly once assembled."""
        return self.tokens[position] + _LINE_HEAD_TOKENS

    def line_head(self, position: int) -> str:
        """What a recalled line starts with: the message's position and speaker."""
        return f"[{position}] {role_label(self.messages[position])}:\n"


@dataclass(frozen=True)
class ContextView:
    """What the model is sent, and what went into it.

    `messages` are pinned system messages, the summary (when there is one), the
    recalled message (when recall found something) and the recent turns, in that
    order; `tokens` is their exact count. `recalled` holds the positions, in the
    full transcript, of the messages quoted in the recalled message (oldest first)
    and `recalled_ids` their message ids (None for a message without one).

    Example:
        >>> view = ContextView(messages=[], tokens=3, recalled=(4,), recalled_ids=("m4",))
        >>> view.recalled_ids
        ('m4',)
    """

    messages: list[BaseMessage]
    tokens: int
    recalled: tuple[int, ...] = ()
    recalled_ids: tuple[str | None, ...] = ()


@dataclass(frozen=True)
class ContextPlan:
    """The fold to make next (None while the unfolded turns fit) and the view now."""

    fold: FoldRange | None
    view: ContextView


class ContextPlanner:
    """Decides what a budgeted conversation folds, recalls and shows; does no I/O.

    Priority when not everything fits: pinned messages > newest turn > summary >
    recalled messages > older turns. A fold brings summary + recent turns down to the
    target (`target_tokens`, or `target_ratio` of what pinned messages leave of the
    budget), and the summary text is capped at `max_summary_tokens` (at most half of
    what pinned messages leave).

    Recall (`recall=True`): when a user turn is waiting for an answer
    (`Ledger.question`), up to `recall_share` of what pinned messages and the summary
    leave is offered to older messages (folded or just out of the window) that the
    TF-IDF index finds like the question; they are quoted, oldest first, in one
    message after the summary and before the recent turns, which keep the rest. The
    pinned messages and the summary stay a byte-identical prefix between folds, so
    provider prompt caches keep hitting. Without a match the view is the plain one.

    Example:
        >>> from langchain_core.messages import AIMessage, HumanMessage
        >>> planner = ContextPlanner(TokenCounter("gpt-4o"), target_ratio=0.75)
        >>> messages = [HumanMessage("My locker code is 4417."), AIMessage("Noted.")]
        >>> for i in range(30):
        ...     messages += [HumanMessage(f"Note {i}: room {100 + i} is free."), AIMessage("Ok.")]
        >>> messages.append(HumanMessage("What is my locker code?"))
        >>> ledger = Ledger.of(messages, planner.token_counter, pin_system=True)
        >>> plan = planner.plan(ledger, SummaryState(), budget=250)
        >>> plan.fold.start, plan.view.tokens <= 250, plan.view.recalled
        (0, True, (0,))
        >>> plan.view.messages[0].content.splitlines()[-2:]
        ['[0] User:', 'My locker code is 4417. ']
    """

    def __init__(
        self,
        token_counter: TokenCounter,
        *,
        target_ratio: float,
        target_tokens: int | None = None,
        max_summary_tokens: int | None = None,
        summary_role: SummaryRole = "system",
        summary_prefix: str = "Summary of the earlier conversation:\n",
        recall: bool = True,
        recall_share: float = 0.25,
        recall_limit: int = 8,
        recall_min_score: float = 0.05,
    ) -> None:
        self.token_counter = token_counter
        self.target_ratio = target_ratio
        self.target_tokens = target_tokens
        self.max_summary_tokens = max_summary_tokens
        self.summary_role: SummaryRole = summary_role
        self.summary_prefix = summary_prefix
        self.recall = recall
        self.recall_share = recall_share
        self.recall_limit = recall_limit
        self.recall_min_score = recall_min_score
        self.overhead_tokens = int(token_counter.count_messages([]))
        frame = self.make_message(summary_prefix or " ")
        self.summary_frame_tokens = int(token_counter.count_message(frame))
        self.recall_frame_tokens = int(
            token_counter.count_message(self.make_message(RECALL_HEADER))
        )
        self._summary_memo: tuple[str, BaseMessage | None, int] = ("", None, 0)
        # Recall messages are counted from memoized per-line counts where that is exact
        # (see `_recall_tokens`); the framing is what a message of this role adds to its text.
        self._additive_lines = token_counter.encoding_name in SEAM_ADDITIVE_ENCODINGS
        header_tokens = int(token_counter.count_text(RECALL_HEADER))
        self._recall_framing = self.recall_frame_tokens - header_tokens
        self._summary_head_tokens: int | None = None  # framing + prefix, once needed
        self._line_counts: dict[str, int] = {}
        # (message type, digits of the position) -> tokens of a line's head and end,
        # less the message's framing (see `_whole_line_tokens`)
        self._line_frames: dict[tuple[type[BaseMessage], int], int] = {}
        # a long recalled message's text -> its sentences and the words of each
        self._sentences: dict[str, tuple[list[str], list[frozenset[str]]]] = {}

    def make_message(self, text: str) -> BaseMessage:
        """A message of the summary's role (the summary and the recalled text use it)."""
        if self.summary_role == "human":
            return HumanMessage(text)
        if self.summary_role == "ai":
            return AIMessage(text)
        return SystemMessage(text)

    def summary_message(self, summary: str) -> tuple[BaseMessage | None, int]:
        """The message showing `summary` (None before the first fold) and its tokens.

        The same text always gives an equal message: the prefix providers cache.
        """
        text, message, tokens = self._summary_memo
        if summary != text or (summary and message is None):
            message = self.make_message(self.summary_prefix + summary) if summary else None
            tokens = self._summary_tokens(message, summary) if message else 0
            self._summary_memo = (summary, message, tokens)
        return message, tokens

    def _summary_tokens(self, message: BaseMessage, summary: str) -> int:
        """Exact tokens of the summary `message`, from the count of the `summary` text
        (which the summarizer has just counted, so memoized) where that is exact.

        When the prefix ends with a newline and the summary starts with something other
        than whitespace, no cl100k/o200k pre-tokenizer piece crosses the seam (a piece
        never continues past a newline into a non-space; see `_whole_line_tokens`), so
        the text's tokens are the prefix's plus the summary's. Otherwise the message is
        counted whole.
        """
        if not (self._additive_lines and self.summary_prefix.endswith("\n")) or (
            summary[0].isspace()
        ):
            return int(self.token_counter.count_message(message))
        if self._summary_head_tokens is None:
            prefix = int(self.token_counter.count_text(self.summary_prefix))
            self._summary_head_tokens = self._recall_framing + prefix
        return self._summary_head_tokens + int(self.token_counter.count_text(summary))

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

    # ------------------------------------------------------------ planning

    def plan(self, ledger: Ledger, state: SummaryState, budget: int) -> ContextPlan:
        """The fold to make next and the view under `state`: the one planning step.

        A function of the messages (`ledger`), the summary state, the budget and the
        counter only. A front door that folds calls `view` again with the new state.
        """
        return ContextPlan(self.fold(ledger, state, budget), self.view(ledger, state, budget))

    def fold(self, ledger: Ledger, state: SummaryState, budget: int) -> FoldRange | None:
        """The messages to fold next, or None while the unfolded turns fit the budget.

        A range without chunks holds only pinned messages: the boundary moves, the
        summary stays.
        """
        _, summary_tokens = self.summary_message(state.summary)
        unfolded = ledger.window_tokens(state.covered)
        if self.base_tokens(ledger, summary_tokens) + unfolded <= budget:
            return None
        cap = self.summary_cap(ledger, budget)
        summary_room = self.summary_frame_tokens + cap + 1
        room = self.target(ledger, budget) - self.base_tokens(ledger, summary_room)
        end = ledger.start_fitting(state.covered, room)
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

    def view(self, ledger: Ledger, state: SummaryState, budget: int) -> ContextView:
        """What the model sees: pinned messages, the summary, recalled messages and the
        newest turns that fit. Never more than `budget` tokens.

        The summary covers messages [0, state.covered).
        """
        if budget < MIN_BUDGET_TOKENS:
            logger.warning(
                "A budget of %d tokens is below the minimum of %d; returning no messages.",
                budget,
                MIN_BUDGET_TOKENS,
            )
            return ContextView([], 0)
        covered = state.covered
        summary, summary_tokens = self.summary_message(state.summary)
        pinned = [ledger.messages[i] for i in ledger.pinned]
        head = pinned + ([summary] if summary is not None else [])
        base = self.base_tokens(ledger, summary_tokens)
        room = budget - base
        start = ledger.start_fitting(covered, room)
        if start is None:
            # Slow path: the newest turn, the summary or the pinned messages do not fit.
            first = ledger.first_start_at_or_after(covered)
            lowest = ledger.unit_starts[first] if first < len(ledger.unit_starts) else None
            units = ledger.units(lowest) if lowest is not None else []
            messages = self._fit(pinned, summary, units, budget)
            return ContextView(messages, int(self.token_counter.count_messages(messages)))
        if self.recall:
            recalled = self._with_recall(ledger, head, base, room, covered, start)
            if recalled is not None:
                return recalled
        window = ledger.unpinned_from(start)
        return ContextView(head + window, base + ledger.window_tokens(start))

    def _with_recall(
        self,
        ledger: Ledger,
        head: list[BaseMessage],
        base: int,
        room: int,
        covered: int,
        widest: int,
    ) -> ContextView | None:
        """The view with a recalled message, or None when nothing relevant is outside."""
        question = ledger.question()
        if question is None or ledger.cum[widest] == 0:  # nothing unpinned before the window
            return None
        floor = min(room // 2, self.recall_frame_tokens + _RECALL_MIN_LINE_TOKENS)
        start = ledger.start_fitting(covered, room - max(int(room * self.recall_share), floor))
        if start is None:
            start = widest
        positions = ledger.recall(question, start, self.recall_limit, self.recall_min_score)
        if not positions:
            return None
        recall_room = room - ledger.window_tokens(start)
        message, chosen, tokens = self._recall_message(ledger, positions, recall_room)
        if message is None:
            return None
        window = ledger.unpinned_from(start)
        return ContextView(
            [*head, message, *window],
            base + tokens + ledger.window_tokens(start),
            recalled=tuple(chosen),
            recalled_ids=tuple(ledger.messages[i].id for i in chosen),
        )

    def _recall_message(
        self, ledger: Ledger, positions: list[int], room: int
    ) -> tuple[BaseMessage | None, list[int], int]:
        """The message quoting the best of `positions` that fit in `room` tokens."""
        budget = room - self.recall_frame_tokens
        part_cap = max(16, int(room * _RECALL_PART_SHARE))
        lines: dict[int, tuple[str, int | None]] = {}
        used = 0
        for position in positions:  # best first
            tokens = ledger.recall_line_tokens(position)
            exact: int | None
            if tokens > part_cap:  # a long message, shown in part: never made whole
                line, tokens = self._part(ledger, position, part_cap)
                exact = tokens
            else:
                line = ledger.recall_line(position)
                exact = self._whole_line_tokens(ledger, position)
            if used + tokens <= budget:
                lines[position] = (line, exact)
                used += tokens
        while lines:
            chosen = sorted(lines)
            quoted = [lines[i] for i in chosen]
            message = self.make_message(RECALL_HEADER + "\n" + "".join(line for line, _ in quoted))
            tokens = self._recall_tokens(message, quoted)
            if tokens <= room:
                return message, chosen, tokens
            del lines[max(lines, key=positions.index)]  # drop the weakest match
        return None, [], 0

    def _recall_tokens(self, message: BaseMessage, quoted: list[tuple[str, int | None]]) -> int:
        """Exact tokens of the recall `message` (its header, a newline and the `quoted`
        lines, each given with its exact token count when known), summed per line.

        With the cl100k/o200k pre-tokenizer no piece spans a newline followed by "[", and
        BPE never merges across pieces, so the text's tokens are the sum of those of
        header + "\\n" and of each line when every line starts with "[" (as
        `Ledger.line_head` makes it) and ends with a newline. A line's count is the one
        given, else counted (and memoized). Otherwise the message is counted whole.
        """
        if not self._additive_lines or not all(
            line.startswith("[") and line.endswith("\n") for line, _ in quoted
        ):
            return int(self.token_counter.count_message(message))
        return (
            self._recall_framing
            + self._line_tokens(RECALL_HEADER + "\n")
            + sum(self._line_tokens(line) if known is None else known for line, known in quoted)
        )

    def _whole_line_tokens(self, ledger: Ledger, position: int) -> int | None:
        """Exact tokens of the line quoting message `position` whole, without encoding
        its text again when the ledger's count of the message gives them; None when
        they are not known without counting the line. `_LINE_END` (" \\n") is one token
        in both encodings.

        The line is head + text + `_LINE_END`, the head ending with a newline. When the
        text starts and ends with something other than whitespace, no pre-tokenizer
        piece of cl100k/o200k crosses either seam (a piece never continues past a
        newline into a non-space, and the space of `_LINE_END` stops the text's last
        piece), so the line's tokens are head + text + end. For a plain message (a str,
        no name, tool calls or extra fields), the text's tokens are the message's count
        less what an empty message of its type counts.
        """
        if not self._additive_lines:
            return None
        message = ledger.messages[position]
        text = message.content
        kind = type(message)
        if (
            kind not in _PLAIN_KINDS
            or not isinstance(text, str)
            or not text
            or text[0].isspace()
            or text[-1].isspace()
            or message.name is not None
            or message.additional_kwargs
            or (
                isinstance(message, AIMessage)
                and bool(message.tool_calls or message.invalid_tool_calls)
            )
        ):
            return None  # (the text of such a message is its content)
        key = (kind, len(str(position)))
        frame = self._line_frames.get(key)
        if frame is None:
            frame = self._line_frames[key] = self._line_frame_tokens(message, position)
        return ledger.tokens[position] + frame

    def _line_frame_tokens(self, message: BaseMessage, position: int) -> int:
        """What the line of a plain `message` at `position` costs besides its text: the
        head (`Ledger.line_head`) and `_LINE_END`, less what an empty message of its type
        counts.

        The position's digits are split into pieces of at most three, and cl100k and
        o200k hold every string of one to three digits as one token (a test checks), so
        the count depends on the number of digits, not on which: one count per message
        type and length serves every position.
        """
        shape = f"[{'1' * len(str(position))}] {role_label(message)}:\n"
        empty = int(self.token_counter.count_message(type(message)(content="")))
        return self._line_tokens(shape) + 1 - empty

    def _line_tokens(self, text: str) -> int:
        """Tokens of `text`, memoized (recalled lines come back turn after turn)."""
        tokens = self._line_counts.get(text)
        if tokens is None:
            if len(self._line_counts) >= _LINE_MEMO_SIZE:
                self._line_counts.clear()
            tokens = self._line_counts[text] = int(self.token_counter.count_text(text))
        return tokens

    def _part(self, ledger: Ledger, position: int, cap_tokens: int) -> tuple[str, int]:
        """The line of a long recalled message: its sentences that share most words
        with the question, in their order, within about `cap_tokens`; and its exact tokens."""
        count = self._line_tokens  # memoized: a long message is cut again turn after turn
        head = ledger.line_head(position)
        words = ledger.question_words()
        sentences, sentence_words = self._split(message_to_text(ledger.messages[position]))
        ranked = sorted(range(len(sentences)), key=lambda i: (-len(words & sentence_words[i]), i))
        mark = count(_TRUNCATION_MARK)
        room = cap_tokens - count(head) - 1
        keep: list[int] = []
        counted = self._line_counts.keys() if self._additive_lines else None
        for i in ranked:
            if room <= mark:  # a sentence (never empty) takes a token at least: none fits
                break
            sentence = sentences[i]
            if (
                counted is not None
                and sentence not in counted
                and _fewest_tokens(sentence) + mark > room
            ):
                continue  # not counted yet and cannot fit: not worth counting
            tokens = count(sentence) + mark
            if tokens <= room:
                keep.append(i)
                room -= tokens
        if not keep:
            shortened = self._shorten_text(sentences[ranked[0]] if sentences else "", room)
            line = head + shortened + _LINE_END
            return line, int(self.token_counter.count_text(line))
        kept = [sentences[i] for i in sorted(keep)]
        line = head + _TRUNCATION_MARK.join(kept).strip() + _LINE_END
        return line, self._part_tokens(head, kept, line)

    def _part_tokens(self, head: str, kept: list[str], line: str) -> int:
        """Exact tokens of the `line` showing the `kept` sentences after `head`, summed
        from memoized counts (a long message's sentences come back turn after turn, in
        lines cut to other caps) where that is exact, else counted.

        When no kept sentence ends with whitespace and the first is not all whitespace,
        the line is head + the first sentence (stripped) + (`_MARK_PIECE` + " " +
        sentence) for each other + `_LINE_END`, and no cl100k/o200k pre-tokenizer piece
        crosses a seam between those parts: the head ends with a newline followed by a
        non-space (see `_whole_line_tokens`), and every other seam is a non-space
        followed by a space (`SEAM_ADDITIVE_ENCODINGS`). The space after the mark would
        join the next sentence's first piece, so it is counted with that sentence.
        """
        first = kept[0].lstrip()
        if not (self._additive_lines and first) or any(s[-1].isspace() for s in kept):
            return int(self.token_counter.count_text(line))
        count = self._line_tokens
        marks = (len(kept) - 1) * count(_MARK_PIECE)
        rest = sum(count(" " + sentence) for sentence in kept[1:])
        return count(head) + count(first) + marks + rest + count(_LINE_END)

    def _split(self, text: str) -> tuple[list[str], list[frozenset[str]]]:
        """The sentences of `text` and the words of each (memoized: a long message
        is cut again turn after turn)."""
        found = self._sentences.get(text)
        if found is None:
            if len(self._sentences) >= _SENTENCE_MEMO_SIZE:
                self._sentences.clear()
            sentences = [s for s in _SENTENCE.split(text) if s]
            words = [frozenset(_WORD.findall(sentence.lower())) for sentence in sentences]
            found = self._sentences[text] = (sentences, words)
        return found

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
