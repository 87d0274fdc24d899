"""Headers, requests (as event hooks see them), responses and request preparation (URL, params,
headers, body)."""

from __future__ import annotations

import codecs
import json as jsonlib
from http import HTTPStatus
from typing import (
    Any,
    AsyncIterator,
    Iterator,
    List,
    Mapping,
    MutableMapping,
    Optional,
    Tuple,
    Union,
)
from urllib.parse import urlencode, urlsplit, urlunsplit

from ._exceptions import HTTPStatusError
from ._types import HeaderTypes, QueryParamTypes, RequestContent

from . import _quiver

__all__ = ["Headers", "Request", "Response", "content_of"]


def _text(value: Union[str, bytes]) -> str:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return value


class Headers(MutableMapping[str, str]):
    """Case-insensitive, multi-valued header fields, in order.

    ``headers["name"]`` and ``get()`` join repeated fields with ``", "``; ``get_list()`` returns
    every value; ``multi_items()`` every ``(name, value)`` pair, duplicates kept.
    """

    __slots__ = ("_items",)

    def __init__(self, headers: Optional[HeaderTypes] = None) -> None:
        # [(lower-case name, name as given, value)]
        self._items: List[Tuple[str, str, str]] = []
        if headers is None:
            return
        if isinstance(headers, Headers):
            self._items = list(headers._items)
            return
        pairs = headers.items() if isinstance(headers, Mapping) else headers
        for name, value in pairs:
            name, value = _text(name), _text(value)
            self._items.append((name.lower(), name, value))

    @classmethod
    def _from_pairs(cls, pairs: List[Tuple[str, str]]) -> Headers:
        h = cls.__new__(cls)
        h._items = [(n.lower(), n, v) for n, v in pairs]
        return h

    def get_list(self, key: str) -> List[str]:
        """Every value of ``key``, in order (an empty list when absent)."""
        k = key.lower()
        return [v for lk, _, v in self._items if lk == k]

    def get(self, key: str, default: Any = None) -> Any:
        values = self.get_list(key)
        return ", ".join(values) if values else default

    def multi_items(self) -> List[Tuple[str, str]]:
        """Every ``(name, value)`` pair, duplicates kept, in order."""
        return [(n, v) for _, n, v in self._items]

    @property
    def raw(self) -> List[Tuple[str, str]]:
        """Same as :meth:`multi_items`."""
        return self.multi_items()

    def add(self, key: str, value: str) -> None:
        """Appends a field (keeping the existing ones of that name)."""
        self._items.append((key.lower(), key, value))

    def copy(self) -> Headers:
        return Headers(self)

    def merged(self, other: Optional[HeaderTypes]) -> Headers:
        """A copy where the fields of ``other`` replace those of the same name."""
        if not other:
            return self.copy()
        other = other if isinstance(other, Headers) else Headers(other)
        replaced = {lk for lk, _, _ in other._items}
        out = Headers.__new__(Headers)
        out._items = [f for f in self._items if f[0] not in replaced] + list(other._items)
        return out

    def __getitem__(self, key: str) -> str:
        values = self.get_list(key)
        if not values:
            raise KeyError(key)
        return ", ".join(values)

    def __setitem__(self, key: str, value: str) -> None:
        k = key.lower()
        self._items = [f for f in self._items if f[0] != k]
        self._items.append((k, key, value))

    def __delitem__(self, key: str) -> None:
        k = key.lower()
        kept = [f for f in self._items if f[0] != k]
        if len(kept) == len(self._items):
            raise KeyError(key)
        self._items = kept

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        k = key.lower()
        return any(lk == k for lk, _, _ in self._items)

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(lk for lk, _, _ in self._items))

    def __len__(self) -> int:
        return len(dict.fromkeys(lk for lk, _, _ in self._items))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return sorted((lk, v) for lk, _, v in self._items) == sorted((lk, v) for lk, _, v in other._items)
        if isinstance(other, Mapping):
            return self == Headers(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"Headers({self.multi_items()!r})"


def _charset(content_type: Optional[str]) -> Optional[str]:
    if not content_type:
        return None
    for part in content_type.split(";")[1:]:
        key, _, value = part.partition("=")
        if key.strip().lower() == "charset":
            name = value.strip().strip("\"'")
            try:
                return codecs.lookup(name).name
            except LookupError:
                return None
    return None


class Request:
    """A request as the client is about to send it, as request event hooks and
    :attr:`Response.request` show it (httpx's ``Request`` shape): ``method``, ``url`` (a str) and
    ``headers`` (a :class:`Headers`, every field that goes out but those the engine adds itself:
    ``host``, ``content-length``, credentials and cookies of the client layer). ``content`` is the
    body when it is held in memory (``b""`` for none), None when it is streamed (an iterator, a
    file, ``files=``). A request hook may change ``method``, ``url`` and ``headers``: the request
    goes out as the hooks leave it."""

    __slots__ = ("method", "url", "headers", "content")

    method: str
    url: str
    headers: Headers
    content: Optional[bytes]

    def __init__(
        self, method: str, url: str, *, headers: Optional[HeaderTypes] = None, content: Optional[bytes] = b""
    ) -> None:
        self.method = method.upper()
        self.url = url
        self.headers = Headers(headers)
        self.content = content

    @classmethod
    def _prepared(cls, method: str, url: str, fields: List[Tuple[str, str]], content: Optional[bytes]) -> Request:
        r = cls.__new__(cls)
        r.method = method
        r.url = url
        r.headers = Headers._from_pairs(fields)
        r.content = content
        return r

    def __repr__(self) -> str:
        return f"<Request({self.method!r}, {self.url!r})>"


def reason_phrase(status: int) -> str:
    """The standard reason phrase of ``status`` ("" for a code without one): HTTP/2 and HTTP/3
    carry none, and quiver does not keep HTTP/1.1's."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def content_of(body: Any) -> Optional[bytes]:
    """What ``Request.content`` shows of a prepared body: the bytes, ``b""`` for none, None for a
    stream (which is not kept)."""
    return b"" if body is None else body if isinstance(body, bytes) else None


class Response:
    """An HTTP response: read to its end, or (inside ``stream()``) with its body still to read."""

    __slots__ = (
        "status_code",
        "http_version",
        "url",
        "_native",
        "_headers",
        "_content",
        "_stream",
        "_trailers",
        "_history",
        "_request",
        "_timings",
    )

    status_code: int
    http_version: str
    url: str
    _native: Union[_quiver.RawResponse, _quiver.ResponseStream]
    _headers: Optional[Headers]
    _content: Optional[bytes]
    _stream: Optional[_quiver.ResponseStream]
    _trailers: Optional[Headers]
    _history: Optional[List[Response]]
    #: The request, or what makes it (method, URL, header fields, content) until asked for.
    _request: Union[Request, Tuple[str, str, List[Tuple[str, str]], Optional[bytes]], None]
    _timings: Optional[_quiver.Timings]

    def __init__(self) -> None:
        raise TypeError("responses are made by quiver.Client and quiver.AsyncClient")

    @classmethod
    def _from_native(
        cls,
        native: Union[_quiver.RawResponse, _quiver.ResponseStream],
        url: str,
        request: Union[Request, Tuple[str, str, List[Tuple[str, str]], Optional[bytes]], None] = None,
    ) -> Response:
        r = cls.__new__(cls)
        r._request = request
        r._timings = None
        r.status_code = native.status
        r.http_version = native.http_version
        # The URL that answered: after redirects, the last one.
        r.url = native.url or url
        r._native = native
        r._headers = None
        r._trailers = None
        r._history = None
        if isinstance(native, _quiver.ResponseStream):
            r._stream = native
            r._content = None
        else:
            r._stream = None
            r._content = native.content()
        return r

    # -- head -------------------------------------------------------------------------------

    @property
    def headers(self) -> Headers:
        """The response headers (case-insensitive, multi-valued)."""
        if self._headers is None:
            self._headers = Headers._from_pairs(self._native.headers())
        return self._headers

    @property
    def history(self) -> List[Response]:
        """The redirects followed to get here, oldest first, as responses (status, headers,
        ``url``, ``http_version``; empty bodies). Empty when none was followed."""
        if self._history is None:
            self._history = [Response._from_native(hop, hop.url) for hop in self._native.history()]
        return self._history

    @property
    def request(self) -> Request:
        """The request this answers, as the client sent it (after request hooks); for a
        redirect in :attr:`history`, ``RuntimeError``, as httpx raises for a response without
        one."""
        req = self._request
        if req is None:
            raise RuntimeError("this response has no request: it is a redirect of a history")
        if not isinstance(req, Request):
            req = self._request = Request._prepared(*req)
        return req

    @property
    def timings(self) -> _quiver.Timings:
        """How long each step of the request took, in seconds, and the connection that carried
        it (see :class:`quiver.Timings`); ``total`` stays None until the body ended. A redirect in
        :attr:`history` has none (``RuntimeError``)."""
        if self._timings is None:
            timings = self._native.timings()
            if timings is None:
                raise RuntimeError("a redirect of a history has no timings: see the final response's")
            self._timings = timings
        return self._timings

    @property
    def unfollowed_redirect(self) -> Optional[str]:
        """Why this redirect was returned instead of followed although redirects are on (a 307
        or 308 whose streamed body could not be sent again); None otherwise."""
        return self._native.unfollowed_redirect

    @property
    def reason_phrase(self) -> str:
        return reason_phrase(self.status_code)

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def is_redirect(self) -> bool:
        return 300 <= self.status_code < 400

    @property
    def is_client_error(self) -> bool:
        return 400 <= self.status_code < 500

    @property
    def is_server_error(self) -> bool:
        return 500 <= self.status_code < 600

    @property
    def is_error(self) -> bool:
        return 400 <= self.status_code < 600

    def raise_for_status(self) -> Response:
        """Raises :class:`HTTPStatusError` for a 4xx or 5xx status; returns the response otherwise."""
        if not self.is_error:
            return self
        kind = "Client error" if self.status_code < 500 else "Server error"
        message = f"{kind} '{self.status_code} {self.reason_phrase}' for url '{self.url}'"
        raise HTTPStatusError(message, response=self)

    # -- body -------------------------------------------------------------------------------

    @property
    def content(self) -> bytes:
        """The body. For a streamed response, call ``read()`` (or ``aread()``) first."""
        if self._content is None:
            raise RuntimeError("the body of a streamed response is not read yet: call read() or aread() first")
        return self._content

    @property
    def encoding(self) -> str:
        """The charset from ``content-type``, else UTF-8."""
        return _charset(self.headers.get("content-type")) or "utf-8"

    @property
    def text(self) -> str:
        """The body decoded with :attr:`encoding` (invalid bytes replaced)."""
        return self.content.decode(self.encoding, errors="replace")

    def json(self, **kwargs: Any) -> Any:
        """The body parsed as JSON."""
        return jsonlib.loads(self.content, **kwargs)

    @property
    def trailers(self) -> Headers:
        """Trailer fields (empty if none; for a streamed response, known once its body ended)."""
        if self._trailers is None:
            pairs = self._native.trailers()
            if pairs is None and self._stream is not None and not self._stream.is_closed:
                return Headers()
            self._trailers = Headers._from_pairs(pairs or [])
        return self._trailers

    @property
    def is_closed(self) -> bool:
        """True once the body is fully read or the response closed."""
        return self._stream is None or self._stream.is_closed

    def _stream_or_fail(self) -> _quiver.ResponseStream:
        if self._stream is None:
            raise RuntimeError("this response was read to its end already; use .content")
        return self._stream

    def read(self) -> bytes:
        """Reads the rest of the body (blocking) and returns it; later available as ``content``."""
        if self._content is None:
            self._content = b"".join(self.iter_bytes())
        return self._content

    def iter_bytes(self) -> Iterator[bytes]:
        """The body's chunks as they arrive (already received chunks joined, at most 256 KiB)."""
        if self._content is not None:
            if self._content:
                yield self._content
            return
        stream = self._stream_or_fail()
        while True:
            chunk = stream.read()
            if chunk is None:
                return
            yield chunk

    def iter_text(self) -> Iterator[str]:
        """The body as text, decoded incrementally with :attr:`encoding`."""
        decoder = codecs.getincrementaldecoder(self.encoding)(errors="replace")
        for chunk in self.iter_bytes():
            text = decoder.decode(chunk)
            if text:
                yield text
        tail = decoder.decode(b"", final=True)
        if tail:
            yield tail

    def iter_lines(self) -> Iterator[str]:
        """The body's lines, without their line endings (``\\n``, ``\\r\\n`` or ``\\r``)."""
        splitter = _LineSplitter()
        for text in self.iter_text():
            yield from splitter.feed(text)
        yield from splitter.flush()

    def close(self) -> None:
        """Closes a streamed response; the rest of its body is discarded."""
        if self._stream is not None:
            self._stream.close()

    async def aread(self) -> bytes:
        """Reads the rest of the body (asyncio) and returns it; later available as ``content``."""
        if self._content is None:
            self._content = b"".join([chunk async for chunk in self.aiter_bytes()])
        return self._content

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The body's chunks as they arrive, for asyncio."""
        if self._content is not None:
            if self._content:
                yield self._content
            return
        from ._client import _call

        stream = self._stream_or_fail()
        while True:
            chunk = await _call(stream.read_async)
            if chunk is None:
                return
            yield chunk

    async def aiter_text(self) -> AsyncIterator[str]:
        """The body as text, for asyncio."""
        decoder = codecs.getincrementaldecoder(self.encoding)(errors="replace")
        async for chunk in self.aiter_bytes():
            text = decoder.decode(chunk)
            if text:
                yield text
        tail = decoder.decode(b"", final=True)
        if tail:
            yield tail

    async def aiter_lines(self) -> AsyncIterator[str]:
        """The body's lines, for asyncio."""
        splitter = _LineSplitter()
        async for text in self.aiter_text():
            for line in splitter.feed(text):
                yield line
        for line in splitter.flush():
            yield line

    async def aclose(self) -> None:
        """Closes a streamed response (asyncio)."""
        self.close()

    def __repr__(self) -> str:
        return f"<Response [{self.status_code} {self.reason_phrase}] {self.http_version}>"


class _LineSplitter:
    """Splits text into lines across chunk boundaries (a ``\\r`` at a chunk's end may be the
    first half of ``\\r\\n``)."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = ""

    def feed(self, text: str) -> List[str]:
        text = self._buffer + text
        if text.endswith("\r"):
            self._buffer, text = "\r", text[:-1]
        else:
            self._buffer = ""
        lines = text.splitlines(keepends=True)
        if lines and not lines[-1].endswith(("\n", "\r")):
            self._buffer = lines.pop() + self._buffer
        return [line.rstrip("\r\n") for line in lines]

    def flush(self) -> List[str]:
        rest, self._buffer = self._buffer, ""
        return [line.rstrip("\r\n") for line in rest.splitlines()] if rest else []


# -- request preparation --------------------------------------------------------------------


def merge_url(base_url: Optional[str], url: str, params: Optional[QueryParamTypes]) -> str:
    """``url`` joined onto ``base_url`` when relative, with ``params`` appended to its query."""
    if base_url and "://" not in url:
        url = base_url.rstrip("/") + "/" + url.lstrip("/")
    if params:
        if isinstance(params, bytes):
            query = params.decode("ascii")
        elif isinstance(params, str):
            query = params.lstrip("?")
        else:
            items = params.items() if isinstance(params, Mapping) else params
            pairs: List[Tuple[str, str]] = []
            for key, value in items:
                values = value if isinstance(value, (list, tuple)) else [value]
                for v in values:
                    pairs.append((key, _param(v)))
            query = urlencode(pairs)
        if query:
            parts = urlsplit(url)
            joined = f"{parts.query}&{query}" if parts.query else query
            url = urlunsplit((parts.scheme, parts.netloc, parts.path, joined, parts.fragment))
    return url


def _param(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return ""
    return str(value)


def prepare_body(
    headers: Headers,
    content: Optional[RequestContent],
    data: Optional[Mapping[str, Any]],
    json: Any,
    allow_async: bool,
) -> Any:
    """The body to hand to the native client: bytes, an iterator or an async iterator (or
    None); sets ``content-type`` for ``json=`` and ``data=`` unless given."""
    if data is None and json is None and (content is None or isinstance(content, bytes)):
        return content
    given = [name for name, v in (("content", content), ("data", data), ("json", json)) if v is not None]
    if len(given) > 1:
        raise TypeError(f"give at most one of content=, data= and json= (got {', '.join(given)})")
    if json is not None:
        if "content-type" not in headers:
            headers["content-type"] = "application/json"
        return jsonlib.dumps(json, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
    if data is not None:
        if "content-type" not in headers:
            headers["content-type"] = "application/x-www-form-urlencoded"
        items = data.items() if isinstance(data, Mapping) else data
        pairs: List[Tuple[str, str]] = []
        for key, value in items:
            values = value if isinstance(value, (list, tuple)) else [value]
            pairs.extend((key, _param(v)) for v in values)
        return urlencode(pairs).encode("ascii")
    if isinstance(content, str):
        return content.encode("utf-8")
    if isinstance(content, (bytearray, memoryview)):
        return bytes(content)
    if hasattr(content, "__aiter__"):
        if not allow_async:
            raise TypeError(
                "an async iterable body needs quiver.AsyncClient; quiver.Client takes bytes, str or an iterable"
            )
        return content.__aiter__()
    read = getattr(content, "read", None)
    if callable(read):
        return _read_chunks(read)
    if hasattr(content, "__iter__"):
        return iter(content)
    raise TypeError(f"cannot send a body of type {type(content).__name__}")


def _read_chunks(read: Any) -> Iterator[bytes]:
    while True:
        chunk = read(65536)
        if not chunk:
            return
        yield chunk
