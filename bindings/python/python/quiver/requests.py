"""A requests transport adapter over quiver's engine: keep your requests code, swap the pool.

    import requests, quiver.requests

    session = requests.Session()
    session.mount("https://", quiver.requests.Adapter(protocol="http2", size=64))
    session.mount("http://", quiver.requests.Adapter())

requests keeps doing what it does above an adapter (redirects, cookies, auth, hooks, proxies
from the environment); the adapter sends each prepared request as it is (redirects not
followed, no cookie jar, no credentials added) over quiver's pools: HTTP/1.1, HTTP/2 and
HTTP/3, bodies streamed both ways with backpressure. requests leaves decoding to urllib3 below
it, so here quiver decodes ``content-encoding`` (gzip, deflate, br, zstd) as the body is read
and keeps the headers as sent: bodies are decoded exactly once. quiver's errors are raised as
requests' exception classes with quiver's ``kind`` and ``error_class`` on them and the quiver
exception as ``__cause__`` (see :data:`ERRORS` and :data:`BODY_ERRORS`).

Importing this module imports requests; ``import quiver`` alone does not.
"""

from __future__ import annotations

import io
import os
import threading
from http.client import HTTPMessage
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple, Type, Union

import requests
import requests.adapters
import requests.exceptions as rexc
from requests.cookies import extract_cookies_to_jar
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers, prepend_scheme_if_needed, select_proxy, urldefragauth

from . import _quiver
from ._adapt import library_error, native_client
from ._exceptions import QuiverError
from ._models import _read_chunks, reason_phrase
from ._types import ClientStats, PoolOptions

__all__ = ["Adapter", "BODY_ERRORS", "ERRORS", "RawResponse"]

#: quiver's error kinds and the requests exception each is raised as by ``send()`` (before the
#: response head, or anywhere in a body read whole when ``stream=False``). Kinds not listed are
#: raised as ``requests.ConnectionError`` when transient, ``requests.RequestException``
#: otherwise. A request body iterator that raised (kind ``body_stream``) has its own exception
#: raised unchanged.
ERRORS: Dict[str, Type[rexc.RequestException]] = {
    "connect_timeout": rexc.ConnectTimeout,
    "checkout_timeout": rexc.ConnectTimeout,
    "read_timeout": rexc.ReadTimeout,
    "request_timeout": rexc.ReadTimeout,
    "ping_timeout": rexc.ReadTimeout,
    "tls": rexc.SSLError,
    "proxy_connect_failed": rexc.ProxyError,
    # urllib3's ProtocolError, which requests raises as ConnectionError.
    "protocol": rexc.ConnectionError,
    "quic_transport": rexc.ConnectionError,
    "frame_too_large": rexc.ConnectionError,
    "response_headers_too_large": rexc.ConnectionError,
    "response_body_too_large": rexc.ConnectionError,
    "decoding": rexc.ContentDecodingError,
    "decompression_bomb": rexc.ContentDecodingError,
    "invalid_url": rexc.InvalidURL,
    "invalid_scheme": rexc.InvalidSchema,
    "invalid_header": rexc.InvalidHeader,
    "header_list_too_large": rexc.InvalidHeader,
    "too_many_redirects": rexc.TooManyRedirects,
}

#: The same while a streamed body (``stream=True``) is read, as requests raises them from
#: ``iter_content`` and ``content``: a broken body is a ``ChunkedEncodingError``, a read timeout
#: a ``ConnectionError`` (requests' own mapping of urllib3's read timeouts there). Kinds not
#: listed: ``ChunkedEncodingError`` when transient, ``requests.RequestException`` otherwise.
BODY_ERRORS: Dict[str, Type[rexc.RequestException]] = {
    "decoding": rexc.ContentDecodingError,
    "decompression_bomb": rexc.ContentDecodingError,
    "read_timeout": rexc.ConnectionError,
    "request_timeout": rexc.ConnectionError,
    "ping_timeout": rexc.ConnectionError,
    "tls": rexc.SSLError,
    "shutdown": rexc.ConnectionError,
    "protocol": rexc.ChunkedEncodingError,
    "quic_transport": rexc.ChunkedEncodingError,
    "frame_too_large": rexc.ChunkedEncodingError,
    "response_body_too_large": rexc.ChunkedEncodingError,
}

