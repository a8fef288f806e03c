"""Summarizers that fold old chat turns into a short running summary.

`SummarizingChatMessageHistory` calls a summarizer each time old turns leave the
context window. It passes only the previous summary and the newly folded messages,
never the whole transcript, so the cost of one fold does not grow with the
conversation. Two are provided: `LLMSummarizer` (any chat model or Runnable) and
`ExtractiveSummarizer` (offline, no model, the default).

Both are `Runnable`s: the input is either a list of messages or a `SummaryRequest`
dict (`messages`, `previous_summary`, `max_tokens`), the output is the summary text.
"""

from __future__ import annotations

import functools
import heapq
import re
import threading
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

from cachetools import LRUCache
from langchain_core.callbacks import (
    AsyncCallbackManagerForChainRun,
    CallbackManagerForChainRun,
)
from langchain_core.language_models import BaseLanguageModel
from langchain_core.messages import (
    BaseMessage,
    HumanMessage,
    SystemMessage,
)
from langchain_core.runnables import Runnable, RunnableConfig
from typing_extensions import NotRequired

from langchain_tokenopt.core.messages import message_to_text, render_transcript, role_label
from langchain_tokenopt.core.runnables import acall_in_run, call_in_run, unobserved_config
from langchain_tokenopt.core.tokens import SEAM_ADDITIVE_ENCODINGS, TokenCounter
from langchain_tokenopt.core.validation import instance_of, int_in_range, optional, shown
from langchain_tokenopt.errors import ArgumentTypeError, InvalidArgumentError

__all__ = [
    "BaseSummarizer",
    "ExtractiveSummarizer",
    "LLMSummarizer",
    "SummarizerInput",
    "SummaryRequest",
]

#: Summary size used when neither the request nor the summarizer sets one.
DEFAULT_MAX_SUMMARY_TOKENS = 512


class SummaryRequest(TypedDict):
    """What a summarizer receives: the previous summary and the newly folded messages.

    `max_tokens` caps the summary text (None: no cap).

    Example:
        >>> from langchain_core.messages import HumanMessage
        >>> request: SummaryRequest = {"messages": [HumanMessage("I moved to Oslo.")],
        ...                            "previous_summary": "User is Ada.", "max_tokens": 40}
        >>> print(ExtractiveSummarizer().invoke(request))
        User is Ada.
        User: I moved to Oslo.
    """

    messages: Sequence[BaseMessage]
    previous_summary: NotRequired[str]
    max_tokens: NotRequired[int | None]


SummarizerInput = Sequence[BaseMessage] | SummaryRequest | Mapping[str, Any]


def _parse_request(value: SummarizerInput) -> tuple[list[BaseMessage], str, int | None]:
    if isinstance(value, Mapping):
        if "messages" not in value:
            raise ArgumentTypeError(
                "A summarizer takes a list of messages or a dict with 'messages' (and "
                f"optionally 'previous_summary', 'max_tokens'); got keys {sorted(value)}."
            )
        messages = list(value["messages"])
        previous = value.get("previous_summary") or ""
        max_tokens = value.get("max_tokens")
    elif isinstance(value, Sequence) and not isinstance(value, str):
        messages, previous, max_tokens = list(value), "", None
    else:
        raise ArgumentTypeError(
            "A summarizer takes a list of messages or a SummaryRequest dict, "
            f"not {type(value).__name__}."
        )
    for message in messages:
        if not isinstance(message, BaseMessage):
            raise ArgumentTypeError(
                f"Summarizer messages must be BaseMessage, not {shown(type(message))}."
            )
    if not isinstance(previous, str):
        raise ArgumentTypeError("'previous_summary' must be a string.")
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
    ):
        raise InvalidArgumentError(
            f"'max_tokens' must be a positive int or None, not {shown(max_tokens)}."
        )
    return messages, previous, max_tokens


