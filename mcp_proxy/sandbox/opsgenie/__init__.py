"""A stateful local emulator of the Opsgenie REST API v2 (the parts the connector uses).

Serve it with `serve_in_thread(create_app())` and use the server's URL as the
upstream's `base_url` (paths start `/v2/`). The EU host is the same app served
at another base URL: paging links are built from the request's own host.

Behaviour:
- `Authorization: GenieKey <key>`; anything else is 401 `Could not authenticate.`
- Integration keys may do everything. Configuration (API Key Management) keys may
  read, but alert writes (create and every POST action) get 403
  `{"code": 40301, "message": "To perform this action, use an API key from an API integration."}`
  (the status real Opsgenie uses for it; Atlassian does not document it).
- Alert writes answer 202 `{"result", "took", "requestId"}`; `GET /v2/alerts/requests/{id}`
  answers 404 + `X-Opsgenie-Errortype: RequestNotProcessed` for the first
  `processing_polls` polls, then 200. `processing_polls < 0` (or
  `emulator.never_complete = True`): never processed, and the effect never happens.
  An action on a missing alert is still 202; its status says `isSuccess: false`,
  `status: "Alert does not exist"`. Bad bodies are 422 with `errors: {field: reason}`.
- `paging` links (absolute) and `X-Paging-*` headers on alerts and users; notes and
  logs use opaque `offset` + `direction`.
- `emulator.throttle(times=None, period=1.0, only=None)` (or `rate_limit=True`; `only`: a path part): 429 with
  `X-RateLimit-State: THROTTLED`, `X-RateLimit-Reason`, `X-RateLimit-Period-In-Sec`.
- `app.state.emulator` is the `Emulator`: its tables (`alerts`, `notes`, `logs`,
  `requests`, `users`, `teams`, `escalations`, `schedules`) and `log`, one entry per
  request: method, path, query, body (raw text), status, response_headers, response.
  The key itself is never logged.

Seed (stable ids, `mcp_proxy.sandbox.opsgenie.seed`):
- users alice@ (Admin, `…a11ce0000001`), bob@ (`…b0b000000002`), carol@ (`…ca1010000003`),
  dave@ (Owner, `…da7e00000004`), erin@ (`…e11400000005`), all `@example.com`
  (ids `4e1b2c3d-0a11-4a7e-9c51-…`)
- teams SRE `7a3f5e2d-1b2c-4d5e-8f90-5e7e00000001` (alice admin, bob), Database
  `7a3f5e2d-1b2c-4d5e-8f90-db0000000002` (carol admin, erin)
- escalation SRE_escalation `9c8b7a6d-5e4f-4a3b-9c2d-e5ca1a7e0001` (schedule, next, team)
- schedules SRE_schedule `d2c1b0a9-8f7e-4d6c-9b5a-5c4ed0000001` (weekly rotation
  alice → bob → carol from 2025-01-06T09:00Z), Database_schedule
  `d2c1b0a9-8f7e-4d6c-9b5a-5c4ed0000002` (disabled, no rotation)
- alerts: tiny 101 `8418d193-2dab-4490-b331-8c02cdd196b7-1763800000000` (P1 open, alias
  db-primary-replication-lag, 5 notes, 6 logs), 102 disk-full-web-3 (P3 open), 103
  cert-expiry-api (P4 open), 100 cpu-batch-1 (P2 closed), 104 queue-backlog-orders
  (P2 open, acknowledged by bob)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from mcp_proxy.sandbox.opsgenie.state import Emulator

if TYPE_CHECKING:
    from starlette.applications import Starlette

__all__ = ["Emulator", "create_app"]


def create_app(*, integration_keys: Iterable[str] = ("og-sandbox-integration-key",),
               config_keys: Iterable[str] = ("og-sandbox-config-key",), rate_limit: bool = False,
               processing_polls: int = 1, seed: bool = True) -> Starlette:
    from mcp_proxy.sandbox.opsgenie.app import build_app

    emulator = Emulator(integration_keys=integration_keys, config_keys=config_keys, rate_limit=rate_limit,
                        processing_polls=processing_polls, seed_data=seed)
    return build_app(emulator)
