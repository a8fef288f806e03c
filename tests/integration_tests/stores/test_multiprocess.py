"""Stores shared by several processes: adds are atomic across them.

Four separate Python processes hammer one key of one SQLite file (or one Redis) at the
same time; the total must be exact and a limit must never be crossed. The children
are plain interpreters that import only the stores, so starting them is cheap.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from langchain_tokenopt.stores import RedisStore, SQLiteStore

PROCESSES = 4
ADDS_PER_PROCESS = 500
LIMIT = 1000  # half of what the processes try to add in total
REPO_ROOT = Path(__file__).resolve().parents[3]

# A child: open the store, say "ready", wait for "go" on stdin (so all children add at
# the same time), add 1 to "counter" many times, print how many adds were accepted.
CHILD = """
import sys
from langchain_tokenopt.stores import RedisStore, SQLiteStore

kind, where, limit_text, adds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
store = SQLiteStore(where) if kind == "sqlite" else RedisStore(where)
limit = int(limit_text) if limit_text else None
print("ready", flush=True)
sys.stdin.readline()
accepted = sum(store.add("counter", 1, max_value=limit) is not None for _ in range(adds))
store.close()
print(accepted, flush=True)
"""


def run_adding_processes(kind: str, where: str, max_value: int | None) -> list[int]:
    """Start the children, release them together, return each one's accepted adds."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), *sys.path])}
    argv = [kind, where, "" if max_value is None else str(max_value), str(ADDS_PER_PROCESS)]
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(PROCESSES)
    ]
    try:
        for child in children:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready"
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        outputs = [child.communicate(timeout=120)[0] for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    assert [child.returncode for child in children] == [0] * PROCESSES
    return [int(output.strip()) for output in outputs]


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def shared_store(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """(kind, where): a store location several processes can open."""
    if request.param == "sqlite":
        path = tmp_path / "shared.db"
        SQLiteStore(path).close()  # create the file, its WAL mode and its table up front
        return "sqlite", str(path)
    request.getfixturevalue("redis_client")  # flushed
    return "redis", str(request.getfixturevalue("redis_url"))


def open_store(kind: str, where: str) -> SQLiteStore | RedisStore:
    return SQLiteStore(where) if kind == "sqlite" else RedisStore(where)


def test_concurrent_adds_from_four_processes_give_the_exact_total(
    shared_store: tuple[str, str],
) -> None:
    kind, where = shared_store
    accepted = run_adding_processes(kind, where, max_value=None)
    assert accepted == [ADDS_PER_PROCESS] * PROCESSES
    assert open_store(kind, where).get("counter") == PROCESSES * ADDS_PER_PROCESS


def test_capped_adds_from_four_processes_never_exceed_the_limit(
    shared_store: tuple[str, str],
) -> None:
    kind, where = shared_store
    accepted = run_adding_processes(kind, where, max_value=LIMIT)
    assert sum(accepted) == LIMIT
    assert open_store(kind, where).get("counter") == LIMIT
