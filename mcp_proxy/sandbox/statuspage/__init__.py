"""A stateful local emulator of the Statuspage manage API v1 (the parts the connector uses).

Serve it with `serve_in_thread(create_app())`; the upstream's `base_url` is `server.url + "/v1"`.

Behaviour:
- Auth: `Authorization: OAuth <key>` with a key in `api_keys`; otherwise 401
  `{"message": "Could not authenticate"}`. Paths may end in `.json`.
- Errors are `{"message": ...}`: 404 for unknown ids (and paths), 405 for a known path with another
  method, 422 for invalid bodies (blank or long names, statuses that do not fit the incident's kind,
  unknown component ids, maintenance windows that end before they start, metric data outside the
  last 28 days, duplicate or malformed subscribers), 405 for data sent to a metric that is not of a
  'Self' provider, 400 for bodies that are not JSON. Pages in `emulator.forbidden_pages` answer 403.
- Status codes: create 201, PATCH 200, DELETE subscriber 200 (the spec's).
- Pagination as Statuspage does it: bare arrays; `page` (1-based) + `per_page`; incidents `page` +
  `limit`; subscribers 0-based `page` + `limit`; sizes default to and are capped at 100.
- Incidents: `GET .../incidents` is newest first and `q` searches names, statuses, postmortems and
  update bodies; PATCH with `body` (or a new status) adds an incident update; a status must fit the
  kind (realtime or scheduled). `deliver_notifications` defaults to true, as at Statuspage; each
  notification "sent" is appended to `emulator.outbox` (so are subscription confirmations and
  unsubscription notices).
- Rate limiting: `rate_limit=True` (or `emulator.rate_limit = True`) allows each key
  `rate_per_second` (1) × `rate_window` (60 s) requests in any `rate_window` seconds, and answers the
  rest with `emulator.rate_limit_status` (429, or set 420) and `Retry-After: <seconds>`.
- `emulator.fail_next(status, message, headers=..., times=1)` answers the next requests (after
  authentication) with that error.
- `app.state.emulator` is the `Emulator`: its tables (`pages`, `components`, `groups`, `incidents`,
  `metrics`, `metric_data`, `subscribers`, `organizations`, `users`, keyed by page / organisation
  id) and `log`: one entry per request with method, raw_path, path (the spec's form, without `/v1`
  and `.json`), query (raw), headers (without Authorization), body (raw text), status,
  response_headers and response.

Seed (stable ids; times relative to start-up):
- organisation `acmeorg00001` (Acme Corp) with users `usralice0001` alice@example.com Alice Archer,
  `usrbob000001` bob@example.com Bob Baker, `usrcarol0001` carol@example.com Carol Chen.
- pages `acmepage0001` "Acme Cloud" (https://acme.example) and `acmeintpage2` "Acme Internal Tools"
  (one component, `cmpwiki00001` Wiki).
- on `acmepage0001`: groups `grpcore00001` Core platform (`cmpapi000001` API, `cmpweb000001` Website
  — under_maintenance, `cmpauth00001` Login) and `grpdata00001` Data (`cmpdb0000001` Database —
  degraded_performance, `cmpstore0001` File storage); `cmpmail00001` Email delivery (no group).
- incidents: `incdblag0001` "Elevated database latency" (identified, minor, 2 updates, unresolved),
  `inclogin0001` "Login failures for SSO users" (resolved yesterday, 3 updates), `incapi500001` "API
  returning 500 errors" (resolved 8 days ago, with a postmortem); maintenances `mntdbupg0001`
  "Database version upgrade" (scheduled in 3 days, upcoming) and `mntcdn000001` "CDN migration"
  (in_progress, active).
- metrics: `metapilat001` API response time (ms) and `meterrrate01` API error rate (%) of the Self
  provider `mprself00001`; `metddcpu0001` Web CPU of a Datadog provider (adding data: 405).
- subscribers: active `subalice0001` (alice@example.com), `subbob000001` (bob@example.com, API and
  Database only), `subdave00001` (dave@example.net), `subhook00001` (webhook), `subsms000001` (SMS);
  `subnew000001` unconfirmed; `subquar00001` quarantined.
- default key `sp_sandbox_key`. New objects get ids like `inc000000001`, `upd000000002`, `sub000000003`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from mcp_proxy.sandbox.statuspage.seed import ORG, PAGE, PAGE2
from mcp_proxy.sandbox.statuspage.state import Emulator, now

if TYPE_CHECKING:
    from starlette.applications import Starlette

__all__ = ["ORG", "PAGE", "PAGE2", "Emulator", "create_app"]


def create_app(*, api_keys: Iterable[str] = ("sp_sandbox_key",), rate_limit: bool = False,
               seed: bool = True) -> Starlette:
    from mcp_proxy.sandbox.statuspage.app import build_app
    from mcp_proxy.sandbox.statuspage.seed import seed as seed_data

    emu = Emulator(api_keys, rate_limit=rate_limit)
    if seed:
        seed_data(emu, now())
    return build_app(emu)