#: The client layer's per-request settings: requests owns redirects, cookies and credentials;
#: decoding is done here, where urllib3 would do it.
_AS_GIVEN: Dict[str, Any] = {"follow_redirects": False, "decompress": True, "auth": ("none",)}

#: Distinct trust and proxy settings kept as clients of their own, at most.
_MAX_CLIENTS = 16

_VERSIONS = {"HTTP/1.0": 10, "HTTP/1.1": 11, "HTTP/2": 20, "HTTP/3": 30}


def _translate(
    exc: QuiverError,
    request: Optional[requests.PreparedRequest],
    table: Mapping[str, Type[rexc.RequestException]],
    fallback: Type[rexc.RequestException],
) -> BaseException:
    """The exception to raise for ``exc`` (see :data:`ERRORS`), with ``kind`` and
    ``error_class``, ``exc`` as ``__cause__``; a failed body iterator's own exception."""
    cls = table.get(exc.kind)
    if cls is None:
        cls = fallback if exc.error_class == "transient" else rexc.RequestException
    return library_error(exc, lambda: cls(f"{exc.kind}: {exc.message}", request=request))


def _read_timeout(timeout: Any) -> Optional[float]:
    """The read part of requests' ``timeout`` (a number, a ``(connect, read)`` pair or a urllib3
    ``Timeout``), checked as urllib3 checks it; None: the adapter's ``read_timeout``."""
    if isinstance(timeout, tuple):
        try:
            connect, read = timeout
        except ValueError:
            raise ValueError(
                f"Invalid timeout {timeout}. Pass a (connect, read) timeout tuple, "
                f"or a single float to set both timeouts to the same value."
            ) from None
        _check_timeout("connect", connect)
    elif hasattr(timeout, "read_timeout"):  # urllib3.Timeout
        read = timeout.read_timeout
        if not isinstance(read, (int, float)):
            read = None
    else:
        read = timeout
    _check_timeout("read", read)
    return None if read is None else float(read)


def _check_timeout(name: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"Timeout value {name} was {value}, but it must be an int, float or None.")
    if value <= 0:
        raise ValueError(
            f"Attempted to set {name} timeout to {value}, but the timeout cannot be set to a value "
            "less than or equal to 0."
        )


def _body(body: Any) -> Any:
    """A prepared request's body as the native client takes it: bytes, or an iterator of chunks
    pulled as the connection can send them (files are read 64 KiB at a time)."""
    if body is None or isinstance(body, bytes):
        return body or None
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, (bytearray, memoryview)):
        return bytes(body)
    read = getattr(body, "read", None)
    if callable(read):
        return _read_chunks(read)
    return iter(body)


def _url(request: requests.PreparedRequest) -> str:
    url: Any = request.url
    if isinstance(url, bytes):
        return url.decode("utf-8")
    if not url:
        raise rexc.URLRequired("the prepared request has no URL", request=request)
    return str(url)


def _check_path(path: str, what: str) -> None:
    if not os.path.exists(path):
        raise OSError(f"Could not find {what}, invalid path: {path}")


