"""A real headless Chromium (Debian's `chromium` and `chromedriver`) driven by Selenium.

`chromium_driver()` starts one; `open_page(driver, path)` loads a file and returns the
SEVERE entries of the browser console. Selenium Manager never runs: the driver and the
browser are given by path (browser builds cannot be downloaded here). Without them the
tests skip on a developer's machine and fail under CI (env CI set), where `.ci/run`
installs both.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, NoReturn

import pytest

MISSING_BROWSER_REASON = (
    "chromium or chromedriver not found: apt-get install chromium chromium-driver"
)


def browser_missing(reason: str) -> NoReturn:
    """Skip on a developer's machine; fail under CI, where the browser must be there."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this is a failure, not a skip)")
    pytest.skip(reason)


def _program(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    path = f"/usr/bin/{name}"
    return path if os.access(path, os.X_OK) else None


def chromium_driver() -> Any:
    """A headless Chromium under Selenium that records the browser console."""
    browser, driver_path = _program("chromium"), _program("chromedriver")
    if browser is None or driver_path is None:
        browser_missing(MISSING_BROWSER_REASON)
    # Selenium Manager is skipped when the driver path is given; these keep it offline
    # and quiet should a future Selenium consult it anyway.
    os.environ.setdefault("SE_OFFLINE", "true")
    os.environ.setdefault("SE_AVOID_STATS", "true")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in (
        "--headless=new",
        "--no-sandbox",  # the tests may run as root in a container
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,2000",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        return webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    except Exception as exc:  # a broken install: report it the same way as a missing one
        browser_missing(f"chromium did not start ({type(exc).__name__}: {exc})")


def open_page(driver: Any, path: Path) -> list[str]:
    """Load `path` and return the SEVERE console entries it caused (errors, failed loads)."""
    driver.get_log("browser")  # drop what earlier pages logged
    driver.get(path.resolve().as_uri())
    return [
        str(entry.get("message"))
        for entry in driver.get_log("browser")
        if entry.get("level") == "SEVERE"
    ]
