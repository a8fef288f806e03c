"""Topic-neutral difficulty features of a prompt, in pure Python (no numpy, no sklearn).

They describe the FORM of a request (length, numbers, notation, question form, answer
options, task verbs), not its subject, so a model trained on some kinds of prompts can
rank kinds it never saw. There is no vocabulary of content words: the only word lists
are English function words, question forms ("which of the following", "NOT"), generic
task verbs ("calculate", "prove", "implement") and answer-option patterns.

`extract(text)` returns floats in the order of `FEATURE_NAMES`. A prompt is read as a
stem followed, optionally, by answer options (lines starting ``A.`` / ``B)`` ..., at
least two consecutive letters); a trailing ``Answer:`` line is dropped. Text past
`MAX_CHARS` is ignored so the cost per call stays bounded.
"""

from __future__ import annotations

import math
import re

__all__ = ["FEATURE_NAMES", "MAX_CHARS", "extract", "split_options"]

MAX_CHARS = 8_000

FEATURE_NAMES: tuple[str, ...] = (
    # size and readability of the whole prompt / the stem
    "log_words",  # log(1 + words in the whole prompt)
    "log_stem_words",  # log(1 + words in the stem, i.e. before the options)
    "stem_sentences",  # sentences in the stem (. ! ? followed by space/end), log(1 + n)
    "words_per_sentence",  # stem words / stem sentences, / 40, capped at 2
    "mean_word_len",  # mean letters per alphabetic word (stem), / 10
    "long_word_frac",  # share of stem alphabetic words with >= 9 letters
    "type_token_ratio",  # distinct / all lower-cased stem words (1 for empty)
    "function_word_frac",  # share of stem words that are English function words
    "capital_word_frac",  # share of stem words capitalised mid-sentence (names, terms)
    "comma_per_sentence",  # commas / sentences in the stem, / 5, capped at 2
    "newline_lines_stem",  # non-empty lines in the stem, log(1 + n)
    # numbers and mathematics
    "log_numbers",  # log(1 + numbers anywhere)
    "log_distinct_numbers_stem",  # log(1 + distinct numbers in the stem)
    "digit_char_frac",  # digits / non-space characters
    "has_decimal",  # a number with a decimal point
    "percent_or_currency",  # count of % and currency symbols / words, capped at 5, / 5
    "arithmetic_ops",  # digit-operator-digit patterns and '=' signs, capped at 10, / 10
    "math_notation",  # LaTeX commands, $..$, ^, sqrt, unicode maths, capped at 10, / 10
    "logic_notation",  # logic symbols (∨ • ⊃ ∃ ∀ ≡ ~ →), capped at 10, / 10
    "single_letter_vars",  # standalone one-letter variables (x, y, n, f(x)...), capped 10, / 10
    "units",  # measurement units after numbers (km, kg, mol, m/s, hours...), capped 5, / 5
    "years",  # four-digit years (1000-2099) in the stem, capped at 3, / 3
    "quantity_question",  # 'how many/much', 'what is the value', 'calculate', 'find'...
    # code
    "code",  # 1 with a code fence or 3+ code-looking lines, else code words * 0.25 (<= .75)
    # question form
    "question_mark_stem",  # the stem holds a '?'
    "which_following",  # 'which of the following' / 'which one of'
    "neg_caps",  # upper-case NOT / EXCEPT / LEAST / FALSE / INCORRECT in the stem
    "negations",  # not / no / never / n't / none / neither in the stem, capped 5, / 5
    "statement_list",  # 'Statement 1', 'Scenario 1', I./II./III. lists: count, capped 4, / 4
    "reasoning_cues",  # prove / derive / step by step / explain why / compare...: distinct, / 3
    "instruction_verbs",  # write / implement / design / analyze / evaluate...: distinct, / 3
    "quote_or_passage",  # quotation marks (pairs) in the stem, capped 4, / 4
    "blank_completion",  # the stem ends without '?' or ':' (sentence to complete)
    # answer options
    "n_options",  # number of options / 4 (0 without options)
    "opt_log_mean_words",  # log(1 + mean words per option)
    "opt_cv_words",  # coefficient of variation of option lengths (words)
    "opt_max_min_ratio",  # log(longest / shortest option in characters)
    "opt_numeric_frac",  # share of options that are mostly a number / formula
    "opt_digit_frac",  # share of options holding a digit
    "opt_math_frac",  # share of options holding maths or logic notation
    "opt_overlap",  # mean pairwise Jaccard overlap of option word sets
    "opt_combo",  # options that combine: 'I and II', 'True, False', 'Wrong, Not wrong'...
    "opt_all_none",  # 'all of the above' / 'none of the above' / 'both' / 'neither'
    "opt_to_stem_ratio",  # log((1 + option words) / (1 + stem words))
    "opt_numeric_spread",  # numeric options: (max - min) / max(|values|), small = close values
)

