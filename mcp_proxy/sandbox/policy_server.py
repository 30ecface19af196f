"""A policy server emulator: serves one policy document with an ETag, 304s, and switchable faults.

    app = create_app(document=b"...")          # or a callable returning the current bytes
    app.state.fault = "500"                    # None | "500" | "503" | "slow" | "garbage" | "401"
    app.state.requests                         # [{"path", "if_none_match", "status", "authorization"}]

Any GET path serves the document. A PUT replaces it (publishing, as `admin --publish-url` does) unless
`app.state.read_only` is set; `app.state.puts` keeps each body received. With `app.state.publish_token` set
(or `create_app(publish_token=...)`), a PUT needs `Authorization: Bearer <that token>` and gets 401 without it,
as a policy server that takes publishes must. `slow` holds the answer for `app.state.delay`
seconds (in small steps, so clearing the fault releases it). The request log
records whether an Authorization header was sent, never its value.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Any

FAULTS = (None, "500", "503", "slow", "garbage", "401", "404")


def etag_for(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def create_app(*, document: bytes | Callable[[], bytes], delay: float = 5.0, publish_token: str | None = None) -> Any:
    import anyio
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def serve(request: Request) -> Response:
        state = request.app.state
        fault = state.fault
        inm = request.headers.get("if-none-match")
        entry = {"path": request.url.path, "if_none_match": inm, "status": None,
                 "authorization": "authorization" in request.headers, "fault": fault}
        state.requests.append(entry)

        def answer(response: Response) -> Response:
            entry["status"] = response.status_code
            return response

        if fault == "slow":
            waited = 0.0
            while state.fault == "slow" and waited < state.delay:
                await anyio.sleep(0.05)
                waited += 0.05
        if fault in ("500", "503"):
            headers = {"Retry-After": str(state.retry_after)} if fault == "503" and state.retry_after else {}
            return answer(Response("policy server failure\n", status_code=int(fault), headers=headers))
        if fault == "401":
            return answer(Response("unauthorized\n", status_code=401))
        if fault == "404":
            return answer(Response("not found\n", status_code=404))
        if fault == "garbage":
            return answer(Response(b"\x00\xffnot a policy{{{", media_type="application/octet-stream",
                                   headers={"ETag": '"garbage"'}))
        source = state.document
        body = source() if callable(source) else source
        tag = etag_for(body)
        if inm and inm == tag:
            return answer(Response(status_code=304, headers={"ETag": tag}))
        media = "application/jose" if body[:1] not in (b"{", b" ", b"\n") else "application/json"
        return answer(Response(body, media_type=media, headers={"ETag": tag}))

    async def publish(request: Request) -> Response:
        state = request.app.state
        body = await request.body()
        authorized = _bearer_ok(request.headers.get("authorization", ""), state.publish_token)
        status = 401 if not authorized else 403 if state.read_only else 204
        state.requests.append({"path": request.url.path, "method": "PUT", "status": status,
                               "authorization": "authorization" in request.headers, "fault": None})
        if not authorized:
            return Response("unauthorized\n", status_code=401, headers={"WWW-Authenticate": 'Bearer realm="policy"'})
        if state.read_only:
            return Response("read only\n", status_code=403)
        state.puts.append(body)
        state.document = body
        return Response(status_code=204, headers={"ETag": etag_for(body)})

    app = Starlette(routes=[Route("/{path:path}", serve, methods=["GET"]),
                            Route("/{path:path}", publish, methods=["PUT"])])
    app.state.document = document
    app.state.fault = None
    app.state.delay = delay
    app.state.retry_after = None
    app.state.requests = []
    app.state.read_only = False
    app.state.puts = []
    app.state.publish_token = publish_token
    return app


def _bearer_ok(header: str, token: str | None) -> bool:
    if token is None:
        return True
    scheme, _, value = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())
