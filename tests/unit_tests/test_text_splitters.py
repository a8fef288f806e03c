"""TokenAwareTextSplitter: exact limits, sentence ends, lossless joins, safe hard cuts."""

from __future__ import annotations

import itertools
import random
import re

import pytest
from langchain_core.documents import Document
from langchain_text_splitters import TextSplitter

from langchain_tokenopt.core.tokens import TokenCounter
from langchain_tokenopt.text_splitters import TokenAwareTextSplitter

COUNTER = TokenCounter("gpt-4o")
SENTENCE_END = re.compile(r"[.!?][\"')\]]*\s*$")
WORDS = [
    *("the", "cat", "sat", "on", "a", "mat", "while", "rain", "fell", "over", "London"),
    *("and", "nobody", "noticed", "Holmes", "said", "that", "Watson", "had", "never"),
    *("seen", "anything", "like", "it", "in", "his", "life"),
]
EXOTIC = [
    "naïve",
    "Übermaß",
    "日本語の文章",
    "🦜🦩",
    "𓀀",
    "🧑\u200d🚀",
    "\u0e3f100",
    "ẞ",
    "x" * 300,
]


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS + EXOTIC if rng.random() < 0.1 else WORDS)]
    words += [rng.choice(WORDS) for _ in range(rng.randint(0, 40))]
    ending = rng.choice([". ", ".  ", "! ", "? ", '." ', ".\n", ".\t\t"])
    return " ".join(words).capitalize() + ending


def _document(seed: int) -> str:
    """A generated document: paragraphs of sentences, odd whitespace, some huge 'words'."""
    rng = random.Random(seed)
    parts: list[str] = []
    if rng.random() < 0.3:
        parts.append(rng.choice(["\n\n", "   ", "\t"]))
    for _ in range(rng.randint(1, 12)):
        for _ in range(rng.randint(1, 8)):
            parts.append(_sentence(rng))
        if rng.random() < 0.15:  # a run-on line with no sentence end at all
            parts.append("-".join(rng.choice(WORDS + EXOTIC) for _ in range(rng.randint(50, 400))))
        parts.append(rng.choice(["\n\n", "\n\n\n", "\n \n", "\n"]))
    return "".join(parts)


DOCUMENTS = [_document(seed) for seed in range(40)]


@pytest.mark.parametrize("chunk_size", [8, 33, 128, 512])
def test_no_chunk_ever_exceeds_chunk_size(chunk_size: int) -> None:
    splitter = TokenAwareTextSplitter(chunk_size=chunk_size)
    for text in DOCUMENTS:
        for chunk in splitter.split_text(text):
            assert COUNTER.count_text(chunk) <= chunk_size, chunk


@pytest.mark.parametrize("chunk_size", [8, 33, 512])
def test_joining_chunks_without_overlap_gives_back_the_input(chunk_size: int) -> None:
    splitter = TokenAwareTextSplitter(chunk_size=chunk_size)
    for text in DOCUMENTS:
        chunks = splitter.split_text(text)
        assert "".join(chunks) == text
        assert all(chunks), "no empty chunk"


def test_chunk_is_counted_as_joined_text_not_as_sum_of_sentences() -> None:
    # "No.\t\t" is 3 tokens alone, but each join adds a token: ten of them are 39.
    sentence = "No.\t\t"
    assert COUNTER.count_text(sentence * 10) > 10 * COUNTER.count_text(sentence)
    splitter = TokenAwareTextSplitter(chunk_size=30)
    chunks = splitter.split_text(sentence * 40)
    assert all(COUNTER.count_text(chunk) <= 30 for chunk in chunks)
    assert "".join(chunks) == sentence * 40
    # and it still packs: close to the limit, not one sentence per chunk
    assert max(COUNTER.count_text(chunk) for chunk in chunks) >= 27


def test_chunks_end_at_sentence_ends_when_sentences_fit() -> None:
    text = " ".join(
        f"Sentence number {i} talks about {'rain ' * (i % 7)}and the city." for i in range(300)
    )
    chunks = TokenAwareTextSplitter(chunk_size=64).split_text(text)
    assert len(chunks) > 10
    for chunk in chunks:
        assert SENTENCE_END.search(chunk), chunk
        assert chunk.lstrip().startswith("Sentence number")


