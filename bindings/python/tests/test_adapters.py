"""The drop-in transports: httpx (quiver.httpx) and requests (quiver.requests) over quiver's
pools, against the loopback test server over HTTP/1.1, HTTP/2 and HTTP/3. httpx and requests
keep their own redirects, cookies, auth and (httpx) decoding above the transport."""

from __future__ import annotations

import asyncio
import pickle
import subprocess
import sys
import threading
import time
from typing import Any, AsyncIterator, Dict, Iterator, List

import pytest

httpx = pytest.importorskip("httpx")
requests = pytest.importorskip("requests")

import quiver  # noqa: E402
import quiver.httpx  # noqa: E402
import quiver.requests  # noqa: E402
from conftest import Target, make_target  # noqa: E402
from support import async_test, free_port, pattern  # noqa: E402

ADAPTER_PROTOCOLS = ["http1", "h2", "h3"]


@pytest.fixture(params=ADAPTER_PROTOCOLS)
def proto(request: pytest.FixtureRequest, server: Dict[str, Any]) -> Target:
    """HTTP/1.1 (cleartext), HTTP/2 (https, ALPN) and HTTP/3 (protocol="http3")."""
    return make_target(server, request.param)


def session_for(target: Target, **options: Any) -> Any:
    s = requests.Session()
    adapter = quiver.requests.Adapter(**{**target.options, **options})
    s.mount("http://", adapter)
    s.mount("https://", adapter)
    return s


def test_importing_quiver_imports_neither_library() -> None:
    code = "import sys, quiver; assert 'httpx' not in sys.modules and 'requests' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# -- httpx -------------------------------------------------------------------------------------


def test_httpx_methods_and_version(proto: Target) -> None:
    with httpx.Client(transport=quiver.httpx.HTTPTransport(**proto.options)) as client:
        r = client.get(proto.url("/headers"), params={"q": "1"})
        assert r.status_code == 200
        assert r.http_version == proto.version
        assert r.extensions["http_version"] == proto.version.encode()
        assert r.reason_phrase == "OK"
        assert r.json()["query"] == "q=1"
        for method in ["PUT", "PATCH", "DELETE", "OPTIONS"]:
            assert client.request(method, proto.url("/headers")).json()["method"] == method
        r = client.post(proto.url("/echo"), json={"a": [1, 2]})
        assert r.json() == {"a": [1, 2]}
        assert r.headers["x-echo-method"] == "POST"
        r = client.head(proto.url("/bytes/100"))
        assert (r.status_code, r.content, r.headers["content-length"]) == (200, b"", "100")
        assert client.get(proto.url("/status/404")).status_code == 404
        # httpx's multipart stream, with its content-length.
        r = client.post(proto.url("/multipart"), data={"x": "1"}, files={"f": ("a.txt", b"hello")})
        parts = r.json()["parts"]
        assert [(p["name"], p["filename"], p["text"]) for p in parts] == [("x", None, "1"), ("f", "a.txt", "hello")]


def test_httpx_headers_go_as_given(h1: Target) -> None:
    """Raw header fields, duplicates kept in order; httpx's own defaults (user-agent,
    accept-encoding) and nothing added by quiver. (The server lists repeated fields together.)"""
    with httpx.Client(transport=quiver.httpx.HTTPTransport()) as client:
        fields = [("x-a", "1"), ("X-B", "2"), ("x-a", "3")]
        sent = client.get(h1.url("/headers"), headers=fields).json()["headers"]
    names = [name for name, _ in sent]
    assert [v for n, v in sent if n == "x-a"] == ["1", "3"] and ["x-b", "2"] in sent
    assert dict(sent)["user-agent"].startswith("python-httpx/")
    assert dict(sent)["accept-encoding"] == "gzip, deflate"
    assert names.count("accept-encoding") == 1 and "cookie" not in names and "authorization" not in names


