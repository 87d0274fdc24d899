"""Requests and responses over every protocol: methods, headers, bodies, params, JSON,
trailers, streamed responses and streamed uploads (blocking and asyncio)."""

from __future__ import annotations

import asyncio
import io
from typing import AsyncIterator, Iterator

import pytest

import quiver
from conftest import Target
from support import async_test, pattern

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def test_get(target: Target) -> None:
    with quiver.Client(**target.options) as client:
        r = client.get(target.url("/health"))
    assert r.status_code == 200
    assert r.http_version == target.version
    assert r.content == b"ok"
    assert r.text == "ok"
    assert r.url == target.url("/health")
    assert r.is_success and not r.is_error
    assert r.reason_phrase == "OK"


def test_every_method(target: Target) -> None:
    with quiver.Client(**target.options) as client:
        calls = {
            "GET": client.get,
            "POST": client.post,
            "PUT": client.put,
            "PATCH": client.patch,
            "DELETE": client.delete,
            "OPTIONS": client.options,
        }
        for method, call in calls.items():
            r = call(target.url("/headers"))
            assert r.status_code == 200, method
            assert r.json()["method"] == method
            assert client.request(method, target.url("/headers")).json()["method"] == method
        r = client.head(target.url("/bytes/100"))
        assert r.status_code == 200
        assert r.content == b""
        assert r.headers["content-length"] == "100"
        r = client.request("PURGE", target.url("/headers"))
        assert r.json()["method"] == "PURGE"


def test_request_headers_multi_valued_and_case_insensitive(target: Target) -> None:
    with quiver.Client(headers={"X-Default": "d", "X-Replaced": "old"}, **target.options) as client:
        r = client.get(
            target.url("/headers"),
            headers=[("X-Multi", "one"), ("x-multi", "two"), ("X-Replaced", "new"), (b"X-Bytes", b"raw")],
        )
    sent = r.json()["headers"]
    assert ["x-multi", "one"] in sent and ["x-multi", "two"] in sent
    assert ["x-default", "d"] in sent
    assert ["x-replaced", "new"] in sent and ["x-replaced", "old"] not in sent
    assert ["x-bytes", "raw"] in sent
    # response headers: case-insensitive lookups
    assert r.headers["Content-Type"] == "application/json"
    assert "X-CONN-ID" in r.headers
    assert r.headers.get("x-missing") is None
    assert r.headers.get_list("content-type") == ["application/json"]
    assert int(r.headers["x-conn-requests"]) >= 1


def test_headers_class() -> None:
    h = quiver.Headers([("Set-Cookie", "a=1"), ("set-cookie", "b=2"), ("Content-Type", "text/plain")])
    assert h["SET-COOKIE"] == "a=1, b=2"
    assert h.get_list("set-cookie") == ["a=1", "b=2"]
    assert h.get("content-type") == "text/plain"
    assert h.get("nope", "x") == "x"
    assert "content-TYPE" in h and "nope" not in h
    assert list(h) == ["set-cookie", "content-type"]
    assert len(h) == 2
    assert dict(h.items()) == {"set-cookie": "a=1, b=2", "content-type": "text/plain"}
    assert h.multi_items() == [("Set-Cookie", "a=1"), ("set-cookie", "b=2"), ("Content-Type", "text/plain")]
    with pytest.raises(KeyError):
        h["nope"]
    h["Set-Cookie"] = "c=3"
    assert h.get_list("set-cookie") == ["c=3"]
    del h["content-type"]
    assert "content-type" not in h
    assert quiver.Headers({"A": "1"}) == {"a": "1"}


def test_params(target: Target) -> None:
    with quiver.Client(**target.options) as client:
        r = client.get(target.url("/headers?x=1"), params={"q": "a b", "multi": ["1", "2"], "flag": True})
    assert r.json()["query"] == "x=1&q=a+b&multi=1&multi=2&flag=true"


def test_bodies(target: Target) -> None:
    with quiver.Client(**target.options) as client:
        assert client.post(target.url("/echo"), content=b"bytes").content == b"bytes"
        assert client.post(target.url("/echo"), content="str \u00e9").content == "str \u00e9".encode()
        assert client.post(target.url("/echo"), content=bytearray(b"ba")).content == b"ba"
        assert client.post(target.url("/echo"), content=memoryview(b"mv")).content == b"mv"
        assert client.put(target.url("/echo"), content=[b"li", b"st"]).content == b"list"
        assert client.post(target.url("/echo"), content=(c for c in [b"ge", "n", bytearray(b"!")])).content == b"gen!"
        assert client.post(target.url("/echo"), content=io.BytesIO(b"file" * 40000)).content == b"file" * 40000
        r = client.post(target.url("/echo"), data={"a": "1", "b": ["x", "y"]})
        assert r.content == b"a=1&b=x&b=y"
        assert r.headers["content-type"] == "application/x-www-form-urlencoded"
        r = client.post(target.url("/echo"), content=b"")
        assert r.content == b""