class RawResponse(io.IOBase):
    """``response.raw``: the body as a file-like object in the shape of urllib3's
    ``HTTPResponse`` (``read(n)``, ``stream(n)``, ``close()``, ``release_conn()``, ``status``,
    ``reason``, ``headers``, ``version``). The bytes are already decoded (``decode_content`` has
    no effect); while it is open, a streamed response holds its connection (or HTTP/2, HTTP/3
    stream)."""

    #: Bodies are decoded by quiver before they get here.
    decode_content = True

    def __init__(
        self,
        native: Union[_quiver.RawResponse, _quiver.ResponseStream],
        request: Optional[requests.PreparedRequest] = None,
    ) -> None:
        super().__init__()
        #: The status code.
        self.status: int = native.status
        #: The reason phrase of the status (from the status code).
        self.reason: str = reason_phrase(native.status)
        #: ``"HTTP/1.1"``, ``"HTTP/2"`` or ``"HTTP/3"``.
        self.version_string: str = native.http_version
        #: urllib3's number for the version: 11, 20 or 30.
        self.version: int = _VERSIONS.get(native.http_version, 11)
        self._fields: List[Tuple[str, str]] = native.headers()
        joined: Dict[str, str] = {}
        for name, value in self._fields:
            joined[name] = f"{joined[name]}, {value}" if name in joined else value
        #: The headers, repeated fields joined with ``", "`` (as urllib3 does).
        self.headers: CaseInsensitiveDict[str] = CaseInsensitiveDict(joined)
        self._request = request
        self._msg: Optional[HTTPMessage] = None
        self._stream: Optional[_quiver.ResponseStream]
        if isinstance(native, _quiver.ResponseStream):
            self._stream = native
            self._buffer = b""
        else:
            self._stream = None
            self._buffer = native.content()
        self._offset = 0
        self._position = 0

    # -- what requests reads ---------------------------------------------------------------

    @property
    def _original_response(self) -> RawResponse:
        # requests' cookie extraction reads `raw._original_response.msg`.
        return self

    @property
    def msg(self) -> HTTPMessage:
        """The headers as ``http.client`` gives them (every field, in order)."""
        if self._msg is None:
            msg = HTTPMessage()
            for name, value in self._fields:
                msg[name] = value
            self._msg = msg
        return self._msg

    def info(self) -> HTTPMessage:
        return self.msg

    def getheaders(self) -> CaseInsensitiveDict[str]:
        return self.headers

    def getheader(self, name: str, default: Optional[str] = None) -> Optional[str]:
        return self.headers.get(name, default)

    # -- the body --------------------------------------------------------------------------

    def _next_chunk(self) -> Optional[bytes]:
        """The next chunk from the connection (None at the end)."""
        stream = self._stream
        if stream is None:
            return None
        while True:
            try:
                chunk = stream.read()
            except QuiverError as exc:
                failure = exc
                break
            except RuntimeError:  # closed
                self._stream = None
                return None
            if chunk is None:
                self._stream = None
                return None
            if chunk:
                return chunk
        self._stream = None
        raise _translate(failure, self._request, BODY_ERRORS, rexc.ChunkedEncodingError)

    def _buffered(self) -> int:
        return len(self._buffer) - self._offset

    def _take(self, n: int) -> bytes:
        start = self._offset
        if start == 0 and n >= len(self._buffer):
            data, self._buffer = self._buffer, b""
        else:
            data = self._buffer[start : start + n]
            self._offset = start + len(data)
            if self._offset >= len(self._buffer):
                self._buffer, self._offset = b"", 0
        self._position += len(data)
        return data

    def _fill(self, n: int) -> None:
        """Reads until ``n`` bytes are buffered or the body ended."""
        while self._buffered() < n:
            chunk = self._next_chunk()
            if chunk is None:
                return
            if self._buffered():
                self._buffer = self._buffer[self._offset :] + chunk
            else:
                self._buffer = chunk
            self._offset = 0

    def read(self, amt: Optional[int] = None, decode_content: Optional[bool] = None, cache_content: bool = False) -> bytes:
        """Reads ``amt`` bytes (fewer only at the end of the body), or the rest of the body."""
        if amt is None or amt < 0:
            parts = [self._take(self._buffered())]
            while True:
                chunk = self._next_chunk()
                if chunk is None:
                    break
                self._position += len(chunk)
                parts.append(chunk)
            return b"".join(parts)
        self._fill(amt)
        return self._take(amt)

    def read1(self, amt: int = -1) -> bytes:
        """Returns what is buffered, or waits for the next chunk: at most ``amt`` bytes."""
        if not self._buffered():
            chunk = self._next_chunk()
            if chunk is None:
                return b""
            self._buffer, self._offset = chunk, 0
        return self._take(self._buffered() if amt is None or amt < 0 else amt)

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        data = self.read1(len(view))
        view[: len(data)] = data
        return len(data)

    def stream(self, amt: Optional[int] = 2**16, decode_content: Optional[bool] = None) -> Iterator[bytes]:
        """The body as it arrives, in pieces of at most ``amt`` bytes (``None``: as received);
        never waits to fill a piece (as urllib3 does for chunked bodies)."""
        while True:
            data = self.read1(-1 if amt is None else amt)
            if not data:
                return
            yield data

    def readline(self, size: Optional[int] = -1) -> bytes:
        """The next line, ``b"\\n"`` included (iterating the object gives the lines, as urllib3's
        does)."""
        limit = -1 if size is None else size
        while True:
            end = self._buffer.find(b"\n", self._offset)
            if end >= 0:
                n = end + 1 - self._offset
                break
            if 0 <= limit <= self._buffered():
                n = limit
                break
            chunk = self._next_chunk()
            if chunk is None:
                n = self._buffered()
                break
            self._buffer, self._offset = self._buffer[self._offset :] + chunk, 0
        return self._take(n if limit < 0 else min(n, limit))

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        """How many body bytes were read."""
        return self._position

    @property
    def data(self) -> bytes:
        """The rest of the body, read now."""
        return self.read()

    def isclosed(self) -> bool:
        """True once the body was read to its end or closed."""
        return self._stream is None and not self._buffered()

    def drain_conn(self) -> None:
        """Reads the rest of the body and discards it."""
        while self._next_chunk() is not None:
            pass
        self._buffer, self._offset = b"", 0

    def release_conn(self) -> None:
        """Lets the connection go: kept when the body was read to its end, closed otherwise."""
        self._close_stream()

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()

    def close(self) -> None:
        """Closes the body; what was not read is discarded."""
        self._close_stream()
        super().close()


