"""Shared fixtures: one per real part (see tests/support/)."""

from __future__ import annotations

import os
from pathlib import Path

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
