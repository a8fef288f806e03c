"""Training a scorer on your own data: from a CSV to a saved file to a routing decision."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel

from langchain_tokenopt.cli.app import main
from langchain_tokenopt.routing.dataset import RoutingData
from langchain_tokenopt.routing.pretrained import PretrainedScorer
from langchain_tokenopt.routing.router import ModelRouter, Tier
from langchain_tokenopt.routing.training import train_scorer
from tests.support.routing_data import write_routing_csv

HARD = "Compute 351 * 24 + 9^2, then prove the result step by step."
EASY = "Say hello to friend number 4 of group 2."


def two_tiers(scorer: PretrainedScorer) -> ModelRouter:
    mini = GenericFakeChatModel(messages=itertools.cycle(["mini"]))
    big = GenericFakeChatModel(messages=itertools.cycle(["big"]))
    return ModelRouter(
        tiers=[Tier(mini, model_name="gpt-4o-mini"), Tier(big, model_name="gpt-4o")],
        scorer=scorer,
    )


def test_a_scorer_trained_on_a_csv_saves_loads_and_routes(tmp_path: Path) -> None:
    data = RoutingData.from_file(write_routing_csv(tmp_path / "traffic.csv"))
    assert (data.weak, data.strong) == ("mini", "big") and data.tasks is not None
    scorer = train_scorer(data, evaluate=True)
    evaluation = scorer.evaluation
    assert evaluation is not None and len(evaluation["splits"]) == 2
    assert all("tasks" in split["description"] for split in evaluation["splits"])
    scorer.save(tmp_path / "scorer.json")
    loaded = PretrainedScorer.load(tmp_path / "scorer.json")
    assert loaded.score_text(HARD) == pytest.approx(scorer.score_text(HARD))
    assert loaded.score_text(HARD) > loaded.score_text(EASY)
    router = two_tiers(loaded)
    assert router.invoke(EASY).content == "mini"
    assert router.invoke(HARD).content == "big"


def test_without_a_task_column_the_evaluation_uses_seeded_random_halves(tmp_path: Path) -> None:
    data = RoutingData.from_file(write_routing_csv(tmp_path / "t.csv", with_task=False))
    assert data.tasks is None
    first = train_scorer(data, target="weak_wrong", seed=3).evaluation
    again = train_scorer(data, target="weak_wrong", seed=3).evaluation
    assert first is not None and first == again
    assert "random halves" in first["splits"][0]["description"]


def test_training_rejects_data_it_cannot_learn_from(tmp_path: Path) -> None:
    rows = [
        {"prompt": f"q{i}", "a_correct": 1, "a_cost": 0.1, "b_correct": 1, "b_cost": 1.0}
        for i in range(30)
    ]
    with pytest.raises(ValueError, match="one class only"):
        train_scorer(RoutingData.from_rows(rows), evaluate=False)
    with pytest.raises(ValueError, match="target must be one of"):
        train_scorer(RoutingData.from_rows(rows), target="cost")
    with pytest.raises(ValueError, match="row 2: a_cost must be a number"):
        RoutingData.from_rows([rows[0], {**rows[1], "a_cost": "cheap"}])


def test_cli_router_train_prints_the_held_apart_evaluation_and_writes_the_scorer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_path = write_routing_csv(tmp_path / "traffic.csv")
    out = tmp_path / "scorer.json"
    assert main(["router", "train", str(csv_path), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "held-apart evaluation" in printed and "APGR" in printed
    assert two_tiers(PretrainedScorer.load(out)).route(HARD).tier == "gpt-4o"
    assert main(["router", "train", str(csv_path), "-o", str(out), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["evaluation"]["splits"]) == 2


def test_cli_router_train_names_a_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["router", "train", "no-such.csv", "-o", "x.json"]) == 2
    assert "cannot read 'no-such.csv'" in capsys.readouterr().err


def test_scoring_with_a_trained_file_loads_neither_sklearn_nor_numpy(tmp_path: Path) -> None:
    data = RoutingData.from_file(write_routing_csv(tmp_path / "t.csv"))
    train_scorer(data, evaluate=False).save(tmp_path / "s.json")
    code = (
        "import sys\n"
        "from langchain_tokenopt.routing.pretrained import PretrainedScorer\n"
        f"PretrainedScorer.load({str(tmp_path / 's.json')!r}).score_text('hi')\n"
        "PretrainedScorer().score_text('hi')\n"
        "print(sorted(m for m in ('sklearn', 'numpy') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
