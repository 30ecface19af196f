"""What can go wrong with per-user OAuth, as exceptions whose text a user may see.

No message ever contains a token, a code, a client secret or a PKCE verifier.
The classes live in the proxy's one exception tree (`mcp_proxy/errors.py`);
they are named here too for the auth package's callers.
"""

from __future__ import annotations

import re

from mcp_proxy.errors import (
    AuthUnavailable,
    RefreshFailed,
    SignInError,
    SignInRequired,
    SignInTimeout,
    TokenEndpointError,
)

__all__ = [
    "AuthUnavailable",
    "RefreshFailed",
    "SignInError",
    "SignInRequired",
    "SignInTimeout",
    "TokenEndpointError",
    "oauth_error_code",
]

_ERROR_CODE = re.compile(r"[a-z_]{1,40}")


def oauth_error_code(value: object) -> str | None:
    """An OAuth `error` value fit to show a user or a model: a short code of lowercase letters and `_`
    (RFC 6749 §5.2, §4.1.2.1), else None. Whoever sends it chooses the text (a vendor, or any local web page
    that points a browser at the callback), so nothing else of it is ever passed on."""
    return value if isinstance(value, str) and _ERROR_CODE.fullmatch(value) else None
