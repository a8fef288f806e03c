"""Routing data: prompts with the real correctness and cost of a weak and a strong model.

One convention, shared by `tokenopt router train`, `train_scorer` and the benchmark: a
CSV or JSON Lines file with a `prompt` column, an optional `task` column (the kind of
request; held-apart evaluation keeps whole tasks apart), and per model
`<model>_correct` (0/1 or a score in [0, 1]) and `<model>_cost` (USD for that prompt).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

from langchain_tokenopt.errors import InvalidArgumentError

__all__ = ["RoutingData"]


@dataclass(frozen=True)
class RoutingData:
    """Prompts with both models' correctness and cost (and optionally their task).

    Example:
        >>> data = RoutingData.from_rows([
        ...     {"prompt": "hi", "mini_correct": 1, "mini_cost": 0.001,
        ...      "big_correct": 1, "big_cost": 0.02},
        ...     {"prompt": "prove it", "mini_correct": 0, "mini_cost": 0.002,
        ...      "big_correct": 1, "big_cost": 0.03}])
        >>> data.weak, data.strong, len(data)
        ('mini', 'big', 2)
    """

    prompts: tuple[str, ...]
    weak_correct: tuple[float, ...]
    strong_correct: tuple[float, ...]
    weak_cost: tuple[float, ...]
    strong_cost: tuple[float, ...]
    tasks: tuple[str, ...] | None
    weak: str
    strong: str
    source: str = "rows"

    def __len__(self) -> int:
        return len(self.prompts)

    @classmethod
    def from_rows(
        cls,
        rows: Sequence[Mapping[str, Any]],
        *,
        weak: str | None = None,
        strong: str | None = None,
        source: str = "rows",
    ) -> RoutingData:
        """Read rows of the column convention (module doc); `weak` / `strong` name the
        models (default: of exactly two, the cheaper in total is weak)."""
        if not rows or "prompt" not in rows[0]:
            raise InvalidArgumentError(
                f"{source}: needs a 'prompt' column and <model>_correct / _cost"
            )
        models = sorted(k[: -len("_correct")] for k in rows[0] if k.endswith("_correct"))
        missing = [m for m in models if f"{m}_cost" not in rows[0]]
        if missing:
            raise InvalidArgumentError(
                f"{source}: no cost column for {missing} (<model>_cost in USD)"
            )

        def column(name: str) -> tuple[float, ...]:
            values = []
            for line, row in enumerate(rows, start=1):
                try:
                    value = float(row[name])
                except (KeyError, TypeError, ValueError):
                    raise InvalidArgumentError(
                        f"{source}: row {line}: {name} must be a number"
                    ) from None
                if not math.isfinite(value):
                    raise InvalidArgumentError(f"{source}: row {line}: {name} must be finite")
                values.append(value)
            return tuple(values)

        if weak is None or strong is None:
            if len(models) != 2 and not (weak and strong):
                raise InvalidArgumentError(
                    f"{source} has models {models}: name the weak and strong one"
                )
            by_cost = sorted(models, key=lambda m: sum(column(f"{m}_cost")))
            weak = weak or next(m for m in by_cost if m != strong)
            strong = strong or next(m for m in reversed(by_cost) if m != weak)
        for model in (weak, strong):
            if model not in models:
                raise InvalidArgumentError(
                    f"{source}: no columns for model {model!r} (have {models})"
                )
        tasks = None
        if "task" in rows[0]:
            tasks = tuple(str(row.get("task") or "") for row in rows)
        return cls(
            prompts=tuple(str(row["prompt"]) for row in rows),
            weak_correct=column(f"{weak}_correct"),
            strong_correct=column(f"{strong}_correct"),
            weak_cost=column(f"{weak}_cost"),
            strong_cost=column(f"{strong}_cost"),
            tasks=tasks,
            weak=weak,
            strong=strong,
            source=source,
        )

    @classmethod
    def from_file(
        cls, path: str | PathLike[str], *, weak: str | None = None, strong: str | None = None
    ) -> RoutingData:
        """Read a CSV or JSON Lines (``.jsonl`` / ``.ndjson``) file of the convention."""
        file = Path(path)
        rows: list[dict[str, Any]]
        if file.suffix.lower() in (".jsonl", ".ndjson"):
            with file.open(encoding="utf-8") as handle:
                rows = [json.loads(line) for line in handle if line.strip()]
        else:
            csv.field_size_limit(2**31 - 1)
            with file.open(encoding="utf-8", newline="") as handle:
                rows = list(csv.DictReader(handle))
        return cls.from_rows(rows, weak=weak, strong=strong, source=str(file))

    def subset(self, indices: Sequence[int]) -> RoutingData:
        """The rows at `indices`, in that order."""

        def pick(values: tuple[Any, ...]) -> tuple[Any, ...]:
            return tuple(values[i] for i in indices)

        return RoutingData(
            prompts=pick(self.prompts),
            weak_correct=pick(self.weak_correct),
            strong_correct=pick(self.strong_correct),
            weak_cost=pick(self.weak_cost),
            strong_cost=pick(self.strong_cost),
            tasks=None if self.tasks is None else pick(self.tasks),
            weak=self.weak,
            strong=self.strong,
            source=self.source,
        )
