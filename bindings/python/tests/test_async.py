"""AsyncClient under concurrency, and cancellation."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import quiver
from conftest import Target
from support import async_test, await_until


@async_test
async def test_1000_concurrent_requests(target: Target) -> None:
    """`asyncio.gather` of 1,000 requests on one client: every response is the right one."""
    n = 1000
    async with quiver.AsyncClient(checkout_timeout=30, **target.options) as client:
        responses = await asyncio.gather(*(client.get(target.url(f"/headers?i={i}")) for i in range(n)))
        assert [r.status_code for r in responses] == [200] * n
        assert [r.json()["query"] for r in responses] == [f"i={i}" for i in range(n)]
        assert {r.http_version for r in responses} == {target.version}
        stats = client.stats()["origins"][target.origin]
        assert stats["requests"] >= n
        assert stats["errors"] == 0
        assert stats["active"] == 0 and stats["queued"] == 0


@async_test
async def test_event_loop_is_never_blocked(h1: Target) -> None:
    """While a slow request is in flight, the loop keeps running other tasks."""
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    async with quiver.AsyncClient() as client:
        t = asyncio.ensure_future(ticker())
        r = await client.get(h1.url("/slow/500"))
        t.cancel()
    assert r.text == "slow"
    assert ticks >= 20


@pytest.mark.parametrize("name", ["http1", "h2c"])
@async_test
async def test_cancellation_cancels_the_request(server: dict, name: str) -> None:
    from conftest import make_target

    target = make_target(server, name)
    async with quiver.AsyncClient(**target.options) as client:
        assert (await client.get(target.url("/health"))).status_code == 200
        task = asyncio.ensure_future(client.get(target.url("/slow/5000")))
        await asyncio.sleep(0.2)
        assert client.stats()["origins"][target.origin]["active"] == 1
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - started < 0.5
        # the engine dropped the request: nothing stays active or queued on the pool
        origin = target.origin
        assert await await_until(lambda: client.stats()["origins"][origin]["active"] == 0)
        stats = client.stats()["origins"][origin]
        assert stats["queued"] == 0
        # and the pool still serves
        assert (await client.get(target.url("/health"))).status_code == 200


@async_test
async def test_wait_for_timeout_cancels(h1: Target) -> None:
    async with quiver.AsyncClient(pools={h1.base: {"size": 1}}) as client:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(client.get(h1.url("/slow/5000")), 0.2)
        # the only connection was freed (closed) rather than kept by the abandoned request
        r = await asyncio.wait_for(client.get(h1.url("/health")), 2.0)
        assert r.status_code == 200


@async_test
async def test_cancelled_stream_read(h1: Target) -> None:
    async with quiver.AsyncClient() as client:
        async with client.stream("GET", h1.url("/bytes/100000?delay_ms=200&chunk_size=1000")) as r:
            reader = r.aiter_bytes()
            first = await reader.__anext__()
            assert first
            pending = asyncio.ensure_future(reader.__anext__())
            await asyncio.sleep(0.05)
            pending.cancel()
            with pytest.raises(asyncio.CancelledError):
                await pending
        origin = h1.origin
        assert await await_until(lambda: client.stats()["origins"][origin]["active"] == 0)


@async_test
async def test_cancelled_reads_lose_no_bytes(h1: Target) -> None:
    """A read given up (asyncio.wait_for's timeout) takes nothing: the next read gets the bytes,
    in order, and is not refused as a second read in progress."""
    from quiver._client import _call

    url = h1.url("/bytes/20000?chunk_size=1000&delay_ms=20")
    async with quiver.AsyncClient() as client:
        whole = (await client.get(url)).content
        async with client.stream("GET", url) as r:
            stream = r._stream_or_fail()
            got, timeouts = bytearray(), 0
            while True:
                try:
                    chunk = await asyncio.wait_for(_call(stream.read_async), 0.005)
                except asyncio.TimeoutError:
                    timeouts += 1
                    # Bytes arrive while no read is waiting: they must stay for the next one.
                    await asyncio.sleep(0.03)
                    continue
                if chunk is None:
                    break
                got += chunk
    assert timeouts > 0
    assert bytes(got) == whole


def test_async_client_made_outside_a_loop_and_used_in_several(h1: Target) -> None:
    client = quiver.AsyncClient()

    async def one() -> int:
        return (await client.get(h1.url("/health"))).status_code

    assert asyncio.run(one()) == 200
    assert asyncio.run(one()) == 200
    results = []

    def in_thread() -> None:
        results.append(asyncio.run(one()))

    threads = [threading.Thread(target=in_thread) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 4


def test_loop_without_readers_is_woken_threadsafe(h1: Target) -> None:
    """A loop that cannot watch descriptors (like Windows' proactor) gets results through
    call_soon_threadsafe instead."""

    class NoReaderLoop(asyncio.SelectorEventLoop):
        def add_reader(self, *args: object, **kwargs: object) -> None:
            raise NotImplementedError

    async def main() -> list:
        async with quiver.AsyncClient() as client:
            rs = await asyncio.gather(*(client.get(h1.url("/health")) for _ in range(50)))
            async with client.stream("GET", h1.url("/bytes/300000")) as r:
                body = await r.aread()
            return [r.status_code for r in rs] + [len(body)]

    loop = NoReaderLoop()
    try:
        assert loop.run_until_complete(asyncio.wait_for(main(), 30)) == [200] * 50 + [300000]
    finally:
        loop.close()
