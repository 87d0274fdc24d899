#!/usr/bin/env python3
"""Quiver's benchmark harness (stdlib only): `make bench` runs it through bench/run.sh.

It generates a CA and a server certificate, writes the payloads, starts nginx (HTTP/1.1, and
HTTP/1.1 over TLS), h2o (HTTP/2 over TLS, h2c) and Quiver's test server (the slow endpoint of the
pool-pressure workload, every workload over HTTP/3, and the MASQUE proxy of the "64 MiB over
HTTP/3: direct vs MASQUE" cell) on loopback ports chosen free at start, then runs every workload
through every client of the registry (bench/clients.py), interleaving the clients run by run,
with a time limit on every run. Every run's request count is confirmed on the server side. Results go to
bench/results/<timestamp>.md and .json, and the Markdown is printed.

Knobs (environment variables, or the flags of the same name):
  QUICK=1          a small subset in a few minutes (1 round, 1 s runs)
  ROUNDS=N         runs per client and workload (default 3; QUICK 1)
  DURATION=S       seconds per timed run (default 2; QUICK 1)
  ONLY=REGEX       only the cells whose id matches, e.g. 'get-1k/c64/' or '/h2c$'
  CLIENTS=a,b      only these rows (names from bench/clients.py)
  PROTOCOLS=a,b    only these protocols (h1, h1tls, h2, h2c, h3)
  MAX_MINUTES=M    stop starting runs after M minutes, report what was measured (default 240;
                   QUICK 6)
  BREAK=client     self-test: that client is told a wrong expected length, so its runs must fail
  --render X.json  run nothing: write X.md and its SVG charts again from a result JSON (today's
                   report layout and ratio rules)
The report is bench/results/<stamp>.md with its charts beside it (<stamp>-summary.svg: every
quiver surface's ratio to its best peer; <stamp>-rates-<workload>.svg: every client's median with
min–max). See bench/README.md.
"""

import argparse
import atexit
import datetime as dt
import http.client
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import charts  # noqa: E402
import clients as registry  # noqa: E402

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WORK = BENCH / ".work"
RUN = WORK / "run"          # recreated each session: certs, configs, logs
WWW = WORK / "www"          # payloads, kept between sessions
RESULTS = BENCH / "results"
IS_ROOT = os.geteuid() == 0

KiB, MiB = 1024, 1024 * 1024

# ---------------------------------------------------------------------------------------------
# Protocols and workloads

PROTOCOLS = {
    # id: (--protocol flag, label, TLS?, the version a client should report)
    "h1": ("http1", "HTTP/1.1", False, "h1"),
    "h1tls": ("http1", "HTTP/1.1 over TLS", True, "h1"),
    "h2": ("http2", "HTTP/2 over TLS", True, "h2"),
    # The default a user gets: `auto` on https (ALPN picks h2; Alt-Svc handling in play).
    "h2auto": ("auto", "HTTP/2 over TLS, protocol auto (ALPN decides)", True, "h2"),
    "h2c": ("http2", "HTTP/2 cleartext (prior knowledge)", False, "h2"),
    "h3": ("http3", "HTTP/3", True, "h3"),
}


@dataclass
class Workload:
    id: str
    title: str
    kind: str                 # get | post | stream | pool
    path: str
    expect_len: int
    concurrency: tuple
    role: str = "static"      # which server kind serves it: static | slow
    body_len: int = 0
    requests: int = 2_000_000  # upper bound; timed runs stop at --duration
    pool_size: int | None = None
    timed: bool = True        # False: runs exactly `requests` requests (no --duration)
    about: str = ""
    protocols: tuple | None = None   # only these protocol ids (None: every one a server speaks)


SLOW_MS = 20
BYTES_KINDS = ("stream", "masque")   # workloads measured in MB/s, not requests/s
WORKLOADS = [
    Workload("get-1k", "GET 1 KiB", "get", "/1k.bin", 1 * KiB, (1, 16, 64, 256)),
    Workload("get-100k", "GET 100 KiB", "get", "/100k.bin", 100 * KiB, (1, 16, 64, 256)),
    Workload("get-1m", "GET 1 MiB", "get", "/1m.bin", 1 * MiB, (1, 16, 64, 256)),
    Workload("post-1k", "POST 1 KiB", "post", "/sink", 3, (16,), body_len=1 * KiB,
             about="the server reads the body and answers `ok\\n`"),
    Workload("post-1m", "POST 1 MiB", "post", "/sink", 3, (16,), body_len=1 * MiB,
             about="the server reads the body and answers `ok\\n`"),
    Workload("stream-256m", "one 256 MiB body, streamed", "stream", "/256m.bin", 256 * MiB, (1,),
             requests=1, timed=False,
             about="one request; the body is read chunk by chunk and dropped: MB/s and peak RSS"),
    Workload("pool", f"pool pressure: 1,000 callers, pool of 10, server takes {SLOW_MS} ms",
             "pool", f"/slow/{SLOW_MS}", 4, (1000,), role="slow", requests=1000, pool_size=10,
             timed=False,
             about=f"1,000 callers at once, one request each, at most 10 connections; latency = "
                   f"queue wait + {SLOW_MS} ms. Ideal: p50 about {1000 // 10 // 2 * SLOW_MS} ms, "
                   f"p99 about {1000 // 10 * SLOW_MS} ms, max open connections 10"),
    Workload("masque-64m", "64 MiB over HTTP/3: direct vs MASQUE", "masque", f"/bytes/{64 * MiB}",
             64 * MiB, (1,), requests=1, timed=False, protocols=("h3",),
             about="one GET of 64 MiB from the test server's h3 listener (`/bytes/67108864`), the "
                   "body streamed and dropped, by the Rust quiver client: directly, and through the "
                   "test server's MASQUE proxy (`proxy_h3`; pool options `proxy`, "
                   "`proxy_protocol=http3`: QUIC inside CONNECT-UDP, HTTP/3 datagrams); the server "
                   "must count one tunnel for the MASQUE run and none for the direct one"),
]
QUICK_CELLS = {"get-1k/c64/h1", "get-1k/c64/h1tls", "get-1k/c64/h2", "get-1k/c64/h2c",
               "get-1k/c64/h3",      # when a server speaks HTTP/3
               "post-1k/c16/h1", "stream-256m/c1/h1", "pool/c1000/h1", "masque-64m/c1/h3"}
PAYLOADS = {"1k.bin": 1 * KiB, "100k.bin": 100 * KiB, "1m.bin": 1 * MiB, "256m.bin": 256 * MiB}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Processes: every child in its own process group, killed on exit, Ctrl-C or error.

CHILDREN = set()


