"""``Client`` (blocking) and ``AsyncClient`` (asyncio), datagram channels and UDP tunnels."""

from __future__ import annotations

import asyncio
import logging
import typing
import weakref
from datetime import timedelta
from types import TracebackType
from typing import (
    Any,
    AsyncIterator,
    Callable,
    Dict,
    Generic,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Type,
    TypeVar,
    Union,
)

from . import _quiver
from ._auth import auth_options, request_auth
from ._cookies import Cookies, request_cookies, seed
from ._events import Dispatcher, EventHooks, arun_hooks, hooks_from, log_response, logger, run_hooks
from ._models import Headers, Request, Response, content_of, merge_url, prepare_body
from ._multipart import parts
from ._types import (
    AuthTypes,
    ClientStats,
    CookieTypes,
    EventHookTypes,
    EventStats,
    HeaderTypes,
    Listener,
    PoolOptions,
    Protocol,
    QueryParamTypes,
    RequestContent,
    RequestData,
    RequestFiles,
    Seconds,
)

__all__ = ["Client", "AsyncClient", "DatagramChannel", "AsyncDatagramChannel", "UdpTunnel", "AsyncUdpTunnel"]

# -- the asyncio bridge -----------------------------------------------------------------------
#
# One LoopBridge per event loop: quiver's runtime threads queue results on it and wake the loop
# by writing to a socket the loop watches; the loop runs the queued completions in one go.

_bridges: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _quiver.LoopBridge]" = weakref.WeakKeyDictionary()
_strong_bridges: Dict[int, Tuple[asyncio.AbstractEventLoop, _quiver.LoopBridge]] = {}
_last: Tuple[Callable[[], Optional[asyncio.AbstractEventLoop]], Optional[_quiver.LoopBridge]] = (lambda: None, None)


def _new_bridge(loop: asyncio.AbstractEventLoop) -> _quiver.LoopBridge:
    bridge = _quiver.LoopBridge()
    fd = bridge.fileno()
    try:
        if fd < 0:
            raise NotImplementedError
        loop.add_reader(fd, bridge.drain)
        return bridge
    except NotImplementedError:
        pass
    # A loop that cannot watch descriptors (Windows' proactor): wake it with call_soon_threadsafe,
    # holding only weak references so the bridge does not keep the loop alive.
    bridge = _quiver.LoopBridge(socket=False)
    loop_ref = weakref.ref(loop)
    bridge_ref = weakref.ref(bridge)

    def wake() -> None:
        lp, br = loop_ref(), bridge_ref()
        if lp is not None and br is not None and not lp.is_closed():
            lp.call_soon_threadsafe(br.drain)

    bridge.use_waker(wake)
    return bridge


def _bridge(loop: asyncio.AbstractEventLoop) -> _quiver.LoopBridge:
    global _last
    loop_ref, bridge = _last
    if loop_ref() is loop and bridge is not None:
        return bridge
    try:
        bridge = _bridges.get(loop)
        if bridge is None:
            bridge = _bridges[loop] = _new_bridge(loop)
        _last = (weakref.ref(loop), bridge)
    except TypeError:  # a loop without weak references
        entry = _strong_bridges.get(id(loop))
        if entry is None or entry[0] is not loop:
            for key, (other, _) in list(_strong_bridges.items()):
                if other.is_closed():
                    del _strong_bridges[key]
            entry = _strong_bridges[id(loop)] = (loop, _new_bridge(loop))
        bridge = entry[1]
    return bridge


async def _call(start: Callable[..., _quiver.Pending], *args: Any) -> Any:
    """Runs a native operation that completes an asyncio future; cancelling the awaiting task
    cancels the operation in the engine."""
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    pending = start(_bridge(loop), fut, *args)
    try:
        return await fut
    except asyncio.CancelledError:
        pending.cancel()
        raise


# -- clients ----------------------------------------------------------------------------------


#: What the native ``send`` takes after ``(method, url)``: header fields, the body, the timeout,
#: early data, the client layer's settings, and the read and checkout timeouts.
_Prepared = Tuple[
    str,
    List[Tuple[str, str]],
    Any,
    Optional[float],
    Optional[bool],
    Optional[Dict[str, Any]],
    Optional[float],
    Optional[float],
]


