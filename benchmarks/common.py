"""What every benchmark shares: where the repository, the offline data and the
downloaded benchmark data live, and the one download a benchmark may make.

Run benchmarks as modules from the repository root (`python -m benchmarks.bench_x`):
the package's `__init__` points tiktoken at the offline encodings first.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: The workspace's shared folder: offline data sets and tiktoken files.
SHARED = ROOT.parent / "shared"
DATA = SHARED / "data"
PROMPTS_CSV = DATA / "prompts" / "awesome-chatgpt-prompts.csv"
PROSE = DATA / "text" / "big.txt"
#: RouteLLM's real per-prompt correctness of GPT-4 and Mixtral (GSM8K + MMLU).
ROUTING_CSV = DATA / "routing" / "routellm_gsm8k_mmlu.csv"
#: Data a benchmark downloads from a package registry, kept between runs (git-ignored).
BENCH_DATA = ROOT / ".bench-data"
#: The Berkeley Function Calling Leaderboard release the tool and memory benchmarks read.
BFCL_VERSION = "2026.3.23"


def bfcl_wheel(version: str = BFCL_VERSION) -> Path:
    """The pinned bfcl-eval wheel from PyPI, downloaded into `.bench-data/` once."""
    BENCH_DATA.mkdir(exist_ok=True)
    found = sorted(BENCH_DATA.glob(f"bfcl_eval-{version}-*.whl"))
    if not found:
        print(f"Downloading bfcl-eval=={version} into {BENCH_DATA} ...", flush=True)
        pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet"]
        subprocess.run([*pip, f"bfcl-eval=={version}", "-d", str(BENCH_DATA)], check=True)
        found = sorted(BENCH_DATA.glob(f"bfcl_eval-{version}-*.whl"))
    if not found:
        raise SystemExit(f"bfcl-eval=={version} could not be downloaded into {BENCH_DATA}")
    return found[0]
