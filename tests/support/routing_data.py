"""A small routing data set written by the tests: prompts of six tasks where the weak
model fails the long, numeric ones and the strong model gets nearly everything right."""

from __future__ import annotations

import csv
from pathlib import Path

FIELDS = ["prompt", "task", "mini_correct", "mini_cost", "big_correct", "big_cost"]


def routing_rows(per_task: int = 20) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for task in range(6):
        for i in range(per_task):
            hard = i % 3 == 0
            prompt = (
                f"Compute {i * 17 + task} * {i + 3} + {task}^2, then prove the result step by step."
                if hard
                else f"Say hello to friend number {i} of group {task}."
            )
            rows.append(
                {
                    "prompt": prompt,
                    "task": f"task-{task}",
                    "mini_correct": 0 if hard else 1,
                    "mini_cost": 0.0001,
                    "big_correct": 0 if i % 10 == 9 else 1,
                    "big_cost": 0.003,
                }
            )
    return rows


def write_routing_csv(path: Path, per_task: int = 20, *, with_task: bool = True) -> Path:
    fields = FIELDS if with_task else [f for f in FIELDS if f != "task"]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(routing_rows(per_task))
    return path
