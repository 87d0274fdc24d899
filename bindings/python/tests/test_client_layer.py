"""The client layer from Python, in httpx's shape, against the test server: redirects (history,
url, limits, loops, https to http, credentials and cookies left behind on another origin),
content decoding, the cookie jar, Basic/Bearer/Digest credentials, ``files=`` uploads and the
per-request protocol; blocking and asyncio."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import threading
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional
from urllib.parse import quote

import pytest

import quiver
from conftest import Target, make_target
from support import async_test, pattern


def sent(response: quiver.Response, name: str) -> Optional[str]:
    """The value of header ``name`` in a ``/headers`` answer, if the request carried it."""
    for n, v in response.json()["headers"]:
        if n == name:
            return v
    return None


def esc(url: str) -> str:
    return quote(url, safe="")


def http(server: Dict[str, Any], path: str) -> str:
    return f"http://127.0.0.1:{server['http']}{path}"


def second(server: Dict[str, Any], path: str) -> str:
    """The second HTTP/1.1 origin, named `localhost` (cookies ignore ports)."""
    return f"http://localhost:{server['second']}{path}"


def https(server: Dict[str, Any], path: str) -> str:
    return f"https://localhost:{server['https']}{path}"


# -- exceptions -------------------------------------------------------------------------------


def test_httpx_named_exceptions() -> None:
    assert issubclass(quiver.TooManyRedirects, quiver.UnrecoverableError)
    assert issubclass(quiver.DecodingError, quiver.UnrecoverableError)
    assert not issubclass(quiver.CookieConflict, quiver.QuiverError)
    for kind in ("too_many_redirects", "redirect_refused", "decoding", "decompression_bomb"):
        assert quiver.ERROR_KINDS[kind] == "unrecoverable"
    e = quiver.TooManyRedirects("loop", "too_many_redirects", "unrecoverable")
    back = pickle.loads(pickle.dumps(e))
    assert (type(back), back.kind) == (quiver.TooManyRedirects, "too_many_redirects")


# -- redirects --------------------------------------------------------------------------------


def test_each_status_with_a_post_body(server: Dict[str, Any]) -> None:
    with quiver.Client() as client:
        for status, method, kept in [(301, "GET", False), (302, "GET", False), (303, "GET", False),
                                     (307, "POST", True), (308, "POST", True)]:
            url = http(server, f"/redirect-to?url=%2Fecho&status={status}")
            r = client.post(url, content=b"payload", headers={"content-type": "text/plain"})
            assert r.status_code == 200, status
            assert r.headers["x-echo-method"] == method, status
            assert r.content == (b"payload" if kept else b""), status
            assert r.url == http(server, "/echo")
            assert [h.status_code for h in r.history] == [status]
            hop = r.history[0]
            assert hop.url == url
            assert hop.headers["location"] == "/echo"
            assert hop.content == b"" and hop.http_version == "HTTP/1.1"
            assert hop.history == [] and hop.is_redirect


@pytest.mark.parametrize("kind", ["relative", "absolute", "scheme-relative"])
@pytest.mark.parametrize("name", ["http1", "h2"])
def test_chains_give_history_and_url(server: Dict[str, Any], name: str, kind: str) -> None:
    target = make_target(server, name)
    with quiver.Client(**target.options) as client:
        r = client.get(target.url(f"/redirect/3?kind={kind}"))
    assert r.status_code == 200
    assert r.http_version == target.version
    assert r.json()["path"] == "/redirect/0"
    assert r.url == target.url(f"/redirect/0?kind={kind}")
    assert [h.url for h in r.history] == [target.url(f"/redirect/{n}?kind={kind}") for n in (3, 2, 1)]
    assert {h.http_version for h in r.history} == {target.version}
    assert r.unfollowed_redirect is None


def test_loops_and_limits(server: Dict[str, Any]) -> None:
    with quiver.Client() as client:
        with pytest.raises(quiver.TooManyRedirects) as caught:
            client.get(http(server, "/redirect-loop"))
        assert caught.value.kind == "too_many_redirects"
        assert caught.value.error_class == "unrecoverable"
        assert len(client.get(http(server, "/redirect/10")).history) == 10
        with pytest.raises(quiver.TooManyRedirects):
            client.get(http(server, "/redirect/11"))
        # Per request.
        with pytest.raises(quiver.TooManyRedirects):
            client.get(http(server, "/redirect/3"), max_redirects=2)
        assert len(client.get(http(server, "/redirect/3"), max_redirects=3).history) == 3
        r = client.get(http(server, "/redirect/1"), max_redirects=0)
        assert r.status_code == 302 and r.history == []
    # Per client.
    with quiver.Client(max_redirects=1) as strict:
        assert strict.get(http(server, "/redirect/1")).status_code == 200
        with pytest.raises(quiver.TooManyRedirects):
            strict.get(http(server, "/redirect/2"))
        assert len(strict.get(http(server, "/redirect/2"), max_redirects=5).history) == 2


def test_follow_redirects_off_and_error_mode(server: Dict[str, Any]) -> None:
    url = http(server, "/redirect/1")
    with quiver.Client() as client:
        r = client.get(url, follow_redirects=False)
        assert r.status_code == 302 and r.is_redirect
        assert r.headers["location"] == "/redirect/0"
        assert r.text == "redirect" and r.history == [] and r.url == url
        assert r.unfollowed_redirect is None
        with pytest.raises(quiver.UnrecoverableError) as caught:
            client.get(url, redirect="error")
        assert caught.value.kind == "redirect_refused"
        assert client.get(http(server, "/health"), redirect="error").text == "ok"
        with pytest.raises(TypeError):
            client.get(url, redirect="error", follow_redirects=True)
    with quiver.Client(follow_redirects=False) as off:
        assert off.get(url).status_code == 302
        assert off.get(url, follow_redirects=True).status_code == 200


def test_https_to_http_is_refused_unless_allowed(server: Dict[str, Any]) -> None:
    url = https(server, f"/redirect-to?url={esc(http(server, '/health'))}")
    with quiver.Client(ca_file=server["ca_file"]) as client:
        with pytest.raises(quiver.UnrecoverableError) as caught:
            client.get(url)
        assert caught.value.kind == "redirect_refused"
        assert "allow_insecure_redirects" in caught.value.message
    with quiver.Client(ca_file=server["ca_file"], allow_insecure_redirects=True) as lax:
        r = lax.get(url)
        assert r.text == "ok" and r.url == http(server, "/health")


def test_credentials_and_cookies_stay_with_their_origin(server: Dict[str, Any]) -> None:
    with quiver.Client(auth=("client", "secret")) as client:
        for target, cross in [(second(server, "/headers"), True), (http(server, "/headers"), False)]:
            r = client.get(
                http(server, f"/redirect-to?url={esc(target)}"),
                cookies={"mine": "1"},
                headers={"x-custom": "kept"},
            )
            assert r.url == target
            assert sent(r, "x-custom") == "kept"
            assert (sent(r, "authorization") is None) == cross, target
            assert (sent(r, "cookie") is None) == cross, target
        # A per-request credential too.
        r = client.get(http(server, f"/redirect-to?url={esc(second(server, '/headers'))}"), auth=quiver.BearerAuth("t"))
        assert sent(r, "authorization") is None


def test_a_streamed_body_is_not_sent_again_and_the_response_says_why(server: Dict[str, Any]) -> None:
    # Over HTTP/2: `/redirect-to` answers without reading the body, and on HTTP/1.1 its
    # connection may then close while the body is still being sent.
    h2c = make_target(server, "h2c")
    with quiver.Client(**h2c.options) as client:
        r = client.post(h2c.url("/redirect-to?url=%2Fecho&status=307"), content=iter([b"streamed"]))
        assert r.status_code == 307
        assert r.unfollowed_redirect is not None and "stream" in r.unfollowed_redirect
        # A 303 drops the body: a stream is no obstacle.
        r = client.post(h2c.url("/redirect-to?url=%2Fecho&status=303"), content=iter([b"streamed"]))
        assert (r.status_code, r.headers["x-echo-method"], r.unfollowed_redirect) == (200, "GET", None)


def test_streamed_responses_keep_url_and_history(server: Dict[str, Any]) -> None:
    with quiver.Client() as client:
        with client.stream("GET", http(server, "/redirect/2")) as r:
            assert r.url == http(server, "/redirect/0")
            assert [h.status_code for h in r.history] == [302, 302]
            assert b'"/redirect/0"' in r.read()


@async_test
async def test_redirects_asyncio(server: Dict[str, Any]) -> None:
    async with quiver.AsyncClient(auth=("client", "secret")) as client:
        r = await client.post(http(server, "/redirect-to?url=%2Fecho&status=308"), content=b"kept")
        assert (r.content, r.url, len(r.history)) == (b"kept", http(server, "/echo"), 1)
        r = await client.get(http(server, "/redirect/3?kind=scheme-relative"))
        assert len(r.history) == 3 and r.url.endswith("/redirect/0?kind=scheme-relative")
        with pytest.raises(quiver.TooManyRedirects):
            await client.get(http(server, "/redirect-loop"))
        with pytest.raises(quiver.TooManyRedirects):
            await client.get(http(server, "/redirect/2"), max_redirects=1)
        assert (await client.get(http(server, "/redirect/1"), follow_redirects=False)).status_code == 302
        r = await client.get(http(server, f"/redirect-to?url={esc(second(server, '/headers'))}"), cookies={"c": "1"})
        assert sent(r, "authorization") is None and sent(r, "cookie") is None
        async with client.stream("GET", http(server, "/redirect/1")) as streamed:
            assert len(streamed.history) == 1 and streamed.url == http(server, "/redirect/0")
            await streamed.aread()
    async with quiver.AsyncClient(ca_file=server["ca_file"]) as client:
        with pytest.raises(quiver.UnrecoverableError) as caught:
            await client.get(https(server, f"/redirect-to?url={esc(http(server, '/health'))}"))
        assert caught.value.kind == "redirect_refused"


# -- decoding ---------------------------------------------------------------------------------

CODINGS = [
    "gzip",
    "deflate",
    "deflate-raw",
    "br",
    "zstd",
    "identity",
    "gzip,br",
    "zstd,deflate",
]


@pytest.mark.parametrize("name", ["http1", "h2"])
def test_each_coding_is_decoded(server: Dict[str, Any], name: str) -> None:
    target = make_target(server, name)
    with quiver.Client(**target.options) as client:
        for coding in CODINGS:
            for query in ("", "?chunked=1&chunk_size=7000"):
                r = client.get(target.url(f"/encoded/{coding}/70000{query}"))
                assert r.status_code == 200, coding
                assert r.content == pattern(70000), f"{coding}{query}"
                # Headers stay as sent, like httpx.
                assert r.headers["content-encoding"] == coding.replace("deflate-raw", "deflate").replace(",", ", ")
        assert sent(client.get(target.url("/headers")), "accept-encoding") == "gzip, deflate, br, zstd"


def test_decompress_off_gives_the_raw_bytes(server: Dict[str, Any]) -> None:
    with quiver.Client() as client:
        r = client.get(http(server, "/encoded/gzip/5000"), decompress=False)
        assert r.content[:2] == b"\x1f\x8b"
        assert gzip.decompress(r.content) == pattern(5000)
        assert sent(client.get(http(server, "/headers"), decompress=False), "accept-encoding") is None
        with client.stream("GET", http(server, "/encoded/gzip/5000?chunked=1"), decompress=False) as streamed:
            assert gzip.decompress(streamed.read()) == pattern(5000)
        # The request's own accept-encoding wins; the body is still decoded.
        r = client.get(http(server, "/encoded/gzip/100"), headers={"accept-encoding": "gzip"})
        assert r.content == pattern(100)
    with quiver.Client(decompress=False) as raw:
        assert raw.get(http(server, "/encoded/gzip/100")).content[:2] == b"\x1f\x8b"
        assert raw.get(http(server, "/encoded/gzip/100"), decompress=True).content == pattern(100)


def test_corrupt_bodies_and_bombs_are_decoding_errors(server: Dict[str, Any]) -> None:
    with quiver.Client() as client:
        for path in ("/corrupt/gzip", "/corrupt/br?kind=truncated", "/corrupt/zstd"):
            with pytest.raises(quiver.DecodingError) as caught:
                client.get(http(server, path))
            assert caught.value.kind == "decoding", path
        bomb = http(server, "/encoded/gzip/17179869184?fill=zero&chunked=1&chunk_size=1048576")
        with pytest.raises(quiver.DecodingError) as caught:
            client.get(bomb)
        assert caught.value.kind == "decompression_bomb"
        assert "max_decompression_ratio" in caught.value.message
        with client.stream("GET", bomb) as streamed:
            with pytest.raises(quiver.DecodingError) as caught:
                for _ in streamed.iter_bytes():
                    pass
            assert caught.value.kind == "decompression_bomb"


@async_test
async def test_decoding_asyncio(server: Dict[str, Any]) -> None:
    async with quiver.AsyncClient() as client:
        r = await client.get(http(server, "/encoded/br/70000?chunked=1"))
        assert r.content == pattern(70000)
        r = await client.get(http(server, "/encoded/gzip/5000"), decompress=False)
        assert gzip.decompress(r.content) == pattern(5000)
        with pytest.raises(quiver.DecodingError) as caught:
            await client.get(http(server, "/corrupt/deflate"))
        assert caught.value.kind == "decoding"
        async with client.stream("GET", http(server, "/encoded/gzip/17179869184?fill=zero&chunked=1&chunk_size=1048576")) as streamed:
            with pytest.raises(quiver.DecodingError) as caught:
                async for _ in streamed.aiter_bytes():
                    pass
            assert caught.value.kind == "decompression_bomb"


# -- cookies ----------------------------------------------------------------------------------


def test_the_jar_is_off_by_default(server: Dict[str, Any]) -> None:
    with quiver.Client() as client:
        assert client.cookies is None
        client.get(http(server, "/set-cookie?v=a%3D1"))
        assert client.get(http(server, "/cookies")).json() == {}
        # A request's own cookies still go.
        assert client.get(http(server, "/cookies"), cookies={"own": "1"}).json() == {"own": "1"}


def test_the_jar_keeps_cookies_across_redirects_and_hosts(server: Dict[str, Any]) -> None:
    with quiver.Client(cookies=True) as client:
        jar = client.cookies
        assert isinstance(jar, quiver.Cookies) and len(jar) == 0 and jar is client.cookies
        r = client.get(http(server, "/redirect-to?url=%2Fcookies&set_cookie=hop%3Dyes&set_cookie=b%3D2%3B%20Path%3D%2Fcookies"))
        assert r.json() == {"hop": "yes", "b": "2"}
        assert jar["hop"] == "yes" and "b" in jar and sorted(jar) == ["b", "hop"]
        assert dict(jar.items()) == {"hop": "yes", "b": "2"}
        [hop] = [c for c in jar.jar if c["name"] == "hop"]
        assert hop == {
            "name": "hop", "value": "yes", "domain": "127.0.0.1", "host_only": True, "path": "/",
            "secure": False, "http_only": False, "same_site": None, "expires": None,
        }
        # Path: `b` only under /cookies.
        assert sent(client.get(http(server, "/headers")), "cookie") == "hop=yes"
        # Host-only: 127.0.0.1's cookies do not go to localhost.
        assert client.get(f"http://localhost:{server['http']}/cookies").json() == {}
        # A request's own cookies replace the jar's for that request.
        assert client.get(http(server, "/cookies"), cookies={"mine": "x"}).json() == {"mine": "x"}
        # Attributes, expiry.
        client.get(http(server, "/set-cookie?v=" + esc("s=1; SameSite=Strict; HttpOnly; Max-Age=600; Path=/")))
        [s] = [c for c in jar.jar if c["name"] == "s"]
        assert s["http_only"] and s["same_site"] == "Strict" and isinstance(s["expires"], float)
        client.get(http(server, "/set-cookie?v=" + esc("s=; Max-Age=0")))
        assert "s" not in jar
        assert client.get(http(server, "/cookies")).json() == {"hop": "yes", "b": "2"}


def test_the_jar_reads_sets_deletes_clears_exports_and_imports(server: Dict[str, Any]) -> None:
    with quiver.Client(cookies=True) as client:
        jar = client.cookies
        assert jar is not None and jar is client.cookies
        jar.set("given", "by-hand", domain="127.0.0.1")
        jar.set("wide", "1", domain=".localhost")
        jar.set_cookie(http(server, "/"), "scoped=2; Path=/cookies")
        assert client.get(http(server, "/cookies")).json() == {"given": "by-hand", "scoped": "2"}
        assert jar.get("missing") is None and jar.get("missing", "d") == "d"
        assert jar.get("given", domain="127.0.0.1", path="/") == "by-hand"
        assert jar.get("given", domain="localhost") is None
        with pytest.raises(KeyError):
            jar["missing"]
        with pytest.raises(quiver.InvalidError) as caught:
            jar.set("x", "1", domain="")
        assert "domain" in caught.value.message
        with pytest.raises(quiver.InvalidError):
            jar.set("x", "1;2", domain="127.0.0.1")
        with pytest.raises(quiver.InvalidError):
            jar.set_cookie(http(server, "/"), "evil=1; Domain=example.com")
        # Two cookies of one name: pick one by domain.
        jar.set("given", "elsewhere", domain="localhost")
        with pytest.raises(quiver.CookieConflict):
            jar["given"]
        assert jar.get("given", domain="localhost") == "elsewhere"
        jar.delete("given", domain="localhost")
        assert jar["given"] == "by-hand"
        # Netscape files.
        text = jar.export_netscape()
        assert "127.0.0.1\tFALSE\t/\tFALSE\t0\tgiven\tby-hand" in text
        assert ".localhost\tTRUE\t/\tFALSE\t0\twide\t1" in text
        jar.clear(domain="localhost")
        assert sorted(jar) == ["given", "scoped"]
        jar.clear()
        assert len(jar) == 0 and not jar
        assert client.get(http(server, "/cookies")).json() == {}
        assert jar.import_netscape(text) == 3
        assert client.get(http(server, "/cookies")).json() == {"given": "by-hand", "scoped": "2"}
        assert sorted(c["name"] for c in jar.cookies_for(http(server, "/"))) == ["given"]
        del jar["given"]
        assert "given" not in jar
        with pytest.raises(quiver.InvalidError):
            jar.import_netscape("not\ta cookie file")


def test_seeding_the_jar(server: Dict[str, Any]) -> None:
    with quiver.Client(base_url=http(server, ""), cookies={"a": "1", "b": "2"}) as client:
        assert client.get("/cookies").json() == {"a": "1", "b": "2"}
        assert client.get(f"http://localhost:{server['http']}/cookies").json() == {}
    with pytest.raises(quiver.InvalidError) as caught:
        quiver.Client(cookies={"a": "1"})
    assert caught.value.kind == "invalid_config" and "base_url" in caught.value.message
    # A jar of its own: copied into the client's (domains kept), or sent with one request.
    own = quiver.Cookies()
    own.set("x", "1", domain="127.0.0.1")
    own.set_cookie(f"http://localhost:{server['http']}/", "y=2")
    with quiver.Client(cookies=own) as client:
        copied = client.cookies
        assert copied is not None and sorted(copied) == ["x", "y"]
        assert client.get(http(server, "/cookies")).json() == {"x": "1"}
        copied.clear()
        assert sorted(own) == ["x", "y"]
    with quiver.Client() as client:
        assert client.get(http(server, "/cookies"), cookies=own).json() == {"x": "1"}
    copy = quiver.Cookies(own)
    assert sorted(copy.items()) == [("x", "1"), ("y", "2")]
    with pytest.raises(TypeError):
        quiver.Cookies({"a": "1"})  # type: ignore[arg-type]
    with pytest.raises(quiver.InvalidError):
        quiver.Client(cookies=True, pools={http(server, ""): {"cookies": True}})


@async_test
async def test_cookies_asyncio(server: Dict[str, Any]) -> None:
    async with quiver.AsyncClient() as plain:
        assert plain.cookies is None
    async with quiver.AsyncClient(cookies=True) as client:
        jar = client.cookies
        assert type(jar) is quiver.Cookies
        r = await client.get(http(server, "/redirect-to?url=%2Fcookies&set_cookie=hop%3Dyes"))
        assert r.json() == {"hop": "yes"}
        jar.set("more", "1", domain="127.0.0.1")
        assert (await client.get(http(server, "/cookies"))).json() == {"hop": "yes", "more": "1"}
        assert (await client.get(http(server, "/cookies"), cookies=[("own", "2")])).json() == {"own": "2"}
        jar.delete("hop")
        assert (await client.get(http(server, "/cookies"))).json() == {"more": "1"}


# -- credentials ------------------------------------------------------------------------------


def test_basic_and_bearer(server: Dict[str, Any]) -> None:
    with quiver.Client(auth=("user", "pass word")) as client:
        r = client.get(http(server, "/basic-auth/user/pass%20word"))
        assert r.status_code == 200 and r.json()["user"] == "user"
        assert client.get(http(server, "/basic-auth/user/other")).status_code == 401
        # Per request: other credentials, or none at all.
        assert client.get(http(server, "/bearer/t0k"), auth=quiver.BearerAuth("t0k")).status_code == 200
        assert client.get(http(server, "/basic-auth/a/b"), auth=("a", "b")).status_code == 200
        assert client.get(http(server, "/basic-auth/a/b"), auth=quiver.BasicAuth("a", "b")).status_code == 200
        assert client.get(http(server, "/basic-auth/user/pass%20word"), auth=quiver.NoAuth()).status_code == 401
        # An explicit header wins.
        r = client.get(http(server, "/bearer/mine"), headers={"authorization": "Bearer mine"})
        assert r.status_code == 200
    with quiver.Client(auth=quiver.BearerAuth("tok")) as client:
        assert client.get(http(server, "/bearer/tok")).status_code == 200
    with quiver.Client(basic_auth="u:p") as client:
        assert client.get(http(server, "/basic-auth/u/p")).status_code == 200
    assert repr(quiver.BasicAuth("u", "secret")) == "BasicAuth(username='u', password='***')"
    assert repr(quiver.BearerAuth("t0k")) == "BearerAuth(token='***')"
    with pytest.raises(quiver.InvalidError):
        quiver.Client(auth=("u", "p"), basic_auth="u:p")
    with pytest.raises(quiver.InvalidError):
        quiver.Client(auth=("u:x", "p"))
    with pytest.raises(TypeError):
        quiver.Client(auth="user:pass")  # type: ignore[arg-type]
    with quiver.Client() as client:
        with pytest.raises(quiver.InvalidError) as caught:
            client.get(http(server, "/health"), auth=("a:b", "c"))
        assert caught.value.kind == "invalid_header"


def test_digest(server: Dict[str, Any]) -> None:
    with quiver.Client(auth=quiver.DigestAuth("mufasa", "Circle of Life")) as client:
        for path in ("auth/mufasa/Circle%20of%20Life", "auth/mufasa/Circle%20of%20Life/SHA-256",
                     "auth/mufasa/Circle%20of%20Life/SHA-256-sess", "none/mufasa/Circle%20of%20Life"):
            r = client.get(http(server, f"/digest-auth/{path}"))
            assert r.status_code == 200, f"{path}: {r.text}"
            assert r.json()["authenticated"] is True
        # The remembered challenge is answered on the next request (next nonce count).
        url = http(server, "/digest-auth/auth/mufasa/Circle%20of%20Life/SHA-256")
        assert client.get(url).status_code == 200
        again = client.get(url)
        assert (again.status_code, again.json()["nc"]) == (200, "00000002")
    with quiver.Client() as client:
        r = client.get(http(server, "/digest-auth/auth/u/p?stale=1"), auth=quiver.DigestAuth("u", "p"))
        assert r.status_code == 200, r.text
        r = client.get(http(server, "/digest-auth/auth/u/p/SHA-256"), auth=quiver.DigestAuth("u", "wrong"))
        assert r.status_code == 401
        r = client.post(http(server, "/digest-auth/auth/u/p"), data={"form": "1"}, auth=quiver.DigestAuth("u", "p"))
        assert r.status_code == 200


def test_credentials_per_pool_rule(server: Dict[str, Any]) -> None:
    origin = f"http://127.0.0.1:{server['http']}"
    pools: Dict[str, quiver.PoolOptions] = {
        origin: {"auth": quiver.BearerAuth("ruled")},
        f"http://localhost:{server['second']}": {"auth": ("u", "p")},
    }
    with quiver.Client(pools=pools) as client:
        assert client.get(http(server, "/bearer/ruled")).status_code == 200
        assert client.get(second(server, "/basic-auth/u/p")).status_code == 200
        assert client.get(f"http://127.0.0.1:{server['second']}/bearer/ruled").status_code == 401
        assert client.get(http(server, "/bearer/ruled"), auth=quiver.NoAuth()).status_code == 401
        # A rule's credentials go to its origin even when a redirect leads there.
        r = client.get(http(server, f"/redirect-to?url={esc(second(server, '/headers'))}"))
        assert sent(r, "authorization") == "Basic dTpw"
    with pytest.raises(quiver.InvalidError) as caught:
        quiver.Client(pools={origin: {"auth": ("u", "p"), "bearer_token": "t"}})
    assert origin in caught.value.message


@async_test
async def test_credentials_asyncio(server: Dict[str, Any]) -> None:
    async with quiver.AsyncClient(auth=quiver.DigestAuth("u", "p")) as client:
        assert (await client.get(http(server, "/digest-auth/auth/u/p/SHA-256"))).status_code == 200
        assert (await client.get(http(server, "/digest-auth/auth/u/p?stale=1"))).status_code == 200
        r = await client.get(http(server, "/digest-auth/auth/u/p"), auth=quiver.NoAuth())
        assert r.status_code == 401
        assert (await client.get(http(server, "/basic-auth/a/b"), auth=("a", "b"))).status_code == 200
        assert (await client.get(http(server, "/bearer/t"), auth=quiver.BearerAuth("t"))).status_code == 200


# -- files= -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3 MiB file on disk."""
    path = tmp_path_factory.mktemp("upload") / "big.bin"
    path.write_bytes(pattern(3 << 20))
    return path


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_form(answer: Dict[str, Any], big: Path) -> None:
    parts = answer["parts"]
    assert [p["name"] for p in parts] == ["title", "tags", "tags", "raw", "text", "disk", "memory", "typed"]
    assert [p["text"] for p in parts[:3]] == ["holiday", "a", "b"]
    assert all(p["filename"] is None for p in parts[:3])
    raw, text, disk, memory, typed = parts[3:]
    assert (raw["filename"], raw["content_type"], raw["text"]) == ("upload", "application/octet-stream", "bytes")
    assert (text["filename"], text["content_type"], text["text"]) == ("notes.txt", "text/plain", "héllo")
    assert (disk["filename"], disk["content_type"]) == ("big.bin", "application/octet-stream")
    assert disk["size"] == big.stat().st_size
    assert disk["sha256"] == sha256(big.read_bytes())
    assert (memory["filename"], memory["size"], memory["sha256"]) == ("upload", 100_000, sha256(pattern(100_000)))
    assert (typed["filename"], typed["content_type"], typed["text"]) == ("data.json", "application/x-custom", '{"a":1}')
    # Every length is known (the file's from disk, the BytesIO's by seeking): no chunking.
    assert answer["content_length"] is not None and answer["chunked"] is False
    assert answer["content_type"].startswith("multipart/form-data; boundary=")


