"""Observability against the loopback test server: the engine's events as ``quiver.Event``
objects on the listener thread, httpx's event hooks, the ``quiver`` logger, ``response.timings``
and ``quiver.Progress``, with ``Client`` and ``AsyncClient``.

Where each event kind is seen: ``request_start``, ``queued``, ``connection_acquired``,
``headers_sent``, ``body_sent``, ``response_headers``, ``response_end``, ``dns_resolved``,
``connected``, ``connection_opened`` and ``connection_closed`` in the fresh/reused tests;
``tls_done`` over TLS and HTTP/2; ``retried`` with a server refusing every 5th stream;
``goaway`` with one sending GOAWAY after a stream; ``redirected`` on ``/redirect/2``;
``request_failed`` and ``connection_failed`` on a closed port and ``/close-mid-body``.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Set

import pytest

import quiver
from conftest import make_target, spawn_server
from support import async_test, free_port, wait_until

#: Generous: the machine running the tests may be loaded.
DELIVERY = 10.0


class Recorder:
    """A listener that keeps every event and the threads it was called on."""

    def __init__(self) -> None:
        self.events: List[quiver.Event] = []
        self.threads: Set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, event: quiver.Event) -> None:
        with self._lock:
            self.events.append(event)
            self.threads.add(threading.current_thread().name)

    def snapshot(self) -> List[quiver.Event]:
        with self._lock:
            return list(self.events)

    def take(self) -> List[quiver.Event]:
        with self._lock:
            out, self.events = self.events, []
            return out

    def until(self, done: Callable[[List[quiver.Event]], bool], timeout: float = DELIVERY) -> List[quiver.Event]:
        """The events once `done(events)` holds (they arrive on another thread)."""
        assert wait_until(lambda: done(self.snapshot()), timeout), [repr(e) for e in self.snapshot()]
        return self.snapshot()

#: A request's events on a new connection, in order; on a reused one (no wait for a connection).
FRESH = [
    "request_start",
    "queued",
    "connection_acquired",
    "headers_sent",
    "body_sent",
    "response_headers",
    "response_end",
]
REUSED = [name for name in FRESH if name != "queued"]


def names(events: List[quiver.Event]) -> List[str]:
    return [e.name for e in events]


def of_request(events: List[quiver.Event], request: Optional[int]) -> List[str]:
    return [e.name for e in events if e.request == request]


def ended(count: int = 1, opened: int = 0) -> Callable[[List[quiver.Event]], bool]:
    """Whether `count` requests ended (their body read, or failed) and `opened` connections
    opened. Events are ordered per request and per connection, not across: a connection's
    worker may report it open after a request on it already ended."""

    def done(events: List[quiver.Event]) -> bool:
        return (
            sum(e.name in ("response_end", "request_failed") for e in events) >= count
            and sum(e.name == "connection_opened" for e in events) >= opened
        )

    return done


def http(server: Dict[str, Any], path: str) -> str:
    return f"http://127.0.0.1:{server['http']}{path}"


def https(server: Dict[str, Any], path: str) -> str:
    return f"https://localhost:{server['https']}{path}"


def h2c(server: Dict[str, Any], path: str) -> str:
    return f"http://127.0.0.1:{server['h2c']}{path}"


def assert_plausible(t: quiver.Timings) -> None:
    assert t.queued >= 0 and t.redirects >= 0
    assert t.ttfb >= t.queued, t
    assert t.ttfb >= t.redirects, t
    for phase in (t.dns, t.connect, t.tls):
        assert phase is None or 0 <= phase <= t.ttfb, t
    assert t.ttfb < 30, t
    total = t.total
    assert total is not None and total >= t.ttfb, t


# -- events ----------------------------------------------------------------------------------


def test_a_fresh_then_a_reused_connection(server: Dict[str, Any]) -> None:
    rec = Recorder()
    before = time.monotonic()
    with quiver.Client(listeners=[rec]) as client:
        assert client.listeners == (rec,)
        r = client.post(http(server, "/echo"), content=b"hello")
        after = time.monotonic()
        assert r.text == "hello"
        events = rec.until(ended(opened=1))
        start = events[0]
        assert (start.name, start.method, start.url) == ("request_start", "POST", http(server, "/echo"))
        assert start.origin == f"http://127.0.0.1:{server['http']}"
        rid = start.request
        assert isinstance(rid, int)
        assert of_request(events, rid) == FRESH
        opened = next(e for e in events if e.name == "connection_opened")
        conn = opened.connection
        assert isinstance(conn, int)
        assert [e.name for e in events if e.request is None and e.connection == conn] == [
            "dns_resolved",
            "connected",
            "connection_opened",
        ]
        by_name = {e.name: e for e in events}
        assert by_name["connection_acquired"].reused is False
        assert by_name["body_sent"].bytes == 5
        assert by_name["response_headers"].status == 200
        assert by_name["response_end"].bytes == 5
        assert (by_name["dns_resolved"].addresses or 0) >= 1
        assert by_name["connected"].remote == ("127.0.0.1", server["http"])
        assert by_name["response_end"].protocol == "http1"
        assert by_name["response_end"].stream is None
        # Fields of other kinds are None.
        assert (start.status, start.bytes, start.error, start.reused) == (None, None, None, None)
        mine = [e for e in events if e.request == rid]
        assert all(e.connection == conn for e in mine[2:])
        # In order, on time.monotonic()'s clock.
        assert all(a.time <= b.time for a, b in zip(mine, mine[1:]))
        assert all(before - 0.01 <= e.time for e in events), (before, events)
        assert all(e.time <= after + 0.01 for e in mine), (after, mine)
        assert "request_start" in repr(start) and "POST" in repr(start)

        t = r.timings
        assert (t.reused, t.connection_id, t.protocol, t.stream) == (False, conn, "http1", None)
        assert t.dns is not None and t.connect is not None and t.tls is None
        assert t.remote == ("127.0.0.1", server["http"])
        assert (t.alpn, t.resumed) == (None, False)
        assert_plausible(t)

        # The same connection again: nothing dialed, reused.
        rec.take()
        r = client.get(http(server, "/bytes/100"))
        events = rec.until(ended())
        rid = events[0].request
        assert of_request(events, rid) == REUSED
        assert next(e for e in events if e.name == "connection_acquired").reused is True
        assert not any(e.name in ("dns_resolved", "connected", "connection_opened") for e in events)
        t = r.timings
        assert t.reused and t.dns is None and t.connect is None and t.tls is None
        assert t.connection_id == conn
        assert_plausible(t)
    # Closing the client closes the connection; the listener still hears it.
    rec.until(lambda ev: any(e.name == "connection_closed" and e.connection == conn for e in ev))
    closed = next(e for e in rec.snapshot() if e.name == "connection_closed")
    assert isinstance(closed.reason, str) and closed.reason
    # Delivered on the client's listener thread, which ends after the client closed.
    assert rec.threads == {"quiver-events"}
    thread = client._events._thread
    assert thread is not None
    thread.join(DELIVERY)
    assert not thread.is_alive()


def test_tls_and_http2_streams(server: Dict[str, Any]) -> None:
    rec = Recorder()
    with quiver.Client(ca_file=server["ca_file"], listeners=[rec]) as client:
        r = client.get(https(server, "/bytes/10"))
        events = rec.until(ended(opened=1))
        tls = next(e for e in events if e.name == "tls_done")
        assert (tls.alpn, tls.resumed) == ("h2", False)
        head = next(e for e in events if e.name == "response_headers")
        assert (head.stream, head.protocol) == (1, "http2")
        t = r.timings
        assert t.tls is not None and t.connect is not None and t.dns is not None
        assert (t.protocol, t.alpn, t.stream, t.reused) == ("http2", "h2", 1, False)
        assert t.remote is not None and t.remote[1] == server["https"]
        assert_plausible(t)
        # The next stream on the same connection.
        r = client.get(https(server, "/bytes/10"))
        t = r.timings
        assert (t.stream, t.reused, t.tls) == (3, True, None)
        assert_plausible(t)
    # HTTP/1.1 over TLS.
    rec = Recorder()
    with quiver.Client(ca_file=server["ca_file"], protocol="http1", listeners=[rec]) as client:
        r = client.get(https(server, "/bytes/10"))
        tls = next(e for e in rec.until(ended(opened=1)) if e.name == "tls_done")
        assert tls.alpn == "http/1.1"
        assert (r.timings.protocol, r.timings.alpn) == ("http1", "http/1.1")
        assert r.timings.tls is not None


def test_http3(server: Dict[str, Any]) -> None:
    target = make_target(server, "h3")
    rec = Recorder()
    with quiver.Client(listeners=[rec], **target.options) as client:
        r = client.get(target.url("/bytes/10"))
        events = rec.until(ended(opened=1))
        seen = names(events)
        for want in REUSED + ["dns_resolved", "connected", "connection_opened"]:
            assert want in seen, (want, seen)
        assert next(e for e in events if e.name == "response_headers").protocol == "http3"
        t = r.timings
        assert (t.protocol, t.alpn) == ("http3", "h3")
        assert t.connect is not None and t.stream is not None
        assert_plausible(t)


def test_a_refused_stream_is_retried_and_says_why() -> None:
    with spawn_server("--h2-refuse-every", "5") as refusing:
        rec = Recorder()
        with quiver.Client(protocol="http2", listeners=[rec]) as client:
            for _ in range(10):
                assert client.get(h2c(refusing, "/health")).text == "ok"
            events = rec.until(ended(10))
            retried = [e for e in events if e.name == "retried"]
            assert retried, names(events)
            assert {e.reason for e in retried} == {"refused_stream"}
            assert all(e.request is not None for e in retried)
            assert client.stats()["retries"] == len(retried)


def test_goaway_is_seen_on_the_connection() -> None:
    # The GOAWAY comes while the (slow) first stream is still in flight: the connection drains,
    # then closes. (With instant answers the peer may close right behind its GOAWAY, and core
    # does not always report the GOAWAY then.)
    with spawn_server("--h2-goaway-after", "1") as draining:
        rec = Recorder()
        with quiver.Client(protocol="http2", listeners=[rec]) as client:
            for _ in range(2):
                assert client.get(h2c(draining, "/slow/300")).text == "slow"
            events = rec.until(lambda ev: "goaway" in names(ev))
            goaway = next(e for e in events if e.name == "goaway")
            assert goaway.request is None and goaway.connection is not None
            assert goaway.origin == f"http://127.0.0.1:{draining['h2c']}"
            events = rec.until(
                lambda ev: any(e.name == "connection_closed" and e.connection == goaway.connection for e in ev)
            )
            of_connection = [e.name for e in events if e.request is None and e.connection == goaway.connection]
            assert of_connection[-2:] == ["goaway", "connection_closed"], of_connection


def test_redirects_are_one_request(server: Dict[str, Any]) -> None:
    rec = Recorder()
    with quiver.Client(listeners=[rec]) as client:
        r = client.get(http(server, "/redirect/2"))
        assert r.status_code == 200 and len(r.history) == 2
        events = rec.until(ended())
        redirected = [(e.status, e.location or "") for e in events if e.name == "redirected"]
        assert [s for s, _ in redirected] == [302, 302]
        assert redirected[0][1].endswith("/redirect/1") and redirected[1][1].endswith("/redirect/0")
        assert len({e.request for e in events if e.request is not None}) == 1
        t = r.timings
        assert t.redirects > 0
        assert_plausible(t)
        with pytest.raises(RuntimeError):
            r.history[0].timings


def test_failures(server: Dict[str, Any]) -> None:
    rec = Recorder()
    with quiver.Client(listeners=[rec]) as client:
        port = free_port()
        with pytest.raises(quiver.TransientError) as caught:
            client.get(f"http://127.0.0.1:{port}/")
        assert caught.value.kind == "connect_refused"
        events = rec.until(ended())
        failed_conn = next(e for e in events if e.name == "connection_failed")
        assert failed_conn.origin == f"http://127.0.0.1:{port}"
        assert isinstance(failed_conn.error, quiver.TransientError)
        failed = next(e for e in events if e.name == "request_failed")
        assert isinstance(failed.error, quiver.TransientError)
        assert (failed.error.kind, failed.error.error_class) == ("connect_refused", "transient")
        assert failed.error is failed.error  # one exception object per event
        assert "connect_refused" in repr(failed)

        # A body that fails after its head: request_failed instead of response_end.
        rec.take()
        with pytest.raises(quiver.QuiverError):
            client.get(http(server, "/close-mid-body/100000"))
        events = rec.until(ended())
        rid = events[0].request
        mine = of_request(events, rid)
        assert mine[-1] == "request_failed" and "response_headers" in mine and "response_end" not in mine


@async_test
async def test_events_asyncio(server: Dict[str, Any]) -> None:
    """AsyncClient's listeners run on the client's listener thread too, never on the loop."""
    rec = Recorder()
    loop_thread = threading.current_thread().name
    async with quiver.AsyncClient(protocol="http2", listeners=[rec]) as client:
        r = await client.get(h2c(server, "/bytes/10"))
        events = rec.until(ended(opened=1))
        rid = events[0].request
        assert of_request(events, rid) == FRESH
        assert next(e for e in events if e.name == "response_headers").stream == 1
        assert rec.threads == {"quiver-events"} and loop_thread not in rec.threads
        t = r.timings
        assert (t.protocol, t.stream, t.reused) == ("http2", 1, False)
        assert t.dns is not None and t.connect is not None and t.tls is None
        assert_plausible(t)
        r = await client.get(h2c(server, "/bytes/10"))
        assert (r.timings.stream, r.timings.reused, r.timings.connect) == (3, True, None)


# -- the listener thread ---------------------------------------------------------------------


def test_listeners_come_and_go(server: Dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    # The quiver logger wants nothing here, so only listeners decide.
    caplog.set_level(logging.CRITICAL, logger="quiver")
    with quiver.Client() as client:
        client.get(http(server, "/health"))
        assert not client._events.enabled
        assert client.event_stats() == {"received": 0, "dropped": 0, "queued": 0}
        rec = Recorder()
        client.add_listener(rec)
        assert client._events.enabled
        client.get(http(server, "/health"))
        rec.until(ended())
        client.remove_listener(rec)
        assert client.listeners == () and not client._events.enabled
        with pytest.raises(ValueError):
            client.remove_listener(rec)
        with pytest.raises(TypeError):
            client.add_listener("not callable")  # type: ignore[arg-type]
        received = client.event_stats()["received"]
        assert received == len(rec.snapshot())
        client.get(http(server, "/health"))
        assert client.event_stats()["received"] == received


def test_a_failing_listener_does_not_stop_the_others(server: Dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="quiver")

    def broken(event: quiver.Event) -> None:
        raise RuntimeError("listener bug")

    rec = Recorder()
    with quiver.Client(listeners=[broken, rec]) as client:
        assert client.get(http(server, "/health")).text == "ok"
        rec.until(ended())
        assert client.get(http(server, "/health")).text == "ok"
        rec.until(ended(2))
    assert wait_until(lambda: any("listener bug" in (r.exc_text or "") or r.exc_info for r in caplog.records))
    record = next(r for r in caplog.records if r.exc_info)
    assert record.name == "quiver" and record.levelno == logging.ERROR
    assert record.threadName == "quiver-events"


def test_a_slow_listener_loses_events_it_cannot_keep_up_with(server: Dict[str, Any]) -> None:
    """The engine never waits for Python: past the queue's capacity, events are dropped and
    counted."""
    release = threading.Event()
    rec = Recorder()

    def slow(event: quiver.Event) -> None:
        release.wait(DELIVERY)
        rec(event)

    with quiver.Client(listeners=[slow]) as client:
        client._events._native.set_capacity(8)
        started = time.monotonic()
        for _ in range(5):
            assert client.get(http(server, "/health")).status_code == 200
        # Requests went on at full speed while the listener was stuck.
        assert time.monotonic() - started < DELIVERY / 2
        stats = client.event_stats()
        assert stats["dropped"] > 0 and stats["queued"] <= 8, stats
        release.set()
        assert wait_until(lambda: client.event_stats()["queued"] == 0, DELIVERY)
        stats = client.event_stats()
        assert wait_until(lambda: len(rec.snapshot()) == stats["received"], DELIVERY)


def test_listeners_are_validated() -> None:
    with pytest.raises(TypeError):
        quiver.Client(listeners=print)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        quiver.Client(listeners=[42])  # type: ignore[list-item]


# -- event hooks -------------------------------------------------------------------------------


def test_event_hooks_order_and_changes(server: Dict[str, Any]) -> None:
    calls: List[Any] = []
    url = http(server, "/status/404")

    def first(request: quiver.Request) -> None:
        calls.append(("first", request.method, request.url, request.content))
        request.headers["x-hooked"] = "yes"
        request.url = http(server, "/headers")

    def second(request: quiver.Request) -> None:
        calls.append(("second", request.headers["x-hooked"], request.url))

    def head(response: quiver.Response) -> None:
        # The head arrived; the body is not read yet.
        calls.append(("head", response.status_code, response.is_closed, response.request.method))
        with pytest.raises(RuntimeError):
            response.content

    def body(response: quiver.Response) -> None:
        calls.append(("body", response.read()[:1]))

    with quiver.Client(event_hooks={"request": [first, second], "response": [head, body]}) as client:
        r = client.get(url)
        assert calls == [
            ("first", "GET", url, b""),
            ("second", "yes", http(server, "/headers")),
            ("head", 200, False, "GET"),
            ("body", b"{"),
        ]
        assert ["x-hooked", "yes"] in r.json()["headers"]
        assert r.request.url == http(server, "/headers") and r.request.headers["x-hooked"] == "yes"
        assert r.is_closed and r.timings.total is not None

        # Mutable after construction, as in httpx.
        calls.clear()
        client.event_hooks["response"].append(lambda response: calls.append("appended"))
        client.get(http(server, "/health"))
        assert [c if isinstance(c, str) else c[0] for c in calls] == ["first", "second", "head", "body", "appended"]
        client.event_hooks = {"request": [lambda request: calls.append("only")]}
        assert client.event_hooks == {"request": client.event_hooks["request"], "response": []}
        calls.clear()
        assert client.get(http(server, "/health")).text == "ok"
        assert calls == ["only"]
        with pytest.raises(ValueError):
            client.event_hooks = {"requests": []}

        # A streamed response: hooks run before the block, the body is the caller's to read.
        seen: List[bool] = []
        client.event_hooks = {"response": [lambda response: seen.append(response.is_closed)]}
        with client.stream("GET", http(server, "/bytes/100")) as r:
            assert seen == [False] and not r.is_closed
            assert len(r.read()) == 100


def test_an_exception_in_a_hook_reaches_the_caller(server: Dict[str, Any]) -> None:
    class Refused(Exception):
        pass

    def refuse(request: quiver.Request) -> None:
        raise Refused(request.url)

    with quiver.Client(event_hooks={"request": [refuse]}) as client:
        with pytest.raises(Refused):
            client.get(http(server, "/health"))
        assert client.stats()["requests"] == 0  # nothing was sent

    kept: List[quiver.Response] = []

    def reject(response: quiver.Response) -> None:
        kept.append(response)
        raise Refused(response.status_code)

    with quiver.Client(event_hooks={"response": [reject]}) as client:
        with pytest.raises(Refused):
            client.get(http(server, "/bytes/1000000"))
        assert kept[0].is_closed  # closed: the connection is not held
        client.event_hooks = {}
        assert client.get(http(server, "/health")).text == "ok"
        origin = client.stats()["origins"][f"http://127.0.0.1:{server['http']}"]
        assert origin["active"] == 0


@async_test
async def test_event_hooks_asyncio(server: Dict[str, Any]) -> None:
    calls: List[Any] = []

    async def log_request(request: quiver.Request) -> None:
        await asyncio.sleep(0)
        calls.append(("request", request.method))
        request.headers["x-async"] = "1"

    async def read_it(response: quiver.Response) -> None:
        calls.append(("response", response.is_closed))
        await response.aread()

    async with quiver.AsyncClient(event_hooks={"request": [log_request], "response": [read_it]}) as client:
        r = await client.get(http(server, "/headers"))
        assert calls == [("request", "GET"), ("response", False)]
        assert ["x-async", "1"] in r.json()["headers"]
        assert r.timings.total is not None

        async def fail(response: quiver.Response) -> None:
            raise LookupError("no")

        client.event_hooks["response"] = [fail]
        with pytest.raises(LookupError):
            await client.get(http(server, "/health"))
        client.event_hooks["response"].clear()
        # The body ends 300 ms after the head: no total before.
        async with client.stream("GET", http(server, "/bytes/20?chunk_size=10&delay_ms=300")) as s:
            assert s.timings.total is None
            assert len(await s.aread()) == 20
            assert s.timings.total is not None


# -- logging ---------------------------------------------------------------------------------


def test_info_line_per_response(server: Dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="quiver")
    url = http(server, "/health")
    with quiver.Client() as client:
        client.get(url)
        client.get(http(server, "/status/404"))
        infos = [r for r in caplog.records if r.name == "quiver" and r.levelno == logging.INFO]
        assert [r.getMessage() for r in infos] == [
            f'HTTP Request: GET {url} "HTTP/1.1 200 OK"',
            f'HTTP Request: GET {http(server, "/status/404")} "HTTP/1.1 404 Not Found"',
        ]
        assert infos[0].threadName == threading.current_thread().name
        # INFO lets failures (WARNING) through, not the DEBUG events.
        assert client._events._native.mode == quiver._quiver.LOG_WARNING
    assert not [r for r in caplog.records if r.levelno == logging.DEBUG]


def test_debug_lines_for_events(server: Dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="quiver")
    with quiver.Client() as client:
        client.get(http(server, "/redirect/1"))

    def messages() -> List[str]:
        return [r.getMessage() for r in caplog.records if r.name == "quiver" and r.levelno == logging.DEBUG]

    assert wait_until(lambda: any(" closed: " in m for m in messages()), DELIVERY), messages()
    text = "\n".join(messages())
    origin = f"http://127.0.0.1:{server['http']}"
    assert f": GET {http(server, '/redirect/1')}" in text
    assert f"redirected (302) to {http(server, '/redirect/0')}" in text
    assert f"to {origin} opened (http1)" in text
    debug = [r for r in caplog.records if r.levelno == logging.DEBUG]
    assert {r.threadName for r in debug} == {"quiver-events"}
    assert all(isinstance(getattr(r, "quiver_event", None), quiver.Event) for r in debug)
    # The INFO line names the request and the final response.
    assert any(
        r.levelno == logging.INFO and r.getMessage().endswith('"HTTP/1.1 200 OK"') for r in caplog.records
    )


def test_warning_for_failures(server: Dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="quiver")
    port = free_port()
    with quiver.Client() as client:
        with pytest.raises(quiver.TransientError):
            client.get(f"http://127.0.0.1:{port}/")

    def warnings() -> List[logging.LogRecord]:
        return [r for r in caplog.records if r.name == "quiver" and r.levelno == logging.WARNING]

    assert wait_until(lambda: len(warnings()) >= 2, DELIVERY), caplog.records
    text = "\n".join(r.getMessage() for r in warnings())
    assert f"connection to http://127.0.0.1:{port} failed: connect_refused" in text
    assert "failed: connect_refused" in text
    assert not [r for r in caplog.records if r.levelno < logging.WARNING]


def test_logging_follows_the_logger_as_requests_start(server: Dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL, logger="quiver")
    with quiver.Client() as client:
        client.get(http(server, "/health"))
        assert not client._events.enabled
        caplog.set_level(logging.DEBUG, logger="quiver")
        client.get(http(server, "/health"))
        assert client._events.enabled
        caplog.set_level(logging.ERROR, logger="quiver")
        client.get(http(server, "/health"))
        assert not client._events.enabled


def test_nothing_is_built_or_emitted_without_configuration(server: Dict[str, Any]) -> None:
    """A program that never configures logging and registers no listener: the engine builds no
    event (its listener is not enabled), no thread starts, nothing is printed; failures too."""
    code = """
