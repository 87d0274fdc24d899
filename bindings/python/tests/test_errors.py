"""Exceptions by class and kind, raise_for_status, and option validation at construction."""

from __future__ import annotations

import asyncio
import datetime
import pickle
import time
from pathlib import Path
from typing import Any, Dict

import pytest

import quiver
from conftest import Target, make_target
from support import async_test, free_port


def test_hierarchy() -> None:
    assert issubclass(quiver.TransientError, quiver.QuiverError)
    assert issubclass(quiver.InvalidError, quiver.QuiverError)
    assert issubclass(quiver.UnrecoverableError, quiver.QuiverError)
    assert issubclass(quiver.TimeoutError, quiver.TransientError)
    assert issubclass(quiver.TimeoutError, TimeoutError)
    assert not issubclass(quiver.HTTPStatusError, quiver.QuiverError)
    assert quiver.ERROR_KINDS["connect_refused"] == "transient"
    assert quiver.ERROR_KINDS["forked"] == "invalid"
    assert quiver.ERROR_KINDS["tls"] == "unrecoverable"
    e = quiver.TransientError("boom", "goaway")
    assert (str(e), e.kind, e.error_class, e.message) == ("goaway: boom", "goaway", "transient", "boom")
    back = pickle.loads(pickle.dumps(e))
    assert (type(back), back.kind, back.message) == (quiver.TransientError, "goaway", "boom")


def test_connect_refused() -> None:
    port = free_port()
    with quiver.Client() as client:
        with pytest.raises(quiver.TransientError) as info:
            client.get(f"http://127.0.0.1:{port}/")
    assert info.value.kind == "connect_refused"
    assert info.value.error_class == "transient"
    assert not isinstance(info.value, TimeoutError)


def test_invalid_input() -> None:
    with quiver.Client() as client:
        with pytest.raises(quiver.InvalidError) as info:
            client.get("http//no-scheme")
        assert info.value.kind == "invalid_url"
        with pytest.raises(quiver.InvalidError) as info:
            client.get("ftp://example.com/")
        assert info.value.kind == "invalid_scheme"
        with pytest.raises(quiver.InvalidError) as info:
            client.get("http://127.0.0.1:1/", headers={"x": "a\r\nb: c"})
        assert info.value.kind == "invalid_header"
        with pytest.raises(quiver.InvalidError) as info:
            client.request("GE T", "http://127.0.0.1:1/")
        assert info.value.kind == "invalid_method"


@pytest.mark.parametrize("name", ["https1", "h2", "h3"])
def test_wrong_ca_is_tls_error(server: Dict[str, Any], name: str) -> None:
    target = make_target(server, name)
    options = dict(target.options, ca_file=server["wrong_ca_file"])
    with quiver.Client(**options) as client:
        with pytest.raises(quiver.UnrecoverableError) as info:
            client.get(target.url("/health"))
    assert info.value.kind == "tls"


def test_mutual_tls(server: Dict[str, Any]) -> None:
    url = f"https://localhost:{server['mtls']}/health"
    with quiver.Client(ca_file=server["ca_file"], client_cert=(server["client_cert"], server["client_key"])) as c:
        assert c.get(url).text == "ok"
    with quiver.Client(
        ca_file=Path(server["ca_file"]), client_cert=Path(server["client_cert"]), client_key=server["client_key"]
    ) as c:
        assert c.get(url).text == "ok"
    with quiver.Client(ca_file=server["ca_file"]) as c:
        with pytest.raises(quiver.QuiverError):
            c.get(url)


def test_request_timeout(target: Target) -> None:
    with quiver.Client(**target.options) as client:
        started = time.monotonic()
        with pytest.raises(TimeoutError) as info:
            client.get(target.url("/slow/5000"), timeout=0.2)
        elapsed = time.monotonic() - started
        assert isinstance(info.value, quiver.TransientError)
        assert isinstance(info.value, quiver.TimeoutError)
        assert info.value.kind == "request_timeout"
        assert elapsed < 2.0
        # the client still works
        assert client.get(target.url("/health")).status_code == 200
    with quiver.Client(request_timeout=0.2, **target.options) as client:
        with pytest.raises(quiver.TimeoutError) as info:
            client.get(target.url("/slow/5000"))
        assert info.value.kind == "request_timeout"


