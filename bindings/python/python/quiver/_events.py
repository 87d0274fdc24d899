"""Observability: the ``quiver`` logger, listeners of the engine's events and event hooks.

Each client's engine queues its events (a bounded native queue; quiver's threads never wait on
Python) only while someone wants them: a listener is registered, or the ``quiver`` logger would
emit records (it has a handler somewhere up its hierarchy and its level lets WARNING, or DEBUG,
through; checked as each request starts). One daemon thread per client, ``quiver-events``,
drains the queue in order and calls the listeners, holding the GIL only for that.
"""

from __future__ import annotations

import atexit
import inspect
import logging
import threading
import weakref
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from . import _quiver

__all__ = ["Dispatcher", "EventHooks", "logger", "log_response", "run_hooks", "arun_hooks", "hooks_from"]

#: The logger every record of quiver goes to. Like httpx's, it has no handler of its own: with
#: logging unconfigured nothing is emitted (and no event is even built).
logger = logging.getLogger("quiver")

_DEBUG = logging.DEBUG
_INFO = logging.INFO
_WARNING = logging.WARNING
_LOG_DEBUG: int = _quiver.LOG_DEBUG
_LOG_WARNING: int = _quiver.LOG_WARNING

#: How long one wait of the listener thread lasts (it then looks again whether to go on).
_WAIT = 5.0

#: How long the interpreter's exit waits for each listener thread to deliver what is queued.
_EXIT_WAIT = 1.0

EventHooks = Dict[str, List[Callable[..., Any]]]


def hooks_from(given: Optional[Mapping[str, Sequence[Callable[..., Any]]]]) -> EventHooks:
    """httpx's ``event_hooks`` shape: ``{"request": [...], "response": [...]}`` (both lists new,
    other keys refused)."""
    given = given or {}
    unknown = set(given) - {"request", "response"}
    if unknown:
        raise ValueError(f"event_hooks takes the keys 'request' and 'response', not {sorted(unknown)}")
    hooks: EventHooks = {"request": list(given.get("request", ())), "response": list(given.get("response", ()))}
    for fn in hooks["request"] + hooks["response"]:
        if not callable(fn):
            raise TypeError(f"an event hook must be callable, got {fn!r}")
    return hooks


def run_hooks(hooks: List[Callable[..., Any]], arg: Any) -> None:
    for hook in list(hooks):
        hook(arg)


async def arun_hooks(hooks: List[Callable[..., Any]], arg: Any) -> None:
    for hook in list(hooks):
        result = hook(arg)
        if inspect.isawaitable(result):
            await result


def log_response(method: str, url: str, http_version: str, status: int, reason: str) -> None:
    """httpx's INFO line for a response (call it only when INFO is enabled)."""
    logger.info('HTTP Request: %s %s "%s %d %s"', method, url, http_version, status, reason)


def _log_bits() -> int:
    """What the ``quiver`` logger would emit now: cheap when logging is unconfigured (one cached
    level check, one walk up the hierarchy for handlers)."""
    if not logger.isEnabledFor(_WARNING) or not logger.hasHandlers():
        return 0
    return _LOG_WARNING | _LOG_DEBUG if logger.isEnabledFor(_DEBUG) else _LOG_WARNING


# The DEBUG line of each event: a format and the event's attributes it takes.
_LINES: Dict[str, Tuple[str, Tuple[str, ...]]] = {
    "request_start": ("request %s: %s %s", ("request", "method", "url")),
    "queued": ("request %s: waiting for a connection to %s", ("request", "origin")),
    "connection_acquired": ("request %s: on connection %s (reused: %s)", ("request", "connection", "reused")),
    "headers_sent": ("request %s: headers sent", ("request",)),
    "body_sent": ("request %s: body sent (%s bytes)", ("request", "bytes")),
    "response_headers": ("request %s: response %s", ("request", "status")),
    "response_end": ("request %s: response body ended (%s bytes)", ("request", "bytes")),
    "retried": ("request %s: sent again on another connection (%s)", ("request", "reason")),
    "redirected": ("request %s: redirected (%s) to %s", ("request", "status", "location")),
    "request_failed": ("request %s failed: %s", ("request", "error")),
    "dns_resolved": ("connection %s to %s: %s addresses resolved", ("connection", "origin", "addresses")),
    "connected": ("connection %s to %s: connected to %s", ("connection", "origin", "remote")),
    "tls_done": ("connection %s to %s: TLS done (ALPN %s, resumed: %s)", ("connection", "origin", "alpn", "resumed")),
    "connection_opened": ("connection %s to %s opened (%s)", ("connection", "origin", "protocol")),
    "connection_failed": ("connection to %s failed: %s", ("origin", "error")),
    "goaway": ("connection %s to %s: GOAWAY received, draining", ("connection", "origin")),
    "connection_closed": ("connection %s to %s closed: %s", ("connection", "origin", "reason")),
}


