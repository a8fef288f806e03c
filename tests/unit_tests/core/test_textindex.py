"""Specification of TextIndex: the one TF-IDF similarity index of the package."""

from __future__ import annotations

import contextlib
import random
import re
import sys
import threading
import unittest.mock
from collections import Counter
from collections.abc import Callable, Hashable, Iterator

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics.pairwise import linear_kernel

from langchain_tokenopt.core.textindex import TextIndex, _analyzer
from langchain_tokenopt.errors import ArgumentTypeError

CORPUS = {
    "weather": "What is the weather forecast for Paris tomorrow?",
    "umbrella": "Should I bring an umbrella if it rains in London?",
    "python": "How do I reverse a list in Python?",
    "sql": "Write a SQL query that joins two tables on a foreign key.",
    "pasta": "Give me a recipe for pasta with tomato sauce and basil.",
    "stocks": "Why did stock prices fall sharply on Monday?",
    "refund": "How can I get a refund for a cancelled flight?",
    "sleep": "Tips for falling asleep faster at night.",
}


def _synthetic_corpus(n: int, seed: int = 3) -> list[str]:
    """Short texts over a Zipf-like vocabulary, so many texts share common words."""
    rng = random.Random(seed)
    vocabulary = [f"w{i}" for i in range(400)]
    weights = [1.0 / (rank + 1) for rank in range(len(vocabulary))]
    return [
        " ".join(rng.choices(vocabulary, weights=weights, k=rng.randint(8, 20))) for _ in range(n)
    ]


def _reference_scores(corpus: list[str], query: str) -> np.ndarray:
    """Cosines from scikit-learn's TfidfVectorizer with the index's default weighting."""
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    matrix = vectorizer.fit_transform(corpus)
    scores: np.ndarray = linear_kernel(vectorizer.transform([query]), matrix)[0]
    return scores


def _scores_by_position(hits: list[tuple[Hashable, float]], n: int) -> np.ndarray:
    """Scores laid out by integer key, 0.0 for keys not returned."""
    scores = np.zeros(n)
    for key, score in hits:
        assert isinstance(key, int)
        scores[key] = score
    return scores


@pytest.fixture
def index() -> TextIndex:
    built = TextIndex()
    built.add_many(CORPUS.items())
    return built


# ---------------------------------------------------------------- ranking


def test_the_relevant_text_ranks_first(index: TextIndex) -> None:
    assert index.query("weather forecast in Paris", k=1)[0][0] == "weather"
    assert index.query("reverse a python list", k=1)[0][0] == "python"
    assert index.query("join tables in SQL", k=1)[0][0] == "sql"
    assert index.query("cancelled flight refund", k=1)[0][0] == "refund"


def test_results_are_best_first_and_at_most_k(index: TextIndex) -> None:
    hits = index.query("How do I get a recipe for the weather?", k=3)
    assert len(hits) == 3
    scores = [score for _, score in hits]
    assert scores == sorted(scores, reverse=True)


def test_scores_equal_scikit_learn_tfidf_cosines() -> None:
    corpus = _synthetic_corpus(300)
    index = TextIndex()
    index.add_many(enumerate(corpus))
    query = corpus[17]  # every query term is in the corpus vocabulary
    expected = _reference_scores(corpus, query)
    hits = index.query(query, k=len(corpus))
    got = _scores_by_position(hits, len(corpus))
    np.testing.assert_allclose(got, expected, atol=1e-9)
    assert hits[0][0] == 17
    assert hits[0][1] == pytest.approx(1.0)


def test_char_ngram_scores_mix_word_and_character_cosines_half_and_half() -> None:
    corpus = list(CORPUS.values())
    index = TextIndex(char_ngrams=True)
    index.add_many(enumerate(corpus))
    words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit(corpus)
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True)
    chars.fit(corpus)
    # queries made of the corpus's own words and word pairs: no term unknown to either
    for query in ("weather forecast for Paris", "bring an umbrella if it rains"):
        expected = 0.5 * linear_kernel(words.transform([query]), words.transform(corpus))[0]
        expected += 0.5 * linear_kernel(chars.transform([query]), chars.transform(corpus))[0]
        got = _scores_by_position(index.query(query, k=len(corpus)), len(corpus))
        np.testing.assert_allclose(got, expected, atol=1e-9)


def test_char_ngram_range_sets_the_character_gram_sizes() -> None:
    corpus = list(CORPUS.values())
    index = TextIndex(char_ngrams=True, char_ngram_range=(4, 5))
    index.add_many(enumerate(corpus))
    words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit(corpus)
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(4, 5), sublinear_tf=True)
    chars.fit(corpus)
    query = "weather forecast for Paris"
    expected = 0.5 * linear_kernel(words.transform([query]), words.transform(corpus))[0]
    expected += 0.5 * linear_kernel(chars.transform([query]), chars.transform(corpus))[0]
    got = _scores_by_position(index.query(query, k=len(corpus)), len(corpus))
    np.testing.assert_allclose(got, expected, atol=1e-9)


def test_a_rare_term_query_in_a_large_index_scores_like_scikit_learn() -> None:
    # few postings against many texts: the query's matches are summed sparsely
    corpus = _synthetic_corpus(2000)
    index = TextIndex()
    index.add_many(enumerate(corpus))
    # a single word that a handful of texts use: no term unknown to the vocabulary
    query = min(
        {word for text in corpus for word in text.split()},
        key=lambda word: (sum(word in text.split() for text in corpus), word),
    )
    expected = _reference_scores(corpus, query)
    hits = index.query(query, k=len(corpus))
    assert 0 < len(hits) < len(corpus) // 8
    np.testing.assert_allclose(_scores_by_position(hits, len(corpus)), expected, atol=1e-9)


def test_query_words_the_index_never_saw_lower_the_score(index: TextIndex) -> None:
    plain = index.query("weather forecast for Paris", k=1)[0]
    novel = index.query("weather forecast for Paris zorblax quuxification", k=1)[0]
    assert plain[0] == novel[0] == "weather"
    assert novel[1] < plain[1]


