"""Getting connected, from Python: Happy Eyeballs past a black-holed first address (`resolve`,
`happy_eyeballs_delay`), the dial's own error for a caller waiting on it, `dns_cache_ttl`,
Unix domain sockets (`unix_socket`) and SOCKS5 proxies, against the test server."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, Dict, List, Tuple

import pytest

import quiver
from support import async_test


def black_hole_first(server: Dict[str, Any], name: str) -> str:
    return f"{name}:{server['blackhole']}:127.0.0.2,127.0.0.1"


def stats(server: Dict[str, Any]) -> Dict[str, Any]:
    with quiver.Client(proxy_from_env=False) as c:
        result: Dict[str, Any] = c.get(f"http://127.0.0.1:{server['http']}/stats").json()
        return result


def test_a_black_holed_first_address_costs_one_attempt_delay(server: Dict[str, Any]) -> None:
    with quiver.Client(
        resolve=black_hole_first(server, "eyeballs.test"), connect_timeout=10, happy_eyeballs_delay=0.25
    ) as client:
        started = time.monotonic()
        r = client.get(f"http://eyeballs.test:{server['blackhole']}/health")
        took = time.monotonic() - started
    assert r.text == "ok"
    assert 0.24 <= took < 4, took


@async_test
async def test_async_black_hole_and_the_dials_own_error(server: Dict[str, Any]) -> None:
    port = server["blackhole"]
    async with quiver.AsyncClient(resolve=black_hole_first(server, "eyeballs.test"), connect_timeout=10) as client:
        r = await client.get(f"http://eyeballs.test:{port}/health")
        assert r.text == "ok"
    async with quiver.AsyncClient(
        resolve=f"hole.test:{port}:127.0.0.2", connect_timeout=0.6, checkout_timeout=0.1
    ) as client:
        with pytest.raises(quiver.TimeoutError) as info:
            await client.get(f"http://hole.test:{port}/")
        assert info.value.kind == "connect_timeout"


def test_resolve_and_dns_cache_options(server: Dict[str, Any]) -> None:
    port = server["http"]
    with quiver.Client(resolve=f"api.test:{port}:127.0.0.1", dns_cache_ttl=0) as client:
        assert client.get(f"http://api.test:{port}/health").text == "ok"
    with quiver.Client(resolve=f"api.test:{port}:127.0.0.1", dns_cache_ttl=None) as client:
        assert client.get(f"http://api.test:{port}/health").text == "ok"
    for bad in ["api.test", "api.test:80:nope"]:
        with pytest.raises(quiver.InvalidError) as info:
            quiver.Client(resolve=bad)
        assert info.value.kind == "invalid_config" and "resolve" in info.value.message
    with pytest.raises(quiver.InvalidError):
        quiver.Client(happy_eyeballs_delay=0)


def test_unix_sockets(server: Dict[str, Any]) -> None:
    with quiver.Client(
        unix_socket=server["unix_http"],
        pools={"http://h2c.local": {"unix_socket": server["unix_h2c"], "protocol": "http2"}},
    ) as client:
        r = client.get("http://localhost/health")
        assert (r.text, r.http_version) == ("ok", "HTTP/1.1")
        r = client.get("http://h2c.local/health")
        assert (r.text, r.http_version) == ("ok", "HTTP/2")
    with quiver.Client(unix_socket="/nonexistent/quiver.sock") as client:
        with pytest.raises(quiver.QuiverError) as info:
            client.get("http://localhost/")
        assert info.value.kind == "connect_failed"


def test_socks5_proxies(server: Dict[str, Any]) -> None:
    port = server["http"]
    for proxy, seen in [
        (f"socks5://127.0.0.1:{server['socks5']}", "ipv"),  # resolved here: an address
        (f"socks5h://quiver:secret@127.0.0.1:{server['socks5_auth']}", f"domain localhost:{port}"),
    ]:
        with quiver.Client(proxy=proxy) as client:
            assert client.get(f"http://localhost:{port}/health").text == "ok"
        assert stats(server)["socks_last_target"].startswith(seen)
    with quiver.Client(proxy=f"socks5://quiver:nope@127.0.0.1:{server['socks5_auth']}") as client:
        with pytest.raises(quiver.QuiverError) as info:
            client.get(f"http://localhost:{port}/health")
        assert info.value.kind == "proxy_connect_failed"
        assert "nope" not in str(info.value)
    with pytest.raises(quiver.InvalidError):
        quiver.Client(proxy=f"socks5://127.0.0.1:{server['socks5']}", protocol="http3")


def _alt_origin(client: quiver.Client, port: int) -> Dict[str, Any]:
    origin: Dict[str, Any] = client.stats()["origins"][f"https://localhost:{port}"]
    return origin


def test_auto_moves_to_http3_from_alt_svc(server: Dict[str, Any]) -> None:
    port = server["https_alt"]
    url = f"https://localhost:{port}/"
    # A long head start: QUIC wins the race even on a loaded machine.
    with quiver.Client(ca_file=server["ca_file"], happy_eyeballs_delay=3) as client:
        assert client.get(url).http_version == "HTTP/2"
        assert [client.get(url).http_version for _ in range(3)] == ["HTTP/3"] * 3
        origin = _alt_origin(client, port)
        assert origin["protocol"] == "http3"
        assert origin["alt_svc"].startswith(f'h3=":{server["h3"]}"; ma=')
        assert (origin["fallbacks"], origin["alt_svc_broken"]) == (0, False)
    with quiver.Client(ca_file=server["ca_file"], alt_svc=False) as client:
        assert [client.get(url).http_version for _ in range(2)] == ["HTTP/2"] * 2
        assert _alt_origin(client, port)["alt_svc"] is None


@async_test
async def test_black_holed_udp_falls_back_to_tcp(server: Dict[str, Any]) -> None:
    port = server["https_alt_blocked"]
    url = f"https://localhost:{port}/"
    async with quiver.AsyncClient(ca_file=server["ca_file"], connect_timeout=2, happy_eyeballs_delay=0.1) as client:
        assert (await client.get(url)).http_version == "HTTP/2"
        started = time.monotonic()
        assert (await client.get(url)).http_version == "HTTP/2"
        assert time.monotonic() - started < 1.5
        origin = client.stats()["origins"][f"https://localhost:{port}"]
        assert origin["fallbacks"] == 1 and client.stats()["fallbacks"] == 1
        deadline = time.monotonic() + 20
        while not client.stats()["origins"][f"https://localhost:{port}"]["alt_svc_broken"]:
            assert time.monotonic() < deadline, "never marked broken"
            await asyncio.sleep(0.05)
        assert (await client.get(url)).http_version == "HTTP/2"
        origin = client.stats()["origins"][f"https://localhost:{port}"]
        assert (origin["fallbacks"], origin["errors"], origin["protocol"]) == (1, 0, "http2")


def _many_origins(server: Dict[str, Any], n: int) -> Tuple[str, List[str]]:
    port = server["http"]
    names = [f"o{i}.test" for i in range(1, n + 1)]
    return " ".join(f"{name}:{port}:127.0.0.1" for name in names), [f"http://{name}:{port}" for name in names]


@async_test
async def test_the_total_connection_cap_holds_across_20_origins(server: Dict[str, Any]) -> None:
    resolve, origins = _many_origins(server, 20)
    async with quiver.AsyncClient(resolve=resolve, max_total_connections=4, checkout_timeout=60) as client:
        peak = 0

        async def one(i: int) -> str:
            nonlocal peak
            r = await client.get(f"{origins[i % 20]}/slow/5")
            peak = max(peak, client.stats()["connections"])
            return r.text

        assert await asyncio.gather(*(one(i) for i in range(100))) == ["slow"] * 100
        stats = client.stats()
        assert len(stats["origins"]) == 20 and stats["errors"] == 0
        # Pool-by-pool stats can see a connection moving between pools twice.
        assert peak <= 6, peak


def test_the_total_cap_times_out_when_every_connection_is_busy(server: Dict[str, Any]) -> None:
    resolve, origins = _many_origins(server, 2)
    with quiver.Client(resolve=resolve, max_total_connections=1, checkout_timeout=0.3) as client:
        # An idle connection to one origin is closed to make room for the other.
        for origin in origins * 2:
            assert client.get(f"{origin}/health").text == "ok"
        assert client.stats()["connections_opened"] == 4
        # Busy: one slow request holds the only connection.
        slow = threading.Thread(target=lambda: client.get(f"{origins[0]}/slow/1500"))
        slow.start()
        time.sleep(0.2)
        with pytest.raises(quiver.TimeoutError) as info:
            client.get(f"{origins[1]}/health")
        assert info.value.kind == "checkout_timeout" and "max_total_connections" in info.value.message
        slow.join()
    with pytest.raises(quiver.InvalidError):
        quiver.Client(pools={"http://o1.test": {"max_total_connections": 2}})


def test_an_https_record_puts_the_first_request_on_http3(server: Dict[str, Any]) -> None:
    # `quiver.test` (in the server certificate) has HTTPS records on the test server's DNS
    # listener; TCP reaches it through a `resolve` override, QUIC through the address hint.
    https = server["https"]
    options: Dict[str, Any] = dict(
        ca_file=server["ca_file"], resolve=f"quiver.test:{https}:127.0.0.1", happy_eyeballs_delay=3
    )
    url = f"https://quiver.test:{https}/"
    with quiver.Client(https_rr=True, https_rr_nameserver=f"127.0.0.1:{server['dns']}", **options) as client:
        assert [client.get(url).http_version for _ in range(2)] == ["HTTP/3"] * 2
        origin = client.stats()["origins"][f"https://quiver.test:{https}"]
        assert origin["protocol"] == "http3" and origin["alt_svc"].startswith(f'h3=":{server["h3"]}"')
    with quiver.Client(**options) as client:
        assert client.get(url).http_version == "HTTP/2"
    with pytest.raises(quiver.InvalidError):
        quiver.Client(https_rr_nameserver="localhost")
