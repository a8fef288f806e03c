"""The router scorer's JSON file: checked once when read, then evaluated in pure Python.

A scorer file holds a small model over `features.FEATURE_NAMES` (boosted trees, a
logistic regression, or the mean of such margins), its Platt calibration, hand-set
priors, and a calibration table that turns "at most 30 % of requests to the strong
tier" or "keep 95 % of the strong model's quality" into a threshold. No pickle: the file
is data, and reading it never runs code. Every field is checked on load and a bad one
raises `ScorerFileError` naming it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from langchain_tokenopt.errors import ScorerFileError
from langchain_tokenopt.routing.features import FEATURE_NAMES

__all__ = ["FORMAT", "VERSION", "ScorerModel", "TableRow", "parse_scorer"]

FORMAT = "langchain-tokenopt/router-scorer"
VERSION = 1
#: What a scorer's probability is about (its training label).
TARGETS = ("weak_wrong", "gain")


def sigmoid(z: float) -> float:
    """The logistic function, without overflow for large |z|."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


class _Margin(Protocol):
    def margin(self, x: Sequence[float]) -> float: ...


@dataclass(frozen=True)
class _Trees:
    """A boosted tree ensemble: per tree, node arrays; a leaf has feature -1."""

    baseline: float
    trees: tuple[tuple[list[int], list[float], list[int], list[int], list[float]], ...]

    def margin(self, x: Sequence[float]) -> float:
        total = self.baseline
        for feature, threshold, left, right, value in self.trees:
            node = 0
            while (f := feature[node]) >= 0:
                node = left[node] if x[f] <= threshold[node] else right[node]
            total += value[node]
        return total


@dataclass(frozen=True)
class _Linear:
    """Logistic regression on standardised features: intercept + sum(coef * (x - mean) / scale)."""

    mean: list[float]
    scale: list[float]
    coef: list[float]
    intercept: float

    def margin(self, x: Sequence[float]) -> float:
        total = self.intercept
        for c, v, m, s in zip(self.coef, x, self.mean, self.scale, strict=True):
            total += c * (v - m) / s
        return total


@dataclass(frozen=True)
class _Blend:
    """The mean of the members' margins (all log-odds)."""

    members: tuple[_Margin, ...]

    def margin(self, x: Sequence[float]) -> float:
        return sum(m.margin(x) for m in self.members) / len(self.members)


@dataclass(frozen=True)
class _Difference:
    """sigmoid(minuend) - sigmoid(subtrahend): P(weak wrong) - P(strong wrong)."""

    minuend: _Margin
    subtrahend: _Margin

    def margin(self, x: Sequence[float]) -> float:
        return sigmoid(self.minuend.margin(x)) - sigmoid(self.subtrahend.margin(x))


@dataclass(frozen=True)
class TableRow:
    """One row of the calibration table: sending requests scored above `threshold` to
    the strong tier sent `strong_share` of the reference requests there, kept
    `quality_kept` of always-strong's accuracy and cost `cost_share` of its spend."""

    threshold: float
    strong_share: float
    quality_kept: float
    cost_share: float


@dataclass(frozen=True)
class ScorerModel:
    """A checked scorer file: `probability(features)` and the knob lookups."""

    data: Mapping[str, Any]
    target: str
    model: _Margin
    platt_a: float
    platt_b: float
    priors: tuple[tuple[int, float], ...]
    default_threshold: float
    table: tuple[TableRow, ...]

    def learned_probability(self, x: Sequence[float]) -> float:
        """The calibrated learned part, without the hand-set priors."""
        return sigmoid(self.platt_a * self.model.margin(x) + self.platt_b)

    def probability(self, x: Sequence[float]) -> float:
        """Calibrated probability of the target, priors included, for features `x`."""
        z = self.platt_a * self.model.margin(x) + self.platt_b
        for index, weight in self.priors:
            z += weight * x[index]
        return sigmoid(z)

    def threshold_for_share(self, max_strong_share: float) -> float:
        """The lowest threshold that sent at most `max_strong_share` to the strong tier."""
        best = self.table[0].threshold
        for row in self.table:
            if row.strong_share <= max_strong_share + 1e-12:
                best = row.threshold
        return best

    def threshold_for_quality(self, quality_kept: float) -> float:
        """The highest threshold that kept `quality_kept` of always-strong's accuracy."""
        for row in self.table:
            if row.quality_kept >= quality_kept - 1e-12:
                return row.threshold
        return self.table[-1].threshold


# -- checking -------------------------------------------------------------------------------


