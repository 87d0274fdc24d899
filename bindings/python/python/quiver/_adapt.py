"""What the drop-in transports (``quiver.httpx``, ``quiver.requests``) share: building the
native client from pool options, the options they leave to the library above them, and their
errors in the library's classes."""

from __future__ import annotations

from typing import Any, Callable, Dict, FrozenSet, Mapping, Optional

from . import _quiver
from ._client import _native_client
from ._exceptions import QuiverError
from ._types import PoolOptions

__all__ = ["FOREVER", "LIBRARY_OPTIONS", "library_error", "native_client"]

#: The longest duration the engine takes (a year), standing in for a library's "no limit".
FOREVER = 365 * 86_400.0

#: The client layer's options: what httpx and requests do themselves above a transport, so an
#: adapter refuses them rather than do them a second time (or silently not at all).
LIBRARY_OPTIONS: FrozenSet[str] = frozenset(
    {
        "auth",
        "basic_auth",
        "bearer_token",
        "digest_auth",
        "cookies",
        "follow_redirects",
        "max_redirects",
        "allow_insecure_redirects",
        "decompress",
    }
)


def native_client(
    where: str,
    library: str,
    options: Dict[str, Any],
    pools: Optional[Mapping[str, PoolOptions]],
) -> _quiver.NativeClient:
    """A native client built from pool ``options`` (validated now: ``quiver.InvalidError``);
    ``TypeError`` for the options ``library`` handles itself."""
    owned = sorted(LIBRARY_OPTIONS.intersection(options))
    if owned:
        raise TypeError(
            f"{where}: `{owned[0]}` belongs to {library}: redirects, cookies, credentials and "
            f"decoding are set on the {library} client; the transport sends each request as given"
        )
    return _native_client(options, pools)


def library_error(exc: QuiverError, build: Callable[[], BaseException]) -> BaseException:
    """The exception an adapter raises for ``exc``: ``build()`` (the library's class) with
    quiver's ``kind`` and ``error_class`` on it and ``exc`` as its ``__cause__``; for a failed
    request body iterator, that iterator's own exception."""
    if exc.kind == "body_stream" and exc.__cause__ is not None:
        return exc.__cause__
    mapped = build()
    mapped.kind = exc.kind  # type: ignore[attr-defined]
    mapped.error_class = exc.error_class  # type: ignore[attr-defined]
    mapped.__cause__ = exc
    return mapped