@async_test
async def test_async_errors(h1: Target) -> None:
    async with quiver.AsyncClient() as client:
        with pytest.raises(quiver.TransientError) as info:
            await client.get(f"http://127.0.0.1:{free_port()}/")
        assert info.value.kind == "connect_refused"
        with pytest.raises(quiver.InvalidError) as info2:
            await client.get("http//bad")
        assert info2.value.kind == "invalid_url"
        with pytest.raises(TimeoutError) as info3:
            await client.get(h1.url("/slow/5000"), timeout=0.2)
        assert info3.value.kind == "request_timeout"  # type: ignore[attr-defined]


def test_per_request_read_timeout(target: Target) -> None:
    """read_timeout= overrides the pool's (30 s) for one request: waiting for the head, and
    between the chunks of a streamed body."""
    with quiver.Client(**target.options) as client:
        with pytest.raises(quiver.TimeoutError) as info:
            client.get(target.url("/slow/3000"), read_timeout=0.2)
        assert info.value.kind == "read_timeout"
        with pytest.raises(quiver.TimeoutError) as info:
            with client.stream("GET", target.url("/slow/3000"), read_timeout=0.2):
                pass
        assert info.value.kind == "read_timeout"
        # The body stalls 3 s after its first chunk.
        with client.stream("GET", target.url("/bytes/20?chunk_size=10&delay_ms=3000"), read_timeout=0.3) as r:
            with pytest.raises(quiver.TimeoutError) as info:
                r.read()
        assert info.value.kind == "read_timeout"
        # A request without one keeps the pool's.
        assert client.get(target.url("/slow/500")).status_code == 200
        assert client.get(target.url("/slow/500"), read_timeout=datetime.timedelta(seconds=20)).text == "slow"


@async_test
async def test_per_request_read_timeout_async(target: Target) -> None:
    async with quiver.AsyncClient(**target.options) as client:
        with pytest.raises(quiver.TimeoutError) as info:
            await client.get(target.url("/slow/3000"), read_timeout=0.2)
        assert info.value.kind == "read_timeout"
        with pytest.raises(quiver.TimeoutError) as info:
            async with client.stream("GET", target.url("/slow/3000"), read_timeout=0.2):
                pass
        assert info.value.kind == "read_timeout"
        assert (await client.get(target.url("/slow/300"), read_timeout=10)).text == "slow"


def test_per_request_checkout_timeout(h1: Target) -> None:
    """checkout_timeout= overrides the pool's (5 s): with size=1 and the one connection held by
    an unread streamed response (larger than the read-ahead), a request gives up after its own 0.2 s."""
    with quiver.Client(size=1) as client:
        with client.stream("GET", h1.url("/bytes/16000000")):
            started = time.monotonic()
            with pytest.raises(quiver.TimeoutError) as info:
                client.get(h1.url("/health"), checkout_timeout=0.2)
            assert info.value.kind == "checkout_timeout"
            assert time.monotonic() - started < 4.0
            with pytest.raises(quiver.TimeoutError) as info:
                with client.stream("GET", h1.url("/health"), checkout_timeout=0.2):
                    pass
            assert info.value.kind == "checkout_timeout"
        # The connection is free again.
        assert client.get(h1.url("/health"), checkout_timeout=5).status_code == 200


@async_test
async def test_per_request_checkout_timeout_async(h1: Target) -> None:
    async with quiver.AsyncClient(size=1) as client:
        async with client.stream("GET", h1.url("/bytes/16000000")):
            with pytest.raises(quiver.TimeoutError) as info:
                await client.get(h1.url("/health"), checkout_timeout=0.2)
            assert info.value.kind == "checkout_timeout"
        assert (await client.get(h1.url("/health"), checkout_timeout=5)).status_code == 200


def test_bad_per_request_timeouts_are_invalid_errors(h1: Target) -> None:
    with quiver.Client() as client:
        for name in ("read_timeout", "checkout_timeout"):
            for value in [0, -1.0, 1e19, float("nan")]:
                with pytest.raises(quiver.InvalidError) as info:
                    client.get(h1.url("/health"), **{name: value})
                assert info.value.kind == "invalid_config", (name, value)
                assert name.replace("_", " ") in str(info.value) or name in str(info.value)


def test_raise_for_status(h1: Target) -> None:
    with quiver.Client() as client:
        ok = client.get(h1.url("/status/204"))
        assert ok.raise_for_status() is ok
        r = client.get(h1.url("/status/404"))
        assert r.status_code == 404 and r.is_client_error
        with pytest.raises(quiver.HTTPStatusError) as info:
            r.raise_for_status()
        assert info.value.response is r
        assert "404" in str(info.value)
        with pytest.raises(quiver.HTTPStatusError):
            client.get(h1.url("/status/503")).raise_for_status()


