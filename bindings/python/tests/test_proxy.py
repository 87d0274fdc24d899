"""Proxies against the test server's forward proxy: CONNECT tunnels and absolute-form requests
through `proxy` (HTTP/1.1) and `proxy_tls` (HTTP/1.1 or pooled HTTP/2 over TLS), the proxy
environment variables, refusals, and MASQUE CONNECT-UDP tunnels over HTTP/3 (`proxy_h3`) and
HTTP/2 (`proxy_tls`) to the `udp_echo` target."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Optional, Sequence, Union

import pytest

import quiver
from support import async_test, free_port

CREDENTIALS = "Basic cXVpdmVyOnNlY3JldA=="  # quiver:secret, what the proxy accepts
WRONG_CREDENTIALS = "Basic d3Jvbmc6d3Jvbmc="  # wrong:wrong: 407


def proxy_url(server: Dict[str, Any], listener: str, credentials: bool = False) -> str:
    scheme, host = ("http", "127.0.0.1") if listener == "proxy" else ("https", "localhost")
    userinfo = "quiver:secret@" if credentials else ""
    return f"{scheme}://{userinfo}{host}:{server[listener]}"


def server_stats(server: Dict[str, Any]) -> Dict[str, int]:
    """The test server's counters (/stats), fetched directly."""
    with quiver.Client(proxy_from_env=False) as c:
        stats: Dict[str, int] = c.get(f"http://127.0.0.1:{server['http']}/stats").json()
        return stats


def grew(before: Dict[str, int], after: Dict[str, int]) -> Dict[str, int]:
    return {k: after[k] - before[k] for k in after if k.startswith(("proxy_", "udp_"))}


def header_names(json_body: Dict[str, Any]) -> List[str]:
    return [name for name, _ in json_body["headers"]]


def client(server: Dict[str, Any], **options: Any) -> quiver.Client:
    return quiver.Client(ca_file=server["ca_file"], proxy_from_env=False, checkout_timeout=30, **options)


# -- HTTP through a proxy ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "listener, proxy_protocol",
    [("proxy", "http1"), ("proxy_tls", "http1"), ("proxy_tls", "http2")],
)
def test_https_and_http_targets_through_a_proxy(server: Dict[str, Any], listener: str, proxy_protocol: str) -> None:
    proxy = proxy_url(server, listener, credentials=True)
    https_target = f"https://localhost:{server['https']}/headers"
    http_target = f"http://127.0.0.1:{server['http']}/headers"
    before = server_stats(server)
    # https target: a CONNECT tunnel, TLS to the origin inside it (ALPN picks HTTP/2).
    with client(server, proxy=proxy, proxy_protocol=proxy_protocol) as c:
        r = c.get(https_target)
        assert r.status_code == 200 and r.http_version == "HTTP/2"
        body = r.json()
        assert "proxy-authorization" not in header_names(body), "the origin never sees proxy credentials"
        # Pooled: the second request rides the same tunnelled connection.
        assert c.get(https_target + "?again").json()["peer"] == body["peer"]
        proxies = c.stats()["proxies"]
        if proxy_protocol == "http2":
            assert [p["origin"] for p in proxies] == [f"https://localhost:{server['proxy_tls']}"]
            assert proxies[0]["protocol"] == "http2" and proxies[0]["connections"] == 1
        else:
            assert proxies == []  # HTTP/1.1 to the proxy: a connection per tunnel, not pooled
    mid = server_stats(server)
    tunnelled = grew(before, mid)
    assert tunnelled["proxy_tunnels"] == 1, tunnelled
    assert tunnelled["proxy_connections"] == 1, tunnelled
    assert tunnelled["proxy_auth_seen"] == 1, tunnelled
    # http target over HTTP/1.1: absolute form to the proxy, forwarded.
    with client(server, proxy=proxy, proxy_protocol=proxy_protocol, protocol="http1") as c:
        r = c.get(http_target, headers={"x-probe": "forwarded"})
        assert r.status_code == 200
        body = r.json()
        assert "proxy-authorization" not in header_names(body)
        assert ["x-probe", "forwarded"] in body["headers"]
    forwarded = grew(mid, server_stats(server))
    assert forwarded["proxy_forwarded"] == 1, forwarded
    assert forwarded["proxy_auth_seen"] == 1, forwarded
    assert forwarded["proxy_tunnels"] == 0, forwarded


