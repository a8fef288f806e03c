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

from langchain_tokenopt.core.tokens import TokenCounter

__all__ = ["CompressionLevel", "CompressionResult", "PromptCompressor"]

logger = logging.getLogger(__name__)

CompressionLevel = Literal["lossless", "light", "aggressive"]
CompressorInput = str | PromptValue | BaseMessage | Sequence[Any]

# --------------------------------------------------------------------------- data

# Self-information, -log2 p(word), in bits of the 300 most frequent lowercase words of
# Peter Norvig's big.txt (Project Gutenberg books, public-domain texts; 468,307 words),
# counted once offline with `python benchmarks/bench_compression.py --frequency-table`.
# Lower means more frequent, so less information when dropped.
WORD_SELF_INFORMATION_BITS: dict[str, float] = {
    "the": 3.5,
    "of": 4.4,
    "and": 5.0,
    "in": 5.3,
    "to": 5.4,
    "a": 5.6,
    "is": 6.4,
    "it": 6.7,
    "that": 6.8,
    "was": 6.9,
    "by": 6.9,
    "as": 7.0,
    "with": 7.0,
    "be": 7.2,
    "for": 7.2,
    "or": 7.2,
    "i": 7.2,
    "from": 7.4,
    "which": 7.5,
    "on": 7.6,
    "he": 7.6,
    "at": 7.8,
    "his": 7.8,
    "had": 7.9,
    "are": 7.9,
    "were": 8.0,
    "not": 8.0,
    "this": 8.0,
    "may": 8.0,
    "you": 8.1,
    "an": 8.2,
    "they": 8.2,
    "but": 8.3,
    "their": 8.3,
    "have": 8.3,
    "when": 8.5,
    "all": 8.5,
    "there": 8.6,
    "one": 8.7,
    "into": 8.8,
    "been": 8.8,
    "so": 8.8,
    "my": 8.8,
    "upon": 8.9,
    "states": 8.9,
    "its": 8.9,
    "if": 9.0,
    "no": 9.0,
    "who": 9.1,
    "more": 9.1,
    "new": 9.1,
    "has": 9.2,
    "other": 9.2,
    "we": 9.2,
    "american": 9.3,
    "such": 9.3,
    "should": 9.3,
    "out": 9.4,
    "them": 9.4,
    "up": 9.5,
    "any": 9.5,
    "me": 9.5,
    "over": 9.5,
    "some": 9.5,
    "government": 9.5,
    "than": 9.6,
    "said": 9.6,
    "after": 9.6,
    "then": 9.6,
    "what": 9.6,
    "him": 9.6,
    "could": 9.7,
    "war": 9.7,
    "time": 9.7,
    "would": 9.7,
    "these": 9.7,
    "her": 9.7,
    "under": 9.8,
    "very": 9.8,
    "made": 9.8,
    "united": 9.8,
    "only": 9.8,
    "skin": 9.8,
    "great": 9.8,
    "state": 9.8,
    "two": 9.9,
    "first": 9.9,
    "before": 9.9,
    "most": 9.9,
    "shall": 9.9,
    "tissue": 9.9,
    "will": 9.9,
    "those": 10.0,
    "holmes": 10.0,
    "she": 10.0,
    "must": 10.0,
    "about": 10.0,
    "your": 10.0,
    "congress": 10.0,
    "part": 10.1,
    "blood": 10.1,
    "also": 10.1,
    "man": 10.1,
    "against": 10.1,
    "years": 10.1,
    "our": 10.1,
    "do": 10.1,
    "little": 10.1,
    "well": 10.1,
    "down": 10.2,
    "even": 10.2,
    "being": 10.2,
    "through": 10.2,
    "did": 10.2,
    "usually": 10.2,
    "form": 10.2,
    "between": 10.3,
    "long": 10.3,
    "can": 10.3,
    "disease": 10.3,
    "same": 10.3,
    "treatment": 10.3,
    "now": 10.3,
    "president": 10.4,
    "many": 10.4,
    "way": 10.4,
    "men": 10.4,
    "mr": 10.4,
    "while": 10.4,
    "old": 10.4,
    "cases": 10.4,
    "power": 10.4,
    "see": 10.5,
    "place": 10.5,
    "where": 10.5,
    "people": 10.5,
    "small": 10.5,
    "without": 10.5,
    "met": 10.5,
    "country": 10.6,
    "however": 10.6,
    "every": 10.6,
    "south": 10.6,
    "pp": 10.6,
    "labor": 10.6,
    "found": 10.6,
    "patient": 10.6,
    "like": 10.6,
    "three": 10.6,
    "came": 10.6,
    "law": 10.6,
    "america": 10.6,
    "how": 10.6,
    "large": 10.7,
    "general": 10.7,
    "infection": 10.7,
    "case": 10.7,
    "england": 10.7,
    "constitution": 10.7,
    "nerve": 10.7,
    "until": 10.7,
    "few": 10.7,
    "own": 10.7,
    "national": 10.8,
    "history": 10.8,
    "hand": 10.8,
    "british": 10.8,
    "tissues": 10.8,
    "much": 10.8,
    "house": 10.8,
    "during": 10.8,
    "west": 10.9,
    "union": 10.9,
    "act": 10.9,
    "wound": 10.9,
    "glands": 10.9,
    "course": 10.9,
    "free": 10.9,
    "us": 10.9,
    "often": 10.9,
    "land": 10.9,
    "public": 10.9,
    "take": 10.9,
    "right": 10.9,
    "both": 10.9,
    "come": 10.9,
    "days": 10.9,
    "day": 10.9,
    "sometimes": 10.9,
    "life": 10.9,
    "end": 10.9,
    "become": 10.9,
    "good": 10.9,
    "still": 11.0,
    "result": 11.0,
    "example": 11.0,
    "vessels": 11.0,
    "known": 11.0,
    "illustration": 11.0,
    "face": 11.0,
    "political": 11.0,
    "far": 11.0,
    "party": 11.0,
    "among": 11.0,
    "system": 11.0,
    "north": 11.1,
    "fig": 11.1,
    "make": 11.1,
    "might": 11.1,
    "parts": 11.1,
    "within": 11.1,
    "back": 11.1,
    "each": 11.1,
    "business": 11.1,
    "women": 11.1,
    "use": 11.1,
    "especially": 11.1,
    "left": 11.1,
    "give": 11.1,
    "condition": 11.1,
    "slavery": 11.1,
    "last": 11.1,
    "work": 11.1,
    "colonies": 11.1,
    "another": 11.2,
    "once": 11.2,
    "body": 11.2,
    "trade": 11.2,
    "number": 11.2,
    "common": 11.2,
    "cause": 11.2,
    "pressure": 11.2,
    "whole": 11.2,
    "away": 11.2,
    "certain": 11.2,
    "pain": 11.2,
    "forms": 11.2,
    "less": 11.2,
    "side": 11.2,
    "think": 11.2,
    "surface": 11.2,
    "know": 11.2,
    "am": 11.3,
    "york": 11.3,
    "just": 11.3,
    "though": 11.3,
    "early": 11.3,
    "southern": 11.3,
    "ff": 11.3,
    "world": 11.3,
    "room": 11.3,
    "open": 11.3,
    "matter": 11.3,
    "money": 11.3,
    "french": 11.3,
    "hands": 11.3,
    "called": 11.3,
    "off": 11.3,
    "becomes": 11.3,
    "year": 11.3,
    "taken": 11.3,
    "brought": 11.3,
    "process": 11.3,
    "later": 11.3,
    "federal": 11.3,
    "colonial": 11.3,
    "english": 11.4,
    "here": 11.4,
    "never": 11.4,
    "thus": 11.4,
    "applied": 11.4,
    "present": 11.4,
    "necessary": 11.4,
    "followed": 11.4,
    "revolution": 11.4,
    "aneurysm": 11.4,
    "took": 11.4,
    "four": 11.4,
    "tumour": 11.4,
    "given": 11.4,
    "results": 11.4,
    "rise": 11.4,
    "carried": 11.4,
    "operation": 11.4,
    "nothing": 11.4,
    "having": 11.4,
    "five": 11.4,
    "passed": 11.4,
    "frequently": 11.4,
    "lymph": 11.4,
    "republican": 11.4,
    "local": 11.4,
    "means": 11.5,
    "growth": 11.5,
    "young": 11.5,
    "soon": 11.5,
    "door": 11.5,
    "muscles": 11.5,
    "due": 11.5,
    "civil": 11.5,
}

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
_INLINE = re.compile(
    r"(?P<code>``[^\n]+?``|`[^`\n]+`)"
    r"|(?P<url>\b(?:https?|ftp|file)://[^\s<>\"'`]+|\bwww\.[^\s<>\"'`]+"
    r"|\b[\w.+-]+@[\w-]+\.[\w.-]+)"
    r"|(?P<placeholder>\$\{[^{}\n]*\}|\{\{[^{}\n]*\}\}|\{[^{}\n]*\}"
    r"|\[[^\[\]\n]{1,80}\]|<[^<>\n]{1,80}>)"
    r"|(?P<quote>\"[^\"\n]*\"|“[^”\n]*”|«[^»\n]*»|(?<![\w'’])'[^'\n]*'(?![\w'’]))"
    r"|(?P<number>[-+]?\d+(?:[.,:/_-]\d+)*(?:[eE][-+]?\d+)?%?)"
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
    return [(m.start(), m.end(), False) for m in _INLINE.finditer(text)]


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
    text = _BOLD.sub(r"\1", text)
    text = _UNDERSCORE_BOLD.sub(r"\1", text)
    text = _ITALIC.sub(r"\1", text)
    return _TABLE_RULE.sub(_short_table_rule, text)


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
    """

    text: str
    tokens_before: int
    tokens_after: int
    ratio: float

    @property
    def tokens_saved(self) -> int:
        """tokens_before - tokens_after."""
        return self.tokens_before - self.tokens_after


class PromptCompressor(RunnableSerializable[CompressorInput, CompressorInput]):
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
            raise TypeError(f"compress expects a str, got {type(text).__name__}")
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
        return self._call_with_config(self._compress_input, input, config)

    async def ainvoke(
        self, input: CompressorInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> CompressorInput:
        """Async twin of `invoke` (compression is pure CPU work, done inline)."""
        return await self._acall_with_config(self._acompress_input, input, config)

    async def _acompress_input(self, value: CompressorInput) -> CompressorInput:
        return self._compress_input(value)

    def _compress_input(self, value: CompressorInput) -> CompressorInput:
        if isinstance(value, str):
            return self.compress_text(value)
        if isinstance(value, StringPromptValue):
            return value.model_copy(update={"text": self.compress_text(value.text)})
        if isinstance(value, ChatPromptValue):
            messages = [self.compress_message(m) for m in value.messages]
            return value.model_copy(update={"messages": messages})
        if isinstance(value, BaseMessage):
            return self.compress_message(value)
        if isinstance(value, Sequence) and not isinstance(value, bytes):
            return [self.compress_message(m) for m in convert_to_messages(value)]
        raise TypeError(
            "PromptCompressor takes a str, a PromptValue or a list of messages, got "
            f"{type(value).__name__}"
        )

    def compress_message(self, message: BaseMessage) -> BaseMessage:
        """The message with its text compressed, or unchanged if it is an AI message."""
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