class BaseSummarizer(Runnable[SummarizerInput, str], ABC):
    """A Runnable that turns (previous summary, newly folded messages) into a new summary.

    Subclasses implement `summarize` (and `asummarize` when they can be natively
    async). `invoke` accepts a list of messages or a `SummaryRequest` dict.

    Example:
        >>> from langchain_core.messages import HumanMessage
        >>> s = ExtractiveSummarizer()
        >>> s.invoke({"messages": [HumanMessage("My name is Ada.")],
        ...           "previous_summary": "", "max_tokens": 50})
        'User: My name is Ada.'
    """

    @abstractmethod
    def summarize(
        self,
        messages: Sequence[BaseMessage],
        previous_summary: str = "",
        max_tokens: int | None = None,
        *,
        config: RunnableConfig | None = None,
    ) -> str:
        """The new summary of `previous_summary` followed by `messages`."""

    async def asummarize(
        self,
        messages: Sequence[BaseMessage],
        previous_summary: str = "",
        max_tokens: int | None = None,
        *,
        config: RunnableConfig | None = None,
    ) -> str:
        """Async `summarize`; runs the sync one unless a subclass does better."""
        return self.summarize(messages, previous_summary, max_tokens, config=config)

    def invoke(
        self, input: SummarizerInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> str:
        """Summarize a list of messages or a `SummaryRequest`."""
        messages, previous, max_tokens = _parse_request(input)

        def run(
            _: SummarizerInput, run_manager: CallbackManagerForChainRun, config: RunnableConfig
        ) -> str:
            return self.summarize(messages, previous, max_tokens, config=config)

        return call_in_run(self, run, input, config)

    async def ainvoke(
        self, input: SummarizerInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> str:
        """Async `invoke`."""
        messages, previous, max_tokens = _parse_request(input)

        async def run(
            _: SummarizerInput, run_manager: AsyncCallbackManagerForChainRun, config: RunnableConfig
        ) -> str:
            return await self.asummarize(messages, previous, max_tokens, config=config)

        return await acall_in_run(self, run, input, config)


# ---------------------------------------------------------------------------
# LLM summarizer
# ---------------------------------------------------------------------------

_LLM_SYSTEM_PROMPT = (
    "You keep a running summary of a conversation between a user and an AI assistant. "
    "Merge the new messages into the current summary. Keep, exactly as stated: every "
    "name, number, amount, date, time, place, preference, decision, and every open task, "
    "question or promise. Drop greetings, small talk and repetition. Write short factual "
    "sentences that say who said or did what. Stay under {max_words} words. Reply with "
    "the updated summary only."
)
_LLM_USER_PROMPT = "Current summary:\n{previous_summary}\n\nNew messages:\n{transcript}"


class LLMSummarizer(BaseSummarizer):
    """Summarizes with any chat model or Runnable (messages in, message or text out).

    The prompt asks to keep names, numbers, dates, decisions and open tasks and to
    stay under the token cap (in words, about 0.75 per token). The cap is a request
    to the model; `SummarizingChatMessageHistory` also enforces it by truncation.
    Sync and natively async (`invoke` / `ainvoke` of the model).

    Example:
        >>> from langchain_core.language_models import GenericFakeChatModel
        >>> model = GenericFakeChatModel(messages=iter(["User Ada asked about Paris."]))
        >>> LLMSummarizer(model).invoke([HumanMessage("Hi, I'm Ada. Paris tips?")])
        'User Ada asked about Paris.'
    """

    def __init__(
        self,
        model: Runnable[Any, Any] | BaseLanguageModel[Any],
        *,
        max_summary_tokens: int = DEFAULT_MAX_SUMMARY_TOKENS,
        system_prompt: str = _LLM_SYSTEM_PROMPT,
    ) -> None:
        if not isinstance(model, Runnable):
            raise ArgumentTypeError(
                f"LLMSummarizer needs a chat model or Runnable, not {shown(type(model))}."
            )
        int_in_range(max_summary_tokens, "max_summary_tokens", minimum=1)
        instance_of(system_prompt, "system_prompt", str, "a str with a '{max_words}' placeholder")
        if "{max_words}" not in system_prompt:
            raise InvalidArgumentError("system_prompt must contain the '{max_words}' placeholder.")
        self.model = model
        self.max_summary_tokens = max_summary_tokens
        self.system_prompt = system_prompt

    def _prompt(
        self, messages: Sequence[BaseMessage], previous_summary: str, max_tokens: int | None
    ) -> list[BaseMessage]:
        cap = max_tokens or self.max_summary_tokens
        max_words = max(1, int(cap * 0.75))
        return [
            SystemMessage(self.system_prompt.replace("{max_words}", str(max_words))),
            HumanMessage(
                _LLM_USER_PROMPT.format(
                    previous_summary=previous_summary or "(none yet)",
                    transcript=render_transcript(messages) or "(no text)",
                )
            ),
        ]

    def summarize(
        self,
        messages: Sequence[BaseMessage],
        previous_summary: str = "",
        max_tokens: int | None = None,
        *,
        config: RunnableConfig | None = None,
    ) -> str:
        """Ask the model for the merged summary."""
        if not messages:
            return previous_summary
        result = self.model.invoke(self._prompt(messages, previous_summary, max_tokens), config)
        return _output_text(result)

    async def asummarize(
        self,
        messages: Sequence[BaseMessage],
        previous_summary: str = "",
        max_tokens: int | None = None,
        *,
        config: RunnableConfig | None = None,
    ) -> str:
        """Ask the model for the merged summary, natively async."""
        if not messages:
            return previous_summary
        prompt = self._prompt(messages, previous_summary, max_tokens)
        result = await self.model.ainvoke(prompt, config)
        return _output_text(result)


def _output_text(result: Any) -> str:
    if isinstance(result, BaseMessage):
        return str(result.text).strip()
    if isinstance(result, str):
        return result.strip()
    raise ArgumentTypeError(
        f"The summary model returned {type(result).__name__}; it must return a message or a string."
    )


# ---------------------------------------------------------------------------
# Extractive summarizer
# ---------------------------------------------------------------------------


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_CHAT_FILLER = _words(
    """i'm i've i'd i'll it's that's don't didn't can't won't isn't wasn't you're we're
    they're let's there's here's what's doesn't haven't wouldn't couldn't shouldn't oh ok
    okay hi hello hey sure yes yeah thanks thank please really just maybe actually
    basically honestly definitely probably pretty quite lot lots thing things stuff
    kind sort way going want wanted know think thought need make like got get feel"""
)


@functools.cache
def _stop_words() -> frozenset[str]:
    """scikit-learn's English list plus chat filler that carries no fact.

    Loaded on the first summary, with the `TextIndex` that needs scikit-learn anyway,
    so importing the history does not import scikit-learn.
    """
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS) | _CHAT_FILLER


@functools.cache
def _centrality_analyzer() -> Callable[[str], list[str]]:
    """scikit-learn's word analyzer (English stop words), as `TextIndex` builds it."""
    from sklearn.feature_extraction.text import CountVectorizer

    analyzer: Callable[[str], list[str]] = CountVectorizer(
        analyzer="word", ngram_range=(1, 1), lowercase=True, stop_words="english"
    ).build_analyzer()
    return analyzer


def _term_counts(text: str) -> Counter[str]:
    return Counter(_centrality_analyzer()(text))


def _centrality_scores(counts: Sequence[Counter[str]]) -> list[float]:
    """Each text's cosine with all the texts joined, under TF-IDF fitted on the texts.

    The numbers `TextIndex(stop_words="english", word_ngram_range=(1, 1))` gives for
    `query(" ".join(texts))` after `add_many(texts)` (smooth IDF, sublinear TF, unit
    rows, sums in the same order, so equal to the last bit; a test holds them equal),
    computed from each text's counts: the joined text's counts are their sums, so no
    text is analyzed twice and no index is built per summary.
    """
    import numpy as np  # with scikit-learn, on the first summary

    ids: dict[str, int] = {}
    columns: list[int] = []
    values: list[int] = []
    lengths: list[int] = []
    for tally in counts:
        for term, count in tally.items():
            columns.append(ids.setdefault(term, len(ids)))
            values.append(count)
        lengths.append(len(tally))
    n_docs = len(counts)
    if not columns:
        return [0.0] * n_docs
    column = np.array(columns, np.int64)
    rows = np.repeat(np.arange(n_docs), lengths)
    tf = 1.0 + np.log(np.array(values, np.float64))
    df = np.bincount(column, minlength=len(ids)).astype(np.int64)
    idf = np.log((1.0 + n_docs) / (1.0 + df.astype(np.float64))) + 1.0
    weights = tf * idf[column]
    norms = np.sqrt(np.bincount(rows, weights=weights * weights, minlength=n_docs))
    with np.errstate(divide="ignore"):
        weights *= (1.0 / norms)[rows]
    # the joined text: every term, in order of first appearance (its ids), summed counts
    query = (1.0 + np.log(np.bincount(column, weights=values, minlength=len(ids)))) * idf
    query *= 1.0 / np.sqrt(np.bincount(np.zeros(len(ids), np.int64), weights=query * query))
    # each text's terms in id order, as the index's posting lists add them up
    order = np.argsort(column, kind="stable")
    scores = np.bincount(
        rows[order], weights=weights[order] * query[column[order]], minlength=n_docs
    )
    return [min(float(score), 1.0) for score in scores]


def _name_features(
    words: tuple[str, ...], stop_words: frozenset[str]
) -> tuple[frozenset[str], frozenset[str]]:
    """(the names a piece makes: its mid-sentence capitalized words unless it is
    title-cased, the lower-cased words whose weight depends on whether they are names)."""
    capitalized = [w for w in words[1:] if w[0].isupper() and len(w) > 1]
    candidates: frozenset[str] = frozenset()
    if len(capitalized) * 2 <= len(words):
        candidates = frozenset(w.lower() for w in capitalized if w.lower() not in stop_words)
    nameable = set()
    for word in words:
        low = word.lower().rstrip("'’").lstrip("$")
        if not (
            low[:1].isdigit()
            or (low in _MONTHS_AND_DAYS and (word[0].isupper() or low not in _AMBIGUOUS))
            or low in _NUMBER_WORDS
        ):
            nameable.add(low)
    return candidates, frozenset(nameable)


def _piece_terms(
    words: tuple[str, ...], names: set[str], stop_words: frozenset[str]
) -> dict[str, float]:
    """A piece's weighted terms: numbers, dates, number words, names, other words."""
    terms: dict[str, float] = {}
    for word in words:
        low = word.lower().rstrip("'’").lstrip("$")
        if low[:1].isdigit():
            terms[low] = _WEIGHT_NUMBER
        elif low in _MONTHS_AND_DAYS and (word[0].isupper() or low not in _AMBIGUOUS):
            terms[low] = _WEIGHT_DATE
        elif low in _NUMBER_WORDS:
            terms[low] = max(terms.get(low, 0.0), _WEIGHT_NUMBER - 1.0)
        elif low in names:
            terms[low] = max(terms.get(low, 0.0), _WEIGHT_ENTITY)
        elif len(low) > 2 and low not in stop_words:
            terms.setdefault(low, _WEIGHT_WORD)
    return terms


_MONTHS_AND_DAYS = _words(
    """january february march april may june july august september october november
    december jan feb mar apr jun jul aug sep sept oct nov dec monday tuesday wednesday
    thursday friday saturday sunday"""
)
# Month names that are also common words count as dates only when capitalized.
_AMBIGUOUS = frozenset({"may", "march", "sat", "sun", "wed"})
_NUMBER_WORDS = _words(
    """zero one two three four five six seven eight nine ten eleven twelve thirteen
    fourteen fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty
    seventy eighty ninety hundred thousand million billion dozen half twice"""
)
_ABBREVIATIONS = ("mr.", "mrs.", "ms.", "dr.", "st.", "jr.", "sr.", "vs.", "etc.", "e.g.", "i.e.")
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])[\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-Z0-9])")
_CLAUSE_SPLIT = re.compile(r"(?<=[;:,])\s+|\s+(?=[—–(]\s?)|(?<=[—–)])\s+|(?<=\w)—(?=\w)")
_WORD = re.compile(r"[A-Za-z][A-Za-z'’\-]*|\$?\d+(?:[.,:/\-]\d+)*%?")
_SUMMARY_LINE = re.compile(r"^([A-Z][\w ]{0,40}?): (.*)$")
# List numbering, bullets and markdown heading marks at the start of a piece.
_LEADING_MARKS = re.compile(r"^(?:\s*(?:\d{1,3}[.)]|[-*•#>]+|\*\*)\s+)+")
#: Pieces with fewer words carry too little context to stand in a summary.
_MIN_PIECE_WORDS = 3

