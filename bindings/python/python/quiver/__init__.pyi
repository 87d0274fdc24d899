"""Type stubs for the public API of quiver (distribution quiver-http)."""

import builtins
from types import TracebackType
from typing import (
    Any,
    AsyncIterator,
    Dict,
    Iterator,
    List,
    Literal,
    Mapping,
    MutableMapping,
    Optional,
    Sequence,
    Tuple,
    Type,
    Union,
    overload,
)

from ._auth import BasicAuth as BasicAuth
from ._auth import BearerAuth as BearerAuth
from ._auth import DigestAuth as DigestAuth
from ._auth import NoAuth as NoAuth
from ._cookies import Cookies as Cookies
from ._quiver import Event as Event
from ._quiver import Progress as Progress
from ._quiver import Timings as Timings
from ._types import AuthTypes as AuthTypes
from ._types import ClientStats as ClientStats
from ._types import CookieDict as CookieDict
from ._types import CookieTypes as CookieTypes
from ._types import EventHook as EventHook
from ._types import EventHookTypes as EventHookTypes
from ._types import EventStats as EventStats
from ._types import FileTypes as FileTypes
from ._types import HeaderTypes as HeaderTypes
from ._types import Listener as Listener
from ._types import OriginStats as OriginStats
from ._types import PoolOptions as PoolOptions
from ._types import Protocol as Protocol
from ._types import QueryParamTypes as QueryParamTypes
from ._types import RequestContent as RequestContent
from ._types import RequestData as RequestData
from ._types import RequestFiles as RequestFiles
from ._types import Seconds as Seconds
from ._types import StrPath as StrPath
from ._types import SyncRequestContent as SyncRequestContent

__version__: str

#: Every pool option name accepted as a keyword argument and in ``pools={...}``.
OPTION_NAMES: Tuple[str, ...]
#: Every error kind the engine reports, with its class.
ERROR_KINDS: Dict[str, str]

# -- exceptions -------------------------------------------------------------------------------

class QuiverError(Exception):
    """A failure reported by the engine."""

    kind: str
    error_class: str
    message: str
    def __init__(self, message: str, kind: str = ..., error_class: str = ...) -> None: ...
    @property
    def is_timeout(self) -> bool: ...

class TransientError(QuiverError): ...
class InvalidError(QuiverError): ...
class UnrecoverableError(QuiverError): ...
class TimeoutError(TransientError, builtins.TimeoutError): ...

class TooManyRedirects(UnrecoverableError):
    """Kind ``too_many_redirects``: more redirects than ``max_redirects`` (or a loop)."""

class DecodingError(UnrecoverableError):
    """Kinds ``decoding`` (a corrupt or truncated compressed body) and ``decompression_bomb``."""

class CookieConflict(LookupError):
    """Several cookies match a name: give ``domain=`` and ``path=``."""

class HTTPStatusError(Exception):
    response: Response
    def __init__(self, message: str, *, response: Response) -> None: ...

# -- headers and responses ------------------------------------------------------------------------

class Headers(MutableMapping[str, str]):
    """Case-insensitive, multi-valued header fields, in order."""

    def __init__(self, headers: Optional[HeaderTypes] = None) -> None: ...
    def get_list(self, key: str) -> List[str]: ...
    @overload
    def get(self, key: str) -> Optional[str]: ...
    @overload
    def get(self, key: str, default: Any) -> Any: ...
    def multi_items(self) -> List[Tuple[str, str]]: ...
    @property
    def raw(self) -> List[Tuple[str, str]]: ...
    def add(self, key: str, value: str) -> None: ...
    def copy(self) -> Headers: ...
    def merged(self, other: Optional[HeaderTypes]) -> Headers: ...
    def __getitem__(self, key: str) -> str: ...
    def __setitem__(self, key: str, value: str) -> None: ...
    def __delitem__(self, key: str) -> None: ...
    def __contains__(self, key: object) -> bool: ...
    def __iter__(self) -> Iterator[str]: ...
    def __len__(self) -> int: ...

