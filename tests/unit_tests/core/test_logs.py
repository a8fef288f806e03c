"""`OutageLog`: one warning per interval, also when successes come between the failures."""

from __future__ import annotations

import logging

import pytest

from langchain_tokenopt.core.logs import OutageLog

LOGGER = "tests.outage"


def warnings_and_infos(caplog: pytest.LogCaptureFixture) -> tuple[int, int]:
    records = [r for r in caplog.records if r.name == LOGGER]
    return (
        sum(r.levelno == logging.WARNING for r in records),
        sum(r.levelno == logging.INFO for r in records),
    )


def test_a_partial_outage_warns_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    """One master of a cluster down: its calls fail between the others' successes."""
    log = OutageLog(logging.getLogger(LOGGER), "Store", interval_seconds=3600)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        for _ in range(20):
            log.failed("could not read (down)")
            log.answered()
    assert warnings_and_infos(caplog) == (1, 1)


def test_a_failure_after_the_interval_warns_again_and_counts_the_quiet_ones(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = OutageLog(logging.getLogger(LOGGER), "Store", interval_seconds=0)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        assert log.failed("down") is True
        assert log.answered() == 1
        assert log.failed("down again") is True
    assert warnings_and_infos(caplog) == (2, 1)