@async_test
async def test_httpx_async_methods_and_version(proto: Target) -> None:
    async with httpx.AsyncClient(transport=quiver.httpx.AsyncHTTPTransport(**proto.options)) as client:
        r = await client.get(proto.url("/headers"))
        assert (r.status_code, r.http_version) == (200, proto.version)
        assert r.json()["method"] == "GET"
        r = await client.put(proto.url("/echo"), content=b"payload")
        assert (r.content, r.headers["x-echo-method"]) == (b"payload", "PUT")
        r = await client.delete(proto.url("/headers"))
        assert r.json()["method"] == "DELETE"


def test_httpx_streams_both_ways(proto: Target) -> None:
    """A generator upload to /echo read back with iter_bytes while it is still being sent (each
    chunk is produced only once the previous one came back: a transport that buffered either
    side would fail), and a large body streamed in chunks."""
    with httpx.Client(transport=quiver.httpx.HTTPTransport(**proto.options)) as client:
        echoed = [0]
        turn = threading.Condition()

        def upload() -> Iterator[bytes]:
            for i in range(8):
                yield bytes([65 + i]) * 1000
                with turn:
                    if not turn.wait_for(lambda: echoed[0] >= (i + 1) * 1000, timeout=10):
                        raise AssertionError(f"chunk {i} was not echoed while the upload went on")

        parts: List[bytes] = []
        with client.stream("POST", proto.url("/echo"), content=upload()) as r:
            assert r.status_code == 200
            for chunk in r.iter_bytes():
                parts.append(chunk)
                with turn:
                    echoed[0] += len(chunk)
                    turn.notify_all()
        assert b"".join(parts) == b"".join(bytes([65 + i]) * 1000 for i in range(8))

        n = 8 * 1024 * 1024
        with client.stream("GET", proto.url(f"/bytes/{n}")) as r:
            body = bytearray()
            chunks = 0
            for chunk in r.iter_bytes():
                body += chunk
                chunks += 1
        assert len(body) == n and bytes(body[:100000]) == pattern(100000) and body[-26:] == pattern(26, n - 26)
        assert chunks > 1


@async_test
async def test_httpx_async_streams_both_ways(proto: Target) -> None:
    async with httpx.AsyncClient(transport=quiver.httpx.AsyncHTTPTransport(**proto.options)) as client:
        echoed = 0
        progressed = asyncio.Event()

        async def upload() -> AsyncIterator[bytes]:
            for i in range(8):
                yield bytes([97 + i]) * 500
                while echoed < (i + 1) * 500:
                    progressed.clear()
                    await asyncio.wait_for(progressed.wait(), 10)

        got = bytearray()
        async with client.stream("POST", proto.url("/echo"), content=upload()) as r:
            async for chunk in r.aiter_bytes():
                got += chunk
                echoed = len(got)
                progressed.set()
        assert bytes(got) == b"".join(bytes([97 + i]) * 500 for i in range(8))

        n = 4 * 1024 * 1024
        async with client.stream("GET", proto.url(f"/bytes/{n}")) as r:
            total = 0
            async for chunk in r.aiter_raw():
                total += len(chunk)
        assert total == n


@pytest.mark.parametrize("name", ["http1", "h2"])
def test_response_body_backpressure(server: Dict[str, Any], name: str) -> None:
    """A streamed body read slowly holds the server back (it is not buffered ahead), through
    httpx and through requests."""
    target = make_target(server, name)
    n = 256 * 1024 * 1024
    limit = 64 * 1024 * 1024

    def bytes_sent() -> int:
        with quiver.Client(**target.options) as control:
            counters: Dict[str, int] = control.get(target.url("/stats")).json()
            return counters["bytes_sent"]

    with httpx.Client(transport=quiver.httpx.HTTPTransport(**target.options)) as client:
        before = bytes_sent()
        with client.stream("GET", target.url(f"/bytes/{n}")) as r:
            chunks = r.iter_bytes()
            received = len(next(chunks))
            time.sleep(1.0)
            ahead = bytes_sent() - before - received
            received += len(next(chunks))
        assert ahead < limit, f"httpx: the server got {ahead >> 20} MiB ahead of the reader"
    with session_for(target) as s:
        before = bytes_sent()
        r = s.get(target.url(f"/bytes/{n}"), stream=True)
        received = len(r.raw.read(1000))
        time.sleep(1.0)
        ahead = bytes_sent() - before - received
        r.close()
        assert ahead < limit, f"requests: the server got {ahead >> 20} MiB ahead of the reader"


