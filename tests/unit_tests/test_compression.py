"""PromptCompressor: levels, protected spans byte for byte, and the Runnable forms."""

from __future__ import annotations

import dataclasses
import json
import random

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.prompt_values import ChatPromptValue, StringPromptValue
from langchain_core.prompts import ChatPromptTemplate, PromptTemplate
from langchain_core.runnables import RunnableLambda

from langchain_tokenopt.compression import (
    CompressionResult,
    PromptCompressor,
    minify_json,
    protected_spans,
)
from langchain_tokenopt.core.tokens import TokenCounter

LEVELS = ("lossless", "light", "aggressive")
COUNTER = TokenCounter("gpt-4o")

# --------------------------------------------------------------- generated prompts

PROSE_WORDS = [
    *("the", "of", "a", "an", "is", "are", "to", "in", "on", "for", "with", "that", "by"),
    *("not", "never", "no", "if", "unless", "and", "or", "but", "only", "all", "must"),
    *("don't", "you", "it", "answer", "Report", "carefully", "NASA", "London", "summary"),
    *("please", "make", "sure", "write", "review", "user", "data", "between", "result"),
]
FILLERS = [
    "In order to",
    "in  order\tto",
    "due to the fact that",
    "Please make sure to",
    "it is important to note that",
    "as well as",
    "I want you to",
]


def _prose(rng: random.Random) -> str:
    words: list[str] = []
    for _ in range(rng.randint(1, 14)):
        roll = rng.random()
        if roll < 0.1:
            words.append(rng.choice(FILLERS))
        elif roll < 0.15:
            words.append("**" + rng.choice(PROSE_WORDS) + "**")
        else:
            words.append(rng.choice(PROSE_WORDS))
        words.append(rng.choice([" ", " ", " ", "  ", "\t", " \n", "\n\n\n", ". "]))
    return " " + "".join(words) + " "


def _span(kind: str, rng: random.Random) -> str:
    """One protected span of `kind`, placed where a writer would put it."""
    n = rng.randint(0, 999)
    spans = {
        "inline_code": f"`x  =  the_value({n})  `",
        "double_code": f"``a `tick` of {n}``",
        "url": f"https://example.com/the/path?of=a&n={n}#is",
        "email": f"the.user{n}@example.org",
        "double_quote": f'"keep   the  of a {n} is   exactly"',
        "single_quote": f"'in order to   keep the {n}'",
        "curly_quote": f"“the quoted   words of {n}”",
        "number": rng.choice(
            [f"{n}.50", f"-{n}", f"1,{n:03d}", f"2024-01-{n % 28 + 1:02d}", f"{n}%"]
        ),
        "placeholder": rng.choice(["{topic}", "{{ the_var }}", "${HOME}", "{a of the}"]),
        "fenced": f"\n```python\ndef f(x):\n    return  the  + x   # {n}\n\n\n   pass\n```\n",
        "fenced_tilde": f"\n~~~\nin order to   keep   the   {n}\n~~~\n",
        "yaml": f"\n\nconfig:\n  name:   the value\n  retries: {n}\n  items:\n    - a   of the\n\n",
        "python": f"\n\nHere is the code:\n    for i in range({n}):\n        print( i ,  'x' )\n\n",
    }
    return spans[kind]


SPAN_KINDS = [
    *("inline_code", "double_code", "url", "email", "double_quote", "single_quote"),
    *("curly_quote", "number", "placeholder", "fenced", "fenced_tilde", "yaml", "python"),
]


def _generated_prompt(seed: int) -> tuple[str, list[str]]:
    rng = random.Random(seed)
    parts: list[str] = []
    spans: list[str] = []
    for _ in range(rng.randint(2, 10)):
        parts.append(_prose(rng))
        span = _span(rng.choice(SPAN_KINDS), rng)
        parts.append(span)
        spans.append(span.strip("\n"))
    parts.append(_prose(rng))
    return "".join(parts), spans


GENERATED = [_generated_prompt(seed) for seed in range(300)]


