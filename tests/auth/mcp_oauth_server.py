"""A small remote MCP server that demands OAuth bearer tokens from the sandbox OAuth server: RFC 9728
protected-resource metadata, 401 with `WWW-Authenticate: Bearer resource_metadata=...`, built with the
SDK's own resource-server helpers."""

from __future__ import annotations

from typing import Any

import mcp_types as types
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.lowlevel import Server

from mcp_proxy.sandbox.asgi_thread import RunningServer, free_port, serve_in_thread
from mcp_proxy.sandbox.oauth_server import OAuthServer

ECHO = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}


class _Verifier:
    def __init__(self, oauth: OAuthServer) -> None:
        self.oauth = oauth
        self.seen: list[str] = []
        self.tokens: list[str] = []  # every bearer token it was shown, in order

    async def verify_token(self, token: str) -> AccessToken | None:
        self.tokens.append(token)
        info = self.oauth.bearer_validator(token)
        self.seen.append("ok" if info else "refused")
        if info is None:
            return None
        grant = self.oauth.access.get(token)
        return AccessToken(token=token, client_id=grant.client_id if grant else "?", scopes=info["scopes"],
                           resource=info.get("resource"))


def start_mcp_server(oauth: OAuthServer, oauth_url: str) -> tuple[RunningServer, _Verifier, str]:
    """Serve the MCP server on a free port; returns (server, verifier, its /mcp URL)."""

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[types.Tool(name="echo", description="Echo the text back.",
                                                       input_schema=ECHO)])

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        text = (params.arguments or {}).get("text", "")
        return types.CallToolResult(content=[types.TextContent(type="text", text=f"echo: {text}")])

    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    verifier = _Verifier(oauth)
    server = Server("oauth-echo", version="1.0", on_list_tools=list_tools, on_call_tool=call_tool)
    app = server.streamable_http_app(
        auth=AuthSettings(issuer_url=oauth_url, resource_server_url=url, validate_token_resource=True),
        token_verifier=verifier,
    )
    return serve_in_thread(app, port=port), verifier, url