def test_closed_client(h1: Target) -> None:
    client = quiver.Client()
    client.close()
    assert client.is_closed
    with pytest.raises(quiver.QuiverError) as info:
        client.get(h1.url("/health"))
    assert info.value.kind == "shutdown"
    client.close()  # idempotent


@pytest.mark.parametrize("name", ["http1", "h2", "h3"])
def test_close_shuts_the_pools_down(server: Dict[str, Any], name: str) -> None:
    """`close()` closes every connection: a body being read fails with `shutdown` on every
    protocol (what was already read ahead is still delivered first)."""
    target = make_target(server, name)
    n = 20_000_000
    client = quiver.Client(**target.options)
    with client.stream("GET", target.url(f"/bytes/{n}")) as r:
        chunks = r.iter_bytes()
        received = len(next(chunks))
        client.close()
        with pytest.raises(quiver.TransientError) as info:
            for chunk in chunks:
                received += len(chunk)
        assert info.value.kind == "shutdown"
        assert received < n
    with pytest.raises(quiver.TransientError) as later:
        client.get(target.url("/health"))
    assert later.value.kind == "shutdown"
    assert client.stats()["origins"] == {}


@async_test
async def test_aclose_fails_requests_in_flight(server: Dict[str, Any]) -> None:
    target = make_target(server, "h2")
    client = quiver.AsyncClient(**target.options)
    pending = asyncio.ensure_future(client.get(target.url("/slow/5000")))
    await asyncio.sleep(0.3)
    started = time.monotonic()
    await client.aclose()
    with pytest.raises(quiver.TransientError) as info:
        await pending
    assert info.value.kind == "shutdown"
    assert time.monotonic() - started < 1


# -- options --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options, needle",
    [
        ({"size": 0}, "size"),
        ({"max_connections": 0}, "max_connections"),
        ({"stream_window": 10}, "stream_window"),
        ({"window_update_threshold": 2.0}, "window_update_threshold"),
        ({"protocol": "http9"}, "protocol"),
        ({"tls_roots": "nope"}, "tls_roots"),
        ({"connect_timeout": -1}, "connect_timeout"),
        ({"connect_timeout": "soon"}, "connect_timeout"),
        ({"connect_timeout": None}, "connect_timeout"),
        ({"checkout_timeout": 0}, "checkout_timeout"),
        ({"early_data": True}, "early_data"),
        ({"client_cert": "/tmp/cert.pem"}, "client_cert"),
        ({"no_such_option": 1}, "no_such_option"),
        ({"size": "ten"}, "size"),
        ({"size": object()}, "size"),
        ({"pools": {"https://*.example.com": {"checkout_timeout": "soon"}}}, "https://*.example.com"),
        ({"pools": {"https://*.example.com": {"size": 0}}}, "https://*.example.com"),
        ({"pools": {"http://plain.example.com": {"protocol": "http3"}}}, "protocol"),
        ({"pools": {"not a pattern": {"size": 1}}}, "not a pattern"),
        ({"pools": {"https://api.example.com": 5}}, "https://api.example.com"),
        ({"pools": ["x"]}, "pools"),
        ({"proxy": "socks4://127.0.0.1:1080"}, "proxy"),
        ({"proxy": "127.0.0.1:3128"}, "proxy"),
        ({"proxy_protocol": "http9"}, "proxy_protocol"),
        ({"proxy_protocol": "http3"}, "proxy_protocol"),
        ({"proxy_from_env": "yes"}, "proxy_from_env"),
        ({"proxy_authorization": 5}, "proxy_authorization"),
    ],
)
def test_bad_options_raise_at_construction(options: Dict[str, Any], needle: str) -> None:
    with pytest.raises(quiver.InvalidError) as info:
        quiver.Client(**options)
    assert info.value.kind == "invalid_config"
    assert needle in info.value.message
    with pytest.raises(quiver.InvalidError):
        quiver.AsyncClient(**options)


@pytest.mark.parametrize(
    "options",
    [
        {"request_timeout": 1e19},
        {"request_timeout": -1},
        {"request_timeout": float("nan")},
        {"connect_timeout": float("inf")},
        {"read_timeout": 1e300},
        {"size": 2**70},
        {"size": -1},
        {"max_response_headers": 2**40},
        {"window_update_threshold": float("inf")},
        {"stream_window": -5},
    ],
)
def test_extreme_options_are_invalid_errors(options: Dict[str, Any]) -> None:
    with pytest.raises(quiver.InvalidError) as info:
        quiver.Client(**options)
    assert info.value.kind == "invalid_config"