class _Reader:
    """Reads typed fields and names the bad one (as a path) in `ScorerFileError`."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, field: str, problem: str) -> ScorerFileError:
        return ScorerFileError(self.source, field, problem)

    def get(self, data: Any, key: str, path: str) -> Any:
        if not isinstance(data, Mapping):
            raise self.fail(path or "(top level)", "must be a JSON object")
        if key not in data:
            raise self.fail(_join(path, key), "is missing")
        return data[key]

    def number(self, value: Any, path: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(path, f"must be a number, got {type(value).__name__}")
        if not math.isfinite(value):
            raise self.fail(path, "must be finite")
        return float(value)

    def numbers(self, value: Any, path: str, length: int | None = None) -> list[float]:
        if not isinstance(value, list):
            raise self.fail(path, "must be a list of numbers")
        if length is not None and len(value) != length:
            raise self.fail(path, f"must hold {length} numbers, holds {len(value)}")
        return [self.number(v, f"{path}[{i}]") for i, v in enumerate(value)]

    def integers(self, value: Any, path: str, length: int, low: int, high: int) -> list[int]:
        if not isinstance(value, list) or len(value) != length:
            raise self.fail(path, f"must be a list of {length} integers")
        for i, v in enumerate(value):
            if isinstance(v, bool) or not isinstance(v, int) or not low <= v < high:
                raise self.fail(f"{path}[{i}]", f"must be an integer in [{low}, {high})")
        return list(value)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _trees(r: _Reader, spec: Any, path: str) -> _Trees:
    raw = r.get(spec, "trees", path)
    if not isinstance(raw, list) or not raw:
        raise r.fail(f"{path}.trees", "must be a non-empty list")
    trees = []
    for t, tree in enumerate(raw):
        where = f"{path}.trees[{t}]"
        feature = r.get(tree, "feature", where)
        if not isinstance(feature, list) or not feature:
            raise r.fail(f"{where}.feature", "must be a non-empty list")
        n = len(feature)
        feature = r.integers(feature, f"{where}.feature", n, -1, len(FEATURE_NAMES))
        threshold = r.numbers(r.get(tree, "threshold", where), f"{where}.threshold", n)
        left = r.integers(r.get(tree, "left", where), f"{where}.left", n, 0, n)
        right = r.integers(r.get(tree, "right", where), f"{where}.right", n, 0, n)
        value = r.numbers(r.get(tree, "value", where), f"{where}.value", n)
        for node in range(n):  # children point forward, so every walk ends at a leaf
            if feature[node] >= 0 and not (left[node] > node and right[node] > node):
                raise r.fail(f"{where}.left", f"node {node} must point to later nodes")
        trees.append((feature, threshold, left, right, value))
    return _Trees(r.number(r.get(spec, "baseline", path), f"{path}.baseline"), tuple(trees))


def _linear(r: _Reader, spec: Any, path: str) -> _Linear:
    n = len(FEATURE_NAMES)
    scale = r.numbers(r.get(spec, "scale", path), f"{path}.scale", n)
    if any(s == 0 for s in scale):
        raise r.fail(f"{path}.scale", "must hold no zero")
    return _Linear(
        mean=r.numbers(r.get(spec, "mean", path), f"{path}.mean", n),
        scale=scale,
        coef=r.numbers(r.get(spec, "coef", path), f"{path}.coef", n),
        intercept=r.number(r.get(spec, "intercept", path), f"{path}.intercept"),
    )


def _model(r: _Reader, spec: Any, path: str) -> _Margin:
    kind = r.get(spec, "kind", path)
    if kind == "trees":
        return _trees(r, spec, path)
    if kind == "linear":
        return _linear(r, spec, path)
    if kind == "blend":
        members = r.get(spec, "members", path)
        if not isinstance(members, list) or not members:
            raise r.fail(f"{path}.members", "must be a non-empty list")
        return _Blend(tuple(_model(r, m, f"{path}.members[{i}]") for i, m in enumerate(members)))
    if kind == "difference":
        return _Difference(
            _model(r, r.get(spec, "minuend", path), f"{path}.minuend"),
            _model(r, r.get(spec, "subtrahend", path), f"{path}.subtrahend"),
        )
    raise r.fail(
        f"{path}.kind", f"must be 'trees', 'linear', 'blend' or 'difference', got {kind!r}"
    )


def _table(r: _Reader, data: Any) -> tuple[TableRow, ...]:
    raw = r.get(data, "threshold_table", "")
    if not isinstance(raw, list) or not raw:
        raise r.fail("threshold_table", "must be a non-empty list")
    rows = []
    for i, row in enumerate(raw):
        where = f"threshold_table[{i}]"
        rows.append(
            TableRow(
                *(
                    r.number(r.get(row, key, where), f"{where}.{key}")
                    for key in ("threshold", "strong_share", "quality_kept", "cost_share")
                )
            )
        )
    if any(b.threshold > a.threshold for a, b in itertools.pairwise(rows)):
        raise r.fail("threshold_table", "must be sorted by threshold, highest first")
    return tuple(rows)


def parse_scorer(data: Any, source: str = "scorer data") -> ScorerModel:
    """Check scorer-file `data` (parsed JSON) field by field; `source` names it in errors."""
    r = _Reader(source)
    if r.get(data, "format", "") != FORMAT:
        raise r.fail("format", f"must be {FORMAT!r}")
    if r.get(data, "version", "") != VERSION:
        raise r.fail("version", f"must be {VERSION} (this package reads version {VERSION})")
    if list(r.get(data, "feature_names", "")) != list(FEATURE_NAMES):
        raise r.fail("feature_names", "differs from this package's features (train it again)")
    target = r.get(data, "target", "")
    if target not in TARGETS:
        raise r.fail("target", f"must be one of {list(TARGETS)}, got {target!r}")
    calibration = r.get(data, "calibration", "")
    index = {name: i for i, name in enumerate(FEATURE_NAMES)}
    priors = []
    raw_priors = r.get(data, "priors", "")
    if not isinstance(raw_priors, list):
        raise r.fail("priors", "must be a list")
    for i, prior in enumerate(raw_priors):
        name = r.get(prior, "feature", f"priors[{i}]")
        if name not in index:
            raise r.fail(f"priors[{i}].feature", f"is not a feature name: {name!r}")
        weight = r.number(r.get(prior, "weight", f"priors[{i}]"), f"priors[{i}].weight")
        priors.append((index[name], weight))
    threshold = r.number(r.get(data, "default_threshold", ""), "default_threshold")
    if not 0.0 <= threshold <= 1.0:
        raise r.fail("default_threshold", "must be in [0, 1]")
    return ScorerModel(
        data=data,
        target=target,
        model=_model(r, r.get(data, "model", ""), "model"),
        platt_a=r.number(r.get(calibration, "a", "calibration"), "calibration.a"),
        platt_b=r.number(r.get(calibration, "b", "calibration"), "calibration.b"),
        priors=tuple(priors),
        default_threshold=threshold,
        table=_table(r, data),
    )
