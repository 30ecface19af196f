"""The demo's scripted client session: what a desktop client and its model would do, narrated.

It drives the real `mcp-access-proxy` process over stdio with the MCP SDK's client, exactly as Claude
Desktop or Cursor would, and prints each step and what came back.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import textwrap
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TextIO

import anyio

from mcp_proxy.sandbox.demo.world import World

PD_INCIDENT = "Q0CHECKOUT1001"  # the seed's triggered P1, assigned to Alice
OG_ALERT_ALIAS = "db-primary-replication-lag"


class Transcript:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.step_no = 0
        color = out.isatty() and not os.environ.get("NO_COLOR")
        self._bold = "\033[1m" if color else ""
        self._dim = "\033[2m" if color else ""
        self._reset = "\033[0m" if color else ""

    def heading(self, text: str) -> None:
        print(f"{self._bold}{text}{self._reset}", file=self.out, flush=True)

    def step(self, text: str) -> None:
        self.step_no += 1
        print(f"\n{self._bold}{self.step_no}. {text}{self._reset}", file=self.out, flush=True)

    def say(self, text: str, indent: int = 3) -> None:
        for line in textwrap.wrap(text, 108 - indent) or [""]:
            print(" " * indent + line, file=self.out, flush=True)

    def quote(self, text: str, limit: int = 6) -> None:
        """What the model reads: its sentences, wrapped, cut to a few lines (the JSON part is summarised
        by the caller from structuredContent)."""
        lines: list[str] = []
        for line in text.strip().splitlines():
            if line.startswith(("{", "[")):
                break
            lines += textwrap.wrap(line, 100) or [""]
        for line in lines[:limit]:
            print(f"   {self._dim}│{self._reset} {line}", file=self.out, flush=True)
        if len(lines) > limit:
            print(f"   {self._dim}│ …{self._reset}", file=self.out, flush=True)

    def rows(self, rows: list[str]) -> None:
        for row in rows:
            print(f"   {self._dim}│{self._reset}   {row}", file=self.out, flush=True)


def _text(result: Any) -> str:
    return "\n".join(getattr(c, "text", "") for c in result.content)


def proxy_env(world: World) -> dict[str, str]:
    from mcp_proxy.sandbox.browser import browser_command

    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_ACCESS_PROXY")}
    env.update({"MCP_ACCESS_PROXY_HOME": str(world.home), "BROWSER": browser_command(), "PYTHONUNBUFFERED": "1"})
    return env


@asynccontextmanager
async def connect(world: World, errlog: TextIO) -> AsyncIterator[Any]:
    import mcp_types as types
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(command=sys.executable,
                                   args=["-m", "mcp_proxy", "--config", str(world.config_path)],
                                   env=proxy_env(world))
    async with Client(stdio_client(params, errlog=errlog), mode="legacy", read_timeout_seconds=60, cache=None,
                      client_info=types.Implementation(name="mcp-access-proxy-demo", version="1.0")) as client:
        yield client


async def run_session(world: World, t: Transcript, errlog: TextIO) -> None:
    """The scripted session. Raises on anything that does not go as the demo says it should."""
    async with connect(world, errlog) as client:
        await _list(client, t)
        await _read(client, t)
        await _more_backends(client, t)
        await _denied(client, t)
        await _sign_in_and_write(client, world, t)
        await _audit(world, t)  # while the proxy runs: its background shipper pushes the records


async def _list(client: Any, t: Transcript) -> None:
    t.step("A client connects and lists the tools")
    info = client.session.server_info if hasattr(client.session, "server_info") else None
    name = getattr(info, "name", "mcp-access-proxy")
    t.say(f"initialize → {name} {getattr(info, 'version', '')}".rstrip())
    tools = (await client.list_tools()).tools
    per_upstream = Counter(tool.name.split("_", 1)[0] for tool in tools)
    own = per_upstream.pop("proxy", 0)
    summary = ", ".join(f"{k} {n}" for k, n in sorted(per_upstream.items()))
    t.say(f"tools/list → {sum(per_upstream.values())} approved tools from {len(per_upstream)} upstreams "
          f"({summary}), plus {own} tools of the proxy's own")
    unavailable = await client.call_tool("proxy_unavailable_tools", {})
    t.say("proxy_unavailable_tools → what exists but the policy does not give Alice:")
    t.quote(_text(unavailable), limit=6)


async def _read(client: Any, t: Transcript) -> None:
    t.step("A read call: the model looks at open Opsgenie alerts")
    result = await client.call_tool("og_list_alerts", {"query": "status: open"})
    if result.is_error:
        raise RuntimeError(f"og_list_alerts failed: {_text(result)}")
    t.say("tools/call og_list_alerts {\"query\": \"status: open\"} →")
    t.quote(_text(result), limit=2)
    t.rows([f"#{a.get('tinyId')} {a.get('priority')} {a.get('status'):<6} {a.get('message')}"
            for a in (result.structured_content or {}).get("alerts", [])])


async def _more_backends(client: Any, t: Transcript) -> None:
    t.step("Two more backends: JSM Operations, and PagerDuty's hosted MCP server")
    result = await client.call_tool("jsm_list_alerts", {"query": "status:open", "limit": 5})
    if result.is_error:
        raise RuntimeError(f"jsm_list_alerts failed: {_text(result)}")
    t.say("tools/call jsm_list_alerts {\"query\": \"status:open\"} → Atlassian's JSM Operations API (basic auth "
          "with Alice's API token from the secret store):")
    t.rows([f"#{a.get('tinyId')} {a.get('priority')} {a.get('status'):<6} {a.get('message')}"
            for a in (result.structured_content or {}).get("alerts", [])])
    arguments = {"request": {"action": "list", "statuses": ["triggered"], "limit": 5}}
    result = await client.call_tool("pdm_browse_incidents", arguments)
    if result.is_error:
        raise RuntimeError(f"pdm_browse_incidents failed: {_text(result)}")
    t.say("tools/call pdm_browse_incidents {\"request\": {\"action\": \"list\", \"statuses\": [\"triggered\"]}} → "
          "forwarded to PagerDuty's own hosted MCP server with Alice's API key; the policy approves this tool and "
          "manage_incidents for add_note only:")
    answer = result.structured_content or {}
    if "response" not in answer:  # the hosted server answers with JSON text: {response, response_summary, more}
        try:
            answer = json.loads(_text(result))
        except ValueError:
            answer = {}
    t.rows([str(answer.get("response_summary", ""))] +
           [f"#{i.get('incident_number')} {i.get('status'):<12} {i.get('urgency'):<4} {i.get('title')}"
            for i in answer.get("response", []) if isinstance(i, dict)])

async def _denied(client: Any, t: Transcript) -> None:
    t.step("A call the policy denies: closing an alert")
    t.say("og_close_alert is disabled by the organisation's policy, so it is not in the list; a client that "
          "calls it anyway (a cached list, a model that guesses) is refused at the call:")
    result = await client.call_tool("og_close_alert", {"identifier": OG_ALERT_ALIAS, "identifier_type": "alias"})
    if not result.is_error:
        raise RuntimeError("og_close_alert was not denied")
    t.quote(_text(result))


async def _sign_in_and_write(client: Any, world: World, t: Transcript) -> None:
    t.step("PagerDuty as Alice herself: sign-in on first use")
    t.say("The first PagerDuty call finds no token for Alice. The proxy opens the browser at the (sandbox) "
          "PagerDuty sign-in page with PKCE; the stand-in browser clicks \"Allow\"; the redirect reaches the "
          "proxy's loopback listener; the code is exchanged for a token kept in the secret store; the call goes on.")
    started = time.monotonic()
    result = await client.call_tool("pd_list_incidents", {"statuses": ["triggered", "acknowledged"]})
    if result.is_error:
        raise RuntimeError(f"pd_list_incidents failed: {_text(result)}")
    t.say(f"tools/call pd_list_incidents → signed in and answered in {time.monotonic() - started:.1f} s:")
    t.quote(_text(result), limit=2)
    t.rows([f"#{i.get('incident_number')} {i.get('status'):<12} {i.get('urgency'):<4} {i.get('title')}"
            for i in (result.structured_content or {}).get("incidents", [])])

    t.step("A write as the signed-in user")
    result = await client.call_tool("pd_acknowledge_incident", {"id": PD_INCIDENT})
    if result.is_error:
        raise RuntimeError(f"pd_acknowledge_incident failed: {_text(result)}")
    t.say(f"tools/call pd_acknowledge_incident {{\"id\": \"{PD_INCIDENT}\"}} →")
    t.quote(_text(result), limit=4)
    emulator = world.apps["pagerduty"].state.emulator
    entry = emulator.log_entries[PD_INCIDENT][0]
    t.say(f"PagerDuty's log entry for it: \"{entry.get('summary')}\" — the vendor saw Alice's own token, so the "
          "change is hers, under her own permissions.")


async def _audit(world: World, t: Transcript) -> None:
    t.step("The audit trail at the organisation's collector")
    collector = world.apps["collector"].state.collector
    wanted = {"og_list_alerts", "jsm_list_alerts", "pdm_browse_incidents", "og_close_alert", "pd_list_incidents",
              "pd_acknowledge_incident"}
    with anyio.move_on_after(15):
        while not wanted <= {r.get("gen_ai.tool.name") for r in collector.records}:
            await anyio.sleep(0.1)
    rows = [r for r in collector.records if r.get("event_name") in (
        "mcp.tool.call", "mcp.tool.denied", "auth.signed_in", "policy.activated")]
    if not wanted <= {r.get("gen_ai.tool.name") for r in rows}:
        raise RuntimeError("the collector did not receive every call's audit record")
    others = [r for r in collector.records if r not in rows]
    kinds = ", ".join(sorted({str(r.get("event_name")) for r in others}))
    t.say(f"{len(collector.records)} records arrived as OTLP/HTTP logs, each with a unique id, the user, the "
          "client, the policy revision and a hash chain: one per call, denial, sign-in and policy activation"
          + (f" (below), and {len(others)} about the proxy itself ({kinds}):" if others else " (below):"))
    for r in rows:
        event = r.get("event_name")
        what = (r.get("gen_ai.tool.name") if event.startswith("mcp.") else
                f"revision {r.get('policy.revision')}" if event == "policy.activated" else
                f"upstream {r.get('upstream')}")
        result = r.get("outcome") or r.get("decision") or ""
        print(f"     {r.get('event_name', ''):<17} {what:<26} {result:<9} {r.get('user.email') or ''}",
              file=t.out, flush=True)


def client_snippet(world: World) -> str:
    """A client config entry that reaches this sandbox (for `demo --keep`)."""
    entry = {"command": sys.executable, "args": ["-m", "mcp_proxy", "--config", str(world.config_path)],
             "env": {"MCP_ACCESS_PROXY_HOME": str(world.home)}}
    return json.dumps({"mcpServers": {"mcp-access-proxy-demo": entry}}, indent=2)


def shell_hint(world: World) -> str:
    return (f"MCP_ACCESS_PROXY_HOME={shlex.quote(str(world.home))} mcp-access-proxy --config "
            f"{shlex.quote(str(world.config_path))} audit tail")

