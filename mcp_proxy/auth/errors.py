"""What can go wrong with per-user OAuth, as exceptions whose text a user may see.

No message ever contains a token, a code, a client secret or a PKCE verifier.
`SignInRequired` deliberately is not a `ConnectorError`: the hub recognises it
by class name and starts a sign-in instead of reporting a tool failure.
"""

from __future__ import annotations


class SignInRequired(Exception):
    """There is no usable token for the upstream: the user has to sign in (again)."""

    def __init__(self, upstream: str, reason: str) -> None:
        self.upstream = upstream
        self.reason = reason
        super().__init__(f"You are not signed in to '{upstream}' ({reason}). Sign in with "
                         f"`mcp-access-proxy login {upstream}`.")


class SignInError(Exception):
    """A sign-in could not start or did not complete. The text says why and what to do."""


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
        """The grant itself is dead (revoked, rotated out, expired): signing in again is the only fix."""
        return self.error in ("invalid_grant", "unauthorized_client", "invalid_client")
