"""The client registry of Quiver's benchmark harness: one entry per row of the tables.

Every client is a command-line template. The harness fills in the paths below and replaces the
`{args}` token with the contract flags (bench/README.md, "The client contract"):

    --url URL --requests N --concurrency C --protocol auto|http1|http2|http3
    [--ca FILE] [--expect-len BYTES] [--method GET|POST --body-len B]
    [--duration SECS] [--pool-size P] [--warmup W] [--stream]

and the client prints one JSON line (client, requests, failures, seconds, rps, p50_ms, p99_ms,
cpu_s_per_10k, peak_rss_bytes, warmup, bytes, mb_per_s, proto, note). Exit status 3 means "this
client cannot do that" (reported as n/a, e.g. aiohttp asked for HTTP/2); anything else non-zero,
a timeout or a missing JSON line is a failed run.

Template fields: {rust_bin} (target/release/quiver-bench-rust), {base_rust_bin} (the
QUIVER_BASE_BIN environment variable: another build of it, for before/after runs), {base_py}
and {base_node} (QUIVER_BASE_PYPATH, QUIVER_BASE_NODE_PACKAGE: another build of the Python and Node
packages), {bin} (bench/.work/bin, where
run.sh puts the C programs), {py} (the venv's python), {node} (node), {bench} (bench/),
{proxy_h3} (the URL of the test server's MASQUE proxy, `https://localhost:PORT`), and in `env`
values also {ca} (the CA file of the server the run talks to).

Adding a row: append a Client(...) below. `requires` (files) and `check` (a command that must
exit 0) decide whether it is built; when it is not, every table lists it as "not built yet"
with `not_built` as the reason (or, when bench/run.sh tried and failed to build it, that
failure: bench/.work/build-failed/<name>). `protocols` lists what to try: a one-request probe
per protocol decides what actually runs. `kinds` lists the workload kinds the row runs in:
every row runs the matrix (get, post, stream, pool); the MASQUE workload ("64 MiB over HTTP/3:
direct vs MASQUE") has only the Rust quiver client, direct (`quiver`) and through the test
server's MASQUE proxy (`quiver-masque`, `masque=True`: the server must count a tunnel).

`mode` splits a language's rows for "vs best peer" (harness.PEER_MODES): a `sync` quiver row
(blocking calls from threads) is measured against the best `sync` peer, an `async` one (an event
loop) against the best `async` or `multi` peer (`multi`: libcurl's multi interface, pycurl, one
thread, non-blocking: a class of its own, and every quiver row of that language is also shown
against it). A row without a mode (Rust, C, Node) is measured against every peer of its language.
"""

from dataclasses import dataclass, field

# Protocol ids used everywhere in the harness (see harness.PROTOCOLS for what each means).
H1, H1TLS, H2, H2AUTO, H2C, H3 = "h1", "h1tls", "h2", "h2auto", "h2c", "h3"
ALL = (H1, H1TLS, H2, H2AUTO, H2C, H3)
# Workload kinds (see harness.WORKLOADS): the matrix, and the MASQUE comparison.
MATRIX = ("get", "post", "stream", "pool")
MASQUE = "masque"


@dataclass
class Client:
    name: str                      # the row's label
    lang: str                      # rust | c | python | node | ceiling: "same language" for ratios
    role: str                      # quiver | peer | ceiling
    cmd: str                       # command template, `{args}` = the contract flags
    protocols: tuple = ALL         # protocols to try (a probe decides)
    requires: tuple = ()           # files that must exist (templated)
    check: str | None = None       # command that must exit 0 (templated)
    not_built: str = ""            # why it may be missing (shown with "not built yet")
    env: dict = field(default_factory=dict)
    cwd: str = "{bench}"
    about: str = ""                # one line for the README / report
    kinds: tuple = MATRIX          # workload kinds it runs in (harness.Workload.kind)
    masque: bool = False           # goes through the test server's MASQUE proxy
    over: str = ""                 # an adapter row: the peer row of the library it sits under
    mode: str = ""                 # sync | async | multi | "" (no split): which peers it meets


RUST = "{rust_bin}"
PY = "{py} {bench}/py/bench_py.py"
NODE = "{node} {bench}/node/bench_node.mjs"
UNDICI = "{bench}/node/node_modules/undici/package.json"
ADAPTER = ("quiver-http with its httpx/requests adapters is not installed in bench/.work/venv "
           "(bench/run.sh builds its release wheel)")
NPM = "undici is not installed: bench/setup.sh runs npm ci in bench/node (needs Node >= 20)"
QUIVER_PY = ("the Python binding (bindings/python) is not installed in bench/.work/venv "
             "(bench/run.sh builds its release wheel)")
PIP = "not installed in bench/.work/venv: bench/setup.sh installs bench/requirements.txt"

