"""`TokenBudget` on a real Redis Cluster: the lease specification of the unit tests
(tests/unit_tests/callbacks/test_budget_leases.py) run on a cluster store, and a budget's
keys kept on one master by its hash tag."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from langchain_tokenopt.callbacks.budget import TokenBudget
from langchain_tokenopt.stores import RedisStore
from tests.unit_tests.callbacks.test_budget_leases import (
    Clock,
    budget_on,
    call,
    test_a_live_lease_of_another_budget_name_is_not_touched,
    test_a_settled_call_leaves_no_lease_behind_and_is_never_returned,
    test_a_settlement_after_its_lease_was_returned_adds_the_real_usage,
    test_an_unsettled_reservation_stays_debited_until_its_lease_ends,
    test_calls_through_a_model_reserve_and_settle_with_a_lease,
    test_two_budgets_sweeping_together_return_a_lease_exactly_once,
)

pytestmark = pytest.mark.redis

__all__ = [  # the lease specification, collected here with the cluster `store` below
    "test_a_live_lease_of_another_budget_name_is_not_touched",
    "test_a_settled_call_leaves_no_lease_behind_and_is_never_returned",
    "test_a_settlement_after_its_lease_was_returned_adds_the_real_usage",
    "test_an_unsettled_reservation_stays_debited_until_its_lease_ends",
    "test_calls_through_a_model_reserve_and_settle_with_a_lease",
    "test_two_budgets_sweeping_together_return_a_lease_exactly_once",
]


@pytest.fixture
def store(redis_cluster_url: str, redis_cluster_client: Any) -> Iterator[RedisStore]:
    store = RedisStore(redis_cluster_url, cluster=True)
    yield store
    store.close()


def test_every_key_of_a_budget_lives_on_the_master_of_its_name(
    store: RedisStore, redis_cluster_client: Any
) -> None:
    clock = Clock()
    budget: TokenBudget = budget_on(store, clock, max_cost_usd=1, window="day", name="team")
    budget.reserve(call())
    crashed_keys = [k.decode() for k in redis_cluster_client.scan_iter()]
    assert any(":tokens:" in k for k in crashed_keys)
    assert any(":nano_usd:" in k for k in crashed_keys)
    assert any("budget-lease" in k for k in crashed_keys)
    nodes = {redis_cluster_client.get_node_from_key(k).name for k in crashed_keys}
    assert nodes == {redis_cluster_client.get_node_from_key("{team}").name}