def test_proxy_authorization_option(server: Dict[str, Any]) -> None:
    """`proxy_authorization` is sent to the proxy only, and overrides credentials in the URL."""
    target = f"https://localhost:{server['https']}/headers"
    before = server_stats(server)
    with client(server, proxy=proxy_url(server, "proxy"), proxy_authorization=CREDENTIALS) as c:
        assert "proxy-authorization" not in header_names(c.get(target).json())
    with client(
        server, proxy=proxy_url(server, "proxy", credentials=True), proxy_authorization=WRONG_CREDENTIALS
    ) as c:
        with pytest.raises(quiver.TransientError) as info:
            c.get(target)
        assert info.value.kind == "proxy_connect_failed"
        assert "407" in info.value.message
    assert grew(before, server_stats(server))["proxy_auth_seen"] == 2


def test_http2_proxy_connection_carries_many_tunnels(server: Dict[str, Any]) -> None:
    before = server_stats(server)
    with client(server, proxy=proxy_url(server, "proxy_tls"), proxy_protocol="http2", protocol="http1", size=3) as c:
        with ThreadPoolExecutor(12) as pool:
            statuses = list(pool.map(lambda _: c.get(f"https://localhost:{server['https']}/slow/20").status_code, range(36)))
        assert statuses == [200] * 36
        assert len(c.stats()["proxies"]) == 1
    counted = grew(before, server_stats(server))
    assert counted["proxy_connections"] == 1, "one pooled HTTP/2 connection to the proxy"
    assert counted["proxy_tunnels"] == 3, "one tunnel per origin connection (size=3)"


def test_refused_connect_is_a_transient_proxy_error(server: Dict[str, Any]) -> None:
    with client(server, proxy=proxy_url(server, "proxy")) as c:
        with pytest.raises(quiver.TransientError) as info:
            c.get(f"https://127.0.0.1:{free_port()}/")
        assert info.value.kind == "proxy_connect_failed"
        assert info.value.error_class == "transient"
        assert "502" in info.value.message
        assert quiver.ERROR_KINDS["proxy_connect_failed"] == "transient"
    with pytest.raises(quiver.InvalidError) as invalid:
        client(server, proxy="socks4://127.0.0.1:1080")
    assert invalid.value.kind == "invalid_config" and "proxy" in invalid.value.message
    with pytest.raises(quiver.InvalidError):
        client(server, proxy_protocol="http9")


@async_test
async def test_async_requests_through_a_proxy(server: Dict[str, Any]) -> None:
    async with quiver.AsyncClient(
        ca_file=server["ca_file"], proxy_from_env=False, proxy=proxy_url(server, "proxy_tls"), proxy_protocol="http2"
    ) as c:
        rs = await asyncio.gather(*(c.get(f"https://localhost:{server['https']}/headers?i={i}") for i in range(50)))
        assert [r.json()["query"] for r in rs] == [f"i={i}" for i in range(50)]
        with pytest.raises(quiver.TransientError) as info:
            await c.get(f"https://127.0.0.1:{free_port()}/")
        assert info.value.kind == "proxy_connect_failed"


ENV_CHILD = textwrap.dedent(
    """
    import json, sys, quiver
    info = json.loads(sys.argv[1])

    def counters():
        with quiver.Client(proxy_from_env=False) as c:
            return c.get(f"http://127.0.0.1:{info['http']}/stats").json()

    def through(url, **options):
        before = counters()
        with quiver.Client(ca_file=info["ca_file"], **options) as c:
            assert c.get(url).status_code == 200
        after = counters()
        return {k: after[k] - before[k] for k in ("proxy_tunnels", "proxy_forwarded")}

    https_port, http_port = info["https"], info["http"]
    print(json.dumps({
        "https excluded": through(f"https://localhost:{https_port}/health"),
        "https proxied": through(f"https://127.0.0.1:{https_port}/health"),
        "http excluded": through(f"http://localhost:{http_port}/health"),
        "http proxied": through(f"http://127.0.0.1:{http_port}/health"),
        "from_env off": through(f"https://127.0.0.1:{https_port}/health", proxy_from_env=False),
        "proxy none": through(f"https://127.0.0.1:{https_port}/health", proxy="none"),
    }))
    """
)


