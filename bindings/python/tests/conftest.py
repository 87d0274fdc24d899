"""Fixtures: the loopback test server (one per session) and the protocols to run tests over."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest

REPO = Path(__file__).resolve().parents[3]

# Clients read the proxy environment variables when built (`proxy_from_env` defaults to true):
# the tests reach the loopback server directly, and test_proxy sets its own.
for _name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
    os.environ.pop(_name, None)
    os.environ.pop(_name.upper(), None)


def _server_binary() -> Path:
    if os.environ.get("QUIVER_TESTSERVER"):
        return Path(os.environ["QUIVER_TESTSERVER"])
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    return target / "debug" / "quiver-testserver"


@pytest.fixture(scope="session")
def server() -> Iterator[Dict[str, Any]]:
    """The JSON line of target/debug/quiver-testserver (ports, CA files); it exits when its
    stdin closes at the end of the session."""
    with spawn_server() as info:
        yield info


@contextlib.contextmanager
def spawn_server(*args: str) -> Iterator[Dict[str, Any]]:
    """A test server of its own, started with `args` (`--h2-goaway-after 1`, ... see
    tests/server/README.md): its JSON line; it exits when the block ends."""
    binary = _server_binary()
    if not binary.exists():
        pytest.fail(f"{binary} is missing: run `cargo build -p quiver-testserver` (scripts/test-python.sh does)")
    proc = subprocess.Popen([str(binary), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdin is not None
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        pytest.fail("quiver-testserver printed nothing")
    info = json.loads(line)
    try:
        yield info
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@dataclass
class Target:
    """One way to reach the test server: a base URL, the client options it needs and the HTTP
    version responses should report."""

    name: str
    base: str
    options: Dict[str, Any] = field(default_factory=dict)
    version: str = "HTTP/1.1"

    def url(self, path: str) -> str:
        return self.base + path

    @property
    def origin(self) -> str:
        """The origin as stats() names it (`scheme://host:port`)."""
        return self.base


PROTOCOLS = ["http1", "https1", "h2", "h2c", "h3"]


def make_target(server: Dict[str, Any], name: str) -> Target:
    ca = server["ca_file"]
    if name == "http1":
        return Target(name, f"http://127.0.0.1:{server['http']}")
    if name == "https1":
        return Target(name, f"https://localhost:{server['https']}", {"ca_file": ca, "protocol": "http1"})
    if name == "h2":
        return Target(name, f"https://localhost:{server['https']}", {"ca_file": ca}, "HTTP/2")
    if name == "h2c":
        return Target(name, f"http://127.0.0.1:{server['h2c']}", {"protocol": "http2"}, "HTTP/2")
    if name == "h3":
        if "h3" not in server:
            pytest.skip("the test server's JSON line has no \"h3\" port: HTTP/3 is not served by this build")
        return Target(name, f"https://localhost:{server['h3']}", {"ca_file": ca, "protocol": "http3"}, "HTTP/3")
    raise ValueError(name)


@pytest.fixture(params=PROTOCOLS)
def target(request: pytest.FixtureRequest, server: Dict[str, Any]) -> Target:
    """Each protocol the engine speaks: HTTP/1.1 (cleartext and TLS), HTTP/2 (ALPN and h2c),
    HTTP/3."""
    return make_target(server, request.param)


@pytest.fixture
def h1(server: Dict[str, Any]) -> Target:
    return make_target(server, "http1")


@pytest.fixture
def h3(server: Dict[str, Any]) -> Target:
    return make_target(server, "h3")
