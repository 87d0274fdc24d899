"""Type aliases and typed dicts of the public API (for annotations; importable at runtime)."""

from __future__ import annotations

import datetime
import os
from typing import (
    IO,
    TYPE_CHECKING,
    Any,
    AsyncIterable,
    Callable,
    Dict,
    Iterable,
    List,
    Literal,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    TypedDict,
    Union,
)

if TYPE_CHECKING:
    from ._auth import BasicAuth, BearerAuth, DigestAuth, NoAuth
    from ._cookies import Cookies
    from ._models import Headers
    from ._quiver import Event


__all__ = [
    "AuthTypes",
    "ClientStats",
    "CookieDict",
    "CookieTypes",
    "EventHook",
    "EventHookTypes",
    "EventStats",
    "FileContent",
    "FileTypes",
    "HeaderTypes",
    "Listener",
    "OriginStats",
    "PoolOptions",
    "Protocol",
    "QueryParamTypes",
    "RequestContent",
    "RequestData",
    "RequestFiles",
    "Seconds",
    "StrPath",
    "SyncRequestContent",
]

StrPath = Union[str, "os.PathLike[str]"]
#: A duration: seconds, or a ``datetime.timedelta``.
Seconds = Union[float, int, datetime.timedelta]
Protocol = Literal["auto", "http1", "http2", "http3"]
HeaderTypes = Union["Headers", Mapping[str, str], Iterable[Tuple[Union[str, bytes], Union[str, bytes]]]]
QueryParamTypes = Union[Mapping[str, Any], Sequence[Tuple[str, Any]], str, bytes]
SyncRequestContent = Union[str, bytes, bytearray, memoryview, Iterable[Union[bytes, str]]]
RequestContent = Union[SyncRequestContent, AsyncIterable[Union[bytes, str]]]

RequestData = Mapping[str, Any]
#: What a file part holds: bytes, text (sent as UTF-8) or a readable object (a file opened in
#: binary mode, ``io.BytesIO``, a pipe, ...).
FileContent = Union[bytes, bytearray, memoryview, str, IO[bytes], IO[str]]
#: One ``files=`` value: the content (file name from its ``name``, else ``upload``), or
#: ``(filename, content)``, or ``(filename, content, content_type)``.
FileTypes = Union[
    FileContent,
    Tuple[Optional[str], FileContent],
    Tuple[Optional[str], FileContent, Optional[str]],
]
RequestFiles = Union[Mapping[str, FileTypes], Sequence[Tuple[str, FileTypes]]]
#: Credentials: ``(user, password)`` (Basic), ``BasicAuth``, ``DigestAuth``, ``BearerAuth``,
#: ``NoAuth`` (per request: none at all) or None (per request: the client's).
AuthTypes = Union[
    Tuple[Union[str, bytes], Union[str, bytes]], "BasicAuth", "DigestAuth", "BearerAuth", "NoAuth", None
]
#: A request's own cookies: name/value pairs, or a ``quiver.Cookies`` jar (those matching the
#: URL).
CookieTypes = Union[Mapping[str, str], Sequence[Tuple[str, str]], "Cookies"]
#: An event hook: called with the ``Request`` (``"request"`` hooks) or the ``Response``
#: (``"response"`` hooks); for ``AsyncClient``, a coroutine function.
EventHook = Callable[[Any], Any]
#: ``event_hooks=``: ``{"request": [...], "response": [...]}`` (either key may be missing).
EventHookTypes = Mapping[str, Sequence[EventHook]]
#: A listener of the engine's events: called with each ``quiver.Event`` on the client's
#: ``quiver-events`` thread.
Listener = Callable[["Event"], Any]


class EventStats(TypedDict):
    """What ``Client.event_stats()`` returns: how the client's events reach its listeners."""

    #: Events queued for the listener thread since the client was made.
    received: int
    #: Events lost because the queue was full (a listener too slow for the traffic).
    dropped: int
    #: Events waiting for the listener thread now.
    queued: int


class CookieDict(TypedDict):
    """One cookie of ``Cookies.jar``."""

    name: str
    value: str
    domain: str
    host_only: bool
    path: str
    secure: bool
    http_only: bool
    same_site: Optional[str]
    expires: Optional[float]


class PoolOptions(TypedDict, total=False):
    """Options of one pool rule (``pools={"https://api.example.com": {...}}``); see
    docs/options.md. Durations are seconds."""

    protocol: Protocol
    alt_svc: bool
    size: int
    max_connections: int
    max_total_connections: int
    initial_max_streams: int
    stream_window: int
    connection_window: int
    window_update_threshold: float
    ping_interval: Optional[Seconds]
    ping_timeout: Seconds
    quic_idle_timeout: Seconds
    early_data: bool
    proxy: Optional[str]
    proxy_authorization: Optional[str]
    proxy_protocol: Protocol
    proxy_from_env: bool
    checkout_timeout: Seconds
    idle_timeout: Seconds
    connect_timeout: Seconds
    happy_eyeballs_delay: Seconds
    https_rr: bool
    https_rr_nameserver: Optional[str]
    unix_socket: Optional[StrPath]
    resolve: Optional[str]
    dns_cache_ttl: Optional[Seconds]
    read_timeout: Seconds
    request_timeout: Optional[Seconds]
    ca_file: Optional[StrPath]
    client_cert: Union[None, StrPath, Tuple[StrPath, StrPath]]
    client_key: Optional[StrPath]
    tls_roots: Literal["webpki", "system"]
    danger_accept_invalid_certs: bool
    max_response_headers: int
    max_response_body: int
    follow_redirects: bool
    max_redirects: int
    allow_insecure_redirects: bool
    decompress: bool
    max_decompression_ratio: int
    #: Client-wide only (a rule giving it is refused).
    cookies: bool
    basic_auth: Optional[str]
    bearer_token: Optional[str]
    digest_auth: Optional[str]
    #: httpx's shape of the three above (in a rule: that rule's origins only).
    auth: AuthTypes


class OriginStats(TypedDict):
    """One origin's pool in ``stats()["origins"]`` (or one pool of proxy connections in
    ``stats()["proxies"]``)."""

    origin: str
    protocol: str
    idle: int
    active: int
    queued: int
    connections: int
    connections_opened: int
    requests: int
    errors: int
    retries: int
    buffered_bytes: int
    connection_streams: List[int]
    fallbacks: int
    alt_svc: Optional[str]
    alt_svc_broken: bool


class ClientStats(TypedDict):
    """What ``Client.stats()`` returns: totals over origins, each origin's pool (and the extra
    pools per-request protocols opened), and the pools of HTTP/2 and HTTP/3 connections to
    proxies (not in the totals)."""

    connections: int
    idle: int
    active: int
    queued: int
    connections_opened: int
    requests: int
    errors: int
    retries: int
    buffered_bytes: int
    fallbacks: int
    origins: Dict[str, OriginStats]
    #: Extra pools of origins in ``origins``: those opened by requests that asked for another
    #: protocol (``protocol=`` per request) than the origin's rule.
    other_protocols: List[OriginStats]
    proxies: List[OriginStats]