class Request:
    """A request as the client is about to send it (request event hooks,
    :attr:`Response.request`); hooks may change ``method``, ``url`` and ``headers``."""

    method: str
    url: str
    headers: Headers
    #: The body when held in memory (``b""`` for none); None when streamed.
    content: Optional[bytes]
    def __init__(
        self, method: str, url: str, *, headers: Optional[HeaderTypes] = None, content: Optional[bytes] = b""
    ) -> None: ...

class Response:
    """An HTTP response: read to its end, or (inside ``stream()``) with its body still to read."""

    status_code: int
    http_version: str
    #: The URL that answered (after redirects: the last one).
    url: str
    @property
    def request(self) -> Request: ...
    @property
    def timings(self) -> Timings: ...
    @property
    def history(self) -> List[Response]: ...
    @property
    def unfollowed_redirect(self) -> Optional[str]: ...
    @property
    def headers(self) -> Headers: ...
    @property
    def reason_phrase(self) -> str: ...
    @property
    def is_success(self) -> bool: ...
    @property
    def is_redirect(self) -> bool: ...
    @property
    def is_client_error(self) -> bool: ...
    @property
    def is_server_error(self) -> bool: ...
    @property
    def is_error(self) -> bool: ...
    def raise_for_status(self) -> Response: ...
    @property
    def content(self) -> bytes: ...
    @property
    def encoding(self) -> str: ...
    @property
    def text(self) -> str: ...
    def json(self, **kwargs: Any) -> Any: ...
    @property
    def trailers(self) -> Headers: ...
    @property
    def is_closed(self) -> bool: ...
    def read(self) -> bytes: ...
    def iter_bytes(self) -> Iterator[bytes]: ...
    def iter_text(self) -> Iterator[str]: ...
    def iter_lines(self) -> Iterator[str]: ...
    def close(self) -> None: ...
    async def aread(self) -> bytes: ...
    def aiter_bytes(self) -> AsyncIterator[bytes]: ...
    def aiter_text(self) -> AsyncIterator[str]: ...
    def aiter_lines(self) -> AsyncIterator[str]: ...
    async def aclose(self) -> None: ...

class _SyncStream:
    def __enter__(self) -> Response: ...
    def __exit__(self, *exc: Any) -> None: ...

class _AsyncStream:
    async def __aenter__(self) -> Response: ...
    async def __aexit__(self, *exc: Any) -> None: ...

# -- datagram channels ----------------------------------------------------------------------------

class _Connected:
    """What a datagram channel and a UDP tunnel share: the 2xx answer to their CONNECT."""

    @property
    def status_code(self) -> int: ...
    @property
    def http_version(self) -> str: ...
    @property
    def headers(self) -> Headers: ...

class _Channel(_Connected):
    @property
    def trailers(self) -> Optional[Headers]: ...
    @property
    def max_datagram_size(self) -> Optional[int]: ...
    @property
    def is_ended(self) -> bool: ...

class DatagramChannel(_Channel):
    """An open RFC 9297 datagram channel (blocking)."""

    def send(self, datagram: Union[bytes, bytearray]) -> None: ...
    def recv(self, timeout: Optional[float] = None) -> Optional[bytes]: ...
    def recv_data(self, timeout: Optional[float] = None) -> Optional[bytes]: ...
    def close(self) -> None: ...
    def __iter__(self) -> Iterator[bytes]: ...
    def __enter__(self) -> DatagramChannel: ...
    def __exit__(self, *exc: Any) -> None: ...

class AsyncDatagramChannel(_Channel):
    """An open RFC 9297 datagram channel (asyncio)."""

    async def send(self, datagram: Union[bytes, bytearray]) -> None: ...
    async def recv(self) -> Optional[bytes]: ...
    async def recv_data(self) -> Optional[bytes]: ...
    async def close(self) -> None: ...
    async def aclose(self) -> None: ...
    def __aiter__(self) -> AsyncIterator[bytes]: ...
    async def __aenter__(self) -> AsyncDatagramChannel: ...
    async def __aexit__(self, *exc: Any) -> None: ...

