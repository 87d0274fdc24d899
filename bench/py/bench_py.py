#!/usr/bin/env python3
"""Python clients of Quiver's benchmark harness: one run, one JSON line on stdout.

    bench_py.py --client CLIENT --url URL [--requests N]
        [--concurrency C] [--ca FILE] [--protocol auto|http1|http2|http3] [--expect-len BYTES]
        [--method GET|POST] [--body-len B] [--duration SECS] [--pool-size P] [--warmup W] [--stream]

Same flags and JSON keys as quiver-bench-rust (bench/README.md, "The client contract").
Every response is verified (2xx status and body length); failures are counted, never raised.

Fair settings: aiohttp TCPConnector(limit=pool size); httpx Limits(max_connections=pool size),
http2=True for HTTP/2 (http1=False too when it must be HTTP/2: h2c by prior knowledge); pycurl's
multi interface with CURLMOPT_MAX_HOST_CONNECTIONS=pool size and, for HTTP/2, one multiplexed
connection (PIPEWAIT), HTTP/3 where its libcurl has it; niquests an HTTPAdapter (AsyncHTTPAdapter)
with pool_maxsize=pool size, pool_block=True and the protocol picked by its disable_http1/2/3
switches; urllib3 a PoolManager(maxsize=pool size, block=True); quiver (quiver-http, the release
wheel bench/run.sh installs into the bench venv) with the pool options of the Rust row: size =
pool size, protocol, ca_file, checkout_timeout 120 s. Every client trusts the bench CA; none turns
verification off. asyncio's own loop, except the -uvloop rows (uvloop.run).

CLIENT is one of aiohttp, aiohttp-uvloop (aiohttp on uvloop's loop), httpx (AsyncClient),
httpx-sync (Client from threads), requests (one Session from threads, HTTPAdapter(pool_maxsize =
pool size)), urllib3 (one PoolManager from threads), niquests (AsyncSession), niquests-sync
(Session from threads), pycurl, quiver (Client from threads), quiver-async (AsyncClient),
quiver-uvloop (AsyncClient on uvloop's loop), and the adapters: httpx+quiver (httpx.AsyncClient
over quiver.httpx.AsyncHTTPTransport), httpx+quiver-sync (httpx.Client over
quiver.httpx.HTTPTransport, threads), requests+quiver (a Session with quiver.requests.Adapter
mounted, threads). The adapter rows get quiver's pool options; httpx/requests above them run as
they do on their own transport.
"""

import argparse
import asyncio
import inspect
import json
import resource
import ssl
import sys
import threading
import time

UNSUPPORTED = 3  # exit status: this client cannot do what was asked (the harness reports "n/a")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--client", required=True,
                   choices=["aiohttp", "aiohttp-uvloop", "httpx", "httpx-sync", "requests", "urllib3",
                            "niquests", "niquests-sync", "pycurl", "quiver", "quiver-async",
                            "quiver-uvloop", "httpx+quiver", "httpx+quiver-sync", "requests+quiver"])
    p.add_argument("--url", required=True)
    p.add_argument("--requests", type=int, default=10_000)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--ca")
    p.add_argument("--protocol", default="auto", choices=["auto", "http1", "http2", "http3"])
    p.add_argument("--expect-len", type=int)
    p.add_argument("--method", default="GET")
    p.add_argument("--body-len", type=int, default=0)
    p.add_argument("--duration", type=float)
    p.add_argument("--pool-size", type=int)
    p.add_argument("--warmup", type=int)
    p.add_argument("--stream", action="store_true")
    a = p.parse_args(argv)
    if a.concurrency < 1 or (a.pool_size is not None and a.pool_size < 1):
        p.error("--concurrency and --pool-size must be at least 1")
    if a.pool_size is None:
        a.pool_size = a.concurrency
    if a.warmup is None:
        a.warmup = 0 if a.stream else min(a.pool_size, a.concurrency)
    return a


def unsupported(msg):
    print(msg, file=sys.stderr)
    sys.exit(UNSUPPORTED)


def ssl_context(a):
    """Trusts exactly the bench CA (verification on, host names checked)."""
    if not a.url.startswith("https:"):
        return None
    ctx = ssl.create_default_context(cafile=a.ca) if a.ca else ssl.create_default_context()
    return ctx