#: Weights of the kinds of key term a sentence can cover (generic, not data-tuned).
_WEIGHT_NUMBER = 3.0
_WEIGHT_DATE = 3.0
_WEIGHT_ENTITY = 2.0
_WEIGHT_WORD = 0.5
#: How much the most central sentence is worth more than an off-topic one.
_CENTRALITY_BOOST = 0.25
#: Role label, separator and newline cost about this much on top of a piece's text.
_PIECE_OVERHEAD_TOKENS = 2


@dataclass(frozen=True)
class _Facts:
    """What a piece's text alone says, worked out once per text (see `_mark_terms`)."""

    tokens: int
    words: tuple[str, ...]
    #: the names it makes, and its words whose weight depends on whether they are names
    #: (`_name_features`)
    candidates: frozenset[str]
    nameable: frozenset[str]
    #: its word counts for centrality (`_term_counts`)
    counts: Counter[str]
    #: its terms, by which of its nameable words are names
    terms: dict[frozenset[str], dict[str, float]] = field(default_factory=dict)


@dataclass
class _Piece:
    """One selectable sentence (or clause of a long sentence)."""

    order: int
    role: str
    text: str
    facts: _Facts
    tokens: int
    terms: dict[str, float] = field(default_factory=dict)
    centrality: float = 0.0


