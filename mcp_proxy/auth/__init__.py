"""Per-user OAuth on the laptop: loopback sign-in with PKCE, tokens in the keychain, refresh shared by
every proxy process of the user.

- `TokenBroker.for_upstream(cfg, paths, store)`: access tokens for a REST upstream (`access_token()`,
  `rejected(token)`), sign-in (`begin_sign_in()`), `sign_out()`, `token_info()`, `identity_email`, `region`.
- `mcp_oauth_auth(cfg, paths, store, open_url)`: an `httpx2.Auth` for remote MCP upstreams (the SDK's
  OAuth client provider with our listener and keychain storage).
- `SignInRequired` (the hub starts a sign-in on it), `SignInError`, `AuthUnavailable`.

Names are imported lazily so that `serve` pays only for what a config uses.
"""

from __future__ import annotations

from typing import Any

__all__ = ["AuthUnavailable", "SignInError", "SignInRequired", "TokenBroker", "mcp_oauth_auth"]

_WHERE = {
    "TokenBroker": "mcp_proxy.auth.broker",
    "mcp_oauth_auth": "mcp_proxy.auth.mcp_oauth",
    "SignInRequired": "mcp_proxy.auth.errors",
    "SignInError": "mcp_proxy.auth.errors",
    "AuthUnavailable": "mcp_proxy.auth.errors",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'mcp_proxy.auth' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