_FUNCTION_WORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "also",
        "although",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "either",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "may",
        "me",
        "might",
        "more",
        "most",
        "must",
        "my",
        "myself",
        "neither",
        "nor",
        "not",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "same",
        "shall",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "upon",
        "us",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "whether",
        "which",
        "while",
        "who",
        "whom",
        "whose",
        "why",
        "will",
        "with",
        "within",
        "without",
        "would",
        "yet",
        "you",
        "your",
        "yours",
        "yourself",
    ]
)
# single-word cues are looked up in the set of lower-cased words (fast); phrases are
# found with `in` on the lower-cased text
_CODE_WORDS = frozenset(
    [
        "code",
        "function",
        "script",
        "program",
        "implement",
        "debug",
        "refactor",
        "compile",
        "regex",
        "sql",
        "api",
        "algorithm",
        "python",
        "javascript",
        "typescript",
        "java",
        "c++",
        "rust",
        "golang",
        "bash",
        "html",
        "css",
        "json",
        "yaml",
        "parse",
        "parser",
        "parses",
        "class",
        "method",
        "recursion",
        "recursive",
    ]
)
_CODE_PHRASES = ("unit test",)
_NEGATION_WORDS = frozenset(["not", "no", "never", "none", "neither", "nor", "cannot"])
_NEG_CAPS_WORDS = frozenset(["NOT", "EXCEPT", "LEAST", "FALSE", "INCORRECT", "NEVER", "UNLIKELY"])
_QUANTITY_WORDS = frozenset(
    ["calculate", "compute", "evaluate", "find", "solve", "simplify", "estimate"]
)
_QUANTITY_PHRASES = (
    "how many",
    "how much",
    "how long",
    "how far",
    "how old",
    "determine the",
    "what is the value",
    "what is the sum",
    "what is the product",
    "what is the number",
    "what is the total",
    "what is the probability",
    "what is the area",
    "what is the volume",
    "what is the length",
    "what is the maximum",
    "what is the minimum",
    "what is the smallest",
    "what is the largest",
    "what is the remainder",
)
_REASONING_WORDS = frozenset(
    [
        "prove",
        "proof",
        "derive",
        "derivation",
        "justify",
        "compare",
        "contrast",
        "tradeoff",
        "tradeoffs",
        "rigorous",
        "rigorously",
        "formal",
        "formally",
    ]
)
_REASONING_PHRASES = (
    "show that",
    "step by step",
    "step-by-step",
    "explain why",
    "trade-off",
    "pros and cons",
    "reason about",
    "multi-step",
    "in detail",
    "why does",
    "why do",
    "why is",
    "why are",
    "why did",
)
_INSTRUCTION_WORDS = frozenset(
    [
        "write",
        "implement",
        "design",
        "analyze",
        "analyse",
        "evaluate",
        "critique",
        "optimize",
        "optimise",
        "refactor",
        "debug",
        "plan",
        "architect",
        "build",
        "develop",
        "create",
        "translate",
        "summarize",
        "summarise",
    ]
)
_WHICH_PHRASES = ("which of the following", "which one of", "which of these", "which statement")
_ALL_NONE_PHRASES = (
    "all of the above",
    "none of the above",
    "both a",
    "both b",
    "both of",
    "neither",
    "all of these",
    "none of these",
)
_CURRENCY_WORDS = frozenset(["percent", "dollar", "dollars", "cent", "cents", "euro", "euros"])
_UNIT_WORDS = frozenset(
    [
        "km",
        "m",
        "cm",
        "mm",
        "kg",
        "g",
        "mg",
        "mol",
        "ml",
        "l",
        "s",
        "ms",
        "hz",
        "khz",
        "mhz",
        "v",
        "a",
        "w",
        "kw",
        "j",
        "n",
        "pa",
        "k",
        "ft",
        "mph",
        "oz",
        "lb",
        "lbs",
        "mile",
        "miles",
        "feet",
        "foot",
        "inches",
        "inch",
        "pound",
        "pounds",
        "ounce",
        "ounces",
        "hour",
        "hours",
        "minute",
        "minutes",
        "second",
        "seconds",
        "day",
        "days",
        "week",
        "weeks",
        "month",
        "months",
        "year",
        "years",
        "liter",
        "liters",
        "litre",
        "litres",
        "gallon",
        "gallons",
        "meter",
        "meters",
        "metre",
        "metres",
        "gram",
        "grams",
        "kilogram",
        "kilograms",
        "dollar",
        "dollars",
        "cent",
        "cents",
    ]
)

