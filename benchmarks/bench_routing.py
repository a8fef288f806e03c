"""How much of the strong model's quality does `ModelRouter` keep per dollar, on kinds of
requests its scorer never saw?

Data: RouteLLM's real per-prompt correctness and cost of gpt-4-1106-preview (strong) and
Mixtral-8x7B-Instruct (weak) on GSM8K and the 57 MMLU subjects
(`shared/data/routing/`, see its README). Split by TASK, so every figure is on tasks the
fitted scorers were not trained on: MMLU subjects sorted, shuffled with
`random.Random(14)`, first 29 = half A, the other 28 = half B;
split 1 trains on MMLU half B and tests on GSM8K + MMLU half A, split 2 trains on GSM8K +
MMLU half A and tests on MMLU half B. Every prompt is tested exactly once.

Routers: the shipped `PretrainedScorer` (trained on ALL tasks, test tasks included: shown
for reference, NOT a held-apart figure); its recipe fitted on the training half with the
public `train_scorer` (the held-apart figure of the default); `train_scorer` with target
"weak_wrong"; `HeuristicScorer`; random routing (expected); the oracle (strong only where
the weak model is wrong and the strong one right).

Metrics, as RouteLLM reports routers: the top-scored share of requests goes to the strong
model (ties at random, seeded); PGR = (q - q_weak) / (q_strong - q_weak); APGR = area
under PGR over strong-call shares 0..100 %; CPT(x) = smallest share reaching PGR x;
kept@50%$ = accuracy / always-strong accuracy at half of always-strong's spend; ECE of
the calibrated probabilities against what they predict. Then the routing overhead: CPU
time of `ModelRouter.route()` per request (score + exact token counts + prices, two tiers)
and of the scorer alone.

Run: python -m benchmarks.bench_routing [--data PATH] [--seed 0]
"""

from __future__ import annotations

import argparse
import itertools
import logging
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import HumanMessage

from benchmarks.common import ROUTING_CSV
from langchain_tokenopt.routing.dataset import RoutingData
from langchain_tokenopt.routing.evaluation import RoutingMetrics, evaluate_scores
from langchain_tokenopt.routing.pretrained import PretrainedScorer
from langchain_tokenopt.routing.router import ModelRouter, Tier
from langchain_tokenopt.routing.scorers import HeuristicScorer
from langchain_tokenopt.routing.training import train_scorer

SPLIT_SEED = 14
ARTIFACT_TASK = "mmlu/high_school_mathematics"  # GPT-4 "accuracy" 0.03: a grading artefact
MAX_PROMPT_CHARS = 20_000


def halves(tasks: tuple[str, ...]) -> tuple[list[str], list[str]]:
    subjects = sorted({t for t in tasks if t.startswith("mmlu/")})
    random.Random(SPLIT_SEED).shuffle(subjects)
    half = (len(subjects) + 1) // 2
    return sorted(subjects[:half]), sorted(subjects[half:])


def labels(data: RoutingData, target: str) -> np.ndarray:
    weak_wrong = np.asarray(data.weak_correct) < 0.5
    if target == "weak_wrong":
        return weak_wrong.astype(int)
    return (weak_wrong & (np.asarray(data.strong_correct) >= 0.5)).astype(int)


def metrics(
    scores: np.ndarray, data: RoutingData, seed: int, target: str | None = None
) -> RoutingMetrics:
    return evaluate_scores(
        scores,
        data.weak_correct,
        data.strong_correct,
        data.weak_cost,
        data.strong_cost,
        probabilities=scores if target else None,
        labels=labels(data, target) if target else None,
        seed=seed,
    )


def random_metrics(data: RoutingData) -> RoutingMetrics:
    """Random routing's expected curve: APGR 0.5, CPT(x) = x; kept@50%$ from the model."""
    base = metrics(np.zeros(len(data)), data, 0)
    return RoutingMetrics(
        0.5, 0.5, 0.8, base.random_kept_at_half_cost, base.random_kept_at_half_cost, None, len(data)
    )


def print_table(rows: list[tuple[str, RoutingMetrics]]) -> None:
    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value:.0%}"

    print(f"  {'router':<52}{'APGR':>7}{'CPT50':>7}{'CPT80':>7}{'kept@50%$':>11}{'ECE':>7}")
    for name, m in rows:
        ece = "-" if m.ece is None else f"{m.ece:.3f}"
        print(
            f"  {name:<52}{m.apgr:>7.3f}{pct(m.cpt50):>7}{pct(m.cpt80):>7}"
            f"{m.kept_at_half_cost:>11.1%}{ece:>7}"
        )


