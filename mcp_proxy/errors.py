"""The proxy's one exception tree.

Every failure the proxy raises on purpose is a `ProxyError`. Its text is written for the person or the
model that will read it: it says what happened and what to do, and it never carries a secret (a token,
a key, a code, a client secret, a header value). That is the rule that lets one boundary, the call
pipeline's error boundary (`server/stages/boundary.py`, with `server/failures.py`), show a `ProxyError`'s
text to the model and nothing of any other exception. `error_type` is the short, stable code an audit
record carries for it.

This module imports nothing of the proxy: every part may raise these, so it sits below all of them.

    ProxyError
    ├── ConfigError             the configuration file is wrong (key path and fix in the text)
    ├── SecretError             a secret reference cannot be resolved
    ├── UpstreamError           an upstream could not run a call
    │   ├── UpstreamUnavailable not connected, closed mid-call, not configured any more
    │   ├── CallTimeout         no answer within the call timeout
    │   └── ToolFailure         the tool ran and failed (a vendor's error, a rate limit, ...)
    ├── AuthError               per-user OAuth
    │   ├── SignInRequired      no usable token: the user has to sign in (REST and MCP upstreams alike)
    │   ├── SignInError         a sign-in could not start or did not complete
    │   │   └── SignInTimeout
    │   ├── AuthUnavailable     a token may exist but cannot be used now (keychain, endpoint down)
    │   ├── RefreshFailed       a refresh failed for a reason a new sign-in would not fix
    │   └── TokenEndpointError  the token endpoint refused a request or could not be reached
    ├── PolicyError             a policy document, its signature, its source or its cache
    ├── AuditError              the audit log or its shipping
    └── LockTimeout             a cross-process lock stayed busy
"""

from __future__ import annotations


class ProxyError(Exception):
    """A failure whose text is safe to show a user or a model: what happened and what to do."""

    error_type = "error"


class ConfigError(ProxyError):
    """One or more problems in the configuration; str() lists each with its key path and fix."""

    error_type = "config_error"

    def __init__(self, problems: list[str], path: object = None) -> None:
        self.problems = problems
        self.path = path
        where = f" in {path}" if path else ""
        plural = "s" if len(problems) > 1 else ""
        super().__init__(f"configuration problem{plural}{where}:\n" + "\n".join(f"  - {p}" for p in problems))


class SecretError(ProxyError):
    """A secret reference (`keyring:NAME`, `env:NAME`) cannot be resolved; the text says how to store it."""

    error_type = "no_credentials"


class UpstreamError(ProxyError):
    """An upstream could not run a call."""

    error_type = "upstream_error"


class UpstreamUnavailable(UpstreamError):
    """The upstream cannot take calls right now; the text says why and what to do."""

    error_type = "upstream_unavailable"


class CallTimeout(UpstreamError):
    """The upstream did not answer a call within its call timeout; the text says a write may have happened."""

    error_type = "timeout"


class ToolFailure(UpstreamError):
    """The tool ran and failed. `message` is for the model, `error_type` for the audit record
    (for example `http_401`, `rate_limited`, `timeout`, `vendor_error`)."""

    def __init__(self, message: str, error_type: str = "vendor_error") -> None:
        super().__init__(message)
        self.message = message
        self.error_type = error_type


class AuthError(ProxyError):
    """Per-user OAuth failed."""

    error_type = "auth_error"


class SignInRequired(AuthError):
    """There is no usable token for the upstream: the user has to sign in (again). The call pipeline's
    sign-in stage starts a sign-in on it; the same type serves REST connectors and MCP upstreams."""

    error_type = "sign_in_required"

    def __init__(self, upstream: str, reason: str) -> None:
        self.upstream = upstream
        self.reason = reason
        super().__init__(f"You are not signed in to '{upstream}' ({reason}). Sign in with "
                         f"`mcp-access-proxy login {upstream}`.")


class SignInError(AuthError):
    """A sign-in could not start or did not complete. The text says why and what to do."""

    error_type = "sign_in_failed"


class SignInTimeout(SignInError):
    """Nobody finished the sign-in in time. `note` says more when something else happened meanwhile (a
    response that did not belong to the sign-in was refused), else it is empty."""

    def __init__(self, message: str, note: str = "") -> None:
        super().__init__(message + note)
        self.note = note


class AuthUnavailable(AuthError):
    """A token exists (or may), but cannot be used right now: keychain locked or missing, client secret
    not stored, token endpoint unreachable. Not a reason to sign in again."""

    def __init__(self, message: str, error_type: str = "auth_unavailable") -> None:
        super().__init__(message)
        self.error_type = error_type


class RefreshFailed(AuthError):
    """A token could not be refreshed for a reason a new sign-in would not fix (server error, rate limit,
    rejected client credentials). The sign-in stays stored; the text says to try again or what to fix."""

    error_type = "refresh_failed"


class TokenEndpointError(AuthError):
    """The token endpoint refused a request (`error` is the OAuth error code, e.g. invalid_grant) or could
    not be reached (`error` is None)."""

    error_type = "token_endpoint"

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


class PolicyError(ProxyError):
    """A policy document, its signature, its source or its cache cannot be used; the text says why."""

    error_type = "policy_error"


class AuditError(ProxyError):
    """The audit log or its shipping failed; the text says why and what to do."""

    error_type = "audit_error"


class LockTimeout(ProxyError):
    """A cross-process lock stayed busy for longer than the caller would wait."""

    error_type = "lock_timeout"
