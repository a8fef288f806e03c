"""What a kind of task costs per success: tokens and dollars per successful task."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from langchain_tokenopt.analytics.events import UsageEvent, checked_events

__all__ = ["TaskEfficiency", "analyze_token_efficiency"]


@dataclass(frozen=True, slots=True)
class TaskEfficiency:
    """Tokens and dollars a task type spends per task that succeeded.

    A task is the set of model calls under one top-level run (or one
    `metadata["task_id"]`); it succeeded when none of its model calls failed. Tokens of
    failed tasks count too: they are part of what the successes cost.

    Example:
        >>> e = TaskEfficiency(task_type="qa", tasks=4, successful_tasks=3,
        ...     total_tokens=1200, cost_usd=Decimal("0.03"),
        ...     tokens_per_successful_task=400.0,
        ...     cost_per_successful_task_usd=Decimal("0.01"))
        >>> e.success_rate
        0.75
    """

    task_type: str
    tasks: int
    successful_tasks: int
    total_tokens: int
    cost_usd: Decimal
    tokens_per_successful_task: float | None
    cost_per_successful_task_usd: Decimal | None

    @property
    def success_rate(self) -> float:
        """Share of tasks that succeeded."""
        return self.successful_tasks / self.tasks if self.tasks else 0.0


def analyze_token_efficiency(events: Iterable[UsageEvent]) -> dict[str, TaskEfficiency]:
    """Tokens per successful task, per task type (`metadata["task_type"]`, else agent).

    Example:
        >>> events = [
        ...     UsageEvent(run_id="1", agent="qa", model="m", input_tokens=90,
        ...                output_tokens=10, task_id="t1"),
        ...     UsageEvent(run_id="2", agent="qa", model="m", input_tokens=100,
        ...                task_id="t2", status="error")]
        >>> analyze_token_efficiency(events)["qa"].tokens_per_successful_task
        200.0
    """
    tasks: defaultdict[str, dict[str, list[UsageEvent]]] = defaultdict(dict)
    for event in checked_events(events):
        task_type = event.task_type or event.agent
        task_id = event.task_id or event.run_id
        tasks[task_type].setdefault(task_id, []).append(event)
    result: dict[str, TaskEfficiency] = {}
    for task_type, by_task in sorted(tasks.items()):
        successful = sum(1 for calls in by_task.values() if all(e.status == "ok" for e in calls))
        all_calls = [e for calls in by_task.values() for e in calls]
        tokens = sum(e.spent_tokens for e in all_calls)
        cost = sum(
            (e.cost_usd for e in all_calls if e.cost_usd is not None and not e.cache_hit),
            Decimal(0),
        )
        result[task_type] = TaskEfficiency(
            task_type=task_type,
            tasks=len(by_task),
            successful_tasks=successful,
            total_tokens=tokens,
            cost_usd=cost,
            tokens_per_successful_task=tokens / successful if successful else None,
            cost_per_successful_task_usd=cost / successful if successful else None,
        )
    return result
