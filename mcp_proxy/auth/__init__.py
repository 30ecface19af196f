"""Per-user OAuth on the laptop: loopback sign-in with PKCE, tokens in the keychain, refresh shared by
every proxy process of the user.

- `TokenBroker.for_upstream(cfg, paths, store, events=...)`: access tokens for a REST upstream (`access_token()`,
  `rejected(token)`), sign-in (`begin_sign_in()`), `sign_out()`, `token_info()`, `identity_email`, `region`.
- `mcp_oauth_auth(cfg, paths, store, open_url, events=...)`: an `httpx2.Auth` for remote MCP upstreams (the
  SDK's OAuth client provider with our listener and keychain storage).
- `AuthEvents(emit, reveal, announce)`: what `serve` hears of tokens and sign-ins, given at construction.
- `SignInRequired` (the hub starts a sign-in on it), `SignInError`, `AuthUnavailable`, `RefreshFailed`.

Names are imported lazily so that `serve` pays only for what a config uses.
"""

from __future__ import annotations

from typing import Any

__all__ = ["AuthEvents", "AuthUnavailable", "RefreshFailed", "SignInError", "SignInRequired", "TokenBroker",
           "mcp_oauth_auth"]

_WHERE = {
    "TokenBroker": "mcp_proxy.auth.broker",
    "mcp_oauth_auth": "mcp_proxy.auth.mcp_oauth",
    "SignInRequired": "mcp_proxy.auth.errors",
    "SignInError": "mcp_proxy.auth.errors",
    "AuthUnavailable": "mcp_proxy.auth.errors",
    "RefreshFailed": "mcp_proxy.auth.errors",
    "AuthEvents": "mcp_proxy.auth.events",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'mcp_proxy.auth' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
