"""Logging that does not flood: messages logged once per process, and outage warnings
rate-limited per object (a store that is down fails every call; one warning says so)."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

_logged_once: set[str] = set()
_logged_once_lock = threading.Lock()


def log_once(logger: logging.Logger, key: str, level: int, message: str, *args: Any) -> None:
    """Log `message` the first time `key` is seen in this process, never again."""
    with _logged_once_lock:
        if key in _logged_once:
            return
        _logged_once.add(key)
    logger.log(level, message, *args)


class OutageLog:
    """Warns about a failing dependency at most once per `interval_seconds`.

    The next warning after a quiet interval counts the failures it did not log;
    `answered()` ends the outage with an INFO saying how many calls failed, if a
    warning went out since the last INFO. A success does not restart the interval: a
    partial outage (one master of a Redis Cluster down, its calls failing between the
    others' successes) still warns at most once per interval.
    Not thread-safe on its own: callers hold their own lock around it.

    Example:
        >>> log = OutageLog(logging.getLogger("demo"), "Store", interval_seconds=30)
        >>> log.failed("could not read (down)"), log.failed("could not read (down)")
        (True, False)
        >>> log.answered()
        2
    """

    def __init__(self, logger: logging.Logger, what: str, *, interval_seconds: float) -> None:
        self.logger = logger
        self.what = what
        self.interval_seconds = interval_seconds
        self.failures = 0
        self._suppressed = 0
        self._warned_at: float | None = None
        self._unresolved = False  # a warning went out and no INFO followed it yet

    def failed(self, message: str) -> bool:
        """Count a failure; log `message` as a warning unless one was logged recently.

        Returns whether it logged.
        """
        self.failures += 1
        now = time.monotonic()
        if self._warned_at is not None and now - self._warned_at < self.interval_seconds:
            self._suppressed += 1
            return False
        suppressed, self._suppressed = self._suppressed, 0
        self._warned_at = now
        self._unresolved = True
        note = f" {suppressed} failures since the previous warning were not logged."
        self.logger.warning("%s%s", message, note if suppressed else "")
        return True

    def answered(self) -> int:
        """End an outage, if one was going on; returns how many calls had failed."""
        failures, self.failures = self.failures, 0
        if failures and self._unresolved:
            self._unresolved = False
            self.logger.info("%s answers again after %d failed calls.", self.what, failures)
        return failures
