"""One TF-IDF similarity index for the whole package (scikit-learn).

The semantic cache, message de-duplication, tool retrieval and the extractive
summarizer all ask the same question, "which stored texts are most like this one?", so
they share this one index instead of each fitting its own vectorizer.

How it stays exact and fast while texts come and go:

- Texts are split into terms by scikit-learn's own analyzers (word n-grams and
  optionally ``char_wb`` 3-5 grams, built by ``CountVectorizer.build_analyzer``) and
  weighted exactly as ``TfidfVectorizer`` weights them (smooth IDF, optional sublinear
  TF, unit length). The vocabulary only grows on add, so no refit is ever needed to
  index a text, and there are no hash collisions.
- The index keeps a *snapshot* of the IDF. Every vector, stored or queried, is weighted
  with the same snapshot, so scores are true cosines in [0, 1].
- Stored vectors are kept pre-normalized in an inverted (term -> texts) sparse matrix:
  a query only touches the posting lists of its own terms.
- New texts go to a pending segment: its entries are found by binary search in a
  copy sorted by term, and the few added since that copy was merged by a scan; removed
  texts are tombstoned. A query folds both into the main matrix and refreshes the IDF once the
  changes reach 10% of the index (or the pending segment gets large), so refits are
  amortized and the IDF is never much more than 10% stale. ``refresh()`` makes it exact.
- Writes fold too, once tombstones outnumber the live texts: memory stays proportional
  to the live texts whatever the mix of queries and writes.
"""

from __future__ import annotations

import functools
import logging
import math
import operator
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Hashable, Iterable, Sequence
from dataclasses import dataclass
from itertools import chain, repeat
from typing import Any

import numpy as np
from numpy.typing import NDArray

from langchain_tokenopt.core.validation import finite_number, instance_of, shown
from langchain_tokenopt.errors import ArgumentTypeError, InvalidArgumentError

__all__ = ["TextIndex"]

logger = logging.getLogger(__name__)

_CHAR_NGRAM_RANGE = (3, 5)
# Share of the cosine given to character n-grams when a text has both kinds of terms
# (the word and character parts of a vector are normalized separately, then mixed).
_CHAR_WEIGHT = 0.5
# Fold pending changes into the main matrix (and refresh the IDF) once they reach this
# share of the indexed texts ...
_REFRESH_FRACTION = 0.1
# ... or once the brute-force pending segment holds more than this many non-zero
# weights (more with a larger main matrix, see `_pending_limit`).
_MIN_PENDING_NNZ = 1 << 14
# Pending entries past this many since the last merge are merged into the term-sorted
# copy that queries search (see `_Pending`).
_PENDING_TAIL = 8192
_PENDING_TAIL_MIN = 1024
# A query with at most this many terms, whose posting lists hold at most this many
# entries, is summed in Python (see `TextIndex._matches`).
_FEW_TERMS = 16
_FEW_POSTINGS = 2048
# Up to this many texts, a query's scores are summed in a dense array.
_DENSE_DOCS = 1 << 16
# `similarities` keeps the main texts' unit weights in one dense array up to this size.
_DENSE_WEIGHTS = 1 << 18
# Up to this many matches, top-k selection sorts them all (one numpy call).
_SORT_ALL = 512
# Above this many matches, top-k selection first prunes with a sampled lower bound.
_SAMPLE_MIN = 4096
# Queries keep the character n-grams of up to this many distinct words (`_char_grams`).
_GRAM_MEMO_WORDS = 4096
# add_many vectorizes this many texts at a time.
_ADD_CHUNK = 2048
# Forget terms no text uses any more once they are most of the vocabulary.
_MIN_PRUNE_TERMS = 4096
# A write folds the index once it holds more tombstones than this and than live texts.
_MIN_COMPACT_DEAD = 1024

_IntArray = NDArray[np.int64]
_FloatArray = NDArray[np.float64]
_BoolArray = NDArray[np.bool_]
_Analyzer = Callable[[str], list[str]]


@dataclass
class _Vectors:
    """Sparse rows in CSR layout: term ids, values, and which entries are char n-grams.

    Term ids are the vocabulary's; a term the vocabulary does not hold (only in
    queries) gets a negative id, the same one for every occurrence in one call
    (`_term_frequencies(number_unknown=False)`, for queries that never compare two
    unknown terms, gives every unknown term -1).
    """

    indptr: _IntArray
    columns: _IntArray
    values: _FloatArray
    is_char: _BoolArray

    def __len__(self) -> int:
        return len(self.indptr) - 1

    def rows(self) -> _IntArray:
        """The row of each entry."""
        result: _IntArray = np.repeat(np.arange(len(self)), np.diff(self.indptr))
        return result

    def select(self, keep: _BoolArray) -> _Vectors:
        """The rows where `keep` is True."""
        lengths = np.diff(self.indptr)
        entries = np.repeat(keep, lengths)
        return _Vectors(
            np.concatenate(([0], np.cumsum(lengths[keep]))).astype(np.int64),
            self.columns[entries],
            self.values[entries],
            self.is_char[entries],
        )

    @classmethod
    def stack(cls, parts: Sequence[_Vectors]) -> _Vectors:
        lengths = np.concatenate([np.diff(part.indptr) for part in parts])
        return cls(
            np.concatenate(([0], np.cumsum(lengths))).astype(np.int64),
            np.concatenate([part.columns for part in parts]),
            np.concatenate([part.values for part in parts]),
            np.concatenate([part.is_char for part in parts]),
        )

    @classmethod
    def empty(cls) -> _Vectors:
        return cls(np.zeros(1, np.int64), np.empty(0, np.int64), np.empty(0), np.empty(0, np.bool_))


class _Growable:
    """A numpy array that grows by doubling, so appends cost amortized O(1)."""

    def __init__(self, dtype: type[Any], first: Sequence[Any] = ()) -> None:
        self._data: NDArray[Any] = np.empty(max(256, len(first)), dtype)
        self._data[: len(first)] = first
        self.size = len(first)

    def extend(self, values: NDArray[Any]) -> None:
        end = self.size + len(values)
        if end > len(self._data):
            grown = np.empty(max(end, 2 * len(self._data)), self._data.dtype)
            grown[: self.size] = self._data[: self.size]
            self._data = grown
        self._data[self.size : end] = values
        self.size = end

    def view(self) -> NDArray[Any]:
        return self._data[: self.size]


@dataclass(frozen=True)
class _WeighedParts:
    """The query rows of `query_joined`'s parts, as `similarities` weighs them: each
    entry's term id, its row (the part's position) and its unit weight."""

    parts: tuple[str, ...]
    columns: _IntArray
    rows: _IntArray
    weights: _FloatArray


