"""Prompt compression: the same instructions in fewer tokens, without touching what matters.

Prompts carry tokens that cost money but no meaning for the model: runs of whitespace,
markdown emphasis, pretty-printed JSON, filler phrases ("in order to"), and, when the
user accepts some loss, very frequent function words. `PromptCompressor` removes them
in three levels while never changing protected spans: code (fenced and inline), URLs,
quoted strings, numbers, template placeholders and indented YAML/Python-like blocks.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    convert_to_messages,
)
from langchain_core.prompt_values import ChatPromptValue, PromptValue, StringPromptValue
from langchain_core.runnables import RunnableConfig, RunnableSerializable
from pydantic import PrivateAttr

from langchain_tokenopt.core.runnables import acall_in_run, call_in_run
from langchain_tokenopt.core.tokens import TokenCounter
from langchain_tokenopt.core.validation import (
    TypedValidationModel,
    check_depth,
    instance_of,
    json_too_deep,
)
from langchain_tokenopt.errors import ArgumentTypeError

__all__ = ["CompressionLevel", "CompressionResult", "PromptCompressor"]

logger = logging.getLogger(__name__)

CompressionLevel = Literal["lossless", "light", "aggressive"]
#: The word frequency table, inside the package.
WORD_BITS_DATA = "data/word_bits.json"
CompressorInput = str | PromptValue | BaseMessage | Sequence[Any]

# --------------------------------------------------------------------------- data

# Self-information, -log2 p(word), in bits, of the 300 most frequent lowercase English
# words (package data, made by `python -m benchmarks.bench_compression --frequency-table`;
# its source is in the file). Lower means more frequent, so less information when dropped.
WORD_SELF_INFORMATION_BITS: dict[str, float] = json.loads(
    resources.files("langchain_tokenopt").joinpath(WORD_BITS_DATA).read_text(encoding="utf-8")
)["bits"]

# Words that carry logic, negation, modality, reference or quantity are never dropped,
# however frequent: removing them changes what the prompt asks for.
_KEPT_WORD_GROUPS: dict[str, str] = {
    "negation": "not no never nor neither none nothing nobody nowhere without cannot",
    "negated verbs": "don't doesn't didn't isn't aren't wasn't weren't won't wouldn't",
    "negated modals": "shouldn't can't couldn't mustn't",
    "logic": "if unless else then and or but only except until while because since so yet",
    "quantity": "all any every each either both some few many more most less least than",
    "comparison and order": "same different one two first last",
    "modality": "must should may might can could will would shall need always sometimes often",
    "questions": "what which who whom whose when whenever where why how",
    "persons": "i me my mine you your yours he him his she her hers we us our they them their",
    "reference": "it its this these those also",
    "relation": "as like from into out up down over under before after",
}
KEPT_WORDS: frozenset[str] = frozenset(
    word for group in _KEPT_WORD_GROUPS.values() for word in group.split()
)
# Very frequent words below this self-information are dropped at the aggressive level.
DROP_BELOW_BITS = 8.9
_DROPPED_WORDS = frozenset(
    word
    for word, bits in WORD_SELF_INFORMATION_BITS.items()
    if bits < DROP_BELOW_BITS and word not in KEPT_WORDS
)

# Filler phrases and their shorter equivalents. Matched case-insensitively with any
# whitespace between words; the replacement takes the case of the phrase's first letter.
_FILLER_PHRASES: dict[str, str] = {
    "in order to": "to",
    "so as to": "to",
    "in an effort to": "to",
    "due to the fact that": "because",
    "owing to the fact that": "because",
    "in light of the fact that": "because",
    "in spite of the fact that": "although",
    "despite the fact that": "although",
    "for the purpose of": "for",
    "in the event that": "if",
    "at this point in time": "now",
    "at the present time": "now",
    "at the present moment": "now",
    "in the near future": "soon",
    "a large number of": "many",
    "a great number of": "many",
    "the vast majority of": "most",
    "the majority of": "most",
    "a majority of": "most",
    "is able to": "can",
    "are able to": "can",
    "has the ability to": "can",
    "have the ability to": "can",
    "with regard to": "regarding",
    "with regards to": "regarding",
    "in regard to": "regarding",
    "prior to": "before",
    "subsequent to": "after",
    "in a timely manner": "promptly",
    "on a daily basis": "daily",
    "on a regular basis": "regularly",
    "at all times": "always",
    "each and every": "every",
    "first and foremost": "first",
    "whether or not": "whether",
    "with the exception of": "except",
    "until such time as": "until",
    "take into consideration": "consider",
    "take into account": "consider",
    "give consideration to": "consider",
    "make a decision": "decide",
    "in close proximity to": "near",
    "a sufficient number of": "enough",
    "a sufficient amount of": "enough",
    "it is important to note that": "note that",
    "it should be noted that": "note that",
    "it is worth noting that": "note that",
    "please make sure that": "ensure that",
    "make sure that": "ensure that",
    "please make sure to": "",
    "make sure to": "",
    "as well as": "and",
}
# Openings that only ask for what follows: dropped at the start of a sentence or line,
# leaving the imperative ("I want you to act as..." -> "Act as...").
_SENTENCE_OPENERS: dict[str, str] = {
    "i want you to": "",
    "i would like you to": "",
    "i'd like you to": "",
    "i need you to": "",
    "your task is to": "",
    "your job is to": "",
    "you are required to": "",
    "could you please": "please",
    "can you please": "please",
    "would you please": "please",
}


def _phrase_pattern(phrases: Sequence[str]) -> str:
    # longest first, so "please make sure to" wins over "make sure to"
    ordered = sorted(phrases, key=len, reverse=True)
    return "|".join(r"\s+".join(map(re.escape, phrase.split())) for phrase in ordered)


_FILLER = re.compile(
    r"(?<![\w'’-])(" + _phrase_pattern(list(_FILLER_PHRASES)) + r")(?![\w'’-])[ \t]*",
    re.IGNORECASE,
)
_OPENER = re.compile(
    r"(?:^|(?<=[.!?:;] )|(?<=^[-*•] ))(" + _phrase_pattern(list(_SENTENCE_OPENERS)) + r")"
    r"(?![\w'’-])[ \t]*",
    re.IGNORECASE | re.MULTILINE,
)
_DROPPABLE = re.compile(
    r"(?<![^\s])(?:" + "|".join(sorted(_DROPPED_WORDS, key=len, reverse=True)) + r")[ \t]+(?=\S)"
)

# ----------------------------------------------------------------- protected spans

_FENCE = re.compile(
    r"^[ \t]*(?P<fence>`{3,}|~{3,})(?P<info>[^\n]*)\n.*?(?:^[ \t]*(?P=fence)[ \t]*$|\Z)",
    re.MULTILINE | re.DOTALL,
)
_INLINE_CODE = r"(?P<code>``[^\n]+?``|`[^`\n]+`)"
_INLINE_URL = r"\b(?:https?|ftp|file)://[^\s<>\"'`]+|\bwww\.[^\s<>\"'`]+"
_INLINE_EMAIL = r"\b[\w.+-]+@[\w-]+\.[\w.-]+"
_INLINE_REST = (
    r"|(?P<placeholder>\$\{[^{}\n]*\}|\{\{[^{}\n]*\}\}|\{[^{}\n]*\}"
    r"|\[[^\[\]\n]{1,80}\]|<[^<>\n]{1,80}>)"
    r"|(?P<quote>\"[^\"\n]*\"|“[^”\n]*”|«[^»\n]*»|(?<![\w'’])'[^'\n]*'(?![\w'’]))"
    r"|(?P<number>[-+]?\d+(?:[.,:/_-]\d+)*(?:[eE][-+]?\d+)?%?)"
)
_INLINE = re.compile(f"{_INLINE_CODE}|(?P<url>{_INLINE_URL}|{_INLINE_EMAIL}){_INLINE_REST}")
# The same matches in a text without "@" (no e-mail address), found several times
# faster: every other alternative starts with one of the lookahead's characters, so
# the engine skips the other positions at once (an e-mail can start at any word).
_INLINE_NO_EMAIL = re.compile(
    r"(?=[`hfw${\[<\"“«'+\-]|\d)"
    f"(?:{_INLINE_CODE}|(?P<url>{_INLINE_URL}){_INLINE_REST})"
)
_INDENTED = re.compile(r"^(?: {2,}|\t)\S")
_CODE_LINE = re.compile(
    r"^\s*(?:[-\w.\"']+\s*:(?:\s|$)"  # YAML key
    r"|-\s+[-\w.\"']+\s*:"  # YAML list item with a key
    r"|(?:def|class|return|import|from|if|elif|else|for|while|try|except|finally|with"
    r"|async|await|yield|raise|pass|break|continue|lambda|const|let|var|function)\b"
    r"|[#@}\])]"  # comment, decorator, closing bracket
    r"|.*(?:[=;{(\[,]|:)\s*$)"  # assignment, statement end, opening bracket
)
_JSON_WHITESPACE = re.compile(r'"(?:[^"\\]|\\.)*"|[ \t\r\n]+', re.DOTALL)

# ------------------------------------------------------------------------ cleanup

_SPACE_RUN = re.compile(r"[ \t]{2,}")
_BLANK_LINES = re.compile(r"\n{3,}")
_BOLD = re.compile(r"(?<![\w*])\*\*(?=[^\s*])([^*\n]+?)(?<=[^\s*])\*\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w*])\*(?=[^\s*])([^*\n]+?)(?<=[^\s*])\*(?![\w*])")
_TABLE_RULE = re.compile(r"^[ \t]*\|?(?:[ \t]*:?-{2,}:?[ \t]*\|)+(?:[ \t]*:?-{2,}:?[ \t]*)?$", re.M)
_TABLE_CELL_DASHES = re.compile(r"[ \t]*-{2,}[ \t]*")
# `__x__` only around several words: `__init__` is a name, not emphasis
_UNDERSCORE_BOLD = re.compile(r"(?<![\w_])__(?=[^\s_])([^_\n]*?\s[^_\n]*?)(?<=[^\s_])__(?![\w_])")


def minify_json(text: str) -> str | None:
    """`text` without insignificant whitespace if it is one JSON object or array, else None.

    Only whitespace between JSON tokens goes: strings, numbers and escapes stay byte for
    byte (re-serializing would rewrite `1.50` as `1.5` and re-escape non-ASCII text).

    Example:
        >>> minify_json('{"a": [1.50, "x y"],\\n "b": null}')
        '{"a":[1.50,"x y"],"b":null}'
    """
    stripped = text.strip()
    if not stripped or stripped[0] not in "[{":
        return None
    if json_too_deep(stripped) is not None:  # left as it is: parsing would overflow
        return None
    try:
        json.loads(stripped)
    except ValueError:
        return None
    return _JSON_WHITESPACE.sub(_keep_json_strings, stripped)


def _keep_json_strings(match: re.Match[str]) -> str:
    token = match.group()
    return token if token.startswith('"') else ""


@dataclass(frozen=True)
class _Segment:
    text: str
    protected: bool
    json_fence: bool = False


def _split_matches(
    segments: list[_Segment], find: Callable[[str], list[tuple[int, int, bool]]]
) -> list[_Segment]:
    """Split the free segments further at the (start, end, is_json_fence) spans `find` gives."""
    result: list[_Segment] = []
    for segment in segments:
        if segment.protected:
            result.append(segment)
            continue
        position = 0
        for start, end, json_fence in find(segment.text):
            if start > position:
                result.append(_Segment(segment.text[position:start], False))
            result.append(_Segment(segment.text[start:end], True, json_fence))
            position = end
        if position < len(segment.text):
            result.append(_Segment(segment.text[position:], False))
    return result


def _lossless_by_lines(text: str) -> str | None:
    """`text` (not JSON) compressed "lossless", told without splitting it into segments,
    or None when that needs the segments.

    A text with no fence (whose JSON would be minified), no markdown marker
    `_strip_markdown_decoration` acts on, and no run of spaces or tabs (so no indented
    code block either) only loses the space before a line break, line breaks past the
    second in a row, leading line breaks and trailing whitespace. No protected span
    holds a line break, nor ends with a space, so each of those is in free text, where
    `_tidy_whitespace` and the first and last segments' strips take them out alike (a
    property test holds it against the segment-by-segment path).

    Example:
        >>> _lossless_by_lines("Plain prose, one space apart. \\nA second line.\\n")
        'Plain prose, one space apart.\\nA second line.'
        >>> _lossless_by_lines("Two  spaces.") is None
        True
    """
    if (
        "  " in text
        or "\t" in text
        or "*" in text
        or "__" in text
        or "```" in text
        or "~~~" in text
        or ("--" in text and "|" in text)
    ):
        return None
    if " \n" in text:
        text = text.replace(" \n", "\n")
    if "\n\n\n" in text:
        text = _BLANK_LINES.sub("\n\n", text)
    return text.lstrip("\n").rstrip()


def _find_fences(text: str) -> list[tuple[int, int, bool]]:
    return [
        (m.start(), m.end(), m.group("info").strip().lower() == "json")
        for m in _FENCE.finditer(text)
    ]


def _find_code_blocks(text: str) -> list[tuple[int, int, bool]]:
    """Runs of 2+ non-blank lines, one of them indented, mostly looking like YAML or code."""
    spans: list[tuple[int, int, bool]] = []
    run: list[tuple[int, int, str]] = []  # (start, end, line) of the current run
    position = 0
    for line in [*text.split("\n"), ""]:
        start, end = position, position + len(line)
        position = end + 1
        if line.strip():
            run.append((start, end, line))
            continue
        if len(run) >= 2 and any(_INDENTED.match(item[2]) for item in run):
            code_lines = sum(bool(_CODE_LINE.match(item[2])) for item in run)
            if code_lines * 2 >= len(run):
                spans.append((run[0][0], run[-1][1], False))
        run = []
    return spans


def _find_inline(text: str) -> list[tuple[int, int, bool]]:
    inline = _INLINE if "@" in text else _INLINE_NO_EMAIL
    return [(m.start(), m.end(), False) for m in inline.finditer(text)]


def protected_spans(text: str) -> list[str]:
    """The spans of `text` that compression never changes, in order.

    Example:
        >>> protected_spans('Open https://x.io and run `make` with {name}, "as is", 42.')
        ['https://x.io', '`make`', '{name}', '"as is"', '42']
    """
    return [segment.text for segment in _segments(text) if segment.protected]


def _segments(text: str) -> list[_Segment]:
    segments = [_Segment(text, False)]
    for find in (_find_fences, _find_code_blocks, _find_inline):
        segments = _split_matches(segments, find)
    return segments


# ---------------------------------------------------------------------- rewriting


def _match_case(template: str, replacement: str) -> str:
    if not replacement:
        return replacement
    if template[:1].isupper():
        return replacement[0].upper() + replacement[1:]
    return replacement


def _tidy_whitespace(text: str, at_line_start: bool) -> str:
    """Collapse space runs, drop trailing spaces and extra blank lines; keep indentation."""
    lines = text.split("\n")
    last = len(lines) - 1
    tidy: list[str] = []
    for index, line in enumerate(lines):
        indent = ""
        if index > 0 or at_line_start:
            body = line.lstrip(" \t")
            indent = line[: len(line) - len(body)]
        else:
            body = line
        body = _SPACE_RUN.sub(" ", body)
        if index < last:
            body = body.rstrip(" \t")
            if not body:
                indent = ""  # a blank line's spaces are not indentation
        tidy.append(indent + body)
    return _BLANK_LINES.sub("\n\n", "\n".join(tidy))


def _strip_markdown_decoration(text: str) -> str:
    """Drop emphasis markers and the dash padding of table separator rows."""
    # each pattern needs its marker characters: a text without them is left as it is
    # without running the pattern (most text has no markdown)
    if "**" in text:
        text = _BOLD.sub(r"\1", text)
    if "__" in text:
        text = _UNDERSCORE_BOLD.sub(r"\1", text)
    if "*" in text:
        text = _ITALIC.sub(r"\1", text)
    if "--" in text and "|" in text:
        text = _TABLE_RULE.sub(_short_table_rule, text)
    return text


def _short_table_rule(match: re.Match[str]) -> str:
    """`|:-----|----:|` -> `|:-|-:|`: the alignment colons are all a separator needs."""
    return _TABLE_CELL_DASHES.sub("-", match.group())


def _rewrite_fillers(text: str, at_sentence_start: bool) -> str:
    def opener(match: re.Match[str]) -> str:
        if match.start() == 0 and not at_sentence_start:
            return match.group()
        phrase = match.group(1)
        replacement = _SENTENCE_OPENERS[" ".join(phrase.lower().split())]
        if replacement:
            return _match_case(phrase, replacement) + " "
        return _CAPITALIZE_NEXT

    def filler(match: re.Match[str]) -> str:
        phrase = match.group(1)
        replacement = _FILLER_PHRASES[" ".join(phrase.lower().split())]
        if replacement:
            return _match_case(phrase, replacement) + match.group()[len(phrase) :]
        return _CAPITALIZE_NEXT if phrase[:1].isupper() else ""

    text = _OPENER.sub(opener, text)
    text = _FILLER.sub(filler, text)
    return _capitalize_marked(text)


# A private-use character marks "capitalize the next letter" after a dropped opener;
# it never survives (_capitalize_marked removes every occurrence it inserted).
_CAPITALIZE_NEXT = "\ue000"


def _capitalize_marked(text: str) -> str:
    if _CAPITALIZE_NEXT not in text:
        return text
    pieces = text.split(_CAPITALIZE_NEXT)
    out = [pieces[0]]
    for piece in pieces[1:]:
        out.append(piece[:1].upper() + piece[1:] if piece[:1].islower() else piece)
    return "".join(out)


def _drop_frequent_words(text: str, before: str, after: str) -> str:
    """Drop frequent words standing alone between spaces.

    `before` and `after` are the characters around `text` in the whole prompt, so a
    word glued to a protected span ("5a", "the`x`") is not taken for a free word.
    """
    if after.isspace():
        after = ""
    dropped = _DROPPABLE.sub("", before + text + after)
    return dropped[len(before) : len(dropped) - len(after)]


# ---------------------------------------------------------------------- the class


@dataclass(frozen=True)
class CompressionResult:
    """A compressed text and what it saved.

    Attributes:
        text: the compressed text.
        tokens_before: tokens of the original text.
        tokens_after: tokens of `text`.
        ratio: tokens_after / tokens_before, the share of tokens kept (1.0 for "").

    Example:
        >>> result = PromptCompressor().compress("Keep   it    short.")
        >>> result.text, result.tokens_saved, result.ratio < 1
        ('Keep it short.', 2, True)
    """

    text: str
    tokens_before: int
    tokens_after: int
    ratio: float

    @property
    def tokens_saved(self) -> int:
        """tokens_before - tokens_after."""
        return self.tokens_before - self.tokens_after


class PromptCompressor(
    TypedValidationModel, RunnableSerializable[CompressorInput, CompressorInput]
):
    """Shrink prompts by level, never touching code, URLs, quotes, numbers or placeholders.

    Levels (each includes the ones before it):
      * ``"lossless"``: whitespace runs, trailing spaces and extra blank lines go (line
        indentation stays), markdown emphasis markers go (headings stay), and JSON
        payloads (a whole text, tool output or a fenced json block that parses) are
        minified.
      * ``"light"``: filler phrases are rewritten ("in order to" -> "to", "due to the
        fact that" -> "because") and request openers dropped ("I want you to act as"
        -> "Act as").
      * ``"aggressive"``: very frequent function words with little self-information
        ("the", "of", "is", ...) are dropped; negations, logic words, modals, pronouns,
        numbers and capitalised words never are.

    Protected spans survive byte for byte: fenced and inline code, URLs and e-mail
    addresses, quoted strings, numbers, template placeholders (``{x}``, ``{{x}}``,
    ``${x}``, ``[x]``, ``<x>``) and indented YAML/Python-like blocks. The one deliberate
    exception is a fenced json block, which is data: its whitespace is minified.
    Case is preserved.

    As a Runnable it takes a string, a `PromptValue` (the same kind comes back) or a
    list of messages: the text of human, system and tool messages is compressed, AI
    messages (and their tool calls) and non-text content blocks are left alone.

    Example:
        >>> from langchain_tokenopt.compression import PromptCompressor
        >>> compressor = PromptCompressor(level="light")
        >>> compressor.invoke("I want you to act as a poet.  In order to rhyme, use `rhyme()`.")
        'Act as a poet. To rhyme, use `rhyme()`.'
        >>> compressor.compress("Be   brief.").tokens_saved
        1
    """

    level: CompressionLevel = "lossless"
    """How much to remove: "lossless", "light" or "aggressive"."""
    model: str = "gpt-4o"
    """Model whose tokenizer counts the tokens saved."""

    _counter: TokenCounter | None = PrivateAttr(default=None)

    @property
    def token_counter(self) -> TokenCounter:
        """The counter behind `compress`'s token numbers (created on first use)."""
        if self._counter is None:
            self._counter = TokenCounter(self.model)
        return self._counter

    def compress(self, text: str) -> CompressionResult:
        """Compress one text and count the tokens before and after."""
        if not isinstance(text, str):
            raise ArgumentTypeError(f"compress expects a str, got {type(text).__name__}")
        compressed = self.compress_text(text)
        before = int(self.token_counter.count_text(text))
        after = int(self.token_counter.count_text(compressed)) if compressed != text else before
        ratio = after / before if before else 1.0
        logger.debug("compressed %d -> %d tokens (%s)", before, after, self.level)
        return CompressionResult(compressed, before, after, ratio)

    def compress_text(self, text: str) -> str:
        """The compressed text alone, without counting tokens."""
        minified = minify_json(text)
        if minified is not None:
            return minified
        if self.level == "lossless":
            by_lines = _lossless_by_lines(text)
            if by_lines is not None:
                return by_lines
        return self._compress_segments(text)

    def _compress_segments(self, text: str) -> str:
        """`compress_text` of a text that is not JSON: its free segments compressed."""
        segments = _segments(text)
        out: list[str] = []
        previous = ""  # the end of the compressed text so far
        for index, segment in enumerate(segments):
            if segment.protected:
                piece = _minify_fenced_json(segment.text) if segment.json_fence else segment.text
            else:
                following = segments[index + 1].text[:1] if index + 1 < len(segments) else ""
                piece = self._compress_free_text(segment.text, previous, following)
                if index == 0:
                    piece = piece.lstrip("\n")
                if index == len(segments) - 1:
                    piece = piece.rstrip()
            out.append(piece)
            previous = (previous + piece)[-8:]
        return "".join(out)

    def _compress_free_text(self, text: str, previous: str, following: str) -> str:
        """Compress text outside protected spans, given the characters around it."""
        at_line_start = previous == "" or previous.endswith("\n")
        at_sentence_start = at_line_start or previous.rstrip()[-1:] in (".", "!", "?", ":")
        text = _strip_markdown_decoration(text)
        text = _tidy_whitespace(text, at_line_start)
        if self.level == "lossless":
            return text
        text = _rewrite_fillers(text, at_sentence_start)
        if self.level == "aggressive":
            text = _drop_frequent_words(text, previous[-1:], following)
        return _tidy_whitespace(text, at_line_start)

    # -- Runnable --------------------------------------------------------------

    def invoke(
        self, input: CompressorInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> CompressorInput:
        """Compress a string, a PromptValue or the text of a list of messages."""
        return call_in_run(self, self._compress_input, input, config)

    async def ainvoke(
        self, input: CompressorInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> CompressorInput:
        """Async twin of `invoke` (compression is pure CPU work, done inline)."""
        return await acall_in_run(self, self._acompress_input, input, config)

    async def _acompress_input(self, value: CompressorInput) -> CompressorInput:
        return self._compress_input(value)

    def _compress_input(self, value: CompressorInput) -> CompressorInput:
        if isinstance(value, str):
            return self.compress_text(value)
        check_depth(value, "the input")
        if isinstance(value, StringPromptValue):
            return value.model_copy(update={"text": self.compress_text(value.text)})
        if isinstance(value, ChatPromptValue):
            messages = [self.compress_message(m) for m in value.messages]
            return value.model_copy(update={"messages": messages})
        if isinstance(value, BaseMessage):
            return self.compress_message(value)
        if isinstance(value, Sequence) and not isinstance(value, bytes):
            return [self.compress_message(m) for m in convert_to_messages(value)]
        raise ArgumentTypeError(
            "PromptCompressor takes a str, a PromptValue or a list of messages, got "
            f"{type(value).__name__}"
        )

    def compress_message(self, message: BaseMessage) -> BaseMessage:
        """The message with its text compressed, or unchanged if it is an AI message."""
        instance_of(message, "message", BaseMessage, "a LangChain message (BaseMessage)")
        check_depth(message.content, "the message content")
        if not _is_compressible(message):
            return message
        content = message.content
        new_content: str | list[str | dict[Any, Any]]
        if isinstance(content, str):
            new_content = self.compress_text(content)
        else:
            new_content = [self._compress_block(block) for block in content]
        if new_content == content:
            return message
        return message.model_copy(update={"content": new_content})

    def _compress_block(self, block: str | dict[Any, Any]) -> str | dict[Any, Any]:
        if isinstance(block, str):
            return self.compress_text(block)
        if block.get("type") == "text" and isinstance(block.get("text"), str):
            return {**block, "text": self.compress_text(block["text"])}
        return block

    @classmethod
    def is_lc_serializable(cls) -> bool:
        """Serializable: its whole state is `level` and `model`."""
        return True

    @classmethod
    def get_lc_namespace(cls) -> list[str]:
        """["langchain_tokenopt", "compression"]."""
        return ["langchain_tokenopt", "compression"]


def _is_compressible(message: BaseMessage) -> bool:
    if isinstance(message, AIMessage):
        return False
    if isinstance(message, ChatMessage):
        return message.role not in ("assistant", "ai")
    return isinstance(message, (HumanMessage, SystemMessage, ToolMessage, FunctionMessage))


def _minify_fenced_json(block: str) -> str:
    """A fenced json block with its body minified, if the body parses; else unchanged."""
    first_newline = block.find("\n")
    lines = block[first_newline + 1 :]
    closing_start = lines.rstrip().rfind("\n") + 1
    closing = lines[closing_start:]
    if not closing.strip() or closing.strip()[0] not in "`~":
        return block
    body = lines[:closing_start]
    minified = minify_json(body)
    if minified is None:
        return block
    return block[: first_newline + 1] + minified + "\n" + closing
