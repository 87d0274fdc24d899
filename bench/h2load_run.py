#!/usr/bin/env python3
"""h2load behind the client contract of Quiver's benchmark harness (the ceiling row).

Takes the same flags as every client (bench/README.md, "The client contract"), runs h2load with
one thread and prints the same JSON line, with h2load's own CPU time and peak RSS (wait4).

Mapping: HTTP/1.1 (--protocol http1): `--h1 -c C -m 1` (C connections, no pipelining);
HTTP/2: `-c 1 -m C` (one connection, C streams, like the multiplexing clients). With
--duration: `-D`; the requests that were started but not finished when it ended reached the
server too, so `requests_started` is reported for the server-side check. --stream: `-n N -c 1`.
Verification: every request succeeded with a 2xx and the body bytes ("data") add up to
requests x --expect-len. h2load does not verify TLS certificates (it has no option to).
Latency percentiles come from --log-file.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading

UNSUPPORTED = 3


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--client", default="h2load")
    p.add_argument("--url", required=True)
    p.add_argument("--requests", type=int, default=10_000)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--ca")
    p.add_argument("--protocol", default="auto")
    p.add_argument("--expect-len", type=int)
    p.add_argument("--method", default="GET")
    p.add_argument("--body-len", type=int, default=0)
    p.add_argument("--duration", type=float)
    p.add_argument("--pool-size", type=int)
    p.add_argument("--warmup", type=int)
    p.add_argument("--stream", action="store_true")
    a = p.parse_args()
    if a.protocol == "http3":
        print("Debian's h2load has no HTTP/3", file=sys.stderr)
        sys.exit(UNSUPPORTED)
    if a.pool_size is not None and a.pool_size < a.concurrency:
        print("h2load has no caller queue: pool pressure is not a load-generator workload", file=sys.stderr)
        sys.exit(UNSUPPORTED)
    if a.method not in ("GET", "POST"):
        print(f"h2load: method {a.method} not supported", file=sys.stderr)
        sys.exit(UNSUPPORTED)

    tmp = tempfile.mkdtemp(prefix="h2load-")
    log = os.path.join(tmp, "requests.log")
    cmd = ["h2load", "-t", "1", f"--log-file={log}"]
    h1 = a.protocol == "http1"
    if h1:
        cmd += ["--h1", "-c", str(a.concurrency), "-m", "1"]
    else:
        cmd += ["-c", "1", "-m", str(a.concurrency)]
    timed = bool(a.duration and not a.stream)
    if timed:
        # h2load 1.52's -D never ends when the time is up before every client has connected
        # (seen with 256 TLS connections and 0.3 s): give the connections time (10 ms each).
        duration = max(a.duration, 0.5 + 0.01 * (a.concurrency if h1 else 1))
        cmd += ["-D", f"{int(duration * 1000)}ms"]
    else:
        cmd += ["-n", str(a.requests)]
    if a.method == "POST":
        body = os.path.join(tmp, "body.bin")
        with open(body, "wb") as f:
            f.write(b"x" * a.body_len)
        cmd += ["-d", body]
    cmd.append(a.url)

    out_path = os.path.join(tmp, "out.txt")
    with open(out_path, "wb") as out:
        # Through a forking sh: Linux carries a process's peak RSS across exec, so h2load exec'd
        # straight from this Python process would report Python's peak as its own.
        proc = subprocess.Popen(["/bin/sh", "-c", '"$@"; exit $?', "sh", *cmd], stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        # Our own guard besides the harness's: h2load can hang (see -D above).
        guard = threading.Timer(60 + (a.duration or 0), proc.kill)
        guard.start()
        _, status, ru = os.wait4(proc.pid, 0)
        guard.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
    text = open(out_path, encoding="utf-8", errors="replace").read()
    if proc.returncode != 0:
        print(f"h2load exited with {proc.returncode}: {' '.join(cmd)}\n{text[-2000:]}", file=sys.stderr)
        sys.exit(1)

    def grab(pattern, cast=float):
        m = re.search(pattern, text)
        if not m:
            print(f"h2load output not understood ({pattern}):\n{text[-2000:]}", file=sys.stderr)
            sys.exit(1)
        return [cast(g) for g in m.groups()]

    (secs_v, secs_unit) = re.search(r"finished in ([\d.]+)(s|ms|us),", text).groups()
    seconds = float(secs_v) / {"s": 1, "ms": 1e3, "us": 1e6}[secs_unit]
    total, started, done, succeeded, failed, errored, timeouts = grab(
        r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
        r"(\d+) errored, (\d+) timeout", int)
    s2xx, s3xx, s4xx, s5xx = grab(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", int)
    (data,) = grab(r"traffic: .*\((\d+)\) data", int)

    # failed (4xx/5xx, resets), errored and timed-out requests are all among `done` without a 2xx
    failures = total - min(s2xx, succeeded)
    problems = []
    if failures:
        problems.append(f"{total - succeeded} of {total} not succeeded ({failed} failed, {errored} errored, {timeouts} timeouts), "
                        f"status codes 2xx={s2xx} 3xx={s3xx} 4xx={s4xx} 5xx={s5xx}")
    if a.expect_len is not None:
        # Every response has the same length. With -D the responses in flight when the time
        # was up are not counted as done, but their bytes (whole or partial) are in "data".
        lo = succeeded * a.expect_len
        hi = (started if timed else succeeded) * a.expect_len
        if not lo <= data <= hi:
            diff = min(abs(data - lo), abs(data - hi))
            failures += max(1, diff // max(a.expect_len, 1))
            problems.append(f"body bytes {data} not in {succeeded}..{started if timed else succeeded} x {a.expect_len}")
    if problems:
        print("bad responses: " + "; ".join(problems), file=sys.stderr)

    lat = []
    with open(log, encoding="utf-8", errors="replace") as f:
        for line in f:
            parts = line.split("\t")
            if len(parts) >= 3 and parts[1] != "-1":
                lat.append(int(parts[2]) / 1e3)
    lat.sort()
    n = len(lat)

    def pct(q):
        return lat[min(int(n * q), n - 1)] if n else 0.0

    cpu = ru.ru_utime + ru.ru_stime
    print(json.dumps({
        "client": a.client,
        "requests": done,
        "failures": failures,
        "seconds": seconds,
        "rps": done / seconds if seconds else 0.0,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "cpu_s_per_10k": cpu * 10_000 / done if done else 0.0,
        "peak_rss_bytes": ru.ru_maxrss * 1024,
        "warmup": 0,
        "bytes": data,
        "mb_per_s": data / seconds / 1e6 if seconds else 0.0,
        "proto": "h1" if h1 else "h2",
        "note": None,
        "requests_started": started,
    }))
    for f in os.listdir(tmp):
        os.unlink(os.path.join(tmp, f))
    os.rmdir(tmp)


if __name__ == "__main__":
    main()
