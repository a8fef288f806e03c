"""A worker SIGKILLed mid-call on a Redis-backed budget: its lease returns it."""

from __future__ import annotations

from typing import Any

import pytest

from langchain_tokenopt.stores import RedisStore
from tests.support.killed_budget import RESERVED_TOKENS, kill_mid_call
from tests.unit_tests.callbacks.test_budget_kill import survivor

pytestmark = pytest.mark.redis


def test_a_killed_workers_reservation_returns_after_its_lease_on_redis(
    redis_url: str, redis_client: Any
) -> None:
    kill_mid_call(RedisStore, redis_url)
    store = RedisStore(redis_url)
    assert survivor(store, after_lease=False).remaining().used_tokens == RESERVED_TOKENS
    assert survivor(store, after_lease=True).remaining().used_tokens == 0
    assert list(redis_client.scan_iter(match="tokenopt:budget-lease:*")) == []
    store.close()