class Adapter(requests.adapters.BaseAdapter):
    """A requests transport adapter (``session.mount(prefix, Adapter(...))``) that sends requests
    over quiver clients of its own.

    Keyword arguments are quiver's pool options (``protocol``, ``size``, ``max_connections``,
    ``ca_file``, ``connect_timeout``, ``read_timeout``, ``proxy``, ..., see
    ``quiver.OPTION_NAMES``) and ``pools={pattern: {...}}`` per origin, validated here
    (``quiver.InvalidError``). The client layer's options (redirects, decoding, cookies,
    credentials) are requests' to apply and raise ``TypeError`` here.

    Per request: ``timeout`` (a number or ``(connect, read)``) sets the read timeout (idle between
    bytes; ``None``: the ``read_timeout`` option, 30 s by default); the connect timeout is the
    ``connect_timeout`` option. ``verify=False``, ``verify="ca.pem"`` and ``cert=`` get a quiver
    client of their own with those trust settings (``verify=True``: the options'), except that a
    CA path loses to the options' own ``ca_file``, ``tls_roots`` or
    ``danger_accept_invalid_certs`` (requests fills ``verify`` from ``REQUESTS_CA_BUNDLE``); the
    proxy requests picked (``proxies=``, the environment) likewise, unless the options name a
    ``proxy`` (or ``proxy_from_env``), which then wins. Thread-safe, like a ``Session``.
    """

    def __init__(self, *, pools: Optional[Mapping[str, PoolOptions]] = None, **options: Any) -> None:
        super().__init__()
        self._options = dict(options)
        self._pools = pools
        self._own_proxy = "proxy" in options or "proxy_from_env" in options
        # requests fills `verify` from REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE: trust options given
        # here are the more specific choice.
        self._own_trust = any(name in options for name in ("ca_file", "tls_roots", "danger_accept_invalid_certs"))
        self._lock = threading.Lock()
        self._clients: Dict[Tuple[Any, ...], _quiver.NativeClient] = {}
        # The default client now, so that bad options fail here.
        self._client((True, None, None))

    def __getstate__(self) -> Dict[str, Any]:
        return {"options": self._options, "pools": self._pools}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__init__(pools=state["pools"], **state["options"])  # type: ignore[misc]

    def _client(self, key: Tuple[Any, ...]) -> _quiver.NativeClient:
        """The client for ``(verify, cert, proxy)``, built on first use."""
        with self._lock:
            client = self._clients.get(key)
            if client is not None:
                return client
        verify, cert, proxy = key
        options = dict(self._options)
        if verify is False:
            options["danger_accept_invalid_certs"] = True
        elif isinstance(verify, str):
            options["ca_file"] = verify
        if cert is not None:
            options["client_cert"] = cert
        if not self._own_proxy:
            options["proxy"] = proxy or "none"
        client = native_client("quiver.requests.Adapter", "requests", options, self._pools)
        with self._lock:
            kept = self._clients.setdefault(key, client)
            if len(self._clients) > _MAX_CLIENTS:
                # The oldest other than the default; it closes once its responses are done with.
                for old in list(self._clients):
                    if old != (True, None, None) and old != key:
                        del self._clients[old]
                        break
        if kept is not client:
            client.close()
        return kept

    def _key(self, url: str, verify: Any, cert: Any, proxies: Optional[Mapping[str, str]]) -> Tuple[Any, ...]:
        proxy = None
        if not self._own_proxy:
            proxy = select_proxy(url, proxies)
            if proxy:
                proxy = prepend_scheme_if_needed(proxy, "http")  # type: ignore[no-untyped-call]
        if not url[:6].lower().startswith("https:"):
            return (True, None, proxy)
        if isinstance(verify, str) and self._own_trust:
            verify = True
        elif isinstance(verify, str):
            _check_path(verify, "a suitable TLS CA certificate bundle")
            if os.path.isdir(verify):
                raise OSError(f"quiver takes a CA bundle file, not a directory: {verify}")
        elif verify is not False:
            verify = True
        if cert is not None:
            if isinstance(cert, (str, bytes, os.PathLike)):
                cert = (os.fspath(cert), os.fspath(cert))  # the key in the same file
            else:
                cert = (os.fspath(cert[0]), os.fspath(cert[1]))
            _check_path(cert[0], "the TLS certificate file")
            _check_path(cert[1], "the TLS key file")
        return (verify, cert, proxy)

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Union[bool, str] = True,
        cert: Any = None,
        proxies: Optional[Mapping[str, str]] = None,
    ) -> requests.Response:
        """Sends a prepared request (as ``Session.send`` calls it) and returns the response:
        with ``stream=False`` its body read whole; with ``stream=True`` read as requests iterates
        ``response.raw``."""
        url = _url(request)
        read_timeout = _read_timeout(timeout)
        client = self._client(self._key(url, verify, cert, proxies))
        if "@" in url:
            # requests has made credentials in the URL an `authorization` header already.
            url = urldefragauth(url)
        try:
            native = client.send(
                str(request.method),
                url,
                list(request.headers.items()),
                _body(request.body),
                None,
                None,
                bool(stream),
                _AS_GIVEN,
                read_timeout,
                None,
            )
        except QuiverError as exc:
            failure = exc
        else:
            return self.build_response(request, RawResponse(native, request))
        raise _translate(failure, request, ERRORS, rexc.ConnectionError)

    def build_response(self, req: requests.PreparedRequest, resp: RawResponse) -> requests.Response:
        """A ``requests.Response`` for ``resp``, filled in as requests' own ``HTTPAdapter``
        does (status, headers, encoding, url, cookies, request, connection)."""
        response = requests.Response()
        response.status_code = resp.status
        response.headers = CaseInsensitiveDict(resp.headers)
        response.encoding = get_encoding_from_headers(response.headers)
        response.raw = resp
        response.reason = resp.reason
        response.url = _url(req)
        extract_cookies_to_jar(response.cookies, req, resp)  # type: ignore[no-untyped-call]
        response.request = req
        response.connection = self  # type: ignore[assignment]  # (typeshed: an HTTPAdapter)
        return response

    def stats(self) -> ClientStats:
        """The pool statistics of the default client (``verify=True``, no ``cert``, no proxy
        picked by requests), see ``quiver.Client.stats``."""
        return self._client((True, None, None)).stats()  # type: ignore[return-value]

    def close(self) -> None:
        """Closes every quiver client of the adapter (requests in flight fail); later requests
        get new clients, as requests' own adapter does."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()