def _log_event(event: _quiver.Event, bits: int) -> None:
    name = event.name
    failure = name in ("request_failed", "connection_failed")
    if not bits & (_LOG_WARNING if failure else _LOG_DEBUG):
        return
    line = _LINES.get(name)
    if line is None:
        fmt, args = "%s", (repr(event),)
    else:
        fmt, args = line[0], tuple(getattr(event, a) for a in line[1])
    (logger.warning if failure else logger.debug)(fmt, *args, extra={"quiver_event": event})


class Dispatcher:
    """One client's listeners, its logging mode and the thread that delivers its events."""

    __slots__ = ("_native", "_listeners", "_logging", "_running", "_closed", "_lock", "_thread", "__weakref__")

    def __init__(self, native: _quiver.NativeEvents, listeners: Optional[Sequence[Callable[..., Any]]]) -> None:
        self._native = native
        self._listeners: Tuple[Callable[..., Any], ...] = ()
        self._logging = 0
        self._running = False
        self._closed = False
        self._lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None
        for fn in listeners or ():
            self.add(fn)

    @property
    def listeners(self) -> Tuple[Callable[..., Any], ...]:
        return self._listeners

    @property
    def enabled(self) -> bool:
        """True while the engine builds events for this client."""
        return self._native.enabled

    def add(self, fn: Callable[..., Any]) -> None:
        if not callable(fn):
            raise TypeError(f"a listener must be callable, got {fn!r}")
        with self._lock:
            self._listeners = self._listeners + (fn,)
            self._native.set_listening(True)
            self._start()

    def remove(self, fn: Callable[..., Any]) -> None:
        with self._lock:
            kept = list(self._listeners)
            try:
                kept.remove(fn)
            except ValueError:
                raise ValueError(f"{fn!r} is not a listener of this client") from None
            self._listeners = tuple(kept)
            if not kept:
                self._native.set_listening(False)

    def starting(self) -> None:
        """Called as each request starts: feeds the logger's state to the engine, and makes
        sure a thread delivers the events."""
        bits = _log_bits()
        if bits != self._logging:
            self._logging = bits
            self._native.set_logging(bits)
        if (bits or self._listeners) and not self._running:
            with self._lock:
                self._start()

    def stats(self) -> Dict[str, int]:
        return self._native.stats()

    def close(self) -> None:
        """The client closed: the thread delivers what is queued and what comes soon after
        (connections closing), then ends."""
        self._closed = True
        self._native.close()

    def _start(self) -> None:
        # Under self._lock.
        if self._running or self._closed:
            return
        self._running = True
        thread = threading.Thread(target=self._run, name="quiver-events", daemon=True)
        try:
            thread.start()
        except BaseException:
            self._running = False
            raise
        self._thread = thread
        _live.add(self)

    def _stop(self) -> None:
        """The interpreter exits: the thread delivers what is queued, then ends (a daemon thread
        still waiting in the engine when the runtime finalizes could not end cleanly)."""
        self._native.stop()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(_EXIT_WAIT)

    def _run(self) -> None:
        native = self._native
        try:
            while True:
                batch = native.take(_WAIT)
                if batch is None:
                    return
                for event in batch:
                    self._deliver(event)
        finally:
            with self._lock:
                self._running = False

    def _deliver(self, event: _quiver.Event) -> None:
        bits = self._logging
        if bits:
            try:
                _log_event(event, bits)
            except Exception:  # a broken handler must not end the thread
                logger.exception("logging quiver event %r failed", event)
        for fn in self._listeners:
            try:
                fn(event)
            except Exception:
                # As asyncio reports a failing callback: on its logger, at ERROR.
                logger.exception("quiver listener %r raised on %r", fn, event)


#: Dispatchers whose thread may be running.
_live: "weakref.WeakSet[Dispatcher]" = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for dispatcher in list(_live):
        dispatcher._stop()
