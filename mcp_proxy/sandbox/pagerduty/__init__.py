"""A stateful local emulator of the PagerDuty REST API v2 (the parts the connector uses).

Serve it with `serve_in_thread(create_app())` and use the server's URL as the upstream's
`base_url`. The EU host is the same app at another base URL: `self` links are built from
the host each request came to.

Behaviour:
- Auth: `Authorization: Token token=<key>` for a key in `api_keys` (key → the email of the
  user it belongs to, or None for an account-level key), or `Bearer <token>` accepted by
  `bearer_validator(token) -> {"user_id": ..., "scopes": [...]} | None`. Anything else:
  401 `{"error": {"message": "Authentication failed", "code": 2006}}`.
- Bearer tokens with scopes: each route needs the spec's `x-pd-requires-scope` (or classic
  `read` for GETs, `write` for all); else 403 code 2010 naming the scope. API keys have no scopes.
- `Accept: application/vnd.pagerduty+json;version=N` with N != 2: 406.
- Writes (PUT/POST) by a caller that is no user (account key, app token) need `From: <email of a
  user>`; missing: 400 code 2016 'You must specify a user's email address in the "From" header to
  perform this action'; unknown email: 400 code 2001. A user's key or token acts as that user.
- `GET /users/me` with an account key: 400 code 2001 ("...account-level access token...").
- Classic pagination: `limit` (default 25, capped at 100), `offset`, `more`, `total` (null unless
  `total=true`); offset + limit > 10000: 400 code 2001. Notes and overrides are unpaginated.
- Incidents: default window the last 30 days (`date_range=all` for every one, at most 6 months
  between since and until), filters `statuses[]`, `urgencies[]`, `service_ids[]`, `team_ids[]`,
  `user_ids[]`, `priority_ids[]`, `incident_key`, `sort_by` (default `created_at:asc`).
  PUT /incidents/{id}: acknowledge (again: 400 code 1002), resolve (already resolved: any change
  but reopening is 400 code 1001), `assignments`, `escalation_policy`, `escalation_level` (out of
  range: 400 code 2001). Every change adds log entries (newest first) whose `agent` is the acting
  user. Unknown ids (id or incident number): 404 code 2100.
- Rate limiting: `rate_limit=True` (or `emulator.rate_limit = True`) answers every request, and
  `emulator.throttled = N` the next N requests, with 429 `{"error": {"message": "Rate Limit
  Exceeded", "code": 2020}}` and `ratelimit-limit`, `ratelimit-remaining`, `ratelimit-reset`
  (`emulator.ratelimit_reset`, seconds, default 0).
- `app.state.emulator` is the `Emulator`: its tables (`incidents`, `notes`, `alerts`,
  `log_entries`, `users`, `teams`, `schedules`, `overrides`, `policies`, `services`,
  `priorities`) and `log`: one entry per request with method, path, query (raw), headers
  (without Authorization), body (raw text), status, response_headers, response.

Seed (stable ids; times relative to start-up):
- users PALICE1 alice@ (admin), PBOB002 bob@, PCAROL3 carol@, PDAVE04 dave@ (limited_user),
  PERIN05 erin@ (observer), all `@example.com`; each user-level sandbox key whose email is not one
  of them gets a user `PU000NN`.
- teams PTEAM01 SRE (alice, bob), PTEAM02 Database (carol, dave).
- schedules PSCHED1 "SRE primary" (weekly alice → bob → carol from 2025-01-06T09:00Z; overrides
  PO00001 dave from yesterday 00:00 to tomorrow 00:00 UTC, PO00002 alice in 3 days), PSCHED2
  "Database primary" (carol → dave; override PO00003 ten days ago).
- escalation policies PEP0001 "SRE escalation" (1: PSCHED1, 2: bob), PEP0002 "Database
  escalation" (1: PSCHED2, 2: carol and alice).
- services PSVC001 Checkout API, PSVC003 Web frontend, PSVC004 Batch jobs (disabled) on PEP0001;
  PSVC002 Payments DB on PEP0002. Priorities PPRIO01..PPRIO05 = P1..P5.
- incidents: Q0CHECKOUT1001 #1001 triggered high P1 (alice, 2 notes, 2 alerts), Q0PAYDBLAG1002
  #1002 acknowledged by carol, Q0WEBSLOW1003 #1003 triggered low, Q0CHK502S1004 #1004 resolved,
  Q0BACKUP01005 #1005 triggered low (dave), Q0CERTEXP1006 #1006 acknowledged (alice),
  Q0DISKFULL1007 #1007 resolved (12 days ago), Q0OLDOUTG1000 #1000 resolved 45 days ago (outside
  the default window).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from mcp_proxy.sandbox.pagerduty.state import Emulator

if TYPE_CHECKING:
    from starlette.applications import Starlette

__all__ = ["Emulator", "create_app"]


def create_app(*, api_keys: Mapping[str, str | None] = {"pd_sandbox_account_key": None},  # read only
               bearer_validator: Callable[[str], dict | None] | None = None, rate_limit: bool = False,
               seed: bool = True) -> Starlette:
    from mcp_proxy.sandbox.pagerduty.app import build_app

    return build_app(Emulator(api_keys, seed_data=seed, rate_limit=rate_limit), bearer_validator)