def cpu_seconds():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class Stats:
    """What a run counts. Shared by the asyncio workers (one thread) or guarded by a lock."""

    def __init__(self, a):
        self.a = a
        self.failures = 0
        self.bytes = 0
        self.protos = set()
        self.lat = []
        self.lock = threading.Lock()

    def check(self, status, length, proto=None, err=None):
        a = self.a
        ok = err is None and 200 <= status < 300 and (a.expect_len is None or length == a.expect_len)
        if ok:
            self.bytes += length
            if proto:
                self.protos.add(proto)
        else:
            if self.failures == 0:
                if err is not None:
                    print(f"request failed: {err!r}", file=sys.stderr)
                else:
                    print(f"bad response: status {status}, {length} bytes (expected {a.expect_len})",
                          file=sys.stderr)
            self.failures += 1
        return ok

    def report(self, client, seconds, cpu, warmup, note=None):
        lat = sorted(self.lat)
        n = len(lat)

        def pct(p):
            return lat[min(int(n * p), n - 1)] * 1e3 if n else 0.0

        print(json.dumps({
            "client": client,
            "requests": n,
            "failures": self.failures,
            "seconds": seconds,
            "rps": n / seconds if seconds else 0.0,
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
            "cpu_s_per_10k": cpu * 10_000 / n if n else 0.0,
            "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "warmup": warmup,
            "bytes": self.bytes,
            "mb_per_s": self.bytes / seconds / 1e6 if seconds else 0.0,
            "proto": "+".join(sorted(self.protos)),
            "note": note,
        }), flush=True)


def proto_name(v):
    """'HTTP/1.1', 'HTTP/2', (1, 1), 2, ... -> 'h1' / 'h2' / 'h3'."""
    s = str(v).upper()
    if "3" in s.replace("HTTP/1", ""):
        return "h3"
    if "2" in s.replace("HTTP/1", ""):
        return "h2"
    return "h1"


def run_loop(coro, uvloop=False):
    """Runs an asyncio client: on asyncio's own loop, or on uvloop's (the -uvloop rows)."""
    if not uvloop:
        return asyncio.run(coro)
    try:
        import uvloop as uv
    except ImportError as e:
        coro.close()
        unsupported(f"uvloop is not installed: {e}")
    return uv.run(coro)


def urllib3_note():
    """A note when `import urllib3` is urllib3-future's drop-in copy rather than upstream urllib3
    (niquests' dependency can take over the name: see bench/requirements.txt)."""
    import urllib3
    try:
        fork = int(urllib3.__version__.split(".")[-1]) >= 900
    except ValueError:
        fork = False
    return f"urllib3 here is urllib3-future {urllib3.__version__}, not upstream urllib3" if fork else None


# ---------------------------------------------------------------------------------------------
# asyncio clients: C worker tasks over one client object.

async def run_async(a, one, stats):
    """`one()` does a request and returns (status, length, proto). Warm-up, then the timed run."""
    if a.warmup:
        # warm-up failures count in `failures` like the others
        await asyncio.gather(*(checked(one, stats) for _ in range(a.warmup)))
        stats.bytes = 0
    counter = iter(range(a.requests))
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    deadline = t0 + a.duration if a.duration else None

    async def worker():
        for _ in counter:
            t = time.perf_counter()
            if deadline is not None and t >= deadline:
                return
            await checked(one, stats)
            stats.lat.append(time.perf_counter() - t)

    await asyncio.gather(*(worker() for _ in range(a.concurrency)))
    return time.perf_counter() - t0, cpu_seconds() - cpu0


async def checked(one, stats):
    try:
        status, length, proto = await one()
    except Exception as e:  # noqa: BLE001: every failure is counted, whatever it is
        return stats.check(0, 0, err=e)
    return stats.check(status, length, proto)


async def main_aiohttp(a, name):
    import aiohttp
    if a.protocol in ("http2", "http3"):
        unsupported(f"aiohttp speaks HTTP/1.1 only (asked for {a.protocol})")
    conn = aiohttp.TCPConnector(limit=a.pool_size, limit_per_host=a.pool_size, ssl=ssl_context(a) or True)
    body = b"x" * a.body_len if a.body_len else None
    timeout = aiohttp.ClientTimeout(total=None)
    async with aiohttp.ClientSession(connector=conn, timeout=timeout, auto_decompress=False) as s:
        async def one():
            async with s.request(a.method, a.url, data=body) as r:
                if a.stream:
                    n = 0
                    async for chunk in r.content.iter_any():
                        n += len(chunk)
                else:
                    n = len(await r.read())
                return r.status, n, proto_name(f"{r.version.major}.{r.version.minor}")

        stats = Stats(a)
        secs, cpu = await run_async(a, one, stats)
    stats.report(name, secs, cpu, a.warmup)