def timed(func: Callable[[str], object], texts: list[str]) -> tuple[float, float]:
    """CPU microseconds per call (thread time), p50 and p95, after a warm-up pass."""
    for text in texts[:200]:
        func(text)
    cpu = []
    for text in texts:
        started = time.thread_time()
        func(text)
        cpu.append((time.thread_time() - started) * 1e6)
    cpu.sort()
    return statistics.median(cpu), cpu[int(0.95 * len(cpu))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, default=ROUTING_CSV)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    started = time.perf_counter()
    data = RoutingData.from_file(args.data)
    assert data.tasks is not None
    shipped = PretrainedScorer()
    heuristic = HeuristicScorer()
    half_a, half_b = halves(data.tasks)
    print(f"{len(data):,} prompts from {data.source}; weak {data.weak}, strong {data.strong}")
    print(f"MMLU half A ({len(half_a)}): {', '.join(s[5:] for s in half_a)}")
    print(f"MMLU half B ({len(half_b)}): {', '.join(s[5:] for s in half_b)}")
    in_a = [i for i, t in enumerate(data.tasks) if t in half_a or t == "gsm8k"]
    in_b = [i for i, t in enumerate(data.tasks) if t in half_b]
    for label, train_idx, test_idx in (
        ("split 1: train MMLU half B -> test GSM8K + MMLU half A", in_b, in_a),
        ("split 2: train GSM8K + MMLU half A -> test MMLU half B", in_a, in_b),
    ):
        train, test = data.subset(train_idx), data.subset(test_idx)
        q_weak, q_strong = np.mean(test.weak_correct), np.mean(test.strong_correct)
        print(
            f"\n== {label}: train {len(train):,} / test {len(test):,} prompts "
            f"(test accuracy weak {q_weak:.3f}, strong {q_strong:.3f})"
        )
        fitted = train_scorer(train, evaluate=False, seed=args.seed)
        fitted_ww = train_scorer(train, target="weak_wrong", evaluate=False, seed=args.seed)
        texts = [p[:MAX_PROMPT_CHARS] for p in test.prompts]
        scores = {
            "fitted": np.asarray([fitted.score_text(t) for t in texts]),
            "fitted_ww": np.asarray([fitted_ww.score_text(t) for t in texts]),
            "shipped": np.asarray([shipped.score_text(t) for t in texts]),
            "heuristic": np.asarray([heuristic.score([HumanMessage(t)]) for t in texts]),
        }
        oracle = labels(test, "gain").astype(float)
        print(
            f"  fitted scorer chose: {fitted.to_dict()['chosen']} "
            f"({fitted.to_dict()['model_selection']})"
        )
        print(f"  target weak_wrong chose: {fitted_ww.to_dict()['chosen']}")
        rows = [
            (
                "default recipe fitted on training half (gain)",
                metrics(scores["fitted"], test, args.seed, "gain"),
            ),
            (
                "train_scorer(target='weak_wrong') on training half",
                metrics(scores["fitted_ww"], test, args.seed, "weak_wrong"),
            ),
            ("HeuristicScorer", metrics(scores["heuristic"], test, args.seed)),
            ("random (expected)", random_metrics(test)),
            ("oracle (upper bound)", metrics(oracle, test, args.seed)),
            (
                "shipped default (saw these tasks: NOT held apart)",
                metrics(scores["shipped"], test, args.seed, "gain"),
            ),
        ]
        print_table(rows)
        print(f"  (random routing keeps {rows[0][1].random_kept_at_half_cost:.1%} at 50% spend)")
        keep = [i for i, t in enumerate(test.tasks or ()) if t != ARTIFACT_TASK]
        if len(keep) < len(test):
            sub = test.subset(keep)
            print(
                f"  diagnostic without {ARTIFACT_TASK} (its GPT-4 labels are an artefact; "
                "nothing was chosen from this):"
            )
            print_table(
                [
                    (
                        "default recipe fitted on training half (gain)",
                        metrics(scores["fitted"][keep], sub, args.seed, "gain"),
                    ),
                    (
                        "train_scorer(target='weak_wrong') on training half",
                        metrics(scores["fitted_ww"][keep], sub, args.seed, "weak_wrong"),
                    ),
                    ("HeuristicScorer", metrics(scores["heuristic"][keep], sub, args.seed)),
                    ("random (expected)", random_metrics(sub)),
                ]
            )
    # routing overhead, on every 5th prompt, the shipped scorer and two priced tiers
    texts = [p[:MAX_PROMPT_CHARS] for p in data.prompts[::5]]
    mini = GenericFakeChatModel(messages=itertools.cycle(["a"]))
    big = GenericFakeChatModel(messages=itertools.cycle(["b"]))
    router = ModelRouter(
        tiers=[Tier(mini, model_name="gpt-4o-mini"), Tier(big, model_name="gpt-4o")]
    )
    route_p50, route_p95 = timed(router.route, texts)
    score_p50, score_p95 = timed(shipped.score_text, texts)
    print(
        f"\nrouting overhead per request, CPU, {len(texts):,} prompts: ModelRouter.route() "
        f"p50 {route_p50:,.0f} us, p95 {route_p95:,.0f} us; PretrainedScorer alone p50 "
        f"{score_p50:,.0f} us, p95 {score_p95:,.0f} us"
    )
    print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