def form(big: Path) -> Dict[str, Any]:
    return {
        "data": {"title": "holiday", "tags": ["a", "b"]},
        "files": [
            ("raw", b"bytes"),
            ("text", ("notes.txt", "héllo")),
            ("disk", open(big, "rb")),
            ("memory", io.BytesIO(pattern(100_000))),
            ("typed", ("data.json", io.BytesIO(b'{"a":1}'), "application/x-custom")),
        ],
    }


def close_files(kwargs: Dict[str, Any]) -> None:
    for _, value in kwargs["files"]:
        if hasattr(value, "close"):
            value.close()


@pytest.mark.parametrize("name", ["http1", "h2", "h3"])
def test_files_over_each_protocol(server: Dict[str, Any], name: str, big_file: Path) -> None:
    target = make_target(server, name)
    with quiver.Client(**target.options) as client:
        kwargs = form(big_file)
        try:
            r = client.post(target.url("/multipart"), **kwargs)
        finally:
            close_files(kwargs)
        assert r.status_code == 200, r.text
        assert r.http_version == target.version
        check_form(r.json(), big_file)


def test_files_shapes_and_streams(server: Dict[str, Any], big_file: Path) -> None:
    with quiver.Client() as client:
        # A dict, the file name from the file object, the content type guessed from it.
        with open(big_file, "rb") as f:
            r = client.post(http(server, "/multipart"), files={"f": f, "g": ("pic.png", b"\x89PNG")})
        parts = r.json()["parts"]
        assert (parts[0]["filename"], parts[0]["sha256"]) == ("big.bin", sha256(big_file.read_bytes()))
        assert (parts[1]["filename"], parts[1]["content_type"]) == ("pic.png", "image/png")
        # A file read partly already: the rest, streamed (not from disk by path).
        with open(big_file, "rb") as f:
            f.read(1000)
            r = client.post(http(server, "/multipart"), files={"f": f})
        assert r.json()["parts"][0]["sha256"] == sha256(big_file.read_bytes()[1000:])
        # A pipe: no length, so chunked.
        read_end, write_end = os.pipe()
        payload = pattern(300_000)

        def feed() -> None:
            with os.fdopen(write_end, "wb") as w:
                w.write(payload)

        writer = threading.Thread(target=feed)
        writer.start()
        with os.fdopen(read_end, "rb") as pipe:
            r = client.post(http(server, "/multipart?delay_ms=1"), files={"p": ("pipe.bin", pipe)})
        writer.join()
        answer = r.json()
        assert answer["chunked"] is True and answer["content_length"] is None
        assert (answer["parts"][0]["size"], answer["parts"][0]["sha256"]) == (len(payload), sha256(payload))
        # No file name: no filename parameter, no guessed type.
        r = client.post(http(server, "/multipart"), files={"n": (None, b"anonymous")})
        assert (r.json()["parts"][0]["filename"], r.json()["parts"][0]["text"]) == (None, "anonymous")
        # A failing reader fails the request with its exception as the cause.

        class Broken(io.RawIOBase):
            def readable(self) -> bool:
                return True

            def readinto(self, b: Any) -> int:
                raise ValueError("disk on fire")

        with pytest.raises(quiver.QuiverError) as caught:
            client.post(http(server, "/multipart"), files={"b": ("b.bin", Broken())})
        assert caught.value.kind == "body_stream"
        assert isinstance(caught.value.__cause__, ValueError)
        # Files go with data= only.
        with pytest.raises(TypeError):
            client.post(http(server, "/multipart"), files={"a": b"x"}, json={"a": 1})
        with pytest.raises(TypeError):
            client.post(http(server, "/multipart"), files={"a": 42})
    # Streamed parts cannot be sent again: a 307 is returned, saying why (over HTTP/2, as in
    # test_a_streamed_body_is_not_sent_again_and_the_response_says_why). In-memory forms can.
    h2c = make_target(server, "h2c")
    with quiver.Client(**h2c.options) as client:
        with open(big_file, "rb") as f:
            r = client.post(h2c.url("/redirect-to?url=%2Fmultipart&status=307"), files={"f": f})
        assert r.status_code == 307 and r.unfollowed_redirect
        r = client.post(h2c.url("/redirect-to?url=%2Fmultipart&status=307"), files={"f": b"abc"})
        assert r.status_code == 200 and r.json()["parts"][0]["text"] == "abc"


