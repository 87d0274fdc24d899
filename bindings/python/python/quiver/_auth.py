"""Credentials in httpx's shape: ``BasicAuth``, ``DigestAuth``, ``BearerAuth``, ``NoAuth``, and a
``(user, password)`` tuple for Basic. The engine does the work (core's client layer): this
module only says which credentials a client, a pool rule or a request carries."""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple, Union

from ._exceptions import InvalidError

__all__ = ["BasicAuth", "DigestAuth", "BearerAuth", "NoAuth"]


class _UserPassword:
    __slots__ = ("username", "password")

    def __init__(self, username: Union[str, bytes], password: Union[str, bytes]) -> None:
        self.username = _text(username)
        self.password = _text(password)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and (self.username, self.password) == (other.username, other.password)

    def __hash__(self) -> int:
        return hash((type(self), self.username, self.password))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(username={self.username!r}, password='***')"


class BasicAuth(_UserPassword):
    """``authorization: Basic ...`` (RFC 7617), sent with the first request to the origin."""

    __slots__ = ()


class DigestAuth(_UserPassword):
    """HTTP Digest (RFC 7616: MD5, SHA-256 and their ``-sess`` forms, ``qop=auth``): a ``401``
    with a Digest challenge is answered once and the request sent again; later requests to the
    origin answer the remembered challenge straight away."""

    __slots__ = ()


class BearerAuth:
    """``authorization: Bearer <token>`` (RFC 6750)."""

    __slots__ = ("token",)

    def __init__(self, token: Union[str, bytes]) -> None:
        self.token = _text(token)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.token == other.token

    def __hash__(self) -> int:
        return hash((type(self), self.token))

    def __repr__(self) -> str:
        return "BearerAuth(token='***')"


class NoAuth:
    """Per request: no credentials, even where the client or the origin's pool rule has some
    (``auth=None`` means "the client's")."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self)

    def __hash__(self) -> int:
        return hash(type(self))

    def __repr__(self) -> str:
        return "NoAuth()"


AuthTypes = Union[Tuple[Union[str, bytes], Union[str, bytes]], BasicAuth, DigestAuth, BearerAuth, NoAuth, None]


def _text(value: Union[str, bytes]) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if not isinstance(value, str):
        raise TypeError(f"credentials must be str or bytes, not {type(value).__name__}")
    return value


def _shape(auth: Any) -> Any:
    """A ``(user, password)`` tuple as BasicAuth; anything else as it is, or a TypeError."""
    if isinstance(auth, (_UserPassword, BearerAuth, NoAuth)):
        return auth
    if isinstance(auth, tuple) and len(auth) == 2:
        return BasicAuth(*auth)
    raise TypeError(
        "auth must be a (user, password) tuple, quiver.BasicAuth, quiver.DigestAuth, quiver.BearerAuth, "
        f"quiver.NoAuth or None, not {type(auth).__name__}"
    )


def request_auth(auth: Any) -> Optional[Tuple[str, ...]]:
    """Per request: what the native client takes (None: the client's or the rule's)."""
    if auth is None:
        return None
    auth = _shape(auth)
    if isinstance(auth, NoAuth):
        return ("none",)
    if isinstance(auth, BearerAuth):
        return ("bearer", auth.token)
    return ("digest" if isinstance(auth, DigestAuth) else "basic", auth.username, auth.password)


_AUTH_OPTIONS = ("basic_auth", "bearer_token", "digest_auth")


def auth_options(auth: Any, options: Dict[str, Any], where: str = "") -> None:
    """Client-wide or per pool rule: maps ``auth=`` onto the ``basic_auth`` / ``digest_auth`` /
    ``bearer_token`` options in ``options`` (in place)."""
    if auth is None:
        return
    auth = _shape(auth)
    given = [name for name in _AUTH_OPTIONS if options.get(name) is not None]
    if given:
        raise InvalidError(f"{where}give auth= or {given[0]}=, not both", "invalid_config")
    if isinstance(auth, NoAuth):
        return
    if isinstance(auth, BearerAuth):
        options["bearer_token"] = auth.token
        return
    if ":" in auth.username:
        raise InvalidError(f"{where}a user name given to auth= cannot contain ':'", "invalid_config")
    name = "digest_auth" if isinstance(auth, DigestAuth) else "basic_auth"
    options[name] = f"{auth.username}:{auth.password}"
