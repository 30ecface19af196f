"""A policy server emulator: serves one policy document with an ETag, 304s, and switchable faults.

    app = create_app(document=b"...")          # or a callable returning the current bytes
    app.state.fault = "500"                    # None | "500" | "503" | "slow" | "garbage" | "401"
    app.state.requests                         # [{"path", "if_none_match", "status", "authorization"}]

Any GET path serves the document. A PUT replaces it (publishing, as `admin --publish-url` does) unless
`app.state.read_only` is set; `app.state.puts` keeps each body received. `slow` holds the answer for `app.state.delay`
seconds (in small steps, so clearing the fault releases it). The request log
records whether an Authorization header was sent, never its value.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

FAULTS = (None, "500", "503", "slow", "garbage", "401", "404")


def etag_for(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def create_app(*, document: bytes | Callable[[], bytes], delay: float = 5.0) -> Any:
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
        state.requests.append({"path": request.url.path, "method": "PUT", "status": 403 if state.read_only else 204,
                               "authorization": "authorization" in request.headers, "fault": None})
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
    return app