_WORD = re.compile(r"[A-Za-z0-9+']+")
_SENTENCE_END = re.compile(r"[.!?](?:\s|$)")
_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")
_NUMBER_THEN_WORD = re.compile(r"\d\s*(°|/|[a-z]+)")
_ARITH = re.compile(r"\d\s*[-+*/×÷x^]\s*\(?\d|=")
_MATH = re.compile(
    r"\\[a-zA-Z]+|\$[^$\n]{1,80}\$|\^|√|sqrt|[∑∫≤≥≠±∞π∂∈∉⊂⊆∪∩→↔⇒]|\b(?:log|ln|sin|cos|tan|lim|mod)\b"
)
_LOGIC = re.compile(r"[∨•⊃∃∀≡~∧¬→↔]")
_CODE_FENCE = re.compile(r"```|~~~")
_CODE_LINE = re.compile(
    r"^[ \t]*(?:def |class |import |from \S+ import |#include|function\s+\w+\s*\(|const |let |"
    r"var |public |private |return\b|for\s*\(|if\s*\(|while\s*\(|"
    r"[}\]]\s*;?[ \t]*$|[^\n]*[{;][ \t]*$)",
    re.MULTILINE,
)
_STATEMENTS = re.compile(
    r"(?:^|\s)(?:I|II|III|IV)[.)]\s|\b(?:[Ss]tatement|[Ss]cenario|[Pp]remise|[Cc]laim) ?\d\b"
)
_OPTION_LINE = re.compile(r"^[ \t]*([A-J])[.)][ \t]*(.*)$", re.MULTILINE)
_ANSWER_TAIL = re.compile(r"\n?\s*Answer:\s*$")
_COMBO = re.compile(
    r"^(?:(?:I|II|III|IV|V)(?:\s*,\s*|\s+and\s+|\s*&\s*|\s+only|\s*$))+|"
    r"^(?:true|false|wrong|not wrong|correct|incorrect|yes|no)\s*,\s*"
    r"(?:true|false|wrong|not wrong|correct|incorrect|yes|no)\b",
    re.I,
)
_NUMERIC_OPTION = re.compile(
    r"^[\s$€£(-]*[-+]?\d[\d,]*(?:\.\d+)?\s*(?:%|[A-Za-z/°²³]{0,6})?[)\s.]*$"
)
_OPTION_NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?")


def split_options(text: str) -> tuple[str, list[str]]:
    """(stem, options): options are the trailing run of ``A.``/``B)``... lines (>= 2)."""
    body = _ANSWER_TAIL.sub("", text)
    matches = list(_OPTION_LINE.finditer(body))
    # keep the last run of consecutive letters A, B, C, ... that starts at 'A'
    best: list[re.Match[str]] = []
    run: list[re.Match[str]] = []
    for match in matches:
        letter = match.group(1)
        if letter == "A":
            run = [match]
        elif run and ord(letter) == ord(run[-1].group(1)) + 1:
            run.append(match)
        else:
            continue
        if len(run) >= 2:
            best = list(run)
    if not best:
        return body.strip(), []
    return body[: best[0].start()].strip(), [m.group(2).strip() for m in best]


def _cap(value: float, limit: float) -> float:
    return min(value, limit) / limit


def _numeric_value(option: str) -> float | None:
    match = _OPTION_NUMBER.search(option)
    if match is None:
        return None
    try:
        return float(match.group(0).replace(",", ""))
    except ValueError:
        return None


def _option_features(stem_words: int, options: list[str]) -> list[float]:
    if not options:
        return [0.0] * 12
    words = [len(_WORD.findall(o)) for o in options]
    mean_words = sum(words) / len(words)
    var = sum((w - mean_words) ** 2 for w in words) / len(words)
    cv = math.sqrt(var) / mean_words if mean_words else 0.0
    chars = [max(len(o), 1) for o in options]
    numeric = [bool(_NUMERIC_OPTION.match(o)) for o in options]
    sets = [{w.lower() for w in _WORD.findall(o)} for o in options]
    overlaps = []
    for i in range(len(sets)):
        for j in range(i + 1, len(sets)):
            union = sets[i] | sets[j]
            overlaps.append(len(sets[i] & sets[j]) / len(union) if union else 1.0)
    spread = 0.0
    if sum(numeric) >= 2:
        values = [
            v
            for o, n in zip(options, numeric, strict=True)
            if n and (v := _numeric_value(o)) is not None
        ]
        if len(values) >= 2:
            top = max(abs(v) for v in values)
            spread = (max(values) - min(values)) / top if top else 0.0
    n = len(options)
    return [
        n / 4,
        math.log1p(mean_words),
        min(cv, 3.0),
        math.log(max(chars) / min(chars)),
        sum(numeric) / n,
        sum(any(c.isdigit() for c in o) for o in options) / n,
        sum(bool(_MATH.search(o) or _LOGIC.search(o)) for o in options) / n,
        sum(overlaps) / len(overlaps) if overlaps else 0.0,
        sum(bool(_COMBO.search(o)) for o in options) / n,
        float(any(p in o.lower() for o in options for p in _ALL_NONE_PHRASES)),
        math.log((1 + sum(words)) / (1 + stem_words)),
        min(spread, 2.0),
    ]


