"""The words of a prompt that decide its answer, in order: what semantic matching compares.

`canonical_words` drops what a model ignores (case, punctuation, articles, polite
preambles such as "can you" or "please", the auxiliaries "is" and "do") and spells
alike what means alike (contractions, "how do I" / "how to", plurals, a short list of
synonyms). Every other word is kept, in order, so "convert miles to km" and "convert km
to miles", "ibuprofen" and "acetaminophen", "open" and "close" stay apart whether or
not they are capitalized. `protected_words` are the words whose change always changes
the answer (directions, antonyms, units, times, pronouns, quantifiers), for the
threshold mode's guard (`exactness.differences_allowed`).
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["DIRECTION_WORDS", "canonical_words", "is_protected"]


def _words(*lines: str) -> frozenset[str]:
    return frozenset(word for line in lines for word in line.split())


_CONTRACTIONS = {
    "what's": "what is",
    "whats": "what is",
    "where's": "where is",
    "who's": "who is",
    "how's": "how is",
    "when's": "when is",
    "why's": "why is",
    "that's": "that is",
    "there's": "there is",
    "it's": "it is",
    "he's": "he is",
    "she's": "she is",
    "let's": "let us",
    "i'm": "i am",
    "im": "i am",
    "you're": "you are",
    "we're": "we are",
    "they're": "they are",
    "i've": "i have",
    "you've": "you have",
    "we've": "we have",
    "i'd": "i would",
    "you'd": "you would",
    "i'll": "i will",
    "you'll": "you will",
    "can't": "can not",
    "cannot": "can not",
    "won't": "will not",
    "shan't": "shall not",
    "n't": " not",
}
_CONTRACTION_RE = re.compile(
    r"\b(?:" + "|".join(re.escape(c) for c in _CONTRACTIONS if c != "n't") + r")\b"
)
_NOT_RE = re.compile(r"(?<=\w)n't\b")

# Phrases that say how to ask, not what is asked; rewritten before splitting words.
_PHRASES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        (r"^\W*(?:hey|hi|hello)\b\W*", " "),
        (r"\b(?:can|could|would|will) you(?: please)?\b", " "),
        (r"\bhow (?:do|can|could|would|should) (?:i|you|one|we)\b", " how to "),
        (r"\bhow does one\b", " how to "),
        (r"\bshow me how\b", " how "),
        (r"\b(?:i (?:want|would like|need|wish) to know|i wonder|do you know)\b", " "),
        (r"\b(?:tell|show|give) me\b", " "),
        (r"\b(?:help me)\b", " "),
        (r"&", " and "),
    )
)
_NUMBER_WORDS = {
    word: str(value)
    for value, word in enumerate(
        re.findall(
            r"\w+",
            "zero one two three four five six seven eight nine ten eleven twelve thirteen "
            "fourteen fifteen sixteen seventeen eighteen nineteen twenty",
        )
    )
}
_WORD_RE = re.compile(r"[a-z0-9]+(?:\.[0-9]+)?")
_FILLER = frozenset(
    {
        "a",
        "an",
        "the",
        "please",
        "pls",
        "plz",
        "kindly",
        "thanks",
        "thank",
        "is",
        "are",
        "am",
        "be",
        "do",
        "does",
        "just",
        "really",
        "exactly",
        "actually",
    }
)
# "thank you" is a phrase to translate as often as a courtesy: only strip the courtesy
# at the end of a prompt.
_TRAILING_THANKS_RE = re.compile(r"\b(?:thanks|thank you)\W*$")
_SYNONYMS = {
    "ocean": "sea",
    "movie": "film",
    "purchase": "buy",
    "begin": "start",
    "large": "big",
    "huge": "big",
    "quick": "fast",
    "quickest": "fastest",
    "quickly": "fast",
    "delete": "remove",
    "repair": "fix",
    "create": "make",
    "describe": "explain",
    "int": "integer",
    "into": "to",
    "kid": "child",
    "children": "child",
    "automobile": "car",
    "photo": "picture",
    "u": "you",
    "ur": "your",
    "versus": "vs",
    "which": "what",
    "regarding": "about",
    "concerning": "about",
}
# Words whose change reverses or re-aims a request.
DIRECTION_WORDS = _words(
    "to from into onto than vs versus over under above below before after per by toward",
    "towards against then instead rather between",
)
_PROTECTED = _words(
    # antonyms and qualifiers
    "start stop open close on off up down in out increase decrease gain lose "
    "add remove enable disable high low higher lower highest lowest big small "
    "bigger smaller biggest smallest long short longer shorter hot cold warm cool "
    "max maximum min minimum more less most least best worst better worse first "
    "last next previous early late old new young positive negative good bad "
    "safe unsafe legal illegal true false yes no all some any none every each "
    "only also many much few several hard soft raw cooked heavy light fast slow "
    "buy sell hire fire win lose pass fail left right top bottom north south "
    "east west front back inside outside import export push pull send receive "
    "upload download connect disconnect install uninstall encrypt decrypt "
    "encode decode compress decompress sum difference same different "
    # pronouns and people
    "i me my mine you your yours he him his she her hers we us our they them "
    "their it its man men woman women boy girl child adult baby teen teenager "
    # units
    "cm mm m km meter metre kilometer mile foot feet inch yard g kg gram "
    "kilogram pound lb ounce oz ton liter litre ml gallon quart pint cup "
    "teaspoon tablespoon celsius fahrenheit kelvin degree percent dollar euro "
    "yen byte kilobyte megabyte gigabyte terabyte bit watt volt amp calorie "
    "joule mph kph second minute hour day week month year decade century "
    # times
    "am pm today tomorrow yesterday tonight morning afternoon evening night "
    "noon midnight weekend weekday now ago monday tuesday wednesday thursday "
    "friday saturday sunday january february march april may june july "
    "august september october november december spring summer autumn fall "
    "winter past future was were will would did had shall should must can "
    "could might not never without"
)


@lru_cache(maxsize=4096)
def canonical_words(text: str) -> tuple[str, ...]:
    """The words of `text` that decide its answer, spelled one way, in order.

    Example:
        >>> canonical_words("Hey, could you tell me what's the capital of France?")
        ('what', 'capital', 'of', 'france')
        >>> canonical_words("How do I convert km to miles?")
        ('how', 'to', 'convert', 'km', 'to', 'mile')
    """
    text = text.lower().replace("’", "'").replace("‘", "'")
    text = _CONTRACTION_RE.sub(lambda match: _CONTRACTIONS[match.group()], text)
    text = _NOT_RE.sub(" not", text)
    text = _TRAILING_THANKS_RE.sub(" ", text)
    for pattern, replacement in _PHRASES:
        text = pattern.sub(replacement, text)
    words = []
    for word in _WORD_RE.findall(text):
        if word in _FILLER:
            continue
        word = _NUMBER_WORDS.get(word) or _SYNONYMS.get(word, word)
        words.append(_SYNONYMS.get(_singular(word), _singular(word)))
    return tuple(words)


def _singular(word: str) -> str:
    """A plural noun's singular, by spelling only ("tests" -> "test", "flies" -> "fly")."""
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("sses", "shes", "ches", "xes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is", "os")):
        return word[:-1]
    return word


def is_protected(word: str) -> bool:
    """Whether a change of `word` (a canonical word) always changes the answer."""
    return word in _PROTECTED or word in DIRECTION_WORDS or any(c.isdigit() for c in word)
