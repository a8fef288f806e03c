"""`TokenOptCache(semantic=True)` on a SQLite file: LangChain's standard suites, and a
second process that answers rewordings from the file it did not write."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.caches import BaseCache
from langchain_core.load import dumps
from langchain_core.messages import HumanMessage
from langchain_core.outputs import Generation
from langchain_tests.integration_tests.cache import SyncCacheTestSuite

from langchain_tokenopt.cache.llm_cache import TokenOptCache


class TestSQLiteWordingSync(SyncCacheTestSuite):
    @pytest.fixture
    def cache(self, tmp_path: Path) -> Iterator[BaseCache]:
        yield TokenOptCache.sqlite(str(tmp_path / "c.db"), semantic=True, max_entries=100)


READER = """
import sys
from langchain_core.load import dumps
from langchain_core.messages import HumanMessage
from langchain_tokenopt.cache.llm_cache import TokenOptCache

cache = TokenOptCache.sqlite(sys.argv[1], semantic=True)
for text in sys.argv[2:]:
    found = cache.lookup(dumps([HumanMessage(text)]), "llm")
    print(None if found is None else found[0].text)
"""


def test_another_process_answers_rewordings_from_the_file(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    writer = TokenOptCache.sqlite(path, semantic=True)
    writer.update(
        dumps([HumanMessage("Can I take ibuprofen with alcohol?")]),
        "llm",
        [Generation(text="ask a pharmacist")],
    )
    asked = [
        "can i take ibuprofen with alcohol",
        "Please, can I take ibuprofen with alcohol??",
        "can i take acetaminophen with alcohol",
    ]
    done = subprocess.run(
        [sys.executable, "-c", READER, path, *asked], capture_output=True, text=True, check=True
    )
    assert done.stdout.splitlines() == ["ask a pharmacist", "ask a pharmacist", "None"]