def httpx_settings(a, quiver_transport):
    """The httpx client arguments of a row: its own pool (http2=True for HTTP/2, http1=False for h2c), or
    a quiver transport with quiver's pool options (then HTTP/3 works too)."""
    import httpx
    kwargs = {"timeout": httpx.Timeout(120.0, pool=None)}
    if quiver_transport is not None:
        kwargs["transport"] = quiver_transport(**quiver_options(a))
        return kwargs
    if a.protocol == "http3":
        unsupported("httpx has no HTTP/3")
    http2 = a.protocol in ("http2", "auto")
    if http2:
        try:
            import h2  # noqa: F401
        except ImportError:
            unsupported("httpx[http2] (the h2 package) is not installed")
    kwargs.update(http1=a.protocol != "http2", http2=http2,
                  limits=httpx.Limits(max_connections=a.pool_size,
                                      max_keepalive_connections=a.pool_size),
                  verify=ssl_context(a) or True)
    return kwargs


async def main_httpx_over(a, name, transport):
    """httpx.AsyncClient over `transport` (a quiver transport class), or its own pool (None)."""
    import httpx
    body = b"x" * a.body_len if a.body_len else None
    async with httpx.AsyncClient(**httpx_settings(a, transport)) as c:
        async def one():
            if a.stream:
                async with c.stream(a.method, a.url, content=body) as r:
                    n = 0
                    async for chunk in r.aiter_raw():
                        n += len(chunk)
                    return r.status_code, n, proto_name(r.http_version)
            r = await c.request(a.method, a.url, content=body)
            return r.status_code, len(r.content), proto_name(r.http_version)

        stats = Stats(a)
        secs, cpu = await run_async(a, one, stats)
    stats.report(name, secs, cpu, a.warmup)


def main_httpx_sync(a, name, transport):
    """httpx.Client shared by C threads, over `transport` or its own pool (None)."""
    import httpx
    body = b"x" * a.body_len if a.body_len else None
    with httpx.Client(**httpx_settings(a, transport)) as c:
        def one():
            if a.stream:
                with c.stream(a.method, a.url, content=body) as r:
                    n = 0
                    for chunk in r.iter_raw():
                        n += len(chunk)
                    return r.status_code, n, proto_name(r.http_version)
            r = c.request(a.method, a.url, content=body)
            return r.status_code, len(r.content), proto_name(r.http_version)

        stats = Stats(a)
        secs, cpu = run_threads(a, one, stats)
    stats.report(name, secs, cpu, a.warmup)


def main_requests(a, name, adapter):
    """One requests.Session shared by C threads: its HTTPAdapter (pool_maxsize = pool size,
    HTTP/1.1 only), or quiver's Adapter (`adapter`) mounted for http:// and https://."""
    import requests
    if adapter is None:
        if a.protocol not in ("http1", "auto"):
            unsupported(f"requests speaks HTTP/1.1 only (asked for {a.protocol})")
        adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=a.pool_size,
                                                pool_block=True)
        verify = a.ca or True
    else:
        adapter = adapter(**quiver_options(a))
        verify = True
    body = b"x" * a.body_len if a.body_len else None
    with requests.Session() as s:
        s.mount("http://", adapter)
        s.mount("https://", adapter)

        one = session_one(a, s, body, verify, lambda r: None)
        stats = Stats(a)
        secs, cpu = run_threads(a, one, stats)
    stats.report(name, secs, cpu, a.warmup, note=urllib3_note())


def main_urllib3(a):
    """One urllib3 PoolManager shared by C threads: maxsize = pool size, block=True (callers wait
    for a connection, as requests' pool_block), HTTP/1.1 only, no retries."""
    import urllib3
    if a.protocol not in ("http1", "auto"):
        unsupported(f"urllib3 speaks HTTP/1.1 only (asked for {a.protocol})")
    kw = {"ca_certs": a.ca} if a.ca else {}
    pm = urllib3.PoolManager(num_pools=1, maxsize=a.pool_size, block=True, retries=False,
                             timeout=urllib3.Timeout(120), **kw)
    body = b"x" * a.body_len if a.body_len else None

    def one():
        r = pm.request(a.method, a.url, body=body, preload_content=not a.stream)
        if a.stream:
            n = 0
            for chunk in r.stream(64 * 1024):
                n += len(chunk)
            r.release_conn()
        else:
            n = len(r.data)
        return r.status, n, proto_name(r.version)

    stats = Stats(a)
    secs, cpu = run_threads(a, one, stats)
    pm.clear()
    stats.report("urllib3", secs, cpu, a.warmup, note=urllib3_note())


