"""The GIL is released while waiting, Ctrl-C interrupts a blocking call, fork() is safe, a
blocking Client is shared by threads, and a slow consumer keeps memory bounded."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Tuple

import pytest

import quiver
from conftest import Target, make_target
from support import pattern


def test_gil_released_while_waiting(h1: Target) -> None:
    with quiver.Client() as client:
        done = threading.Event()
        result = {}

        def slow() -> None:
            started = time.monotonic()
            result["status"] = client.get(h1.url("/slow/500")).status_code
            result["elapsed"] = time.monotonic() - started
            done.set()

        t = threading.Thread(target=slow)
        t.start()
        spins = 0
        while not done.is_set():
            spins += 1  # pure Python work: runs only while the request thread has released the GIL
        t.join()
    assert result["status"] == 200
    assert result["elapsed"] >= 0.45
    assert spins > 100_000, spins


def test_threads_share_a_client(target: Target) -> None:
    """One sync Client used from 16 threads at once (they start together): every response is
    the right one, bodies intact."""
    threads, per_thread = 16, 25
    barrier = threading.Barrier(threads)

    def worker(client: quiver.Client, t: int) -> List[Tuple[int, str, str]]:
        barrier.wait(10)
        out = []
        for i in range(per_thread):
            r = client.get(target.url(f"/headers?t={t}&i={i}"))
            out.append((r.status_code, r.json()["query"], r.http_version))
        n = 100_000 + t
        with client.stream("GET", target.url(f"/bytes/{n}")) as s:
            assert s.read() == pattern(n)
        return out

    with quiver.Client(checkout_timeout=30, **target.options) as client:
        with ThreadPoolExecutor(threads) as pool:
            results = list(pool.map(lambda t: worker(client, t), range(threads)))
        stats = client.stats()["origins"][target.origin]
    for t, out in enumerate(results):
        assert out == [(200, f"t={t}&i={i}", target.version) for i in range(per_thread)]
    assert stats["requests"] == threads * (per_thread + 1)
    assert stats["errors"] == 0 and stats["active"] == 0
    if target.version == "HTTP/1.1":
        assert stats["connections_opened"] > 1, "the threads' requests overlapped"


# The child installs Python's own SIGINT handler: a shell without job control starts background
# jobs with SIGINT ignored, and the child would inherit that (and never see the Ctrl-C).
CTRL_C_CHILD = textwrap.dedent(
    """
    import signal, sys, time, quiver
    signal.signal(signal.SIGINT, signal.default_int_handler)
    client = quiver.Client()
    print("ready", flush=True)
    started = time.monotonic()
    try:
        client.get(sys.argv[1])
        print("completed", flush=True)
    except KeyboardInterrupt:
        print(f"interrupted {time.monotonic() - started:.3f}", flush=True)
        sys.exit(0)
    sys.exit(3)
    """
)


def test_ctrl_c_interrupts_a_blocking_request(h1: Target) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", CTRL_C_CHILD, h1.url("/slow/10000")],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.3)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=5)
        delay = time.monotonic() - sent
    finally:
        proc.kill()
    assert proc.returncode == 0, out
    assert out.startswith("interrupted"), out
    assert delay < 1.0, delay


# Python 3.12+ warns that fork() in a multi-threaded process may deadlock: that is the case tested.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_fork(h1: Target) -> None:
    client = quiver.Client()
    assert client.get(h1.url("/health")).status_code == 200
    async_client = quiver.AsyncClient()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report through the pipe, never return into pytest
        code = 1
        try:
            os.close(read_end)
            lines = []
            try:
                client.get(h1.url("/health"))
                lines.append("inherited client worked")
            except quiver.QuiverError as e:
                lines.append(f"inherited:{type(e).__name__}:{e.kind}")
            try:
                client.stats()
                lines.append("inherited stats worked")
            except quiver.QuiverError as e:
                lines.append(f"stats:{e.kind}")
            with quiver.Client() as fresh:
                lines.append(f"fresh:{fresh.get(h1.url('/health')).status_code}")

            import asyncio

            async def use_async() -> str:
                try:
                    await async_client.get(h1.url("/health"))
                    return "inherited async worked"
                except quiver.QuiverError as e:
                    return f"async-inherited:{e.kind}"

            lines.append(asyncio.run(use_async()))

            async def fresh_async() -> int:
                async with quiver.AsyncClient() as c:
                    return (await c.get(h1.url("/health"))).status_code

            lines.append(f"fresh-async:{asyncio.run(fresh_async())}")
            del client
            os.write(write_end, "\n".join(lines).encode())
            code = 0
        except BaseException as e:  # noqa: BLE001
            os.write(write_end, f"child failed: {e!r}".encode())
        finally:
            os._exit(code)
    os.close(write_end)
    deadline = time.monotonic() + 20
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung")
        time.sleep(0.05)
    with os.fdopen(read_end) as f:
        report = f.read()
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, report
    assert report.splitlines() == [
        "inherited:InvalidError:forked",
        "stats:forked",
        "fresh:200",
        "async-inherited:forked",
        "fresh-async:200",
    ], report
    # the parent's clients are unaffected
    assert client.get(h1.url("/health")).status_code == 200
    client.close()


# -- backpressure -----------------------------------------------------------------------------


def rss() -> int:
    """The process's resident set size, in bytes (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def server_bytes_sent(client: quiver.Client, server: Dict[str, Any]) -> int:
    counters: Dict[str, int] = client.get(f"http://127.0.0.1:{server['http']}/stats").json()
    return counters["bytes_sent"]


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads RSS from /proc")
@pytest.mark.parametrize("name", ["http1", "h2"])
def test_slow_consumer_of_a_256_mib_body_keeps_memory_bounded(server: Dict[str, Any], name: str) -> None:
    """Reading a 256 MiB body slowly: the engine does not buffer ahead of the consumer (the
    process's RSS grows by less than 64 MiB, and the server is held back by flow control), then
    the rest reads at full speed, every byte there."""
    target = make_target(server, name)
    n = 256 * 1024 * 1024
    limit = 64 * 1024 * 1024
    with quiver.Client(**target.options) as client, quiver.Client() as control:
        with client.stream("GET", target.url(f"/bytes/{n}")) as r:
            assert r.headers["content-length"] == str(n)
            chunks = r.iter_bytes()
            first = next(chunks)
            assert first == pattern(len(first))
            received = len(first)
            baseline, peak = rss(), 0
            sent_before = server_bytes_sent(control, server)
            slow_until = time.monotonic() + 2.0
            while time.monotonic() < slow_until:  # a slow consumer: ~20 reads a second
                received += len(next(chunks))
                time.sleep(0.05)
                peak = max(peak, rss() - baseline)
            sent_ahead = server_bytes_sent(control, server) - sent_before - received
            assert peak < limit, f"RSS grew by {peak >> 20} MiB while reading slowly"
            assert sent_ahead < limit, f"the server got {sent_ahead >> 20} MiB ahead of the consumer"
            assert received < n // 4, "the slow phase was slow"
            for chunk in chunks:
                received += len(chunk)
            assert rss() - baseline < limit
        assert received == n
