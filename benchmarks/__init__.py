"""Benchmarks: one script per question, run as `python -m benchmarks.bench_<name>`.

Offline, tiktoken reads its encodings from the workspace's `../shared/tiktoken` when
the caller has not chosen a folder.
"""

import os
from pathlib import Path

_OFFLINE_TIKTOKEN = Path(__file__).resolve().parents[2] / "shared" / "tiktoken"
if "TIKTOKEN_CACHE_DIR" not in os.environ and _OFFLINE_TIKTOKEN.is_dir():
    os.environ["TIKTOKEN_CACHE_DIR"] = str(_OFFLINE_TIKTOKEN)
