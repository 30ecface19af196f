"""What can go wrong with per-user OAuth, as exceptions whose text a user may see.

No message ever contains a token, a code, a client secret or a PKCE verifier.
`SignInRequired` deliberately is not a `ConnectorError`: the hub recognises it
by class name and starts a sign-in instead of reporting a tool failure.
"""

from __future__ import annotations

import re

_ERROR_CODE = re.compile(r"[a-z_]{1,40}")


def oauth_error_code(value: object) -> str | None:
    """An OAuth `error` value fit to show a user or a model: a short code of lowercase letters and `_`
    (RFC 6749 §5.2, §4.1.2.1), else None. Whoever sends it chooses the text (a vendor, or any local web page
    that points a browser at the callback), so nothing else of it is ever passed on."""
    return value if isinstance(value, str) and _ERROR_CODE.fullmatch(value) else None


class SignInRequired(Exception):
    """There is no usable token for the upstream: the user has to sign in (again)."""

    def __init__(self, upstream: str, reason: str) -> None:
        self.upstream = upstream
        self.reason = reason
        super().__init__(f"You are not signed in to '{upstream}' ({reason}). Sign in with "
                         f"`mcp-access-proxy login {upstream}`.")


class SignInError(Exception):
    """A sign-in could not start or did not complete. The text says why and what to do."""


class SignInTimeout(SignInError):
    """Nobody finished the sign-in in time. `note` says more when something else happened meanwhile (a
    response that did not belong to the sign-in was refused), else it is empty."""

    def __init__(self, message: str, note: str = "") -> None:
        super().__init__(message + note)
        self.note = note


class AuthUnavailable(Exception):
    """A token exists (or may), but cannot be used right now: keychain locked or missing, client secret
    not stored, token endpoint unreachable. Not a reason to sign in again."""

    def __init__(self, message: str, error_type: str = "auth_unavailable") -> None:
        super().__init__(message)
        self.error_type = error_type


class TokenEndpointError(Exception):
    """The token endpoint refused a request (`error` is the OAuth error code, e.g. invalid_grant) or could
    not be reached (`error` is None)."""

    def __init__(self, message: str, error: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.error = error
        self.status = status

    @property
    def refused(self) -> bool:
        """The grant itself is dead (revoked, rotated out, expired): signing in again is the only fix. Only
        `invalid_grant` says so; `invalid_client` means the app's own credentials are wrong (a mistyped or
        rotated client secret), which a new sign-in cannot fix and after which the grant still works."""
        return self.error == "invalid_grant"

    @property
    def client_rejected(self) -> bool:
        """The token endpoint does not accept the OAuth app (client_id, client_secret): a configuration fault."""
        return self.error in ("invalid_client", "unauthorized_client")