def _in_order(spans: list[str], text: str) -> list[str]:
    """The spans that are not found byte for byte, in order, in `text`."""
    missing: list[str] = []
    position = 0
    for span in spans:
        found = text.find(span, position)
        if found < 0:
            missing.append(span)
        else:
            position = found + len(span)
    return missing


@pytest.mark.parametrize("level", LEVELS)
def test_every_protected_span_survives_byte_for_byte(level: str) -> None:
    compressor = PromptCompressor(level=level)
    for prompt, spans in GENERATED:
        compressed = compressor.compress_text(prompt)
        assert _in_order(spans, compressed) == [], prompt


def test_protected_spans_are_detected_in_generated_prompts() -> None:
    for prompt, spans in GENERATED[:100]:
        detected = "\x00".join(protected_spans(prompt))
        assert all(span in detected for span in spans), prompt


@pytest.mark.parametrize("level", LEVELS)
def test_generated_prompts_get_shorter_and_levels_nest(level: str) -> None:
    before = sum(COUNTER.count_text(prompt) for prompt, _ in GENERATED)
    sizes = {
        lvl: sum(
            COUNTER.count_text(PromptCompressor(level=lvl).compress_text(p)) for p, _ in GENERATED
        )
        for lvl in LEVELS
    }
    assert sizes["aggressive"] < sizes["light"] < sizes["lossless"] < before
    assert sizes[level] < before


# ------------------------------------------------------------------------ lossless


def test_lossless_collapses_whitespace_but_keeps_lines_and_indentation() -> None:
    text = "Title  here   \n\n\n\n  - first   item\t\there\n    - nested  item   \n\n\nEnd.   "
    assert PromptCompressor().compress_text(text) == (
        "Title here\n\n  - first item here\n    - nested item\n\nEnd."
    )


def test_lossless_strips_emphasis_but_not_names_or_arithmetic() -> None:
    text = "**Never** log *secrets*; call __init__ and compute 2 * 3 * 4 with __two words__."
    assert PromptCompressor().compress_text(text) == (
        "Never log secrets; call __init__ and compute 2 * 3 * 4 with two words."
    )


def test_lossless_shortens_table_separator_rows() -> None:
    text = "| name | size |\n|:-------|-------:|\n| a | 1 |"
    assert PromptCompressor().compress_text(text) == "| name | size |\n|:-|-:|\n| a | 1 |"


def test_json_payload_is_minified_and_parses_to_the_same_value() -> None:
    payload = {"name": "Ada  Lovelace", "scores": [1.50, 2e10, -3], "note": "naïve ✓", "n": None}
    pretty = json.dumps(payload, indent=4, ensure_ascii=False).replace("1.5", "1.50")
    result = PromptCompressor().compress(pretty)
    assert json.loads(result.text) == json.loads(pretty)
    assert result.text == (
        '{"name":"Ada  Lovelace","scores":[1.50,20000000000.0,-3],"note":"naïve ✓","n":null}'
    )
    assert result.tokens_after < result.tokens_before


def test_text_that_only_looks_like_json_is_not_minified() -> None:
    assert minify_json("{not json at all}") is None
    assert minify_json("hello") is None
    broken = '{"a": 1,  "b": [2,  3],  }'
    assert PromptCompressor().compress_text(broken) == broken


def test_fenced_json_block_is_minified_inside_its_fence() -> None:
    text = 'Use this:\n\n```json\n{\n  "a": [1, 2],\n  "b": "x  y"\n}\n```\n\nThanks.'
    assert PromptCompressor().compress_text(text) == (
        'Use this:\n\n```json\n{"a":[1,2],"b":"x  y"}\n```\n\nThanks.'
    )


def test_lossless_is_idempotent() -> None:
    compressor = PromptCompressor()
    for prompt, _ in GENERATED[:50]:
        once = compressor.compress_text(prompt)
        assert compressor.compress_text(once) == once


