"""Which prompts one cached answer may serve: the guard of semantic matching.

A similarity score alone answers "What is 2+3?" with the answer to "What is 2+2?".
Two prompts may share an answer only if they share, exactly, the conversation before
the last human message (`prompt_text`), the facts a score cannot weigh (numbers,
negations, quoted strings, code, identifiers, question words: `exactness_features`)
and the capitalized names (`names_agree`). The default semantic mode asks more: the
same canonical words (`wording.canonical_words`); the threshold mode lets the words
differ only as `differences_allowed` says.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from importlib import resources
from typing import Any

from langchain_tokenopt.cache.wording import DIRECTION_WORDS, canonical_words, is_protected
from langchain_tokenopt.core.messages import text_only

__all__ = ["differences_allowed", "exactness_features", "names_agree", "prompt_text"]

_HUMAN_CLASSES = frozenset({"HumanMessage", "HumanMessageChunk"})


def prompt_text(prompt: str) -> tuple[str, str] | None:
    """Split a cache prompt into (exact context, text to compare), or None.

    For chat models langchain-core passes `dumps(messages)`: the text is the content
    of the last human message, and the context (every earlier message, and the last
    one's other fields) must match exactly. A plain string prompt (text LLMs) is its
    own text with an empty context. None means the prompt cannot be matched
    semantically (last message not a human text message, images, ...). Reading the
    chat format relies on langchain-core (docs/internals.md): a prompt in any other
    shape is compared as plain text, never an error.

    Example:
        >>> from langchain_core.load import dumps
        >>> from langchain_core.messages import HumanMessage
        >>> prompt_text(dumps([HumanMessage("What is 2+2?")]))[1]
        'What is 2+2?'
    """
    if not prompt.startswith("[{"):
        return "", prompt
    try:
        messages = json.loads(prompt)
    except ValueError:
        return "", prompt
    if not (
        isinstance(messages, list)
        and messages
        and all(isinstance(m, dict) and m.get("lc") == 1 for m in messages)
    ):
        return "", prompt
    last = messages[-1]
    ident = last.get("id")
    kwargs = last.get("kwargs")
    if not (isinstance(ident, list) and ident and ident[-1] in _HUMAN_CLASSES):
        return None
    if not isinstance(kwargs, dict):
        return None
    text = text_only(kwargs.get("content"))
    if text is None or not text.strip():
        return None
    rest = {key: value for key, value in kwargs.items() if key != "content"}
    context = json.dumps([*messages[:-1], rest], sort_keys=True, separators=(",", ":"))
    return context, text


_UNIT_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen "
    "fourteen fifteen sixteen seventeen eighteen nineteen twenty"
)
_NUMBER_WORDS = {word: str(value) for value, word in enumerate(_UNIT_WORDS.split(" "))}
_NUMBER_WORDS.update(
    {
        "thirty": "30",
        "forty": "40",
        "fifty": "50",
        "sixty": "60",
        "seventy": "70",
        "eighty": "80",
        "ninety": "90",
        "hundred": "100",
        "thousand": "1000",
        "million": "1000000",
        "billion": "1000000000",
        "trillion": "1000000000000",
        "dozen": "12",
        "half": "0.5",
        "twice": "2",
        "double": "2",
        "triple": "3",
    }
)
_TENS = "twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety"
_UNITS = "one|two|three|four|five|six|seven|eight|nine"
_COMPOUND_NUMBER_RE = re.compile(rf"\b({_TENS})[- ]({_UNITS})\b", re.IGNORECASE)
_NUMBER_WORD_RE = re.compile(r"\b(" + "|".join(_NUMBER_WORDS) + r")\b", re.IGNORECASE)
_THOUSANDS_RE = re.compile(r"(?<=\d),(?=\d{3}\b)")
# A number, or an arithmetic expression of numbers: "2+2", "3 * 4", "-5", "10%".
_MATH_RE = re.compile(
    r"(?:(?<![\w)])[-−])?\d+(?:\.\d+)?"
    r"(?:\s*[-−+*/×÷^=<>]+\s*[-−]?\d+(?:\.\d+)?)*%?"
)
_FENCED_RE = re.compile(r"```.*?```", re.DOTALL)
_INLINE_CODE_RE = re.compile(r"`[^`\n]+`")
_QUOTED_RE = re.compile(
    r'"([^"\n]+)"|“([^”\n]+)”|‘([^’\n]+)’|«([^»\n]+)»|(?<!\w)\'([^\'\n]+)\'(?!\w)'
)
# Identifiers, paths, URLs, e-mails: os.path.join, my_var, camelCase, a/b, x@y.
_IDENTIFIER_RE = re.compile(r"\b(?:[A-Za-z_][\w]*(?:[._/\\:@#][\w]+)+|[a-z]+_\w+|[a-z]+[A-Z]\w*)\b")
_WORD_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_NEGATIONS = frozenset(
    {
        "not",
        "no",
        "never",
        "none",
        "nobody",
        "nothing",
        "nowhere",
        "neither",
        "nor",
        "without",
        "cannot",
        "except",
    }
)
# The question word decides what kind of answer is wanted ("Where is Paris?" is not
# "Why is Paris?"), so the set of them must match too.
_QUESTION_WORDS = frozenset(
    {"what", "why", "where", "when", "who", "whom", "whose", "which", "how"}
)
# "Which foods are high in protein?" asks what "What foods ..." asks; "whats" is a
# "what's" typed without its apostrophe.
_SAME_QUESTION = {"which": "what", "whats": "what"}
_CAPITALIZED_RE = re.compile(r"\b[A-Z][a-z]+\b")
_SENTENCE_END = frozenset(".!?:;\n\"'“‘(*-#>")


def _normalize_quotes(text: str) -> str:
    return text.replace("’", "'").replace("‘", "'") if "’" in text else text


def exactness_features(text: str) -> tuple[Any, ...]:
    """What two prompts must share exactly to be answered by one response.

    Numbers (digits and number words) and arithmetic in order, the number of
    negations, quoted strings, code spans, identifiers and question words. "What is 2+2?" and
    "What is 2+3?" differ here, so no similarity score can match them.

    Example:
        >>> exactness_features("What is 2+2?") == exactness_features("what is 2 + 2")
        True
        >>> exactness_features("What is 2+2?") == exactness_features("What is 2+3?")
        False
    """
    text = _normalize_quotes(text)
    code = sorted(span.strip("`").strip() for span in _FENCED_RE.findall(text))
    text = _FENCED_RE.sub(" ", text)
    code += sorted(span.strip("`").strip() for span in _INLINE_CODE_RE.findall(text))
    text = _INLINE_CODE_RE.sub(" ", text)
    quoted = sorted(next(g for g in match if g) for match in _QUOTED_RE.findall(text))
    identifiers = sorted({match.lower() for match in _IDENTIFIER_RE.findall(text)})
    numeric_text = _COMPOUND_NUMBER_RE.sub(
        lambda m: str(
            int(_NUMBER_WORDS[m.group(1).lower()]) + int(_NUMBER_WORDS[m.group(2).lower()])
        ),
        text,
    )
    numeric_text = _NUMBER_WORD_RE.sub(lambda m: _NUMBER_WORDS[m.group(1).lower()], numeric_text)
    numeric_text = _THOUSANDS_RE.sub("", numeric_text)
    numbers = tuple(
        re.sub(r"\s+", "", match).replace("−", "-") for match in _MATH_RE.findall(numeric_text)
    )
    words = _WORD_RE.findall(text.lower())
    negations = sum(1 for word in words if word in _NEGATIONS or word.endswith("n't"))
    asked = {word.split("'")[0] for word in words} & (_QUESTION_WORDS | _SAME_QUESTION.keys())
    questions = tuple(sorted({_SAME_QUESTION.get(word, word) for word in asked}))
    return (numbers, negations, tuple(quoted), tuple(code), tuple(identifiers), questions)


def _proper_nouns(text: str) -> set[str]:
    """Capitalized words that do not start a sentence, lower-cased: likely names."""
    names = set()
    for match in _CAPITALIZED_RE.finditer(text):
        before = text[: match.start()].rstrip(" \t")
        if before and before[-1] not in _SENTENCE_END:
            names.add(match.group().lower())
    return names


def _word_set(text: str) -> set[str]:
    words = set()
    for word in _WORD_RE.findall(_normalize_quotes(text).lower()):
        words.add(word[:-2] if word.endswith("'s") else word)
    return words


def names_agree(a: str, b: str) -> bool:
    """Every capitalized name inside one text also occurs (in any case) in the other.

    Catches "capital of France" vs "capital of Spain" that a bag of words scores high.
    """
    words_a, words_b = _word_set(a), _word_set(b)
    return _proper_nouns(a) <= words_b and _proper_nouns(b) <= words_a


def _common_words() -> frozenset[str]:
    """The 300 most frequent English words (package data), read once."""
    global _COMMON
    if _COMMON is None:
        table = json.loads(
            resources.files("langchain_tokenopt").joinpath("data/word_bits.json").read_text("utf-8")
        )
        _COMMON = frozenset(table["bits"])
    return _COMMON


_COMMON: frozenset[str] | None = None


def differences_allowed(a: str, b: str) -> bool:
    """Whether two prompts' words differ only where the answer cannot change.

    The guard of the threshold mode, on top of a TF-IDF score: every word that one
    canonical wording has and the other lacks must be a frequent English word that is
    not protected (not a direction, antonym, unit, time, pronoun or quantifier; see
    `wording.is_protected`), so a rare word, which may name a drug, a place or a group
    of people in lowercase, never differs. With a direction word ("to", "from",
    "than", ...) the shared words must also keep their order: "miles to km" is not
    "km to miles". Capitalized names must agree too (`names_agree`).

    Example:
        >>> differences_allowed("What is the capital of France?", "what's the capital of france")
        True
        >>> differences_allowed("convert miles to km", "convert km to miles")
        False
        >>> differences_allowed("side effects of metformin", "side effects of lisinopril")
        False
    """
    words_a, words_b = canonical_words(a), canonical_words(b)
    if words_a == words_b:
        return True
    if not names_agree(a, b):
        return False
    count_a, count_b = Counter(words_a), Counter(words_b)
    differing = (count_a - count_b) + (count_b - count_a)
    common = _common_words()
    if any(is_protected(word) or word not in common for word in differing):
        return False
    if DIRECTION_WORDS.intersection(words_a) or DIRECTION_WORDS.intersection(words_b):
        shared = count_a & count_b
        return [w for w in words_a if w in shared] == [w for w in words_b if w in shared]
    return True
