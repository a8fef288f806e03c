"""Difficulty scorers (`HeuristicScorer`, `LearnedScorer`) and reading a budget's share left."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool

from langchain_tokenopt.callbacks.budget import BudgetRemaining, TokenBudget
from langchain_tokenopt.routing.budget_share import remaining_share
from langchain_tokenopt.routing.scorers import DEFAULT_WEIGHTS, HeuristicScorer, LearnedScorer

# ------------------------------------------------------------------ HeuristicScorer


@tool
def lookup(term: str) -> str:
    """Look a term up."""
    return term


def features(text: str, **kwargs: Any) -> dict[str, float]:
    return dict(HeuristicScorer().explain(text, **kwargs).features)


def test_small_talk_scores_near_zero() -> None:
    assert HeuristicScorer().explain("Thanks, that helps!").score < 0.01


def test_code_fence_or_code_lines_make_code_one() -> None:
    assert features("Why does this fail?\n```\nx = 1/0\n```")["code"] == 1.0
    snippet = "def f(x):\n    if (x > 1) {\n        return x;\n    }\n"
    assert features(snippet)["code"] == 1.0


def test_programming_words_count_a_quarter_each_up_to_three_quarters() -> None:
    assert features("Write a function")["code"] == 0.25
    assert features("Write a python function to debug the sql query")["code"] == 0.75


def test_math_notation_makes_math_one_and_math_words_add_up() -> None:
    assert features("Show that $a^2 + b^2 = c^2$")["math"] == 1.0
    assert features("What is 12 * 7")["math"] == 1.0
    assert features("Find the derivative")["math"] == pytest.approx(0.35)
    assert features("Prove the theorem about the integral")["math"] == 1.0


def test_reasoning_counts_distinct_cues_up_to_three() -> None:
    assert features("Compare these")["reasoning"] == pytest.approx(1 / 3)
    assert features("Compare these, compare those")["reasoning"] == pytest.approx(1 / 3)
    text = "Compare the designs step by step and explain why one is better"
    assert features(text)["reasoning"] == 1.0


def test_only_extra_questions_count() -> None:
    assert features("Where is Oslo?")["questions"] == 0.0
    assert features("Where is Oslo? And Bergen? And Tromsø? And Bodø?")["questions"] == 1.0


def test_depth_counts_earlier_user_turns() -> None:
    history = []
    for turn in range(5):
        history += [HumanMessage(f"question {turn}"), AIMessage(f"answer {turn}")]
    history.append(HumanMessage("and now?"))
    explained = HeuristicScorer().explain(history)
    assert explained.features["depth"] == pytest.approx(5 / 8)


def test_length_is_measured_on_the_latest_user_message_in_tokens() -> None:
    long_system = SystemMessage("rule " * 2000)
    explained = HeuristicScorer().explain([long_system, HumanMessage("hi")])
    assert explained.features["length"] < 0.01
    assert features("word " * 800)["length"] == 1.0


def test_tools_requested_bound_or_in_the_conversation() -> None:
    assert features("hi", tools=[lookup])["tools"] == 1.0
    call = AIMessage("", tool_calls=[{"name": "lookup", "args": {"term": "x"}, "id": "1"}])
    conversation = [HumanMessage("look x up"), call, ToolMessage("x", tool_call_id="1")]
    assert HeuristicScorer().explain(conversation).features["tools"] == 0.5
    assert features("hi")["tools"] == 0.0


def test_score_is_the_weighted_sum_of_features_clipped() -> None:
    scorer = HeuristicScorer()
    text = "Prove it step by step, compare approaches and explain why. Then write a Python script."
    explained = scorer.explain(text)
    assert explained.contributions == {
        name: value * DEFAULT_WEIGHTS[name] for name, value in explained.features.items()
    }
    assert explained.score == pytest.approx(min(1.0, sum(explained.contributions.values())))
    assert scorer.score([HumanMessage(text)]) == explained.score


def test_custom_weights_change_the_score_and_unknown_features_are_rejected() -> None:
    only_math = HeuristicScorer({"math": 1.0})
    assert only_math.explain("Find the derivative of x").score == pytest.approx(0.35)
    assert only_math.explain("Compare step by step and explain why").score == 0.0
    with pytest.raises(ValueError, match="unknown HeuristicScorer features"):
        HeuristicScorer({"vibes": 1.0})


def test_harder_prompts_score_higher_than_easy_ones() -> None:
    scorer = HeuristicScorer()
    easy = ["hi", "What is the capital of Peru?", "Translate 'good morning' to French."]
    hard = [
        "Design a rate limiter for a distributed API, compare token bucket and sliding "
        "window step by step, and implement it in Python with unit tests.",
        "Prove that there are infinitely many primes, then derive a bound on the gap "
        "between consecutive primes and explain why it holds.",
    ]
    assert max(scorer.explain(t).score for t in easy) < min(scorer.explain(t).score for t in hard)


# ------------------------------------------------------------------ LearnedScorer

EASY_PROMPTS = [
    "hi there",
    "thanks a lot",
    "what time is it in Paris",
    "translate hello to Spanish",
    "tell me a joke",
    "what is the capital of Italy",
]
HARD_PROMPTS = [
    "prove the convergence of the series formally",
    "derive the asymptotic bound of the recursion formally",
    "prove the lemma about eigenvalues formally",
    "derive the closed form of the integral formally",
    "prove that the algorithm terminates formally",
    "derive the variance of the estimator formally",
]


def trained() -> LearnedScorer:
    return LearnedScorer().fit(
        EASY_PROMPTS + HARD_PROMPTS, [0] * len(EASY_PROMPTS) + [1] * len(HARD_PROMPTS)
    )


def test_learned_scorer_ranks_like_its_training_labels() -> None:
    scorer = trained()
    hard = scorer.score([HumanMessage("prove the bound formally")])
    easy = scorer.score([HumanMessage("tell me the time in Rome")])
    assert 0.0 <= easy < 0.5 < hard <= 1.0


def test_learned_scorer_reads_the_latest_user_message() -> None:
    scorer = trained()
    conversation = [HumanMessage("prove it formally"), AIMessage("ok"), HumanMessage("thanks")]
    assert scorer.score(conversation) == scorer.score_texts(["thanks"])[0]


def test_learned_scorer_round_trips_through_json(tmp_path: Path) -> None:
    scorer = trained()
    path = tmp_path / "scorer.json"
    scorer.save(path)
    data = json.loads(path.read_text(encoding="utf-8"))  # plain JSON, no pickle
    assert data["format"] == "langchain-tokenopt/learned-scorer"
    assert "formally" in data["vectorizer"]["vocabulary"]
    loaded = LearnedScorer.load(path)
    texts = ["prove it formally", "hello", "derive the bound", "a new unseen sentence"]
    assert loaded.score_texts(texts) == pytest.approx(scorer.score_texts(texts), abs=1e-12)


def test_learned_scorer_rejects_files_that_are_not_saved_scorers(tmp_path: Path) -> None:
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"format": "something else"}), encoding="utf-8")
    with pytest.raises(ValueError, match="not a saved LearnedScorer"):
        LearnedScorer.load(path)
    data = trained().to_dict()
    data["vectorizer"]["idf"] = data["vectorizer"]["idf"][:-1]
    with pytest.raises(ValueError, match="malformed"):
        LearnedScorer.from_dict(data)
    path.write_text("not json", encoding="utf-8")
    with pytest.raises(ValueError, match="not JSON"):
        LearnedScorer.load(path)


def test_learned_scorer_needs_training_and_both_classes() -> None:
    with pytest.raises(RuntimeError, match="fit"):
        LearnedScorer().score([HumanMessage("hi")])
    with pytest.raises(ValueError, match="both classes"):
        LearnedScorer().fit(["a", "b"], [1, 1])
    with pytest.raises(ValueError, match="2 prompts but 1 labels"):
        LearnedScorer().fit(["a", "b"], [1])
    with pytest.raises(ValueError, match="0 / 1"):
        LearnedScorer().fit(["a", "b"], [0, 2])


# ------------------------------------------------------------------ remaining_share


def test_share_of_a_token_budget_is_tokens_left_over_the_limit() -> None:
    budget = TokenBudget(max_tokens=1_000, window="day")
    assert remaining_share(budget) == 1.0
    reply = AIMessage(
        "x", usage_metadata={"input_tokens": 700, "output_tokens": 50, "total_tokens": 750}
    )
    GenericFakeChatModel(messages=iter([reply])).invoke("hi", config={"callbacks": [budget]})
    assert remaining_share(budget) == pytest.approx(0.25)


def test_share_of_a_budget_with_two_limits_is_the_smaller_one() -> None:
    class TwoLimits(TokenBudget):
        def remaining(self, agent: str | None = None) -> BudgetRemaining:
            return BudgetRemaining(
                tokens=800,
                cost_usd=Decimal("0.5"),
                used_tokens=200,
                used_cost_usd=Decimal("1.5"),
                resets_at=None,
            )

    assert remaining_share(TwoLimits(max_tokens=1_000, max_cost_usd=2)) == pytest.approx(0.25)


def test_share_from_a_number_a_callable_or_nothing() -> None:
    class NumberBudget:
        def remaining(self) -> float:
            return 0.4

    assert remaining_share(NumberBudget()) == 0.4
    assert remaining_share(lambda: 1.7) == 1.0
    assert remaining_share(lambda: -0.2) == 0.0
    assert remaining_share(None) is None


def test_share_of_a_budget_that_cannot_be_read_is_unknown() -> None:
    class Down:
        def remaining(self) -> Any:
            raise ConnectionError("store is down")

    assert remaining_share(Down()) is None