def test_httpx_timeouts_and_errors(h1: Target) -> None:
    with httpx.Client(transport=quiver.httpx.HTTPTransport(size=1)) as client:
        with pytest.raises(httpx.ReadTimeout) as info:
            client.get(h1.url("/slow/3000"), timeout=httpx.Timeout(10, read=0.2))
        err = info.value
        assert (err.kind, err.error_class) == ("read_timeout", "transient")
        assert isinstance(err.__cause__, quiver.TimeoutError) and err.__cause__.kind == "read_timeout"
        assert err.request.url == h1.url("/slow/3000")

        with pytest.raises(httpx.ConnectError) as info2:
            client.get(f"http://127.0.0.1:{free_port()}/")
        assert info2.value.kind == "connect_refused"
        assert isinstance(info2.value.__cause__, quiver.TransientError)

        # The one connection is held by an unread streamed response: httpx's pool timeout.
        with client.stream("GET", h1.url("/bytes/16000000")):
            with pytest.raises(httpx.PoolTimeout) as info3:
                client.get(h1.url("/health"), timeout=httpx.Timeout(10, pool=0.2))
            assert info3.value.kind == "checkout_timeout"
        assert client.get(h1.url("/health")).status_code == 200

        # A body cut short while httpx reads it.
        with pytest.raises(httpx.RemoteProtocolError) as info4:
            client.get(h1.url("/close-mid-body/100000"))
        assert info4.value.kind == "connection_closed"

        # timeout=None: no limit (the pool's 30 s read timeout does not apply either).
        assert client.get(h1.url("/slow/200"), timeout=None).text == "slow"


def test_httpx_errors_on_every_protocol(proto: Target) -> None:
    with httpx.Client(transport=quiver.httpx.HTTPTransport(**proto.options)) as client:
        with pytest.raises(httpx.ReadTimeout):
            client.get(proto.url("/slow/3000"), timeout=httpx.Timeout(10, read=0.2))
        with pytest.raises(httpx.RemoteProtocolError) as info:
            client.get(proto.url("/close-mid-body/100000"))
        assert info.value.kind in ("connection_closed", "stream_reset")
        assert client.get(proto.url("/health")).status_code == 200


def test_httpx_tls_failure_is_connect_error(server: Dict[str, Any]) -> None:
    target = make_target(server, "h2")
    with httpx.Client(transport=quiver.httpx.HTTPTransport(ca_file=server["wrong_ca_file"])) as client:
        with pytest.raises(httpx.ConnectError) as info:
            client.get(target.url("/health"))
    assert (info.value.kind, info.value.error_class) == ("tls", "unrecoverable")


def test_httpx_body_iterator_exception_is_raised_as_is(h1: Target) -> None:
    class Boom(Exception):
        pass

    def upload() -> Iterator[bytes]:
        yield b"first"
        raise Boom("from the body")

    with httpx.Client(transport=quiver.httpx.HTTPTransport()) as client:
        with pytest.raises(Boom, match="from the body"):
            client.post(h1.url("/sink"), content=upload())


