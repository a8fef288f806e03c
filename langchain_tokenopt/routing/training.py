"""Train a `PretrainedScorer` on routing data and measure it on requests it never saw.

The recipe (the one that made the shipped model): the 45 topic-neutral features of
`features.py`; candidate models: a logistic regression (C=0.05, standardised features),
the mean of its margin with a 150-tree, 4-leaf gradient boosting ("blend") and, for the
gain target, the difference P(weak wrong) - P(strong wrong) of two LRs or two blends; the
one with the best out-of-fold APGR wins, where folds keep whole tasks apart (or are
random without a `task` column); Platt calibration on those out-of-fold margins; the
calibration table for the router's knobs from the out-of-fold probabilities. The
held-apart evaluation trains the same recipe on one half of the tasks and measures the
other half, both ways. Training imports scikit-learn and numpy; the trained scorer does
not.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_tokenopt.errors import InvalidArgumentError
from langchain_tokenopt.routing.dataset import RoutingData
from langchain_tokenopt.routing.evaluation import RoutingMetrics, evaluate_scores
from langchain_tokenopt.routing.features import FEATURE_NAMES, extract
from langchain_tokenopt.routing.pretrained import PretrainedScorer
from langchain_tokenopt.routing.scorer_file import FORMAT, TARGETS, VERSION

__all__ = ["DEFAULT_PRIORS", "DEFAULT_TARGET", "HeldApartSplit", "train_scorer"]

logger = logging.getLogger(__name__)

#: What the default recipe predicts: the strong model right where the weak one is wrong.
DEFAULT_TARGET = "gain"
#: HAND-SET logit offsets per unit of feature, for requests benchmark data lacks
#: (explicit proofs, step-by-step reasoning, code). Not learned. Task verbs alone
#: ("translate", "summarize", "write") get none: most such chat requests are easy.
DEFAULT_PRIORS: tuple[tuple[str, float, str], ...] = (
    ("reasoning_cues", 4.5, "prove / derive / step by step / explain why / compare: cues / 3"),
    ("code", 1.5, "code fence or code lines (1), code words (<= 0.75)"),
)
_FOLDS = 5
_DEFAULT_STRONG_SHARE = 0.3


@dataclass(frozen=True)
class HeldApartSplit:
    """One held-apart measurement: trained on `train` requests, measured on `test`."""

    description: str
    train: int
    test: int
    metrics: RoutingMetrics


# -- the models (scikit-learn, imported when training) ------------------------------------


class _Linear:
    def __init__(self, c: float = 0.05) -> None:
        self.c = c

    def fit(self, x: Any, y: Any) -> _Linear:
        import numpy as np
        from sklearn.linear_model import LogisticRegression

        self.mean = x.mean(axis=0)
        std = x.std(axis=0)
        self.scale = np.where(std > 1e-9, std, 1.0)
        self.model = LogisticRegression(C=self.c, max_iter=5000)
        self.model.fit((x - self.mean) / self.scale, y)
        return self

    def margin(self, x: Any) -> Any:
        return self.model.decision_function((x - self.mean) / self.scale)

    def export(self) -> dict[str, Any]:
        return {
            "kind": "linear",
            "mean": [float(v) for v in self.mean],
            "scale": [float(v) for v in self.scale],
            "coef": [float(v) for v in self.model.coef_[0]],
            "intercept": float(self.model.intercept_[0]),
        }


class _Trees:
    def fit(self, x: Any, y: Any) -> _Trees:
        from sklearn.ensemble import HistGradientBoostingClassifier

        self.model = HistGradientBoostingClassifier(
            learning_rate=0.05,
            max_leaf_nodes=4,
            max_iter=150,
            min_samples_leaf=min(100, max(len(y) // 10, 1)),
            l2_regularization=1.0,
            early_stopping=False,
            random_state=0,
        )
        self.model.fit(x, y)
        return self

    def margin(self, x: Any) -> Any:
        return self.model.decision_function(x)

    def export(self) -> dict[str, Any]:
        import numpy as np

        trees = []
        # the fitted trees' node arrays (scikit-learn has no public export of them)
        for (predictor,) in self.model._predictors:
            nodes = predictor.nodes
            trees.append(
                {
                    "feature": [
                        -1 if leaf else int(f)
                        for f, leaf in zip(nodes["feature_idx"], nodes["is_leaf"], strict=True)
                    ],
                    "threshold": [float(t) for t in nodes["num_threshold"]],
                    "left": [int(v) for v in nodes["left"]],
                    "right": [int(v) for v in nodes["right"]],
                    "value": [float(v) for v in nodes["value"]],
                }
            )
        baseline = float(np.ravel(self.model._baseline_prediction)[0])
        return {"kind": "trees", "baseline": baseline, "trees": trees}


class _Blend:
    def __init__(self) -> None:
        self.members: tuple[_Linear, _Trees] = (_Linear(), _Trees())

    def fit(self, x: Any, y: Any) -> _Blend:
        for member in self.members:
            member.fit(x, y)
        return self

    def margin(self, x: Any) -> Any:
        return sum(m.margin(x) for m in self.members) / len(self.members)

    def export(self) -> dict[str, Any]:
        return {"kind": "blend", "members": [m.export() for m in self.members]}


class _Difference:
    """P(weak wrong) - P(strong wrong) from two models: the expected gain of routing up.

    Platt calibration then maps it to the probability of the target."""

    def __init__(self, make: Callable[[], _Linear | _Blend]) -> None:
        self.weak_wrong, self.strong_wrong = make(), make()

    def fit(self, x: Any, labels: _Labels) -> _Difference:
        self.weak_wrong.fit(x, labels.weak_wrong)
        self.strong_wrong.fit(x, labels.strong_wrong)
        return self

    def margin(self, x: Any) -> Any:
        return _sigmoid(self.weak_wrong.margin(x)) - _sigmoid(self.strong_wrong.margin(x))

    def export(self) -> dict[str, Any]:
        return {
            "kind": "difference",
            "minuend": self.weak_wrong.export(),
            "subtrahend": self.strong_wrong.export(),
        }


@dataclass(frozen=True)
class _Labels:
    target: Any
    weak_wrong: Any
    strong_wrong: Any

    def subset(self, index: Any) -> _Labels:
        return _Labels(self.target[index], self.weak_wrong[index], self.strong_wrong[index])


class _Direct:
    """A classifier of the target label itself."""

    def __init__(self, make: Callable[[], _Linear | _Blend]) -> None:
        self.model = make()

    def fit(self, x: Any, labels: _Labels) -> _Direct:
        self.model.fit(x, labels.target)
        return self

    def margin(self, x: Any) -> Any:
        return self.model.margin(x)

    def export(self) -> dict[str, Any]:
        return self.model.export()


_Model = _Direct | _Difference
_CANDIDATES: dict[str, Callable[[], _Model]] = {
    "logistic regression C=0.05": lambda: _Direct(_Linear),
    "blend: logistic regression + boosted trees 4 leaves x150": lambda: _Direct(_Blend),
}
#: Only for target "gain": two models (weak wrong, strong wrong), their difference.
_GAIN_CANDIDATES: dict[str, Callable[[], _Model]] = {
    "difference of two logistic regressions": lambda: _Difference(_Linear),
    "difference of two blends": lambda: _Difference(_Blend),
}


# -- steps ----------------------------------------------------------------------------------


def _labels(data: RoutingData, target: str) -> _Labels:
    import numpy as np

    weak_wrong = np.asarray(data.weak_correct) < 0.5
    strong_wrong = np.asarray(data.strong_correct) < 0.5
    label = weak_wrong if target == "weak_wrong" else weak_wrong & ~strong_wrong
    return _Labels(label.astype(int), weak_wrong.astype(int), strong_wrong.astype(int))


def _folds(data: RoutingData, seed: int) -> list[tuple[Any, Any]]:
    """Train / test index pairs; whole tasks stay on one side when there are tasks."""
    import numpy as np

    n = len(data)
    if data.tasks is not None and len(set(data.tasks)) >= 2:
        names = sorted(set(data.tasks))
        random.Random(seed).shuffle(names)
        k = min(_FOLDS, len(names))
        fold_of = {name: i % k for i, name in enumerate(names)}
        assigned = np.asarray([fold_of[t] for t in data.tasks])
    else:
        order = list(range(n))
        random.Random(seed).shuffle(order)
        k = min(_FOLDS, n)
        assigned = np.empty(n, dtype=int)
        for position, index in enumerate(order):
            assigned[index] = position % k
    return [(np.flatnonzero(assigned != f), np.flatnonzero(assigned == f)) for f in range(k)]


def _apgr(scores: Any, data: RoutingData) -> float:
    return evaluate_scores(
        scores, data.weak_correct, data.strong_correct, data.weak_cost, data.strong_cost
    ).apgr


def _sigmoid(z: Any) -> Any:
    import numpy as np

    return 1.0 / (1.0 + np.exp(-z))


@dataclass
class _Fitted:
    name: str
    model: _Model
    platt: tuple[float, float]
    cv_apgr: dict[str, float]
    oof_margins: Any

    def probabilities(self, x: Any, priors: Any) -> Any:
        a, b = self.platt
        return _sigmoid(a * self.model.margin(x) + b + priors)


def _prior_offsets(x: Any, priors: Sequence[tuple[str, float, str]]) -> Any:
    import numpy as np

    index = {name: i for i, name in enumerate(FEATURE_NAMES)}
    total = np.zeros(len(x))
    for name, weight, _ in priors:
        total += weight * x[:, index[name]]
    return total


def _fit(x: Any, labels: _Labels, data: RoutingData, seed: int, target: str) -> _Fitted:
    """Choose the candidate by out-of-fold APGR, calibrate it, refit it on everything."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    y = labels.target
    candidates = dict(_CANDIDATES)
    if target == "gain":
        candidates.update(_GAIN_CANDIDATES)
    if len(set(y.tolist())) < 2:
        raise InvalidArgumentError(
            "the training labels hold one class only: the data needs requests where routing "
            "to the strong model helps and requests where it does not"
        )
    folds = _folds(data, seed)
    margins: dict[str, Any] = {}
    cv: dict[str, float] = {}
    for name, make in candidates.items():
        out = np.zeros(len(y))
        for train, test in folds:
            part = labels.subset(train)
            if min(len(set(v.tolist())) for v in (part.target, part.weak_wrong)) < 2 or (
                name in _GAIN_CANDIDATES and len(set(part.strong_wrong.tolist())) < 2
            ):
                out[test] = 0.0
                continue
            out[test] = make().fit(x[train], part).margin(x[test])
        margins[name] = out
        cv[name] = _apgr(out, data)
    best = max(cv, key=cv.__getitem__)
    calibration = LogisticRegression(C=1e6, max_iter=1000).fit(margins[best].reshape(-1, 1), y)
    platt = (float(calibration.coef_[0, 0]), float(calibration.intercept_[0]))
    logger.info("grouped-CV APGR %s -> %s", cv, best)
    return _Fitted(best, candidates[best]().fit(x, labels), platt, cv, margins[best])


