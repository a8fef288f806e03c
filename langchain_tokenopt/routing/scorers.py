"""Difficulty scorers: how hard a request is, in [0, 1], for `ModelRouter` to route on.

`HeuristicScorer` reads features a person can check (length, code, math, reasoning
cues, ...) with documented weights; `LearnedScorer` is trained on prompts labelled by
whether the weak model was good enough. Both read the latest user message. Neither is
the router's default (`PretrainedScorer` is): on real routing data the heuristic keeps
less quality than random routing at equal cost (docs/benchmarks.md, "Routing").
"""

from __future__ import annotations

import json
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any, Literal

from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

from langchain_tokenopt.core.messages import as_messages, message_list
from langchain_tokenopt.core.tokens import TokenCounter
from langchain_tokenopt.core.validation import (
    instance_of,
    int_in_range,
    optional,
    positive_number,
    shown,
)
from langchain_tokenopt.errors import ArgumentTypeError, InvalidArgumentError, NotFittedError

__all__ = [
    "DEFAULT_WEIGHTS",
    "ComplexityScorer",
    "HeuristicScorer",
    "LearnedScorer",
    "ScoreExplanation",
]


def _latest_user_index(messages: Sequence[BaseMessage]) -> int | None:
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].type == "human":
            return index
    return None


def _latest_user_text(messages: Sequence[BaseMessage]) -> str:
    """Text of the latest user message; all messages' text if there is none."""
    index = _latest_user_index(messages)
    if index is not None:
        return str(messages[index].text)
    return "\n".join(str(message.text) for message in messages)


class ComplexityScorer(ABC):
    """Maps a request to a difficulty in [0, 1]: 0 any model will do, 1 the hardest.

    Subclass it and implement `score`; the router clips results to [0, 1] and rejects
    NaN. `tools` are the tool schemas bound to the router (empty when none).

    Example:
        >>> from langchain_core.messages import HumanMessage
        >>> class ByLength(ComplexityScorer):
        ...     def score(self, messages, *, tools=()):
        ...         return min(1.0, sum(len(str(m.content)) for m in messages) / 2000)
        >>> ByLength().score([HumanMessage("hi")])
        0.001
    """

    @abstractmethod
    def score(self, messages: Sequence[BaseMessage], *, tools: Sequence[Any] = ()) -> float:
        """Difficulty of the request made of `messages` (and `tools`), in [0, 1]."""


#: Weight of each `HeuristicScorer` feature; the score is their weighted sum, clipped.
DEFAULT_WEIGHTS: Mapping[str, float] = {
    "length": 0.20,
    "code": 0.30,
    "math": 0.30,
    "reasoning": 0.35,
    "questions": 0.10,
    "depth": 0.10,
    "tools": 0.15,
}

