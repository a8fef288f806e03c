"""`tokenopt router train`: fit the router's scorer to your own traffic and models."""

from __future__ import annotations

import argparse
import json
from typing import Any

from langchain_tokenopt.cli.commands._options import add_command
from langchain_tokenopt.cli.transcript import InputError


def register(subparsers: Any) -> None:
    parser = add_command(
        subparsers,
        "router",
        help="train the ModelRouter's scorer on your own data",
        description="Commands for ModelRouter's difficulty scorer.",
        handler=_usage,
    )
    commands = parser.add_subparsers(dest="router_command", metavar="ROUTER_COMMAND")
    train = add_command(
        commands,
        "train",
        help="train a scorer on prompts with both models' correctness and cost",
        description=(
            "Train a PretrainedScorer on a CSV or JSON Lines file with a 'prompt' column, "
            "an optional 'task' column, and <model>_correct / <model>_cost columns for a "
            "weak and a strong model; print its held-apart evaluation (whole tasks kept "
            "apart when there is a task column, else seeded random halves) and save it "
            "as JSON for ModelRouter(scorer=PretrainedScorer.load(...))."
        ),
        handler=run_train,
    )
    train.add_argument("data", help="CSV or JSONL routing data")
    train.add_argument("-o", "--output", required=True, help="where to write the scorer JSON")
    train.add_argument("--weak", default=None, help="the weak model's column prefix")
    train.add_argument("--strong", default=None, help="the strong model's column prefix")
    train.add_argument(
        "--target",
        choices=("gain", "weak_wrong"),
        default="gain",
        help="what the score predicts (default: gain, strong right where weak is wrong)",
    )
    train.add_argument("--seed", type=int, default=0, help="seed of splits and ties")
    train.add_argument("--json", action="store_true", help="print the evaluation as JSON")


def _usage(args: argparse.Namespace) -> int:
    raise InputError("say what to do: `tokenopt router train DATA.csv -o scorer.json`")


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def run_train(args: argparse.Namespace) -> int:
    # Imported here: training needs scikit-learn, which other commands do not load.
    from langchain_tokenopt.routing.dataset import RoutingData
    from langchain_tokenopt.routing.training import train_scorer

    try:
        data = RoutingData.from_file(args.data, weak=args.weak, strong=args.strong)
        scorer = train_scorer(data, target=args.target, seed=args.seed)
    except OSError as exc:
        raise InputError(f"cannot read {args.data!r}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    try:
        scorer.save(args.output)
    except OSError as exc:
        raise InputError(f"cannot write {args.output!r}: {exc.strerror or exc}") from exc
    evaluation = scorer.evaluation or {}
    if args.json:
        print(json.dumps({"output": args.output, "evaluation": evaluation}, indent=2))
        return 0
    print(f"{len(data):,} requests; weak {data.weak}, strong {data.strong}; target {args.target}")
    print("held-apart evaluation (the recipe trained on one half, measured on the other):")
    print(
        f"  {'split':<8}{'test':>7}{'APGR':>7}{'CPT50':>7}{'CPT80':>7}"
        f"{'kept@50%$':>11}{'random':>8}{'ECE':>7}"
    )
    for number, split in enumerate(evaluation.get("splits", []), start=1):
        print(
            f"  {number:<8}{split['test']:>7,}{split['apgr']:>7.3f}{_percent(split['cpt50']):>7}"
            f"{_percent(split['cpt80']):>7}{split['kept_at_half_cost']:>11.1%}"
            f"{split['random_kept_at_half_cost']:>8.1%}{split['ece']:>7.3f}"
        )
    print("  (APGR: random routing 0.5; kept@50%$: quality kept at half of always-strong's")
    print("   spend, next to random routing's)")
    print(f"final scorer trained on all {len(data):,} requests -> {args.output}")
    print(f"default threshold {scorer.default_threshold:.3f} (about 30% of requests to strong)")
    return 0