# --------------------------------------------------------------------------- light


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("In order to win, train.", "To win, train."),
        ("We left due to the fact that it rained.", "We left because it rained."),
        ("I want you to act as a poet.", "Act as a poet."),
        ("Hi. I would like you to review this.", "Hi. Review this."),
        ("Please make sure to cite sources.", "Cite sources."),
        ("Write tests as well as docs.", "Write tests and docs."),
        ("It is important to note that X wins.", "Note that X wins."),
        ("Could you please summarize?", "Please summarize?"),
        ("Context here. Your task is to list risks.", "Context here. List risks."),
    ],
)
def test_light_rewrites_filler_phrases_keeping_case(text: str, expected: str) -> None:
    assert PromptCompressor(level="light").compress_text(text) == expected


def test_light_leaves_openers_alone_in_mid_sentence() -> None:
    text = "Tell me because I want you to know."
    assert PromptCompressor(level="light").compress_text(text) == text


def test_light_does_not_rewrite_inside_quotes_or_code() -> None:
    text = 'Say "in order to" and run `in order to`, in order to test.'
    assert PromptCompressor(level="light").compress_text(text) == (
        'Say "in order to" and run `in order to`, to test.'
    )


# ---------------------------------------------------------------------- aggressive


def test_aggressive_drops_frequent_words_but_never_logic_negation_or_capitals() -> None:
    text = "The answer is not in the box of the user and never on the table if it is empty."
    assert PromptCompressor(level="aggressive").compress_text(text) == (
        "The answer not box user and never table if it empty."
    )


def test_aggressive_keeps_numbers_and_words_glued_to_them() -> None:
    text = "Use 5a of the 3 to 4 items at 10:30 in the box."
    assert PromptCompressor(level="aggressive").compress_text(text) == (
        "Use 5a 3 4 items 10:30 box."
    )


def test_case_is_preserved() -> None:
    text = "Ask NASA  about The Moon and iPhone USB-C."
    for level in LEVELS:
        assert PromptCompressor(level=level).compress_text(text) == (
            "Ask NASA about The Moon and iPhone USB-C."
        )


# ----------------------------------------------------------------- result & errors


def test_compress_counts_tokens_before_and_after() -> None:
    text = "In order to   win,\n\n\n\n train   the model."
    result = PromptCompressor(level="light").compress(text)
    assert isinstance(result, CompressionResult)
    assert result.tokens_before == COUNTER.count_text(text)
    assert result.tokens_after == COUNTER.count_text(result.text)
    assert result.ratio == pytest.approx(result.tokens_after / result.tokens_before)
    assert result.tokens_saved == result.tokens_before - result.tokens_after > 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.text = "x"  # type: ignore[misc]
    assert PromptCompressor().compress("").ratio == 1.0


