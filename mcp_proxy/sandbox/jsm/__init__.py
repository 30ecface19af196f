"""A stateful local emulator of the Jira Service Management (JSM) Operations REST API (the parts the
Opsgenie connector's JSM backend uses), faithful to ../shared/vendor-specs/jsm-ops.md.

Serve it with `serve_in_thread(create_app())` (or `python -m mcp_proxy.sandbox.jsm --port N`) and use
the server's URL as the upstream's `base_url`; the API is under `/jsm/ops/api/{cloudId}/v1/...`.

Behaviour:
- HTTP Basic `email:api_token` (the accounts given), or `Authorization: Bearer <token>` (the OAuth 3LO
  hook: `bearer_tokens`). Anything else: 401 `{"code": 401, "message": ...}`. DELETE is refused to
  Basic callers (API tokens lack the delete scopes); `emulator.missing_scopes = {"write"}` refuses
  writes the same way (401 whose message says "scope does not match").
- Another cloudId in the path: 404. `GET /_edge/tenant_info` (no credentials) answers
  `{"cloudId"}`; `GET /oauth/token/accessible-resources` (Bearer) the array of sites.
- Alert create answers 200 and actions 202 `{result, requestId, took}`; `GET /v1/alerts/requests/{id}`
  is 404 for the first `processing_polls` polls, then 200 (bare, no `data` wrapper);
  `processing_polls < 0`: never processed (and the effect never happens). An action on a missing
  alert is still 202; its status says `isSuccess: false`. Adding a note is synchronous (200 AlertNote).
- Lists page with `offset` + `size` and `links.next` (relative `/v1/...`, or absolute with
  `emulator.absolute_links = True`); `offset + size` must stay below 20 000 (else 422), and no
  `links.next` crosses it. Alert lists carry `count`. Notes and logs page with an opaque `after`.
- Errors: `{"errors": [{"title", "code"}]}`; a malformed alert query is 400.
- `emulator.throttle(times=1, retry_after=1.0, only=None)`: 429 with `Retry-After`.
- `app.state.emulator.log`: one entry per request (method, path, query, the auth scheme — never the
  credential —, body, status, response headers, response).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mcp_proxy.sandbox.jsm import seed
from mcp_proxy.sandbox.jsm.state import Emulator

if TYPE_CHECKING:
    from starlette.applications import Starlette

__all__ = ["Emulator", "create_app", "seed"]


def create_app(*, accounts: dict[str, str] | None = None, bearer_tokens: tuple[str, ...] = (seed.BEARER_TOKEN,),
               cloud_id: str = seed.CLOUD_ID, site: str = seed.SITE, processing_polls: int = 1,
               seed_data: bool = True) -> Starlette:
    from mcp_proxy.sandbox.jsm.app import build_app

    emulator = Emulator(accounts=accounts if accounts is not None else {seed.EMAIL: seed.API_TOKEN},
                        bearer_tokens=set(bearer_tokens), cloud_id=cloud_id, site=site,
                        processing_polls=processing_polls, seed_data=seed_data)
    return build_app(emulator)