@async_test
async def test_httpx_async_timeouts_and_errors(h1: Target) -> None:
    async with httpx.AsyncClient(transport=quiver.httpx.AsyncHTTPTransport(size=1)) as client:
        with pytest.raises(httpx.ReadTimeout) as info:
            await client.get(h1.url("/slow/3000"), timeout=httpx.Timeout(10, read=0.2))
        assert info.value.kind == "read_timeout"
        with pytest.raises(httpx.ConnectError) as info2:
            await client.get(f"http://127.0.0.1:{free_port()}/")
        assert info2.value.kind == "connect_refused"
        async with client.stream("GET", h1.url("/bytes/16000000")):
            with pytest.raises(httpx.PoolTimeout) as info3:
                await client.get(h1.url("/health"), timeout=httpx.Timeout(10, pool=0.2))
            assert info3.value.kind == "checkout_timeout"
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(h1.url("/close-mid-body/100000"))
        assert (await client.get(h1.url("/health"))).status_code == 200


def test_httpx_redirects_cookies_and_auth_stay_with_httpx(proto: Target) -> None:
    with httpx.Client(transport=quiver.httpx.HTTPTransport(**proto.options)) as client:
        r = client.get(proto.url("/redirect/3"))
        assert r.status_code == 302 and r.headers["location"].startswith("/redirect/2")
        r = client.get(proto.url("/redirect/3"), follow_redirects=True)
        assert r.status_code == 200
        assert [h.status_code for h in r.history] == [302, 302, 302]
        assert str(r.url) == proto.url("/redirect/0")
        assert r.json()["path"] == "/redirect/0"

        client.get(proto.url("/set-cookie?v=a%3D1"))
        assert client.cookies["a"] == "1"
        assert client.get(proto.url("/cookies")).json() == {"a": "1"}

        assert client.get(proto.url("/basic-auth/u/p")).status_code == 401
        assert client.get(proto.url("/basic-auth/u/p"), auth=("u", "p")).json()["authenticated"] is True
        r = client.get(proto.url("/digest-auth/auth/u/p"), auth=httpx.DigestAuth("u", "p"))
        assert r.status_code == 200 and r.json()["authenticated"] is True
        # Credentials in the URL: httpx sends them as Basic, the transport drops them from the URL.
        with_credentials = proto.url("/basic-auth/u/p").replace("://", "://u:p@")
        assert client.get(with_credentials).json()["authenticated"] is True


def test_httpx_decodes_gzip_once(proto: Target) -> None:
    with httpx.Client(transport=quiver.httpx.HTTPTransport(**proto.options)) as client:
        r = client.get(proto.url("/encoded/gzip/100000"))
        assert r.headers["content-encoding"] == "gzip"
        assert r.content == pattern(100000)
        # Below httpx the bytes are as the server sent them.
        with client.stream("GET", proto.url("/encoded/gzip/100000")) as r:
            raw = b"".join(r.iter_raw())
        assert len(raw) == int(r.headers["content-length"]) < 100000


def test_httpx_trailers_extension(proto: Target) -> None:
    with httpx.Client(transport=quiver.httpx.HTTPTransport(**proto.options)) as client:
        r = client.get(proto.url("/trailers"), headers={"te": "trailers"})
    assert r.text == "hello trailers"
    assert r.extensions["trailers"] == [(b"x-trailer-one", b"1"), (b"x-trailer-two", b"2")]


@pytest.mark.parametrize("name", ["http1", "h2"])
@async_test
async def test_httpx_1000_concurrent_requests(server: Dict[str, Any], name: str) -> None:
    target = make_target(server, name)
    transport = quiver.httpx.AsyncHTTPTransport(size=64, **target.options)
    async with httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(30)) as client:
        responses = await asyncio.gather(*[client.get(target.url(f"/bytes/{i % 50}")) for i in range(1000)])
        assert [r.content for r in responses] == [pattern(i % 50) for i in range(1000)]
        assert {r.http_version for r in responses} == {target.version}
        stats = transport.stats()
    if name == "h2":
        assert stats["connections_opened"] <= 4
    else:
        assert stats["connections_opened"] <= 64


