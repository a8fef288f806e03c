"""Shared fixtures: one per real part (see tests/support/)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

# tiktoken cannot download here: use the offline cache next to the repository when
# the caller has not chosen one (.ci/run sets it too).
_OFFLINE_TIKTOKEN = Path(__file__).resolve().parents[2] / "shared" / "tiktoken"
if "TIKTOKEN_CACHE_DIR" not in os.environ and _OFFLINE_TIKTOKEN.is_dir():
    os.environ["TIKTOKEN_CACHE_DIR"] = str(_OFFLINE_TIKTOKEN)

# Property-based tests stay quick and repeatable by default (the same examples on every
# run, so CI never goes red by chance); HYPOTHESIS_PROFILE=thorough searches longer, with
# fresh random examples each run. Cases it finds go into tests/fuzz_corpus/.
settings.register_profile("default", max_examples=50, deadline=None, derandomize=True)
settings.register_profile("thorough", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

pytest_plugins = [
    "tests.support.redis_server",
    "tests.support.redis_cluster",
    "tests.support.openai_server",
]

_CHECKOUT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _leaves_the_checkout_as_it_found_it() -> Iterator[None]:
    """A test writes its files under tmp_path, never into the checkout's root (a store
    named "x" was once left there and committed)."""
    before = set(os.listdir(_CHECKOUT))
    yield
    added = set(os.listdir(_CHECKOUT)) - before - _TOOL_FILES
    assert not added, f"the test left {sorted(added)} in {_CHECKOUT}"


# made by the tools that run the tests, not by a test
_TOOL_FILES = {".pytest_cache", ".hypothesis", ".coverage", "__pycache__"}
