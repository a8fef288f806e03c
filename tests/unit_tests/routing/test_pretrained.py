"""The shipped `PretrainedScorer`: what it routes where, its knobs, and its file checks."""

from __future__ import annotations

import copy
import itertools
import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel

from langchain_tokenopt.errors import InvalidArgumentError, ScorerFileError
from langchain_tokenopt.routing.pretrained import DEFAULT_SCORER_DATA, PretrainedScorer
from langchain_tokenopt.routing.router import ModelRouter, Tier
from langchain_tokenopt.routing.scorers import HeuristicScorer

EASY = [
    "What is the capital of France?",
    "Say hello in Spanish",
    "Thanks, that's all!",
    "hi!",
]
HARD = [
    "Prove that the sum of the first n odd numbers is n^2",
    "Write a multi-step Python program with unit tests that parses a log file and reports "
    "the ten most frequent error codes per hour.",
    "Compare PostgreSQL and MongoDB step by step and explain why one is better for an "
    "analytics workload with many joins.",
    "Derive the closed form of the Fibonacci sequence and justify each step.",
]


def shipped() -> dict[str, Any]:
    text = resources.files("langchain_tokenopt").joinpath(DEFAULT_SCORER_DATA).read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def readme_router() -> ModelRouter:
    """Two tiers as the README sets them up: cheapest first, thresholds left to the router."""
    mini = GenericFakeChatModel(messages=itertools.cycle(["mini"]))
    big = GenericFakeChatModel(messages=itertools.cycle(["big"]))
    return ModelRouter(tiers=[Tier(mini, model_name="gpt-4o-mini"), Tier(big, model_name="gpt-4o")])


@pytest.mark.parametrize("prompt", EASY)
def test_obvious_lookups_go_to_the_cheap_tier(prompt: str) -> None:
    assert readme_router().route(prompt).tier == "gpt-4o-mini"


@pytest.mark.parametrize("prompt", HARD)
def test_obvious_hard_requests_go_to_the_strong_tier(prompt: str) -> None:
    assert readme_router().route(prompt).tier == "gpt-4o"


def test_the_default_scorer_is_pretrained_and_the_heuristic_stays_available() -> None:
    router = readme_router()
    assert isinstance(router.scorer, PretrainedScorer)
    assert router.scorer.target == "gain"
    with pytest.raises(ValueError, match="HeuristicScorer has no calibration table"):
        ModelRouter(tiers=router.tiers, scorer=HeuristicScorer())
    mini, big = router.tiers
    heuristic = ModelRouter(
        tiers=[Tier(mini.model, quality=0.3, model_name="gpt-4o-mini"), big],
        scorer=HeuristicScorer(),
    )
    assert heuristic.route("hi").score < 0.01
    assert heuristic.thresholds == {"gpt-4o-mini": 0.3, "gpt-4o": 1.0}


def test_the_shipped_file_is_small_json_trained_on_all_tasks_with_its_evaluation() -> None:
    path = Path(str(resources.files("langchain_tokenopt").joinpath(DEFAULT_SCORER_DATA)))
    assert path.stat().st_size < 2_000_000
    data = shipped()
    assert "15361 requests, 58 tasks" in data["trained_on"]
    assert len(data["evaluation"]["splits"]) == 2


def test_knobs_translate_to_thresholds_from_the_calibration_table() -> None:
    scorer = PretrainedScorer()
    shares = [scorer.threshold_for_share(s) for s in (0.1, 0.3, 0.5, 1.0)]
    assert shares == sorted(shares, reverse=True)
    qualities = [scorer.threshold_for_quality(q) for q in (0.85, 0.9, 0.95)]
    assert qualities == sorted(qualities, reverse=True)
    table = shipped()["threshold_table"]
    row = next(r for r in table if r["threshold"] == scorer.threshold_for_share(0.3))
    assert row["strong_share"] <= 0.3
    with pytest.raises(
        InvalidArgumentError, match="max_strong_share must be a finite number >= 0 and <= 1"
    ):
        scorer.threshold_for_share(1.5)
    with pytest.raises(
        InvalidArgumentError, match="quality_target must be a finite number > 0 and <= 1"
    ):
        scorer.threshold_for_quality(0.0)


def test_a_saved_scorer_reads_back_identically(tmp_path: Path) -> None:
    scorer = PretrainedScorer()
    scorer.save(tmp_path / "s.json")
    loaded = PretrainedScorer.load(tmp_path / "s.json")
    assert loaded.score_text(HARD[0]) == scorer.score_text(HARD[0])
    assert loaded.to_dict() == scorer.to_dict()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d.update(format="pickle"), "format"),
        (lambda d: d.update(version=99), "version"),
        (lambda d: d.pop("calibration"), "calibration"),
        (lambda d: d["calibration"].update(a="x"), "calibration.a"),
        (lambda d: d["priors"][0].update(feature="topic"), "priors[0].feature"),
        (lambda d: d.update(default_threshold=2.0), "default_threshold"),
        (lambda d: d["threshold_table"][1].pop("strong_share"), "threshold_table[1].strong_share"),
        (lambda d: d.update(target="cost"), "target"),
        (lambda d: d["model"].update(kind="neural"), "model.kind"),
        (lambda d: d.update(feature_names=["length"]), "feature_names"),
    ],
)
def test_a_malformed_file_raises_an_error_naming_the_field(
    tmp_path: Path, change: Any, field: str
) -> None:
    data = copy.deepcopy(shipped())
    change(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ScorerFileError, match="field") as caught:
        PretrainedScorer.load(path)
    assert caught.value.field == field


def test_a_file_that_is_not_json_says_so(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(b"\x80 not json")
    with pytest.raises(ScorerFileError, match="is not JSON"):
        PretrainedScorer.load(path)


def test_bad_tree_indices_are_caught_before_scoring() -> None:
    data = copy.deepcopy(shipped())

    def first_trees(model: dict[str, Any], path: str) -> tuple[dict[str, Any], str]:
        if model["kind"] == "trees":
            return model, path
        children = (
            [("minuend", model["minuend"]), ("subtrahend", model["subtrahend"])]
            if model["kind"] == "difference"
            else [(f"members[{i}]", m) for i, m in enumerate(model.get("members", []))]
        )
        for name, child in children:
            try:
                return first_trees(child, f"{path}.{name}")
            except LookupError:
                continue
        raise LookupError("no trees")

    try:
        trees, path = first_trees(data["model"], "model")
    except LookupError:
        pytest.skip("the shipped model has no trees")
    trees["trees"][0]["left"][0] = 0  # a loop back to the root
    with pytest.raises(ScorerFileError) as caught:
        PretrainedScorer.from_dict(data)
    assert caught.value.field == f"{path}.trees[0].left"
