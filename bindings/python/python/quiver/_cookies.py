"""``quiver.Cookies``: a view over a cookie jar, the client's (``client.cookies``) or one of its
own (``quiver.Cookies()``). The jar lives in the engine (RFC 6265 matching, the public suffix
list, expiry); every cookie in it belongs to a host."""

from __future__ import annotations

from typing import Any, Iterator, List, Optional, Tuple

from . import _quiver
from ._exceptions import CookieConflict, InvalidError
from ._types import CookieDict

__all__ = ["Cookies"]


def _url_for(domain: str, path: str = "/", secure: bool = False) -> str:
    host = f"[{domain}]" if ":" in domain and not domain.startswith("[") else domain
    return f"{'https' if secure else 'http'}://{host}{path if path.startswith('/') else '/'}"


def _check_pair(name: str, value: str) -> None:
    bad = [c for c in name if c in ";=," or ord(c) < 0x20 or ord(c) == 0x7F or c.isspace()]
    if not name or bad:
        raise InvalidError(f"{name!r} is not a valid cookie name", "invalid_header")
    if any(c == ";" or ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise InvalidError(f"the value of cookie {name!r} contains ';' or a control character", "invalid_header")


class Cookies:
    """A cookie jar, as httpx's ``Cookies`` looks: ``cookies["name"]``, ``get()``, ``set()``,
    ``delete()``, ``clear()``, iteration over names, ``items()``; plus ``jar`` (every cookie with
    its attributes), ``set_cookie(url, header)`` and Netscape cookie files.

    ``client.cookies`` is the client's own jar (None unless the client was made with
    ``cookies=True``): what is changed here, the client sends. ``quiver.Cookies()`` makes an
    empty jar of its own, to fill and hand to ``Client(cookies=...)`` (which copies it) or to a
    request (``cookies=jar``: the cookies that match the request's URL).
    """

    __slots__ = ("_native",)

    def __init__(self, cookies: Optional[Cookies] = None) -> None:
        self._native = _quiver.NativeCookieJar()
        if cookies is None:
            return
        if not isinstance(cookies, Cookies):
            raise TypeError(
                "quiver.Cookies() copies another quiver.Cookies only: quiver binds every cookie to a "
                "host, so give name/value pairs with a domain (set(name, value, domain=...)) or "
                "Client(cookies={...}, base_url=...)"
            )
        self._native.copy_from(cookies._native)

    @classmethod
    def _wrap(cls, native: _quiver.NativeCookieJar) -> Cookies:
        c = cls.__new__(cls)
        c._native = native
        return c

    # -- reading ----------------------------------------------------------------------------

    @property
    def jar(self) -> List[CookieDict]:
        """Every unexpired cookie, each a dict: ``name``, ``value``, ``domain``, ``host_only``
        (only that exact host gets it), ``path``, ``secure``, ``http_only``, ``same_site``
        (``"Strict"``, ``"Lax"``, ``"None"`` or None) and ``expires`` (seconds since the epoch
        as a float; None for a session cookie)."""
        return self._native.cookies()  # type: ignore[return-value]

    def cookies_for(self, url: str) -> List[CookieDict]:
        """The cookies a request to ``url`` would carry (as in :attr:`jar`)."""
        return self._native.cookies_for(url)  # type: ignore[return-value]

    def _matching(self, name: str, domain: Optional[str], path: Optional[str]) -> List[CookieDict]:
        want = domain.lstrip(".").lower() if domain else None
        return [
            c
            for c in self.jar
            if c["name"] == name and (want is None or c["domain"] == want) and (path is None or c["path"] == path)
        ]

    def get(
        self,
        name: str,
        default: Optional[str] = None,
        domain: Optional[str] = None,
        path: Optional[str] = None,
    ) -> Optional[str]:
        """The value of cookie ``name`` (of ``domain`` and ``path`` when given), else
        ``default``; :class:`CookieConflict` when several match."""
        found = self._matching(name, domain, path)
        if len(found) > 1:
            where = ", ".join(f"{c['domain']}{c['path']}" for c in found)
            raise CookieConflict(f"several cookies are named {name!r} ({where}): give domain= and path=")
        return found[0]["value"] if found else default

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return any(c["name"] == name for c in self.jar)

    def __iter__(self) -> Iterator[str]:
        return iter([c["name"] for c in self.jar])

    def __len__(self) -> int:
        return len(self.jar)

    def __bool__(self) -> bool:
        return len(self) > 0

    def keys(self) -> List[str]:
        """The cookies' names (a name set for several domains or paths appears once for each)."""
        return [c["name"] for c in self.jar]

    def values(self) -> List[str]:
        """The cookies' values, in the order of :meth:`keys`."""
        return [c["value"] for c in self.jar]

    def items(self) -> List[Tuple[str, str]]:
        """``(name, value)`` of every cookie."""
        return [(c["name"], c["value"]) for c in self.jar]

    # -- changing ---------------------------------------------------------------------------

    def set(self, name: str, value: str, domain: str = "", path: str = "/") -> None:
        """Stores cookie ``name=value`` for ``domain`` (required: quiver binds every cookie to a
        host) and ``path``. ``domain="example.com"``: that host only; ``domain=".example.com"``:
        its subdomains too (as a ``Domain`` attribute gives)."""
        if not domain or not domain.strip("."):
            raise InvalidError(
                f"cookie {name!r} needs a domain: quiver binds every cookie to a host (set(name, value, domain=...))",
                "invalid_header",
            )
        _check_pair(name, value)
        header = f"{name}={value}; Path={path}"
        host = domain.lstrip(".")
        if domain.startswith("."):
            header += f"; Domain={host}"
        self._native.set(_url_for(host), header)

    def set_cookie(self, url: str, set_cookie: str) -> None:
        """Stores a cookie as if ``url`` had answered ``set-cookie: <set_cookie>`` (attributes
        included: ``"a=1; Path=/; Max-Age=60"``); a cookie the rules refuse (another domain, a
        public suffix, ...) raises :class:`InvalidError` saying why."""
        self._native.set(url, set_cookie)

    def delete(self, name: str, domain: Optional[str] = None, path: Optional[str] = None) -> None:
        """Removes every cookie named ``name`` (only of ``domain`` / ``path`` when given)."""
        for c in self._matching(name, domain, path):
            self._native.remove(c["domain"], c["path"], name)

    def __delitem__(self, name: str) -> None:
        if name not in self:
            raise KeyError(name)
        self.delete(name)

    def clear(self, domain: Optional[str] = None) -> None:
        """Removes every cookie, or those of ``domain``."""
        self._native.clear(domain)

    # -- files ------------------------------------------------------------------------------

    def export_netscape(self) -> str:
        """The cookies as a Netscape cookie file (what ``curl -c`` writes and ``curl -b`` reads)."""
        return self._native.export_netscape()

    def import_netscape(self, text: str) -> int:
        """Adds the cookies of a Netscape cookie file (``curl -c`` output or
        :meth:`export_netscape`'s); expired ones are skipped. Returns how many were stored."""
        return self._native.import_netscape(text)

    def __repr__(self) -> str:
        shown = ", ".join(f"<Cookie {c['name']}={c['value']} for {c['domain']}{c['path']} />" for c in self.jar)
        return f"<Cookies[{shown}]>"


def seed(native: _quiver.NativeCookieJar, cookies: Any, base_url: Optional[str]) -> None:
    """``Client(cookies=...)``: a :class:`Cookies` is copied as it is; name/value pairs (a
    mapping or a list) are set for ``base_url``'s host, with ``Path=/``."""
    if isinstance(cookies, Cookies):
        native.copy_from(cookies._native)
        return
    pairs = list(cookies.items() if hasattr(cookies, "items") else cookies)
    if not pairs:
        return
    if not base_url:
        raise InvalidError(
            "cookies={...} needs base_url=: quiver binds every cookie to a host, and the name/value "
            "pairs are set for base_url's host (or use client.cookies.set(name, value, domain=...))",
            "invalid_config",
        )
    for name, value in pairs:
        _check_pair(name, value)
        native.set(base_url, f"{name}={value}; Path=/")


def request_cookies(cookies: Any, url: str) -> Optional[List[Tuple[str, str]]]:
    """A request's own cookies: name/value pairs, or the cookies of a :class:`Cookies` jar that
    match ``url``."""
    if cookies is None:
        return None
    if isinstance(cookies, Cookies):
        pairs = [(c["name"], c["value"]) for c in cookies.cookies_for(url)]
    else:
        pairs = list(cookies.items() if hasattr(cookies, "items") else cookies)
    for name, value in pairs:
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError("cookie names and values must be str")
    return pairs
