"""`PretrainedScorer`: the router's default difficulty, learned from real routing data.

It reads the latest user message, computes the topic-neutral features of `features.py`
and evaluates a small JSON model (`scorer_file.py`): no scikit-learn or numpy at
inference, well under a millisecond per request. The shipped model
(``langchain_tokenopt/data/router_scorer.json``) is read once per process; a model
trained on your own data (`train_scorer`, `tokenopt router train`) loads with `load`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import lru_cache
from importlib import resources
from os import PathLike
from pathlib import Path
from typing import Any

from langchain_core.messages import BaseMessage

from langchain_tokenopt.core.validation import finite_number
from langchain_tokenopt.errors import ScorerFileError
from langchain_tokenopt.routing.features import FEATURE_NAMES, extract
from langchain_tokenopt.routing.scorer_file import ScorerModel, parse_scorer
from langchain_tokenopt.routing.scorers import ComplexityScorer, _latest_user_text

__all__ = ["DEFAULT_SCORER_DATA", "PretrainedScorer"]

#: The shipped model, as package data.
DEFAULT_SCORER_DATA = "data/router_scorer.json"


@lru_cache(maxsize=1)
def _default_model() -> ScorerModel:
    text = resources.files("langchain_tokenopt").joinpath(DEFAULT_SCORER_DATA).read_text("utf-8")
    return parse_scorer(json.loads(text), source=f"langchain_tokenopt/{DEFAULT_SCORER_DATA}")


class PretrainedScorer(ComplexityScorer):
    """Calibrated probability that routing a request to the strong model pays off.

    The shipped model is trained on real routing data (RouteLLM's GSM8K + MMLU
    correctness of GPT-4 and Mixtral-8x7B, all 58 tasks). Its `target` says what the
    probability is about: ``"gain"`` (the default model) = the strong model answers
    right where the cheap one answers wrong; ``"weak_wrong"`` = the cheap model answers
    wrong. It reads the form of the latest user message (length, numbers, notation,
    question form, task verbs), not its topic; explicit proof, reasoning and code
    requests get hand-set boosts (``priors`` in the file), because the training data
    has none. Tools are not scored.

    Turn a routing goal into a threshold with `threshold_for_share` ("at most 30 % of
    requests to the strong tier") or `threshold_for_quality` ("keep 95 % of the strong
    model's quality"): both read the calibration table stored with the model, made from
    predictions on tasks each model had not seen. `ModelRouter(max_strong_share=...)`
    and `ModelRouter(quality_target=...)` call them for you.

    Example:
        >>> scorer = PretrainedScorer()
        >>> easy = scorer.score_text("What is the capital of France?")
        >>> hard = scorer.score_text("Prove that the sum of the first n odd numbers is n^2")
        >>> easy < scorer.default_threshold < hard
        True
    """

    def __init__(self, model: ScorerModel | None = None) -> None:
        self._model = _default_model() if model is None else model

    def __repr__(self) -> str:
        return f"PretrainedScorer(target={self.target!r}, trained_on={self.trained_on!r})"

    # -- reading and writing

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "scorer data") -> PretrainedScorer:
        """A scorer from parsed JSON; `ScorerFileError` names the first bad field."""
        return cls(parse_scorer(data, source=source))

    @classmethod
    def load(cls, path: str | PathLike[str]) -> PretrainedScorer:
        """Read a scorer written by `save` (or `tokenopt router train -o`)."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ScorerFileError(str(path), "(file)", f"is not JSON ({exc})") from exc
        return cls.from_dict(data, source=str(path))

    def to_dict(self) -> dict[str, Any]:
        """The model as JSON-ready data (what `save` writes)."""
        return dict(self._model.data)

    def save(self, path: str | PathLike[str]) -> None:
        """Write the model as JSON to `path`."""
        Path(path).write_text(json.dumps(self.to_dict(), separators=(",", ":")), "utf-8")

    # -- what it is

    @property
    def target(self) -> str:
        """``"gain"`` or ``"weak_wrong"``: what the probability predicts."""
        return self._model.target

    @property
    def trained_on(self) -> str:
        """The training data, as the file describes it."""
        return str(self._model.data.get("trained_on", "unknown"))

    @property
    def default_threshold(self) -> float:
        """The threshold `ModelRouter` uses when no knob is set (stored in the file)."""
        return self._model.default_threshold

    @property
    def evaluation(self) -> Mapping[str, Any] | None:
        """The held-apart evaluation stored with the model (None if it has none)."""
        value = self._model.data.get("evaluation")
        return value if isinstance(value, Mapping) else None

    # -- scoring

    def features(self, text: str) -> dict[str, float]:
        """The feature values of `text`, by name."""
        return dict(zip(FEATURE_NAMES, extract(text), strict=True))

    def score_text(self, text: str) -> float:
        """Calibrated probability of the target for one prompt."""
        return self._model.probability(extract(text))

    def score(self, messages: Sequence[BaseMessage], *, tools: Sequence[Any] = ()) -> float:
        return self.score_text(_latest_user_text(messages))

    # -- knobs

    def threshold_for_share(self, max_strong_share: float) -> float:
        """The threshold that sent at most `max_strong_share` (in [0, 1]) of the
        reference requests to the strong model."""
        share = finite_number(max_strong_share, "max_strong_share", minimum=0.0, maximum=1.0)
        return self._model.threshold_for_share(share)

    def threshold_for_quality(self, quality_target: float) -> float:
        """The threshold with the fewest strong calls that kept `quality_target` (in
        (0, 1]) of always-strong's accuracy on the reference requests."""
        target = finite_number(quality_target, "quality_target", above=0.0, maximum=1.0)
        return self._model.threshold_for_quality(target)