# -- UDP tunnels ---------------------------------------------------------------------------------

class _Tunnel(_Connected):
    @property
    def target(self) -> str: ...
    @property
    def max_payload(self) -> int: ...
    @property
    def is_ended(self) -> bool: ...

class UdpTunnel(_Tunnel):
    """A MASQUE CONNECT-UDP tunnel to one target through a proxy (blocking)."""

    def send(self, payload: Union[bytes, bytearray]) -> None: ...
    def recv(self, timeout: Optional[float] = None) -> Optional[bytes]: ...
    def close(self) -> None: ...
    def __iter__(self) -> Iterator[bytes]: ...
    def __enter__(self) -> UdpTunnel: ...
    def __exit__(self, *exc: Any) -> None: ...

class AsyncUdpTunnel(_Tunnel):
    """A MASQUE CONNECT-UDP tunnel to one target through a proxy (asyncio)."""

    async def send(self, payload: Union[bytes, bytearray]) -> None: ...
    async def recv(self, timeout: Optional[float] = None) -> Optional[bytes]: ...
    async def close(self) -> None: ...
    async def aclose(self) -> None: ...
    def __aiter__(self) -> AsyncIterator[bytes]: ...
    async def __aenter__(self) -> AsyncUdpTunnel: ...
    async def __aexit__(self, *exc: Any) -> None: ...

# -- clients --------------------------------------------------------------------------------------