def test_json(target: Target) -> None:
    doc = {"name": "quiver", "n": [1, 2.5, None, True], "nested": {"\u00e9": "\u2713"}}
    with quiver.Client(**target.options) as client:
        r = client.post(target.url("/echo"), json=doc)
        assert r.headers["content-type"] == "application/json"
        assert r.json() == doc
        assert client.get(target.url("/headers")).json()["path"] == "/headers"
        with pytest.raises(TypeError):
            client.post(target.url("/echo"), json=doc, content=b"x")


def test_trailers(target: Target) -> None:
    # HTTP/1.1 servers (hyper) only send trailers to a client that says it accepts them.
    headers = {"te": "trailers"} if target.version == "HTTP/1.1" else None
    with quiver.Client(**target.options) as client:
        r = client.get(target.url("/trailers"), headers=headers)
        assert r.text == "hello trailers"
        assert r.trailers["x-trailer-one"] == "1"
        assert r.trailers["X-Trailer-Two"] == "2"
        assert client.get(target.url("/health")).trailers == quiver.Headers()
        with client.stream("GET", target.url("/trailers"), headers=headers) as s:
            assert s.read() == b"hello trailers"
            assert s.trailers.get("x-trailer-one") == "1"


def test_stream_big_body(target: Target) -> None:
    n = 6 * 1024 * 1024 + 7
    with quiver.Client(**target.options) as client:
        with client.stream("GET", target.url(f"/bytes/{n}")) as r:
            assert r.status_code == 200
            assert r.headers["content-length"] == str(n)
            with pytest.raises(RuntimeError):
                _ = r.content
            received = bytearray()
            chunks = 0
            for chunk in r.iter_bytes():
                received += chunk
                chunks += 1
            assert r.is_closed
        assert len(received) == n
        assert bytes(received) == pattern(n)
        assert chunks > 1
        # the connection (or stream slot) went back to the pool
        assert client.stats()["origins"][target.origin]["active"] == 0


def test_stream_read_and_lines(target: Target) -> None:
    with quiver.Client(**target.options) as client:
        with client.stream("POST", target.url("/echo"), content=[b"one\ntw", b"o\r\nthree\r", b"\nfour"]) as r:
            assert list(r.iter_lines()) == ["one", "two", "three", "four"]
        with client.stream("GET", target.url("/bytes/100000?chunked=1&chunk_size=1000")) as r:
            assert r.read() == pattern(100000)
            assert r.content == pattern(100000)
        with client.stream("GET", target.url("/bytes/10")) as r:
            assert "".join(r.iter_text()) == "abcdefghij"


def test_stream_closed_early_releases(target: Target) -> None:
    with quiver.Client(**target.options) as client:
        with client.stream("GET", target.url("/bytes/50000000")) as r:
            first = next(r.iter_bytes())
            assert first == pattern(len(first))
        assert r.is_closed
        with pytest.raises(RuntimeError):
            r.read()
        stats = client.stats()["origins"][target.origin]
        assert stats["active"] == 0
        assert client.get(target.url("/health")).status_code == 200


def test_streamed_upload(target: Target) -> None:
    chunk = pattern(65536)
    count = 64

    def chunks() -> Iterator[bytes]:
        for _ in range(count):
            yield chunk

    with quiver.Client(**target.options) as client:
        r = client.post(target.url("/echo"), content=chunks())
        assert len(r.content) == count * len(chunk)
        assert r.content == chunk * count
        r = client.post(target.url("/sink"), content=chunks())
        assert r.json() == {"received": count * len(chunk)}


def test_body_iterator_error_fails_request(h1: Target) -> None:
    def broken() -> Iterator[bytes]:
        yield b"part"
        raise ValueError("generator broke")

    with quiver.Client() as client:
        with pytest.raises(quiver.TransientError) as info:
            client.post(h1.url("/sink"), content=broken())
        assert info.value.kind == "body_stream"
        assert "generator broke" in info.value.message
        with pytest.raises(quiver.TransientError) as info:
            client.post(h1.url("/sink"), content=[b"ok", 42])
        assert info.value.kind == "body_stream"
        assert isinstance(info.value.__cause__, TypeError)
        with pytest.raises(TypeError):
            client.post(h1.url("/sink"), content=42)  # type: ignore[arg-type]


# -- asyncio --------------------------------------------------------------------------------