def _seconds(value: Optional[Seconds]) -> Any:
    """A per-request duration as seconds: a ``datetime.timedelta`` converted, anything else left
    for the native layer to check."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    return value


def _native_client(options: Dict[str, Any], pools: Any) -> _quiver.NativeClient:
    """The native client for pool ``options`` and per-origin ``pools`` (httpx's ``auth=`` in a
    rule mapped onto the credential options)."""
    if pools is not None and hasattr(pools, "items"):
        pools = {pattern: _rule_options(pattern, rule) for pattern, rule in pools.items()}
    return _quiver.NativeClient(options, pools)


def _rule_options(pattern: str, rule: Any) -> Any:
    """A pool rule with httpx's ``auth=`` mapped onto the credential options."""
    if not isinstance(rule, Mapping) or "auth" not in rule:
        return rule
    rule = dict(rule)
    auth_options(rule.pop("auth"), rule, f"pool rule `{pattern}`: ")
    return rule


_INFO = logging.INFO

#: A response's request: built (request hooks ran), or what builds it when asked for.
_RequestOf = Union[Request, Tuple[str, str, List[Tuple[str, str]], Optional[bytes]]]


class _BaseClient:
    __slots__ = ("_native", "_base_url", "_headers", "_cookies", "_event_hooks", "_events", "__weakref__")

    def __init__(
        self,
        *,
        base_url: Optional[str] = None,
        headers: Optional[HeaderTypes] = None,
        pools: Optional[Mapping[str, PoolOptions]] = None,
        auth: AuthTypes = None,
        cookies: Union[bool, CookieTypes, None] = None,
        event_hooks: Optional[EventHookTypes] = None,
        listeners: Optional[Sequence[Listener]] = None,
        **options: Any,
    ) -> None:
        self._event_hooks: EventHooks = hooks_from(event_hooks)
        if listeners is not None and not isinstance(listeners, (list, tuple)):
            raise TypeError(f"listeners= takes a list of callables, not {type(listeners).__name__}")
        auth_options(auth, options)
        seeded = None
        if isinstance(cookies, (Cookies, Mapping, list, tuple)):
            options["cookies"] = True
            seeded = cookies
        elif cookies is not None:
            options["cookies"] = cookies  # a bool (the engine refuses anything else)
        self._native = _native_client(options, pools)
        self._events = Dispatcher(self._native.events(), listeners)
        # A client dropped without close() lets its listener thread end too.
        weakref.finalize(self, self._events.close)
        self._base_url = base_url
        self._headers = Headers(headers) if headers else None
        jar = self._native.cookies()
        self._cookies = None if jar is None else Cookies._wrap(jar)
        if seeded is not None and jar is not None:
            try:
                seed(jar, seeded, base_url)
            except BaseException:
                self._native.close()
                raise

    @property
    def event_hooks(self) -> EventHooks:
        """httpx's event hooks: ``{"request": [...], "response": [...]}``. Request hooks are
        called with the :class:`Request` just before it is sent (changes to its ``method``,
        ``url`` and ``headers`` go out), response hooks with the :class:`Response` once its head
        arrived, before its body is read (a hook may call ``read()``); in the caller's thread
        (``AsyncClient``: awaited on the caller's loop). An exception in a hook reaches the
        caller. The lists may be changed in place, or the whole mapping set."""
        return self._event_hooks

    @event_hooks.setter
    def event_hooks(self, event_hooks: EventHookTypes) -> None:
        self._event_hooks = hooks_from(event_hooks)

    @property
    def listeners(self) -> Tuple[Listener, ...]:
        """The listeners of the engine's events, in the order they are called."""
        return self._events.listeners

    def add_listener(self, listener: Listener) -> None:
        """Calls ``listener(event)`` with each :class:`quiver.Event` of this client's requests
        and connections from now on, in order, on the client's ``quiver-events`` thread (for
        ``AsyncClient`` too: hand work to a loop with ``loop.call_soon_threadsafe``). A listener
        should return quickly: while it runs, events wait in a bounded queue (see
        :meth:`event_stats`). An exception it raises is logged on the ``quiver`` logger."""
        self._events.add(listener)

    def remove_listener(self, listener: Listener) -> None:
        """Stops calling ``listener`` (``ValueError`` if it is not one); with none left, the
        engine stops building events (unless the ``quiver`` logger wants them)."""
        self._events.remove(listener)

    def event_stats(self) -> EventStats:
        """``received``: events queued for the listener thread since the client was made;
        ``dropped``: events lost because the queue was full (8,192 waiting: a listener too slow
        for the traffic); ``queued``: events waiting now."""
        return self._events.stats()  # type: ignore[return-value]

    def _request_for_hooks(self, method: str, prepared: _Prepared) -> Tuple[_RequestOf, str, _Prepared]:
        """The request as hooks see it: built and run through the request hooks when there are
        any (what they changed goes out), else what builds it when asked for."""
        url, fields, body = prepared[0], prepared[1], prepared[2]
        if not self._event_hooks["request"]:
            return (method, url, fields, content_of(body)), method, prepared
        request = Request._prepared(method, url, fields, content_of(body))
        run_hooks(self._event_hooks["request"], request)
        return request, request.method, (request.url, request.headers.multi_items()) + prepared[2:]

    @property
    def cookies(self) -> Optional[Cookies]:
        """The client's cookie jar (``cookies=True``, or a jar or pairs to start with); None when
        the client keeps none (the default). Changes made here go with the next requests."""
        return self._cookies

    def _prepare(
        self,
        method: str,
        url: str,
        allow_async: bool,
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
        redirect: Optional[str] = None,
        max_redirects: Optional[int] = None,
        decompress: Optional[bool] = None,
        protocol: Optional[Protocol] = None,
        timeout: Optional[Seconds] = None,
        read_timeout: Optional[Seconds] = None,
        checkout_timeout: Optional[Seconds] = None,
        early_data: Optional[bool] = None,
        progress: Optional[_quiver.Progress] = None,
    ) -> _Prepared:
        url = merge_url(self._base_url, url, params)
        merged = self._headers.merged(headers) if self._headers is not None else Headers(headers)
        layer: Dict[str, Any] = {}
        if files:
            given = [name for name, v in (("content", content), ("json", json)) if v is not None]
            if given:
                raise TypeError(f"files= goes with data= fields only, not with {' or '.join(given)}=")
            layer["files"] = parts(data, files, allow_async)
            body = None
        else:
            body = prepare_body(merged, content, data, json, allow_async)
        if follow_redirects is not None and redirect is not None:
            raise TypeError("give follow_redirects= or redirect=, not both")
        if follow_redirects is not None:
            layer["follow_redirects"] = bool(follow_redirects)
        if redirect is not None:
            layer["redirect"] = redirect
        if max_redirects is not None:
            layer["max_redirects"] = max_redirects
        if decompress is not None:
            layer["decompress"] = bool(decompress)
        if auth is not None:
            layer["auth"] = request_auth(auth)
        if protocol is not None:
            layer["protocol"] = protocol
        if cookies is not None:
            own = request_cookies(cookies, url)
            if own:
                layer["cookies"] = own
        if progress is not None:
            if not isinstance(progress, _quiver.Progress):
                raise TypeError(f"progress= takes a quiver.Progress, not {type(progress).__name__}")
            layer["progress"] = progress
        return (
            url,
            merged.multi_items(),
            body,
            None if timeout is None else _seconds(timeout),
            early_data,
            layer or None,
            None if read_timeout is None else _seconds(read_timeout),
            None if checkout_timeout is None else _seconds(checkout_timeout),
        )

    def stats(self) -> ClientStats:
        """Pool statistics: totals (``connections``, ``idle``, ``active``, ``queued``,
        ``connections_opened``, ``requests``, ``errors``, ``retries``, ``buffered_bytes``,
        ``fallbacks``), ``origins``, a dict per ``scheme://host:port`` with the same counters
        plus ``protocol``, ``connection_streams``, ``alt_svc`` (the fresh HTTP/3 alternatives as
        an ``alt-svc`` value, or None) and ``alt_svc_broken``; ``other_protocols``, such dicts
        for the extra pools that requests with their own ``protocol=`` opened; and ``proxies``,
        one such dict per pool of HTTP/2 or HTTP/3 connections to a proxy (not in the
        totals)."""
        return self._native.stats()  # type: ignore[return-value]

    def close_all_tunnels(self) -> None:
        """Tears down every pooled connection to proxies (HTTP/2 and HTTP/3): UDP tunnels and
        requests tunnelled over them fail with kind ``shutdown``; later ones dial afresh."""
        self._native.close_all_tunnels()

    @staticmethod
    def _tunnel_fields(headers: Optional[HeaderTypes]) -> Optional[List[Tuple[str, str]]]:
        return Headers(headers).multi_items() if headers else None

    @property
    def is_closed(self) -> bool:
        return self._native.is_closed

    def _close(self) -> None:
        self._native.close()
        self._events.close()


