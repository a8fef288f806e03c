"""Routing lever: the requests the default scorer finds easy go to a cheaper model of the
same provider; the expected quality kept comes from the scorer's calibration table."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

from langchain_tokenopt.analysis.levers.base import Lever, Step
from langchain_tokenopt.analysis.replay import Sent
from langchain_tokenopt.routing.pretrained import PretrainedScorer

__all__ = ["CHEAPER_TIER", "RoutingLever", "cheaper_tier"]

#: A model's cheaper tier at the same provider, matched on the longest name prefix.
CHEAPER_TIER: dict[str, str] = {
    "gpt-4o-mini": "",
    "gpt-4o": "gpt-4o-mini",
    "chatgpt-4o": "gpt-4o-mini",
    "gpt-4-turbo": "gpt-4o-mini",
    "gpt-4-": "gpt-4o-mini",
    "gpt-4.1-nano": "",
    "gpt-4.1-mini": "gpt-4.1-nano",
    "gpt-4.1": "gpt-4.1-mini",
    "gpt-5-nano": "",
    "gpt-5-mini": "gpt-5-nano",
    "gpt-5": "gpt-5-mini",
    "o1": "o4-mini",
    "o3-mini": "",
    "o3": "o4-mini",
    "claude-opus-4": "claude-sonnet-4-20250514",
    "claude-3-opus": "claude-3-5-sonnet-latest",
    "claude-sonnet-4": "claude-haiku-4-5",
    "claude-3-7-sonnet": "claude-3-5-haiku-latest",
    "claude-3-5-sonnet": "claude-3-5-haiku-latest",
    "claude-3-5-haiku": "claude-3-haiku-20240307",
}


def cheaper_tier(model: str | None) -> str | None:
    """The cheaper model of the same provider, or None (already the cheapest, or unknown)."""
    if not model:
        return None
    name = model.rsplit("/", 1)[-1].lower()
    best = max(
        (prefix for prefix in CHEAPER_TIER if name.startswith(prefix)), key=len, default=None
    )
    return CHEAPER_TIER[best] or None if best is not None else None


class RoutingLever(Lever):
    """`PretrainedScorer()` at its default threshold: a request it scores below the threshold
    (the strong model would not gain) is sent to the cheaper tier."""

    name = "routing"

    def __init__(self, scorer: PretrainedScorer | None = None) -> None:
        self.scorer = scorer or PretrainedScorer()
        self.threshold = self.scorer.default_threshold
        self._scores: dict[Any, float] = {}
        self.requests = 0
        self.moved = 0
        self.tiers: dict[str, str] = {}
        self.moved_cost_usd = Decimal(0)  # baseline dollars of the moved requests
        self.baseline_cost_usd = Decimal(0)  # of every request (the engine adds both)

    @property
    def label(self) -> str:
        return "routing (easy requests to the cheaper tier)"

    def expected_quality_kept(self) -> float | None:
        """Quality kept at the threshold, from the scorer's held-apart calibration table."""
        table = self.scorer.to_dict().get("threshold_table")
        if not isinstance(table, list) or not table:
            return None
        row = min(table, key=lambda r: abs(float(r["threshold"]) - self.threshold))
        return float(row["quality_kept"])

    def observe(self, step: Step) -> None:
        self.requests += 1
        cheaper = cheaper_tier(step.baseline.model)
        if cheaper is None:
            return
        latest = next((m for m in reversed(step.baseline.messages) if m.role == "user"), None)
        if latest is None:
            return
        score = self._scores.get(latest.key)
        if score is None:
            score = self._scores[latest.key] = self.scorer.score_text(latest.text)
            if len(self._scores) > 100_000:
                self._scores.clear()
        if score < self.threshold:
            self.moved += 1
            self.tiers[str(step.baseline.model)] = cheaper
            step.notes[self.name] = cheaper

    def apply(self, sent: Sent, step: Step) -> Sent:
        cheaper: str | None = step.notes.get(self.name)
        if cheaper is None or sent.answered:
            return sent
        return replace(sent, model=cheaper)

    def note(self) -> str:
        quality = self.expected_quality_kept()
        kept = f"; expected quality kept {quality:.0%} (scorer calibration)" if quality else ""
        return f"{self.moved:,} of {self.requests:,} requests to a cheaper tier{kept}"

    def summary(self) -> dict[str, Any]:
        return {"requests": self.requests, "moved": self.moved, "tiers": dict(self.tiers)}

    def absorb(self, summary: dict[str, Any]) -> None:
        self.requests += summary["requests"]
        self.moved += summary["moved"]
        self.tiers.update(summary["tiers"])

    def details(self) -> dict[str, Any]:
        return {
            "scorer": "PretrainedScorer",
            "threshold": self.threshold,
            "moved_requests": self.moved,
            "moved_share": self.moved / self.requests if self.requests else None,
            "moved_cost_usd": self.moved_cost_usd,
            "moved_cost_share": (
                float(self.moved_cost_usd / self.baseline_cost_usd)
                if self.baseline_cost_usd
                else None
            ),
            "expected_quality_kept": self.expected_quality_kept(),
            "tiers": dict(sorted(self.tiers.items())),
        }