def test_identical_text_scores_one_and_never_above(index: TextIndex) -> None:
    for key, text in CORPUS.items():
        best_key, score = index.query(text, k=1)[0]
        assert best_key == key
        assert score == pytest.approx(1.0)
        assert 0.0 < score <= 1.0


def test_char_ngrams_forgive_a_typo() -> None:
    words_only = TextIndex()
    fuzzy = TextIndex(char_ngrams=True)
    for built in (words_only, fuzzy):
        built.add_many(CORPUS.items())
    assert words_only.query("wether", k=1) == []
    assert fuzzy.query("wether", k=1)[0][0] == "weather"
    assert fuzzy.query("umbrela in londn", k=1)[0][0] == "umbrella"


def test_stop_words_english_ignores_function_words() -> None:
    index = TextIndex(stop_words="english")
    index.add_many(CORPUS.items())
    assert index.query("what is the for of and", k=3) == []
    assert index.query("the weather", k=1)[0][0] == "weather"


def test_ties_rank_the_earlier_added_key_first() -> None:
    index = TextIndex()
    index.add_many([("b", "same words here"), ("a", "same words here"), ("c", "other")])
    index.add("d", "same words here")
    assert [key for key, _ in index.query("same words here", k=3)] == ["b", "a", "d"]


# ----------------------------------------------------------- changes


def test_adding_an_existing_key_replaces_its_text(index: TextIndex) -> None:
    index.add("weather", "Chocolate cake with vanilla frosting")
    assert index.text("weather") == "Chocolate cake with vanilla frosting"
    assert len(index) == len(CORPUS)
    assert index.query("chocolate cake", k=1)[0][0] == "weather"
    assert all(key != "weather" for key, _ in index.query("forecast Paris tomorrow", k=8))


def test_a_key_given_twice_to_add_many_keeps_its_last_text() -> None:
    index = TextIndex()
    index.add_many([("k", "first version"), ("k", "second version")])
    assert len(index) == 1
    assert index.text("k") == "second version"
    assert index.query("first", k=5) == []


def test_a_removed_key_is_never_returned_again(index: TextIndex) -> None:
    index.query("warm up the main matrix", k=1)  # "weather" now lives in the main matrix
    index.add("pending", "weather forecast for Paris, updated")  # this one stays pending
    assert index.remove("weather") is True
    assert index.remove("pending") is True
    assert index.remove("weather") is False
    assert index.remove(["unhashable"]) is False  # type: ignore[arg-type]
    for _ in range(2):
        keys = [key for key, _ in index.query("weather forecast for Paris", k=100)]
        assert "weather" not in keys
        assert "pending" not in keys
        assert "weather" not in index
        assert index.text("weather") is None
        index.refresh()
    assert len(index) == len(CORPUS) - 1


def test_a_removed_key_can_be_added_again(index: TextIndex) -> None:
    index.remove("python")
    index.add("python", "How do I sort a dictionary in Python?")
    assert index.query("sort a python dictionary", k=1)[0][0] == "python"


def test_removing_every_key_leaves_an_empty_index(index: TextIndex) -> None:
    for key in list(index.keys()):
        index.remove(key)
    assert len(index) == 0
    assert index.query("weather", k=5) == []


def test_clear_forgets_everything(index: TextIndex) -> None:
    index.clear()
    assert len(index) == 0
    assert index.keys() == []
    assert index.query("weather", k=5) == []
    index.add("x", "fresh start")
    assert index.query("fresh", k=1)[0][0] == "x"


def test_incremental_adds_rank_like_a_build_at_once() -> None:
    corpus = _synthetic_corpus(600)
    queries = _synthetic_corpus(20, seed=11) + corpus[::50]
    incremental = TextIndex()
    for i, text in enumerate(corpus):
        incremental.add(i, text)
        if i % 7 == 0:  # interleaved queries fold pending texts in at various sizes
            incremental.query(text, k=3)
    at_once = TextIndex()
    at_once.add_many(enumerate(corpus))
    for query in queries:
        # up to 10% of the texts may still wait for an IDF refresh: scores move a
        # little and near-ties may swap, the best match stays near the top
        stale = incremental.query(query, k=10)
        exact = at_once.query(query, k=10)
        assert exact[0][0] in [key for key, _ in stale[:3]]
        assert [s for _, s in stale] == pytest.approx([s for _, s in exact], abs=0.01)
    for i in range(0, len(corpus), 50):
        assert incremental.query(corpus[i], k=1)[0][0] == i
    incremental.refresh()
    for query in queries:
        assert incremental.query(query, k=10) == at_once.query(query, k=10)


def test_scores_survive_forgetting_the_terms_of_removed_texts() -> None:
    # 3,000 texts of their own words, then all but 100 removed: the refresh drops the
    # unused terms from the vocabulary and renumbers the rest
    own_words = [" ".join(f"t{i}x{j}" for j in range(8)) for i in range(3000)]
    shared = _synthetic_corpus(100)
    index = TextIndex()
    index.add_many(enumerate(own_words))
    index.add_many((("shared", i), text) for i, text in enumerate(shared))
    index.refresh()
    for i in range(len(own_words)):
        index.remove(i)
    index.refresh()
    index.add("late", shared[3] + " t5x1 brand new words")
    fresh = TextIndex()
    fresh.add_many((("shared", i), text) for i, text in enumerate(shared))
    fresh.add("late", shared[3] + " t5x1 brand new words")
    assert index.query("t5x1 brand new", k=1)[0][0] == "late"  # pending, new term ids
    index.refresh()
    for query in [*shared[:10], "t5x1 brand new", "t17x2 t17x3"]:
        got, expected = index.query(query, k=5), fresh.query(query, k=5)
        assert [key for key, _ in got] == [key for key, _ in expected]
        assert [s for _, s in got] == pytest.approx([s for _, s in expected], abs=1e-12)