@async_test
async def test_files_asyncio(server: Dict[str, Any], big_file: Path) -> None:
    async def chunks() -> Any:
        for _ in range(4):
            yield pattern(10_000)

    for name in ("http1", "h2"):
        target = make_target(server, name)
        async with quiver.AsyncClient(**target.options) as client:
            kwargs = form(big_file)
            try:
                r = await client.post(target.url("/multipart"), **kwargs)
            finally:
                close_files(kwargs)
            assert r.status_code == 200, r.text
            check_form(r.json(), big_file)
            r = await client.post(target.url("/multipart"), files={"s": ("s.bin", chunks())})
            part = r.json()["parts"][0]
            assert (part["size"], part["sha256"]) == (40_000, sha256(pattern(10_000) * 4))


# -- per-request protocol ---------------------------------------------------------------------


def test_protocol_per_request(server: Dict[str, Any]) -> None:
    with quiver.Client(ca_file=server["ca_file"]) as client:
        assert client.get(https(server, "/health"), protocol="http1").http_version == "HTTP/1.1"
        assert client.get(https(server, "/health")).http_version == "HTTP/2"
        if "h3" in server:
            h3 = f"https://localhost:{server['h3']}/health"
            assert client.get(h3, protocol="http3").http_version == "HTTP/3"
        with pytest.raises(quiver.InvalidError) as caught:
            client.get(http(server, "/health"), protocol="http3")
        assert caught.value.kind == "invalid_config"
        with pytest.raises(quiver.InvalidError):
            client.get(http(server, "/health"), protocol="spdy")
        with client.stream("GET", https(server, "/health"), protocol="http1") as r:
            assert r.http_version == "HTTP/1.1" and r.read() == b"ok"
        # The rule's pool is the origin's; the one protocol="http1" opened is listed beside it.
        stats = client.stats()
        origin = f"https://localhost:{server['https']}"
        assert stats["origins"][origin]["protocol"] == "http2"
        assert [(o["origin"], o["protocol"]) for o in stats["other_protocols"] if o["origin"] == origin] == [
            (origin, "http1")
        ]


@async_test
async def test_protocol_per_request_asyncio(server: Dict[str, Any]) -> None:
    async with quiver.AsyncClient(ca_file=server["ca_file"]) as client:
        assert (await client.get(https(server, "/health"), protocol="http1")).http_version == "HTTP/1.1"
        assert (await client.get(https(server, "/health"))).http_version == "HTTP/2"