def _table(probabilities: Any, data: RoutingData) -> list[dict[str, float]]:
    """Calibration table rows, highest threshold first: route strong when p > threshold."""
    import numpy as np

    weak_ok, strong_ok = np.asarray(data.weak_correct), np.asarray(data.strong_correct)
    weak_cost, strong_cost = np.asarray(data.weak_cost), np.asarray(data.strong_cost)
    q_strong = float(strong_ok.mean()) or 1.0
    total = float(strong_cost.sum()) or 1.0
    quantiles = np.quantile(probabilities, np.linspace(1, 0, 101)[1:])
    candidates = [1.0, *(round(float(v), 4) for v in quantiles), 0.0]
    rows: dict[float, dict[str, float]] = {}
    for threshold in sorted(set(candidates), reverse=True):
        strong = probabilities > threshold
        quality = float(np.where(strong, strong_ok, weak_ok).mean())
        rows[threshold] = {
            "threshold": threshold,
            "strong_share": round(float(strong.mean()), 4),
            "quality_kept": round(quality / q_strong, 4),
            "cost_share": round(float(np.where(strong, strong_cost, weak_cost).sum()) / total, 4),
        }
    return list(rows.values())


def _held_apart(
    data: RoutingData, x: Any, target: str, priors: Sequence[tuple[str, float, str]], seed: int
) -> list[HeldApartSplit]:
    """Train on one half and measure the other, both ways (halves of tasks if any)."""
    import numpy as np

    if data.tasks is not None and len(set(data.tasks)) >= 2:
        names = sorted(set(data.tasks))
        random.Random(seed).shuffle(names)
        first = set(names[: (len(names) + 1) // 2])
        in_first = np.asarray([t in first for t in data.tasks])
        what = "tasks"
    else:
        order = list(range(len(data)))
        random.Random(seed).shuffle(order)
        in_first = np.zeros(len(data), dtype=bool)
        in_first[order[: (len(order) + 1) // 2]] = True
        what = "requests (random halves, seeded; no task column)"
    halves = (np.flatnonzero(in_first), np.flatnonzero(~in_first))
    splits = []
    for number, (train, test) in enumerate((halves, halves[::-1]), start=1):
        train_data, test_data = data.subset(train.tolist()), data.subset(test.tolist())
        fitted = _fit(x[train], _labels(train_data, target), train_data, seed, target)
        p = fitted.probabilities(x[test], _prior_offsets(x[test], priors))
        metrics = evaluate_scores(
            p,
            test_data.weak_correct,
            test_data.strong_correct,
            test_data.weak_cost,
            test_data.strong_cost,
            probabilities=p,
            labels=_labels(test_data, target).target,
            seed=seed,
        )
        described = f"split {number}: train on half {number} of the {what}, test on the other"
        if test_data.tasks is not None and data.tasks is not None:
            described += f" ({len(set(test_data.tasks))} test tasks)"
        splits.append(HeldApartSplit(described, len(train), len(test), metrics))
    return splits


def train_scorer(
    data: RoutingData,
    *,
    target: str = DEFAULT_TARGET,
    priors: Sequence[tuple[str, float, str]] = DEFAULT_PRIORS,
    evaluate: bool = True,
    seed: int = 0,
) -> PretrainedScorer:
    """Train a scorer on `data` with the recipe of the module doc; it can `save`.

    `target` is ``"gain"`` (strong right where weak is wrong) or ``"weak_wrong"``;
    `priors` are hand-set (feature, logit weight, note) boosts, () for none. With
    `evaluate`, the held-apart evaluation (two splits) is stored in the scorer's
    `evaluation` (and its file), at the cost of training the recipe twice more.

    Example:
        >>> rows = [{"prompt": f"Question {i}: what is {i} + {i}?" + " why?" * (i % 3),
        ...          "small_correct": int(i % 3 != 2), "small_cost": 0.001,
        ...          "large_correct": 1, "large_cost": 0.01} for i in range(60)]
        >>> scorer = train_scorer(RoutingData.from_rows(rows), evaluate=False)
        >>> scorer.target, 0.0 <= scorer.score_text("hi") <= 1.0
        ('gain', True)
    """
    import numpy as np

    if target not in TARGETS:
        raise InvalidArgumentError(f"target must be one of {list(TARGETS)}, got {target!r}")
    if len(data) < 10:
        raise InvalidArgumentError(f"{data.source}: {len(data)} requests are too few to train on")
    x = np.asarray([extract(p) for p in data.prompts], dtype=float)
    splits = _held_apart(data, x, target, priors, seed) if evaluate else []
    fitted = _fit(x, _labels(data, target), data, seed, target)
    a, b = fitted.platt
    oof = _sigmoid(a * fitted.oof_margins + b + _prior_offsets(x, priors))
    table = _table(oof, data)
    default = min(table, key=lambda r: abs(r["strong_share"] - _DEFAULT_STRONG_SHARE))
    spec: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "target": target,
        "models": {"weak": data.weak, "strong": data.strong},
        "trained_on": f"{Path(data.source).name}: {len(data)} requests"
        + (f", {len(set(data.tasks))} tasks" if data.tasks is not None else ""),
        "model_selection": "out-of-fold APGR: "
        + ", ".join(f"{name} {value:.3f}" for name, value in fitted.cv_apgr.items()),
        "chosen": fitted.name,
        "feature_names": list(FEATURE_NAMES),
        "model": fitted.model.export(),
        "calibration": {"kind": "platt", "a": a, "b": b},
        "priors": [{"feature": f, "weight": w, "note": note} for f, w, note in priors],
        "default_threshold": default["threshold"],
        "threshold_table": table,
    }
    if splits:
        spec["evaluation"] = {
            "splits": [
                {"description": s.description, "train": s.train, "test": s.test}
                | s.metrics.to_dict()
                for s in splits
            ]
        }
    return PretrainedScorer.from_dict(spec, source="trained scorer")