class Client(_BaseClient):
    """A blocking HTTP client with a connection pool per origin. Thread-safe: share one.

    Keyword arguments are pool options (see ``quiver.OPTION_NAMES``; durations in seconds),
    ``pools={"https://api.example.com": {...}, "https://*.example.com": {...}}`` per-origin
    overrides, ``base_url=`` and default ``headers=``. Every option is validated here.

    httpx's names: ``auth=`` (a ``(user, password)`` tuple for Basic, ``quiver.BasicAuth``,
    ``quiver.DigestAuth``, ``quiver.BearerAuth``; also in a ``pools`` rule), ``cookies=``
    (``True`` keeps a jar, see :attr:`cookies`; a ``quiver.Cookies`` is copied into it;
    name/value pairs are set for ``base_url``'s host), ``follow_redirects=`` and
    ``max_redirects=``.
    """

    __slots__ = ()

    def request(
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
        redirect: Optional[str] = None,
        max_redirects: Optional[int] = None,
        decompress: Optional[bool] = None,
        protocol: Optional[Protocol] = None,
        timeout: Optional[Seconds] = None,
        read_timeout: Optional[Seconds] = None,
        checkout_timeout: Optional[Seconds] = None,
        early_data: Optional[bool] = None,
        progress: Optional[_quiver.Progress] = None,
    ) -> Response:
        """Sends a request and reads the whole response.

        ``files=`` sends a ``multipart/form-data`` body (with ``data=`` fields first);
        ``cookies=`` are this request's own cookies; ``auth=`` its credentials (None: the
        client's, ``quiver.NoAuth()``: none); ``follow_redirects=``, ``max_redirects=``,
        ``decompress=`` and ``protocol=`` override the origin's options for this request;
        ``redirect="error"`` fails on a redirect (kind ``redirect_refused``). ``timeout=``
        (seconds) bounds the whole request; ``read_timeout=`` (idle between bytes) and
        ``checkout_timeout=`` (waiting for a connection or stream slot) override the pool's."""
        prepared = self._prepare(
            method,
            url,
            False,
            params=params,
            headers=headers,
            content=content,
            data=data,
            files=files,
            json=json,
            cookies=cookies,
            auth=auth,
            follow_redirects=follow_redirects,
            redirect=redirect,
            max_redirects=max_redirects,
            decompress=decompress,
            protocol=protocol,
            timeout=timeout,
            read_timeout=read_timeout,
            checkout_timeout=checkout_timeout,
            early_data=early_data,
            progress=progress,
        )
        return self._send(method, prepared, False)

    def _send(self, method: str, prepared: _Prepared, stream: bool) -> Response:
        self._events.starting()
        request, method, prepared = self._request_for_hooks(method, prepared)
        url, fields, body, timeout, early_data, layer, read_timeout, checkout_timeout = prepared
        hooks = self._event_hooks["response"]
        # With response hooks the head comes first: hooks run before the body is read.
        head_first = stream or bool(hooks)
        native = self._native.send(
            method, url, fields, body, timeout, early_data, head_first, layer, read_timeout, checkout_timeout
        )
        response = Response._from_native(native, url, request)
        if logger.isEnabledFor(_INFO):
            log_response(method, url, response.http_version, response.status_code, response.reason_phrase)
        if hooks:
            try:
                run_hooks(hooks, response)
                if not stream:
                    response.read()
            except BaseException:
                response.close()
                raise
        return response

    def get(self, url: str, **kwargs: Any) -> Response:
        return self.request("GET", url, **kwargs)

    def head(self, url: str, **kwargs: Any) -> Response:
        return self.request("HEAD", url, **kwargs)

    def options(self, url: str, **kwargs: Any) -> Response:
        return self.request("OPTIONS", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> Response:
        return self.request("DELETE", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Response:
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> Response:
        return self.request("PUT", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> Response:
        return self.request("PATCH", url, **kwargs)

    def stream(self, method: str, url: str, **kwargs: Any) -> _SyncStream:
        """``with client.stream(method, url) as response:`` -- the body is read with
        ``iter_bytes()``, ``iter_lines()`` or ``read()``; leaving the block closes it."""
        return _SyncStream(self, method, url, kwargs)

    def _open_stream(self, method: str, url: str, kwargs: Dict[str, Any]) -> Response:
        return self._send(method, self._prepare(method, url, False, **kwargs), True)

    def open_datagram_channel(
        self,
        url: str,
        headers: Optional[HeaderTypes] = None,
        protocol: str = "connect-udp",
        *,
        queue: int = 1024,
    ) -> DatagramChannel:
        """Opens an RFC 9297 datagram channel: an extended CONNECT with ``protocol`` on an
        HTTP/3 connection (the origin's pool must use ``protocol="http3"``). ``queue``:
        datagrams kept while nobody receives (more are dropped)."""
        fields = Headers(headers).multi_items() if headers else None
        native = self._native.open_channel(merge_url(self._base_url, url, None), fields, protocol, queue)
        return DatagramChannel(native)

    def open_udp_tunnel(
        self,
        proxy: str,
        host: str,
        port: int,
        protocol: Protocol = "http3",
        headers: Optional[HeaderTypes] = None,
    ) -> UdpTunnel:
        """Opens a MASQUE CONNECT-UDP tunnel (RFC 9298) to ``host:port`` through the proxy at
        ``proxy`` (``https://[user:password@]host:port``; credentials become its
        Proxy-Authorization), over a pooled HTTP/3 connection (datagrams, ``protocol="http3"``)
        or HTTP/2 connection (capsules, ``protocol="http2"``) to it. Trust settings for the
        proxy come from the options (and the ``pools`` rule) of the proxy's origin."""
        native = self._native.open_udp_tunnel(proxy, host, port, protocol, self._tunnel_fields(headers))
        return UdpTunnel(native)

    def close(self) -> None:
        """Shuts every pool down: idle connections close, HTTP/2 and HTTP/3 streams in flight
        and callers waiting for a connection fail with kind ``shutdown`` (HTTP/1.1 responses
        already on a connection finish), and later requests raise (kind ``shutdown``). Listeners
        still hear the connections close."""
        self._close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()


class AsyncClient(_BaseClient):
    """The asyncio client: the same options and methods as :class:`Client`, as coroutines.

    It can be made outside a running loop and used from several loops; awaiting never blocks the
    loop, and cancelling an awaiting task cancels the request in the engine.
    """

    __slots__ = ()

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
        redirect: Optional[str] = None,
        max_redirects: Optional[int] = None,
        decompress: Optional[bool] = None,
        protocol: Optional[Protocol] = None,
        timeout: Optional[Seconds] = None,
        read_timeout: Optional[Seconds] = None,
        checkout_timeout: Optional[Seconds] = None,
        early_data: Optional[bool] = None,
        progress: Optional[_quiver.Progress] = None,
    ) -> Response:
        """Sends a request and reads the whole response (the arguments of
        :meth:`Client.request`)."""
        prepared = self._prepare(
            method,
            url,
            True,
            params=params,
            headers=headers,
            content=content,
            data=data,
            files=files,
            json=json,
            cookies=cookies,
            auth=auth,
            follow_redirects=follow_redirects,
            redirect=redirect,
            max_redirects=max_redirects,
            decompress=decompress,
            protocol=protocol,
            timeout=timeout,
            read_timeout=read_timeout,
            checkout_timeout=checkout_timeout,
            early_data=early_data,
            progress=progress,
        )
        return await self._send(method, prepared, False)

    async def _send(self, method: str, prepared: _Prepared, stream: bool) -> Response:
        self._events.starting()
        request: _RequestOf
        if self._event_hooks["request"]:
            request = Request._prepared(method, prepared[0], prepared[1], content_of(prepared[2]))
            await arun_hooks(self._event_hooks["request"], request)
            method = request.method
            prepared = (request.url, request.headers.multi_items()) + prepared[2:]
        else:
            request = (method, prepared[0], prepared[1], content_of(prepared[2]))
        url, fields, body, timeout, early_data, layer, read_timeout, checkout_timeout = prepared
        hooks = self._event_hooks["response"]
        native = await _call(
            self._native.send_async,
            method,
            url,
            fields,
            body,
            timeout,
            early_data,
            stream or bool(hooks),
            layer,
            read_timeout,
            checkout_timeout,
        )
        response = Response._from_native(native, url, request)
        if logger.isEnabledFor(_INFO):
            log_response(method, url, response.http_version, response.status_code, response.reason_phrase)
        if hooks:
            try:
                await arun_hooks(hooks, response)
                if not stream:
                    await response.aread()
            except BaseException:
                response.close()
                raise
        return response

    async def get(self, url: str, **kwargs: Any) -> Response:
        return await self.request("GET", url, **kwargs)

    async def head(self, url: str, **kwargs: Any) -> Response:
        return await self.request("HEAD", url, **kwargs)

    async def options(self, url: str, **kwargs: Any) -> Response:
        return await self.request("OPTIONS", url, **kwargs)

    async def delete(self, url: str, **kwargs: Any) -> Response:
        return await self.request("DELETE", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> Response:
        return await self.request("POST", url, **kwargs)

    async def put(self, url: str, **kwargs: Any) -> Response:
        return await self.request("PUT", url, **kwargs)

    async def patch(self, url: str, **kwargs: Any) -> Response:
        return await self.request("PATCH", url, **kwargs)

    def stream(self, method: str, url: str, **kwargs: Any) -> _AsyncStream:
        """``async with client.stream(method, url) as response:`` -- read the body with
        ``aiter_bytes()``, ``aiter_lines()`` or ``aread()``; leaving the block closes it."""
        return _AsyncStream(self, method, url, kwargs)

    async def _open_stream(self, method: str, url: str, kwargs: Dict[str, Any]) -> Response:
        return await self._send(method, self._prepare(method, url, True, **kwargs), True)

    async def open_datagram_channel(
        self,
        url: str,
        headers: Optional[HeaderTypes] = None,
        protocol: str = "connect-udp",
        *,
        queue: int = 1024,
    ) -> AsyncDatagramChannel:
        """Opens an RFC 9297 datagram channel (see :meth:`Client.open_datagram_channel`)."""
        fields = Headers(headers).multi_items() if headers else None
        native = await _call(
            self._native.open_channel_async, merge_url(self._base_url, url, None), fields, protocol, queue
        )
        return AsyncDatagramChannel(native)

    async def open_udp_tunnel(
        self,
        proxy: str,
        host: str,
        port: int,
        protocol: Protocol = "http3",
        headers: Optional[HeaderTypes] = None,
    ) -> AsyncUdpTunnel:
        """Opens a MASQUE CONNECT-UDP tunnel (see :meth:`Client.open_udp_tunnel`)."""
        native = await _call(
            self._native.open_udp_tunnel_async, proxy, host, port, protocol, self._tunnel_fields(headers)
        )
        return AsyncUdpTunnel(native)

    async def aclose(self) -> None:
        """Shuts every pool down (see :meth:`Client.close`); later requests raise (kind
        ``shutdown``)."""
        self._close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        await self.aclose()


class _SyncStream:
    """What ``Client.stream()`` returns: sends the request on ``with`` entry and closes the
    response on exit."""

    __slots__ = ("_client", "_method", "_url", "_kwargs", "_response")

    def __init__(self, client: Client, method: str, url: str, kwargs: Dict[str, Any]) -> None:
        self._client = client
        self._method = method
        self._url = url
        self._kwargs = kwargs
        self._response: Optional[Response] = None

    def __enter__(self) -> Response:
        self._response = self._client._open_stream(self._method, self._url, dict(self._kwargs))
        return self._response

    def __exit__(self, *exc: Any) -> None:
        if self._response is not None:
            self._response.close()


class _AsyncStream:
    """What ``AsyncClient.stream()`` returns: sends the request on ``async with`` entry and
    closes the response on exit."""

    __slots__ = ("_client", "_method", "_url", "_kwargs", "_response")

    def __init__(self, client: AsyncClient, method: str, url: str, kwargs: Dict[str, Any]) -> None:
        self._client = client
        self._method = method
        self._url = url
        self._kwargs = kwargs
        self._response: Optional[Response] = None

    async def __aenter__(self) -> Response:
        self._response = await self._client._open_stream(self._method, self._url, dict(self._kwargs))
        return self._response

    async def __aexit__(self, *exc: Any) -> None:
        if self._response is not None:
            await self._response.aclose()


# -- datagram channels ------------------------------------------------------------------------


class _NativeHead(typing.Protocol):
    @property
    def status(self) -> int: ...
    @property
    def http_version(self) -> str: ...
    def headers(self) -> List[Tuple[str, str]]: ...


_N = TypeVar("_N", bound=_NativeHead)


class _Connected(Generic[_N]):
    """What a datagram channel and a UDP tunnel share: the 2xx answer to their CONNECT."""

    __slots__ = ("_native", "_headers")

    def __init__(self, native: _N) -> None:
        self._native = native
        self._headers: Optional[Headers] = None

    @property
    def status_code(self) -> int:
        """The status of the answer to the CONNECT (2xx: open)."""
        return self._native.status

    @property
    def http_version(self) -> str:
        """The HTTP version of the connection the CONNECT went on (``"HTTP/3"``, ``"HTTP/2"``)."""
        return self._native.http_version

    @property
    def headers(self) -> Headers:
        """The headers of the answer to the CONNECT."""
        if self._headers is None:
            self._headers = Headers._from_pairs(self._native.headers())
        return self._headers


class _Channel(_Connected[_quiver.NativeChannel]):
    __slots__ = ()

    @property
    def trailers(self) -> Optional[Headers]:
        """The stream's trailers, once it has ended."""
        pairs = self._native.trailers()
        return None if pairs is None else Headers._from_pairs(pairs)

    @property
    def max_datagram_size(self) -> Optional[int]:
        """The largest datagram payload the path takes, if datagrams are available."""
        return self._native.max_datagram_size

    @property
    def is_ended(self) -> bool:
        """True once the channel's stream has ended."""
        return self._native.is_ended


class DatagramChannel(_Channel):
    """An open datagram channel (blocking). ``send()`` may be called while another thread
    waits in ``recv()``."""

    __slots__ = ()

    def send(self, datagram: bytes) -> None:
        """Sends one datagram (unreliable: it may be lost). Never waits: a datagram the path
        cannot take now is dropped."""
        self._native.send(datagram)

    def recv(self, timeout: Optional[float] = None) -> Optional[bytes]:
        """The next datagram; ``None`` once the stream has ended. Raises the builtin
        ``TimeoutError`` if none arrives within ``timeout`` seconds."""
        return self._native.recv(timeout)

    def recv_data(self, timeout: Optional[float] = None) -> Optional[bytes]:
        """The next piece of the stream's data (capsules); ``None`` at its end."""
        return self._native.recv_data(timeout)

    def close(self) -> None:
        """Ends our side of the stream; what the peer still sends can be received."""
        self._native.close()

    def __iter__(self) -> Iterator[bytes]:
        while True:
            d = self.recv()
            if d is None:
                return
            yield d

    def __enter__(self) -> DatagramChannel:
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            if not self._native.is_ended:
                self._native.close()
        finally:
            self._native.abort()


class AsyncDatagramChannel(_Channel):
    """An open datagram channel (asyncio)."""

    __slots__ = ()

    async def send(self, datagram: bytes) -> None:
        """Sends one datagram (unreliable: it may be lost). Never waits."""
        self._native.send(datagram)

    async def recv(self) -> Optional[bytes]:
        """The next datagram; ``None`` once the stream has ended."""
        datagram: Optional[bytes] = await _call(self._native.recv_async)
        return datagram

    async def recv_data(self) -> Optional[bytes]:
        """The next piece of the stream's data (capsules); ``None`` at its end."""
        data: Optional[bytes] = await _call(self._native.recv_data_async)
        return data

    async def close(self) -> None:
        """Ends our side of the stream; what the peer still sends can be received."""
        await _call(self._native.close_async)

    aclose = close

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._datagrams()

    async def _datagrams(self) -> AsyncIterator[bytes]:
        while True:
            d = await self.recv()
            if d is None:
                return
            yield d

    async def __aenter__(self) -> AsyncDatagramChannel:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        try:
            if not self._native.is_ended:
                await self.close()
        finally:
            self._native.abort()


# -- UDP tunnels ------------------------------------------------------------------------------


class _Tunnel(_Connected[_quiver.NativeUdpTunnel]):
    __slots__ = ()

    @property
    def target(self) -> str:
        """``host:port`` of the target."""
        return self._native.target

    @property
    def max_payload(self) -> int:
        """The largest UDP payload the tunnel carries now."""
        return self._native.max_payload

    @property
    def is_ended(self) -> bool:
        """True once the tunnel has ended (a receive returned ``None`` or failed)."""
        return self._native.is_ended


class UdpTunnel(_Tunnel):
    """A UDP tunnel through a MASQUE proxy (blocking). ``send()`` may be called while another
    thread waits in ``recv()``."""

    __slots__ = ()

    def send(self, payload: bytes) -> None:
        """Sends one UDP payload to the target (unreliable, like UDP)."""
        self._native.send(payload)

    def recv(self, timeout: Optional[float] = None) -> Optional[bytes]:
        """The next UDP payload from the target; ``None`` once the tunnel has ended. Raises the
        builtin ``TimeoutError`` if none arrives within ``timeout`` seconds."""
        return self._native.recv(timeout)

    def close(self) -> None:
        """Ends our side of the tunnel; what the target still sends can be received until
        ``recv()`` returns ``None``."""
        self._native.close()

    def __iter__(self) -> Iterator[bytes]:
        while True:
            d = self.recv()
            if d is None:
                return
            yield d

    def __enter__(self) -> UdpTunnel:
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            if exc[0] is None and not self._native.is_ended:
                self._native.close()
        finally:
            self._native.abort()


class AsyncUdpTunnel(_Tunnel):
    """A UDP tunnel through a MASQUE proxy (asyncio)."""

    __slots__ = ()

    async def send(self, payload: bytes) -> None:
        """Sends one UDP payload to the target (unreliable, like UDP). Never waits."""
        self._native.send(payload)

    async def recv(self, timeout: Optional[float] = None) -> Optional[bytes]:
        """The next UDP payload from the target; ``None`` once the tunnel has ended. Raises the
        builtin ``TimeoutError`` if none arrives within ``timeout`` seconds (a payload arriving
        later goes to the next ``recv()``)."""
        if timeout is None:
            payload: Optional[bytes] = await _call(self._native.recv_async)
            return payload
        try:
            payload = await asyncio.wait_for(_call(self._native.recv_async), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"nothing arrived within {timeout} s") from None
        return payload

    async def close(self) -> None:
        """Ends our side of the tunnel; what the target still sends can be received until
        ``recv()`` returns ``None``."""
        await _call(self._native.close_async)

    aclose = close

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._payloads()

    async def _payloads(self) -> AsyncIterator[bytes]:
        while True:
            d = await self.recv()
            if d is None:
                return
            yield d

    async def __aenter__(self) -> AsyncUdpTunnel:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        try:
            if exc[0] is None and not self._native.is_ended:
                await self.close()
        finally:
            self._native.abort()