def test_pending_and_folded_texts_score_alike() -> None:
    corpus = _synthetic_corpus(50)
    index = TextIndex()
    index.add_many(enumerate(corpus[:40]))
    index.refresh()
    index.add_many(enumerate(corpus[40:], start=40))  # 25% new: stays pending below
    pending = dict(index.query(corpus[45], k=50))
    index.refresh()
    folded = dict(index.query(corpus[45], k=50))
    assert pending.keys() == folded.keys()
    assert pending[45] == pytest.approx(1.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pending_matches_found_by_binary_search_score_like_a_full_scan(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pending entries merged into the term-sorted copy (a tiny tail limit merges at
    almost every query) score exactly as a scan of every pending entry does, through
    adds, replacements and removals between queries."""
    from langchain_tokenopt.core import textindex

    rng = random.Random(seed)
    corpus = _synthetic_corpus(600, seed=seed)
    operations: list[tuple[str, int]] = []
    for _ in range(300):
        roll = rng.random()
        operations.append(
            ("remove" if roll < 0.1 else "query" if roll < 0.4 else "add", rng.randrange(600))
        )

    def run(tail: int) -> list[dict[Hashable, float]]:
        monkeypatch.setattr(textindex, "_PENDING_TAIL", tail)
        monkeypatch.setattr(textindex, "_PENDING_TAIL_MIN", tail)
        index = TextIndex()
        index.add_many(enumerate(corpus[:400]))
        index.refresh()
        answers = []
        for op, i in operations:
            if op == "add":
                index.add(i, corpus[rng_texts[i]])
            elif op == "remove":
                index.remove(i)
            else:
                answers.append(dict(index.query(corpus[i], k=600)))
        return answers

    rng_texts = [rng.randrange(600) for _ in range(600)]
    merged, scanned = run(tail=3), run(tail=1 << 30)
    assert len(merged) == len(scanned) > 50
    for a, b in zip(merged, scanned, strict=True):
        assert a.keys() == b.keys()
        assert all(a[key] == pytest.approx(b[key], abs=1e-12) for key in a)


@pytest.mark.parametrize(("seed", "sublinear"), [(0, True), (1, True), (2, False), (3, False)])
def test_few_postings_summed_in_python_score_exactly_as_numpy(
    seed: int, sublinear: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A short query over short posting lists is summed in Python; the scores, the
    order and the keys are those of the numpy path bit for bit, through adds,
    replacements and removals (pending, merged and tail entries, tombstones), and a
    query alone scores as it does in a batch."""
    from langchain_tokenopt.core import textindex

    rng = random.Random(seed)
    corpus = _synthetic_corpus(600, seed=seed)
    operations: list[tuple[str, int, int]] = []
    for _ in range(300):
        roll = rng.random()
        kind = "remove" if roll < 0.1 else "query" if roll < 0.45 else "add"
        operations.append((kind, rng.randrange(600), rng.randint(1, 6)))

    def run(few_postings: int) -> list[list[tuple[Hashable, float]]]:
        monkeypatch.setattr(textindex, "_FEW_POSTINGS", few_postings)
        monkeypatch.setattr(textindex, "_PENDING_TAIL_MIN", 64)
        index = TextIndex(word_ngram_range=(1, 1), sublinear_tf=sublinear)
        index.add_many(enumerate(corpus[:400]))
        index.refresh()
        answers = []
        for op, i, words in operations:
            if op == "add":
                index.add(i, corpus[(i * 7) % 600])
            elif op == "remove":
                index.remove(i)
            else:
                query = " ".join(corpus[i].split()[-words:])  # rare words come last
                if words % 3 == 0:
                    query += f" unseen{i} w{400 + words}"  # terms no text holds
                where = (lambda key: key % 3 != 0) if words % 2 else None
                hits = index.query(query, k=20, min_score=0.01 * words, where=where)
                # one query alone takes a shorter way to its weights and top k than a batch
                batch = index.query_many([query, "w1"], k=20, min_score=0.01 * words, where=where)
                assert batch[0] == hits
                answers.append(hits)
        return answers

    in_python, in_numpy = run(few_postings=1 << 30), run(few_postings=-1)
    assert sum(len(hits) for hits in in_python) > 500
    assert in_python == in_numpy  # exact floats, same order


def test_few_matches_top_k_caps_scores_and_breaks_ties_like_select() -> None:
    """Scores a hair above 1.0 (rounding) are capped, so they tie with 1.0 and the
    earlier text wins, as in `_select`; scores under `min_score` and removed texts are
    left out."""
    from langchain_tokenopt.core.textindex import _filtered

    index = TextIndex()
    index.add_many((f"k{i}", f"text number {i}") for i in range(8))
    index.refresh()
    index.remove("k2")
    sums = {5: 1.0 + 2e-16, 3: 1.0, 2: 0.9, 7: 0.5, 1: 0.01}
    expected = [("k3", 1.0), ("k5", 1.0), ("k7", 0.5)]
    assert index._top_few(sums, 5, 0.02, None) == expected
    assert index._select(*_filtered(sums, 0.02, index._alive_at), 5, None) == expected
    assert index._top_few(sums, 5, 0.02, lambda key: key != "k3") == expected[1:]


# ------------------------------------------------------------- filters


def test_where_returns_the_top_k_among_keys_that_pass() -> None:
    corpus = _synthetic_corpus(5000)  # enough matches to take the sampled top-k path
    index = TextIndex()
    index.add_many(enumerate(corpus))

    def rare(key: Hashable) -> bool:
        return isinstance(key, int) and key % 97 == 3

    query = corpus[100]
    everything = index.query(query, k=len(corpus))
    expected = [hit for hit in everything if rare(hit[0])][:5]
    assert len(expected) == 5
    assert index.query(query, k=5, where=rare) == expected
    assert all(rare(key) for key, _ in index.query(query, k=60, where=rare))


def test_top_k_over_many_matches_agrees_with_a_full_sort() -> None:
    corpus = _synthetic_corpus(5000)
    index = TextIndex()
    index.add_many(enumerate(corpus))
    query = corpus[7]
    expected = np.sort(_reference_scores(corpus, query))[::-1][:10]
    got = [score for _, score in index.query(query, k=10)]
    np.testing.assert_allclose(got, expected, atol=1e-9)


def test_where_that_rejects_everything_gives_nothing(index: TextIndex) -> None:
    assert index.query("weather", k=3, where=lambda key: False) == []


def test_min_score_drops_weaker_matches(index: TextIndex) -> None:
    everything = index.query("weather in Paris or rain in London", k=8)
    assert len(everything) >= 2
    cut = (everything[0][1] + everything[1][1]) / 2
    strong = index.query("weather in Paris or rain in London", k=8, min_score=cut)
    assert strong == everything[:1]


# ------------------------------------------------------- degenerate input


def test_empty_index_empty_text_and_unknown_terms_give_nothing() -> None:
    index = TextIndex()
    assert index.query("anything", k=3) == []
    index.add_many(CORPUS.items())
    assert index.query("", k=3) == []
    assert index.query("zzqx vvbnq", k=3) == []
    assert index.query("weather", k=0) == []
    assert index.similarity("", "weather") == 0.0
    assert index.similarity("", "") == 0.0


def test_an_empty_text_can_be_indexed_and_never_matches() -> None:
    index = TextIndex()
    index.add("empty", "")
    index.add("full", "some words")
    assert "empty" in index
    hits = index.query("some words", k=5)
    assert [key for key, _ in hits] == ["full"]
    assert hits[0][1] == pytest.approx(1.0)


def test_text_that_is_not_a_str_raises_type_error(index: TextIndex) -> None:
    with pytest.raises(TypeError, match="str"):
        index.add("k", b"bytes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="str"):
        index.add_many([("ok", "fine"), ("bad", None)])  # type: ignore[list-item]
    assert "ok" not in index  # nothing of a bad batch is indexed
    with pytest.raises(TypeError, match="str"):
        index.query(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="str"):
        index.similarity("a", 3)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        index.query_many("not a list")
    with pytest.raises(TypeError):
        index.pairwise("not a list")


def test_unhashable_key_raises_type_error(index: TextIndex) -> None:
    with pytest.raises(TypeError):
        index.add(["list"], "text")  # type: ignore[arg-type]
    assert ["list"] not in index
    assert index.text(["list"]) is None  # type: ignore[arg-type]


def test_bad_arguments_raise_clear_errors(index: TextIndex) -> None:
    with pytest.raises(ValueError, match="k must be >= 0"):
        index.query("weather", k=-1)
    with pytest.raises(ValueError, match="word_ngram_range"):
        TextIndex(word_ngram_range=(2, 1))
    with pytest.raises(ValueError, match="char_ngram_range"):
        TextIndex(char_ngrams=True, char_ngram_range=(0, 3))
    with pytest.raises(ValueError, match="stop_words"):
        TextIndex(stop_words="french")


# ------------------------------------------------------ the other methods


def test_similarity_is_symmetric_and_one_for_the_same_text(index: TextIndex) -> None:
    a, b = CORPUS["weather"], CORPUS["pasta"]
    assert index.similarity(a, b) == index.similarity(b, a)
    assert 0.0 < index.similarity(a, b) < 1.0
    assert index.similarity(a, a) == pytest.approx(1.0)
    assert index.similarity("tomato basil", "stock prices") == 0.0


def test_pairwise_agrees_with_similarity(index: TextIndex) -> None:
    texts = list(CORPUS.values())[:4]
    matrix = index.pairwise(texts)
    assert matrix.shape == (4, 4)
    np.testing.assert_allclose(np.diag(matrix), 1.0)
    np.testing.assert_allclose(matrix, matrix.T)
    assert matrix[0, 1] == pytest.approx(index.similarity(texts[0], texts[1]))
    assert index.pairwise([]).shape == (0, 0)


def test_query_many_answers_like_query(index: TextIndex) -> None:
    index.add("pending", "weather forecast for Rome")  # exercise the pending segment too
    queries = ["weather in Paris", "python list", "", "refund for a flight"]
    assert index.query_many(queries, k=3) == [index.query(q, k=3) for q in queries]


# Text pieces for the joined-query properties: words of the corpus, unknown words,
# every kind of whitespace scikit-learn and str.split see, a final sigma (lowercased by
# context), a capital I with dot (lowercased to two characters), sentence ends, no-space
# full stops, punctuation-only and one-letter words.
JOIN_WORDS = "weather forecast Paris python list refund flight pasta stock unseen ΟΔΟΣ İstanbul"
JOIN_MARKS = "a x 42 --- ... e-mail tool_name ! ; 。 ？ ，"
JOIN_SPACES = [" ", "  ", "\n", "\n\n", "\t", "\r\n", "\u3000", "\xa0", "\x1c", "\u2028", "\x85"]
JOIN_PIECES = st.lists(
    st.sampled_from([*JOIN_WORDS.split(), *JOIN_MARKS.split(), *JOIN_SPACES, ". ", "? "]),
    max_size=30,
).map("".join)


def test_whitespace_is_the_same_to_the_analyzers_as_to_str_split() -> None:
    # what makes a char_wb analysis of joined texts their parts' analyses in a row:
    # scikit-learn's whitespace regex and str.split agree on every character, and
    # lowercasing neither makes nor removes whitespace
    chars = [chr(code) for code in range(sys.maxunicode + 1)]
    spaces = {char for char in chars if char.isspace()}
    assert set(re.findall(r"\s", "".join(chars))) == spaces
    assert all(char.lower() == char for char in spaces)
    lowered = "".join(char.lower() for char in chars if char not in spaces)
    assert not spaces.intersection(lowered)


@given(parts=st.lists(JOIN_PIECES, max_size=6))
def test_char_grams_of_joined_texts_are_their_parts_grams_in_order(parts: list[str]) -> None:
    analyzer = _analyzer("char_wb", (4, 5), True, None)
    assert analyzer(" ".join(parts)) == [gram for part in parts for gram in analyzer(part)]


def _joined_index(char_ngrams: bool) -> TextIndex:
    index = TextIndex(char_ngrams=char_ngrams, char_ngram_range=(4, 5))
    index.add_many(enumerate(CORPUS.values()))
    index.refresh()
    index.add("pending", "weather forecast for Rome")  # the pending segment too
    return index


JOINED_INDEXES = {flag: _joined_index(flag) for flag in (False, True)}


@given(texts=st.lists(JOIN_PIECES, max_size=4), char_ngrams=st.booleans())
def test_term_frequencies_are_the_analyzers_counts_in_order(
    texts: list[str], char_ngrams: bool
) -> None:
    index = JOINED_INDEXES[char_ngrams]
    analyzers = [(index._word_analyzer, index._word_ids, False)]
    if char_ngrams:
        analyzers.append((_analyzer("char_wb", (4, 5), True, None), index._char_ids, True))
    entries = [
        [(ids.get(term, -1), count, is_char) for term, count in Counter(analyzer(text)).items()]
        for text in texts
        for analyzer, ids, is_char in analyzers
    ]
    flat = [entry for block in entries for entry in block]
    with index._lock:
        tf = index._term_frequencies(texts, grow=False, number_unknown=False)
    assert tf.columns.tolist() == [column for column, _, _ in flat]
    assert tf.values.tolist() == (1.0 + np.log([float(n) for _, n, _ in flat])).tolist()
    assert tf.is_char.tolist() == [is_char for _, _, is_char in flat]
    sizes = [len(block) for block in entries]
    per_text = [sum(sizes[i : i + len(analyzers)]) for i in range(0, len(sizes), len(analyzers))]
    assert tf.indptr.tolist() == [0, *np.cumsum(per_text, dtype=int).tolist()]


@given(parts=st.lists(JOIN_PIECES, max_size=6), char_ngrams=st.booleans())
def test_query_joined_answers_like_query_and_keeps_similarities_exact(
    parts: list[str], char_ngrams: bool
) -> None:
    index = JOINED_INDEXES[char_ngrams]
    keys = index.keys()
    expected = index.similarities(parts, keys)  # read afresh
    assert index.query_joined(parts, k=20) == index.query(" ".join(parts), k=20)
    if char_ngrams:
        assert set(index._part_grams) == set(parts)
    # reusing the parts' character n-grams changes no bit
    assert np.array_equal(index.similarities(parts, keys), expected)


@given(texts=st.lists(JOIN_PIECES, max_size=8))
def test_char_grams_read_word_by_word_are_the_analyzers(texts: list[str]) -> None:
    index = TextIndex(char_ngrams=True, char_ngram_range=(4, 5))
    analyzer = _analyzer("char_wb", (4, 5), True, None)
    with index._lock:
        for text in texts:  # later texts meet words of earlier ones in the memo
            assert index._char_grams(text) == analyzer(text)
            assert set(text.split()) <= set(index._word_grams)


def test_the_word_memo_of_char_grams_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from langchain_tokenopt.core import textindex

    monkeypatch.setattr(textindex, "_GRAM_MEMO_WORDS", 8)
    index = TextIndex(char_ngrams=True)
    analyzer = _analyzer("char_wb", (3, 5), True, None)
    with index._lock:
        for i in range(20):
            text = f"word{i} again{i} shared Shared {i}"
            assert index._char_grams(text) == analyzer(text)
            assert len(index._word_grams) <= 8


def test_char_grams_are_read_word_by_word_only_where_the_analyzer_allows_it() -> None:
    from sklearn.feature_extraction.text import CountVectorizer

    from langchain_tokenopt.core import textindex

    assert textindex._reads_word_by_word(_analyzer("char_wb", (4, 5), True, None))
    spanning = CountVectorizer(analyzer="char", ngram_range=(2, 3)).build_analyzer()
    assert not textindex._reads_word_by_word(spanning)  # its n-grams span spaces
    index = TextIndex(char_ngrams=True)
    index.add_many(enumerate(CORPUS.values()))
    assert index._char_by_word
    index._char_by_word = False  # as with an analyzer whose n-grams span words
    parts = ["weather in", "Paris tomorrow?"]
    assert index.query_joined(parts, k=3) == index.query(" ".join(parts), k=3)
    assert not index._part_grams  # read whole
    assert not TextIndex()._char_by_word  # words only


def test_query_joined_of_nothing_and_bad_input() -> None:
    index = TextIndex(char_ngrams=True)
    assert index.query_joined(["red"]) == []  # empty index
    index.add("x", "red apples")
    assert index.query_joined([]) == index.query("") == []
    assert index.query_joined(["red", "apples"], k=0) == []
    with pytest.raises(TypeError, match="sequence of str"):
        index.query_joined("red")
    with pytest.raises(TypeError, match="must be a str"):
        index.query_joined([b"red"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="k must be >= 0"):
        index.query_joined(["red"], k=-1)


def _sample_user_texts() -> list[str]:
    """The distinct user messages of the shipped sample requests (real text)."""
    import json
    from pathlib import Path

    import langchain_tokenopt

    path = Path(langchain_tokenopt.__file__).parent / "data" / "sample_requests.jsonl"
    texts: dict[str, None] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        for message in json.loads(line)["messages"]:
            content = message["content"]
            if message["role"] == "user":
                blocks = [content] if isinstance(content, str) else content
                for block in blocks:
                    text = block if isinstance(block, str) else block.get("text")
                    if isinstance(text, str) and text.strip():
                        texts[text] = None
    return list(texts)


SAMPLE_TEXTS = _sample_user_texts()
# a request's sentences, as ToolRetriever parts it
SAMPLE_PARTS = [
    [part.strip() for part in re.split(r"(?<=[.?!;])\s+|\n+", text) if part.strip()]
    for text in SAMPLE_TEXTS
]
WORD_CONFIGURATIONS = [
    ((1, 2), True, None),
    ((1, 1), True, None),
    ((1, 2), False, None),
    ((1, 2), True, "english"),
    ((1, 1), False, "english"),
]


@given(parts=st.lists(JOIN_PIECES, max_size=6), configuration=st.sampled_from(WORD_CONFIGURATIONS))
def test_word_ngrams_of_joined_texts_are_their_parts_ngrams_joined(
    parts: list[str], configuration: tuple[tuple[int, int], bool, str | None]
) -> None:
    from langchain_tokenopt.core import textindex

    ngram_range, lowercase, stop_words = configuration
    analyzer = _analyzer("word", ngram_range, lowercase, stop_words)
    assert textindex._word_join_size(analyzer, ngram_range) == ngram_range[1]
    joined = textindex._join_words([analyzer(part) for part in parts], ngram_range[1])
    assert joined == analyzer(" ".join(parts))


def test_word_ngrams_of_joined_real_requests_are_their_sentences_ngrams_joined() -> None:
    from langchain_tokenopt.core import textindex

    assert len(SAMPLE_PARTS) > 20 and sum(len(parts) > 1 for parts in SAMPLE_PARTS) > 10
    for ngram_range, lowercase, stop_words in WORD_CONFIGURATIONS:
        analyzer = _analyzer("word", ngram_range, lowercase, stop_words)
        for parts in SAMPLE_PARTS:
            joined = textindex._join_words([analyzer(part) for part in parts], ngram_range[1])
            assert joined == analyzer(" ".join(parts))


def test_word_ngrams_are_joined_only_where_the_analyzer_allows_it() -> None:
    from sklearn.feature_extraction.text import CountVectorizer

    from langchain_tokenopt.core import textindex

    for ngram_range in [(1, 3), (2, 2), (2, 3)]:
        analyzer = _analyzer("word", ngram_range, True, None)
        assert textindex._word_join_size(analyzer, ngram_range) is None
    spanning = CountVectorizer(analyzer="char", ngram_range=(1, 2)).build_analyzer()
    assert textindex._word_join_size(spanning, (1, 2)) is None  # not word n-grams
    index = TextIndex(char_ngrams=True, word_ngram_range=(1, 3))
    assert index._word_joins is None
    index.add_many(enumerate(CORPUS.values()))
    parts = ["weather in", "Paris tomorrow?", "a recipe for pasta"]
    assert index.query_joined(parts, k=5) == index.query(" ".join(parts), k=5)


def test_query_joined_reads_each_part_once() -> None:
    index = TextIndex(char_ngrams=True)
    index.add_many(enumerate(CORPUS.values()))
    read: list[str] = []
    word_analyzer = index._word_analyzer

    def spy(text: str) -> list[str]:
        read.append(text)
        return word_analyzer(text)

    index._word_analyzer = spy
    parts = ["weather in Paris", "a recipe for pasta?", "and stock prices"]
    expected = TextIndex(char_ngrams=True)
    expected.add_many(enumerate(CORPUS.values()))
    assert index.query_joined(parts, k=8) == expected.query(" ".join(parts), k=8)
    assert read == parts  # the joined text's word n-grams are its parts'
    keys = index.keys()
    assert np.array_equal(index.similarities(parts, keys), expected.similarities(parts, keys))
    assert read == parts  # and similarities reuses the parts' weights


def test_the_weighed_parts_are_forgotten_when_the_vocabulary_or_the_idf_changes() -> None:
    # twins: `index` is queried through query_joined, `fresh` never is
    index, fresh = (TextIndex(char_ngrams=True) for _ in range(2))
    parts = ["weather in Paris", "zebra crossings at night"]
    texts = [*CORPUS.values(), *SAMPLE_TEXTS[:12]]
    steps: list[Callable[[TextIndex], object]] = [
        lambda built: built.add_many(enumerate(texts)),
        lambda built: built.refresh(),
        lambda built: built.add("new", "zebra crossings"),  # new terms, still pending
        lambda built: built.refresh(),  # a new IDF
        lambda built: built.remove(0),
        lambda built: built.refresh(),
    ]
    for step in steps:
        index.query_joined(parts, k=5)
        step(index)
        step(fresh)
        keys = fresh.keys()
        assert np.array_equal(index.similarities(parts, keys), fresh.similarities(parts, keys))
    assert len(index._pending) == 0
    assert index.similarities(parts, ["new"])[1, 0] > 0.5


@contextlib.contextmanager
def _main_weights_computed() -> Iterator[None]:
    """`similarities` with the main texts' weights computed for each call, as before
    `_main_dense` (the reference for its exactness)."""
    from langchain_tokenopt.core import textindex

    with unittest.mock.patch.object(textindex, "_DENSE_WEIGHTS", 0):
        yield


def _folded_index(texts: list[str]) -> TextIndex:
    index = TextIndex(char_ngrams=True, char_ngram_range=(4, 5))
    index.add_many(enumerate(texts))
    index.refresh()
    return index


FOLDED_INDEXES = [_folded_index(list(CORPUS.values())), _folded_index(SAMPLE_TEXTS[:12])]


@given(texts=st.lists(JOIN_PIECES, max_size=5), which=st.sampled_from([0, 1]))
def test_similarities_from_the_dense_main_weights_are_the_computed_ones(
    texts: list[str], which: int
) -> None:
    index = FOLDED_INDEXES[which]
    keys = [*reversed(index.keys()), "absent", 0]
    with _main_weights_computed():
        expected = index.similarities(texts, keys)
    assert np.array_equal(index.similarities(texts, keys), expected)


def test_similarities_of_real_requests_from_the_dense_main_weights_are_the_computed_ones() -> None:
    index = _folded_index(SAMPLE_TEXTS[-12:])
    keys = index.keys()
    for parts in SAMPLE_PARTS:
        with _main_weights_computed():
            expected = index.similarities(parts, keys)
        assert np.array_equal(index.similarities(parts, keys), expected)
    assert index._main_dense_weights is not None
    index.add("new", SAMPLE_TEXTS[0])
    index.refresh()  # a new IDF: the dense array is made again
    assert index._main_dense_weights is None
    keys = index.keys()
    for parts in SAMPLE_PARTS[:5]:
        with _main_weights_computed():
            expected = index.similarities(parts, keys)
        assert np.array_equal(index.similarities(parts, keys), expected)


@pytest.mark.parametrize("char_ngrams", [False, True])
def test_query_analysis_is_the_term_frequencies_with_unknown_terms_left_unnumbered(
    char_ngrams: bool,
) -> None:
    # query_many and similarities analyse queries without numbering unknown terms; every
    # number they use must be the one the numbered analysis gives.
    rng = random.Random(5)
    corpus = _synthetic_corpus(40, seed=2)
    index = TextIndex(char_ngrams=char_ngrams)
    index.add_many(enumerate(corpus[:37]))
    index.refresh()
    index.add_many(enumerate(corpus[37:], start=37))  # pending, too few to refresh
    strange = [f"x{i}y" for i in range(50)]
    queries = [
        " ".join(rng.choices([*corpus[rng.randrange(40)].split(), *strange], k=rng.randint(0, 30)))
        for _ in range(60)
    ]
    with index._lock:
        numbered = index._term_frequencies(queries, grow=False)
        plain = index._term_frequencies(queries, grow=False, number_unknown=False)
    assert (plain.indptr == numbered.indptr).all()
    assert (plain.values == numbered.values).all()
    assert (plain.is_char == numbered.is_char).all()
    known = numbered.columns >= 0
    assert (plain.columns[known] == numbered.columns[known]).all()
    assert (plain.columns[~known] == -1).all()
    assert (~known).sum() > 100  # the queries do hold unknown terms
    # and the scores are the numbered analysis's, bit for bit
    with index._lock:
        weights, rows = index._weigh(numbered)
        for i, query in enumerate(queries):
            start, end = int(numbered.indptr[i]), int(numbered.indptr[i + 1])
            scores, positions = index._summed_matches(
                numbered.columns[start:end], rows[start:end], weights[start:end], 0.0
            )
            expected = sorted(
                zip(positions.tolist(), np.minimum(scores, 1.0).tolist(), strict=True),
                key=lambda hit: (-hit[1], hit[0]),
            )[:40]
            assert index.query(query, k=40) == expected


@pytest.mark.parametrize("char_ngrams", [False, True])
def test_similarities_equal_query_scores_over_folded_pending_and_removed_keys(
    char_ngrams: bool,
) -> None:
    corpus = _synthetic_corpus(60, seed=11)
    index = TextIndex(char_ngrams=char_ngrams)
    index.add_many(enumerate(corpus[:45]))
    index.refresh()
    index.add_many(enumerate(corpus[45:], start=45))  # pending: not folded yet
    index.remove(3)  # a folded key that is gone
    index.remove(50)  # a pending key that is gone
    queries = [corpus[7], corpus[48], "w1 w2 w3", "nothing shared here", ""]
    keys = [50, 48, 7, 3, 0, 59, "never added", 12]
    matrix = index.similarities(queries, keys)
    assert matrix.shape == (len(queries), len(keys))
    for row, query in zip(matrix, queries, strict=True):
        expected = dict(index.query(query, k=100))
        for key, score in zip(keys, row, strict=True):
            assert score == pytest.approx(expected.get(key, 0.0), abs=1e-12), (query, key)
    assert matrix[0, keys.index(7)] == pytest.approx(1.0)
    assert matrix[1, keys.index(48)] == pytest.approx(1.0)
    assert not matrix[:, [keys.index(3), keys.index(50), keys.index("never added")]].any()


def test_similarities_of_nothing_and_bad_input() -> None:
    index = TextIndex()
    assert index.similarities(["a b"], ["x"]).shape == (1, 1)  # empty index: zeros
    index.add("x", "red apples")
    assert index.similarities([], ["x"]).shape == (0, 1)
    assert index.similarities(["red"], []).shape == (1, 0)
    with pytest.raises(TypeError, match="sequence of str"):
        index.similarities("red", ["x"])
    with pytest.raises(TypeError, match="must be a str"):
        index.similarities([b"red"], ["x"])  # type: ignore[list-item]


def test_keys_text_len_and_contains_reflect_the_indexed_texts(index: TextIndex) -> None:
    assert index.keys() == list(CORPUS)
    assert len(index) == len(CORPUS)
    assert "sql" in index
    assert "nope" not in index
    assert index.text("sql") == CORPUS["sql"]
    assert index.text("nope") is None


def test_results_are_deterministic() -> None:
    corpus = _synthetic_corpus(800)

    def build() -> TextIndex:
        built = TextIndex(char_ngrams=True)
        for i, text in enumerate(corpus):
            built.add(i, text)
            if i % 101 == 0:
                built.query(text)
        built.remove(5)
        return built

    first, second = build(), build()
    for query in corpus[:30]:
        assert first.query(query, k=7) == second.query(query, k=7)


def test_concurrent_adds_and_queries_stay_consistent() -> None:
    corpus = _synthetic_corpus(1200)
    index = TextIndex()
    index.add_many((i, text) for i, text in enumerate(corpus[:200]))
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def writer(offset: int) -> None:
        start.wait()
        for i in range(200 + offset, len(corpus), 2):
            index.add(i, corpus[i])
            if i % 10 == 0:
                index.remove(i - 100)

    def reader() -> None:
        start.wait()
        try:
            for i in range(300):
                for key, score in index.query(corpus[i], k=5):
                    assert isinstance(key, int)
                    assert 0.0 < score <= 1.0
        except BaseException as error:  # surfaced in the main thread below
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(offset,)) for offset in (0, 1)]
    threads += [threading.Thread(target=reader) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    removed = {i - 100 for i in range(200, len(corpus)) if i % 10 == 0}
    assert len(index) == len(corpus) - len(removed)
    for i in (251, 777, 1199):
        best_key, best_score = index.query(corpus[i], k=1)[0]
        assert best_key == i
        assert best_score == pytest.approx(1.0)
    for i in sorted(removed)[:20]:
        assert all(key != i for key, _ in index.query(corpus[i], k=20))


def _churned_memory(index: TextIndex, texts: list[str], live: int) -> int:
    """Bytes traced after writing `texts` with at most `live` of them indexed at once,
    and no query in between (the write-only pattern of a size-bounded cache)."""
    import gc
    import tracemalloc

    tracemalloc.start()
    try:
        for i, text in enumerate(texts):
            index.add(i, text)
            if i >= live:
                index.remove(i - live)
        gc.collect()
        return tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()


def test_memory_follows_live_texts_when_only_writes_happen() -> None:
    texts = _synthetic_corpus(8_000, seed=5)
    short, long = TextIndex(), TextIndex()
    after_short = _churned_memory(short, texts[:2_000], live=100)
    after_long = _churned_memory(long, texts, live=100)
    assert len(short) == len(long) == 100
    # Four times the writes, about the same memory: tombstones are folded on writes.
    assert after_long < 1.5 * after_short
    # ... and the survivors are still found, exactly as a fresh index finds them.
    fresh = TextIndex()
    fresh.add_many((i, texts[i]) for i in range(len(texts) - 100, len(texts)))
    query = texts[-1]
    assert long.query(query, k=3) == fresh.query(query, k=3)


@pytest.mark.parametrize("flag", [[], {}, "yes", None])
def test_a_lowercase_flag_that_is_not_a_bool_is_a_typed_error(flag: object) -> None:
    """The analyzers are shared per configuration, so a bad flag must not reach the cache
    as an unhashable key (an untyped TypeError)."""
    with pytest.raises(ArgumentTypeError, match="lowercase must be a bool"):
        TextIndex(lowercase=flag)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", range(20))
def test_posting_lists_are_what_scipy_gives_for_the_same_rows(seed: int) -> None:
    import scipy.sparse as sp

    from langchain_tokenopt.core.textindex import _postings, _Vectors

    rng = np.random.default_rng(seed)
    n_terms = int(rng.integers(1, 60))
    rows = []
    for _ in range(int(rng.integers(0, 25))):  # a row never repeats a term; order is free
        rows.append(rng.permutation(n_terms)[: int(rng.integers(0, n_terms + 1))])
    lengths = [len(row) for row in rows]
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    columns = np.concatenate([*rows, np.empty(0, np.int64)]).astype(np.int64)
    weights = rng.random(len(columns))
    tf = _Vectors(indptr, columns, np.ones(len(columns)), np.zeros(len(columns), np.bool_))

    starts, texts, posted = _postings(tf, weights, n_terms)

    by_term = sp.csr_matrix((weights, columns, indptr), shape=(len(rows), n_terms)).tocsc()
    assert starts.tolist() == by_term.indptr.tolist()
    assert texts.tolist() == by_term.indices.tolist()
    assert posted.tolist() == by_term.data.tolist()  # the same floats, bit for bit
    assert starts.dtype == texts.dtype == np.int64


@pytest.mark.parametrize("char_ngrams", [False, True])
def test_add_many_tells_each_key_the_distinct_word_terms_it_indexed(char_ngrams: bool) -> None:
    index = TextIndex(char_ngrams=char_ngrams, word_ngram_range=(1, 2), stop_words="english")
    texts = {"a": "Red apples and red pears", "b": "", "c": "the of and", "a2": "Blue sky"}
    seen: list[tuple[Hashable, list[str]]] = []
    index.add_many(
        [*texts.items(), ("a", "Green apples")],  # "a" again: its last text counts
        seen_words=lambda key, words: seen.append((key, sorted(words))),
    )
    analyzer = _analyzer("word", (1, 2), True, "english")
    del texts["a"]
    texts["a"] = "Green apples"  # a key given again is indexed in its last place
    assert seen == [(key, sorted(set(analyzer(text)))) for key, text in texts.items()]
    assert seen[-1] == ("a", ["apples", "green", "green apples"])


@pytest.mark.parametrize("n_ids", [1, 7, 1 << 16, (1 << 16) + 1, 1 << 20, 1 << 32, (1 << 32) + 5])
@pytest.mark.parametrize("seed", range(3))
def test_stable_order_of_term_ids_is_numpys_stable_argsort(n_ids: int, seed: int) -> None:
    from langchain_tokenopt.core.textindex import _stable_order

    rng = np.random.default_rng(seed)
    for size in (0, 1, 50, 5000):
        # many ties, the extremes of the range, ids that share their low 16 bits
        ids = rng.integers(0, n_ids, size).astype(np.int64)
        ids[: size // 4] = rng.choice([0, n_ids - 1, (n_ids - 1) & ~0xFFFF], size // 4)
        order = _stable_order(ids, n_ids)
        assert order.tolist() == np.argsort(ids, kind="stable").tolist()


def test_a_query_norm_is_summed_in_order_as_bincount_sums_it() -> None:
    """The one-row norm is the in-order sum `np.bincount` makes, not a compensated one
    (the built-in `sum` of floats from Python 3.12)."""
    import numpy as np

    from langchain_tokenopt.core.textindex import _in_order_sum

    values = [1e16, 1.0, -1e16, 3.0, 1e-9]
    expected = float(np.bincount(np.zeros(len(values), np.int64), weights=values)[0])
    assert _in_order_sum(values) == expected == 3.0 + 1e-9
    assert _in_order_sum([]) == 0.0
