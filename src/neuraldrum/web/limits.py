"""A request-body size limit for the app, as plain ASGI middleware.

A body larger than the path's limit gets ``413 {"error": ...}``: at once when its Content-Length says so,
or as soon as the bytes received pass the limit (chunked uploads). The app never holds more than the limit.
"""
from __future__ import annotations

import json


class BodyLimit:
    """ASGI middleware: ``default`` bytes for every HTTP request, ``limits[path]`` for the paths named."""

    def __init__(self, app, default: int, limits: dict[str, int]):
        self.app, self.default, self.limits = app, default, dict(limits)

    async def _refuse(self, send, limit: int) -> None:
        body = json.dumps({"error": f"the request body is too large; the limit here is {limit / 2 ** 20:g} MiB"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.limits.get(scope.get("path", ""), self.default)
        length = dict(scope.get("headers") or ()).get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > limit
            except ValueError:
                too_big = True
            if too_big:
                return await self._refuse(send, limit)
        state = {"seen": 0, "refused": False, "started": False}

        async def receive_limited():
            msg = await receive()
            if msg["type"] == "http.request":
                state["seen"] += len(msg.get("body", b""))
                if state["seen"] > limit:
                    if not state["started"]:
                        state["refused"] = True
                        await self._refuse(send, limit)
                    return {"type": "http.disconnect"}
            return msg

        async def send_tracked(msg):
            if state["refused"]:
                return  # the 413 went out; drop what the app says after the client "left"
            state["started"] = True
            await send(msg)

        try:
            await self.app(scope, receive_limited, send_tracked)
        except Exception:
            if not state["refused"]:
                raise


class SameOrigin:
    """ASGI middleware: an HTTP request that a browser says comes from a page of another site (an ``Origin``
    header whose host:port is not the request's ``Host``) gets ``403 {"error": ...}`` before the app sees it.
    Browsers send Origin with every POST, so another site's page cannot make the instrument encode or render
    (a "simple" cross-site POST needs no CORS permission to be sent); requests without Origin (curl, scripts,
    same-origin GETs) pass. WebSockets are checked the same way in :mod:`.live`."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            from .live import same_origin

            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or ()}
            if not same_origin(headers):
                body = json.dumps({"error": "cross-origin request refused (the page is from another site)"}).encode()
                await send({"type": "http.response.start", "status": 403,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
