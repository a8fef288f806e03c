"""Semantic matching in `TokenOptCache`: what may match, what never may, and how well.

Precision and recall are measured on fixed pair sets: paraphrases that should be
answered from the cache, and near-misses (differing in a number, a negation, a quoted
string, a code span, an identifier, a name or the question word) that must never be.
The figures are printed (run with `-s`) and asserted.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.load import dumps
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.outputs import Generation

from langchain_tokenopt.cache.exactness import exactness_features, prompt_text
from langchain_tokenopt.cache.llm_cache import CACHE_SIMILARITY_KEY, TokenOptCache
from langchain_tokenopt.core.markers import CACHE_HIT_KEY
from langchain_tokenopt.core.textindex import TextIndex
from langchain_tokenopt.stores import MemoryStore, SQLiteStore

RECOMMENDED_THRESHOLD = 0.7
LLM = "[('_type', 'fake'), ('model', 'gpt-4o'), ('stop', None)]"

# (cached prompt, new prompt that deserves the cached answer)
PARAPHRASES = [
    ("What is the capital of France?", "what is the capital of france"),
    ("What's the capital of Germany?", "What is the capital of Germany?"),
    ("How do I reverse a list in Python?", "How can I reverse a list in Python?"),
    ("Explain how photosynthesis works.", "Explain how photosynthesis works, please."),
    ("Please summarize the plot of Hamlet.", "Summarize the plot of Hamlet."),
    ("What is 2+2?", "what is 2 + 2"),
    ('Translate "good morning" to Spanish', 'Translate "good morning" into Spanish'),
    ("Give me three tips for better sleep", "Give me 3 tips for better sleep"),
    ("Why is the sky blue?", "Why is the sky blue??"),
    ("Can you explain recursion?", "Could you explain recursion?"),
    ("What are the benefits of unit testing?", "What are the benefits of unit tests?"),
    ("How do I install numpy?", "How to install numpy?"),
    ("Why isn't my code working?", "Why is my code not working?"),
    ("Tell me a joke about cats", "Tell me a joke about cats!"),
    ("What is the difference between TCP and UDP?", "What's the difference between TCP and UDP?"),
    ("How do I center a div in CSS?", "How do I center a div using CSS?"),
    ("Write a short poem about the ocean", "Write a short poem about the sea"),
    ("List five famous painters", "list 5 famous painters"),
    ("What does HTTP stand for?", "What does HTTP stand for"),
    ("Recommend a good book on machine learning", "Recommend a good book about machine learning"),
]

# (cached prompt, new prompt whose answer differs): must never hit, at any threshold.
NEAR_MISSES = [
    # numbers and arithmetic
    ("What is 2+2?", "What is 2+3?"),
    ("What is 2+2?", "What is 2*2?"),
    ("Convert 100 USD to EUR", "Convert 200 USD to EUR"),
    ("What was the population of France in 1990?", "What was the population of France in 2000?"),
    ("List the first five prime numbers", "List the first six prime numbers"),
    ("Write a 500 word essay about dogs", "Write a 300 word essay about dogs"),
    ("What is 15% of 80?", "What is 15% of 90?"),
    ("Is 7 a prime number?", "Is 9 a prime number?"),
    ("Give me three tips for better sleep", "Give me four tips for better sleep"),
    ("How many days are in 3 weeks?", "How many days are in 4 weeks?"),
    ("Sum 1,000 and 250", "Sum 1,000 and 2,500"),
    # negation
    ("Why is the sky blue?", "Why is the sky not blue?"),
    ("Should I use tabs for indentation?", "Should I not use tabs for indentation?"),
    ("List foods that contain gluten", "List foods that don't contain gluten"),
    ("Which animals can fly?", "Which animals cannot fly?"),
    ("Write a poem with rhymes", "Write a poem without rhymes"),
    ("Is coffee healthy?", "Is coffee never healthy?"),
    ("Explain why the code works", "Explain why the code doesn't work"),
    # quoted strings
    ('Translate "good morning" to Spanish', 'Translate "good night" to Spanish'),
    ('What does the word "ephemeral" mean?', 'What does the word "ubiquitous" mean?'),
    ("Count the letters in 'banana'", "Count the letters in 'bandana'"),
    ('Is "color" or "colour" correct?', 'Is "colour" or "colour" correct?'),
    ("Find synonyms for “happy”", "Find synonyms for “sad”"),
    # code spans
    ("What does `list.sort()` do in Python?", "What does `sorted()` do in Python?"),
    ("Explain this code: ```print(1)```", "Explain this code: ```print(2)```"),
    ("Why does `a == b` fail?", "Why does `a is b` fail?"),
    ("What is the output of `len('abc')`?", "What is the output of `len('abcd')`?"),
    # identifiers, names, question words
    ("How do I use os.path.join?", "How do I use os.path.split?"),
    ("What is my_variable used for?", "What is my_value used for?"),
    ("What is the capital of France?", "What is the capital of Spain?"),
    ("How do I sort a list in Python?", "How do I sort a list in Java?"),
    ("Tell me about the history of Rome", "Tell me about the history of Athens"),
    ("Who wrote Hamlet?", "Who wrote Macbeth?"),
    ("Where is Paris?", "Why is Paris?"),
]

# Near-misses no feature can see (antonyms, changed qualifiers): left to the
# threshold. They do not match at the recommended threshold; lower ones let some in.
LEXICAL_NEAR_MISSES = [
    ("What is the boiling point of water?", "What is the freezing point of water?"),
    ("How do I start a car?", "How do I stop a car?"),
    ("Summarize this article briefly", "Summarize this article in detail"),
    ("Explain quantum computing", "Explain quantum computing in French"),
]


def as_prompt(text: str) -> str:
    return dumps([HumanMessage(text)])


def filled_cache(threshold: float) -> TokenOptCache:
    """A cache holding the first prompt of every pair, answered with that prompt."""
    cache = TokenOptCache(similarity_threshold=threshold)
    cached = {a for a, _ in PARAPHRASES + NEAR_MISSES + LEXICAL_NEAR_MISSES}
    for text in sorted(cached):
        cache.update(as_prompt(text), LLM, [Generation(text=text)])
    return cache


def answers(cache: TokenOptCache, pairs: list[tuple[str, str]]) -> list[str | None]:
    found = [cache.lookup(as_prompt(new), LLM) for _, new in pairs]
    return [None if hit is None else hit[0].text for hit in found]


def precision(hits: list[tuple[str, str | None]]) -> float:
    """Share of hits that returned the right answer (1.0 when nothing hit)."""
    returned = [(right, got) for right, got in hits if got is not None]
    return sum(right == got for right, got in returned) / len(returned) if returned else 1.0


@pytest.mark.parametrize("threshold", [0.3, 0.5, RECOMMENDED_THRESHOLD, 0.9])
def test_near_misses_never_hit_whatever_the_threshold(threshold: float) -> None:
    cache = filled_cache(threshold)
    got = answers(cache, NEAR_MISSES)
    # A near-miss query has no right answer in the cache: any hit is a false positive.
    wrong = [(new, hit) for (_, new), hit in zip(NEAR_MISSES, got, strict=True) if hit]
    near_miss_precision = 1.0 if not wrong else 0.0
    print(
        f"threshold {threshold}: near-miss precision {near_miss_precision:.2f} on {len(got)} pairs"
    )
    assert wrong == []


def test_paraphrases_hit_at_the_recommended_threshold() -> None:
    cache = filled_cache(RECOMMENDED_THRESHOLD)
    got = answers(cache, PARAPHRASES)
    pairs = [(cached, hit) for (cached, _), hit in zip(PARAPHRASES, got, strict=True)]
    recall = sum(cached == hit for cached, hit in pairs) / len(pairs)
    print(
        f"threshold {RECOMMENDED_THRESHOLD}: paraphrase recall {recall:.2f}, "
        f"precision {precision(pairs):.2f} on {len(pairs)} pairs"
    )
    assert precision(pairs) == 1.0
    assert recall >= 0.8


def test_lexical_near_misses_do_not_hit_at_the_recommended_threshold() -> None:
    cache = filled_cache(RECOMMENDED_THRESHOLD)
    assert answers(cache, LEXICAL_NEAR_MISSES) == [None] * len(LEXICAL_NEAR_MISSES)


def test_two_plus_two_never_answers_two_plus_three_through_a_chat_model() -> None:
    cache = TokenOptCache(similarity_threshold=0.01)
    model = GenericFakeChatModel(
        messages=iter([AIMessage("4"), AIMessage("5"), AIMessage("unexpected")]), cache=cache
    )
    assert model.invoke("What is 2+2?").content == "4"
    assert model.invoke("What is 2+3?").content == "5"
    assert model.invoke("what is 2 + 2").content == "4"


def test_semantic_hits_are_marked_and_counted() -> None:
    cache = TokenOptCache(similarity_threshold=RECOMMENDED_THRESHOLD)
    model = GenericFakeChatModel(messages=iter([AIMessage("Meow."), AIMessage("no")]), cache=cache)
    model.invoke("Tell me a joke about cats")
    hit = model.invoke("Tell me a joke about cats!")
    assert hit.content == "Meow."
    assert hit.response_metadata[CACHE_HIT_KEY] is True
    assert RECOMMENDED_THRESHOLD <= hit.response_metadata[CACHE_SIMILARITY_KEY] <= 1.0
    stats = cache.stats()
    assert (stats.hits, stats.semantic_hits, stats.misses) == (1, 1, 1)


def test_semantic_match_stays_within_one_llm_string() -> None:
    cache = TokenOptCache(similarity_threshold=0.5)
    cache.update(as_prompt("Tell me a joke about cats"), "model A", [Generation(text="A")])
    assert cache.lookup(as_prompt("Tell me a joke about cats!"), "model B") is None
    assert cache.lookup(as_prompt("Tell me a joke about cats!"), "model A") == [
        Generation(text="A")
    ]


def conversation(system: str, question: str) -> str:
    messages: list[BaseMessage] = [SystemMessage(system), HumanMessage(question)]
    return dumps(messages)


def test_earlier_messages_must_match_exactly() -> None:
    cache = TokenOptCache(similarity_threshold=0.5)
    cache.update(
        conversation("Answer in English.", "Tell me a joke about cats"),
        LLM,
        [Generation(text="english joke")],
    )
    assert (
        cache.lookup(conversation("Answer in French.", "Tell me a joke about cats!"), LLM) is None
    )
    assert cache.lookup(conversation("Answer in English.", "Tell me a joke about cats!"), LLM) == [
        Generation(text="english joke")
    ]


def test_the_json_envelope_is_not_what_gets_compared() -> None:
    index = TextIndex(char_ngrams=True)
    index.add_many([(0, as_prompt("Hi")), (1, "Hi")])
    # LangChain's envelope makes two unrelated short prompts look almost identical ...
    assert index.similarity(as_prompt("Hi"), as_prompt("Bye")) > 0.8
    # ... while their text is not alike, and the cache compares the text.
    hi, bye = prompt_text(as_prompt("Hi")), prompt_text(as_prompt("Bye"))
    assert hi is not None and bye is not None
    assert (hi[1], bye[1]) == ("Hi", "Bye") and hi[0] == bye[0]
    assert index.similarity(hi[1], bye[1]) < 0.3
    cache = TokenOptCache(similarity_threshold=0.3)
    cache.update(as_prompt("Hi"), LLM, [Generation(text="hello")])
    assert cache.lookup(as_prompt("Bye"), LLM) is None


def test_prompts_with_images_are_exact_only() -> None:
    image = HumanMessage(
        content=[
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        ]
    )
    assert prompt_text(dumps([image])) is None
    cache = TokenOptCache(similarity_threshold=0.3)
    cache.update(dumps([image]), LLM, [Generation(text="a cat")])
    other = HumanMessage(
        content=[
            {"type": "text", "text": "What is in this picture??"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,BBBB"}},
        ]
    )
    assert cache.lookup(dumps([other]), LLM) is None


def test_plain_text_prompts_of_text_llms_match_too() -> None:
    cache = TokenOptCache(similarity_threshold=RECOMMENDED_THRESHOLD)
    cache.update("Tell me a joke about cats", LLM, [Generation(text="Meow.")])
    assert cache.lookup("Tell me a joke about cats!", LLM) == [Generation(text="Meow.")]


def test_another_process_sees_semantic_entries_after_refresh(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    writer = TokenOptCache.sqlite(path, similarity_threshold=RECOMMENDED_THRESHOLD)
    reader = TokenOptCache.sqlite(path, similarity_threshold=RECOMMENDED_THRESHOLD)
    writer.update(as_prompt("Tell me a joke about cats"), LLM, [Generation(text="Meow.")])
    # The reader's first semantic lookup loads the index from the store.
    assert reader.lookup(as_prompt("Tell me a joke about cats!"), LLM) == [Generation(text="Meow.")]
    writer.update(as_prompt("Tell me a joke about dogs"), LLM, [Generation(text="Woof.")])
    reader.refresh()
    assert reader.lookup(as_prompt("Tell me a joke about dogs!"), LLM) == [Generation(text="Woof.")]
    writer.clear()
    reader.refresh()
    assert reader.lookup(as_prompt("Tell me a joke about dogs!"), LLM) is None


def test_expired_entries_stop_matching() -> None:
    clock = [1000.0]
    cache = TokenOptCache(
        MemoryStore(time_func=lambda: clock[0]),
        ttl_seconds=10,
        similarity_threshold=RECOMMENDED_THRESHOLD,
    )
    cache.update(as_prompt("Tell me a joke about cats"), LLM, [Generation(text="Meow.")])
    assert cache.lookup(as_prompt("Tell me a joke about cats!"), LLM) is not None
    clock[0] += 11
    assert cache.lookup(as_prompt("Tell me a joke about cats!"), LLM) is None


def test_evicted_entries_stop_matching(tmp_path: Path) -> None:
    cache = TokenOptCache(
        SQLiteStore(tmp_path / "c.db"), max_entries=2, similarity_threshold=RECOMMENDED_THRESHOLD
    )
    cache.update(as_prompt("Tell me a joke about cats"), LLM, [Generation(text="Meow.")])
    cache.update(as_prompt("Name a red fruit"), LLM, [Generation(text="apple")])
    cache.update(as_prompt("Name a yellow fruit"), LLM, [Generation(text="banana")])
    assert cache.lookup(as_prompt("Tell me a joke about cats!"), LLM) is None
    assert cache.lookup(as_prompt("Name a yellow fruit!"), LLM) == [Generation(text="banana")]


async def test_async_semantic_lookup() -> None:
    cache = TokenOptCache(similarity_threshold=RECOMMENDED_THRESHOLD)
    await cache.aupdate(as_prompt("Tell me a joke about cats"), LLM, [Generation(text="Meow.")])
    assert await cache.alookup(as_prompt("Tell me a joke about cats!"), LLM) == [
        Generation(text="Meow.")
    ]
    assert await cache.alookup(as_prompt("Tell me 2 jokes about cats"), LLM) is None


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("I need twenty-one apples", "I need 21 apples"),
        ("Sum 1,000 and 5", "sum 1000 and 5"),
        ("Why isn't it here?", "Why is it not here?"),
        ("Print `x`", "print `x` please"),
        ('Say "hi"', "Say “hi”"),
    ],
)
def test_equivalent_spellings_have_equal_features(a: str, b: str) -> None:
    assert exactness_features(a) == exactness_features(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("What is 2+2?", "What is 2+3?"),
        ("What is 2+2?", "What is 2-2?"),
        ("Set x to -5", "Set x to 5"),
        ("It is fine", "It is not fine"),
        ('Say "hi"', 'Say "ho"'),
        ("Run `ls -a`", "Run `ls -l`"),
        ("Use pandas.read_csv", "Use pandas.read_json"),
        ("Where is it?", "When is it?"),
    ],
)
def test_different_exact_details_have_different_features(a: str, b: str) -> None:
    assert exactness_features(a) != exactness_features(b)


# ------------------------------------------------------------ semantic=True (wording)


def test_semantic_true_answers_a_rewording_with_one_pointer_and_marks_it() -> None:
    cache = TokenOptCache(semantic=True)
    model = GenericFakeChatModel(messages=iter([AIMessage("Paris."), AIMessage("no")]), cache=cache)
    model.invoke("What's the capital of France?")
    hit = model.invoke("hey, can you tell me what is the capital of france")
    assert hit.content == "Paris."
    assert hit.response_metadata[CACHE_HIT_KEY] is True
    assert hit.response_metadata[CACHE_SIMILARITY_KEY] == 1.0
    assert (cache.stats().semantic_hits, cache.stats().misses) == (1, 1)
    assert cache.lookup(as_prompt("What is the capital of Spain?"), LLM) is None
    assert cache.lookup(as_prompt("what is the capital of spain"), LLM) is None


def test_semantic_true_rewording_matches_after_a_turn_replayed_from_the_cache() -> None:
    """The earlier conversation is compared as the model sees it: an answer replayed from
    the cache (other id, hit marker in its metadata) still shares the partition, so the
    reworded next question hits; `key="exact"` compares raw JSON and cannot."""
    first_answer = AIMessage("Hello! How can I help?", id="run-1", response_metadata={})
    replayed = AIMessage(
        "Hello! How can I help?", id="run-2", response_metadata={CACHE_HIT_KEY: True}
    )
    asked = [HumanMessage("hi"), first_answer, HumanMessage("What's the capital of France?")]
    reworded = [HumanMessage("hi"), replayed, HumanMessage("what is the capital of france")]
    changed = [
        HumanMessage("hi"),
        AIMessage("Bonjour!", id="run-3"),
        HumanMessage("what is the capital of france"),
    ]
    for key, expected in (("normalized", "Paris."), ("exact", None)):
        cache = TokenOptCache(semantic=True, key=key)  # type: ignore[arg-type]
        cache.update(dumps(asked), LLM, [Generation(text="Paris.")])
        found = cache.lookup(dumps(reworded), LLM)
        assert (found[0].text if found else None) == expected, key
        assert cache.lookup(dumps(changed), LLM) is None, key


def test_semantic_true_is_seen_by_another_process_at_once() -> None:
    cache = TokenOptCache(semantic=True)
    cache.update(as_prompt("How do I install numpy?"), LLM, [Generation(text="pip")])
    # another process on the same store: no index to load or re-sync, no refresh()
    other = TokenOptCache(cache.store, semantic=True)
    assert other.lookup(as_prompt("how to install numpy"), LLM) == [Generation(text="pip")]


def test_semantic_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match="semantic"):
        TokenOptCache(semantic="yes")  # type: ignore[arg-type]


def side_keys(store: MemoryStore, kind: str) -> list[str]:
    return [key for key, _ in store.scan(f"tokenopt:cache:{kind}:")]


def test_evicted_entries_take_their_pointers_with_them() -> None:
    store = MemoryStore()
    cache = TokenOptCache(store, semantic=True, max_entries=20)
    for i in range(300):
        cache.update(as_prompt(f"Tell me fact number {i}"), LLM, [Generation(text=str(i))])
    entries = side_keys(store, "e")
    assert len(entries) <= 20
    assert len(side_keys(store, "w")) == len(side_keys(store, "q")) == len(entries)
    assert cache.lookup(as_prompt("tell me fact number 299!"), LLM) == [Generation(text="299")]
    assert cache.lookup(as_prompt("tell me fact number 0!"), LLM) is None


def test_a_pointer_to_a_vanished_entry_is_a_miss_and_is_dropped() -> None:
    store = MemoryStore()
    cache = TokenOptCache(store, semantic=True)
    cache.update(as_prompt("Tell me a joke about cats"), LLM, [Generation(text="Meow.")])
    (entry,) = side_keys(store, "e")
    store.delete(entry)  # expired or evicted by another process
    assert cache.lookup(as_prompt("tell me a joke about cats!"), LLM) is None
    assert side_keys(store, "w") == []


def test_an_unreadable_pointer_is_a_miss_and_is_dropped(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "c.db")
    cache = TokenOptCache(store, semantic=True)
    cache.update(as_prompt("Tell me a joke about cats"), LLM, [Generation(text="Meow.")])
    (pointer,) = [key for key, _ in store.scan("tokenopt:cache:w:")]
    import sqlite3

    with sqlite3.connect(tmp_path / "c.db") as conn:
        conn.execute("UPDATE tokenopt_store SET value = '{not json' WHERE key = ?", (pointer,))
    assert cache.lookup(as_prompt("tell me a joke about cats!"), LLM) is None
    assert [key for key, _ in store.scan("tokenopt:cache:w:")] == []
    # the exact entry still answers its own prompt
    assert cache.lookup(as_prompt("Tell me a joke about cats"), LLM) == [Generation(text="Meow.")]


async def test_async_semantic_true() -> None:
    store = MemoryStore()
    cache = TokenOptCache(store, semantic=True, max_entries=2)
    await cache.aupdate(as_prompt("Name a red fruit"), LLM, [Generation(text="apple")])
    assert await cache.alookup(as_prompt("name a red fruit, please"), LLM) == [
        Generation(text="apple")
    ]
    assert await cache.alookup(as_prompt("name a yellow fruit"), LLM) is None
    await cache.aupdate(as_prompt("Name a yellow fruit"), LLM, [Generation(text="banana")])
    await cache.aupdate(as_prompt("Name a green fruit"), LLM, [Generation(text="lime")])
    assert len(side_keys(store, "w")) == len(side_keys(store, "e")) <= 2