class Client:
    """A blocking HTTP client with a connection pool per origin; thread-safe."""

    def __init__(
        self,
        *,
        base_url: Optional[str] = None,
        headers: Optional[HeaderTypes] = None,
        pools: Optional[Mapping[str, PoolOptions]] = None,
        event_hooks: Optional[EventHookTypes] = None,
        listeners: Optional[Sequence[Listener]] = None,
        protocol: Protocol = ...,
        alt_svc: bool = ...,
        size: int = ...,
        max_connections: int = ...,
        max_total_connections: int = ...,
        initial_max_streams: int = ...,
        stream_window: int = ...,
        connection_window: int = ...,
        window_update_threshold: float = ...,
        ping_interval: Optional[Seconds] = ...,
        ping_timeout: Seconds = ...,
        quic_idle_timeout: Seconds = ...,
        early_data: bool = ...,
        proxy: Optional[str] = ...,
        proxy_authorization: Optional[str] = ...,
        proxy_protocol: Protocol = ...,
        proxy_from_env: bool = ...,
        checkout_timeout: Seconds = ...,
        idle_timeout: Seconds = ...,
        connect_timeout: Seconds = ...,
        happy_eyeballs_delay: Seconds = ...,
        https_rr: bool = ...,
        https_rr_nameserver: Optional[str] = ...,
        unix_socket: Optional[StrPath] = ...,
        resolve: Optional[str] = ...,
        dns_cache_ttl: Optional[Seconds] = ...,
        read_timeout: Seconds = ...,
        request_timeout: Optional[Seconds] = ...,
        ca_file: Optional[StrPath] = ...,
        client_cert: Union[None, StrPath, Tuple[StrPath, StrPath]] = ...,
        client_key: Optional[StrPath] = ...,
        tls_roots: Literal["webpki", "system"] = ...,
        danger_accept_invalid_certs: bool = ...,
        max_response_headers: int = ...,
        max_response_body: int = ...,
        follow_redirects: bool = ...,
        max_redirects: int = ...,
        allow_insecure_redirects: bool = ...,
        decompress: bool = ...,
        max_decompression_ratio: int = ...,
        cookies: Union[bool, CookieTypes, None] = ...,
        basic_auth: Optional[str] = ...,
        bearer_token: Optional[str] = ...,
        digest_auth: Optional[str] = ...,
        auth: AuthTypes = ...,
    ) -> None: ...
    def request(
        self,
        method: str,
        url: str,
        *,
        params: Optional[QueryParamTypes] = None,
        headers: Optional[HeaderTypes] = None,
        content: Optional[SyncRequestContent] = None,
        data: Optional[RequestData] = None,
        files: Optional[RequestFiles] = None,
        json: Any = None,
        cookies: Optional[CookieTypes] = None,
        auth: AuthTypes = None,
        follow_redirects: Optional[bool] = None,
        redirect: Optional[Literal["follow", "manual", "error"]] = None,
        max_redirects: Optional[int] = None,
        decompress: Optional[bool] = None,
        protocol: Optional[Protocol] = None,
        timeout: Optional[Seconds] = None,
        read_timeout: Optional[Seconds] = None,
        checkout_timeout: Optional[Seconds] = None,
        early_data: Optional[bool] = None,
        progress: Optional[Progress] = None,
    ) -> Response: ...
    def get(self, url: str, **kwargs: Any) -> Response: ...
    def head(self, url: str, **kwargs: Any) -> Response: ...
    def options(self, url: str, **kwargs: Any) -> Response: ...
    def delete(self, url: str, **kwargs: Any) -> Response: ...
    def post(self, url: str, **kwargs: Any) -> Response: ...
    def put(self, url: str, **kwargs: Any) -> Response: ...
    def patch(self, url: str, **kwargs: Any) -> Response: ...
    def stream(self, method: str, url: str, **kwargs: Any) -> _SyncStream: ...
    def open_datagram_channel(
        self,
        url: str,
        headers: Optional[HeaderTypes] = None,
        protocol: str = "connect-udp",
        *,
        queue: int = 1024,
    ) -> DatagramChannel: ...
    def open_udp_tunnel(
        self,
        proxy: str,
        host: str,
        port: int,
        protocol: Protocol = "http3",
        headers: Optional[HeaderTypes] = None,
    ) -> UdpTunnel: ...
    def close_all_tunnels(self) -> None: ...
    def stats(self) -> ClientStats: ...
    @property
    def event_hooks(self) -> Dict[str, List[EventHook]]: ...
    @event_hooks.setter
    def event_hooks(self, event_hooks: EventHookTypes) -> None: ...
    @property
    def listeners(self) -> Tuple[Listener, ...]: ...
    def add_listener(self, listener: Listener) -> None: ...
    def remove_listener(self, listener: Listener) -> None: ...
    def event_stats(self) -> EventStats: ...
    @property
    def cookies(self) -> Optional[Cookies]: ...
    @property
    def is_closed(self) -> bool: ...
    def close(self) -> None: ...
    def __enter__(self) -> Client: ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None: ...