# niquests (requests' API over urllib3-future: HTTP/1.1, HTTP/2 and HTTP/3). Its Session and
# AsyncSession get an adapter like the requests row's: pool_maxsize = pool size, pool_block=True,
# and the protocol through its disable_http1/2/3 switches (it reports the one it spoke as
# Response.http_version: 11, 20, 30). Not in multiplexed mode (its default: `multiplexed=True`
# makes every response lazy, to be collected with Session.gather()): over HTTP/2 and HTTP/3 it
# opens up to pool-size connections, one stream each while there are enough, and puts more
# streams on them once all are busy (the pool workload: up to 27 streams on a connection).
def niquests_adapter(a, cls):
    """The niquests adapter (`cls`: HTTPAdapter or AsyncHTTPAdapter) for --protocol: http1 = h1
    only; http2 = h2 only (ALPN h2 over TLS, prior knowledge on cleartext); http3 = QUIC directly
    (h1 and h2 disabled); auto = its defaults (ALPN, then Alt-Svc may move it to h3)."""
    if a.protocol == "http3":
        if not a.url.startswith("https:"):
            unsupported("HTTP/3 needs https")
        try:
            import qh3  # noqa: F401
        except ImportError:
            unsupported("niquests has no HTTP/3 here (qh3 is not installed)")
    off = {"http1": ("disable_http2", "disable_http3"), "http2": ("disable_http1", "disable_http3"),
           "http3": ("disable_http1", "disable_http2"), "auto": ()}[a.protocol]
    return cls(pool_connections=1, pool_maxsize=a.pool_size, pool_block=True,
               **{k: True for k in off})


def niquests_one_sync(a, s):
    body = b"x" * a.body_len if a.body_len else None
    return session_one(a, s, body, a.ca or True,
                       lambda r: proto_name(r.http_version) if r.http_version else None)


def session_one(a, s, body, verify, proto_of):
    """One request on a requests-shaped Session (requests, niquests): status, bytes, protocol."""
    def one():
        r = s.request(a.method, a.url, data=body, stream=a.stream, verify=verify, timeout=120)
        if a.stream:
            n = 0
            for chunk in r.iter_content(chunk_size=None):
                n += len(chunk)
            r.close()
        else:
            n = len(r.content)
        return r.status_code, n, proto_of(r)
    return one


def main_niquests_sync(a):
    """One niquests.Session shared by C threads."""
    import niquests
    with niquests.Session() as s:
        adapter = niquests_adapter(a, niquests.adapters.HTTPAdapter)
        s.mount("http://", adapter)
        s.mount("https://", adapter)
        stats = Stats(a)
        secs, cpu = run_threads(a, niquests_one_sync(a, s), stats)
    stats.report("niquests-sync", secs, cpu, a.warmup)


async def main_niquests(a):
    """niquests.AsyncSession, C asyncio tasks."""
    import niquests
    body = b"x" * a.body_len if a.body_len else None
    verify = a.ca or True
    async with niquests.AsyncSession() as s:
        adapter = niquests_adapter(a, niquests.adapters.AsyncHTTPAdapter)
        s.mount("http://", adapter)
        s.mount("https://", adapter)

        async def one():
            r = await s.request(a.method, a.url, data=body, stream=a.stream, verify=verify,
                                timeout=120)
            if a.stream:
                n = 0
                # chunk_size=None would yield the whole body at once here (the sync Session
                # yields 128 KiB blocks): ask for those
                async for chunk in await r.iter_content(chunk_size=128 * 1024):
                    n += len(chunk)
                await r.close()
            else:
                content = r.content     # bytes (stream=False preloads), awaitable on an AsyncResponse
                n = len(await content if inspect.isawaitable(content) else content)
            return r.status_code, n, proto_name(r.http_version) if r.http_version else None

        stats = Stats(a)
        secs, cpu = await run_async(a, one, stats)
    stats.report("niquests", secs, cpu, a.warmup)


# The quiver rows: quiver-http (bindings/python), the release wheel bench/run.sh builds and
# installs into bench/.work/venv. quiver.AsyncClient / quiver.Client take the engine's pool
# options as keywords; http_version is "HTTP/1.1", "HTTP/2" or "HTTP/3".
def quiver_options(a):
    """The same pool settings as the Rust row; checkout_timeout well above the pool workload's wait."""
    opts = {"size": a.pool_size, "protocol": a.protocol, "checkout_timeout": 120}
    if a.ca:
        opts["ca_file"] = a.ca
    return opts


