"""Helpers shared by the tests (the asyncio harness: no plugin needed)."""

from __future__ import annotations

import asyncio
import functools
import socket
import time
from typing import Any, Awaitable, Callable, TypeVar

T = TypeVar("T")

ASYNC_TEST_TIMEOUT = 60.0


def async_test(fn: Callable[..., Awaitable[T]]) -> Callable[..., T]:
    """Runs an `async def` test in a fresh event loop (with an overall timeout)."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> T:
        async def bounded() -> T:
            return await asyncio.wait_for(fn(*args, **kwargs), ASYNC_TEST_TIMEOUT)

        return asyncio.run(bounded())

    return run


def pattern(n: int, start: int = 0) -> bytes:
    """The test server's /bytes/N body: byte i is b'a' + i % 26."""
    alphabet = bytes(range(ord("a"), ord("a") + 26))
    reps = (start + n) // 26 + 2
    return (alphabet * reps)[start % 26 : start % 26 + n]


def free_port() -> int:
    """A TCP port nothing listens on (bound and released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


async def await_until(check: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(0.02)
    return check()