def test_httpx_transport_options() -> None:
    with pytest.raises(quiver.InvalidError) as info:
        quiver.httpx.HTTPTransport(size=0)
    assert info.value.kind == "invalid_config"
    with pytest.raises(quiver.InvalidError):
        quiver.httpx.AsyncHTTPTransport(no_such_option=1)
    for name, value in [("cookies", True), ("follow_redirects", True), ("basic_auth", "u:p"), ("decompress", True)]:
        with pytest.raises(TypeError, match="belongs to httpx"):
            quiver.httpx.HTTPTransport(**{name: value})
    with quiver.httpx.HTTPTransport(protocol="http2", pools={"https://*.example.com": {"size": 4}}) as t:
        assert t.stats()["connections"] == 0


# -- requests ----------------------------------------------------------------------------------


def test_requests_plain(proto: Target) -> None:
    with session_for(proto) as s:
        r = s.get(proto.url("/headers"), params={"q": "1"})
        assert (r.status_code, r.reason, r.ok) == (200, "OK", True)
        assert r.json()["query"] == "q=1"
        assert r.raw.version_string == proto.version
        assert r.url == proto.url("/headers?q=1")
        assert r.encoding is None or isinstance(r.encoding, str)
        assert r.raw.version == {"HTTP/1.1": 11, "HTTP/2": 20, "HTTP/3": 30}[proto.version]
        r = s.post(proto.url("/echo"), json={"a": 1})
        assert r.json() == {"a": 1} and r.headers["x-echo-method"] == "POST"
        r = s.post(proto.url("/echo"), data={"k": "v w"})
        assert r.text == "k=v+w" and r.headers["content-type"] == "application/x-www-form-urlencoded"
        assert s.put(proto.url("/headers")).json()["method"] == "PUT"
        assert s.delete(proto.url("/headers")).json()["method"] == "DELETE"
        r = s.head(proto.url("/bytes/100"))
        assert (r.content, r.headers["content-length"]) == (b"", "100")
        r = s.post(proto.url("/multipart"), data={"x": "1"}, files={"f": ("a.txt", b"hello")})
        parts = r.json()["parts"]
        assert [(p["name"], p["filename"], p["text"]) for p in parts] == [("x", None, "1"), ("f", "a.txt", "hello")]
        r = s.get(proto.url("/status/503"))
        assert r.status_code == 503
        with pytest.raises(requests.HTTPError):
            r.raise_for_status()


def test_requests_streaming(proto: Target, tmp_path: Any) -> None:
    n = 3 * 1024 * 1024
    with session_for(proto) as s:
        path = tmp_path / "upload.bin"
        path.write_bytes(pattern(300000))
        with open(path, "rb") as f:
            r = s.post(proto.url("/echo"), data=f)
        assert r.content == pattern(300000)

        r = s.get(proto.url(f"/bytes/{n}"), stream=True)
        assert r.raw.read(10) == pattern(10)
        body = bytearray(pattern(10))
        sizes = []
        for chunk in r.iter_content(chunk_size=65536):
            sizes.append(len(chunk))
            body += chunk
        assert bytes(body) == pattern(n)
        assert max(sizes) <= 65536 and len(sizes) > 1
        r.close()

        # Uploads from a generator and a file object; lines read back as they come.
        lines = (f"line {i}\n".encode() for i in range(1000))
        r = s.post(proto.url("/echo"), data=lines, stream=True)
        assert list(r.iter_lines()) == [f"line {i}".encode() for i in range(1000)]


def test_requests_streams_both_ways(proto: Target) -> None:
    with session_for(proto) as s:
        echoed = [0]
        turn = threading.Condition()

        def upload() -> Iterator[bytes]:
            for i in range(6):
                yield b"z" * 700
                with turn:
                    if not turn.wait_for(lambda: echoed[0] >= (i + 1) * 700, timeout=10):
                        raise AssertionError(f"chunk {i} was not echoed while the upload went on")

        r = s.post(proto.url("/echo"), data=upload(), stream=True)
        total = 0
        for chunk in r.iter_content(chunk_size=None):
            total += len(chunk)
            with turn:
                echoed[0] = total
                turn.notify_all()
        assert total == 6 * 700