def test_bad_input_is_rejected_clearly() -> None:
    with pytest.raises(ValueError, match="level"):
        PromptCompressor(level="extreme")
    with pytest.raises(TypeError, match="str"):
        PromptCompressor().compress(b"bytes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="PromptValue"):
        PromptCompressor().invoke(42)  # type: ignore[arg-type]


# ------------------------------------------------------------------------ runnable


def test_runnable_on_a_string_and_on_a_string_prompt_value() -> None:
    compressor = PromptCompressor(level="light")
    assert compressor.invoke("In order to  win.") == "To win."
    value = compressor.invoke(StringPromptValue(text="In order to  win."))
    assert isinstance(value, StringPromptValue)
    assert value.text == "To win."


def test_runnable_on_messages_leaves_ai_messages_and_tool_calls_alone() -> None:
    ai = AIMessage(
        content="In order to  check,   I call a tool.",
        tool_calls=[{"name": "search", "args": {"q": "in  order  to"}, "id": "call_1"}],
    )
    messages = [
        SystemMessage(content="You   are   helpful.", id="s1"),
        HumanMessage(content="In order to  win, what do I do?"),
        ai,
        ToolMessage(content='{\n  "result": "in  order  to",\n  "n": 1\n}', tool_call_id="call_1"),
    ]
    out = PromptCompressor(level="light").invoke(messages)
    assert isinstance(out, list)
    assert out[0] == SystemMessage(content="You are helpful.", id="s1")
    assert out[1].content == "To win, what do I do?"
    assert out[2] is ai
    assert out[3].content == '{"result":"in  order  to","n":1}'
    assert isinstance(out[3], ToolMessage) and out[3].tool_call_id == "call_1"
    assert messages[1].content == "In order to  win, what do I do?", "input not mutated"


def test_content_blocks_only_text_parts_are_compressed() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    message = HumanMessage(content=[{"type": "text", "text": "Look   at  this."}, image])
    out = PromptCompressor().invoke([message])
    assert isinstance(out, list)
    assert out[0].content == [{"type": "text", "text": "Look at this."}, image]


def test_chat_prompt_value_comes_back_as_chat_prompt_value_in_a_chain() -> None:
    prompt = ChatPromptTemplate.from_messages(
        [("system", "Be   brief."), ("human", "In order to learn {topic},  what first?")]
    )
    seen: list[object] = []
    chain = prompt | PromptCompressor(level="light") | RunnableLambda(seen.append)
    chain.invoke({"topic": "Rust"})
    value = seen[0]
    assert isinstance(value, ChatPromptValue)
    assert [m.content for m in value.messages] == ["Be brief.", "To learn Rust, what first?"]


def test_template_placeholders_survive_so_the_template_still_formats() -> None:
    template = "In order to   write about {topic} for {{audience}}, use ${tone}."
    compressed = PromptCompressor(level="aggressive").invoke(template)
    assert isinstance(compressed, str)
    variables = PromptTemplate.from_template(template).input_variables
    assert PromptTemplate.from_template(compressed).input_variables == variables
    assert "{topic}" in compressed and "{{audience}}" in compressed and "${tone}" in compressed


async def test_ainvoke_matches_invoke() -> None:
    compressor = PromptCompressor(level="aggressive")
    for prompt, _ in GENERATED[:20]:
        assert await compressor.ainvoke(prompt) == compressor.invoke(prompt)


def test_the_word_frequency_table_is_package_data_read_once() -> None:
    from langchain_tokenopt import compression

    assert len(compression.WORD_SELF_INFORMATION_BITS) == 300
    assert compression.WORD_SELF_INFORMATION_BITS["the"] == 3.5
    assert compression.WORD_SELF_INFORMATION_BITS["civil"] == 11.5
    assert "the" in compression._DROPPED_WORDS and "not" not in compression._DROPPED_WORDS


def test_inline_spans_without_an_at_sign_are_found_by_the_faster_pattern() -> None:
    """`_INLINE_NO_EMAIL` (used when a text has no "@") finds exactly `_INLINE`'s spans."""
    from langchain_tokenopt import compression

    pieces = [
        *("http://x.io/a", "https://y", "ftp://q", "file:///r", "www.z.com", "`c`", "``d``"),
        *("${e}", "{{f}}", "{g}", "[h]", "<i>", '"j"', "“k”", "«l»", "'m'", "it's", "-12.5e3%"),
        *("+3", "٣٤", "x", "hf", "w", " ", "\n", "’", "_", "é", "h2", "f-1", "{", "`", "<"),
    ]
    rng = random.Random(17)
    for _ in range(5000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 14)))
        slow = [m.span() for m in compression._INLINE.finditer(text)]
        fast = [m.span() for m in compression._INLINE_NO_EMAIL.finditer(text)]
        assert fast == slow, text
        assert [span[:2] for span in compression._find_inline(text)] == slow
    with_mail = "write to ann@example.org or see https://example.org, 42"
    assert [m.group() for m in compression._INLINE.finditer(with_mail)] == [
        "ann@example.org",
        "https://example.org,",
        "42",
    ]
    assert compression._find_inline(with_mail)[0][:2] == (9, 24)