def test_extreme_request_timeouts_are_invalid_errors(h1: Target) -> None:
    with quiver.Client() as client:
        for timeout in [1e19, -1.0, float("nan"), float("inf")]:
            with pytest.raises(quiver.InvalidError) as info:
                client.get(h1.url("/health"), timeout=timeout)
            assert info.value.kind == "invalid_config", timeout
        assert client.get(h1.url("/health")).status_code == 200


def test_every_core_option_is_accepted_by_name() -> None:
    expected = {
        "protocol", "size", "max_connections", "initial_max_streams", "stream_window",
        "connection_window", "window_update_threshold", "ping_interval", "ping_timeout",
        "quic_idle_timeout", "early_data", "checkout_timeout", "idle_timeout", "connect_timeout",
        "read_timeout", "request_timeout", "ca_file", "client_cert", "client_key", "tls_roots",
        "danger_accept_invalid_certs", "proxy", "proxy_authorization", "proxy_protocol",
        "proxy_from_env", "max_response_headers", "max_response_body",
    }  # fmt: skip
    assert expected <= set(quiver.OPTION_NAMES)
    for name in quiver.OPTION_NAMES:
        # a value of the wrong type is refused as such, never as an unknown option
        with pytest.raises(quiver.InvalidError) as info:
            quiver.Client(**{name: object()})
        assert "unknown option" not in info.value.message, name


def test_typed_options_match_the_engine() -> None:
    """The typed surface (PoolOptions, the stubs' Client/AsyncClient keywords) lists exactly
    the engine's options, so a new core option is noticed here."""
    import ast

    engine = set(quiver.OPTION_NAMES)
    # httpx's `auth=` stands for basic_auth / digest_auth / bearer_token (client-wide and per rule).
    engine |= {"auth"}
    assert set(quiver.PoolOptions.__annotations__) == engine
    stub = ast.parse((Path(quiver.__file__).parent / "__init__.pyi").read_text())
    for node in stub.body:
        if isinstance(node, ast.ClassDef) and node.name in ("Client", "AsyncClient"):
            init = next(f for f in node.body if isinstance(f, ast.FunctionDef) and f.name == "__init__")
            keywords = {a.arg for a in init.args.kwonlyargs} - {
                "base_url",
                "headers",
                "pools",
                "event_hooks",
                "listeners",
            }
            assert keywords == engine, node.name


def test_good_options(h1: Target, server: Dict[str, Any]) -> None:
    import datetime

    options = dict(
        protocol="auto",
        size=2,
        max_connections=2,
        initial_max_streams=50,
        stream_window=1 << 20,
        connection_window=4 << 20,
        window_update_threshold=0.25,
        ping_interval=10,
        ping_timeout=2.5,
        quic_idle_timeout=datetime.timedelta(seconds=20),
        checkout_timeout=1,
        idle_timeout=5.0,
        connect_timeout=2,
        read_timeout=5,
        request_timeout=None,
        ca_file=server["ca_file"],
        tls_roots="system",
        danger_accept_invalid_certs=False,
        proxy=None,
        proxy_authorization=None,
        proxy_protocol="http2",
        proxy_from_env=False,
        pools={
            h1.base: {"size": 1, "checkout_timeout": 0.5, "proxy": "none"},
            "https://*.example.com": {"protocol": "http3", "early_data": True, "proxy_protocol": "http3"},
            "https://proxied.example.com": {"proxy": "http://user:pw@127.0.0.1:3128", "proxy_authorization": "Basic eA=="},
        },
    )
    with quiver.Client(**options) as client:
        assert client.get(h1.url("/health")).status_code == 200


def test_per_origin_rule_applies(h1: Target) -> None:
    # size 1 for this origin: a second request waits for the first one's connection and times out
    # (the body is larger than what a stream reads ahead, so the connection stays taken)
    with quiver.Client(pools={h1.base: {"size": 1, "checkout_timeout": 0.2}}) as client:
        with client.stream("GET", h1.url("/bytes/10000000")):
            with pytest.raises(quiver.TimeoutError) as info:
                client.get(h1.url("/health"))
            assert info.value.kind == "checkout_timeout"
        assert client.get(h1.url("/health")).status_code == 200