def kill_group(p, sig=signal.SIGKILL):
    try:
        os.killpg(p.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def spawn(cmd, **kw):
    p = subprocess.Popen(cmd, start_new_session=True, **kw)
    CHILDREN.add(p)
    return p


@dataclass
class ProcResult:
    rc: int
    timed_out: bool
    stdout: str
    stderr: str
    cpu_s: float
    maxrss: int
    wall: float


def run_proc(cmd, timeout, env=None, cwd=None):
    """Runs cmd to completion (or kills its group after `timeout` s); rusage from wait4."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.monotonic()
        # Through a forking sh: Linux carries a process's peak RSS across exec, so a client
        # exec'd straight from this (bigger) Python process would report our peak as its own.
        p = spawn(["/bin/sh", "-c", '"$@"; exit $?', "sh", *cmd], stdout=out, stderr=err,
                  stdin=subprocess.DEVNULL, env=env, cwd=cwd)
        fired = threading.Event()

        def expire():
            fired.set()
            kill_group(p)

        timer = threading.Timer(timeout, expire)
        timer.start()
        try:
            _, status, ru = os.wait4(p.pid, 0)
        finally:
            timer.cancel()
            kill_group(p)           # strays (a client's own children)
            CHILDREN.discard(p)
        p.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - t0
        out.seek(0)
        err.seek(0)
        return ProcResult(p.returncode, fired.is_set(), out.read().decode(errors="replace"),
                          err.read().decode(errors="replace"), ru.ru_utime + ru.ru_stime,
                          ru.ru_maxrss * 1024, wall)


def stop_children():
    for p in list(CHILDREN):
        if p.poll() is None:
            kill_group(p, signal.SIGTERM)
    deadline = time.monotonic() + 5
    for p in list(CHILDREN):
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        kill_group(p)
        CHILDREN.discard(p)


def free_ports(n):
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def wait_port(port, proc, what, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} while starting")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout} s")


def http_get(port, path, method="GET"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request(method, path, headers={"connection": "close"})
        r = c.getresponse()
        body = r.read()
        if r.status != 200:
            raise RuntimeError(f"{method} {path} on :{port}: status {r.status}")
        return body.decode()
    finally:
        c.close()


# ---------------------------------------------------------------------------------------------
# Certificates and payloads

def make_certs(d):
    d.mkdir(parents=True, exist_ok=True)

    def ossl(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-days", "3650", "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=quiver bench CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    (d / "server.ext").write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
    ossl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
         "-CAcreateserial", "-days", "825", "-sha256", "-extfile", "server.ext", "-out", "server.crt")
    (d / "fullchain.crt").write_text((d / "server.crt").read_text() + (d / "ca.crt").read_text())
    ossl("verify", "-CAfile", "ca.crt", "server.crt")
    for f in d.iterdir():
        f.chmod(0o644)          # nginx workers and h2o run unprivileged (keys: loopback bench only)
    return d / "ca.crt"


def make_payloads():
    WWW.mkdir(parents=True, exist_ok=True)
    for name, size in PAYLOADS.items():
        f = WWW / name
        if f.exists() and f.stat().st_size == size:
            continue
        log(f"writing payload {name} ({size} bytes)")
        with open(f.with_suffix(".tmp"), "wb") as out:
            left = size
            while left:
                n = min(left, MiB)
                out.write(os.urandom(n))
                left -= n
        f.with_suffix(".tmp").rename(f)
    for p in (WWW, *WWW.iterdir()):
        p.chmod(0o755 if p.is_dir() else 0o644)


# ---------------------------------------------------------------------------------------------
# Servers. Each one serves some protocols (id -> base URL), has a CA file, and counts requests:
# mark() before a run, measure(mark, expected) after it -> {requests, conns, max_open}.
# Extension points: an HTTP/3 server (our test server's h3 listener, Hypercorn for interop) is a
# class like these whose `urls` has an "h3" entry; SERVER_FOR below says which workloads use it.

class Nginx:
    name = "nginx"
    version_cmd = ["nginx", "-v"]

    def route(self, w):
        """(path, expected body length) of a workload on this server."""
        return w.path, w.expect_len

    def __init__(self, ca):
        self.dir = RUN / "nginx"
        self.ca = str(ca)
        self.h1, self.tls = free_ports(2)
        self.urls = {"h1": f"http://127.0.0.1:{self.h1}", "h1tls": f"https://localhost:{self.tls}"}

    def start(self):
        d = self.dir
        for sub in ("logs", "tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        echo = Path("/usr/lib/nginx/modules/ngx_http_echo_module.so")
        if not echo.exists():
            raise RuntimeError("nginx's echo module is missing (Debian package libnginx-mod-http-echo)")
        (d / "nginx.conf").write_text(f"""# generated by bench/harness.py: loopback only
load_module {echo};
{"user www-data;" if IS_ROOT else ""}
worker_processes 1;            # 2-core box: leave a core to the client
worker_rlimit_nofile 65536;
pid logs/nginx.pid;
error_log logs/error.log warn;
events {{ worker_connections 8192; multi_accept on; }}
http {{
    access_log off;
    open_file_cache max=1000 inactive=60s; open_file_cache_valid 60s;
    sendfile on; tcp_nopush on; tcp_nodelay on;
    keepalive_requests 10000000;    # also caps h2 streams per connection in 1.22
    keepalive_timeout 75s;
    client_body_temp_path tmp/body; proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi; uwsgi_temp_path tmp/uwsgi; scgi_temp_path tmp/scgi;
    types {{ application/octet-stream bin; }}
    default_type application/octet-stream;
    ssl_certificate     {RUN}/certs/fullchain.crt;
    ssl_certificate_key {RUN}/certs/server.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:SSL:10m;
    server {{
        listen 127.0.0.1:{self.h1} reuseport;
        listen 127.0.0.1:{self.tls} ssl;          # HTTP/1.1 only here (h2 is h2o's)
        server_name localhost;
        root {WWW};
        location / {{ }}
        location = /nginx_status {{ stub_status; }}
        location = /sink {{                       # reads the whole body, then answers ok
            client_max_body_size 64m;
            client_body_buffer_size 2m;
            echo_read_request_body;
            echo ok;
        }}
    }}
}}
""")
        if IS_ROOT:
            subprocess.run(["chown", "-R", "www-data", str(d / "tmp")], check=True)
        chk = subprocess.run(["nginx", "-t", "-q", "-p", f"{d}/", "-c", "nginx.conf", "-e", "logs/error.log"],
                             capture_output=True, text=True)
        if chk.returncode:
            raise RuntimeError(f"nginx -t failed: {chk.stderr.strip()}")
        self.proc = spawn(["nginx", "-p", f"{d}/", "-c", "nginx.conf", "-e", "logs/error.log",
                           "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.h1, self.proc, "nginx")
        wait_port(self.tls, self.proc, "nginx")
        # Each read of stub_status is a request on a connection of its own: measure that once.
        r1 = self._status()
        r2 = self._status()
        self.overhead = (r2[0] - r1[0], r2[1] - r1[1])

    def _status(self):
        text = http_get(self.h1, "/nginx_status")
        # Active connections: 1 / server accepts handled requests / A H R / Reading ...
        nums = re.search(r"\n\s*(\d+)\s+(\d+)\s+(\d+)", text)
        return int(nums.group(3)), int(nums.group(1))

    def mark(self):
        return self._status()

    def measure(self, mark, expected):
        req, acc = self._status()
        return {"requests": req - mark[0] - self.overhead[0], "conns": acc - mark[1] - self.overhead[1],
                "max_open": None}

    def stop(self):
        if getattr(self, "proc", None) and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
            kill_group(self.proc)


class H2o:
    name = "h2o"
    version_cmd = ["h2o", "--version"]
    route = Nginx.route

    def __init__(self, ca):
        self.dir = RUN / "h2o"
        self.ca = str(ca)
        self.clear, self.tls = free_ports(2)
        self.urls = {"h2": f"https://localhost:{self.tls}", "h2auto": f"https://localhost:{self.tls}",
                     "h2c": f"http://127.0.0.1:{self.clear}"}
        self.access = self.dir / "access.log"

    def start(self):
        d = self.dir
        d.mkdir(parents=True, exist_ok=True)
        (d / "h2o.conf").write_text(f"""# generated by bench/harness.py: loopback only
error-log: {d}/error.log
num-threads: 1
{"user: nobody" if IS_ROOT else ""}
listen:
  host: 127.0.0.1
  port: {self.clear}
listen:
  host: 127.0.0.1
  port: {self.tls}
  ssl:
    certificate-file: {RUN}/certs/fullchain.crt
    key-file: {RUN}/certs/server.key
    ocsp-update-interval: 0
# the request count check: one line per request (status, connection id, protocol)
access-log:
  path: {self.access}
  format: "%s %{{connection-id}}x %H"
hosts:
  "localhost":
    paths:
      "/sink":
        mruby.handler: |
          Proc.new do |env|
            input = env["rack.input"]
            input.read if input
            [200, {{"content-type" => "text/plain"}}, ["ok\\n"]]
          end
      "/":
        file.dir: {WWW}
""")
        if IS_ROOT:
            subprocess.run(["chown", "-R", "nobody", str(d)], check=True)
        chk = subprocess.run(["h2o", "-t", "-c", str(d / "h2o.conf")], capture_output=True, text=True)
        if chk.returncode:
            raise RuntimeError(f"h2o -t failed: {(chk.stdout + chk.stderr).strip()}")
        self.log = open(d / "stdout.log", "wb")
        self.proc = spawn(["h2o", "-c", str(d / "h2o.conf")], stdout=self.log, stderr=subprocess.STDOUT)
        wait_port(self.clear, self.proc, "h2o")
        wait_port(self.tls, self.proc, "h2o")

    def _size(self):
        try:
            return self.access.stat().st_size
        except FileNotFoundError:
            return 0

    def mark(self):
        return self._size()

    def measure(self, mark, expected):
        # h2o writes the line when the request is done: wait (1 s at most) for the stragglers.
        deadline = time.monotonic() + 1.0
        while True:
            with open(self.access, "rb") as f:
                f.seek(mark)
                data = f.read()
            lines = data.splitlines()
            if len(lines) >= expected or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        fields = [ln.split() for ln in lines]
        conns = {f[1] for f in fields if len(f) > 1}
        bad = sum(1 for f in fields if not f or not f[0].startswith(b"2"))
        protos = {}
        for f in fields:
            if len(f) > 2:
                p = {b"HTTP/2": "h2", b"HTTP/1.1": "h1", b"HTTP/1.0": "h1"}.get(f[2], f[2].decode())
                protos[p] = protos.get(p, 0) + 1
        return {"requests": len(lines), "conns": len(conns), "max_open": None, "non_2xx": bad,
                "protocols": protos}

    def stop(self):
        if getattr(self, "proc", None) and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
            kill_group(self.proc)


class TestServer:
    """Quiver's own test server (tests/server): /slow/{ms}, /stats. HTTP/1.1 for now; when it
    grows HTTP/2 or HTTP/3 listeners, their ports appear in its JSON line under the keys of
    KEYS and the pool workload runs over them too."""
    name = "quiver-testserver"
    KEYS = {"http": "h1", "https": "h1tls", "h2c": "h2c", "h2": "h2", "h3": "h3"}
    version_cmd = None

    def __init__(self, binary):
        self.binary = binary
        self.dir = RUN / "testserver"
        self.urls = {}
        self.proxy_h3 = None      # the MASQUE proxy's URL, when the server has one
        self.ca = None

    def start(self):
        self.dir.mkdir(parents=True, exist_ok=True)
        self.err = open(RUN / "testserver.log", "wb")
        self.proc = spawn([str(self.binary), "--dir", str(self.dir)], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=self.err)
        line = b""
        deadline = time.monotonic() + 30
        import select
        while not line.endswith(b"\n"):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"the test server did not print its JSON line (see {RUN}/testserver.log)")
            r, _, _ = select.select([self.proc.stdout], [], [], 0.5)
            if r:
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    raise RuntimeError("the test server closed its stdout")
                line += chunk
        info = json.loads(line)
        self.info = info
        self.ca = info["ca_file"]
        for key, proto in self.KEYS.items():
            if isinstance(info.get(key), int):
                host = "localhost" if PROTOCOLS[proto][2] else "127.0.0.1"
                scheme = "https" if PROTOCOLS[proto][2] else "http"
                self.urls[proto] = f"{scheme}://{host}:{info[key]}"
        if isinstance(info.get("proxy_h3"), int) and "h3" in self.urls:
            self.proxy_h3 = f"https://localhost:{info['proxy_h3']}"
        self.port = info["http"]
        http_get(self.port, "/health")
        m = self.mark()
        self.overhead = (0, 0)
        r = self.measure(m, 0)
        self.overhead = (r["requests"], r["conns"])

    def route(self, w):
        # Payloads are generated (`/bytes/{n}`); its /sink answers JSON, so POSTs check the status.
        if w.kind in ("get", "stream", "masque"):
            return f"/bytes/{w.expect_len}", w.expect_len
        if w.kind == "post":
            return "/sink", None
        return w.path, w.expect_len

    def _stats(self, method="GET", path="/stats"):
        return json.loads(http_get(self.port, path, method))

    def mark(self):
        s = self._stats("POST", "/stats/reset")
        return s["requests"], s["accepted"], s.get("proxy_tunnels", 0)

    def measure(self, mark, expected):
        time.sleep(0.1)   # let the server see the client's connections close before /stats opens one
        s = self._stats()
        return {"requests": s["requests"] - mark[0] - self.overhead[0],
                "conns": s["accepted"] - mark[1] - self.overhead[1],
                "max_open": s["max_open"],
                "proxy_tunnels": s.get("proxy_tunnels", 0) - mark[2]}

    def stop(self):
        if getattr(self, "proc", None) and self.proc.poll() is None:
            try:
                self.proc.stdin.close()       # it exits when stdin closes
                self.proc.wait(5)
            except (subprocess.TimeoutExpired, OSError):
                pass
            kill_group(self.proc)


# workload role -> protocol -> server name. HTTP/3: the test server's h3 listener once its JSON
# line has one (until then there are no h3 cells); Hypercorn for interop would be another class.
SERVER_FOR = {
    "static": {"h1": "nginx", "h1tls": "nginx", "h2": "h2o", "h2auto": "h2o", "h2c": "h2o",
               "h3": "quiver-testserver"},
    "slow": {"h1": "quiver-testserver", "h1tls": "quiver-testserver", "h2": "quiver-testserver",
             "h2c": "quiver-testserver", "h3": "quiver-testserver"},
}
PENDING = []
NO_H3 = ("HTTP/3 rows: no HTTP/3 server yet (they run against the test server's h3 listener as "
         "soon as its JSON line has one; Hypercorn for interop would be a server class in "
         "bench/harness.py)")


def testserver_binary():
    for prof in ("release", "debug"):
        b = ROOT / "target" / prof / "quiver-testserver"
        if b.exists():
            return b
    return None


# ---------------------------------------------------------------------------------------------
# The matrix

@dataclass
class Cell:
    workload: Workload
    concurrency: int
    proto: str
    server: object

    @property
    def id(self):
        return f"{self.workload.id}/c{self.concurrency}/{self.proto}"


@dataclass
class Row:
    spec: registry.Client
    status: str = "ok"        # ok | not built | n/a | probe failed | skipped
    reason: str = ""
    runs: list = field(default_factory=list)


def paths():
    venv_py = WORK / "venv" / "bin" / "python"
    return {
        "rust_bin": str(ROOT / "target" / "release" / "quiver-bench-rust"),
        "base_rust_bin": os.environ.get("QUIVER_BASE_BIN") or "QUIVER_BASE_BIN-is-not-set",
        "base_py": os.environ.get("QUIVER_BASE_PYPATH") or "QUIVER_BASE_PYPATH-is-not-set",
        "base_node": os.environ.get("QUIVER_BASE_NODE_PACKAGE") or "QUIVER_BASE_NODE_PACKAGE-is-not-set",
        "bin": str(WORK / "bin"),
        "py": str(venv_py if venv_py.exists() else Path(sys.executable)),
        "node": shutil.which("node") or "node",
        "bench": str(BENCH),
    }


def expand(template, extra=None):
    vals = dict(paths(), **(extra or {}))
    return template.format(**vals)


def client_argv(spec, args, server=None):
    proxy = getattr(server, "proxy_h3", None) or "none"
    parts = shlex.split(expand(spec.cmd, {"args": "\0ARGS\0", "proxy_h3": proxy}))
    out = []
    for p in parts:
        out.extend(args if p == "\0ARGS\0" else [p])
    return out


def availability(spec):
    """(True, '') or (False, reason) for 'not built yet'."""
    failed = WORK / "build-failed" / spec.name
    if failed.exists():
        why = " ".join(failed.read_text().split())[:300]
        return False, f"bench/run.sh could not build it: {why}"
    for f in spec.requires:
        path = expand(f)
        if not Path(path).exists():
            return False, f"{spec.not_built} ({path} is missing)"
    if spec.check:
        try:
            r = subprocess.run(expand(spec.check), shell=True, cwd=expand(spec.cwd),
                               capture_output=True, text=True, timeout=30)
        except subprocess.TimeoutExpired:
            return False, f"{spec.not_built} (check timed out: {expand(spec.check)})"
        if r.returncode:
            return False, spec.not_built
    return True, ""


def flags(cell, cfg, spec, probe=False):
    w, (flag, _, tls, _) = cell.workload, PROTOCOLS[cell.proto]
    server = cell.server
    path, expect = server.route(w)
    a = ["--url", server.urls[cell.proto] + path, "--protocol", flag]
    if tls:
        a += ["--ca", server.ca]
    if expect is not None:
        if cfg.break_client == spec.name and not probe:
            expect += 1    # self-test: every response must now be counted as a failure
        a += ["--expect-len", str(expect)]
    if w.kind == "post":
        a += ["--method", "POST", "--body-len", str(w.body_len)]
    if probe:   # three requests on one connection: catches broken connection reuse too
        return a + ["--requests", "2", "--concurrency", "1", "--warmup", "1"]
    a += ["--requests", str(w.requests), "--concurrency", str(cell.concurrency)]
    if w.timed:
        a += ["--duration", str(cfg.duration)]
    if w.pool_size:
        a += ["--pool-size", str(w.pool_size)]
    if w.kind in ("stream", "masque"):
        a += ["--stream"]
    return a


def run_timeout(cell, cfg):
    w = cell.workload
    if w.kind in ("stream", "masque"):
        return 240
    if w.kind == "pool":
        return 180
    return cfg.duration + 90     # + the warm-up of 256 x 1 MiB, start-up, a slow interpreter


def parse_json(stdout):
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                d = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "rps" in d and "requests" in d:
                return d
    return None


def tail(text, n=400):
    text = text.strip()
    return text if len(text) <= n else "…" + text[-n:]


def execute(spec, cell, cfg, probe=False):
    """One run of one client on one cell -> a dict (the JSON line plus the harness's checks)."""
    args = flags(cell, cfg, spec, probe)
    argv = client_argv(spec, args, cell.server)
    env = dict(os.environ)
    for k, v in spec.env.items():
        env[k] = expand(v, {"ca": cell.server.ca or ""})
    mark = cell.server.mark()
    pr = run_proc(argv, 30 if probe else run_timeout(cell, cfg), env=env, cwd=expand(spec.cwd))
    rec = {"client": spec.name, "cell": cell.id, "cmd": shlex.join(argv), "rc": pr.rc,
           "wall_s": round(pr.wall, 3), "problems": []}
    d = parse_json(pr.stdout)
    if pr.timed_out:
        rec["problems"].append(f"timed out after {run_timeout(cell, cfg) if not probe else 30} s")
    if pr.rc == 3:
        rec["unsupported"] = tail(pr.stderr) or "not supported"
        return rec
    if pr.rc != 0 and not pr.timed_out:
        rec["problems"].append(f"exit {pr.rc}: {tail(pr.stderr)}")
    if d is None:
        if pr.rc == 0:
            rec["problems"].append(f"no JSON line on stdout: {tail(pr.stdout)} {tail(pr.stderr)}")
        rec["ok"] = False
        return rec
    rec.update(d)
    rec.setdefault("peak_rss_bytes", pr.maxrss)
    rec["proc_cpu_s"] = round(pr.cpu_s, 3)
    if d.get("failures"):
        rec["problems"].append(f"{d['failures']} failed responses: {tail(pr.stderr, 200)}")
    want = PROTOCOLS[cell.proto][3]
    if d.get("proto") and d["proto"] != want:
        rec["problems"].append(f"spoke {d['proto']}, not {want}")
    # Numbers count only from runs that finished, verified every response, spoke the protocol.
    rec["valid"] = not rec["problems"]
    # The server's side of the story.
    sent = d["requests"] + d.get("warmup", 0)
    hi = d.get("requests_started", d["requests"]) + d.get("warmup", 0)
    srv = cell.server.measure(mark, sent)
    rec["server"] = srv
    if not (sent <= srv["requests"] <= hi):
        rec["problems"].append(f"server counted {srv['requests']} requests, client {sent}"
                               + (f"..{hi}" if hi != sent else ""))
    if srv.get("non_2xx"):
        rec["problems"].append(f"server logged {srv['non_2xx']} non-2xx answers")
    tunnels = srv.get("proxy_tunnels")
    if tunnels is not None:
        # Which path the run took, on the server's side: the MASQUE row must have opened a
        # tunnel through proxy_h3, every other row none.
        if spec.masque and tunnels < 1:
            rec["problems"].append("the MASQUE proxy counted no tunnel")
        elif not spec.masque and tunnels:
            rec["problems"].append(f"the proxy counted {tunnels} tunnels for a direct run")
    other = {p: n for p, n in (srv.get("protocols") or {}).items() if p != want}
    if other:
        # The server saw another protocol (clients that cannot report the version, too).
        rec["problems"].append(f"server saw {other} in a {want} cell")
        rec["valid"] = False
    rec["ok"] = not rec["problems"]
    return rec


@dataclass
class Config:
    quick: bool
    rounds: int
    duration: float
    only: str | None
    clients: set | None
    protocols: set | None
    max_minutes: float
    break_client: str | None


def build_cells(cfg, servers):
    cells = []
    for w in WORKLOADS:
        for c in w.concurrency:
            for proto in PROTOCOLS:
                if cfg.protocols and proto not in cfg.protocols:
                    continue
                sname = SERVER_FOR[w.role].get(proto)
                server = servers.get(sname)
                if not server or proto not in server.urls:
                    continue
                cell = Cell(w, c, proto, server)
                if w.protocols and proto not in w.protocols:
                    continue
                if w.kind == "masque" and not getattr(server, "proxy_h3", None):
                    continue
                if cfg.quick and cell.id not in QUICK_CELLS:
                    continue
                if cfg.only and not re.search(cfg.only, cell.id):
                    continue
                cells.append(cell)
    return cells


def summarize(row, kind):
    ok = [r for r in row.runs if r.get("valid")]
    s = {"runs": len(row.runs), "good_runs": sum(1 for r in row.runs if r.get("ok")),
         "problems": [p for r in row.runs for p in r.get("problems", [])]}
    if not ok:
        return s
    med = lambda k: statistics.median(r[k] for r in ok)  # noqa: E731
    metric = "mb_per_s" if kind in BYTES_KINDS else "rps"
    vals = [r[metric] for r in ok]
    s.update({
        "metric": metric,
        "median": statistics.median(vals), "min": min(vals), "max": max(vals),
        "p50_ms": med("p50_ms"), "p99_ms": med("p99_ms"),
        "cpu_s_per_10k": med("cpu_s_per_10k"),
        "seconds": med("seconds"),
        "peak_rss_bytes": max(r["peak_rss_bytes"] for r in ok),
        "conns": max((r["server"]["conns"] for r in ok if r.get("server")), default=None),
        "max_open": max((r["server"]["max_open"] for r in ok
                         if r.get("server") and r["server"].get("max_open") is not None), default=None),
        "proxy_tunnels": max((r["server"]["proxy_tunnels"] for r in ok
                              if r.get("server") and r["server"].get("proxy_tunnels") is not None),
                             default=None),
        "proto": "+".join(sorted({r.get("proto") for r in ok if r.get("proto")})),
        "notes": sorted({r["note"] for r in ok if r.get("note")}),
        "requests_per_run": statistics.median(r["requests"] for r in ok),
    })
    return s


# ---------------------------------------------------------------------------------------------
# Environment and versions

def cmd_out(cmd, **kw):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=20, **kw)
        return (r.stdout + r.stderr).strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unavailable ({e})"


def versions():
    v = {}
    v["nginx"] = cmd_out(["nginx", "-v"]).replace("nginx version: ", "")
    v["h2o"] = cmd_out(["h2o", "--version"]).splitlines()[0] if shutil.which("h2o") else "missing"
    v["h2load"] = cmd_out(["h2load", "--version"])
    v["node"] = cmd_out(["node", "--version"])
    v["node global fetch (bundled undici)"] = cmd_out(["node", "-p", "process.versions.undici"])
    try:
        v["undici"] = json.loads((BENCH / "node/node_modules/undici/package.json").read_text())["version"]
    except OSError:
        v["undici"] = "not installed"
    py = paths()["py"]
    v["python"] = cmd_out([py, "-c", "import sys; print(sys.version.split()[0])"])
    pkgs = cmd_out([py, "-c", "import importlib.metadata as m\n"
                    "for p in ('aiohttp','httpx','httpcore','h2','anyio','sniffio','pycurl',\n"
                    "          'requests','urllib3','niquests','urllib3-future','qh3','uvloop'):\n"
                    "    try: print(p, m.version(p))\n"
                    "    except Exception: print(p, 'missing')"])
    v["python packages"] = ", ".join(pkgs.splitlines())
    v["pycurl's libcurl"] = cmd_out([py, "-c", "import pycurl; print(pycurl.version)"])
    v["libcurl (curl-multi)"] = cmd_out(["curl-config", "--version"])
    v["rustc"] = cmd_out(["rustc", "--version"])
    try:
        lock = (BENCH / "rust/Cargo.lock").read_text()
        m = re.search(r'name = "reqwest"\nversion = "([^"]+)"', lock)
        v["reqwest"] = m.group(1) if m else "?"
    except OSError:
        v["reqwest"] = "?"
    v["gcc"] = cmd_out(["gcc", "--version"]).splitlines()[0]
    head = cmd_out(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT)
    dirty = cmd_out(["git", "status", "--porcelain", "--", "quiver-core", "quiver-ffi", "bindings"], cwd=ROOT)
    v["quiver"] = f"{head}{' + uncommitted changes' if dirty else ''}"
    # The release builds the quiver rows ran (bench/run.sh), with their build times (UTC).
    built = []
    for what, f in (("Rust", ROOT / "target/release/quiver-bench-rust"),
                    ("C (libquiver.a)", WORK / "bin/quiver_bench_c"),
                    ("Python wheel", WORK / "venv/.quiver-wheel.sha256"),
                    ("Node module", BENCH / "node/node_modules/quiver-http/.bench-build.sha256")):
        if f.exists():
            t = dt.datetime.fromtimestamp(f.stat().st_mtime, dt.timezone.utc)
            built.append(f"{what} {t:%H:%M}")
    v["quiver release builds"] = ", ".join(built) or "none"
    return v


def machine():
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    debian = Path("/etc/debian_version").read_text().strip() if Path("/etc/debian_version").exists() else "?"
    return {"cores": os.cpu_count(), "cpu": model, "kernel": platform.release(),
            "os": f"Debian {debian}", "loadavg_start": os.getloadavg()}


# ---------------------------------------------------------------------------------------------
# Report

def fmt_num(x, digits=0):
    if x is None:
        return "—"
    if digits == 0:
        return f"{x:,.0f}"
    return f"{x:,.{digits}f}"


def fmt_ms(x):
    if x is None:
        return "—"
    return f"{x:.3f}" if x < 1 else f"{x:.2f}" if x < 100 else f"{x:,.0f}"


def fmt_ratio(x):
    return "—" if x is None else f"{x:.2f}×"


# Which peers a quiver row meets in "vs best peer", by the rows' `mode` (bench/clients.py): a
# sync quiver row (blocking calls from threads) the best sync peer of its language; an async one
# (an event loop) the best async peer or pycurl (`multi`: libcurl's multi interface, one thread,
# non-blocking). A row without a mode meets every peer of its language. Every quiver row that has a
# mode is also shown against the best `multi` peer of its language (pycurl) when that is not
# already its best peer: the targets are set against pycurl.
PEER_MODES = {"sync": ("sync",), "async": ("async", "multi")}
MULTI = "multi"


def fmt_peer(r):
    """A quiver row's ratio to the best peer of its peer set, that peer's name, then (Python)
    its ratio to pycurl and (an adapter) to the library it sits under on its own transport."""
    parts = []
    if r.get("vs_peer") is not None:
        parts.append(f"{fmt_ratio(r['vs_peer'])} {r['best_peer']}")
    if r.get("vs_multi") is not None and r.get("multi_peer") != r.get("best_peer"):
        parts.append(f"{fmt_ratio(r['vs_multi'])} {r['multi_peer']}")
    if r.get("vs_over") is not None and r.get("over") != r.get("best_peer"):
        parts.append(f"{fmt_ratio(r['vs_over'])} {r['over']} alone")
    return "; ".join(parts) or "—"


def spec_fields(row):
    """A row dict's registry fields (lang, role, mode, over, masque): from the registry for the
    rows it knows (results written before a field existed get today's value), else the dict's."""
    spec = next((c for c in registry.CLIENTS if c.name == row["client"]), None)
    if spec is None:
        return {"lang": row.get("lang", ""), "role": row.get("role", ""), "mode": row.get("mode", ""),
                "over": row.get("over") or "", "masque": bool(row.get("masque"))}
    return {"lang": spec.lang, "role": spec.role, "mode": spec.mode, "over": spec.over,
            "masque": spec.masque}


def peer_ok(r):
    s = r.get("summary") or {}
    return r["status"] == "ok" and s.get("median") is not None and s.get("good_runs", 0) > 0


def add_ratios(cell):
    """Sets on every row of a cell (dicts, as in the JSON) its ratios on the cell's main metric:
    vs_peer / best_peer (the best peer of its peer set, PEER_MODES), vs_multi / multi_peer (the
    best `multi` peer of its language: pycurl), vs_h2load, vs_direct (MASQUE vs direct) and
    vs_over (an adapter row vs the library it sits under, on its own transport)."""
    rows = cell["rows"]
    for r in rows:
        r.update({k: v for k, v in spec_fields(r).items() if k in ("mode", "masque")})
    f = {r["client"]: spec_fields(r) for r in rows}
    ceiling = next((r["summary"]["median"] for r in rows
                    if f[r["client"]]["role"] == "ceiling" and peer_ok(r)), None)
    direct = next((r["summary"]["median"] for r in rows
                   if cell["kind"] == "masque" and not f[r["client"]]["masque"] and peer_ok(r)), None)

    def best(r, modes):
        lang = f[r["client"]]["lang"]
        peers = [(p["summary"]["median"], p["client"]) for p in rows
                 if f[p["client"]]["lang"] == lang and f[p["client"]]["role"] == "peer" and peer_ok(p)
                 and (modes is None or f[p["client"]]["mode"] in modes)]
        return max(peers) if peers else None

    for r in rows:
        fr = f[r["client"]]
        r.update(vs_peer=None, best_peer=None, vs_multi=None, multi_peer=None, vs_h2load=None,
                 vs_direct=None, vs_over=None, over=fr["over"] or None,
                 peer_set=fr["mode"] if fr["mode"] in PEER_MODES else "")
        if not peer_ok(r):
            continue
        med = r["summary"]["median"]
        if fr["role"] == "quiver":
            b = best(r, PEER_MODES.get(fr["mode"]))
            if b:
                r["vs_peer"], r["best_peer"] = med / b[0], b[1]
            m = best(r, (MULTI,)) if fr["mode"] else None
            if m:
                r["vs_multi"], r["multi_peer"] = med / m[0], m[1]
        if ceiling and fr["role"] != "ceiling":
            r["vs_h2load"] = med / ceiling
        if direct and fr["masque"]:
            r["vs_direct"] = med / direct
        base = next((p["summary"]["median"] for p in rows
                     if fr["over"] and p["client"] == fr["over"] and peer_ok(p)), None)
        if base:
            r["vs_over"] = med / base


def checks_text(s):
    if s["good_runs"] == s["runs"]:
        return f"ok ({s['runs']}/{s['runs']})"
    probs = s["problems"]
    first = probs[0] if probs else "failed"
    first = first.replace("|", "/").replace("\n", " ")
    if len(first) > 90:
        first = first[:90] + "…"
    return f"✗ {s['runs'] - s['good_runs']}/{s['runs']} runs: {first}"


SHORT_STATUS = {"not built": "not built", "n/a": "n/a", "probe failed": "FAILED (probe)",
                "skipped": "skipped"}


def row_value(r, with_peer=True):
    """One row of a cell in a few words: its median and ratio to the best peer, or its status."""
    s = r.get("summary", {})
    if r["status"] != "ok" or s.get("median") is None:
        return SHORT_STATUS.get(r["status"], "FAILED")
    text = fmt_num(s["median"])
    if s["good_runs"] != s["runs"]:
        text += f" ✗{s['runs'] - s['good_runs']}"
    if with_peer and r["role"] == "quiver":
        text += (f" · **{fmt_ratio(r['vs_peer'])}** {r['best_peer']}" if r.get("best_peer")
                 else " · no peer")
        if r.get("vs_multi") is not None and r.get("multi_peer") != r.get("best_peer"):
            text += f" · {fmt_ratio(r['vs_multi'])} {r['multi_peer']}"
        if r.get("vs_over") is not None and r.get("over") != r.get("best_peer"):
            text += f" · {fmt_ratio(r['vs_over'])} {r['over']} alone"
    return text


LANG_NAMES = {"rust": "Rust", "c": "C", "python": "Python", "node": "Node"}


def quiver_surfaces(cells):
    """The quiver rows of these cells, in the order they first appear: the summary's columns."""
    out = []
    for c in cells:
        for r in c["rows"]:
            if r["role"] == "quiver" and r["client"] not in out:
                out.append(r["client"])
    return out


def peer_sets_text(cells, surfaces):
    """Which peers each quiver surface's "vs best peer" uses (PEER_MODES), from this report's rows."""
    rows = {}
    for c in cells:
        for r in c["rows"]:
            rows.setdefault(r["client"], r)
    f = {n: spec_fields(r) for n, r in rows.items()}
    parts = []
    for lang in dict.fromkeys(f[n]["lang"] for n in surfaces):
        name = LANG_NAMES.get(lang, lang)
        peers = [n for n in rows if f[n]["lang"] == lang and f[n]["role"] == "peer"]
        if not peers:
            parts.append(f"{name}: no peer row")
            continue
        modes = list(dict.fromkeys(f[n]["mode"] for n in surfaces if f[n]["lang"] == lang))
        if modes == [""]:
            parts.append(f"{name}: {peers[0]}" if len(peers) == 1
                         else f"{name}: the best of {', '.join(peers)}")
            continue
        sets = []
        for mode in modes:
            qs = [n for n in surfaces if f[n]["lang"] == lang and f[n]["mode"] == mode]
            allowed = PEER_MODES.get(mode)
            ps = [p for p in peers if allowed is None or f[p]["mode"] in allowed]
            what = f"the best {mode} peer" if mode else "the best peer"
            sets.append(f"{', '.join(qs)} against {what} ({', '.join(ps) or 'none'})")
        multi = [p for p in peers if f[p]["mode"] == MULTI]
        text = f"{name}: " + "; ".join(sets)
        if multi:
            text += (f"; each also against {', '.join(multi)} (libcurl's multi interface from one "
                     f"thread, a class of its own) where that is not already the best peer")
        parts.append(text)
    return "; ".join(parts)


def render_summary(cells_out, files=None):
    """The quiver rows of every cell side by side: one column per quiver surface, each entry the
    median (req/s, MB/s for streams) with its ratio to the best peer of its peer set (named);
    h2load, the ceiling, in the last column; the charts (`files`, from write_charts). Then the
    MASQUE comparison."""
    files = files or {}
    L = []
    matrix = [c for c in cells_out if c["kind"] != "masque"]
    surfaces = quiver_surfaces(matrix)
    if matrix and surfaces:
        first = {}
        for c in matrix:
            for r in c["rows"]:
                first.setdefault(r["client"], r)
        L += ["", "## Summary: quiver rows", "",
              "Each entry: the median (requests/s; MB/s for streams), then its ratio to the best peer "
              "of its peer set, named. Peer sets: " + peer_sets_text(matrix, surfaces) + ". "
              "\"no peer\" where no peer of that set ran the cell; an adapter row (httpx+quiver, "
              "requests+quiver, fetch+quiver, ...) also against its library on its own transport "
              "(\"httpx alone\", unless that library is the best peer already); ✗N: N runs failed a check. h2load is the ceiling of the server and "
              "protocol.", ""]

        def head(n):
            f = spec_fields(first[n])
            return f"{n} ({f['lang']}, {f['mode']})" if f["mode"] in PEER_MODES else f"{n} ({f['lang']})"
        L.append("| workload | " + " | ".join(head(n) for n in surfaces) + " | h2load |")
        L.append("|---" * (len(surfaces) + 2) + "|")
        for c in matrix:
            by = {r["client"]: r for r in c["rows"]}
            vals = [row_value(by[n]) if n in by else "—" for n in surfaces]
            h2 = by.get("h2load")
            vals.append(row_value(h2, with_peer=False) if h2 else "—")
            L.append(f"| {c['title']} | " + " | ".join(vals) + " |")
        if files.get("summary"):
            L += ["", f"![Each quiver surface's ratio to its best peer, per cell]({files['summary']})"]
        rates = [(w, files.get("rates", {}).get(w)) for w in dict.fromkeys(c["workload"] for c in matrix)]
        if any(f for _, f in rates):
            L += ["", "Requests/s (MB/s for streams) of every client with min–max, per workload: "
                  + " · ".join(f"[{workload_title(w)}]({f})" for w, f in rates if f)]
    for c in cells_out:
        if c["kind"] != "masque":
            continue
        L += ["", f"## Summary: {c['title']}", "",
              "| path | MB/s median (min–max) | MASQUE vs direct |", "|---|---|---|"]
        for r in c["rows"]:
            s = r.get("summary", {})
            path = "MASQUE via proxy_h3" if r["client"] == "quiver-masque" else "direct"
            val = (f"{fmt_num(s['median'])} ({fmt_num(s['min'])}–{fmt_num(s['max'])})"
                   if r["status"] == "ok" and s.get("median") is not None else row_value(r))
            L.append(f"| {path} ({r['client']}) | {val} | {fmt_ratio(r.get('vs_direct'))} |")
        f = files.get("rates", {}).get(c["workload"])
        if f:
            L += ["", f"![MB/s direct and through MASQUE]({f})"]
    return L


def workload_title(wid):
    return next((w.title for w in WORKLOADS if w.id == wid), wid)


def write_charts(cells_out, stem, outdir):
    """Writes the report's SVG charts beside it (charts.py): `<stem>-summary.svg`, the ratio of
    every quiver surface to its best peer per cell, and `<stem>-rates-<workload>.svg`, every
    client's median with min–max per cell. Returns {"summary": file, "rates": {workload: file}}."""
    matrix = [c for c in cells_out if c["kind"] != "masque"]
    surfaces = quiver_surfaces(matrix)
    colors = charts.colors_for(surfaces + [n for n in quiver_surfaces(cells_out) if n not in surfaces])
    files = {"summary": None, "rates": {}}
    if matrix and surfaces:
        name = f"{stem}-summary.svg"
        (outdir / name).write_text(charts.ratio_chart(
            matrix, surfaces, colors, "Quiver vs the best peer of its peer set, per cell"))
        files["summary"] = name
    for wid in dict.fromkeys(c["workload"] for c in cells_out):
        cs = [c for c in cells_out if c["workload"] == wid]
        name = f"{stem}-rates-{wid}.svg"
        (outdir / name).write_text(charts.rates_chart(cs, colors, workload_title(wid)))
        files["rates"][wid] = name
    return files


def render(meta, cells_out, cfg, files=None):
    """The Markdown report; `files`: its charts (write_charts), linked where they belong."""
    files = files or {}
    L = []
    L.append(f"# Quiver benchmarks — {meta['started']}")
    L.append("")
    mode = "QUICK" if cfg.quick else "full"
    L.append(f"Mode **{mode}**: {cfg.rounds} round(s), clients interleaved run by run, "
             f"{cfg.duration:g} s per timed run. Machine: **{meta['machine']['cores']} cores** "
             f"({meta['machine']['cpu']}), kernel {meta['machine']['kernel']}, {meta['machine']['os']}; "
             f"load average at start {', '.join(f'{x:.2f}' for x in meta['machine']['loadavg_start'])}, "
             f"at end {', '.join(f'{x:.2f}' for x in meta['machine'].get('loadavg_end', ()))}. "
             f"Duration {meta['duration_s'] / 60:.1f} min.")
    if meta.get("interrupted"):
        L.append("")
        L.append(f"**Incomplete: {meta['interrupted']}.**")
    if cfg.break_client:
        L.append("")
        L.append(f"**Self-test: `{cfg.break_client}` was told a wrong expected length; its runs must show failures.**")
    L.append("")
    L.append("| component | version |")
    L.append("|---|---|")
    for k, v in meta["versions"].items():
        L.append(f"| {k} | {str(v).replace('|', '/')} |")
    L.append("")
    L.append("Servers (loopback, one worker each): nginx for HTTP/1.1 and HTTP/1.1 over TLS, "
             "h2o for HTTP/2 over TLS and h2c, Quiver's test server "
             f"({meta.get('testserver', 'not running')}) for the pool-pressure workload and for "
             "every workload over HTTP/3. Request counts are confirmed on the server side (nginx "
             "stub_status, the h2o access log, the test server's /stats). h2load does not verify "
             "certificates; every other client trusts the bench CA.")
    L.append("")
    L.append("Not built yet (listed in every table):")
    nb = meta["not_built"]
    if nb:
        for name, why in nb.items():
            L.append(f"- **{name}**: {why}")
    else:
        L.append("- none")
    for p in meta.get("pending", []):
        L.append(f"- {p}")
    L.append("")
    L.append("Columns: requests/s median over the runs (min–max); p50 and p99 latency (median over "
             "runs); CPU seconds of the client per 10,000 requests; peak RSS of the client process; "
             "connections the server accepted (max over runs); ratio of each quiver row to the best "
             "peer of its peer set (its language; in Python sync and async apart, and pycurl too), and "
             "of every row to h2load, on the median.")
    L.extend(render_summary(cells_out, files))
    problems = []
    last_w = None
    for c in cells_out:
        if c["workload"] != last_w:
            last_w = c["workload"]
            w = next(x for x in WORKLOADS if x.id == last_w)
            L.append("")
            L.append(f"## {w.title}")
            if w.about:
                L.append("")
                L.append(w.about[0].upper() + w.about[1:] + ".")
            if files.get("rates", {}).get(last_w):
                L.append("")
                L.append(f"![{w.title}: every client's median, min–max]({files['rates'][last_w]})")
        L.append("")
        L.append(f"### {c['title']}")
        L.append("")
        L.append(f"`{c['method']} {c['url']}` via {c['server']}")
        L.append("")
        kind = c["kind"]
        if kind == "stream":
            L.append("| client | lang | MB/s median (min–max) | seconds | CPU s | peak RSS MiB | vs best peer | vs h2load | checks |")
            L.append("|---|---|---|---|---|---|---|---|---|")
        elif kind == "masque":
            L.append("| client | path | MB/s median (min–max) | seconds | CPU s | peak RSS MiB | tunnels (server) | MASQUE vs direct | checks |")
            L.append("|---|---|---|---|---|---|---|---|---|")
        elif kind == "pool":
            L.append("| client | lang | req/s median (min–max) | p50 ms | p99 ms | max open conns (server) | CPU s/10k | peak RSS MiB | vs best peer | checks |")
            L.append("|---|---|---|---|---|---|---|---|---|---|")
        else:
            L.append("| client | lang | req/s median (min–max) | p50 ms | p99 ms | CPU s/10k | peak RSS MiB | conns | vs best peer | vs h2load | checks |")
            L.append("|---|---|---|---|---|---|---|---|---|---|---|")
        na = []
        for r in c["rows"]:
            s = r.get("summary", {})
            name = f"**{r['client']}**" if r["role"] == "quiver" else r["client"]
            ncols = {"stream": 9, "masque": 9, "pool": 10}.get(kind, 11)
            if r["status"] in ("n/a",):
                na.append(f"{r['client']} ({r['reason']})")
                continue
            if r["status"] != "ok" or s.get("median") is None:
                label = {"not built": "not built yet", "probe failed": "FAILED (probe)",
                         "skipped": "skipped"}.get(r["status"], "FAILED")
                why = r["reason"] or (s.get("problems") or ["no successful run"])[0]
                why = why.replace("|", "/").replace("\n", " ")
                if r["status"] == "not built":
                    why = "see the list above"
                if len(why) > 120:
                    why = why[:120] + "…"
                cells = [name, r["lang"], label] + [""] * (ncols - 4) + [why]
                L.append("| " + " | ".join(cells) + " |")
                if r["status"] not in ("not built", "skipped"):
                    problems.append((c["id"], r["client"], r["reason"] or "; ".join(s.get("problems", []))))
                continue
            rng = f"{fmt_num(s['median'])} ({fmt_num(s['min'])}–{fmt_num(s['max'])})"
            rss = fmt_num(s["peak_rss_bytes"] / MiB, 1)
            chk = checks_text(s)
            if s["good_runs"] != s["runs"]:
                problems.append((c["id"], r["client"], "; ".join(s["problems"])))
            if kind == "stream":
                cpu = s["cpu_s_per_10k"] * s["requests_per_run"] / 1e4
                L.append(f"| {name} | {r['lang']} | {rng} | {s['seconds']:.2f} | {cpu:.2f} | {rss} | "
                         f"{fmt_peer(r)} | {fmt_ratio(r.get('vs_h2load'))} | {chk} |")
            elif kind == "masque":
                cpu = s["cpu_s_per_10k"] * s["requests_per_run"] / 1e4
                path = "MASQUE via proxy_h3" if r["client"] == "quiver-masque" else "direct"
                L.append(f"| {name} | {path} | {rng} | {s['seconds']:.2f} | {cpu:.2f} | {rss} | "
                         f"{fmt_num(s.get('proxy_tunnels'))} | {fmt_ratio(r.get('vs_direct'))} | {chk} |")
            elif kind == "pool":
                L.append(f"| {name} | {r['lang']} | {rng} | {fmt_ms(s['p50_ms'])} | {fmt_ms(s['p99_ms'])} | "
                         f"{fmt_num(s['max_open'])} | {s['cpu_s_per_10k']:.3f} | {rss} | "
                         f"{fmt_peer(r)} | {chk} |")
            else:
                L.append(f"| {name} | {r['lang']} | {rng} | {fmt_ms(s['p50_ms'])} | {fmt_ms(s['p99_ms'])} | "
                         f"{s['cpu_s_per_10k']:.3f} | {rss} | {fmt_num(s['conns'])} | "
                         f"{fmt_peer(r)} | {fmt_ratio(r.get('vs_h2load'))} | {chk} |")
        notes = sorted({n for r in c["rows"] for n in r.get("summary", {}).get("notes", [])})
        if na:
            L.append("")
            L.append("n/a: " + "; ".join(na))
        for n in notes:
            L.append("")
            L.append(f"Note: {n}")
    L.append("")
    L.append("## Problems")
    L.append("")
    if problems:
        for cid, client, why in problems:
            L.append(f"- `{cid}` **{client}**: {why.strip()[:600]}")
    else:
        L.append("None: every run of every built row verified every response, and the servers "
                 "counted the requests the clients reported.")
    L.append("")
    return "\n".join(L)


# ---------------------------------------------------------------------------------------------

def config_from(argv):
    env = os.environ
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", default=env.get("QUICK", "") not in ("", "0"))
    p.add_argument("--rounds", type=int, default=int(env["ROUNDS"]) if env.get("ROUNDS") else None)
    p.add_argument("--duration", type=float, default=float(env["DURATION"]) if env.get("DURATION") else None)
    p.add_argument("--only", default=env.get("ONLY") or None)
    p.add_argument("--clients", default=env.get("CLIENTS") or None)
    p.add_argument("--protocols", default=env.get("PROTOCOLS") or None)
    p.add_argument("--max-minutes", type=float, default=float(env["MAX_MINUTES"]) if env.get("MAX_MINUTES") else None)
    p.add_argument("--break", dest="break_client", default=env.get("BREAK") or None)
    p.add_argument("--render", metavar="JSON",
                   help="run nothing: write the report (.md) and its charts again from a result JSON")
    a = p.parse_args(argv)
    names = {c.name for c in registry.CLIENTS}
    cl = set(a.clients.split(",")) if a.clients else None
    if cl and cl - names:
        p.error(f"unknown clients {sorted(cl - names)}; known: {sorted(names)}")
    pr = set(a.protocols.split(",")) if a.protocols else None
    if pr and pr - set(PROTOCOLS):
        p.error(f"unknown protocols {sorted(pr - set(PROTOCOLS))}")
    if a.render:
        return a.render
    return Config(
        quick=a.quick,
        rounds=a.rounds or (1 if a.quick else 3),
        duration=a.duration or (1.0 if a.quick else 2.0),
        only=a.only, clients=cl, protocols=pr,
        max_minutes=a.max_minutes or (6 if a.quick else 240),
        break_client=a.break_client,
    )


def main(argv=None):
    cfg = config_from(argv)
    if isinstance(cfg, str):
        return render_from_json(cfg)
    t_start = time.monotonic()
    started = dt.datetime.now(dt.timezone.utc)
    stamp = started.strftime("%Y%m%d-%H%M%S")
    servers = {}
    interrupted = None

    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    # SIGINT too: a shell starts background jobs with SIGINT ignored, and Python keeps that.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_term)
    atexit.register(stop_children)

    if RUN.exists():
        shutil.rmtree(RUN)
    RUN.mkdir(parents=True)
    RESULTS.mkdir(parents=True, exist_ok=True)

    rows_by_cell = {}
    cells = []
    meta = {"started": started.strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(),
            "config": {k: (sorted(v) if isinstance(v, set) else v) for k, v in cfg.__dict__.items()}}
    try:
        log("== certificates and payloads")
        ca = make_certs(RUN / "certs")
        make_payloads()
        log("== servers")
        for s in (Nginx(ca), H2o(ca)):
            s.start()
            servers[s.name] = s
            log(f"   {s.name}: {s.urls}")
        tsb = testserver_binary()
        if tsb:
            ts = TestServer(tsb)
            ts.start()
            servers[ts.name] = ts
            log(f"   {ts.name}: {ts.urls}")
            meta["testserver"] = (f"{tsb.relative_to(ROOT)}, protocols "
                                  f"{', '.join(ts.urls)}")
        else:
            PENDING.append("pool pressure: target/{release,debug}/quiver-testserver is not built "
                           "(bench/run.sh builds it)")
        if not any("h3" in srv.urls for srv in servers.values()):
            PENDING.append(NO_H3)
        meta["versions"] = versions()
        cells = build_cells(cfg, servers)
        if not cells:
            raise SystemExit("no cell matches the filters")

        specs = [c for c in registry.CLIENTS if not cfg.clients or c.name in cfg.clients]
        avail, not_built = {}, {}
        for spec in specs:
            ok, why = availability(spec)
            avail[spec.name] = ok
            if not ok:
                not_built[spec.name] = why
        meta["not_built"] = not_built

        # Probes: one request per (client, protocol, server) in use; decides what runs.
        log("== probes")
        probe = {}
        for cell in cells:
            for spec in specs:
                key = (spec.name, cell.proto, cell.server.name)
                if key in probe or not avail[spec.name] or cell.workload.kind not in spec.kinds:
                    continue
                if cell.proto not in spec.protocols:
                    probe[key] = ("n/a", f"no {PROTOCOLS[cell.proto][1]}")
                    continue
                pc = Cell(next(w for w in WORKLOADS if w.role == cell.workload.role and w.kind != "stream"),
                          1, cell.proto, cell.server)
                rec = execute(spec, pc, cfg, probe=True)
                if "unsupported" in rec:
                    probe[key] = ("n/a", rec["unsupported"].splitlines()[-1][:160])
                elif rec.get("ok"):
                    probe[key] = ("ok", "")
                else:
                    probe[key] = ("probe failed", "; ".join(rec["problems"]) or "failed")
                log(f"   {spec.name:16} {cell.proto:6} {cell.server.name:18} {probe[key][0]} {probe[key][1][:100]}")

        for cell in cells:
            rows = []
            for spec in specs:
                if cell.workload.kind not in spec.kinds:
                    continue
                if not avail[spec.name]:
                    rows.append(Row(spec, "not built", not_built[spec.name]))
                else:
                    st, why = probe[(spec.name, cell.proto, cell.server.name)]
                    rows.append(Row(spec, st, why))
            rows_by_cell[cell.id] = rows

        total = sum(cfg.rounds * sum(1 for r in rows_by_cell[c.id] if r.status == "ok") for c in cells)
        log(f"== {len(cells)} cells, {total} runs")
        done = 0
        budget = cfg.max_minutes * 60
        for cell in cells:
            live = [r for r in rows_by_cell[cell.id] if r.status == "ok"]
            for rnd in range(cfg.rounds):
                k = rnd % len(live) if live else 0
                for row in live[k:] + live[:k]:      # rotate the order round by round
                    if row.status != "ok":
                        continue
                    if time.monotonic() - t_start > budget:
                        raise TimeoutError(f"MAX_MINUTES={cfg.max_minutes:g} reached")
                    rec = execute(row.spec, cell, cfg)
                    rec["round"] = rnd + 1
                    done += 1
                    if "unsupported" in rec:
                        row.status, row.reason = "n/a", rec["unsupported"].splitlines()[-1][:160]
                        log(f"[{done}/{total}] {cell.id} {row.spec.name}: n/a ({row.reason})")
                        continue
                    row.runs.append(rec)
                    metric = (f"{rec['mb_per_s']:.0f} MB/s" if cell.workload.kind in BYTES_KINDS
                              else f"{rec['rps']:,.0f} req/s") if rec.get("rps") is not None else "-"
                    log(f"[{done}/{total}] {cell.id} r{rnd + 1} {row.spec.name}: {metric} "
                        f"{'ok' if rec.get('ok') else 'PROBLEM: ' + '; '.join(rec['problems'])[:200]}")
    except (KeyboardInterrupt, TimeoutError) as e:
        interrupted = f"stopped early ({type(e).__name__}: {e})"
        log(f"!! {interrupted}")
    finally:
        for s in servers.values():
            s.stop()
        stop_children()

    meta["duration_s"] = time.monotonic() - t_start
    meta["machine"]["loadavg_end"] = os.getloadavg()
    meta["interrupted"] = interrupted
    meta.setdefault("versions", {})
    meta.setdefault("not_built", {})
    cells_out = []
    for cell in cells:
        rows = rows_by_cell.get(cell.id)
        if rows is None:
            continue
        w = cell.workload
        for r in rows:
            r.summary = summarize(r, w.kind) if r.status == "ok" else {"runs": 0, "good_runs": 0, "problems": []}
            if r.status == "ok" and not r.runs:
                r.status, r.reason = "skipped", "not run (stopped early)"
        ptitle = PROTOCOLS[cell.proto][1]
        title = f"{w.title} · {cell.concurrency} concurrent · {ptitle}"
        if w.kind in ("stream", "pool"):
            title = f"{w.title} · {ptitle}"
        elif w.kind == "masque":
            title = w.title
        cell_out = {
            "id": cell.id, "workload": w.id, "kind": w.kind, "title": title,
            "concurrency": cell.concurrency, "protocol": cell.proto, "server": cell.server.name,
            "method": "POST" if w.kind == "post" else "GET",
            "url": cell.server.urls[cell.proto] + cell.server.route(w)[0],
            "rows": [{"client": r.spec.name, "lang": r.spec.lang, "role": r.spec.role,
                      "mode": r.spec.mode, "status": r.status, "reason": r.reason,
                      "summary": r.summary, "runs": r.runs} for r in rows],
        }
        add_ratios(cell_out)
        cells_out.append(cell_out)
    meta["pending"] = list(PENDING)
    try:
        files = write_charts(cells_out, stamp, RESULTS)
    except Exception as e:  # noqa: BLE001: a chart must never cost the results of a session
        log(f"!! charts not written: {e!r} (python3 bench/harness.py --render the JSON to retry)")
        files = {"summary": None, "rates": {}}
    md = render(meta, cells_out, cfg, files)
    out_md = RESULTS / f"{stamp}.md"
    out_json = RESULTS / f"{stamp}.json"
    out_md.write_text(md)
    out_json.write_text(json.dumps({"meta": meta, "cells": cells_out}, indent=1, default=str))
    print(md)
    log(f"== wrote {out_md.relative_to(ROOT)} and {out_json.relative_to(ROOT)} "
        f"({meta['duration_s'] / 60:.1f} min), charts {', '.join(sorted(files['rates'].values()))}"
        + (f", {files['summary']}" if files["summary"] else ""))
    return 130 if interrupted and "KeyboardInterrupt" in interrupted else 0


def render_from_json(path):
    """`harness.py --render bench/results/X.json`: writes X.md and the charts again beside the
    JSON, from its numbers, with today's ratio rules and registry (modes, peer sets) and today's
    report layout; runs nothing."""
    path = Path(path).resolve()
    data = json.loads(path.read_text())
    meta, cells_out = data["meta"], data["cells"]
    meta.setdefault("versions", {})
    meta.setdefault("not_built", {})
    meta.setdefault("duration_s", 0.0)
    c = meta.get("config", {})
    cfg = Config(quick=c.get("quick", False), rounds=c.get("rounds", 0),
                 duration=c.get("duration", 0.0), only=c.get("only"),
                 clients=set(c["clients"]) if c.get("clients") else None,
                 protocols=set(c["protocols"]) if c.get("protocols") else None,
                 max_minutes=c.get("max_minutes", 0), break_client=c.get("break_client"))
    for cell in cells_out:
        add_ratios(cell)
    files = write_charts(cells_out, path.stem, path.parent)
    out_md = path.with_suffix(".md")
    out_md.write_text(render(meta, cells_out, cfg, files))
    log(f"== wrote {out_md} and {', '.join([files['summary'] or ''] + sorted(files['rates'].values())).strip(', ')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
