"""The consent page of the sandbox's OAuth stand-ins (PagerDuty's `oauth_server.py`, Atlassian's
`atlassian_oauth.py`), for the tests that sign in with a real browser.

`ConsentDesk.open(request, page)` keeps the authorize request under a fresh id and answers with the page: who is
signed in, which app asks for which scopes, optional notes (the resource a token is for), a site picker when the
account has several sites (a `<select id="site" name="site" required>` with no site chosen, as Atlassian's "Use app
on" list; one site is shown and sent along), and a form with `#approve` ("Allow") and `#deny` ("Deny") posted back
to `page.action`. `ConsentDesk.answer(fields)` takes the posted form: a page is answered once (`answers` records
"allow" or "deny"); an unknown or already answered page is a 400 page, and so is Allow without a site the picker
offered (that page stays open, as Atlassian's Allow stays disabled until a site is chosen).
"""

from __future__ import annotations

import html
import secrets
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.responses import Response

EXPIRED = "This consent page has expired or was already answered; start the sign-in again."
NO_SITE = "Choose the site to use the app on, then choose Allow."


@dataclass(frozen=True)
class ConsentPage:
    """What the user is shown. Plain text everywhere: the page escapes it."""
    title: str  # the page's <title>
    who: str  # e.g. "alice@example.com (acme)"
    app: str
    scopes: Sequence[str]
    action: str  # the path the form posts to
    notes: Sequence[tuple[str, str]] = ()  # (label, value) lines under the scopes, the value as code
    sites: Sequence[tuple[str, str]] = ()  # (value, label) of each site the account has; empty: no picker


@dataclass(frozen=True)
class Answer:
    request: dict[str, str]  # the authorize request the page was shown for
    allowed: bool
    site: str | None  # the picked site's value, when the page had a picker


class ConsentDesk:
    """The consent pages shown and not yet answered, and the answers given."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pending: dict[str, tuple[dict[str, str], ConsentPage]] = {}
        self.answers: list[str] = []  # "allow" or "deny", one per page answered

    def open(self, request: dict[str, str], page: ConsentPage) -> Response:
        consent = secrets.token_urlsafe(16)
        with self.lock:
            self.pending[consent] = (request, page)
        return _render(page, consent)

    def answer(self, fields: Mapping[str, str]) -> Answer | Response:
        from starlette.responses import HTMLResponse

        allowed = fields.get("decision") == "allow"
        site = fields.get("site") or None
        with self.lock:
            shown = self.pending.get(fields.get("consent", ""))
            if shown is None:
                return HTMLResponse(EXPIRED, status_code=400)
            request, page = shown
            if allowed and page.sites and site not in {value for value, _ in page.sites}:
                return HTMLResponse(NO_SITE, status_code=400)  # the page stays open: the user picks one
            del self.pending[fields["consent"]]
            self.answers.append("allow" if allowed else "deny")
        return Answer(request, allowed, site if page.sites else None)


def _site_picker(sites: Sequence[tuple[str, str]]) -> str:
    if not sites:
        return ""
    if len(sites) == 1:
        value, label = sites[0]
        return (f"<p id=\"use-on\">Use app on: <b>{html.escape(label)}</b></p>"
                f"<input type=\"hidden\" name=\"site\" value=\"{html.escape(value)}\">")
    options = "".join(f"<option value=\"{html.escape(value)}\">{html.escape(label)}</option>" for value, label in sites)
    return (f"<p><label for=\"site\">Use app on:</label> <select id=\"site\" name=\"site\" required>"
            f"<option value=\"\" selected>Choose a site</option>{options}</select></p>")


def _render(page: ConsentPage, consent: str) -> Response:
    from starlette.responses import HTMLResponse

    scopes = "".join(f"<li>{html.escape(s)}</li>" for s in page.scopes)
    notes = "".join(f"<p>{html.escape(label)}: <code>{html.escape(value)}</code></p>" for label, value in page.notes)
    body = (f"<!doctype html><html><head><meta charset=utf-8><title>{html.escape(page.title)}</title></head>"
            f"<body style=\"font-family:system-ui,sans-serif;max-width:40em;margin:4em auto\">"
            f"<h1>Authorize application</h1><p id=\"who\">Signed in as <b>{html.escape(page.who)}</b>.</p>"
            f"<p id=\"what\">The application <b>{html.escape(page.app)}</b> asks to access your account with these "
            f"scopes:</p><ul id=\"scopes\">{scopes}</ul>{notes}"
            f"<form method=\"post\" action=\"{html.escape(page.action)}\">"
            f"<input type=\"hidden\" name=\"consent\" value=\"{consent}\">{_site_picker(page.sites)}"
            f"<button id=\"approve\" type=\"submit\" name=\"decision\" value=\"allow\">Allow</button> "
            f"<button id=\"deny\" type=\"submit\" name=\"decision\" value=\"deny\" formnovalidate>Deny</button>"
            f"</form></body></html>")
    return HTMLResponse(body, headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"})