class _Pending:
    """Texts added since the last refresh, kept flat for a brute-force scan.

    Their unit weights are computed lazily, in one batch per query, for the rows
    added since the previous query. Once the unsorted tail of entries grows past
    `_PENDING_TAIL`, it is merged into a copy of the entries sorted by term, so a query
    finds most pending matches by binary search and scans only the short tail: a
    query's cost follows its own terms, not the size of the pending segment.
    """

    def __init__(self) -> None:
        self.keys: list[Hashable] = []
        self.row: dict[Hashable, int] = {}
        self.alive = _Growable(np.bool_)
        self.indptr = _Growable(np.int64, [0])
        self.columns = _Growable(np.int64)
        self.values = _Growable(np.float64)
        self.is_char = _Growable(np.bool_)
        self.entry_rows = _Growable(np.int64)
        self.weights = _Growable(np.float64)
        self.weighed_rows = 0
        # entries [0, posted), sorted by term id (stable: by entry within a term)
        self.posted = 0
        self.posted_terms: _IntArray = np.empty(0, np.int64)
        self.posted_entries: _IntArray = np.empty(0, np.int64)

    def __len__(self) -> int:
        return len(self.keys)

    def append(self, keys: Sequence[Hashable], tf: _Vectors) -> None:
        first = len(self.keys)
        for offset, key in enumerate(keys):
            self.row[key] = first + offset
        self.keys.extend(keys)
        self.alive.extend(np.ones(len(keys), np.bool_))
        self.indptr.extend(tf.indptr[1:] + self.columns.size)
        self.columns.extend(tf.columns)
        self.values.extend(tf.values)
        self.is_char.extend(tf.is_char)
        self.entry_rows.extend(tf.rows() + first)

    def tail_limit(self) -> int:
        """Unsorted entries a query may scan before they are merged in: a merge copies
        every posted entry, so the tail may grow with them, up to `_PENDING_TAIL`."""
        return min(_PENDING_TAIL, max(_PENDING_TAIL_MIN, self.posted // 8))

    def post(self) -> None:
        """Merge the entries added since the last call into the term-sorted arrays."""
        new_terms = self.columns.view()[self.posted :]
        order = _stable_order(new_terms, int(new_terms.max()) + 1 if new_terms.size else 0)
        sorted_terms = new_terms[order]
        at = np.searchsorted(self.posted_terms, sorted_terms, side="right")
        self.posted_terms = np.insert(self.posted_terms, at, sorted_terms)
        self.posted_entries = np.insert(self.posted_entries, at, order + self.posted)
        self.posted = self.columns.size

    def posted_with(self, terms: _IntArray) -> tuple[_IntArray, _IntArray]:
        """The posted entries holding each of `terms` (distinct), and how many per term."""
        low = np.searchsorted(self.posted_terms, terms, side="left")
        high = np.searchsorted(self.posted_terms, terms, side="right")
        lengths = high - low
        starts = np.cumsum(lengths) - lengths
        at = np.repeat(low - starts, lengths) + np.arange(int(lengths.sum()))
        entries: _IntArray = self.posted_entries[at]
        return entries, lengths

    def vectors(self, start_row: int = 0) -> _Vectors:
        """Rows from `start_row` on, as term frequencies."""
        indptr = self.indptr.view()[start_row:]
        start = int(indptr[0])
        return _Vectors(
            indptr - start,
            self.columns.view()[start:],
            self.values.view()[start:],
            self.is_char.view()[start:],
        )


def _stable_order(ids: _IntArray, n_ids: int) -> _IntArray:
    """`np.argsort(ids, kind="stable")` for ids in [0, `n_ids`), in linear time.

    numpy sorts 16-bit keys stably by radix, larger ones by timsort (ten times slower
    for the postings of one refresh). Ids are sorted by their low 16 bits, then stably
    by their high 16 bits, which keeps the first order among equal high bits: the order
    by id, then by position, which is what a stable sort gives, and it is unique.
    """
    if n_ids <= 1 << 16:
        order: _IntArray = np.argsort(ids.astype(np.uint16), kind="stable")
        return order
    if n_ids <= 1 << 32:
        low = np.argsort((ids & 0xFFFF).astype(np.uint16), kind="stable")
        high = np.argsort((ids[low] >> 16).astype(np.uint16), kind="stable")
        order = low[high]
        return order
    order = np.argsort(ids, kind="stable")
    return order


def _postings(
    tf: _Vectors, weights: _FloatArray, n_terms: int
) -> tuple[_IntArray, _IntArray, _FloatArray]:
    """The rows of `tf` (with their `weights`) turned into posting lists: (where each
    term's list starts, the texts, their weights), each list in text order.

    What `scipy.sparse.csr_matrix(...).tocsc()` gives for rows that never repeat a term,
    without its checks and conversions, which cost more than the work for the small
    indexes of one conversation (a test holds the two equal).
    """
    rows = tf.rows()
    order = _stable_order(tf.columns, n_terms)  # by term, then by text: rows ascend
    indptr = np.zeros(n_terms + 1, np.int64)
    np.cumsum(np.bincount(tf.columns, minlength=n_terms), out=indptr[1:])
    return indptr, rows[order], np.ascontiguousarray(weights[order], np.float64)


def _smooth_idf(df: _IntArray, n_docs: int) -> _FloatArray:
    # TfidfTransformer(smooth_idf=True): as if one extra text contained every term.
    result: _FloatArray = np.log((1.0 + n_docs) / (1.0 + df.astype(np.float64))) + 1.0
    return result


def _check_range(value: object, what: str) -> tuple[int, int]:
    """`value` as an n-gram range (min, max) with 1 <= min <= max, else ValueError."""
    if (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(n, int) and not isinstance(n, bool) for n in value)
        and 1 <= value[0] <= value[1]
    ):
        return int(value[0]), int(value[1])
    raise InvalidArgumentError(
        f"{what} must be (min, max) with 1 <= min <= max, got {shown(value)}"
    )


def _check_query_arguments(
    k: object, min_score: object, where: Callable[[Hashable], bool] | None
) -> None:
    if isinstance(k, bool) or not isinstance(k, int):
        raise ArgumentTypeError(f"k must be an int, got {type(k).__name__}")
    if k < 0:
        raise InvalidArgumentError(f"k must be >= 0, got {k}")
    finite_number(min_score, "min_score", hint="a similarity such as 0.2, or 0")
    if where is not None and not callable(where):
        raise ArgumentTypeError(f"where must be a function of a key, got {shown(where)}")


def _check_text(text: object, what: str = "text") -> str:
    if not isinstance(text, str):
        raise ArgumentTypeError(f"TextIndex {what} must be a str, got {type(text).__name__}")
    return text


@functools.lru_cache(maxsize=32)
def _analyzer(
    kind: str, ngram_range: tuple[int, int], lowercase: bool, stop_words: str | None
) -> _Analyzer:
    """scikit-learn's analyzer for one configuration, built once per process (building
    one checks the stop words every time; the analyzer itself keeps no state)."""
    # scikit-learn loads with the first index, not with the package.
    from sklearn.feature_extraction.text import CountVectorizer

    analyzer: _Analyzer = CountVectorizer(
        analyzer=kind, ngram_range=ngram_range, lowercase=lowercase, stop_words=stop_words
    ).build_analyzer()
    return analyzer


@functools.lru_cache(maxsize=32)
def _reads_word_by_word(analyzer: _Analyzer) -> bool:
    """Whether `analyzer`'s n-grams of a text are its whitespace-separated words'
    n-grams in a row, as scikit-learn's `char_wb` gives them (docs/internals.md): a
    probe of tricky words (context lowercasing, mixed whitespace) checks it."""
    words = ["Word", "ΟΔΟΣ.", "İx", "a", "--", "e-mail", "x" * 9]
    text = " \t\n".join(words) + "\u3000end"
    return analyzer(text) == [gram for word in [*words, "end"] for gram in analyzer(word)]


def _join_words(part_terms: list[list[str]], longest: int) -> list[str]:
    """The word n-grams (of 1 to `longest` words, 1 or 2) of texts joined by spaces, from
    each text's own (`part_terms`, as the analyzer gives them).

    A text's n-grams are its k words, then its k - 1 pairs of neighbours; the joined
    text's are every text's words, then their pairs, with a pair across each seam
    between texts that have words.
    """
    if longest == 1:
        return list(chain.from_iterable(part_terms))
    singles: list[str] = []
    pairs: list[str] = []
    last: str | None = None
    for terms in part_terms:
        n_words = (len(terms) + 1) // 2
        if not n_words:
            continue
        singles.extend(terms[:n_words])
        if last is not None:
            pairs.append(f"{last} {terms[0]}")
        pairs.extend(terms[n_words:])
        last = terms[n_words - 1]
    return singles + pairs


@functools.lru_cache(maxsize=32)
def _word_join_size(analyzer: _Analyzer, ngram_range: tuple[int, int]) -> int | None:
    """The longest word n-gram (1 or 2) when `analyzer`'s n-grams of texts joined by
    spaces are `_join_words` of theirs, as scikit-learn's word analyzer gives them
    (docs/internals.md), else None: n-grams of 1 to 1 or 2 words, checked once on
    tricky parts (context lowercasing, stop words, parts without words)."""
    if ngram_range not in ((1, 1), (1, 2)):
        return None
    longest = ngram_range[1]
    parts = ["Word ΟΔΟΣ", "ΟΔΟΣ.", "", " ", "İx e-mail", "a", "the", "x" * 9 + " and the", "end"]
    for start in range(len(parts)):
        probe = parts[start:] + parts[:start]
        joined = analyzer(" ".join(probe))
        if joined != _join_words([analyzer(part) for part in probe], longest):
            return None
    return longest


class TextIndex:
    """Incremental TF-IDF index with top-k cosine queries.

    Args:
        char_ngrams: also index character n-grams (char_wb) for fuzzy matching.
        char_ngram_range: their sizes, default (3, 5). Longer grams are rarer, so
            (4, 5) touches about half the stored weights per query.
        word_ngram_range: word n-gram range, default (1, 2).
        lowercase: fold case before indexing.
        stop_words: None or "english".
        sublinear_tf: use 1 + log(tf).

    Keys are any hashable the caller chooses; adding an existing key replaces it, and a
    removed key is never returned again. Scores are cosines in [0, 1] under the index's
    TF-IDF weighting (the same numbers scikit-learn's ``TfidfVectorizer`` gives once the
    IDF is fresh); only texts sharing at least one term with the query (score > 0) are
    returned. Ties rank the earlier-added text first. Results are deterministic, and the
    index is safe to share between threads (one lock serializes changes and queries).

    With ``char_ngrams=True`` a score is the mean of the word cosine and the character
    n-gram cosine (a text with only one kind of term uses that kind alone).

    Query terms that no indexed text contains still count in the query's norm (with the
    IDF of a term of document frequency 0), so a query with novel words scores lower.
    ``TfidfVectorizer.transform`` drops them instead; the ranking is the same either
    way, and a similarity threshold needs the lower score.

    Example:
        >>> index = TextIndex(char_ngrams=True)
        >>> index.add_many([("w", "weather in Paris today"), ("s", "stock prices fell")])
        >>> [key for key, _ in index.query("wether in paris", k=1)]
        ['w']
        >>> index.remove("w")
        True
        >>> index.query("weather in Paris", k=1)
        []
    """

    def __init__(
        self,
        *,
        char_ngrams: bool = False,
        word_ngram_range: tuple[int, int] = (1, 2),
        lowercase: bool = True,
        stop_words: str | None = None,
        sublinear_tf: bool = True,
        char_ngram_range: tuple[int, int] = _CHAR_NGRAM_RANGE,
    ) -> None:
        low, high = _check_range(word_ngram_range, "word_ngram_range")
        char_low, char_high = _check_range(char_ngram_range, "char_ngram_range")
        # the analyzers are shared per configuration (an lru_cache), so its parts must be
        # hashable: a flag that is not a bool is a typed error, not a TypeError from the cache
        lowercase = bool(instance_of(lowercase, "lowercase", (bool, int), "a bool"))
        if stop_words is not None and not isinstance(stop_words, str):
            raise InvalidArgumentError(
                f"stop_words must be None or 'english', got {shown(stop_words)}"
            )
        if stop_words not in (None, "english"):
            raise InvalidArgumentError(
                f"stop_words must be None or 'english', got {shown(stop_words)}"
            )
        self._char_ngrams = char_ngrams
        self._sublinear_tf = sublinear_tf
        self._word_analyzer: _Analyzer = _analyzer("word", (low, high), lowercase, stop_words)
        self._char_analyzer: _Analyzer | None = (
            _analyzer("char_wb", (char_low, char_high), lowercase, None) if char_ngrams else None
        )
        # queries may read character n-grams word by word (`query_joined`, `_char_grams`)
        self._char_by_word = self._char_analyzer is not None and _reads_word_by_word(
            self._char_analyzer
        )
        # ... and word n-grams part by part (`_join_words`): the longest n-gram (1 or 2),
        # or None when they cannot be
        self._word_joins = _word_join_size(self._word_analyzer, (low, high))
        self._lock = threading.RLock()
        # each word's character n-grams, for queries (they do not depend on the vocabulary)
        self._word_grams: dict[str, list[str]] = {}
        self._reset()

    # ----------------------------------------------------------------- state
    def _reset(self) -> None:
        self._texts: dict[Hashable, str] = {}
        # vocabulary: one id space shared by word and char n-gram terms
        self._word_ids: dict[str, int] = {}
        self._char_ids: dict[str, int] = {}
        self._n_terms = 0
        # IDF snapshot, by term id; ids past its end (newer terms) have df 0
        self._idf: _FloatArray = np.empty(0)
        self._unseen_idf = 1.0
        # main segment: texts folded in at the last refresh, in insertion order
        self._main_keys: list[Hashable] = []
        self._main_row: dict[Hashable, int] = {}
        self._main_alive: _BoolArray = np.empty(0, np.bool_)
        self._main_dead = 0
        self._main_tf = _Vectors.empty()
        self._main_indptr: _IntArray = np.zeros(1, np.int64)
        self._main_bounds: list[int] = [0]  # the same, as a list (see `_matches`)
        self._main_texts: _IntArray = np.empty(0, np.int64)
        self._main_weights: _FloatArray = np.empty(0)
        # each main row's scale of word and of char n-gram weights (see `_normalize`)
        self._main_scales: tuple[_FloatArray, _FloatArray] = (np.empty(0), np.empty(0))
        # the main texts' unit weights as one dense array, when small (`_main_dense`)
        self._main_dense_weights: _FloatArray | None = None
        # pending segment: texts added since, scored by brute force
        self._pending = _Pending()
        # scratch: the query's weights by term id, zero between queries
        self._query_table: _FloatArray = np.zeros(0)
        # the character n-grams of the last `query_joined` parts, by part (they do not
        # depend on the vocabulary), for a `similarities` call over the same parts
        self._part_grams: dict[str, list[str]] = {}
        # ... and those parts weighed (they do: `add_many`, which grows the vocabulary,
        # and `_rebuild`, which refreshes the IDF, forget them)
        self._weighed_parts: _WeighedParts | None = None
        self._changes = 0  # adds + removes since the IDF snapshot
        self._dead = 0  # tombstoned rows, main and pending

    # ------------------------------------------------------------ vectorizing
    def _term_frequencies(
        self,
        texts: Sequence[str],
        *,
        grow: bool,
        number_unknown: bool = True,
        char_grams: Sequence[list[str] | None] = (),
        word_terms: Sequence[list[str] | None] = (),
        seen_terms: list[Collection[str]] | None = None,
    ) -> _Vectors:
        """(Sublinear) term frequencies of `texts`; `grow` adds new terms to the vocabulary.

        `char_grams[i]` and `word_terms[i]`, when given and not None, are text i's
        character n-grams and word n-grams as the analyzers give them (read before, see
        `query_joined`). `seen_terms`, when given, gets each text's distinct word terms
        appended.

        Without `grow`, a term the vocabulary does not hold gets its own negative id, or
        -1 for all of them without `number_unknown`: a query scored against stored texts
        never tells its unknown terms apart (they only count in its norm), and numbering
        them one by one is a large part of analysing a long query against a small
        vocabulary (a request against a dozen tools).

        Must be called under the lock: it reads (and with `grow`, changes) the vocabulary.
        """
        blocks: list[tuple[_Analyzer, dict[str, int], bool]] = [
            (self._word_analyzer, self._word_ids, False)
        ]
        if self._char_analyzer is not None:
            blocks.append((self._char_analyzer, self._char_ids, True))
        strangers: dict[tuple[bool, str], int] = {}
        columns: list[int] = []
        counts: list[int] = []
        block_sizes: list[int] = []  # entries of each text's blocks, in `blocks` order
        indptr = [0]
        for i, text in enumerate(texts):
            grams = char_grams[i] if i < len(char_grams) else None
            words = word_terms[i] if i < len(word_terms) else None
            for analyzer, ids, is_char in blocks:
                given = grams if is_char else words
                tally = Counter(given if given is not None else analyzer(text))
                if seen_terms is not None and not is_char:
                    seen_terms.append(tally.keys())
                found = list(map(ids.get, tally, repeat(-1, len(tally))))
                if -1 in found and grow:
                    for j, term in enumerate(tally):
                        if found[j] == -1:
                            found[j] = ids[term] = self._n_terms
                            self._n_terms += 1
                elif number_unknown and -1 in found:
                    # a query's unknown terms: the same negative id for every occurrence in
                    # one call, never a stored text's
                    for j, term in enumerate(tally):
                        if found[j] == -1:
                            found[j] = strangers.setdefault((is_char, term), -2 - len(strangers))
                columns.extend(found)
                counts.extend(tally.values())
                block_sizes.append(len(tally))
            indptr.append(len(columns))
        values = np.fromiter(counts, np.float64, len(counts))
        if self._sublinear_tf:
            values = 1.0 + np.log(values)
        block_is_char = np.array([is_char for _, _, is_char in blocks] * len(texts), np.bool_)
        return _Vectors(
            np.array(indptr, np.int64),
            np.fromiter(columns, np.int64, len(columns)),
            values,
            np.repeat(block_is_char, block_sizes),
        )

    def _weigh(self, tf: _Vectors) -> tuple[_FloatArray, _IntArray]:
        """Unit TF-IDF weights of `tf` under the IDF snapshot, and each entry's row in it.

        The row is -1 for a term the snapshot does not hold.
        """
        in_snapshot = (tf.columns >= 0) & (tf.columns < len(self._idf))
        snapshot_rows = np.where(in_snapshot, tf.columns, -1)
        idf = (
            np.where(in_snapshot, self._idf[np.where(in_snapshot, tf.columns, 0)], self._unseen_idf)
            if len(self._idf)
            else np.full(len(tf.columns), self._unseen_idf)
        )
        weights = tf.values * idf
        self._normalize(tf, weights)
        return weights, snapshot_rows

    def _normalize(self, tf: _Vectors, weights: _FloatArray) -> tuple[_FloatArray, _FloatArray]:
        """Scale TF-IDF `weights` in place so each row is a unit vector (see class doc).

        Returns each row's scale of word and of character n-gram weights.
        """
        n_rows = len(tf)
        if n_rows == 1 and self._char_analyzer is None:
            # one query: the same sums in the same order as below, without the bookkeeping
            norm = math.sqrt(_in_order_sum((weights * weights).tolist()))
            row_scale = 1.0 / norm if norm else math.inf
            weights *= row_scale
            return np.array([row_scale]), np.array([row_scale])
        rows = tf.rows()
        squares = weights * weights
        if self._char_analyzer is None:
            norms = np.sqrt(np.bincount(rows, weights=squares, minlength=n_rows))
            with np.errstate(divide="ignore"):
                scale = 1.0 / norms
            weights *= scale[rows]
            return scale, scale
        word_norms = np.sqrt(
            np.bincount(rows, weights=np.where(tf.is_char, 0.0, squares), minlength=n_rows)
        )
        char_norms = np.sqrt(
            np.bincount(rows, weights=np.where(tf.is_char, squares, 0.0), minlength=n_rows)
        )
        word_share = np.where(word_norms > 0, 1.0 - _CHAR_WEIGHT, 0.0)
        char_share = np.where(char_norms > 0, _CHAR_WEIGHT, 0.0)
        total = word_share + char_share
        total[total == 0] = 1.0
        with np.errstate(divide="ignore", invalid="ignore"):
            word_scale = np.sqrt(word_share / total) / word_norms
            char_scale = np.sqrt(char_share / total) / char_norms
        weights *= np.where(tf.is_char, char_scale[rows], word_scale[rows])
        return word_scale, char_scale

    # --------------------------------------------------------------- changes
    def add(self, key: Hashable, text: str) -> None:
        """Index `text` under `key` (replacing any previous text of `key`)."""
        self.add_many([(key, text)])

    def add_many(
        self,
        items: Iterable[tuple[Hashable, str]],
        *,
        seen_words: Callable[[Hashable, Collection[str]], None] | None = None,
    ) -> None:
        """Index many texts at once (faster than repeated `add`).

        A key given twice keeps its last text. Raises TypeError, and indexes nothing,
        when a text is not a str or a key is not hashable.

        `seen_words`, when given, is called with each indexed key (in the order they
        are indexed: a key given twice in its last place) and the distinct word terms
        (word n-grams) its text was indexed under, so a caller that needs them does not
        read the text again. It runs under the index's lock and must not use the index.

        Example:
            >>> index = TextIndex(word_ngram_range=(1, 1), stop_words="english")
            >>> seen = {}
            >>> def note(key, words):
            ...     seen[key] = sorted(words)
            >>> index.add_many([(1, "The red apples, red pears")], seen_words=note)
            >>> seen
            {1: ['apples', 'pears', 'red']}
        """
        latest: dict[Hashable, str] = {}
        for key, text in items:
            try:
                hash(key)
            except TypeError:
                raise ArgumentTypeError(
                    f"TextIndex keys must be hashable (str, int, tuple...), got "
                    f"{type(key).__name__}"
                ) from None
            _check_text(text)
            latest.pop(key, None)
            latest[key] = text
        if not latest:
            return
        keys = list(latest)
        texts = list(latest.values())
        seen_terms: list[Collection[str]] | None = [] if seen_words is not None else None
        with self._lock:
            self._weighed_parts = None
            # in chunks: the per-term Python lists of a huge batch would cost ~40 bytes
            # per term occurrence at once
            chunks = [
                (
                    keys[start : start + _ADD_CHUNK],
                    self._term_frequencies(
                        texts[start : start + _ADD_CHUNK], grow=True, seen_terms=seen_terms
                    ),
                )
                for start in range(0, len(keys), _ADD_CHUNK)
            ]
            for key, text in latest.items():
                self._discard(key)
                self._texts[key] = text
            for chunk_keys, tf in chunks:
                self._pending.append(chunk_keys, tf)
            self._changes += len(latest)
            self._compact_if_wasteful()
            if seen_words is not None and seen_terms is not None:
                for key, terms in zip(keys, seen_terms, strict=True):
                    seen_words(key, terms)

    def remove(self, key: Hashable) -> bool:
        """Forget `key`; True if it was indexed."""
        with self._lock:
            try:
                found = self._discard(key)
            except TypeError:  # unhashable: never indexed
                return False
            if found:
                self._changes += 1
                self._compact_if_wasteful()
            return found

    def _compact_if_wasteful(self) -> None:
        """Fold tombstones away once they outnumber the live texts (amortized O(1) per
        removal: a fold costs about the live size and follows as many removals)."""
        if self._dead > max(_MIN_COMPACT_DEAD, len(self._texts)):
            self._rebuild()

    def _discard(self, key: Hashable) -> bool:
        if self._texts.pop(key, None) is None:
            return False
        self._dead += 1
        row = self._main_row.pop(key, None)
        if row is not None:
            self._main_alive[row] = False
            self._main_dead += 1
        else:
            self._pending.alive.view()[self._pending.row.pop(key)] = False
        return True

    def clear(self) -> None:
        """Forget every text."""
        with self._lock:
            self._reset()

    def refresh(self) -> None:
        """Fold pending changes in now and recompute the IDF exactly.

        Queries do this on their own once changes reach 10% of the index; call it to get
        exactly the scores a from-scratch build of the current texts would give.
        """
        with self._lock:
            if self._changes:
                self._rebuild()

    def _maybe_refresh(self) -> None:
        if self._changes and (
            self._changes >= _REFRESH_FRACTION * len(self._main_row)
            or self._pending.columns.size >= self._pending_limit()
        ):
            self._rebuild()

    def _rebuild(self) -> None:
        """Fold the pending segment and tombstones into a fresh main matrix and IDF."""
        started = time.perf_counter()
        if self._dead:
            main = self._main_tf.select(self._main_alive) if self._main_dead else self._main_tf
            pending_alive = self._pending.alive.view()
            tf = _Vectors.stack([main, self._pending.vectors().select(pending_alive)])
            keys = [k for k, alive in zip(self._main_keys, self._main_alive, strict=True) if alive]
            keys += [k for k, alive in zip(self._pending.keys, pending_alive, strict=True) if alive]
        else:  # nothing tombstoned: every row stays, in order
            tf = _Vectors.stack([self._main_tf, self._pending.vectors()])
            keys = [*self._main_keys, *self._pending.keys]
        n_docs = len(keys)

        # A row never repeats a term, so a term's entry count is its document frequency.
        df = np.bincount(tf.columns, minlength=self._n_terms).astype(np.int64)
        if self._n_terms > max(_MIN_PRUNE_TERMS, 2 * np.count_nonzero(df)):
            tf, df = self._prune_vocabulary(tf, df)
        self._idf = _smooth_idf(df, n_docs)
        self._unseen_idf = float(_smooth_idf(np.zeros(1, np.int64), n_docs)[0])
        weights = tf.values * self._idf[tf.columns]
        self._main_scales = self._normalize(tf, weights)
        # the postings (term -> texts) as flat arrays, for queries (see `_matches`)
        self._main_indptr, self._main_texts, self._main_weights = _postings(
            tf, weights, len(self._idf)
        )
        self._main_bounds = self._main_indptr.tolist()
        self._main_tf = tf
        self._main_keys = keys
        self._main_row = {key: i for i, key in enumerate(keys)}
        self._main_alive = np.ones(n_docs, np.bool_)
        self._main_dead = 0
        self._pending = _Pending()
        self._weighed_parts = None
        self._main_dense_weights = None
        self._changes = 0
        self._dead = 0
        logger.debug(
            "TextIndex refreshed: %d texts, %d terms, %d weights in %.1f ms",
            n_docs,
            self._n_terms,
            len(weights),
            (time.perf_counter() - started) * 1000,
        )

    def _prune_vocabulary(self, tf: _Vectors, df: _IntArray) -> tuple[_Vectors, _IntArray]:
        """Drop terms no text uses any more (after removals) and renumber the rest."""
        used = df > 0
        new_id = np.cumsum(used) - 1
        self._word_ids = {t: int(new_id[i]) for t, i in self._word_ids.items() if used[i]}
        self._char_ids = {t: int(new_id[i]) for t, i in self._char_ids.items() if used[i]}
        self._n_terms = int(used.sum())
        logger.debug("TextIndex vocabulary pruned to %d terms", self._n_terms)
        tf = _Vectors(tf.indptr, new_id[tf.columns].astype(np.int64), tf.values, tf.is_char)
        return tf, df[used]

    # --------------------------------------------------------------- queries
    def query(
        self,
        text: str,
        k: int = 5,
        *,
        min_score: float = 0.0,
        where: Callable[[Hashable], bool] | None = None,
    ) -> list[tuple[Hashable, float]]:
        """The `k` most similar keys with cosine scores in [0, 1], best first.

        `where` keeps only keys for which it returns True; scores below
        `min_score` are dropped.
        """
        return self.query_many([text], k, min_score=min_score, where=where)[0]

    def query_many(
        self,
        texts: Sequence[str],
        k: int = 5,
        *,
        min_score: float = 0.0,
        where: Callable[[Hashable], bool] | None = None,
    ) -> list[list[tuple[Hashable, float]]]:
        """`query` for each of `texts`, under one lock and one refresh check.

        Example:
            >>> index = TextIndex()
            >>> index.add_many([(1, "red apples"), (2, "green pears")])
            >>> [[key for key, _ in hits] for hits in index.query_many(["apples", "pears"])]
            [[1], [2]]
        """
        if isinstance(texts, str):
            raise ArgumentTypeError("query_many takes a sequence of str, not one str; use query()")
        texts = [_check_text(text, "query") for text in texts]
        _check_query_arguments(k, min_score, where)
        with self._lock:
            if k == 0 or not self._texts:
                return [[] for _ in texts]
            self._maybe_refresh()
            if len(texts) == 1 and self._char_analyzer is None:
                query = self._word_query(texts[0])
                if len(query[0]) <= _FEW_TERMS:
                    found = self._few_matches(*query)
                    if found is not None:
                        return [self._top_few(found, k, min_score, where)]
            tf = self._term_frequencies(texts, grow=False, number_unknown=False)
            return self._top_k_of(tf, k, min_score, where)

    def query_joined(
        self,
        parts: Sequence[str],
        k: int = 5,
        *,
        min_score: float = 0.0,
        where: Callable[[Hashable], bool] | None = None,
    ) -> list[tuple[Hashable, float]]:
        """`query(" ".join(parts))`, reading each part once: the parts are weighed with
        the joined text, and a `similarities(parts, keys)` call that follows, with
        nothing added or refreshed in between, reuses them (ToolRetriever scores a
        request whole, then sentence by sentence).

        A `char_wb` n-gram never spans whitespace, so the joined text's n-grams are its
        parts' one after the other; its word n-grams are its parts' words, then their
        pairs with one across each seam (each checked once per analyzer; without
        character n-grams, or should that not hold, the joined text is read as `query`
        reads it): the results are `query`'s, bit for bit.

        Example:
            >>> index = TextIndex(char_ngrams=True)
            >>> index.add_many([(1, "red apples"), (2, "green pears")])
            >>> index.query_joined(["green", "pears"]) == index.query("green pears")
            True
        """
        if isinstance(parts, str):
            raise ArgumentTypeError("query_joined takes a sequence of str, not one str")
        parts = [_check_text(part, "query part") for part in parts]
        _check_query_arguments(k, min_score, where)
        if not self._char_by_word:  # nothing to reuse: read the joined text
            return self.query_many([" ".join(parts)], k, min_score=min_score, where=where)[0]
        with self._lock:
            if k == 0 or not self._texts:
                return []
            self._maybe_refresh()
            self._part_grams = {part: self._char_grams(part) for part in parts}
            grams = [self._part_grams[part] for part in parts]
            words = [self._word_analyzer(part) for part in parts]
            # the joined text and its parts in one go: each row is weighed as it would be
            # alone (a row's norms are summed over its own entries, in order)
            tf = self._term_frequencies(
                [" ".join(parts), *parts],
                grow=False,
                number_unknown=False,
                char_grams=[list(chain.from_iterable(grams)), *grams],
                word_terms=[
                    _join_words(words, self._word_joins) if self._word_joins else None,
                    *words,
                ],
            )
            weights, snapshot_rows = self._weigh(tf)
            start = int(tf.indptr[1])
            self._weighed_parts = _WeighedParts(
                tuple(parts), tf.columns[start:], tf.rows()[start:] - 1, weights[start:]
            )
            return self._top_k_weighed(tf, weights, snapshot_rows, 1, k, min_score, where)[0]

    def _char_grams(self, text: str) -> list[str]:
        """The character n-grams of `text` as its analyzer gives them: its words' n-grams
        one after the other (a `char_wb` n-gram never spans whitespace), each word read
        once until the memo fills (`_GRAM_MEMO_WORDS`) and starts over. Under the lock."""
        analyzer = self._char_analyzer
        assert analyzer is not None
        memo = self._word_grams
        words = text.split()
        missing = set(words).difference(memo)
        if len(memo) + len(missing) > _GRAM_MEMO_WORDS:
            memo.clear()
            missing = set(words)
        for word in missing:
            memo[word] = analyzer(word)
        return list(chain.from_iterable(map(memo.__getitem__, words)))

    def _top_k_of(
        self,
        tf: _Vectors,
        k: int,
        min_score: float,
        where: Callable[[Hashable], bool] | None,
    ) -> list[list[tuple[Hashable, float]]]:
        """The top `k` keys of each query row of `tf`. Must be called under the lock."""
        weights, snapshot_rows = self._weigh(tf)
        return self._top_k_weighed(tf, weights, snapshot_rows, len(tf), k, min_score, where)

    def _top_k_weighed(
        self,
        tf: _Vectors,
        weights: _FloatArray,
        snapshot_rows: _IntArray,
        n_rows: int,
        k: int,
        min_score: float,
        where: Callable[[Hashable], bool] | None,
    ) -> list[list[tuple[Hashable, float]]]:
        """`_top_k_of` for the first `n_rows` rows of `tf`, given what `_weigh` gives."""
        results = []
        for i in range(n_rows):
            start, end = int(tf.indptr[i]), int(tf.indptr[i + 1])
            scores, positions = self._matches(
                tf.columns[start:end], snapshot_rows[start:end], weights[start:end], min_score
            )
            results.append(self._select(scores, positions, k, where))
        return results

    def _word_query(self, text: str) -> tuple[list[int], list[int], list[float]]:
        """One query's term ids, rows in the IDF snapshot and unit weights, as
        `_term_frequencies` and `_weigh` give them (the same operations on the same
        numbers), without their bookkeeping for many texts and character n-grams.
        Must be called under the lock, for an index without character n-grams."""
        tally = Counter(self._word_analyzer(text))
        ids = self._word_ids
        columns: list[int] = []
        unknown = 0
        for term in tally:
            term_id = ids.get(term)
            if term_id is None:  # an unknown term: its own negative id (see there)
                term_id = -2 - unknown
                unknown += 1
            columns.append(term_id)
        n_snapshot = len(self._idf)
        snapshot_rows = [column if 0 <= column < n_snapshot else -1 for column in columns]
        if self._sublinear_tf:
            values: list[float] = (
                1.0 + np.log(np.array(list(tally.values()), np.float64))
            ).tolist()
        else:
            values = [float(count) for count in tally.values()]
        # float64 products in Python are numpy's, bit for bit: a few terms cost less so
        idf = self._idf
        unseen = self._unseen_idf
        weights = [
            value * (float(idf[row]) if row >= 0 else unseen)
            for value, row in zip(values, snapshot_rows, strict=True)
        ]
        norm = math.sqrt(_in_order_sum([weight * weight for weight in weights]))
        scale = 1.0 / norm if norm else math.inf
        return columns, snapshot_rows, [weight * scale for weight in weights]

    def _matches(
        self, columns: _IntArray, snapshot_rows: _IntArray, weights: _FloatArray, min_score: float
    ) -> tuple[_FloatArray, _IntArray]:
        """Cosine and position of every live text sharing a term with one query (see
        `_summed_matches`): summed in Python when its terms have few postings, where
        each numpy call would cost more than the elements it moves."""
        if len(columns) <= _FEW_TERMS:
            found = self._few_matches(columns.tolist(), snapshot_rows.tolist(), weights.tolist())
            if found is not None:
                return _filtered(found, min_score, self._alive_at if self._dead else None)
        return self._summed_matches(columns, snapshot_rows, weights, min_score)

    def _few_matches(
        self, columns: list[int], snapshot_rows: list[int], weights: list[float]
    ) -> dict[int, float] | None:
        """The sums of `_summed_matches` (before its filters) by position, each summed in
        the same order from the same products, so the same bit for bit; None when the
        query's posting lists hold more than `_FEW_POSTINGS` entries."""
        main_spans: list[tuple[int, int, float]] = []
        if self._main_keys:
            bounds = self._main_bounds
            main_spans = [
                (bounds[row], bounds[row + 1], weight)
                for row, weight in zip(snapshot_rows, weights, strict=True)
                if row >= 0
            ]
        size = sum(end - start for start, end, _ in main_spans)
        pending = self._pending
        known = [(term, weight) for term, weight in zip(columns, weights, strict=True) if term >= 0]
        posted_spans: list[tuple[int, int, float]] = []
        if len(pending) and known:
            if pending.columns.size - pending.posted > pending.tail_limit():
                pending.post()
            if pending.posted:
                # integer terms: the right end of term t is the left end of t + 1
                ends = np.searchsorted(
                    pending.posted_terms, [edge for term, _ in known for edge in (term, term + 1)]
                ).tolist()
                posted_spans = [
                    (ends[2 * i], ends[2 * i + 1], weight) for i, (_, weight) in enumerate(known)
                ]
                size += sum(end - start for start, end, _ in posted_spans)
        if size > _FEW_POSTINGS:
            return None
        sums: dict[int, float] = {}
        if main_spans:
            texts, text_weights = self._main_texts, self._main_weights
            _add_spans(
                sums,
                main_spans,
                np.concatenate([texts[start:end] for start, end, _ in main_spans]).tolist(),
                np.concatenate([text_weights[start:end] for start, end, _ in main_spans]).tolist(),
            )
        if not len(pending) or not known:
            return sums
        pending_weights = self._pending_weights()
        entry_rows = pending.entry_rows.view()
        n_main = len(self._main_keys)
        if posted_spans:
            entries = np.concatenate(
                [pending.posted_entries[start:end] for start, end, _ in posted_spans]
            )
            _add_spans(
                sums,
                posted_spans,
                (entry_rows[entries] + n_main).tolist(),
                pending_weights[entries].tolist(),
            )
        get = sums.get
        if pending.posted < pending.columns.size:
            table = self._scratch_table()
            terms = [term for term, _ in known]
            table[terms] = [weight for _, weight in known]
            tail_weights = table[pending.columns.view()[pending.posted :]]
            table[terms] = 0.0
            hits = np.flatnonzero(tail_weights)
            for row, entry_weight, weight in zip(
                entry_rows[pending.posted + hits].tolist(),
                pending_weights[pending.posted + hits].tolist(),
                tail_weights[hits].tolist(),
                strict=True,
            ):
                sums[row + n_main] = get(row + n_main, 0.0) + entry_weight * weight
        return sums

    def _top_few(
        self,
        sums: dict[int, float],
        k: int,
        min_score: float,
        where: Callable[[Hashable], bool] | None,
    ) -> list[tuple[Hashable, float]]:
        """What `_select` picks from `_filtered(sums, ...)`, without building arrays for
        a few matches: the `k` best scores (capped at 1.0), earlier position first on
        ties, among live keys passing `where`."""
        if sums and max(sums.values()) > 1.0:  # rounding: capped scores tie
            sums = {position: min(score, 1.0) for position, score in sums.items()}
        # by score, best first; a stable sort keeps ascending positions among ties
        ranked = sorted(sorted(sums), key=sums.__getitem__, reverse=True)
        accepted: list[tuple[Hashable, float]] = []
        for position in ranked:
            score = sums[position]
            if score < min_score:
                break
            if self._dead and not self._alive_at(position):
                continue
            key = self._key_at(position)
            if where is None or where(key):
                accepted.append((key, score))
                if len(accepted) == k:
                    break
        return accepted

    def _alive_at(self, position: int) -> bool:
        n_main = len(self._main_keys)
        if position < n_main:
            return bool(self._main_alive[position])
        return bool(self._pending.alive.view()[position - n_main])

    def _summed_matches(
        self, columns: _IntArray, snapshot_rows: _IntArray, weights: _FloatArray, min_score: float
    ) -> tuple[_FloatArray, _IntArray]:
        """Cosine and position (main row, or main size + pending row) of every live text
        that shares a term with one query and scores at least `min_score`.

        The query is its term ids (`columns`), their rows in the IDF snapshot
        (`snapshot_rows`, -1 when not there) and unit `weights`. A query has few terms,
        so its cosines are the sums of its terms' postings, each scaled by the query's
        weight of the term: main postings straight from the term -> texts arrays,
        pending ones by binary search in their term-sorted copy plus a scan of the short
        unsorted tail; everything is summed in one pass, no sparse matrix is built.
        """
        n_main = len(self._main_keys)
        texts: list[_IntArray] = []
        contributions: list[_FloatArray] = []
        in_main = snapshot_rows >= 0
        terms = snapshot_rows[in_main]
        if n_main and len(terms):
            at, indptr = _entries_of(self._main_indptr, terms)
            texts.append(self._main_texts[at])
            contributions.append(
                self._main_weights[at] * np.repeat(weights[in_main], np.diff(indptr))
            )
        pending = self._pending
        if len(pending):
            known = columns >= 0
            terms, term_weights = columns[known], weights[known]
            pending_weights = self._pending_weights()
            entry_rows = pending.entry_rows.view()
            if pending.columns.size - pending.posted > pending.tail_limit():
                pending.post()
            if pending.posted:
                entries, per_term = pending.posted_with(terms)
                texts.append(entry_rows[entries] + n_main)
                contributions.append(pending_weights[entries] * np.repeat(term_weights, per_term))
            if pending.posted < pending.columns.size:
                table = self._scratch_table()
                table[terms] = term_weights
                tail_weights = table[pending.columns.view()[pending.posted :]]
                table[terms] = 0.0
                hits = np.flatnonzero(tail_weights)
                texts.append(entry_rows[pending.posted + hits] + n_main)
                contributions.append(pending_weights[pending.posted + hits] * tail_weights[hits])
        if not texts:
            return np.empty(0), np.empty(0, np.int64)
        all_texts = texts[0] if len(texts) == 1 else np.concatenate(texts)
        all_contributions = contributions[0] if len(texts) == 1 else np.concatenate(contributions)
        scores, positions = _sum_by_text(all_texts, all_contributions, n_main + len(pending))
        if self._dead:
            alive = np.empty(len(positions), np.bool_)
            main = positions < n_main
            alive[main] = self._main_alive[positions[main]]
            alive[~main] = pending.alive.view()[positions[~main] - n_main]
            positions, scores = positions[alive], scores[alive]
        if min_score > 0:
            keep = scores >= min_score
            positions, scores = positions[keep], scores[keep]
        return scores, positions.astype(np.int64, copy=False)

    def _pending_limit(self) -> int:
        """Pending weights allowed before a refresh: a scan must stay cheap next to the
        main query, and a refresh (which costs about the main matrix's size) rare."""
        return max(_MIN_PENDING_NNZ, int(64 * math.sqrt(len(self._main_tf.columns))))

    def _pending_weights(self) -> _FloatArray:
        """Unit weights of every pending entry, weighing the rows added since last time."""
        pending = self._pending
        if pending.weighed_rows < len(pending):
            weights, _ = self._weigh(pending.vectors(pending.weighed_rows))
            pending.weights.extend(weights)
            pending.weighed_rows = len(pending)
        weights_view: _FloatArray = pending.weights.view()
        return weights_view

    def _scratch_table(self) -> _FloatArray:
        """The scratch array indexed by term id, zero between uses and grown by doubling
        to cover every term. Use it under the lock and zero what you set."""
        if len(self._query_table) < self._n_terms:
            self._query_table = np.zeros(max(self._n_terms, 2 * len(self._query_table)))
        return self._query_table

    def _key_at(self, position: int) -> Hashable:
        n_main = len(self._main_keys)
        if position < n_main:
            return self._main_keys[position]
        return self._pending.keys[position - n_main]

    def _select(
        self,
        scores: _FloatArray,
        positions: _IntArray,
        k: int,
        where: Callable[[Hashable], bool] | None,
    ) -> list[tuple[Hashable, float]]:
        """Top `k` by score (earlier position first on ties) among keys passing `where`."""
        if where is None:
            best = _rank(scores, positions, k)
            return [(self._key_at(int(positions[i])), _score(scores[i])) for i in best]
        # Over-fetch in score order and widen until k keys pass: `where` runs on as few
        # keys as possible, and the answer is still the top k among those that pass.
        accepted: list[tuple[Hashable, float]] = []
        checked = 0
        fetch = max(4 * k, 32)
        while True:
            best = _rank(scores, positions, fetch)
            for i in best[checked:]:
                key = self._key_at(int(positions[i]))
                if where(key):
                    accepted.append((key, _score(scores[i])))
                    if len(accepted) == k:
                        return accepted
            checked = len(best)
            if fetch >= len(scores):
                return accepted
            fetch *= 4

    def similarities(self, texts: Sequence[str], keys: Sequence[Hashable]) -> _FloatArray:
        """Cosine of each of `texts` with each indexed text of `keys`, as a
        (len(texts), len(keys)) array; 0 for a key that is not indexed.

        The scores are the ones `query` gives, but only for the texts of `keys`: when a
        query's candidates are known, scoring more queries against just those costs a
        fraction of a full query (ToolRetriever scores the parts of a request this way).

        Example:
            >>> index = TextIndex()
            >>> index.add_many([(1, "red apples"), (2, "green pears"), (3, "red pears")])
            >>> index.similarities(["red", "pears", "plums"], [3, 1, 9]).round(2)
            array([[0.52, 0.47, 0.  ],
                   [0.52, 0.  , 0.  ],
                   [0.  , 0.  , 0.  ]])
            >>> [(key, round(score, 2)) for key, score in index.query("red")]
            [(3, 0.52), (1, 0.47)]
        """
        if isinstance(texts, str):
            raise ArgumentTypeError("similarities takes a sequence of str, not one str")
        texts = [_check_text(text, "query") for text in texts]
        result: _FloatArray = np.zeros((len(texts), len(keys)))
        if not texts or not len(keys):
            return result
        with self._lock:
            self._maybe_refresh()
            query_columns, query_rows, query_weights = self._weighed_queries(texts)
            main_positions, main_rows, pending_positions, pending_rows = [], [], [], []
            for position, key in enumerate(keys):
                row = self._main_row.get(key)
                if row is not None:
                    main_positions.append(position)
                    main_rows.append(row)
                elif key in self._pending.row:
                    pending_positions.append(position)
                    pending_rows.append(self._pending.row[key])
            columns = main_positions + pending_positions
            if not columns:
                return result
            # Dense over just the query's terms.
            known = query_columns >= 0
            terms, local = np.unique(query_columns[known], return_inverse=True)
            queries = np.zeros((len(texts), len(terms)))
            queries[query_rows[known], local] = query_weights[known]
            stored = self._stored_weights(main_rows, pending_rows, terms)
        result[:, columns] = np.clip(queries @ stored.T, 0.0, 1.0)
        return result

    def _stored_weights(
        self, main_rows: list[int], pending_rows: list[int], terms: _IntArray
    ) -> _FloatArray:
        """The stored unit weights of main rows `main_rows` then pending rows
        `pending_rows`, for `terms` (distinct, ascending), as a dense (rows, terms) array.

        Main rows come from their term frequencies, IDF and row scales (through
        `_main_dense` when it is small), pending rows as the pending scan has them.
        Under the lock.
        """
        main = np.array(main_rows, np.int64)
        if not len(self._pending):  # then every term is in the IDF snapshot
            dense = self._main_dense()
            if dense is not None:
                gathered: _FloatArray = dense[np.ix_(main, terms)]
                return gathered
        entries, main_indptr = _entries_of(self._main_tf.indptr, main)
        main_columns = self._main_tf.columns[entries]
        main_weights = self._main_unit_weights(entries, np.repeat(main, np.diff(main_indptr)))
        pending_weights = self._pending_weights()
        entries, pending_indptr = _entries_of(
            self._pending.indptr.view(), np.array(pending_rows, np.int64)
        )
        key_columns = np.concatenate([main_columns, self._pending.columns.view()[entries]])
        key_weights = np.concatenate([main_weights, pending_weights[entries]])
        key_rows = np.repeat(
            np.arange(len(main_rows) + len(pending_rows)),
            np.concatenate([np.diff(main_indptr), np.diff(pending_indptr)]),
        )
        # a stored text never repeats a term, so each of its entries fills one cell,
        # found through the scratch table
        table = self._scratch_table()
        table[terms] = np.arange(1, len(terms) + 1)
        found = table[key_columns].astype(np.int64) - 1
        table[terms] = 0.0
        shared = found >= 0
        stored = np.zeros((len(main_rows) + len(pending_rows), len(terms)))
        stored[key_rows[shared], found[shared]] = key_weights[shared]
        return stored

    def _main_dense(self) -> _FloatArray | None:
        """Each main text's unit weights by term id, as `_stored_weights` computes them,
        in one dense (texts, snapshot terms) array made on first use after a refresh;
        None when that holds more than `_DENSE_WEIGHTS` numbers. Under the lock."""
        if self._main_dense_weights is None:
            n_main, n_terms = len(self._main_keys), len(self._idf)
            if n_main * n_terms > _DENSE_WEIGHTS:
                return None
            tf = self._main_tf
            rows = tf.rows()
            dense = np.zeros((n_main, n_terms))
            dense[rows, tf.columns] = self._main_unit_weights(np.arange(len(tf.columns)), rows)
            self._main_dense_weights = dense
        return self._main_dense_weights

    def _main_unit_weights(self, entries: _IntArray, rows: _IntArray) -> _FloatArray:
        """The unit weights of main entries `entries` (of rows `rows`), as `_rebuild`
        normalized them: the same products in the same order, so the same bits. Under
        the lock."""
        tf = self._main_tf
        word_scale, char_scale = self._main_scales
        weights: _FloatArray = (
            tf.values[entries]
            * self._idf[tf.columns[entries]]
            * np.where(tf.is_char[entries], char_scale[rows], word_scale[rows])
        )
        return weights

    def _weighed_queries(self, texts: list[str]) -> tuple[_IntArray, _IntArray, _FloatArray]:
        """Each entry's term id, row and unit weight in the query rows of `texts`: those
        `query_joined` weighed when `texts` are its parts and nothing changed since, else
        weighed now (the same numbers). Under the lock."""
        weighed = self._weighed_parts
        if weighed is not None and weighed.parts == tuple(texts):
            return weighed.columns, weighed.rows, weighed.weights
        tf = self._term_frequencies(
            texts,
            grow=False,
            number_unknown=False,
            char_grams=[self._part_grams.get(text) for text in texts] if self._part_grams else (),
        )
        weights, _ = self._weigh(tf)
        return tf.columns, tf.rows(), weights

    def similarity(self, a: str, b: str) -> float:
        """Cosine similarity of two texts under this index's weighting."""
        _check_text(a, "text a")
        _check_text(b, "text b")
        return float(self.pairwise([a, b])[0, 1])

    def pairwise(self, texts: Sequence[str]) -> NDArray[np.float64]:
        """Cosine similarity matrix of `texts` under this index's weighting.

        The IDF is the index's (add the texts first if they should shape it), so the
        extractive summarizer and de-duplication get centrality and near-duplicates from
        one sparse product. The diagonal is 1 for a text with at least one term, else 0.

        Example:
            >>> TextIndex().pairwise(["a cat sat", "a cat sat", "dogs bark"]).round(2)
            array([[1., 1., 0.],
                   [1., 1., 0.],
                   [0., 0., 1.]])
        """
        if isinstance(texts, str):
            raise ArgumentTypeError("pairwise takes a sequence of str, not one str")
        texts = [_check_text(text) for text in texts]
        if not texts:
            return np.zeros((0, 0))
        with self._lock:
            self._maybe_refresh()
            tf = self._term_frequencies(texts, grow=False)
            weights, _ = self._weigh(tf)
        import scipy.sparse as sp

        terms, columns = np.unique(tf.columns, return_inverse=True)
        matrix = sp.csr_matrix((weights, columns, tf.indptr), shape=(len(texts), len(terms)))
        result: NDArray[np.float64] = np.clip((matrix @ matrix.T).toarray(), 0.0, 1.0)
        has_terms = np.diff(tf.indptr) > 0
        result[np.diag_indices(len(texts))] = has_terms.astype(np.float64)
        return result

    # ----------------------------------------------------------- collection
    def text(self, key: Hashable) -> str | None:
        """The indexed text of `key`, or None."""
        try:
            return self._texts.get(key)
        except TypeError:  # unhashable: never indexed
            return None

    def keys(self) -> list[Hashable]:
        """Every indexed key, in the order their current texts were added."""
        with self._lock:
            return list(self._texts)

    def __len__(self) -> int:
        return len(self._texts)

    def __contains__(self, key: object) -> bool:
        try:
            return key in self._texts
        except TypeError:  # unhashable: never indexed
            return False

    def __repr__(self) -> str:
        return f"TextIndex({len(self)} texts, char_ngrams={self._char_ngrams})"


def _entries_of(indptr: _IntArray, rows: _IntArray) -> tuple[_IntArray, _IntArray]:
    """The entry positions of `rows` (in that order) in a CSR layout, and their indptr."""
    starts = indptr[rows]
    lengths = indptr[rows + 1] - starts
    sub_indptr = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
    entries = np.repeat(starts - sub_indptr[:-1], lengths) + np.arange(int(sub_indptr[-1]))
    return entries.astype(np.int64, copy=False), sub_indptr


def _add_spans(
    sums: dict[int, float],
    spans: list[tuple[int, int, float]],
    texts: list[int],
    weights: list[float],
) -> None:
    """Add to `sums` each of `texts` (the spans' entries, joined in order) times its
    weight and its span's query weight, in order."""
    get = sums.get
    at = 0
    for start, end, query_weight in spans:
        following = at + end - start
        for text, weight in zip(texts[at:following], weights[at:following], strict=True):
            sums[text] = get(text, 0.0) + weight * query_weight
        at = following


def _filtered(
    sums: dict[int, float], min_score: float, alive: Callable[[int], bool] | None
) -> tuple[_FloatArray, _IntArray]:
    """`sums` as the scores and positions `_summed_matches` returns: live positions
    only (`alive`, when some texts are removed), scores of at least `min_score`, by
    position."""
    positions = sorted(
        position
        for position, score in sums.items()
        if score >= min_score and (alive is None or alive(position))
    )
    return np.array([sums[p] for p in positions], np.float64), np.array(positions, np.int64)


def _sum_by_text(
    texts: _IntArray, contributions: _FloatArray, n_texts: int
) -> tuple[_FloatArray, _IntArray]:
    """The sum of `contributions` per distinct text of `texts` (positions in [0,
    `n_texts`)), and those texts, ascending. Every contribution is positive.

    Both paths add each text's contributions in their order in `texts` (`bincount`
    visits them in order), so the sums are the same bit for bit. Summing into a dense
    array costs a pass over `n_texts` numbers; in a large index that few texts match,
    sorting the matches (`np.unique`) costs less.
    """
    if n_texts <= _DENSE_DOCS or 8 * len(texts) >= n_texts:
        dense = np.asarray(np.bincount(texts, weights=contributions, minlength=n_texts), np.float64)
        positions: _IntArray = np.flatnonzero(dense)
        return dense[positions], positions
    found, inverse = np.unique(texts, return_inverse=True)
    scores = np.asarray(np.bincount(inverse, weights=contributions), np.float64)
    return scores, found.astype(np.int64, copy=False)


def _in_order_sum(values: list[float]) -> float:
    """`values` added one after the other, as `np.bincount` adds a row's weights: the
    same bits in every Python version (from 3.12 the built-in `sum` of floats is
    compensated, so it can differ in the last bit).

    Example:
        >>> _in_order_sum([1e16, 1.0, -1e16])
        0.0
    """
    return functools.reduce(operator.add, values, 0.0)


def _score(value: np.float64) -> float:
    return min(float(value), 1.0)


def _rank(scores: _FloatArray, positions: _IntArray, k: int) -> _IntArray:
    """Indices of the `k` best (highest score, then lowest position), best first.

    Scores are clipped to 1.0 first (rounding can push a cosine a hair above it).
    """
    n = len(scores)
    if n <= _SORT_ALL:
        best: _IntArray = np.lexsort((positions, -np.minimum(scores, 1.0)))[:k]
        return best
    candidates: _IntArray | None = None
    if n > _SAMPLE_MIN and k * 64 < n:
        # The k-th best of a sample is a lower bound of the k-th best overall: drop
        # everything below it in one pass before the exact selection.
        sample = scores[:: n // max(1024, 64 * k)]
        bound = min(float(np.partition(sample, len(sample) - k)[len(sample) - k]), 1.0)
        candidates = np.flatnonzero(scores >= bound)
        scores, positions = np.minimum(scores[candidates], 1.0), positions[candidates]
        n = len(scores)
    else:
        scores = np.minimum(scores, 1.0)
    if n > k:
        kth = np.partition(scores, n - k)[n - k]
        above = np.flatnonzero(scores > kth)
        ties = np.flatnonzero(scores == kth)
        ties = ties[np.argsort(positions[ties], kind="stable")[: k - len(above)]]
        chosen = np.concatenate([above, ties])
    else:
        chosen = np.arange(n)
    chosen = chosen[np.lexsort((positions[chosen], -scores[chosen]))]
    result: _IntArray = (chosen if candidates is None else candidates[chosen]).astype(
        np.int64, copy=False
    )
    return result