CLIENTS = [
    # --- Rust ---------------------------------------------------------------------------------
    Client("quiver", "rust", "quiver", RUST + " --client quiver {args}",
           requires=(RUST,), not_built="build bench/rust (bench/run.sh does)",
           kinds=MATRIX + (MASQUE,),
           about="quiver-core from Rust (bench/rust)"),
    Client("quiver-listen", "rust", "quiver", RUST + " --client quiver --listener {args}",
           requires=(RUST,), not_built="build bench/rust (bench/run.sh does)",
           about="quiver-core from Rust with an event listener attached (counts every event)"),
    Client("quiver-base", "rust", "quiver", "{base_rust_bin} --client quiver {args}",
           requires=("{base_rust_bin}",),
           not_built="set QUIVER_BASE_BIN to another build's quiver-bench-rust (before/after)",
           about="another build of bench/rust (QUIVER_BASE_BIN), for a before/after comparison "
                 "in one interleaved run"),
    Client("quiver-masque", "rust", "quiver",
           RUST + " --client quiver --proxy {proxy_h3} --proxy-protocol http3 {args}",
           protocols=(H3,), requires=(RUST,), not_built="build bench/rust (bench/run.sh does)",
           kinds=(MASQUE,), masque=True,
           about="quiver-core from Rust through the test server's MASQUE proxy (proxy_h3: "
                 "pool options proxy, proxy_protocol http3)"),
    Client("reqwest", "rust", "peer", RUST + " --client reqwest {args}",
           requires=(RUST,), not_built="build bench/rust (bench/run.sh does)",
           about="reqwest 0.13 (hyper-util pool, rustls/ring); a semaphore stands in for a pool cap"),
    # --- C ------------------------------------------------------------------------------------
    Client("quiver-c", "c", "quiver", "{bin}/quiver_bench_c {args}",
           requires=("{bin}/quiver_bench_c",),
           not_built="bench/run.sh builds bench/c/quiver_bench.c against a release libquiver",
           about="libquiver (release, static) from C: quiver_client_send callbacks, each worker "
                 "re-sending on completion"),
    Client("curl-multi", "c", "peer", "{bin}/curl_multi {args}",
           requires=("{bin}/curl_multi",), not_built="bench/run.sh builds bench/c/curl_multi.c",
           about="libcurl multi interface (Debian libcurl4-openssl-dev), bench/c/curl_multi.c"),
    # --- Python -------------------------------------------------------------------------------
    Client("quiver-py", "python", "quiver", PY + " --client quiver {args}",
           check="{py} -c 'import quiver'", not_built=QUIVER_PY, mode="sync",
           about="quiver.Client (blocking) from C threads"),
    Client("quiver-py-async", "python", "quiver", PY + " --client quiver-async {args}",
           check="{py} -c 'import quiver'", not_built=QUIVER_PY, mode="async",
           about="quiver.AsyncClient from C asyncio tasks"),
    Client("quiver-py-base", "python", "quiver", PY + " --client quiver {args}",
           env={"PYTHONPATH": "{base_py}"}, requires=("{base_py}/quiver",), mode="sync",
           not_built="set QUIVER_BASE_PYPATH to a folder holding another build's quiver package",
           about="quiver-py from another build (QUIVER_BASE_PYPATH, put first on PYTHONPATH): "
                 "before/after in one run"),
    Client("quiver-py-async-base", "python", "quiver", PY + " --client quiver-async {args}",
           env={"PYTHONPATH": "{base_py}"}, requires=("{base_py}/quiver",), mode="async",
           not_built="set QUIVER_BASE_PYPATH to a folder holding another build's quiver package",
           about="quiver-py-async from another build (QUIVER_BASE_PYPATH): before/after in one run"),
    Client("quiver-py-uvloop", "python", "quiver", PY + " --client quiver-uvloop {args}",
           check="{py} -c 'import quiver, uvloop'", not_built=QUIVER_PY + ", or uvloop " + PIP,
           mode="async",
           about="quiver.AsyncClient from C asyncio tasks on uvloop's loop (uvloop.run)"),
    Client("pycurl", "python", "peer", PY + " --client pycurl {args}", mode="multi",
           about="pycurl multi (its wheel's bundled libcurl), MAX_HOST_CONNECTIONS = pool size"),
    Client("aiohttp", "python", "peer", PY + " --client aiohttp {args}", mode="async",
           protocols=(H1, H1TLS), about="aiohttp, TCPConnector(limit = pool size)"),
    Client("aiohttp-uvloop", "python", "peer", PY + " --client aiohttp-uvloop {args}",
           mode="async", protocols=(H1, H1TLS),
           check="{py} -c 'import uvloop'", not_built="uvloop " + PIP,
           about="aiohttp on uvloop's loop, TCPConnector(limit = pool size)"),
    Client("httpx", "python", "peer", PY + " --client httpx {args}", mode="async",
           about="httpx AsyncClient (+sniffio, h2), Limits(max_connections = pool size)"),
    Client("niquests", "python", "peer", PY + " --client niquests {args}", mode="async",
           check="{py} -c 'import niquests'", not_built="niquests " + PIP,
           about="niquests AsyncSession (urllib3-future: h1, h2, h3 through qh3), AsyncHTTPAdapter("
                 "pool_maxsize = pool size, pool_block), the protocol by disable_http1/2/3"),
    Client("httpx-sync", "python", "peer", PY + " --client httpx-sync {args}", mode="sync",
           about="httpx Client (h2) shared by C threads, Limits(max_connections = pool size)"),
    Client("requests", "python", "peer", PY + " --client requests {args}", mode="sync",
           protocols=(H1, H1TLS),
           about="requests Session shared by C threads, HTTPAdapter(pool_maxsize = pool size)"),
    Client("urllib3", "python", "peer", PY + " --client urllib3 {args}", mode="sync",
           protocols=(H1, H1TLS),
           about="urllib3 (upstream) PoolManager(maxsize = pool size, block) shared by C threads"),
    Client("niquests-sync", "python", "peer", PY + " --client niquests-sync {args}", mode="sync",
           check="{py} -c 'import niquests'", not_built="niquests " + PIP,
           about="niquests Session shared by C threads, HTTPAdapter(pool_maxsize = pool size, "
                 "pool_block), h1/h2/h3 by disable_http1/2/3"),
    Client("httpx+quiver", "python", "quiver", PY + " --client httpx+quiver {args}",
           check="{py} -c 'import quiver.httpx'", not_built=ADAPTER,
           over="httpx", mode="async",
           about="httpx AsyncClient over quiver.httpx.AsyncHTTPTransport (quiver's pool options)"),
    Client("httpx+quiver-sync", "python", "quiver", PY + " --client httpx+quiver-sync {args}",
           check="{py} -c 'import quiver.httpx'", not_built=ADAPTER,
           over="httpx-sync", mode="sync",
           about="httpx Client over quiver.httpx.HTTPTransport, C threads"),
    Client("requests+quiver", "python", "quiver", PY + " --client requests+quiver {args}",
           check="{py} -c 'import quiver.requests'", not_built=ADAPTER,
           over="requests", mode="sync",
           about="requests Session with quiver.requests.Adapter mounted, C threads"),
    # --- Node ---------------------------------------------------------------------------------
    Client("quiver-node", "node", "quiver", NODE + " --client quiver {args}", cwd="{bench}/node",
           check="{node} --input-type=module -e \"await import('quiver-http')\"",
           not_built="the Node binding (bindings/node, package quiver-http) is not installed in "
                     "bench/node/node_modules (bench/run.sh builds it in release; needs Node >= 20)",
           about="quiver-http from Node (release build)"),
    Client("undici", "node", "peer", NODE + " --client undici {args}", cwd="{bench}/node",
           protocols=(H1, H1TLS), requires=(UNDICI,), not_built=NPM, about="undici 7 request() through a Pool(connections = pool size)"),
    Client("undici-h2", "node", "peer", NODE + " --client undici-h2 {args}", cwd="{bench}/node",
           protocols=(H2, H2C), requires=(UNDICI,), not_built=NPM, about="undici 7 request() through a Pool with allowH2, 1 connection"),
    Client("quiver-node-base", "node", "quiver", NODE + " --client quiver {args}",
           cwd="{bench}/node", env={"QUIVER_NODE_PACKAGE": "{base_node}"},
           requires=("{base_node}/index.mjs",),
           not_built="set QUIVER_BASE_NODE_PACKAGE to another build's quiver-http package folder",
           about="quiver-node from another build (QUIVER_BASE_NODE_PACKAGE, handed to the client "
                 "as QUIVER_NODE_PACKAGE): before/after in one run"),
    Client("undici-agent", "node", "peer", NODE + " --client undici-agent {args}",
           cwd="{bench}/node", protocols=(H1, H1TLS), requires=(UNDICI,), not_built=NPM,
           about="undici 7 request() through an Agent(connections = pool size per origin)"),
    Client("fetch-agent", "node", "peer", NODE + " --client fetch-agent {args}",
           cwd="{bench}/node", protocols=(H1, H1TLS), requires=(UNDICI,), not_built=NPM,
           about="undici 7's own fetch with dispatcher: new Agent(connections = pool size)"),
    Client("fetch", "node", "peer", NODE + " --client fetch {args}", cwd="{bench}/node",
           protocols=(H1, H1TLS), env={"NODE_EXTRA_CA_CERTS": "{ca}"},
           check="{node} -e 'process.exit(+process.versions.node.split(\".\")[0] >= 20 ? 0 : 1)'",
           not_built="needs Node >= 20",
           about="Node's global fetch (bundled undici), default agent"),
    Client("fetch+quiver", "node", "quiver", NODE + " --client fetch+quiver {args}",
           cwd="{bench}/node", requires=(UNDICI,), not_built=NPM,
           check="{node} --input-type=module -e \"const q = await import('quiver-http'); "
                 "if (!q.Agent) process.exit(1)\"",
           over="fetch",
           about="Node's global fetch with setGlobalDispatcher(new quiver.Agent(pool options))"),
    # --- the ceiling --------------------------------------------------------------------------
    Client("h2load", "ceiling", "ceiling", "{py} {bench}/h2load_run.py {args}",
           protocols=(H1, H1TLS, H2, H2C), check="h2load --version",
           not_built="h2load is not installed (Debian package nghttp2-client)",
           about="h2load 1 thread: h1 -c C -m 1, h2 -c 1 -m C (does not verify certificates)"),
]