import sys, threading
import quiver
client = quiver.Client()
assert client.get(sys.argv[1]).text == "ok"
try:
    client.get(sys.argv[2])
except quiver.TransientError:
    pass
else:
    raise AssertionError("expected connect_refused")
assert not client._events.enabled
assert client.event_stats() == {"received": 0, "dropped": 0, "queued": 0}, client.event_stats()
assert [t.name for t in threading.enumerate()] == ["MainThread"], threading.enumerate()
client.close()
"""
    closed = f"http://127.0.0.1:{free_port()}/"
    proc = subprocess.run(
        [sys.executable, "-c", code, http(server, "/health"), closed], capture_output=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert (proc.stdout, proc.stderr) == (b"", b"")


def test_exiting_with_a_listener_thread_is_clean(server: Dict[str, Any]) -> None:
    """The interpreter exits promptly and cleanly while a client's listener thread waits (and
    after delivering what is queued)."""
    code = """
import sys
import quiver
seen = []
client = quiver.Client(listeners=[seen.append])
client.get(sys.argv[1])
print("done")
"""
    proc = subprocess.run([sys.executable, "-c", code, http(server, "/health")], capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout == b"done\n" and proc.stderr == b""


# -- timings and progress ----------------------------------------------------------------------


def test_streamed_timings(server: Dict[str, Any]) -> None:
    with quiver.Client() as client:
        # The body ends 300 ms after the head (the engine reads ahead of the caller: its total
        # is when the engine saw the end).
        with client.stream("GET", http(server, "/bytes/20?chunk_size=10&delay_ms=300")) as r:
            t = r.timings
            assert t.total is None
            assert t.ttfb >= t.queued
            r.read()
            assert t.total is not None and t.total >= t.ttfb
            assert "ttfb=" in repr(t)


@pytest.mark.parametrize("name", ["http1", "h2c", "h3"])
def test_progress_of_a_download(server: Dict[str, Any], name: str) -> None:
    target = make_target(server, name)
    size = 1_000_000
    with quiver.Client(**target.options) as client:
        progress = quiver.Progress()
        assert (progress.downloaded, progress.download_total) == (0, None)
        with client.stream("GET", target.url(f"/bytes/{size}"), progress=progress) as r:
            assert progress.download_total == size
            taken = 0
            for chunk in r.iter_bytes():
                taken += len(chunk)
                # Read ahead at most the prefetch window of what the caller took.
                assert taken <= progress.downloaded <= size
            assert taken == size
        assert progress.downloaded == size
        assert (progress.uploaded, progress.upload_total) == (0, 0)
        # A whole response too.
        progress = quiver.Progress()
        assert len(client.get(target.url("/bytes/300000"), progress=progress).content) == 300000
        assert (progress.downloaded, progress.download_total) == (300000, 300000)
        # A decoded body has no known total.
        progress = quiver.Progress()
        client.get(target.url("/encoded/gzip/50000"), progress=progress)
        assert (progress.downloaded, progress.download_total) == (50000, None)


@pytest.mark.parametrize("name", ["http1", "h2c", "h3"])
def test_progress_of_an_upload(server: Dict[str, Any], name: str) -> None:
    target = make_target(server, name)
    chunk, count = 100_000, 10
    size = chunk * count
    progress = quiver.Progress()
    seen: List[int] = []

    def body() -> Iterator[bytes]:
        for _ in range(count):
            seen.append(progress.uploaded)  # read while the request runs, on another thread
            yield b"x" * chunk

    with quiver.Client(**target.options) as client:
        r = client.post(
            target.url("/sink"), content=body(), headers={"content-length": str(size)}, progress=progress
        )
        assert r.json() == {"received": size}
        assert (progress.uploaded, progress.upload_total) == (size, size)
        assert seen == sorted(seen) and seen[-1] < size, seen
        progress = quiver.Progress()
        client.post(target.url("/sink"), content=b"y" * 300_000, progress=progress)
        assert (progress.uploaded, progress.upload_total) == (300_000, 300_000)
        with pytest.raises(TypeError):
            client.get(target.url("/health"), progress=object())


@async_test
async def test_progress_read_from_another_thread_asyncio(server: Dict[str, Any]) -> None:
    size = 200_000
    progress = quiver.Progress()
    samples: List[int] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            samples.append(progress.downloaded)
            time.sleep(0.002)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        async with quiver.AsyncClient() as client:
            url = http(server, f"/bytes/{size}?chunk_size=10000&delay_ms=20")
            async with client.stream("GET", url, progress=progress) as r:
                taken = 0
                async for chunk in r.aiter_bytes():
                    taken += len(chunk)
                    assert taken <= progress.downloaded
                t = r.timings
                assert t.total is not None and t.total >= t.ttfb
            upload = quiver.Progress()

            async def parts() -> Any:
                for _ in range(4):
                    yield b"z" * 50_000

            r2 = await client.post(http(server, "/sink"), content=parts(), progress=upload)
            assert r2.json() == {"received": 200_000}
            assert (upload.uploaded, upload.upload_total) == (200_000, None)
    finally:
        stop.set()
        poller.join()
    assert progress.downloaded == size
    assert any(0 < s < size for s in samples), samples[:: max(1, len(samples) // 20)]
    assert samples == sorted(samples)


# -- the httpx adapter -------------------------------------------------------------------------


def test_the_httpx_adapter_still_works(server: Dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    httpx = pytest.importorskip("httpx")
    import quiver.httpx

    caplog.set_level(logging.DEBUG)
    calls: List[str] = []
    with httpx.Client(
        transport=quiver.httpx.HTTPTransport(),
        event_hooks={"request": [lambda r: calls.append("request")], "response": [lambda r: calls.append("response")]},
    ) as client:
        r = client.get(http(server, "/redirect/1"), follow_redirects=True)
        assert r.status_code == 200 and len(r.history) == 1
    assert calls == ["request", "response", "request", "response"]
    # httpx logs its own INFO lines for its requests.
    assert any(rec.name == "httpx" and "HTTP Request: GET" in rec.getMessage() for rec in caplog.records)