@async_test
async def test_async_methods_and_bodies(target: Target) -> None:
    async def agen() -> AsyncIterator[bytes]:
        for part in (b"as", b"ync", b"!"):
            await asyncio.sleep(0.001)
            yield part

    async with quiver.AsyncClient(**target.options) as client:
        r = await client.get(target.url("/health"))
        assert (r.status_code, r.http_version, r.text) == (200, target.version, "ok")
        for method, call in [
            ("GET", client.get),
            ("POST", client.post),
            ("PUT", client.put),
            ("PATCH", client.patch),
            ("DELETE", client.delete),
            ("OPTIONS", client.options),
        ]:
            assert (await call(target.url("/headers"))).json()["method"] == method
        assert (await client.head(target.url("/bytes/5"))).content == b""
        assert (await client.post(target.url("/echo"), content=agen())).content == b"async!"
        assert (await client.post(target.url("/echo"), content=[b"s", b"ync"])).content == b"sync"
        assert (await client.post(target.url("/echo"), content="text")).content == b"text"
        assert (await client.post(target.url("/echo"), json={"a": [1]})).json() == {"a": [1]}
        r = await client.get(target.url("/headers"), params={"k": "v"}, headers={"X-A": "b"})
        assert r.json()["query"] == "k=v"
        assert ["x-a", "b"] in r.json()["headers"]
        headers = {"te": "trailers"} if target.version == "HTTP/1.1" else None
        r = await client.get(target.url("/trailers"), headers=headers)
        assert r.trailers["x-trailer-two"] == "2"


@async_test
async def test_async_stream(target: Target) -> None:
    n = 6 * 1024 * 1024 + 3
    async with quiver.AsyncClient(**target.options) as client:
        async with client.stream("GET", target.url(f"/bytes/{n}")) as r:
            assert r.status_code == 200
            received = bytearray()
            async for chunk in r.aiter_bytes():
                received += chunk
        assert bytes(received) == pattern(n)
        async with client.stream("POST", target.url("/echo"), content=b"a\nb\r\nc") as r:
            assert [line async for line in r.aiter_lines()] == ["a", "b", "c"]
        async with client.stream("GET", target.url("/bytes/1000")) as r:
            assert await r.aread() == pattern(1000)
        headers = {"te": "trailers"} if target.version == "HTTP/1.1" else None
        async with client.stream("GET", target.url("/trailers"), headers=headers) as r:
            assert await r.aread() == b"hello trailers"
            assert r.trailers["x-trailer-one"] == "1"
        assert client.stats()["origins"][target.origin]["active"] == 0


@async_test
async def test_async_streamed_upload(target: Target) -> None:
    chunk = pattern(65536)
    count = 64

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(count):
            if i % 8 == 0:
                await asyncio.sleep(0)
            yield chunk

    async with quiver.AsyncClient(**target.options) as client:
        r = await client.post(target.url("/echo"), content=chunks())
        assert r.content == chunk * count
        r = await client.post(target.url("/sink"), content=chunks())
        assert r.json() == {"received": count * len(chunk)}


@pytest.mark.parametrize("kind", ["async", "sync"])
@async_test
async def test_upload_is_pulled_only_as_sent(h1: Target, kind: str) -> None:
    """Backpressure: a body iterator is pulled only when the connection can send, so an endless
    body to a slow reader stays a bounded number of chunks ahead of it."""
    chunk = b"x" * 65536
    pulled = 0

    async def endless_async() -> AsyncIterator[bytes]:
        nonlocal pulled
        while True:
            pulled += 1
            yield chunk

    def endless_sync() -> Iterator[bytes]:
        nonlocal pulled
        while True:
            pulled += 1
            yield chunk

    body = endless_async() if kind == "async" else endless_sync()
    async with quiver.AsyncClient() as client:
        task = asyncio.ensure_future(client.post(h1.url("/slow-sink?chunk=4096&delay_ms=10"), content=body))
        await asyncio.sleep(1.0)
        at_one_second = pulled
        await asyncio.sleep(0.5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    # The server read ~400 KiB/s; an eager reader would have pulled gigabytes by now. What is
    # ahead is bounded by socket buffers (a few MiB on loopback).
    assert 0 < at_one_second * len(chunk) < 64 * 1024 * 1024, at_one_second


def test_http3_early_data_options(h3: Target) -> None:
    with quiver.Client(early_data=True, **h3.options) as client:
        r = client.get(h3.url("/early"))
        assert r.http_version == "HTTP/3"
        assert isinstance(r.json()["early"], bool)
        assert client.get(h3.url("/early"), early_data=False).json() == {"early": False}
        assert client.post(h3.url("/echo"), content=b"x", early_data=True).content == b"x"


@async_test
async def test_async_body_iterator_error_is_the_cause(h1: Target) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"part"
        raise ValueError("async generator broke")

    async with quiver.AsyncClient() as client:
        with pytest.raises(quiver.TransientError) as info:
            await client.post(h1.url("/sink"), content=broken())
    assert info.value.kind == "body_stream"
    assert isinstance(info.value.__cause__, ValueError)
    assert "async generator broke" in info.value.message


def test_base_url(h1: Target) -> None:
    with quiver.Client(base_url=h1.base + "/") as client:
        assert client.get("/health").text == "ok"
        assert client.get("headers", params={"a": "1"}).json()["path"] == "/headers"
        assert client.get(h1.url("/health")).text == "ok"  # absolute URLs are used as given