def import_quiver():
    try:
        import quiver
    except ImportError as e:
        unsupported(f"the quiver Python binding is not installed: {e}")
    return quiver


def import_adapter(name):
    """quiver.httpx or quiver.requests (exit 3 when the binding or the adapter is missing)."""
    import_quiver()
    try:
        import importlib
        return importlib.import_module(f"quiver.{name}")
    except ImportError as e:
        unsupported(f"quiver.{name} is not available: {e}")


async def main_quiver_async(a, name):
    quiver = import_quiver()
    body = b"x" * a.body_len if a.body_len else None
    async with quiver.AsyncClient(**quiver_options(a)) as c:
        async def one():
            if a.stream:
                async with c.stream(a.method, a.url, content=body) as r:
                    n = 0
                    async for chunk in r.aiter_bytes():
                        n += len(chunk)
                    return r.status_code, n, proto_name(r.http_version)
            r = await c.request(a.method, a.url, content=body)
            return r.status_code, len(r.content), proto_name(r.http_version)

        stats = Stats(a)
        secs, cpu = await run_async(a, one, stats)
    stats.report(name, secs, cpu, a.warmup)


# ---------------------------------------------------------------------------------------------
# Blocking clients: C threads over one client object.

def run_threads(a, one, stats):
    def checked_sync():
        try:
            status, length, proto = one()
        except Exception as e:  # noqa: BLE001
            with stats.lock:
                return stats.check(0, 0, err=e)
        with stats.lock:
            return stats.check(status, length, proto)

    def spawn(n, target):
        ts = [threading.Thread(target=target) for _ in range(n)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()

    if a.warmup:
        spawn(a.warmup, checked_sync)   # its failures count like the others
        stats.bytes = 0
    counter = iter(range(a.requests))
    counter_lock = threading.Lock()
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    deadline = t0 + a.duration if a.duration else None

    def worker():
        lat = []
        while True:
            with counter_lock:
                if next(counter, None) is None:
                    break
            t = time.perf_counter()
            if deadline is not None and t >= deadline:
                break
            checked_sync()
            lat.append(time.perf_counter() - t)
        with stats.lock:
            stats.lat.extend(lat)

    spawn(a.concurrency, worker)
    return time.perf_counter() - t0, cpu_seconds() - cpu0


# A blocking quiver.Client shared by C threads (the binding releases the GIL while it waits).
def main_quiver(a):
    quiver = import_quiver()
    body = b"x" * a.body_len if a.body_len else None
    with quiver.Client(**quiver_options(a)) as c:
        def one():
            if a.stream:
                with c.stream(a.method, a.url, content=body) as r:
                    n = 0
                    for chunk in r.iter_bytes():
                        n += len(chunk)
                    return r.status_code, n, proto_name(r.http_version)
            r = c.request(a.method, a.url, content=body)
            return r.status_code, len(r.content), proto_name(r.http_version)

        stats = Stats(a)
        secs, cpu = run_threads(a, one, stats)
    stats.report("quiver-py", secs, cpu, a.warmup)


# ---------------------------------------------------------------------------------------------
# pycurl: libcurl's multi interface driven from Python (one thread, no asyncio).

def main_pycurl(a):
    import pycurl
    if a.protocol == "http3" and not (pycurl.version_info()[4] & pycurl.VERSION_HTTP3):
        unsupported("this libcurl has no HTTP/3")
    tls = a.url.startswith("https:")
    m = pycurl.CurlMulti()
    m.setopt(pycurl.M_MAX_HOST_CONNECTIONS, a.pool_size)
    m.setopt(pycurl.M_MAXCONNECTS, a.pool_size)
    m.setopt(pycurl.M_PIPELINING, pycurl.PIPE_MULTIPLEX)
    body = b"x" * a.body_len
    stats = Stats(a)

    class Xfer:
        __slots__ = ("c", "chunks", "n", "started")

    def make():
        x = Xfer()
        c = pycurl.Curl()
        x.c, x.chunks, x.n, x.started = c, [], 0, 0.0
        c.setopt(pycurl.URL, a.url)
        c.setopt(pycurl.NOSIGNAL, 1)
        c.setopt(pycurl.HTTPHEADER, ["Expect:"])
        if a.ca:
            c.setopt(pycurl.CAINFO, a.ca)
        if a.protocol == "http1":
            c.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1)
        elif a.protocol == "http2":
            c.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_2TLS if tls
                     else pycurl.CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE)
        elif a.protocol == "http3":
            c.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_3ONLY)
        if a.protocol != "http1":
            c.setopt(pycurl.PIPEWAIT, 1)
        if a.method == "POST":
            c.setopt(pycurl.POSTFIELDS, body)
        elif a.method != "GET":
            c.setopt(pycurl.CUSTOMREQUEST, a.method)
            if a.body_len:
                c.setopt(pycurl.POSTFIELDS, body)
        if a.stream:
            def on_data(chunk, x=x):
                x.n += len(chunk)
        else:
            def on_data(chunk, x=x):
                x.chunks.append(chunk)
        c.setopt(pycurl.WRITEFUNCTION, on_data)
        return x

    def start(x):
        x.chunks, x.n, x.started = [], 0, time.perf_counter()
        m.add_handle(x.c)

    def finish(x, err):
        n = x.n if a.stream else len(b"".join(x.chunks))
        status = x.c.getinfo(pycurl.RESPONSE_CODE)
        ver = x.c.getinfo(pycurl.INFO_HTTP_VERSION)
        proto = {pycurl.CURL_HTTP_VERSION_2_0: "h2", 30: "h3"}.get(ver, "h1")
        return stats.check(status, n, proto, err=err)

    def run(inflight, total, deadline, timed):
        xs = pool[:inflight]
        started = done = 0
        for x in xs[:total]:
            start(x)
            started += 1
        by_handle = {id(x.c): x for x in xs}
        while done < started:
            while True:
                ret, _ = m.perform()
                if ret != pycurl.E_CALL_MULTI_PERFORM:
                    break
            while True:
                queued, ok_list, err_list = m.info_read()
                for c, err in [(c, None) for c in ok_list] + [(c, (en, em)) for c, en, em in err_list]:
                    x = by_handle[id(c)]
                    t = time.perf_counter()
                    finish(x, None if err is None else pycurl.error(*err))
                    if timed:
                        stats.lat.append(t - x.started)
                    done += 1
                    m.remove_handle(c)
                    if started < total and (deadline is None or t < deadline):
                        start(x)
                        started += 1
                if not queued:
                    break
            if done < started:
                t = m.timeout()             # ms until libcurl wants to run a timer; -1: none
                if t != 0:
                    m.select(1.0 if t < 0 else min(t / 1000, 1.0))
        return xs

    pool = []
    n = max(a.concurrency, a.warmup)
    pool.extend(make() for _ in range(n))
    if a.warmup:
        run(a.warmup, a.warmup, None, False)   # its failures count like the others
        stats.bytes = 0
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    run(a.concurrency, a.requests, t0 + a.duration if a.duration else None, True)
    secs, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    stats.report("pycurl", secs, cpu, a.warmup)