def test_prefers_a_paragraph_end_when_the_chunk_stays_mostly_full() -> None:
    paragraph = "A short line of text here. " * 5 + "\n\n"
    text = paragraph * 12
    chunks = TokenAwareTextSplitter(chunk_size=100).split_text(text)
    assert all(chunk.endswith("\n\n") for chunk in chunks)
    assert "".join(chunks) == text


def test_a_sentence_longer_than_the_limit_is_cut_at_words() -> None:
    sentence = " ".join(["word"] * 200) + "."
    chunks = TokenAwareTextSplitter(chunk_size=16).split_text(sentence)
    assert "".join(chunks) == sentence
    assert all(chunk.endswith(" ") for chunk in chunks[:-1]), "cut after a space, not mid-word"
    assert all(COUNTER.count_text(chunk) <= 16 for chunk in chunks)


@pytest.mark.parametrize("text", ["🦜" * 500, "𓀀🧑\u200d🚀日本語" * 120, "ẞ฿" * 400 + "é" * 999])
def test_hard_cut_never_splits_a_multibyte_character(text: str) -> None:
    for chunk_size in (4, 7, 50):
        chunks = TokenAwareTextSplitter(chunk_size=chunk_size).split_text(text)
        assert "".join(chunks) == text
        assert not any("\ufffd" in chunk for chunk in chunks)
        assert all(COUNTER.count_text(chunk) <= chunk_size for chunk in chunks)


def test_chunk_size_too_small_for_one_character_is_a_clear_error() -> None:
    # The parrot emoji is three tokens in o200k_base: two tokens cannot hold it.
    assert COUNTER.count_text("🦜") == 3
    with pytest.raises(ValueError, match="cannot hold the character"):
        TokenAwareTextSplitter(chunk_size=2).split_text("🦜")


def test_overlap_repeats_whole_trailing_sentences_within_the_overlap_budget() -> None:
    sentence = re.compile(r"This is sentence \d+ of the story\. ")
    all_sentences = [f"This is sentence {i} of the story. " for i in range(120)]
    chunks = TokenAwareTextSplitter(chunk_size=60, chunk_overlap=20).split_text(
        "".join(all_sentences)
    )
    parts = [sentence.findall(chunk) for chunk in chunks]
    for chunk, part in zip(chunks, parts, strict=True):
        assert "".join(part) == chunk, "chunks are whole sentences"
        assert COUNTER.count_text(chunk) <= 60
    merged = list(parts[0])
    for previous, current in itertools.pairwise(parts):
        shared = max(k for k in range(len(current)) if previous[len(previous) - k :] == current[:k])
        assert shared >= 1, "consecutive chunks share trailing sentences"
        assert COUNTER.count_text("".join(current[:shared])) <= 20
        merged += current[shared:]
    assert merged == all_sentences


def test_is_a_langchain_text_splitter_with_start_indexes() -> None:
    splitter = TokenAwareTextSplitter(chunk_size=40, add_start_index=True)
    assert isinstance(splitter, TextSplitter)
    text = DOCUMENTS[3]
    docs = splitter.split_documents([Document(page_content=text, metadata={"source": "x"})])
    assert len(docs) > 1
    for doc in docs:
        start = doc.metadata["start_index"]
        assert text[start : start + len(doc.page_content)] == doc.page_content
        assert doc.metadata["source"] == "x"


def test_encoding_wins_over_model() -> None:
    splitter = TokenAwareTextSplitter(model="gpt-4", encoding="o200k_base")
    assert splitter.token_counter.encoding_name == "o200k_base"
    assert TokenAwareTextSplitter(model="gpt-4").token_counter.encoding_name == "cl100k_base"


def test_empty_text_gives_no_chunks_and_whitespace_is_kept() -> None:
    splitter = TokenAwareTextSplitter(chunk_size=16)
    assert splitter.split_text("") == []
    assert splitter.split_text("\n\n   \n") == ["\n\n   \n"]


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        TokenAwareTextSplitter(chunk_size=0)
    with pytest.raises(ValueError, match="overlap"):
        TokenAwareTextSplitter(chunk_size=10, chunk_overlap=11)
    with pytest.raises(ValueError, match="whitespace"):
        TokenAwareTextSplitter(strip_whitespace=True)
    with pytest.raises(ValueError, match="tokenizer"):
        TokenAwareTextSplitter(length_function=len)
    with pytest.raises(TypeError):
        TokenAwareTextSplitter().split_text(b"bytes")  # type: ignore[arg-type]
