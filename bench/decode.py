#!/usr/bin/env python3
"""Decode throughput of one gzip-encoded body (64 MiB decoded by default), side by side: quiver
(Rust, the `fetch` example), curl --compressed, and httpx (sync), against the same loopback test
server, which serves the body from memory with a content-length (it is compressed once, before the
first timed round). Prints a markdown table of MB/s (decoded bytes per second; median and min-max of
ROUNDS rounds) and each client's ratio to curl.

    bench/decode.py [--mib 64] [--rounds 5] [--coding gzip]

Needs: the release builds (it runs `cargo build --release` for the test server and the example),
curl, and httpx in bench/.work/venv (bench/setup.sh) or .venv.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def python_with_httpx():
    for venv in (ROOT / "bench/.work/venv", ROOT / ".venv"):
        py = venv / "bin/python"
        if py.exists() and subprocess.run([py, "-c", "import httpx"], capture_output=True).returncode == 0:
            return str(py)
    return None


HTTPX = r"""
import sys, time, json, httpx
url, rounds = sys.argv[1], int(sys.argv[2])
secs, n = [], 0
with httpx.Client(timeout=120) as c:
    for _ in range(rounds):
        t = time.perf_counter()
        n = 0
        with c.stream("GET", url) as r:
            for chunk in r.iter_bytes():
                n += len(chunk)
        secs.append(time.perf_counter() - t)
print(json.dumps({"bytes": n, "secs": secs}))
"""


def curl(url, rounds):
    secs, n = [], 0
    for _ in range(rounds):
        t = time.perf_counter()
        out = subprocess.run(["curl", "-s", "--compressed", "-o", "/dev/null", "-w", "%{size_download} %{http_code}", url],
                             capture_output=True, text=True, check=True).stdout.split()
        secs.append(time.perf_counter() - t)
        if out[1] != "200":
            raise SystemExit(f"curl got {out[1]}")
    # curl reports the compressed size downloaded; the decoded size is what the server says.
    return {"bytes": None, "secs": secs}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mib", type=int, default=64)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--coding", default="gzip")
    a = p.parse_args()
    env = dict(os.environ)
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "quiver-testserver"], cwd=ROOT, check=True)
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "quiver-core", "--example", "fetch"], cwd=ROOT,
                   check=True)
    target = Path(env.get("CARGO_TARGET_DIR", ROOT / "target")) / "release"
    server = subprocess.Popen([str(target / "quiver-testserver")], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        ports = json.loads(server.stdout.readline())
        n = a.mib << 20
        url = f"http://127.0.0.1:{ports['http']}/encoded/{a.coding}/{n}"
        # Warm the server's cache (it compresses the body once) and check the size.
        subprocess.run(["curl", "-s", "--compressed", "-o", "/dev/null", url], check=True)
        runs = {}
        out = subprocess.run([str(target / "examples/fetch"), url, str(a.rounds)], capture_output=True, text=True,
                             check=True).stdout
        runs["quiver (Rust)"] = json.loads(out)
        runs["curl --compressed"] = curl(url, a.rounds)
        py = python_with_httpx()
        if py:
            out = subprocess.run([py, "-c", HTTPX, url, str(a.rounds)], capture_output=True, text=True,
                                 check=True).stdout
            runs["httpx (sync, iter_bytes)"] = json.loads(out)
        else:
            print("httpx not found (run bench/setup.sh): its row is missing", file=sys.stderr)
    finally:
        server.stdin.close()
        server.wait(timeout=10)
    for name, r in runs.items():
        if r["bytes"] not in (None, n):
            raise SystemExit(f"{name} decoded {r['bytes']} bytes, expected {n}")
    mbps = {name: [n / 1e6 / s for s in r["secs"]] for name, r in runs.items()}
    base = statistics.median(mbps["curl --compressed"])
    print(f"\n{a.mib} MiB {a.coding}-encoded body over HTTP/1.1 (loopback test server), {a.rounds} rounds, "
          f"decoded MB/s\n")
    print("| client | median MB/s | min–max | vs curl |")
    print("|---|---|---|---|")
    for name, v in mbps.items():
        med = statistics.median(v)
        print(f"| {name} | {med:,.0f} | {min(v):,.0f}–{max(v):,.0f} | {med / base:.2f}× |")


if __name__ == "__main__":
    main()
