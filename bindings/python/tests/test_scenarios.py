"""The cross-language behaviour cases (tests/server/scenarios.tsv) from Python: each case on each
protocol it names, with the blocking and the asyncio client."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import pytest

import quiver
from conftest import PROTOCOLS, REPO, Target, make_target
from support import pattern

TABLE = REPO / "tests" / "server" / "scenarios.tsv"


def unescape(s: str) -> str:
    out, chars = [], iter(s)
    for c in chars:
        if c != "\\":
            out.append(c)
            continue
        nxt = next(chars, "\\")
        out.append({"r": "\r", "n": "\n", "t": "\t"}.get(nxt, nxt))
    return "".join(out)


@dataclass
class Case:
    name: str
    protocols: List[str]
    method: str
    target: str
    headers: List[Tuple[str, str]]
    body: Optional[str]
    timeout_ms: Optional[int]
    expect: Tuple[str, str]
    checks: List[Tuple[str, str]]

    def url(self, base: str) -> str:
        return base + self.target if self.target.startswith("/") else self.target


def cases() -> List[Case]:
    out = []
    for line in TABLE.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        c = line.split("\t")
        assert len(c) == 9, line
        cell = [None if v == "-" else v for v in c]
        out.append(
            Case(
                name=c[0],
                protocols=PROTOCOLS if c[1] == "*" else c[1].split(","),
                method=c[2],
                target=c[3],
                headers=[
                    (n, unescape(v)) for n, v in (pair.split("=", 1) for pair in cell[4].split("|"))
                ] if cell[4] else [],
                body=unescape(cell[5]) if cell[5] is not None else None,
                timeout_ms=int(cell[6]) if cell[6] else None,
                expect=tuple(c[7].split("=", 1)),  # type: ignore[arg-type]
                checks=[tuple(x.split("=", 1)) for x in cell[8].split("|")] if cell[8] else [],  # type: ignore[misc]
            )
        )
    return out


CASES = cases()


def request_kwargs(case: Case) -> Dict[str, Any]:
    kwargs: Dict[str, Any] = {"headers": case.headers}
    if case.body is not None:
        kwargs["content"] = case.body.encode()
    if case.timeout_ms is not None:
        kwargs["timeout"] = case.timeout_ms / 1000
    return kwargs


def verify(case: Case, response: Optional[quiver.Response], error: Optional[BaseException]) -> None:
    what, value = case.expect
    if what == "error":
        assert response is None, f"{case.name}: expected {value}, got {response}"
        assert isinstance(error, quiver.QuiverError), f"{case.name}: {error!r}"
        assert error.kind == value, f"{case.name}: expected {value}, got {error.kind}: {error}"
        return
    assert error is None, f"{case.name}: {error!r}"
    assert response is not None
    assert response.status_code == int(value), case.name
    for kind, arg in case.checks:
        if kind == "pattern":
            assert response.content == pattern(int(arg)), case.name
        elif kind == "text":
            assert response.content == unescape(arg).encode(), case.name
        elif kind == "len":
            assert len(response.content) == int(arg), case.name
        elif kind == "contains":
            assert unescape(arg) in response.text, case.name
        elif kind == "header":
            name, expected = arg.split(":", 1)
            assert response.headers.get(name) == expected, f"{case.name}: {name}"
        elif kind == "history":
            assert len(response.history) == int(arg), f"{case.name}: {response.history}"
        elif kind == "url_ends":
            assert response.url.endswith(unescape(arg)), f"{case.name}: {response.url}"
        else:
            raise AssertionError(f"unknown check {kind}")


@pytest.mark.parametrize("name", PROTOCOLS)
def test_every_case_blocking(server: Dict[str, Any], name: str) -> None:
    target: Target = make_target(server, name)
    with quiver.Client(**target.options) as client:
        for case in (c for c in CASES if name in c.protocols):
            response, error = None, None
            try:
                response = client.request(case.method, case.url(target.base), **request_kwargs(case))
            except quiver.QuiverError as e:
                error = e
            verify(case, response, error)


@pytest.mark.parametrize("name", PROTOCOLS)
def test_every_case_asyncio(server: Dict[str, Any], name: str) -> None:
    target: Target = make_target(server, name)

    async def main() -> None:
        async with quiver.AsyncClient(**target.options) as client:
            for case in (c for c in CASES if name in c.protocols):
                response, error = None, None
                try:
                    response = await client.request(case.method, case.url(target.base), **request_kwargs(case))
                except quiver.QuiverError as e:
                    error = e
                verify(case, response, error)

    asyncio.run(main())
