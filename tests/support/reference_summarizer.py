"""The extractive summarizer's algorithm as it was before its speed-up (commit 9b74340),
kept to prove the fast one writes byte-identical summaries.

A frozen copy of `ExtractiveSummarizer`'s splitting, scoring and selection: only the
pieces the speed-up rewrote are copied; the shared pure helpers (stop words, term
counts, centrality, rendering, truncation) are imported from the package.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import BaseMessage

from langchain_tokenopt.chat_history.summarizers import (
    _ABBREVIATIONS,
    _AMBIGUOUS,
    _CENTRALITY_BOOST,
    _CLAUSE_SPLIT,
    _LEADING_MARKS,
    _MIN_PIECE_WORDS,
    _MONTHS_AND_DAYS,
    _NUMBER_WORDS,
    _PIECE_OVERHEAD_TOKENS,
    _SENTENCE_SPLIT,
    _SUMMARY_LINE,
    _WEIGHT_DATE,
    _WEIGHT_ENTITY,
    _WEIGHT_NUMBER,
    _WEIGHT_WORD,
    _WORD,
    ExtractiveSummarizer,
    _centrality_scores,
    _stop_words,
    _term_counts,
)
from langchain_tokenopt.core.messages import message_to_text, role_label
from langchain_tokenopt.core.tokens import TokenCounter

__all__ = ["ReferenceExtractiveSummarizer"]


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


@dataclass
class _Piece:
    """One selectable sentence (or clause of a long sentence)."""

    order: int
    role: str
    text: str
    tokens: int
    words: tuple[str, ...]
    terms: dict[str, float] = field(default_factory=dict)
    centrality: float = 0.0


class ReferenceExtractiveSummarizer:
    """`ExtractiveSummarizer.summarize` as it was (no Runnable, no lock, no memo bound)."""

    def __init__(self, token_counter: TokenCounter, max_sentence_tokens: int = 24) -> None:
        self.token_counter = token_counter
        self.max_sentence_tokens = max_sentence_tokens
        self._cache_size = 4096
        self._analysis: dict[str, tuple[int, tuple[str, ...]]] = {}
        self._term_counts: dict[str, Counter[str]] = {}
        self._name_features: dict[str, tuple[frozenset[str], frozenset[str]]] = {}
        self._terms: dict[tuple[str, frozenset[str]], dict[str, float]] = {}
        self._produced: dict[str, tuple[tuple[str, str], ...]] = {}
        self._truncate = ExtractiveSummarizer(token_counter=token_counter)._truncate

    def _remember(self, memo: dict[Any, Any], key: Any, value: Any) -> None:
        if len(memo) >= self._cache_size:
            memo.clear()
        if self._cache_size:
            memo[key] = value

    # -- splitting -----------------------------------------------------------

    def _analyze(self, text: str) -> tuple[int, tuple[str, ...]]:
        found = self._analysis.get(text)
        if found is None:
            found = (int(self.token_counter.count_text(text)), tuple(_WORD.findall(text)))
            self._remember(self._analysis, text, found)
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
        if self._analyze(sentence)[0] <= self.max_sentence_tokens:
            return [sentence]
        target = self.max_sentence_tokens // 2
        pieces: list[str] = []
        current = ""
        for part in _CLAUSE_SPLIT.split(sentence):
            if not part or not part.strip():
                continue
            candidate = f"{current} {part}" if current else part
            if current and self._analyze(candidate)[0] > target:
                pieces.append(current)
                current = part
            else:
                current = candidate
        if current:
            pieces.append(current)
        return pieces

    def _pieces(self, messages: Sequence[BaseMessage], previous_summary: str) -> list[_Piece]:
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
        for role, text in parts:
            text = _LEADING_MARKS.sub("", text).strip()
            tokens, words = self._analyze(text)
            if len(words) >= _MIN_PIECE_WORDS:
                pieces.append(_Piece(len(pieces), role, text, tokens, words))
        return pieces

    # -- scoring -------------------------------------------------------------

    def _mark_terms(self, pieces: list[_Piece]) -> None:
        # A word capitalized in mid-sentence anywhere is a name everywhere, except in
        # title-cased pieces (headings), where capitals say nothing.
        stop_words = _stop_words()
        features = []
        for piece in pieces:
            found = self._name_features.get(piece.text)
            if found is None:
                found = _name_features(piece.words, stop_words)
                self._remember(self._name_features, piece.text, found)
            features.append(found)
        names: set[str] = set()
        for candidates, _ in features:
            names.update(candidates)
        # A piece's terms depend on the names only through its own words that may be
        # names: the same piece with the same of them named has the same terms.
        for piece, (_, nameable) in zip(pieces, features, strict=True):
            key = (piece.text, nameable & names)
            terms = self._terms.get(key)
            if terms is None:
                terms = _piece_terms(piece.words, names, stop_words)
                self._remember(self._terms, key, terms)
            piece.terms = terms

    def _mark_centrality(self, pieces: list[_Piece]) -> None:
        # Each piece's term counts are kept (a previous summary's pieces come back in
        # every fold), and the joined text's counts are their sums.
        counts = []
        for piece in pieces:
            found = self._term_counts.get(piece.text)
            if found is None:
                found = _term_counts(piece.text)
                self._remember(self._term_counts, piece.text, found)
            counts.append(found)
        scores = _centrality_scores(counts)
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
    ) -> str:
        """Pick the most informative sentences of `previous_summary` + `messages`."""
        cap = max_tokens or 512
        pieces = self._pieces(messages, previous_summary)
        if not pieces:
            return ""
        self._mark_terms(pieces)
        if len(pieces) > 1:
            self._mark_centrality(pieces)
        chosen = self._select(pieces, cap)
        text = self._render(chosen)
        # Joined text can count differently from its parts: drop the weakest until it fits.
        while chosen and self.token_counter.count_text(text) > cap:
            weakest = min(chosen, key=lambda p: (self._value(p, set()), -p.order))
            chosen.remove(weakest)
            text = self._render(chosen)
        if not chosen:
            best = max(pieces, key=lambda p: self._value(p, set()))
            return self._truncate(self._render([best]), cap)
        self._produced[text] = tuple((p.role, p.text) for p in chosen)
        return text

    @staticmethod
    def _value(piece: _Piece, covered: set[str]) -> float:
        gain = sum(w for term, w in piece.terms.items() if term not in covered)
        cost = piece.tokens + _PIECE_OVERHEAD_TOKENS
        return gain * (1.0 + _CENTRALITY_BOOST * piece.centrality) / cost

    def _select(self, pieces: list[_Piece], cap: int) -> list[_Piece]:
        covered: set[str] = set()
        chosen: list[_Piece] = []
        used = 0
        # Lazy greedy: a piece's value only drops as terms get covered.
        heap = [(-self._value(p, covered), p.order) for p in pieces]
        heapq.heapify(heap)
        while heap:
            _, order = heapq.heappop(heap)
            piece = pieces[order]
            value = self._value(piece, covered)
            if value <= 0.0:
                continue
            if heap and value < -heap[0][0]:
                heapq.heappush(heap, (-value, order))
                continue
            cost = piece.tokens + _PIECE_OVERHEAD_TOKENS
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
