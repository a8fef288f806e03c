"""Run a call with a time limit, so a test of hostile input fails on a hang instead of
hanging itself."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

#: Seconds one hostile call may take before the test calls it a hang.
HANG_SECONDS = 30.0


def within(call: Callable[[], T], seconds: float = HANG_SECONDS) -> T:
    """`call()`'s result or exception, or AssertionError if it runs past `seconds`.

    The call runs in a daemon thread: a hung call is abandoned, not waited for.
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = call()
        except BaseException as exc:  # re-raised in the test's thread
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"no answer within {seconds:g}s (a hang)"
    if "error" in box:
        raise box["error"]
    return box["result"]  # type: ignore[no-any-return]
