"""httpx transports over quiver's engine: keep your httpx code, swap the connection pool.

    import httpx, quiver.httpx

    client = httpx.Client(transport=quiver.httpx.HTTPTransport(protocol="http2", size=64))
    client = httpx.AsyncClient(transport=quiver.httpx.AsyncHTTPTransport(protocol="http3"))

httpx keeps doing what it does above a transport (redirects, cookies, auth, decoding
``content-encoding``, ``raise_for_status``); the transport sends each request as httpx built it
(redirects not followed, nothing decoded, no cookies, no credentials added) over quiver's pools:
HTTP/1.1, HTTP/2 and HTTP/3, bodies streamed both ways with backpressure. httpx's ``read`` and
``pool`` timeouts apply per request (``None``: no limit); ``connect`` cannot change per request in
quiver, so the transport's ``connect_timeout`` option governs it; ``write`` is not used (a stalled
upload is a ``read_timeout`` for quiver: no byte moved). quiver's errors are raised as httpx's
exception classes with quiver's ``kind`` and ``error_class`` on them and the quiver exception as
``__cause__`` (see :data:`ERRORS`).

Importing this module imports httpx; ``import quiver`` alone does not.
"""

from __future__ import annotations

from typing import Any, AsyncIterator, Dict, Iterator, List, Mapping, Optional, Tuple, Type, cast

import httpx

from . import _quiver
from ._adapt import FOREVER, library_error, native_client
from ._client import _call
from ._exceptions import QuiverError
from ._models import reason_phrase
from ._types import ClientStats, PoolOptions

__all__ = ["AsyncHTTPTransport", "ERRORS", "HTTPTransport"]

#: quiver's error kinds and the httpx exception each is raised as. Kinds not listed (none of them
#: arises from a request a transport sends) are raised as ``httpx.TransportError``. A request body
#: iterator that raised (kind ``body_stream``) has its own exception raised unchanged, as httpx's
#: own transport does.
ERRORS: Dict[str, Type[Exception]] = {
    "connect_timeout": httpx.ConnectTimeout,
    "checkout_timeout": httpx.PoolTimeout,
    "read_timeout": httpx.ReadTimeout,
    "ping_timeout": httpx.ReadTimeout,
    "request_timeout": httpx.TimeoutException,
    "connect_refused": httpx.ConnectError,
    "connect_failed": httpx.ConnectError,
    "dns": httpx.ConnectError,
    "tls": httpx.ConnectError,
    "proxy_connect_failed": httpx.ProxyError,
    "connection_reset": httpx.ReadError,
    "connection_closed": httpx.RemoteProtocolError,
    "stream_reset": httpx.RemoteProtocolError,
    "goaway": httpx.RemoteProtocolError,
    "refused_stream": httpx.RemoteProtocolError,
    "protocol": httpx.RemoteProtocolError,
    "quic_transport": httpx.RemoteProtocolError,
    "frame_too_large": httpx.RemoteProtocolError,
    "response_headers_too_large": httpx.RemoteProtocolError,
    "response_body_too_large": httpx.RemoteProtocolError,
    "invalid_header": httpx.LocalProtocolError,
    "invalid_method": httpx.LocalProtocolError,
    "invalid_body": httpx.LocalProtocolError,
    "header_list_too_large": httpx.LocalProtocolError,
    "invalid_scheme": httpx.UnsupportedProtocol,
    "pool_unsupported_for_transport": httpx.UnsupportedProtocol,
    "invalid_url": httpx.InvalidURL,
    "decoding": httpx.DecodingError,
    "decompression_bomb": httpx.DecodingError,
    "too_many_redirects": httpx.TooManyRedirects,
}

#: Every request goes as httpx built it: redirects returned, bodies as sent, httpx's own
#: ``authorization`` only (pool rules' credentials are not added).
_AS_GIVEN: Dict[str, Any] = {"follow_redirects": False, "decompress": False, "auth": ("none",)}

_Trailers = List[Tuple[bytes, bytes]]


def _translate(exc: QuiverError) -> BaseException:
    """The exception to raise for ``exc``: its httpx class with ``kind`` and ``error_class`` (and
    ``exc`` as ``__cause__``), or, for a failed request body iterator, that iterator's own
    exception."""
    return library_error(exc, lambda: ERRORS.get(exc.kind, httpx.TransportError)(exc.message))


def _timeouts(request: httpx.Request) -> Tuple[Optional[float], Optional[float]]:
    """httpx's ``read`` and ``pool`` timeouts as quiver's ``read_timeout`` and
    ``checkout_timeout`` (None, httpx's "no limit": the longest quiver takes); absent: the
    transport's options."""
    timeout = request.extensions.get("timeout")
    if not timeout:
        return None, None
    read = checkout = None
    if "read" in timeout:
        read = FOREVER if timeout["read"] is None else timeout["read"]
    if "pool" in timeout:
        checkout = FOREVER if timeout["pool"] is None else timeout["pool"]
    return read, checkout


def _held_bytes(stream: Any) -> Optional[bytes]:
    """The body when httpx holds it in memory (a ``ByteStream``: ``content=bytes``, ``json=``,
    ``data=``), so quiver can send it again (a retried HTTP/2 stream); None otherwise."""
    if isinstance(stream, httpx.ByteStream):
        return b"".join(stream)
    return None


