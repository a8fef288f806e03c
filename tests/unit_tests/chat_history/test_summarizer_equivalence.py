"""The extractive summarizer writes, byte for byte, the summaries of its algorithm as it
was before its speed-up (`tests/support/reference_summarizer.py`), fold after fold."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from langchain_tokenopt.chat_history.summarizers import ExtractiveSummarizer
from langchain_tokenopt.core.tokens import TokenCounter
from tests.support.reference_summarizer import ReferenceExtractiveSummarizer

COUNTERS = {name: TokenCounter(name) for name in ("gpt-4o", "gpt-4")}
PROSE = Path(__file__).resolve().parents[4] / "shared" / "data" / "text" / "big.txt"

_WORDS = st.sampled_from(
    [
        "Priya",
        "priya",
        "Denver",
        "the",
        "and",
        "of",
        "desk",
        "walnut",
        "May",
        "may",
        "March",
        "march",
        "Friday",
        "sat",
        "Sat",
        "twelve",
        "half",
        "$1,249",
        "88213",
        "9:40",
        "3.5%",
        "it's",
        "O'Brien",
        "über",
        "Ünal",
        "1.",
        "-",
        "*",
        "##",
        "e.g.",
        "Dr.",
        "Mr.",
        "ok",
        "thanks",
        "Hi",
        "NASA",
        "a—b",
        "(see",
        "note)",
        "x;",
        "y,",
    ]
)
_ENDS = st.sampled_from([". ", "! ", "? ", ", ", "; ", ": ", " — ", " ", "\n", "\n- ", ".\n\n"])
_TEXT = st.lists(st.tuples(_WORDS, _ENDS), max_size=60).map(
    lambda pairs: "".join(word + end for word, end in pairs)
)
_MESSAGES = st.lists(
    st.tuples(st.booleans(), st.one_of(_TEXT, st.text(max_size=200))), min_size=1, max_size=6
).map(lambda pairs: [HumanMessage(t) if human else AIMessage(t) for human, t in pairs])


def _assert_same_folds(
    folds: list[tuple[list[BaseMessage], int]], model: str = "gpt-4o", max_sentence_tokens: int = 24
) -> None:
    """Each fold summarizes its messages with the summary so far, as the history does."""
    counter = COUNTERS[model]
    fast = ExtractiveSummarizer(token_counter=counter, max_sentence_tokens=max_sentence_tokens)
    reference = ReferenceExtractiveSummarizer(counter, max_sentence_tokens)
    summary = ""
    for messages, cap in folds:
        expected = reference.summarize(messages, summary, cap)
        assert fast.summarize(messages, summary, cap) == expected
        request = {"messages": messages, "previous_summary": summary, "max_tokens": cap}
        assert fast.invoke(request) == expected  # again, from its memos
        summary = expected


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(_MESSAGES, st.integers(1, 300)), min_size=1, max_size=5),
    st.sampled_from(sorted(COUNTERS)),
    st.sampled_from([8, 12, 24]),
)
def test_summaries_equal_the_reference_on_arbitrary_folds(
    folds: list[tuple[list[BaseMessage], int]], model: str, max_sentence_tokens: int
) -> None:
    _assert_same_folds(folds, model, max_sentence_tokens)


@pytest.mark.skipif(not PROSE.exists(), reason="the shared prose corpus is not here")
@pytest.mark.parametrize("seed", range(6))
def test_summaries_equal_the_reference_on_real_prose(seed: int) -> None:
    rng = random.Random(seed)
    with PROSE.open(encoding="utf-8", errors="replace") as file:
        file.seek(rng.randrange(2_500_000))
        text = file.read(60_000)
    paragraphs = [p.strip() for p in text.split("\n\n") if p.strip()]
    folds: list[tuple[list[BaseMessage], int]] = []
    for start in range(0, min(len(paragraphs), 120), 8):
        chunk = paragraphs[start : start + 8]
        messages: list[BaseMessage] = [
            HumanMessage(p) if i % 2 == 0 else AIMessage(p) for i, p in enumerate(chunk)
        ]
        folds.append((messages, rng.choice([60, 250, 1000])))
    assert len(folds) > 3
    _assert_same_folds(folds)


_PIECE_TEXT = st.one_of(_TEXT, st.text(min_size=1, max_size=80)).map(str.strip).filter(bool)
_ROLE = st.sampled_from(["User", "Assistant", "", "Tool lookup", "Foo ", "Ünal", "1x", " x"])


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.tuples(_ROLE, _PIECE_TEXT), min_size=1, max_size=8),
    st.sampled_from(["gpt-4o", "gpt-4"]),
)
def test_a_summary_counts_as_the_sum_of_its_parts(parts: list[tuple[str, str]], model: str) -> None:
    """`_rendered_tokens` (summed per head and piece) is the summary's count."""
    from langchain_tokenopt.chat_history.summarizers import _Piece

    summarizer = ExtractiveSummarizer(token_counter=COUNTERS[model])
    pieces = []
    for order, (role, text) in enumerate(parts):
        facts = summarizer._facts(text)[1]
        pieces.append(_Piece(order, role, text, facts, facts.tokens))
    text = summarizer._render(pieces)
    assert summarizer._rendered_tokens(pieces, text) == COUNTERS[model].count_text(text)
