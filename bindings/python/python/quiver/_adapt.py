"""What the drop-in transports (``quiver.httpx``, ``quiver.requests``) share: building the
native client from pool options, and the options they leave to the library above them."""

from __future__ import annotations

from typing import Any, Dict, FrozenSet, Mapping, Optional

from . import _quiver
from ._client import _rule_options
from ._types import PoolOptions

__all__ = ["FOREVER", "LIBRARY_OPTIONS", "native_client"]

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
    if pools is not None and hasattr(pools, "items"):
        pools = {pattern: _rule_options(pattern, rule) for pattern, rule in pools.items()}
    return _quiver.NativeClient(options, pools)
