"""The parts of a vendor's HTTP error that read the same for every vendor.

Each vendor maps its own statuses and error bodies to advice (its `client.py`); what every vendor
says alike lives here: how an error answer is read, the server-error and fallback texts, and how to
tell a user to store a valid API key. None of it ever includes a credential.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from mcp_proxy.connectors.base import ConnectorError

# A request with one of these methods changed nothing, so a failure needs no "check before repeating".
READ_METHODS = ("GET", "HEAD")


def json_body(response: httpx.Response) -> Any:
    """The response's JSON, or None when it has none (an HTML error page, an empty body)."""
    try:
        return response.json()
    except ValueError:
        return None


@dataclass(frozen=True)
class ErrorReply:
    """An error answer, read once: what the vendor mappers look at."""

    status: int
    method: str
    body: Any  # the JSON body, None when there is none
    reason: str  # the reason phrase, or "no message"

    @classmethod
    def of(cls, response: httpx.Response) -> ErrorReply:
        return cls(response.status_code, response.request.method, json_body(response),
                   response.reason_phrase or "no message")

    @property
    def is_write(self) -> bool:
        return self.method not in READ_METHODS


def server_error(vendor: str, what: str, reply: ErrorReply, write_check: str) -> ConnectorError:
    """A 5xx. `what` is the vendor's answer ("HTTP 503: ..."); `write_check` tells how to verify a
    write before repeating it: the vendor may have carried it out before failing."""
    check = f" {write_check}" if reply.is_write else ""
    return ConnectorError(f"{vendor} had a server error ({what}); try again in a minute.{check}",
                          f"http_{reply.status}")


def unexpected(vendor: str, what: str, status: int) -> ConnectorError:
    """A status the vendor's mapper has no advice for: at least say what the vendor answered."""
    return ConnectorError(f"{vendor} answered {what}", f"http_{status}")


def by_status(vendor: str, reply: ErrorReply, what: str, advice: Mapping[int, str], write_check: str, *,
              detail: str = "", other: str | None = None) -> ConnectorError:
    """The last step of a vendor's mapper, once its special cases are done: the vendor's fixed advice
    for the status (a template with `{what}` and `{detail}`), else the shared server-error text, else
    the fallback naming `other` (default `what`)."""
    if reply.status in advice:
        return ConnectorError(advice[reply.status].format(what=what, detail=detail), f"http_{reply.status}")
    if reply.status >= 500:
        return server_error(vendor, what, reply, write_check)
    return unexpected(vendor, what if other is None else other, reply.status)


def api_key_fix(upstream: str, ref: str | None, vendor: str) -> str:
    """How to store a valid API key for `upstream`, given where its `api_key` points (`env:NAME`,
    `keyring:NAME` or nothing). Names only the place, never the value."""
    where = f"upstreams.{upstream}.api_key"
    if ref and ref.startswith("env:"):
        return f"set the environment variable {ref[4:]} (referenced by {where}) to a valid {vendor} API key"
    if ref and ref.startswith("keyring:"):
        return f"store a valid key with `mcp-access-proxy secret set {ref[8:]}` (referenced by {where})"
    return f"store a key with `mcp-access-proxy secret set <name>` and reference it as {where} = \"keyring:<name>\""
