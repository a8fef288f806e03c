"""Shared fixtures: one per real part (see tests/support/)."""

from __future__ import annotations

import os
from pathlib import Path

# tiktoken cannot download here: use the offline cache next to the repository when
# the caller has not chosen one (.ci/run sets it too).
_OFFLINE_TIKTOKEN = Path(__file__).resolve().parents[2] / "shared" / "tiktoken"
if "TIKTOKEN_CACHE_DIR" not in os.environ and _OFFLINE_TIKTOKEN.is_dir():
    os.environ["TIKTOKEN_CACHE_DIR"] = str(_OFFLINE_TIKTOKEN)

pytest_plugins = [
    "tests.support.redis_server",
    "tests.support.openai_server",
]
