"""quiver: an HTTP/1.1, HTTP/2 and HTTP/3 client with a connection pool per origin.

    import quiver

    with quiver.Client(protocol="auto", size=20) as client:
        r = client.get("https://example.com/")
        r.raise_for_status()
        print(r.http_version, r.headers["content-type"], r.text)

    # httpx's client layer: redirects, decoding, cookies, auth, multipart uploads
    with quiver.Client(cookies=True, auth=("user", "secret")) as client:
        r = client.post("https://example.com/upload", data={"title": "x"}, files={"f": open("a.bin", "rb")})
        print(r.url, [h.status_code for h in r.history], client.cookies.jar)

    # observability: timings, progress, httpx's event hooks, every engine event, the logger
    progress = quiver.Progress()
    with quiver.Client(event_hooks={"request": [sign]}, listeners=[print]) as client:
        r = client.get("https://example.com/", progress=progress)
        print(r.timings.ttfb, r.timings.reused, progress.downloaded)
    logging.getLogger("quiver").setLevel(logging.DEBUG)  # with a handler: INFO per response

    async with quiver.AsyncClient() as client:
        async with client.stream("GET", "https://example.com/big") as r:
            async for chunk in r.aiter_bytes():
                ...

    # code written for httpx or requests: swap the transport (imports those libraries)
    import quiver.httpx, quiver.requests
    httpx.Client(transport=quiver.httpx.HTTPTransport(protocol="http2"))
    session.mount("https://", quiver.requests.Adapter(protocol="http3"))
"""

from . import _quiver
from ._auth import BasicAuth, BearerAuth, DigestAuth, NoAuth
from ._client import AsyncClient, AsyncDatagramChannel, AsyncUdpTunnel, Client, DatagramChannel, UdpTunnel
from ._cookies import Cookies
from ._exceptions import (
    CookieConflict,
    DecodingError,
    HTTPStatusError,
    InvalidError,
    QuiverError,
    TooManyRedirects,
    TransientError,
    UnrecoverableError,
)
from ._exceptions import TimeoutError as TimeoutError  # noqa: A004 - see __all__
from ._models import Headers, Request, Response
from ._quiver import Event, Progress, Timings
from ._types import AuthTypes as AuthTypes
from ._types import ClientStats, CookieDict, EventStats, OriginStats, PoolOptions
from ._types import EventHook as EventHook
from ._types import EventHookTypes as EventHookTypes
from ._types import Listener as Listener
from ._types import CookieTypes as CookieTypes
from ._types import FileTypes as FileTypes
from ._types import RequestFiles as RequestFiles
from ._types import HeaderTypes as HeaderTypes
from ._types import Protocol as Protocol
from ._types import QueryParamTypes as QueryParamTypes
from ._types import RequestContent as RequestContent
from ._types import Seconds as Seconds
from ._types import StrPath as StrPath
from ._types import SyncRequestContent as SyncRequestContent

__version__: str = _quiver.__version__

#: Every pool option name accepted as a keyword argument and in ``pools={...}``.
OPTION_NAMES: tuple = tuple(_quiver.OPTION_NAMES)

#: Every error kind the engine reports, with its class (``transient``, ``invalid``,
#: ``unrecoverable``).
ERROR_KINDS: dict = dict(_quiver.ERROR_KINDS)

# `TimeoutError` is left out on purpose: `from quiver import *` would shadow the builtin.
__all__ = [
    "AsyncClient",
    "AsyncDatagramChannel",
    "AsyncUdpTunnel",
    "BasicAuth",
    "BearerAuth",
    "Client",
    "ClientStats",
    "CookieConflict",
    "CookieDict",
    "Cookies",
    "DatagramChannel",
    "DecodingError",
    "DigestAuth",
    "ERROR_KINDS",
    "Event",
    "EventStats",
    "HTTPStatusError",
    "Headers",
    "InvalidError",
    "NoAuth",
    "OPTION_NAMES",
    "OriginStats",
    "PoolOptions",
    "Progress",
    "QuiverError",
    "Request",
    "Response",
    "Timings",
    "TooManyRedirects",
    "TransientError",
    "UdpTunnel",
    "UnrecoverableError",
]