def test_proxy_environment_variables_and_no_proxy(server: Dict[str, Any]) -> None:
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
    env.update(
        HTTPS_PROXY=proxy_url(server, "proxy"),
        http_proxy=proxy_url(server, "proxy"),
        NO_PROXY="example.invalid, LOCALHOST",
    )
    out = subprocess.run(
        [sys.executable, "-c", ENV_CHILD, json.dumps(server)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    none = {"proxy_tunnels": 0, "proxy_forwarded": 0}
    assert seen == {
        "https excluded": none,
        "https proxied": {"proxy_tunnels": 1, "proxy_forwarded": 0},
        "http excluded": none,
        "http proxied": {"proxy_tunnels": 0, "proxy_forwarded": 1},
        "from_env off": none,
        "proxy none": none,
    }, seen


def test_http3_origin_through_a_masque_proxy(server: Dict[str, Any]) -> None:
    before = server_stats(server)
    with client(server, protocol="http3", proxy=proxy_url(server, "proxy_h3"), proxy_protocol="http3") as c:
        r = c.get(f"https://localhost:{server['h3']}/headers")
        assert r.status_code == 200 and r.http_version == "HTTP/3"
        assert c.stats()["proxies"][0]["protocol"] == "http3"
    assert grew(before, server_stats(server))["proxy_tunnels"] == 1


# -- UDP tunnels ------------------------------------------------------------------------------

PAYLOADS = [bytes([i]) * (1 + 50 * i) for i in range(20)]  # 1 to 951 bytes, distinct


def proxy_for(server: Dict[str, Any], protocol: str) -> str:
    return proxy_url(server, "proxy_h3" if protocol == "http3" else "proxy_tls")


def echo_all(tunnel: quiver.UdpTunnel, payloads: Sequence[bytes] = PAYLOADS) -> None:
    """Each payload comes back intact; UDP may lose one, so it is resent (bounded). A late echo
    of an earlier payload may still arrive: it must be intact too."""
    for payload in payloads:
        for _ in range(20):
            tunnel.send(payload)
            deadline = time.monotonic() + 0.3
            got: Optional[bytes] = None
            while got != payload and time.monotonic() < deadline:
                try:
                    got = tunnel.recv(timeout=max(0.0, deadline - time.monotonic()))
                except TimeoutError:
                    break
                assert got in payloads, got
            if got == payload:
                break
        else:
            pytest.fail(f"no echo of a {len(payload)}-byte payload")


async def async_echo_all(tunnel: quiver.AsyncUdpTunnel, payloads: Sequence[bytes] = PAYLOADS) -> None:
    for payload in payloads:
        for _ in range(20):
            await tunnel.send(payload)
            deadline = time.monotonic() + 0.3
            got: Optional[bytes] = None
            while got != payload and time.monotonic() < deadline:
                try:
                    got = await tunnel.recv(timeout=max(0.0, deadline - time.monotonic()))
                except TimeoutError:
                    break
                assert got in payloads, got
            if got == payload:
                break
        else:
            pytest.fail(f"no echo of a {len(payload)}-byte payload")


@pytest.mark.parametrize("protocol", ["http3", "http2"])
def test_udp_tunnel_echoes_intact(server: Dict[str, Any], protocol: quiver.Protocol) -> None:
    before = server_stats(server)
    with client(server) as c:
        with c.open_udp_tunnel(proxy_for(server, protocol), "127.0.0.1", server["udp_echo"], protocol) as tunnel:
            assert tunnel.status_code == 200
            assert tunnel.http_version == ("HTTP/3" if protocol == "http3" else "HTTP/2")
            assert tunnel.target == f"127.0.0.1:{server['udp_echo']}"
            assert tunnel.headers["capsule-protocol"] == "?1"
            assert tunnel.max_payload >= max(map(len, PAYLOADS))
            assert not tunnel.is_ended
            echo_all(tunnel)
            proxies = c.stats()["proxies"]
            assert [p["protocol"] for p in proxies] == [protocol]
            # Ending our side ends the tunnel: what is still in flight, then None.
            tunnel.close()
            while tunnel.recv(timeout=5) is not None:
                pass
            assert tunnel.is_ended
        with pytest.raises(quiver.QuiverError) as info:
            tunnel.send(b"after the block")
        assert info.value.kind == "datagram_error"
    counted = grew(before, server_stats(server))
    assert counted["proxy_tunnels"] == 1 and counted["proxy_connections"] == 1, counted
    assert counted["udp_echoed"] >= len(PAYLOADS), counted


@pytest.mark.parametrize("protocol", ["http3", "http2"])
@async_test
async def test_async_udp_tunnel_echoes_intact(server: Dict[str, Any], protocol: quiver.Protocol) -> None:
    async with quiver.AsyncClient(ca_file=server["ca_file"], proxy_from_env=False) as c:
        tunnel = await c.open_udp_tunnel(proxy_for(server, protocol), "localhost", server["udp_echo"], protocol)
        async with tunnel:
            assert tunnel.status_code == 200 and tunnel.target == f"localhost:{server['udp_echo']}"
            await async_echo_all(tunnel)
            # a receive that timed out (cancelled) does not break the next ones
            with pytest.raises(TimeoutError):
                await tunnel.recv(timeout=0.05)
            await async_echo_all(tunnel, [b"after a timeout"])
            await tunnel.close()
            async for payload in tunnel:  # what was still in flight, then the end
                assert payload in PAYLOADS or payload == b"after a timeout"
            assert tunnel.is_ended


def test_send_while_another_thread_receives(server: Dict[str, Any]) -> None:
    with client(server) as c:
        with c.open_udp_tunnel(proxy_for(server, "http3"), "127.0.0.1", server["udp_echo"]) as tunnel:
            got: List[Optional[bytes]] = []
            t = threading.Thread(target=lambda: got.append(tunnel.recv(timeout=5)))
            t.start()
            for _ in range(20):
                tunnel.send(b"ping")
                t.join(0.2)
                if not t.is_alive():
                    break
            t.join()
            assert got == [b"ping"]


def test_udp_tunnel_credentials_and_refusals(server: Dict[str, Any]) -> None:
    before = server_stats(server)
    with client(server) as c:
        # credentials in the proxy URL become the CONNECT-UDP's Proxy-Authorization
        with c.open_udp_tunnel(proxy_url(server, "proxy_h3", credentials=True), "127.0.0.1", server["udp_echo"]):
            pass
        for protocol in ("http3", "http2"):
            with pytest.raises(quiver.TransientError) as info:
                c.open_udp_tunnel(
                    proxy_for(server, protocol),
                    "127.0.0.1",
                    server["udp_echo"],
                    protocol,
                    headers={"proxy-authorization": WRONG_CREDENTIALS},
                )
            assert info.value.kind == "proxy_connect_failed", info.value
            assert "407" in info.value.message
        # HTTP/1.1 to the proxy is not pooled: no UDP tunnels over it
        with pytest.raises(quiver.InvalidError) as invalid:
            c.open_udp_tunnel(proxy_url(server, "proxy"), "127.0.0.1", server["udp_echo"], "http1")
        assert invalid.value.kind == "pool_unsupported_for_transport"
        with pytest.raises(quiver.InvalidError) as bad:
            c.open_udp_tunnel(proxy_for(server, "http3"), "127.0.0.1", server["udp_echo"], "udp")  # type: ignore[arg-type]
        assert bad.value.kind == "invalid_config"
    assert grew(before, server_stats(server))["proxy_auth_seen"] == 3


@pytest.mark.parametrize("protocol", ["http3", "http2"])
def test_close_all_tunnels_fails_a_waiting_receive(server: Dict[str, Any], protocol: quiver.Protocol) -> None:
    with client(server) as c:
        tunnel = c.open_udp_tunnel(proxy_for(server, protocol), "127.0.0.1", server["udp_echo"], protocol)
        outcome: List[Union[BaseException, Optional[bytes]]] = []

        def receive() -> None:
            try:
                outcome.append(tunnel.recv(timeout=10))
            except BaseException as e:  # noqa: BLE001 - reported to the test
                outcome.append(e)

        t = threading.Thread(target=receive)
        t.start()
        time.sleep(0.2)
        started = time.monotonic()
        c.close_all_tunnels()
        t.join(5)
        assert not t.is_alive(), "the receive still waits"
        assert time.monotonic() - started < 2
        assert len(outcome) == 1 and isinstance(outcome[0], quiver.QuiverError), outcome
        assert outcome[0].kind == "shutdown"
        assert tunnel.is_ended
        assert c.stats()["proxies"] == []
        # a new tunnel dials afresh
        with c.open_udp_tunnel(proxy_for(server, protocol), "127.0.0.1", server["udp_echo"], protocol) as again:
            echo_all(again)


@async_test
async def test_async_close_all_tunnels_fails_a_waiting_receive(server: Dict[str, Any]) -> None:
    async with quiver.AsyncClient(ca_file=server["ca_file"], proxy_from_env=False) as c:
        tunnel = await c.open_udp_tunnel(proxy_for(server, "http3"), "127.0.0.1", server["udp_echo"])
        waiting = asyncio.ensure_future(tunnel.recv())
        await asyncio.sleep(0.2)
        c.close_all_tunnels()
        with pytest.raises(quiver.QuiverError) as info:
            await asyncio.wait_for(waiting, 5)
        assert info.value.kind == "shutdown"


def test_client_close_shuts_tunnels_and_pools(server: Dict[str, Any]) -> None:
    c = client(server)
    tunnel = c.open_udp_tunnel(proxy_for(server, "http3"), "127.0.0.1", server["udp_echo"])
    c.close()
    assert c.is_closed
    with pytest.raises(quiver.QuiverError) as info:
        tunnel.recv(timeout=5)
    assert info.value.kind == "shutdown"
    for call in (
        lambda: c.get(f"https://localhost:{server['https']}/health"),
        lambda: c.open_udp_tunnel(proxy_for(server, "http3"), "127.0.0.1", server["udp_echo"]),
    ):
        with pytest.raises(quiver.QuiverError) as info:
            call()
        assert info.value.kind == "shutdown"
    c.close()  # idempotent