class ExtractiveSummarizer(BaseSummarizer):
    """Offline summarizer: keeps the most informative sentences, within a token cap.

    The previous summary and the new messages are split into sentences, and sentences
    longer than `max_sentence_tokens` into clauses. Each piece covers key terms:
    numbers and amounts, dates and weekdays, names (words capitalized in mid-sentence),
    and other content words, weighted in that order. Pieces are picked greedily by the
    weight of the terms they add that the picked ones do not already cover, per token
    (so repetition earns nothing), boosted by their centrality (`TextIndex` cosine to
    the whole text), until the cap is reached. They are written back in their original
    order as "Role: text" lines, consecutive pieces of one speaker on one line.
    Non-text content appears as placeholders ("[image]", "[tool call: name(args…)]").
    Deterministic and cheap: one `TextIndex` fit and one query per call; the analysis
    of recently seen pieces (e.g. the previous summary) is cached.

    Example:
        >>> from langchain_core.messages import HumanMessage, AIMessage
        >>> s = ExtractiveSummarizer(max_summary_tokens=20)
        >>> s.invoke([HumanMessage("Hi there! My flight to Oslo leaves on May 3 at 9:40."),
        ...           AIMessage("Great, have a nice trip!")])
        'User: My flight to Oslo leaves on May 3 at 9:40.'
    """

    def __init__(
        self,
        model: str = "gpt-4o",
        *,
        token_counter: TokenCounter | None = None,
        max_summary_tokens: int = DEFAULT_MAX_SUMMARY_TOKENS,
        max_sentence_tokens: int = 24,
        cache_size: int = 4096,
    ) -> None:
        int_in_range(max_summary_tokens, "max_summary_tokens", minimum=1)
        int_in_range(max_sentence_tokens, "max_sentence_tokens", minimum=8)
        int_in_range(cache_size, "cache_size", minimum=0)
        instance_of(model, "model", str, "a model name such as 'gpt-4o'")
        optional(instance_of, token_counter, "token_counter", TokenCounter, "a TokenCounter")
        self.token_counter = token_counter or TokenCounter(model)
        self.max_summary_tokens = max_summary_tokens
        self.max_sentence_tokens = max_sentence_tokens
        self._lock = threading.Lock()
        self._cache_size = cache_size
        # Memos of pure values (plain dicts, emptied when full: a hit is the hot path,
        # called for every sentence of every fold): text -> its tokens, and the text of
        # a piece -> what it alone says (see `_facts`).
        self._token_counts: dict[str, int] = {}
        self._facts_memo: dict[str, tuple[str, _Facts]] = {}
        # whether a summary's tokens are its parts' (see `_rendered_tokens`)
        self._line_additive = self.token_counter.encoding_name in SEAM_ADDITIVE_ENCODINGS
        # summary -> its (role, text) pieces.
        self._produced: LRUCache[str, tuple[tuple[str, str], ...]] = LRUCache(64)

    def invoke(
        self, input: SummarizerInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> str:
        """Summarize a list of messages or a `SummaryRequest`.

        The summary is made inside a run of its own when a callback handler would see
        it (given, inherited from a parent run, or a tracer); otherwise without one,
        which spares langchain-core's per-run setup in every fold (it calls nothing).
        """
        plain = unobserved_config(config)
        if plain is None:
            return super().invoke(input, config, **kwargs)
        messages, previous, max_tokens = _parse_request(input)
        return self.summarize(messages, previous, max_tokens, config=plain)

    def _remember(self, memo: dict[Any, Any], key: Any, value: Any) -> None:
        if len(memo) >= self._cache_size:
            memo.clear()
        if self._cache_size:
            memo[key] = value

    # -- splitting -----------------------------------------------------------

    def _tokens(self, text: str) -> int:
        found = self._token_counts.get(text)
        if found is None:
            found = int(self.token_counter.count_text(text))
            self._remember(self._token_counts, text, found)
        return found

    def _sentences(self, text: str) -> list[str]:
        out: list[str] = []
        for line in text.splitlines():
            line = line.strip(" \t-*•")
            if not line:
                continue
            pending = ""
            for part in _SENTENCE_SPLIT.split(line):
                part = part.strip()
                if not part:
                    continue
                pending = f"{pending} {part}" if pending else part
                if not pending.lower().endswith(_ABBREVIATIONS):
                    out.extend(self._clauses(pending))
                    pending = ""
            if pending:
                out.extend(self._clauses(pending))
        return out

    def _clauses(self, sentence: str) -> list[str]:
        """Split a long sentence at clause punctuation into pieces of similar size."""
        if self._tokens(sentence) <= self.max_sentence_tokens:
            return [sentence]
        target = self.max_sentence_tokens // 2
        pieces: list[str] = []
        current = ""
        for part in _CLAUSE_SPLIT.split(sentence):
            if not part or not part.strip():
                continue
            candidate = f"{current} {part}" if current else part
            if current and self._tokens(candidate) > target:
                pieces.append(current)
                current = part
            else:
                current = candidate
        if current:
            pieces.append(current)
        return pieces

    def _pieces(self, messages: Sequence[BaseMessage], previous_summary: str) -> list[_Piece]:
        with self._lock:
            known = self._produced.get(previous_summary)
        parts: list[tuple[str, str]] = []
        if known is not None:
            parts.extend(known)
        else:
            for line in previous_summary.splitlines():
                match = _SUMMARY_LINE.match(line.strip())
                role, text = (match.group(1), match.group(2)) if match else ("", line)
                parts.extend((role, sentence) for sentence in self._sentences(text))
        for message in messages:
            role = role_label(message)
            parts.extend((role, s) for s in self._sentences(message_to_text(message)))
        pieces: list[_Piece] = []
        for role, part in parts:
            text, facts = self._facts(part)
            if len(facts.words) >= _MIN_PIECE_WORDS:
                pieces.append(_Piece(len(pieces), role, text, facts, facts.tokens))
        return pieces

    def _facts(self, part: str) -> tuple[str, _Facts]:
        """The piece a sentence or clause makes (its text without list marks) and what
        that text alone says: one pass over its words, memoized."""
        found = self._facts_memo.get(part)
        if found is None:
            text = _LEADING_MARKS.sub("", part).strip()
            words = tuple(_WORD.findall(text))
            candidates, nameable = _name_features(words, _stop_words())
            facts = _Facts(
                tokens=self._tokens(text),
                words=words,
                candidates=candidates,
                nameable=nameable,
                counts=_term_counts(text) if len(words) >= _MIN_PIECE_WORDS else Counter(),
            )
            found = (text, facts)
            self._remember(self._facts_memo, part, found)
        return found

    # -- scoring -------------------------------------------------------------

    def _mark_terms(self, pieces: list[_Piece]) -> None:
        # A word capitalized in mid-sentence anywhere is a name everywhere, except in
        # title-cased pieces (headings), where capitals say nothing.
        names: set[str] = set()
        for piece in pieces:
            names.update(piece.facts.candidates)
        # A piece's terms depend on the names only through its own words that may be
        # names: the same piece with the same of them named has the same terms.
        for piece in pieces:
            facts = piece.facts
            named = facts.nameable & names
            terms = facts.terms.get(named)
            if terms is None:
                terms = facts.terms[named] = _piece_terms(facts.words, names, _stop_words())
            piece.terms = terms

    def _mark_centrality(self, pieces: list[_Piece]) -> None:
        # Each piece's term counts are kept (a previous summary's pieces come back in
        # every fold), and the joined text's counts are their sums.
        scores = _centrality_scores([piece.facts.counts for piece in pieces])
        best = max(scores, default=0.0)
        if best <= 0.0:
            return
        for piece, score in zip(pieces, scores, strict=True):
            if score > 0.0:
                piece.centrality = score / best

    # -- selection -----------------------------------------------------------

    def summarize(
        self,
        messages: Sequence[BaseMessage],
        previous_summary: str = "",
        max_tokens: int | None = None,
        *,
        config: RunnableConfig | None = None,
    ) -> str:
        """Pick the most informative sentences of `previous_summary` + `messages`."""
        cap = max_tokens or self.max_summary_tokens
        pieces = self._pieces(messages, previous_summary)
        if not pieces:
            return ""
        self._mark_terms(pieces)
        if len(pieces) > 1:
            self._mark_centrality(pieces)
        chosen = self._select(pieces, cap)
        text = self._render(chosen)
        # Joined text can count differently from its parts: drop the weakest until it fits.
        while chosen and self._rendered_tokens(chosen, text) > cap:
            weakest = min(chosen, key=lambda p: (self._value(p, set()), -p.order))
            chosen.remove(weakest)
            text = self._render(chosen)
        if not chosen:
            best = max(pieces, key=lambda p: self._value(p, set()))
            return self._truncate(self._render([best]), cap)
        with self._lock:
            self._produced[text] = tuple((p.role, p.text) for p in chosen)
        return text

    @staticmethod
    def _value(piece: _Piece, covered: set[str]) -> float:
        gain = sum([w for term, w in piece.terms.items() if term not in covered])
        cost = piece.tokens + _PIECE_OVERHEAD_TOKENS
        return gain * (1.0 + _CENTRALITY_BOOST * piece.centrality) / cost

    def _select(self, pieces: list[_Piece], cap: int) -> list[_Piece]:
        covered: set[str] = set()
        chosen: list[_Piece] = []
        used = 0
        # Lazy greedy: a piece's value only drops as terms get covered. A value is
        # worked out again only when terms were covered since (`covered` only grows, so
        # its size tells); with nothing covered, it is the sum of all its weights.
        boosts = [1.0 + _CENTRALITY_BOOST * p.centrality for p in pieces]
        heap = [
            (-(sum(p.terms.values()) * boost / (p.tokens + _PIECE_OVERHEAD_TOKENS)), p.order, 0)
            for p, boost in zip(pieces, boosts, strict=True)
        ]
        heapq.heapify(heap)
        while heap:
            negative, order, seen = heapq.heappop(heap)
            piece = pieces[order]
            cost = piece.tokens + _PIECE_OVERHEAD_TOKENS
            if seen == len(covered):
                value = -negative
            else:
                gain = sum([w for term, w in piece.terms.items() if term not in covered])
                value = gain * boosts[order] / cost
            if value <= 0.0:
                continue
            if heap and value < -heap[0][0]:
                heapq.heappush(heap, (-value, order, len(covered)))
                continue
            if used + cost > cap:
                continue
            chosen.append(piece)
            used += cost
            covered.update(piece.terms)
        chosen.sort(key=lambda p: p.order)
        return chosen

    @staticmethod
    def _render(chosen: Sequence[_Piece]) -> str:
        lines: list[str] = []
        role: str | None = None
        for piece in sorted(chosen, key=lambda p: p.order):
            if role is not None and piece.role == role and lines:
                lines[-1] = f"{lines[-1]} {piece.text}"
            else:
                lines.append(f"{piece.role}: {piece.text}" if piece.role else piece.text)
            role = piece.role
        return "\n".join(lines)

    def _rendered_tokens(self, chosen: Sequence[_Piece], text: str) -> int:
        """Tokens of `text`, `_render(chosen)`, summed from memoized counts of its parts
        so that a previous summary's pieces are not encoded again in every fold.

        The parts are each line's head ("Role:") and each piece with what precedes it on
        its line (" " after a head or a piece) and follows it ("\n" ending a line but
        the last). With the cl100k/o200k pre-tokenizer no piece continues from a
        non-space into a space, nor from a newline into a non-space (a space or newline
        only starts a piece or is in one of whitespace only), and BPE never merges across
        pieces: as pieces and heads start and end with non-spaces (they are stripped),
        every seam between parts is a seam between pre-tokenizer pieces, so the text's
        tokens are the sum of its parts' (a test holds it on arbitrary text). Otherwise
        (another encoding, a role starting with a space) the text is counted whole.
        """
        ordered = sorted(chosen, key=lambda p: p.order)
        if not self._line_additive or any(p.role[:1].isspace() for p in ordered):
            return int(self.token_counter.count_text(text))
        total = 0
        last = len(ordered) - 1
        for i, piece in enumerate(ordered):
            same_line = i > 0 and piece.role == ordered[i - 1].role
            if same_line or piece.role:
                part = " " + piece.text
                if not same_line:
                    total += self._tokens(piece.role + ":")
            else:
                part = piece.text
            if i < last and ordered[i + 1].role != piece.role:
                part += "\n"
            total += self._tokens(part)
        return total

    def _truncate(self, text: str, cap: int) -> str:
        tokens = self.token_counter.encode(text)
        keep = max(cap - 1, 0)
        while keep > 0:
            candidate = self.token_counter.decode(tokens[:keep]).rstrip() + "…"
            if self.token_counter.count_text(candidate) <= cap:
                return candidate
            keep -= 1
        return ""
