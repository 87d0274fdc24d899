"""RFC 9297 datagram channels over HTTP/3 (/datagram-echo on the test server's h3 port)."""

from __future__ import annotations

import asyncio
import threading
from typing import Set

import pytest

import quiver
from conftest import Target
from support import async_test

SENT = [b"datagram-%03d" % i for i in range(100)]


def warm_up(client: quiver.Client, target: Target) -> None:
    """Core checks the peer's SETTINGS_H3_DATAGRAM when the CONNECT's response arrives; on a
    brand-new connection the control stream's SETTINGS can be processed after it (a race in
    quiver-core reported as `datagrams_disabled`). A request first settles the connection."""
    assert client.get(target.url("/health")).status_code == 200


async def async_warm_up(client: quiver.AsyncClient, target: Target) -> None:
    assert (await client.get(target.url("/health"))).status_code == 200


def test_datagram_echo(h3: Target) -> None:
    with quiver.Client(**h3.options) as client:
        warm_up(client, h3)
        ch = client.open_datagram_channel(h3.url("/datagram-echo"))
        with ch:
            assert ch.status_code == 200
            assert ch.http_version == "HTTP/3"
            assert ch.headers.get("capsule-protocol") == "?1"
            assert ch.max_datagram_size and ch.max_datagram_size > 100
            assert ch.recv_data(timeout=5) == b"echo ready"
            for d in SENT:
                ch.send(d)
            received: Set[bytes] = set()
            try:
                while len(received) < len(SENT):
                    d = ch.recv(timeout=1.0)
                    assert d is not None
                    received.add(d)
            except TimeoutError:
                pass  # datagrams are unreliable: some may be lost
            assert received, "no datagram came back"
            assert received <= set(SENT)  # intact
            ch.close()
            while ch.recv(timeout=5) is not None:
                pass
            assert ch.is_ended
            assert ch.trailers is not None
            assert int(ch.trailers["x-datagrams-echoed"]) >= len(received)
        with pytest.raises(quiver.QuiverError) as info:
            ch.send(b"after close")
        assert info.value.kind == "datagram_error"


def test_send_while_another_thread_receives(h3: Target) -> None:
    with quiver.Client(**h3.options) as client:
        warm_up(client, h3)
        with client.open_datagram_channel(h3.url("/datagram-echo")) as ch:
            got = []
            t = threading.Thread(target=lambda: got.append(ch.recv(timeout=5)))
            t.start()
            for _ in range(20):
                ch.send(b"ping")
                if not t.is_alive():
                    break
                t.join(0.1)
            t.join()
            assert got == [b"ping"]


def test_datagram_too_large(h3: Target) -> None:
    with quiver.Client(**h3.options) as client:
        warm_up(client, h3)
        with client.open_datagram_channel(h3.url("/datagram-echo")) as ch:
            assert ch.max_datagram_size is not None
            with pytest.raises(quiver.InvalidError) as info:
                ch.send(b"x" * 65536)  # more than any UDP datagram
            assert info.value.kind == "datagram_too_large"


def test_channels_need_http3(h1: Target) -> None:
    with quiver.Client() as client:
        with pytest.raises(quiver.InvalidError) as info:
            client.open_datagram_channel(h1.url("/datagram-echo"))
        assert info.value.kind == "pool_unsupported_for_transport"


@async_test
async def test_async_datagram_echo(h3: Target) -> None:
    async with quiver.AsyncClient(**h3.options) as client:
        await async_warm_up(client, h3)
        async with await client.open_datagram_channel(h3.url("/datagram-echo")) as ch:
            assert ch.status_code == 200
            assert await ch.recv_data() == b"echo ready"
            received: Set[bytes] = set()

            async def receive() -> None:
                async for d in ch:
                    received.add(d)
                    if len(received) == len(SENT):
                        return

            receiver = asyncio.ensure_future(receive())
            for d in SENT:
                await ch.send(d)
            try:
                await asyncio.wait_for(asyncio.shield(receiver), 2.0)
            except asyncio.TimeoutError:
                pass
            receiver.cancel()
            assert received and received <= set(SENT)
            # a cancelled recv loses nothing: the next datagram still arrives
            await ch.send(b"after-cancel")
            while True:
                d = await asyncio.wait_for(ch.recv(), 5.0)
                if d == b"after-cancel":
                    break
            await ch.close()
            while await asyncio.wait_for(ch.recv(), 5.0) is not None:
                pass
            assert ch.is_ended
            assert ch.trailers is not None and "x-datagrams-echoed" in ch.trailers