def main(argv=None):
    a = parse_args(argv)
    if a.client == "aiohttp":
        run_loop(main_aiohttp(a, "aiohttp"))
    elif a.client == "aiohttp-uvloop":
        run_loop(main_aiohttp(a, "aiohttp-uvloop"), uvloop=True)
    elif a.client == "niquests":
        run_loop(main_niquests(a))
    elif a.client == "niquests-sync":
        main_niquests_sync(a)
    elif a.client == "urllib3":
        main_urllib3(a)
    elif a.client == "httpx":
        asyncio.run(main_httpx_over(a, "httpx", None))
    elif a.client == "httpx-sync":
        main_httpx_sync(a, "httpx-sync", None)
    elif a.client == "requests":
        main_requests(a, "requests", None)
    elif a.client == "httpx+quiver":
        asyncio.run(main_httpx_over(a, "httpx+quiver", import_adapter("httpx").AsyncHTTPTransport))
    elif a.client == "httpx+quiver-sync":
        main_httpx_sync(a, "httpx+quiver-sync", import_adapter("httpx").HTTPTransport)
    elif a.client == "requests+quiver":
        main_requests(a, "requests+quiver", import_adapter("requests").Adapter)
    elif a.client == "quiver-async":
        run_loop(main_quiver_async(a, "quiver-py-async"))
    elif a.client == "quiver-uvloop":
        run_loop(main_quiver_async(a, "quiver-py-uvloop"), uvloop=True)
    elif a.client == "quiver":
        main_quiver(a)
    elif a.client == "pycurl":
        main_pycurl(a)


if __name__ == "__main__":
    main()
