"""The recall message's speed-ups keep it byte-identical: a long recalled message is cut
into the same line as before (`tests/support/reference_recall.py`), whose tokens, summed
from memoized sentence counts, equal a whole recount; the question's words follow the
question; the words counted per indexed message are read from the index's terms."""

from __future__ import annotations

from collections import Counter

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, HumanMessage
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from langchain_tokenopt.chat_history.planner import _WORD, ContextPlanner, Ledger, _fewest_tokens
from langchain_tokenopt.core.messages import message_to_text
from langchain_tokenopt.core.tokens import TokenCounter
from tests.support.reference_recall import reference_part

WORDS = ["locker", "code", "gym", "4417", "Oslo", "train", "blue", "seven"]

# sentence pieces that stress the pre-tokenizer at the seams the line is summed over:
# whitespace at either end, newlines, punctuation, digits, letters of any script
hostile_piece = st.text(
    alphabet=st.one_of(
        st.sampled_from(list(" \t\n\r/[]().:,'!?-_…0123456789aZ")),
        st.characters(codec="utf-8"),
    ),
    max_size=30,
)
plain_piece = st.lists(st.sampled_from(WORDS), min_size=1, max_size=6).map(" ".join)
separator = st.sampled_from([". ", "! ", "? ", "\n", ".\n\n", ". \n ", " ", "\n  "])
long_text = st.lists(
    st.tuples(st.one_of(plain_piece, hostile_piece), separator), min_size=1, max_size=14
).map(lambda parts: "".join(piece + sep for piece, sep in parts))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    model=st.sampled_from(["gpt-4o", "gpt-4", "claude-3-5-haiku-latest"]),
    text=long_text,
    question=st.one_of(plain_piece, hostile_piece),
    caps=st.lists(st.integers(16, 160), min_size=1, max_size=3),
    position=st.sampled_from([0, 7, 1234]),
)
# a kept sentence after the mark that starts with a digit, with punctuation, with a letter
@example(
    model="gpt-4o",
    text="Oslo code 4417. (blue) train. 7 seven gym. Oslo code. ",
    question="code",
    caps=[60],
    position=0,
)
# an indented sentence first and after the mark; a sentence of whitespace only first
@example(
    model="gpt-4",
    text="  code 4417\n    Oslo code\n \nblue code.",
    question="code",
    caps=[60, 40],
    position=7,
)
def test_a_long_recalled_message_is_cut_as_before_and_counted_exactly(
    model: str, text: str, question: str, caps: list[int], position: int
) -> None:
    counter = TokenCounter(model)
    planner = ContextPlanner(counter, target_ratio=0.75, recall=True)
    filler = [AIMessage("ok") for _ in range(position)]
    ledger = Ledger.of([*filler, HumanMessage(text), HumanMessage(question)], counter, False)
    for cap in [*caps, *caps]:  # the second time from memoized counts: the same answer
        line, tokens = planner._part(ledger, position, cap)
        expected_line, expected_tokens = reference_part(planner, ledger, position, cap)
        assert line == expected_line
        assert tokens == expected_tokens == int(counter.count_text(line))


def test_the_words_of_the_question_follow_the_question() -> None:
    counter = TokenCounter("gpt-4o")
    ledger = Ledger.of([HumanMessage("Where is the locker code?")], counter, pin_system=False)
    assert ledger.question_words() == {"where", "the", "locker", "code"}
    ledger.extend([AIMessage("In Oslo."), HumanMessage("And the train?")], counter)
    assert ledger.question_words() == {"and", "the", "train"}
    ledger.extend([AIMessage("Blue.")], counter)
    assert ledger.question_words() == frozenset()  # answered: nothing pending


# text that stresses reading words two ways: letters of any script and case (some change
# length when lowercased), digits, "_" (a word character `_WORD` does not take), stop words
word_soup = st.lists(
    st.one_of(
        st.sampled_from(["the", "whereafter", "am", "Locker", "code_4417", "İstanbul", "ß"]),
        st.sampled_from(["4417", "x1y2z3", "é", "ﬁle", "a\u0301b", " ", ".", "-", "\n"]),
        st.characters(codec="utf-8"),
    ),
    max_size=30,
).map("".join)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(word_soup, min_size=1, max_size=12))
def test_recall_counts_the_words_of_each_indexed_message_as_read_from_its_text(
    texts: list[str],
) -> None:
    """The words recall counts per message, read from the index's terms, are those the
    message's lowercased text holds, less stop words, as before (commit f7fa6d2)."""
    counter = TokenCounter("gpt-4o")
    messages = [HumanMessage(text) for text in texts]
    ledger = Ledger.of([*messages, HumanMessage("and now?")], counter, pin_system=False)
    ledger.recall("and now?", before=len(messages), limit=1, min_score=0.0)
    expected: Counter[str] = Counter()
    for message in messages:
        if text := message_to_text(message):
            expected.update(set(_WORD.findall(text.lower())) - ENGLISH_STOP_WORDS)
    assert ledger.indexed_count >= len(messages)
    assert ledger._word_counts == expected


def test_the_recall_query_is_worked_out_again_once_more_messages_are_indexed() -> None:
    """The query is memoized for the question until more messages are indexed, which
    changes how rare its words are."""
    counter = TokenCounter("gpt-4o")
    question = "What is my locker code?"
    ledger = Ledger.of([HumanMessage("My locker code is 4417."), AIMessage("Ok.")], counter, False)
    ledger._index_upto(2)
    assert ledger._rare_words(question) == "code locker"
    assert ledger._rare_words(question) == "code locker"  # from the memo
    ledger.extend([HumanMessage(f"The code of room {i} is {i}.") for i in range(40)], counter)
    ledger._index_upto(len(ledger))
    assert ledger._rare_words(question) == "locker"  # "code" is common now
    fresh = Ledger.of(ledger.messages, counter, pin_system=False)
    fresh._index_upto(len(fresh))
    assert fresh._rare_words(question) == "locker"


@settings(max_examples=400, deadline=None)
@given(model=st.sampled_from(["gpt-4o", "gpt-4"]), text=long_text.filter(bool))
@example(model="gpt-4o", text="a  b \u00a0c \td\n e 1 2 3 ( x")
def test_the_fewest_tokens_of_a_sentence_are_at_most_its_tokens(model: str, text: str) -> None:
    """What lets a long message's cut skip counting a sentence that cannot fit."""
    assert _fewest_tokens(text) <= int(TokenCounter(model).count_text(text))