def test_requests_decodes_gzip_once(proto: Target) -> None:
    with session_for(proto) as s:
        r = s.get(proto.url("/encoded/gzip/100000"))
        assert r.headers["content-encoding"] == "gzip"
        assert r.content == pattern(100000)
        r = s.get(proto.url("/encoded/deflate/50000"), stream=True)
        assert b"".join(r.iter_content(chunk_size=1000)) == pattern(50000)
        with pytest.raises(requests.exceptions.ContentDecodingError) as info:
            s.get(proto.url("/corrupt/gzip"))
        assert info.value.kind == "decoding"


def test_requests_errors(h1: Target, server: Dict[str, Any]) -> None:
    with session_for(h1) as s:
        with pytest.raises(requests.ConnectionError) as info:
            s.get(f"http://127.0.0.1:{free_port()}/")
        assert (info.value.kind, info.value.error_class) == ("connect_refused", "transient")
        assert isinstance(info.value.__cause__, quiver.TransientError)
        assert info.value.request is not None

        with pytest.raises(requests.ReadTimeout) as info2:
            s.get(h1.url("/slow/3000"), timeout=0.2)
        assert info2.value.kind == "read_timeout"
        with pytest.raises(requests.ReadTimeout):
            s.get(h1.url("/slow/3000"), timeout=(5, 0.2))
        with pytest.raises(ValueError):
            s.get(h1.url("/health"), timeout=0)

        # While a streamed body is read, as requests reports it.
        r = s.get(h1.url("/bytes/20?chunk_size=10&delay_ms=3000"), timeout=(5, 0.3), stream=True)
        with pytest.raises(requests.ConnectionError) as info3:
            r.content
        assert info3.value.kind == "read_timeout"
        r = s.get(h1.url("/close-mid-body/100000"), stream=True)
        with pytest.raises(requests.exceptions.ChunkedEncodingError) as info4:
            r.content
        assert info4.value.kind == "connection_closed"

        class Boom(Exception):
            pass

        def upload() -> Iterator[bytes]:
            yield b"x"
            raise Boom("no more")

        with pytest.raises(Boom):
            s.post(h1.url("/sink"), data=upload())
        assert s.get(h1.url("/health")).text == "ok"

    https = make_target(server, "h2")
    with session_for(https, ca_file=server["wrong_ca_file"]) as s:
        with pytest.raises(requests.exceptions.SSLError) as info5:
            s.get(https.url("/health"))
        assert info5.value.kind == "tls"
        # verify=False: a client of its own that accepts any certificate.
        assert s.get(https.url("/health"), verify=False).text == "ok"
    with session_for(h1) as s:
        # verify= a CA bundle: a client of its own trusting it.
        assert s.get(https.url("/health"), verify=server["ca_file"]).text == "ok"
        with pytest.raises(OSError):
            s.get(https.url("/health"), verify="/no/such/ca.pem")


def test_requests_redirects_cookies_and_auth_stay_with_requests(proto: Target) -> None:
    with session_for(proto) as s:
        r = s.get(proto.url("/redirect/3"), allow_redirects=False)
        assert r.status_code == 302 and r.is_redirect
        r = s.get(proto.url("/redirect/3"))
        assert r.status_code == 200 and [h.status_code for h in r.history] == [302, 302, 302]
        assert r.url == proto.url("/redirect/0")

        s.get(proto.url("/set-cookie?v=a%3D1"))
        assert s.cookies.get("a") == "1"
        assert s.get(proto.url("/cookies")).json() == {"a": "1"}

        assert s.get(proto.url("/basic-auth/u/p"), auth=("u", "p")).json()["authenticated"] is True
        # Digest: requests answers the 401 through response.connection (the adapter).
        r = s.get(proto.url("/digest-auth/auth/u/p"), auth=requests.auth.HTTPDigestAuth("u", "p"))
        assert r.status_code == 200 and r.json()["authenticated"] is True
        with_credentials = proto.url("/basic-auth/u/p").replace("://", "://u:p@")
        assert s.get(with_credentials).json()["authenticated"] is True


