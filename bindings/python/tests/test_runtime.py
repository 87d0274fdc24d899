"""The GIL is released while waiting, Ctrl-C interrupts a blocking call, fork() is safe, and
a blocking Client is shared by threads."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import quiver
from conftest import Target


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
    with quiver.Client(**target.options) as client:
        with ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(lambda i: client.get(target.url(f"/headers?i={i}")).json()["query"], range(200)))
    assert statuses == [f"i={i}" for i in range(200)]


CTRL_C_CHILD = textwrap.dedent(
    """
    import sys, time, quiver
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
