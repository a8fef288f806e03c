"""The headless browser the HTML report tests open their pages in (tests/support/browser.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.browser import chromium_driver


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """One headless Chromium for the session; quit at the end."""
    driver = chromium_driver()
    try:
        yield driver
    finally:
        driver.quit()