def _target(url: httpx.URL) -> str:
    """The URL to send: httpx has turned credentials in it into an ``authorization`` header
    already (quiver refuses URLs that carry them)."""
    if url.userinfo:
        url = url.copy_with(userinfo=b"")
    return str(url)


def _send_args(request: httpx.Request, content: Any) -> Tuple[Any, ...]:
    """The native ``send`` / ``send_async`` arguments for ``request`` with body ``content``."""
    read, checkout = _timeouts(request)
    return (
        request.method,
        _target(request.url),
        request.headers.raw,
        content or None,
        None,
        None,
        True,
        _AS_GIVEN,
        read,
        checkout,
    )


def _response(native: _quiver.ResponseStream, stream_type: Any) -> httpx.Response:
    """httpx's response for ``native``, its body read through a ``stream_type`` stream."""
    trailers: _Trailers = []
    return httpx.Response(
        native.status,
        headers=native.raw_headers(),
        stream=stream_type(native, trailers),
        extensions={
            "http_version": native.http_version.encode("ascii"),
            "reason_phrase": reason_phrase(native.status).encode("ascii"),
            "trailers": trailers,
        },
    )


class _ResponseStream(httpx.SyncByteStream):
    """A response body as httpx reads it: quiver's streamed body, chunk by chunk."""

    def __init__(self, native: _quiver.ResponseStream, trailers: _Trailers) -> None:
        self._native = native
        self._trailers = trailers

    def __iter__(self) -> Iterator[bytes]:
        native = self._native
        while True:
            try:
                chunk = native.read()
            except QuiverError as exc:
                failure = exc
                break
            if chunk is None:
                self._trailers.extend(native.raw_trailers() or ())
                return
            if chunk:
                yield chunk
        raise _translate(failure)

    def close(self) -> None:
        self._native.close()


class _AsyncResponseStream(httpx.AsyncByteStream):
    """A response body as httpx reads it, for asyncio."""

    def __init__(self, native: _quiver.ResponseStream, trailers: _Trailers) -> None:
        self._native = native
        self._trailers = trailers

    async def __aiter__(self) -> AsyncIterator[bytes]:
        native = self._native
        while True:
            try:
                chunk = await _call(native.read_async)
            except QuiverError as exc:
                failure = exc
                break
            if chunk is None:
                self._trailers.extend(native.raw_trailers() or ())
                return
            if chunk:
                yield chunk
        raise _translate(failure)

    async def aclose(self) -> None:
        self._native.close()


class HTTPTransport(httpx.BaseTransport):
    """An httpx transport (``httpx.Client(transport=...)``) that sends requests over a quiver
    client of its own: HTTP/1.1, HTTP/2 and HTTP/3 pools per origin.

    Keyword arguments are quiver's pool options (``protocol``, ``size``, ``max_connections``,
    ``ca_file``, ``connect_timeout``, ``proxy``, ..., see ``quiver.OPTION_NAMES``) and
    ``pools={pattern: {...}}`` per origin, validated here (``quiver.InvalidError``). The client
    layer's options (redirects, decoding, cookies, credentials) are httpx's to apply and raise
    ``TypeError`` here. Thread-safe, like the ``httpx.Client`` it serves.
    """

    def __init__(self, *, pools: Optional[Mapping[str, PoolOptions]] = None, **options: Any) -> None:
        self._native = native_client("quiver.httpx.HTTPTransport", "httpx", options, pools)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Sends ``request`` and returns once its response head arrived; the body is read as
        httpx iterates the response's stream (closing it releases the connection or stream)."""
        body = _held_bytes(request.stream)
        content: Any = body if body is not None else iter(cast(httpx.SyncByteStream, request.stream))
        try:
            native = self._native.send(*_send_args(request, content))
        except QuiverError as exc:
            failure = exc
        else:
            return _response(native, _ResponseStream)
        raise _translate(failure)

    def stats(self) -> ClientStats:
        """The pool statistics of the transport's quiver client (see ``quiver.Client.stats``)."""
        return self._native.stats()  # type: ignore[return-value]

    def close(self) -> None:
        """Closes the quiver client: every connection closes; requests in flight fail."""
        self._native.close()


class AsyncHTTPTransport(httpx.AsyncBaseTransport):
    """An httpx transport for ``httpx.AsyncClient(transport=...)``: the options and behaviour of
    :class:`HTTPTransport`, never blocking the event loop. Cancelling a task that awaits a request
    or a body read cancels it in the engine."""

    def __init__(self, *, pools: Optional[Mapping[str, PoolOptions]] = None, **options: Any) -> None:
        self._native = native_client("quiver.httpx.AsyncHTTPTransport", "httpx", options, pools)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Sends ``request`` and returns once its response head arrived; the body is read as
        httpx iterates the response's stream."""
        body = _held_bytes(request.stream)
        content: Any = body if body is not None else cast(httpx.AsyncByteStream, request.stream).__aiter__()
        try:
            native = await _call(self._native.send_async, *_send_args(request, content))
        except QuiverError as exc:
            failure = exc
        else:
            return _response(native, _AsyncResponseStream)
        raise _translate(failure)

    def stats(self) -> ClientStats:
        """The pool statistics of the transport's quiver client (see ``quiver.Client.stats``)."""
        return self._native.stats()  # type: ignore[return-value]

    async def aclose(self) -> None:
        """Closes the quiver client: every connection closes; requests in flight fail."""
        self._native.close()