def _distinct(words: set[str], lower: str, vocab: frozenset[str], phrases: tuple[str, ...]) -> int:
    return len(words & vocab) + sum(1 for p in phrases if p in lower)


def extract(text: str) -> list[float]:
    """The feature vector of `text`, in the order of `FEATURE_NAMES`."""
    text = text[:MAX_CHARS]
    stem, options = split_options(text)
    lower = text.lower()
    stem_lower = stem.lower()
    all_words = _WORD.findall(text)
    stem_words = _WORD.findall(stem)
    n_stem = len(stem_words)
    stem_lc = [w.lower() for w in stem_words]
    stem_set = set(stem_lc)
    text_set = {w.lower() for w in all_words}
    alpha = [w for w in stem_words if w.isalpha()]
    sentences = max(1, len(_SENTENCE_END.findall(stem)))
    # capitalised words that do not start a sentence (names, technical terms)
    capital = 0
    previous = "."
    for token in stem.split():
        if token[:1].isupper() and previous[-1:] not in ".?!:":
            capital += 1
        previous = token
    non_space = len(text) - sum(text.count(c) for c in " \n\t") or 1
    numbers = _NUMBER.findall(text)
    stem_numbers = set(_NUMBER.findall(stem))
    years = sum(1 for n in stem_numbers if len(n) == 4 and n.isdigit() and 1000 <= int(n) <= 2099)
    units = sum(1 for u in _NUMBER_THEN_WORD.findall(lower) if u in _UNIT_WORDS or u in "°/")
    currency = text.count("%") + text.count("$") + sum(c in "€£¥" for c in text)
    currency += sum(1 for w in all_words if w.lower() in _CURRENCY_WORDS)
    single_vars = sum(1 for w in stem_words if len(w) == 1 and w.isalpha() and w not in "aAI")
    if _CODE_FENCE.search(text) or len(_CODE_LINE.findall(text)) >= 3:
        code = 1.0
    else:
        code = min(0.75, 0.25 * _distinct(text_set, lower, _CODE_WORDS, _CODE_PHRASES))
    stripped = stem.rstrip()
    features = [
        math.log1p(len(all_words)),
        math.log1p(n_stem),
        math.log1p(len(_SENTENCE_END.findall(stem))),
        min(n_stem / sentences / 40, 2.0),
        (sum(len(w) for w in alpha) / len(alpha) / 10) if alpha else 0.0,
        (sum(len(w) >= 9 for w in alpha) / len(alpha)) if alpha else 0.0,
        (len(stem_set) / n_stem) if n_stem else 1.0,
        (sum(w in _FUNCTION_WORDS for w in stem_lc) / n_stem) if n_stem else 0.0,
        (capital / n_stem) if n_stem else 0.0,
        min(stem.count(",") / sentences / 5, 2.0),
        math.log1p(sum(1 for line in stem.splitlines() if line.strip())),
        math.log1p(len(numbers)),
        math.log1p(len(stem_numbers)),
        sum(c.isdigit() for c in text) / non_space,
        float(any("." in n for n in numbers)),
        _cap(currency, 5),
        _cap(len(_ARITH.findall(text)), 10),
        _cap(len(_MATH.findall(text)), 10),
        _cap(len(_LOGIC.findall(text)), 10),
        _cap(single_vars, 10),
        _cap(units, 5),
        _cap(years, 3),
        _cap(_distinct(stem_set, stem_lower, _QUANTITY_WORDS, _QUANTITY_PHRASES), 3),
        code,
        float("?" in stem),
        float(any(p in stem_lower for p in _WHICH_PHRASES)),
        float(bool(set(stem_words) & _NEG_CAPS_WORDS)),
        _cap(sum(1 for w in stem_lc if w in _NEGATION_WORDS or w.endswith("n't")), 5),
        _cap(len(_STATEMENTS.findall(stem)), 4),
        _cap(_distinct(text_set, lower, _REASONING_WORDS, _REASONING_PHRASES), 3),
        _cap(len(text_set & _INSTRUCTION_WORDS), 3),
        _cap((stem.count('"') + stem.count("“") + stem.count("”")) / 2, 4),
        float(bool(stripped) and stripped[-1] not in "?:"),
    ]
    features += _option_features(n_stem, options)
    return features