def test_markdown_decoration_is_stripped_as_by_all_four_patterns() -> None:
    """Skipping a pattern whose marker characters a text lacks changes no output."""
    from langchain_tokenopt import compression

    def every_pattern(text: str) -> str:
        text = compression._BOLD.sub(r"\1", text)
        text = compression._UNDERSCORE_BOLD.sub(r"\1", text)
        text = compression._ITALIC.sub(r"\1", text)
        return compression._TABLE_RULE.sub(compression._short_table_rule, text)

    pieces = ["**", "*", "__", "_", "--", "-", "|", ":", " ", "\n", "\t", "word", "two words", "x"]
    rng = random.Random(17)
    changed = 0
    for _ in range(5000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 16)))
        stripped = compression._strip_markdown_decoration(text)
        assert stripped == every_pattern(text), text
        changed += stripped != text
    assert changed > 100  # the random texts do exercise the patterns
    assert (
        compression._strip_markdown_decoration("a **bold** and *it* word") == "a bold and it word"
    )
    assert compression._strip_markdown_decoration("|:-----|----:|") == "|:-|-:|"


_LOSSLESS_PIECES = [
    " ", "  ", "\t", "\n", "\n\n", "\r", "\u00a0", "*", "**", "_", "__", "-", "--", "|",
    "`", "```", "~~~", "json", "{", "}", "[", "]", '"', ":", ",", "1.50", "42", "@",
    "https://x.io", "word", "Two words.", "  indented", "- item", "# Head", "a@b.io",
]  # fmt: skip


_PLAIN_PIECES = ["word", "Two words.", " ", "\n", "42", "-", "_", "|", ":", "`", '"', "\u00a0"]
#: A text lossless compression changes that `_lossless_by_lines` leaves to the segments.
_NEEDS_SEGMENTS = [
    "a  b", "a\t\nb", "*it* x", "**b** x", "__two words__ x", "```json\n{ }\n```",
    "~~~json\n{ }\n~~~", "|---|---|\nrow",
]  # fmt: skip


@given(
    st.one_of(
        st.lists(st.sampled_from(_LOSSLESS_PIECES), max_size=24),
        st.lists(st.sampled_from(_PLAIN_PIECES), max_size=24),
    ).map("".join)
)
@settings(max_examples=1500, deadline=None)
@example("word \nword")
@example("a\n \n\nb \n")
@example("\n\nword \u00a0")
@example('`x` \n"a b" \n42 \n')
def test_lossless_compression_by_lines_is_the_segment_by_segment_compression(text: str) -> None:
    """`compress_text` gives what compressing segment by segment gives, and takes the
    shortcut (`_lossless_by_lines`) only where that is so."""
    from langchain_tokenopt import compression

    compressor = PromptCompressor(level="lossless")
    if compression.minify_json(text) is None:
        assert compressor.compress_text(text) == compressor._compress_segments(text)
    by_lines = compression._lossless_by_lines(text)
    if by_lines is not None:
        assert by_lines == compressor._compress_segments(text)


def test_lossless_compression_of_plain_prose_does_not_split_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from langchain_tokenopt import compression

    prose = 'He said "wait" at 10:30, then left. \nSee https://x.io for `make` and {name}.\n'
    expected = prose.replace(" \n", "\n").rstrip()
    assert compression._lossless_by_lines(prose) == expected
    monkeypatch.setattr(compression, "_segments", lambda text: pytest.fail("split"))
    assert PromptCompressor(level="lossless").compress_text(prose) == expected
    # other levels and texts with more to compress still go through the segments
    with pytest.raises(pytest.fail.Exception):
        PromptCompressor(level="light").compress_text(prose)
    with pytest.raises(pytest.fail.Exception):
        PromptCompressor(level="lossless").compress_text("Two  spaces.")


def test_each_condition_of_the_lossless_shortcut_is_needed() -> None:
    from langchain_tokenopt import compression

    compressor = PromptCompressor(level="lossless")
    for text in _NEEDS_SEGMENTS:
        assert compressor.compress_text(text) != text, text
        assert compression._lossless_by_lines(text) is None, text
