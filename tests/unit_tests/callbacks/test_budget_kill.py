"""A worker SIGKILLed mid-call leaves its reservation debited; after the lease, the
next operation in another process returns it (SQLite file shared by the processes)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from langchain_tokenopt.callbacks.budget import TokenBudget
from langchain_tokenopt.stores import SQLiteStore, Store
from tests.support.killed_budget import (
    BUDGET_NAME,
    LEASE_SECONDS,
    RESERVED_TOKENS,
    kill_mid_call,
)


def survivor(store: Store, *, after_lease: bool) -> TokenBudget:
    """A budget in this process; its clock is past the worker's lease when asked."""
    ahead = dt.timedelta(seconds=LEASE_SECONDS + 1 if after_lease else 0)
    return TokenBudget(
        max_tokens=10_000,
        window=None,
        store=store,
        name=BUDGET_NAME,
        lease_seconds=LEASE_SECONDS,
        clock=lambda: dt.datetime.now(dt.timezone.utc) + ahead,
    )


def test_a_killed_workers_reservation_returns_after_its_lease_on_sqlite(tmp_path: Path) -> None:
    path = str(tmp_path / "budget.db")
    kill_mid_call(SQLiteStore, path)
    store = SQLiteStore(path)
    assert survivor(store, after_lease=False).remaining().used_tokens == RESERVED_TOKENS
    assert survivor(store, after_lease=True).remaining().used_tokens == 0
    assert survivor(store, after_lease=False).remaining().tokens == 10_000