def proxy_tunnels(server: Dict[str, Any]) -> int:
    with quiver.Client(proxy_from_env=False) as c:
        counters: Dict[str, int] = c.get(f"http://127.0.0.1:{server['http']}/stats").json()
        return counters["proxy_tunnels"]


def test_proxies(server: Dict[str, Any]) -> None:
    """httpx: the transport's `proxy` option; requests: the proxy requests picked for the URL.
    A proxy that refuses is each library's ProxyError."""
    target = make_target(server, "h2")
    good = f"http://quiver:secret@127.0.0.1:{server['proxy']}"
    wrong = f"http://wrong:wrong@127.0.0.1:{server['proxy']}"
    before = proxy_tunnels(server)
    with httpx.Client(transport=quiver.httpx.HTTPTransport(proxy=good, **target.options)) as client:
        assert client.get(target.url("/health")).text == "ok"
    assert proxy_tunnels(server) == before + 1
    with httpx.Client(transport=quiver.httpx.HTTPTransport(proxy=wrong, **target.options)) as client:
        with pytest.raises(httpx.ProxyError) as info:
            client.get(target.url("/health"))
        assert info.value.kind == "proxy_connect_failed"

    with session_for(target) as s:
        before = proxy_tunnels(server)
        assert s.get(target.url("/health"), proxies={"https": good}).text == "ok"
        assert proxy_tunnels(server) == before + 1
        assert s.get(target.url("/health"), proxies={}).text == "ok"  # direct
        assert proxy_tunnels(server) == before + 1
        with pytest.raises(requests.exceptions.ProxyError) as info2:
            s.get(target.url("/health"), proxies={"https": wrong})
        assert info2.value.kind == "proxy_connect_failed"
    # A proxy given to the adapter wins over requests' choice.
    with session_for(target, proxy=good) as s:
        before = proxy_tunnels(server)
        assert s.get(target.url("/health"), proxies={}).text == "ok"
        assert proxy_tunnels(server) == before + 1


def test_requests_client_certificates(server: Dict[str, Any], tmp_path: Any) -> None:
    """cert=(cert, key) and cert=one file holding both: clients of their own for mutual TLS."""
    url = f"https://localhost:{server['mtls']}/health"
    both = tmp_path / "both.pem"
    with open(server["client_cert"]) as c, open(server["client_key"]) as k:
        both.write_text(c.read() + k.read())
    with session_for(make_target(server, "h2")) as s:
        with pytest.raises(requests.RequestException):
            s.get(url)
        assert s.get(url, cert=(server["client_cert"], server["client_key"])).text == "ok"
        assert s.get(url, cert=str(both)).text == "ok"
        with pytest.raises(OSError):
            s.get(url, cert="/no/such/cert.pem")


def test_requests_threads_share_one_adapter(h1: Target) -> None:
    with session_for(h1, size=4) as s:
        results: List[bytes] = []
        lock = threading.Lock()

        def worker(i: int) -> None:
            for j in range(20):
                body = s.get(h1.url(f"/bytes/{i + j}")).content
                with lock:
                    results.append(body)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len(results) == 160
        adapter = s.get_adapter(h1.url("/"))
        assert adapter.stats()["connections_opened"] <= 4


def test_requests_adapter_options() -> None:
    with pytest.raises(quiver.InvalidError):
        quiver.requests.Adapter(size=0)
    with pytest.raises(TypeError, match="belongs to requests"):
        quiver.requests.Adapter(cookies=True)
    adapter = quiver.requests.Adapter(protocol="http1")
    copy = pickle.loads(pickle.dumps(adapter))  # as requests' own adapter, for pickled sessions
    assert isinstance(copy, quiver.requests.Adapter)
    copy.close()
    adapter.close()
    adapter.close()