_CODE_FENCE = re.compile(r"```|~~~")
_CODE_LINE = re.compile(
    r"^\s*(?:def |class |import |from \S+ import |#include|function\s+\w+\s*\(|const |let |"
    r"var |public |private |return\b|select\s.+\sfrom\s|for\s*\(|if\s*\(|while\s*\(|"
    r"[}\]]\s*;?\s*$|.*[{;]\s*$)",
    re.MULTILINE | re.IGNORECASE,
)
_CODE_WORDS = re.compile(
    r"\b(code|coding|function|script|program|implement|debug|refactor|compile|regex|sql|"
    r"api|algorithm|bug|stack trace|python|javascript|typescript|java|c\+\+|rust|golang|"
    r"bash|html|css|json|yaml|unit tests?|database|query|repository)\b",
    re.IGNORECASE,
)
_MATH_SYMBOLS = re.compile(
    r"\\(?:frac|sum|int|sqrt|lim|cdot|alpha|beta|theta|pi|infty)\b|\$[^$\n]+\$|"
    r"\d\s*[\^*=<>]\s*\(?-?\d|[∑∫√≤≥≠±∞π∂]"
)
_MATH_WORDS = re.compile(
    r"\b(prove|proof|theorem|lemma|integral|derivative|differentiate|equation|solve|"
    r"probability|expected value|variance|matrix|matrices|eigen\w*|polynomial|logarithm|"
    r"calculus|algebra|geometry|statistics|optimi[sz]e|combinatori\w*|modulo|prime|"
    r"arithmetic|compute|calculate)\b",
    re.IGNORECASE,
)
_REASONING_CUES = re.compile(
    r"\b(step[- ]by[- ]step|explain why|why (?:does|do|is|are)|reasoning|analy[sz]e|analysis|"
    r"compare|contrast|trade-?offs?|pros and cons|evaluate|justify|critique|design|plan|"
    r"strategy|derive|implications?|root cause|in detail|comprehensive|multi-step|"
    r"architecture|first\b[^.?!]{0,80}\bthen|recommend|assess)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ScoreExplanation:
    """Why `HeuristicScorer` gave a score: each feature in [0, 1] and its weighted part.

    `score` is ``min(1, max(0, sum(contributions.values())))``.

    Example:
        >>> explained = HeuristicScorer().explain("Prove that the integral converges.")
        >>> explained.features["math"], round(explained.contributions["math"], 2)
        (0.7, 0.21)
    """

    score: float
    features: Mapping[str, float]
    contributions: Mapping[str, float]


class HeuristicScorer(ComplexityScorer):
    """A difficulty score from features a reader can check, with documented weights.

    Features, each in [0, 1], read from the latest user message unless said otherwise:

    - ``length``: its tokens / `length_saturation_tokens` (800), capped at 1.
    - ``code``: 1 with a code fence or 3+ code-looking lines; else 0.25 per distinct
      programming word ("function", "sql", "debug", ...), at most 0.75.
    - ``math``: 1 with math notation (LaTeX, ``$...$``, ``3 * 4``, ``x^2``, ``≤``; not ``/``,
      which dates use); else 0.35 per
      distinct math word ("prove", "integral", "probability", ...), capped at 1.
    - ``reasoning``: distinct multi-step reasoning cues ("step by step", "compare",
      "trade-offs", "explain why", "design", "first ... then", ...) / 3, capped at 1.
    - ``questions``: (question marks - 1) / 3, capped at 1 (one question adds nothing).
    - ``depth``: user turns before the latest one / 8, capped at 1 (whole conversation).
    - ``tools``: 1 when tools are bound, 0.5 when the conversation holds tool calls or
      tool results, else 0.

    The score is the weighted sum (`DEFAULT_WEIGHTS`: length 0.20, code 0.30, math 0.30,
    reasoning 0.35, questions 0.10, depth 0.10, tools 0.15) clipped to [0, 1]: chit-chat
    and lookups score near 0, a request with one strong signal (code, math or several
    reasoning cues) about 0.3, two signals 0.5-0.7. So a cheap tier with quality 0.3
    takes the easy requests and leaves anything with two signals to stronger tiers.

    Example:
        >>> scorer = HeuristicScorer()
        >>> round(scorer.explain("hi there").score, 2)
        0.0
        >>> explained = scorer.explain("Compare quicksort and mergesort step by step, "
        ...     "then implement both in Python.")
        >>> {name: round(value, 2) for name, value in explained.features.items() if value}
        {'length': 0.02, 'code': 0.5, 'reasoning': 0.67}
        >>> round(explained.score, 2)  # 0.02 * 0.20 + 0.5 * 0.30 + 0.67 * 0.35
        0.39
    """

    def __init__(
        self,
        weights: Mapping[str, float] | None = None,
        *,
        length_saturation_tokens: int = 800,
        counter: TokenCounter | None = None,
    ) -> None:
        optional(instance_of, weights, "weights", Mapping, "a dict of feature weights")
        optional(instance_of, counter, "counter", TokenCounter, "a TokenCounter")
        chosen = dict(DEFAULT_WEIGHTS if weights is None else weights)
        unknown = set(chosen) - set(DEFAULT_WEIGHTS)
        if unknown:
            raise InvalidArgumentError(
                f"unknown HeuristicScorer features {sorted(unknown)}; the features are "
                f"{sorted(DEFAULT_WEIGHTS)}"
            )
        for name, weight in chosen.items():
            if not isinstance(weight, (int, float)) or not math.isfinite(weight):
                raise InvalidArgumentError(
                    f"weight of {shown(name)} must be a finite number, got {shown(weight)}"
                )
        int_in_range(length_saturation_tokens, "length_saturation_tokens", minimum=1)
        self.weights: dict[str, float] = {name: float(chosen.get(name, 0.0)) for name in chosen}
        self.length_saturation_tokens = length_saturation_tokens
        self.counter = counter if counter is not None else TokenCounter("gpt-4o")

    def __repr__(self) -> str:
        return f"HeuristicScorer(weights={self.weights!r})"

    def features(
        self, messages: Sequence[BaseMessage], *, tools: Sequence[Any] = ()
    ) -> dict[str, float]:
        """The feature values (each in [0, 1]) of a request."""
        text = _latest_user_text(messages)
        return {
            "length": min(1.0, self.counter.count_text(text) / self.length_saturation_tokens),
            "code": _code_feature(text),
            "math": _math_feature(text),
            "reasoning": min(1.0, len(_distinct(_REASONING_CUES, text)) / 3),
            "questions": min(1.0, max(text.count("?") - 1, 0) / 3),
            "depth": min(1.0, _earlier_user_turns(messages) / 8),
            "tools": _tools_feature(messages, tools),
        }

    def explain(self, input: LanguageModelInput, *, tools: Sequence[Any] = ()) -> ScoreExplanation:
        """Features, weighted contributions and score of `input` (str, messages, PromptValue)."""
        features = self.features(as_messages(input, taker="HeuristicScorer"), tools=tools)
        contributions = {
            name: value * self.weights.get(name, 0.0) for name, value in features.items()
        }
        total = min(1.0, max(0.0, sum(contributions.values())))
        return ScoreExplanation(score=total, features=features, contributions=contributions)

    def score(self, messages: Sequence[BaseMessage], *, tools: Sequence[Any] = ()) -> float:
        features = self.features(message_list(messages), tools=tools)
        total = sum(value * self.weights.get(name, 0.0) for name, value in features.items())
        return min(1.0, max(0.0, total))


def _distinct(pattern: re.Pattern[str], text: str) -> set[str]:
    return {match.group(0).lower() for match in pattern.finditer(text)}


def _code_feature(text: str) -> float:
    if _CODE_FENCE.search(text) or len(_CODE_LINE.findall(text)) >= 3:
        return 1.0
    return min(0.75, 0.25 * len(_distinct(_CODE_WORDS, text)))


def _math_feature(text: str) -> float:
    if _MATH_SYMBOLS.search(text):
        return 1.0
    return min(1.0, 0.35 * len(_distinct(_MATH_WORDS, text)))


def _earlier_user_turns(messages: Sequence[BaseMessage]) -> int:
    return max(sum(1 for message in messages if message.type == "human") - 1, 0)


def _tools_feature(messages: Sequence[BaseMessage], tools: Sequence[Any]) -> float:
    if tools:
        return 1.0
    for message in messages:
        if isinstance(message, ToolMessage) or (
            isinstance(message, AIMessage) and message.tool_calls
        ):
            return 0.5
    return 0.0


_LEARNED_FORMAT = "langchain-tokenopt/learned-scorer"
_LEARNED_VERSION = 1


class LearnedScorer(ComplexityScorer):
    """A difficulty learned from examples: TF-IDF words and bigrams + logistic regression.

    Train it on prompts labelled 1 when the weak model failed them (the strong model was
    needed) and 0 when the weak model was good enough; its score is the predicted
    probability that the strong model is needed, read from the latest user message.
    It saves to and loads from JSON (vocabulary, IDF weights and coefficients; no
    pickle), so a model trained offline can be shipped with an app.

    Example:
        >>> from langchain_core.messages import HumanMessage
        >>> scorer = LearnedScorer().fit(
        ...     ["hi", "thanks!", "prove the lemma formally", "derive the bound formally"],
        ...     [0, 0, 1, 1])
        >>> scorer.score([HumanMessage("prove this formally")]) > 0.5
        True
    """

    def __init__(
        self,
        *,
        ngram_range: tuple[int, int] = (1, 2),
        min_df: int = 1,
        max_features: int | None = 50_000,
        C: float = 4.0,
        class_weight: Literal["balanced"] | None = "balanced",
    ) -> None:
        positive_number(C, "C", hint="the inverse regularization strength, e.g. 4.0")
        self.ngram_range = ngram_range
        self.min_df = min_df
        self.max_features = max_features
        self.C = C
        self.class_weight = class_weight
        self._vectorizer: Any = None
        self._classifier: Any = None

    def __repr__(self) -> str:
        state = "fitted" if self.fitted else "not fitted"
        return f"LearnedScorer(ngram_range={self.ngram_range}, C={self.C}, {state})"

    @property
    def fitted(self) -> bool:
        """True once `fit` or `load` gave the scorer a model."""
        return self._classifier is not None

    def _vectorizer_params(self) -> dict[str, Any]:
        return {
            "ngram_range": list(self.ngram_range),
            "min_df": self.min_df,
            "max_features": self.max_features,
            "sublinear_tf": True,
            "lowercase": True,
        }

    @staticmethod
    def _new_vectorizer(params: Mapping[str, Any]) -> Any:
        import numpy as np
        from sklearn.feature_extraction.text import TfidfVectorizer

        return TfidfVectorizer(
            ngram_range=tuple(params["ngram_range"]),
            min_df=params["min_df"],
            max_features=params["max_features"],
            sublinear_tf=params["sublinear_tf"],
            lowercase=params["lowercase"],
            dtype=np.float64,
        )

    def fit(self, prompts: Sequence[str], labels: Sequence[int | bool]) -> LearnedScorer:
        """Train on `prompts` with `labels` (1 / True: the strong model was needed)."""
        from sklearn.linear_model import LogisticRegression

        texts = list(prompts)
        targets = [int(label) for label in labels]
        if len(texts) != len(targets):
            raise InvalidArgumentError(f"got {len(texts)} prompts but {len(targets)} labels")
        if not all(isinstance(text, str) for text in texts):
            raise ArgumentTypeError("prompts must be strings")
        if set(targets) - {0, 1}:
            raise InvalidArgumentError("labels must be 0 / 1 (or False / True)")
        if len(set(targets)) < 2:
            raise InvalidArgumentError(
                "labels must hold both classes (0 and 1) to learn a difficulty"
            )
        vectorizer = self._new_vectorizer(self._vectorizer_params())
        matrix = vectorizer.fit_transform(texts)
        classifier = LogisticRegression(C=self.C, class_weight=self.class_weight, max_iter=2000)
        classifier.fit(matrix, targets)
        self._vectorizer, self._classifier = vectorizer, classifier
        return self

    def score_texts(self, texts: Sequence[str]) -> list[float]:
        """Difficulty of each text (batched: faster than one `score` call per text)."""
        if not self.fitted:
            raise NotFittedError("LearnedScorer is not trained: call fit() or load() first")
        matrix = self._vectorizer.transform(list(texts))
        return [float(p) for p in self._classifier.predict_proba(matrix)[:, 1]]

    def score(self, messages: Sequence[BaseMessage], *, tools: Sequence[Any] = ()) -> float:
        return self.score_texts([_latest_user_text(message_list(messages))])[0]

    def to_dict(self) -> dict[str, Any]:
        """The trained scorer as JSON-ready data (what `save` writes)."""
        if not self.fitted:
            raise NotFittedError("LearnedScorer is not trained: call fit() or load() first")
        vocabulary = {term: int(index) for term, index in self._vectorizer.vocabulary_.items()}
        return {
            "format": _LEARNED_FORMAT,
            "version": _LEARNED_VERSION,
            "vectorizer": {
                **self._vectorizer_params(),
                "vocabulary": vocabulary,
                "idf": [float(x) for x in self._vectorizer.idf_],
            },
            "classifier": {
                "C": self.C,
                "class_weight": self.class_weight,
                "coef": [float(x) for x in self._classifier.coef_[0]],
                "intercept": float(self._classifier.intercept_[0]),
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LearnedScorer:
        """A trained scorer from `to_dict` data; ValueError if the data is not one."""
        import numpy as np
        from sklearn.linear_model import LogisticRegression

        instance_of(data, "data", Mapping, "a dict written by LearnedScorer.to_dict()")
        if data.get("format") != _LEARNED_FORMAT or data.get("version") != _LEARNED_VERSION:
            raise InvalidArgumentError(
                f"not a saved LearnedScorer (format {shown(data.get('format'))}, version "
                f"{shown(data.get('version'))}); expected "
                f"{shown(_LEARNED_FORMAT)} v{_LEARNED_VERSION}"
            )
        try:
            vec, clf = data["vectorizer"], data["classifier"]
            vocabulary = {str(term): int(index) for term, index in vec["vocabulary"].items()}
            idf = np.asarray(vec["idf"], dtype=float)
            coef = np.asarray([clf["coef"]], dtype=float)
            intercept = np.asarray([clf["intercept"]], dtype=float)
            ngram = vec["ngram_range"]
            scorer = cls(
                ngram_range=(int(ngram[0]), int(ngram[1])),
                min_df=vec["min_df"],
                max_features=vec["max_features"],
                C=float(clf["C"]),
                class_weight=clf["class_weight"],
            )
            vectorizer = cls._new_vectorizer(vec)
        except (KeyError, TypeError, IndexError, ValueError, AttributeError) as exc:
            raise InvalidArgumentError(
                f"a saved LearnedScorer is malformed ({type(exc).__name__}: {exc}); "
                "save it again with LearnedScorer.save()"
            ) from exc
        size = len(vocabulary)
        if (
            idf.shape != (size,)
            or coef.shape != (1, size)
            or sorted(vocabulary.values()) != list(range(size))
            or not (np.isfinite(idf).all() and np.isfinite(coef).all())
            or not np.isfinite(intercept).all()
        ):
            raise InvalidArgumentError(
                "a saved LearnedScorer is malformed: vocabulary, idf and coef differ in "
                "size or hold non-finite numbers"
            )
        vectorizer.vocabulary_ = vocabulary
        vectorizer.idf_ = idf
        classifier = LogisticRegression(C=scorer.C, class_weight=scorer.class_weight)
        classifier.classes_ = np.asarray([0, 1])
        classifier.coef_ = coef
        classifier.intercept_ = intercept
        classifier.n_features_in_ = size
        scorer._vectorizer, scorer._classifier = vectorizer, classifier
        return scorer

    def save(self, path: str | PathLike[str]) -> None:
        """Write the trained scorer as JSON to `path`."""
        Path(path).write_text(json.dumps(self.to_dict()), encoding="utf-8")

    @classmethod
    def load(cls, path: str | PathLike[str]) -> LearnedScorer:
        """Read a scorer written by `save`."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InvalidArgumentError(
                f"{path} is not a saved LearnedScorer (not JSON): {exc}"
            ) from exc
        if not isinstance(data, Mapping):
            raise InvalidArgumentError(f"{path} is not a saved LearnedScorer")
        return cls.from_dict(data)
