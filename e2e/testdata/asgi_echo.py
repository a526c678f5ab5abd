# An ASGI app for the e2e tests, served by Hypercorn (Debian's python3-hypercorn), an app
# server that switches to HTTP/2 on `Upgrade: h2c` by itself, before the app sees the request.
# The tests use it as a real h2c-capable upstream: whatever reaches it says how it arrived.
#
# HTTP: answers 200 with JSON {"http_version", "path", "headers": {name: [values]}}: the
# request as the app received it ("2" after an h2c upgrade).
# WebSocket: accepts, sends first the same kind of hello as internal/testsupport/wsecho ({"path",
# "header": {Name: [values]}}), then echoes every text message.
#
# Run: hypercorn --bind 127.0.0.1:PORT /path/to/asgi_echo.py:app
import json


def _headers(scope, canonical):
    out = {}
    for name, value in scope["headers"]:
        name = name.decode("latin-1")
        if canonical:  # as Go's http.Header spells it, for wsecho.Hello
            name = "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))
        out.setdefault(name, []).append(value.decode("latin-1"))
    return out


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        hello = {"path": scope["path"], "header": _headers(scope, True)}
        await send({"type": "websocket.send", "text": json.dumps(hello)})
        while True:
            message = await receive()
            if message["type"] != "websocket.receive":
                return
            await send({"type": "websocket.send", "text": message.get("text") or ""})
    # http: read the body (if any), answer with what arrived.
    while True:
        message = await receive()
        if not message.get("more_body"):
            break
    body = json.dumps({"http_version": scope["http_version"], "path": scope["path"],
                       "headers": _headers(scope, False)}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
