"""A small ASGI app for interop tests against servers nobody here wrote (Hypercorn + aioquic).

Endpoints (any method): /bytes/N (N pattern bytes: b'a' + i % 26), /echo (the request body),
/headers (JSON of the request), /status/N (that status), /health.
"""
import json


def pattern(n: int) -> bytes:
    alphabet = bytes(range(ord("a"), ord("a") + 26))
    return (alphabet * (n // 26 + 1))[:n]


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    path = scope["path"]
    status, out, ctype = 200, b"", b"application/octet-stream"
    if path == "/health":
        out = b"ok"
    elif path == "/echo":
        out = body
    elif path == "/headers":
        ctype = b"application/json"
        out = json.dumps(
            {
                "method": scope["method"],
                "path": path,
                "http_version": scope.get("http_version"),
                "headers": [[k.decode(), v.decode()] for k, v in scope["headers"]],
            }
        ).encode()
    elif path.startswith("/bytes/") and path[7:].isdigit():
        out = pattern(int(path[7:]))
    elif path.startswith("/status/") and path[8:].isdigit():
        status = int(path[8:])
        out = b"" if status in (204, 304) else f"status {status}".encode()
    else:
        status, out = 404, b"not found"
    headers = [(b"content-type", ctype)]
    if status not in (204, 304):
        headers.append((b"content-length", str(len(out)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": out})
