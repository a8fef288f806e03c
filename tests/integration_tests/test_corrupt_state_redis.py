"""The corrupt-state suite on a real redis-server: values planted with plain SET."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support.planted import Planted, redis_planted
from tests.unit_tests.test_corrupt_state import CorruptStateSuite

pytestmark = pytest.mark.redis


class TestCorruptStateOnRedis(CorruptStateSuite):
    @pytest.fixture
    async def planted(self, redis_url: str, redis_client: Any) -> AsyncIterator[Planted]:
        built = redis_planted(redis_url, redis_client)
        yield built
        await built.store.aclose()  # type: ignore[attr-defined]
