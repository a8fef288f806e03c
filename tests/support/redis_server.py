"""A real redis-server on a free loopback port for the tests.

Fixture `redis_url` (session scope): `REDIS_URL` when set, else starts `redis-server`
(Debian package) on 127.0.0.1 with a free port and no persistence, and stops it at
the end. Without a redis-server binary the Redis tests skip with a reason saying how
to enable them, except under CI (env CI set), where it is a failure.
Fixture `redis_client` (function scope): a `redis.Redis` on `redis_url` (bytes replies), flushed
before each test.
Fixture `private_redis_server` (function scope): a throwaway `RedisServer` of the
test's own, for tests that stop, pause or kill the server.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

import pytest

MISSING_SERVER_REASON = "redis-server not found: apt-get install redis-server or set REDIS_URL"
_START_ATTEMPTS = 3
_READY_WITHIN_SECONDS = 10.0


def _missing(reason: str) -> NoReturn:
    """Skip on a developer's machine; fail under CI, where Redis must be there."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this is a failure, not a skip)")
    pytest.skip(reason)


def redis_server_binary() -> str | None:
    """Path of the redis-server program, or None."""
    found = shutil.which("redis-server")
    if found:
        return found
    return "/usr/bin/redis-server" if os.access("/usr/bin/redis-server", os.X_OK) else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_cluster_port() -> int:
    """A free port for a cluster node: redis-server also listens on port + 10000 (the
    cluster bus), so the port must be at most 55535 with that one free too (an ephemeral
    port from the OS can be higher)."""
    for _ in range(1000):
        port = int.from_bytes(os.urandom(2), "big") % (55535 - 20000) + 20000
        if _bindable(port) and _bindable(port + 10000):
            return port
    raise RuntimeError("no free port pair (port, port + 10000) below 55536 on 127.0.0.1")


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One redis-server process on 127.0.0.1, without persistence.

    Example::

        server = RedisServer(workdir=tmp_path)
        server.start()
        server.url  # 'redis://127.0.0.1:41234/0'
        server.stop()
    """

    def __init__(
        self,
        workdir: Path,
        binary: str | None = None,
        extra_args: Sequence[str] = (),
        pick_port: Callable[[], int] = _free_port,
    ) -> None:
        self.binary = binary or redis_server_binary() or "redis-server"
        self.workdir = workdir
        self.extra_args = tuple(extra_args)
        self.pick_port = pick_port
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, port: int | None = None) -> RedisServer:
        """Start the server (on `port`, else a free one) and wait until it answers PING."""
        log = self.workdir / "redis.log"
        for _ in range(_START_ATTEMPTS):  # a free port can be taken before we bind it
            self.port = port or self.pick_port()
            self.process = subprocess.Popen(
                [
                    self.binary,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(self.workdir),
                    "--logfile",
                    str(log),
                    *self.extra_args,
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + _READY_WITHIN_SECONDS
            while time.monotonic() < deadline and self.process.poll() is None:
                if _answers_ping(self.port):
                    return self
                time.sleep(0.02)  # readiness poll
            self.stop()
        detail = log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"
        raise RuntimeError(f"redis-server did not start on 127.0.0.1:\n{detail}")

    def pause(self) -> None:
        """Freeze the process (SIGSTOP): connections stay open, nothing answers."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Undo `pause`."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """Kill the process at once (SIGKILL), as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        """Stop the process if it runs (gracefully, then by force)."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGCONT)
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _require_binary() -> str:
    binary = redis_server_binary()
    if binary is None:
        _missing(MISSING_SERVER_REASON)
    return binary


def _require_redis_py() -> Any:
    try:
        import redis
    except ImportError:
        _missing("redis-py is not installed: pip install 'langchain-tokenopt[redis]'")
    return redis


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a Redis for the tests: REDIS_URL, or a redis-server started here."""
    given = os.environ.get("REDIS_URL")
    if given:
        yield given
        return
    server = RedisServer(tmp_path_factory.mktemp("redis"), _require_binary())
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[Any]:
    """A `redis.Redis` on `redis_url` (bytes replies), its database flushed first."""
    redis = _require_redis_py()
    client = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
    client.flushdb()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def private_redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A started redis-server of this test's own, stopped (if still alive) afterwards."""
    server = RedisServer(tmp_path, _require_binary())
    server.start()
    try:
        yield server
    finally:
        with contextlib.suppress(OSError):
            server.stop()