class AsyncClient:
    """The asyncio client: the same options and methods as :class:`Client`, as coroutines."""

    def __init__(
        self,
        *,
        base_url: Optional[str] = None,
        headers: Optional[HeaderTypes] = None,
        pools: Optional[Mapping[str, PoolOptions]] = None,
        event_hooks: Optional[EventHookTypes] = None,
        listeners: Optional[Sequence[Listener]] = None,
        protocol: Protocol = ...,
        alt_svc: bool = ...,
        size: int = ...,
        max_connections: int = ...,
        max_total_connections: int = ...,
        initial_max_streams: int = ...,
        stream_window: int = ...,
        connection_window: int = ...,
        window_update_threshold: float = ...,
        ping_interval: Optional[Seconds] = ...,
        ping_timeout: Seconds = ...,
        quic_idle_timeout: Seconds = ...,
        early_data: bool = ...,
        proxy: Optional[str] = ...,
        proxy_authorization: Optional[str] = ...,
        proxy_protocol: Protocol = ...,
        proxy_from_env: bool = ...,
        checkout_timeout: Seconds = ...,
        idle_timeout: Seconds = ...,
        connect_timeout: Seconds = ...,
        happy_eyeballs_delay: Seconds = ...,
        https_rr: bool = ...,
        https_rr_nameserver: Optional[str] = ...,
        unix_socket: Optional[StrPath] = ...,
        resolve: Optional[str] = ...,
        dns_cache_ttl: Optional[Seconds] = ...,
        read_timeout: Seconds = ...,
        request_timeout: Optional[Seconds] = ...,
        ca_file: Optional[StrPath] = ...,
        client_cert: Union[None, StrPath, Tuple[StrPath, StrPath]] = ...,
        client_key: Optional[StrPath] = ...,
        tls_roots: Literal["webpki", "system"] = ...,
        danger_accept_invalid_certs: bool = ...,
        max_response_headers: int = ...,
        max_response_body: int = ...,
        follow_redirects: bool = ...,
        max_redirects: int = ...,
        allow_insecure_redirects: bool = ...,
        decompress: bool = ...,
        max_decompression_ratio: int = ...,
        cookies: Union[bool, CookieTypes, None] = ...,
        basic_auth: Optional[str] = ...,
        bearer_token: Optional[str] = ...,
        digest_auth: Optional[str] = ...,
        auth: AuthTypes = ...,
    ) -> None: ...
    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Optional[QueryParamTypes] = None,
        headers: Optional[HeaderTypes] = None,
        content: Optional[RequestContent] = None,
        data: Optional[RequestData] = None,
        files: Optional[RequestFiles] = None,
        json: Any = None,
        cookies: Optional[CookieTypes] = None,
        auth: AuthTypes = None,
        follow_redirects: Optional[bool] = None,
        redirect: Optional[Literal["follow", "manual", "error"]] = None,
        max_redirects: Optional[int] = None,
        decompress: Optional[bool] = None,
        protocol: Optional[Protocol] = None,
        timeout: Optional[Seconds] = None,
        read_timeout: Optional[Seconds] = None,
        checkout_timeout: Optional[Seconds] = None,
        early_data: Optional[bool] = None,
        progress: Optional[Progress] = None,
    ) -> Response: ...
    async def get(self, url: str, **kwargs: Any) -> Response: ...
    async def head(self, url: str, **kwargs: Any) -> Response: ...
    async def options(self, url: str, **kwargs: Any) -> Response: ...
    async def delete(self, url: str, **kwargs: Any) -> Response: ...
    async def post(self, url: str, **kwargs: Any) -> Response: ...
    async def put(self, url: str, **kwargs: Any) -> Response: ...
    async def patch(self, url: str, **kwargs: Any) -> Response: ...
    def stream(self, method: str, url: str, **kwargs: Any) -> _AsyncStream: ...
    async def open_datagram_channel(
        self,
        url: str,
        headers: Optional[HeaderTypes] = None,
        protocol: str = "connect-udp",
        *,
        queue: int = 1024,
    ) -> AsyncDatagramChannel: ...
    async def open_udp_tunnel(
        self,
        proxy: str,
        host: str,
        port: int,
        protocol: Protocol = "http3",
        headers: Optional[HeaderTypes] = None,
    ) -> AsyncUdpTunnel: ...
    def close_all_tunnels(self) -> None: ...
    def stats(self) -> ClientStats: ...
    @property
    def event_hooks(self) -> Dict[str, List[EventHook]]: ...
    @event_hooks.setter
    def event_hooks(self, event_hooks: EventHookTypes) -> None: ...
    @property
    def listeners(self) -> Tuple[Listener, ...]: ...
    def add_listener(self, listener: Listener) -> None: ...
    def remove_listener(self, listener: Listener) -> None: ...
    def event_stats(self) -> EventStats: ...
    @property
    def cookies(self) -> Optional[Cookies]: ...
    @property
    def is_closed(self) -> bool: ...
    async def aclose(self) -> None: ...
    async def __aenter__(self) -> AsyncClient: ...
    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None: ...

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
