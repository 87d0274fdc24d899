"""The exception hierarchy.

Every failure from the engine is a :class:`QuiverError` carrying the engine's stable ``kind``
(such as ``"connect_refused"``) and its ``error_class`` (``"transient"``, ``"invalid"`` or
``"unrecoverable"``), raised as the subclass for that class. Timeouts are also instances of the
builtin :class:`TimeoutError`; two kinds have httpx's names too: :class:`TooManyRedirects` and
:class:`DecodingError`. :class:`HTTPStatusError` (from ``raise_for_status()``) is not a
transport error and is not a :class:`QuiverError`.
"""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._models import Response

__all__ = [
    "QuiverError",
    "TransientError",
    "InvalidError",
    "UnrecoverableError",
    "TimeoutError",
    "TooManyRedirects",
    "DecodingError",
    "HTTPStatusError",
    "CookieConflict",
]


class QuiverError(Exception):
    """A failure reported by the engine: ``kind``, ``error_class`` and ``message``."""

    kind: str
    error_class: str
    message: str

    def __init__(self, message: str, kind: str = "internal", error_class: str = "unrecoverable") -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.error_class = error_class

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, kind={self.kind!r})"

    def __reduce__(self) -> Any:
        return (type(self), (self.message, self.kind, self.error_class))

    @property
    def is_timeout(self) -> bool:
        """True for the timeout kinds (connect, checkout, request, read, ping)."""
        return isinstance(self, builtins.TimeoutError)


class TransientError(QuiverError):
    """Retrying may work: timeouts, refused or reset connections, GOAWAY."""

    def __init__(self, message: str, kind: str = "internal", error_class: str = "transient") -> None:
        super().__init__(message, kind, error_class)


class InvalidError(QuiverError):
    """The caller's input is wrong: URL, scheme, header, body framing, configuration."""

    def __init__(self, message: str, kind: str = "internal", error_class: str = "invalid") -> None:
        super().__init__(message, kind, error_class)


class UnrecoverableError(QuiverError):
    """Escalate: TLS verification failed, the peer violated the protocol, or a quiver bug."""


class TimeoutError(TransientError, builtins.TimeoutError):  # noqa: A001 - like asyncio.TimeoutError
    """A timeout (kinds ``connect_timeout``, ``checkout_timeout``, ``request_timeout``,
    ``read_timeout``, ``ping_timeout``); also caught by ``except TimeoutError`` (the builtin)."""


class TooManyRedirects(UnrecoverableError):
    """More redirects than ``max_redirects`` (kind ``too_many_redirects``; a loop ends here too)."""


class DecodingError(UnrecoverableError):
    """The response body could not be decoded (kind ``decoding``: corrupt or truncated gzip,
    deflate, br or zstd) or decoded to far more than it came as (kind ``decompression_bomb``,
    see ``max_decompression_ratio``)."""


class CookieConflict(LookupError):
    """``cookies[name]`` or ``cookies.get(name)`` matched several cookies (of other domains or
    paths): give ``domain=`` and ``path=`` to pick one. Not an engine error."""


class HTTPStatusError(Exception):
    """Raised by :meth:`Response.raise_for_status` for a 4xx or 5xx response."""

    response: Response

    def __init__(self, message: str, *, response: Response) -> None:
        super().__init__(message)
        self.response = response

    def __reduce__(self) -> Any:
        return (_status_error, (self.args[0], self.response))


def _status_error(message: str, response: Response) -> HTTPStatusError:
    return HTTPStatusError(message, response=response)
