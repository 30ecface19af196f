"""Every REST tool through the real proxy process: what the tests/rest_e2e modules share.

A module's `live` fixture spawns `mcp-access-proxy` (stdio) with `kind = "statuspage" | "opsgenie" |
"pagerduty"` upstreams whose `base_url` points at the emulator, keys via `env:`. Every call goes
through MCP `tools/call`; `Live.call` checks the result's shape (structuredContent present, the text
carrying the same data) and counts the tools called, so the module's last test can check that every
tool was. When the module ends, every exchange the emulator saw is checked against the vendor spec
(`served_and_checked`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests._support.proxy import ProxyEnv, text_of


def json_of_text(text: str) -> Any:
    """The JSON document a connector's text carries after its summary lines (None when there is none)."""
    start = text.find("\n{")
    if start < 0:
        return None
    body = text[start + 1:]
    if "\n… (cut:" in body:
        return None
    return json.loads(body)


SCALARS_THE_TEXT_NAMES = ("id", "requestId", "alertId", "count", "total")


@dataclass
class Live:
    proxy: ProxyEnv
    client: Any
    called: Counter = field(default_factory=Counter)

    async def call(self, name: str, arguments: dict[str, Any] | None = None, *, ok: bool = True) -> Any:
        """Call an exposed tool; with ok=True the result must be a success whose text matches its structure."""
        result = await self.client.call_tool(name, arguments or {})
        self.called[name] += 1
        if ok:
            assert not result.is_error, f"{name}: {text_of(result)}"
            structured = result.structured_content
            assert isinstance(structured, dict), f"{name}: no structuredContent"
            text = text_of(result)
            carried = json_of_text(text)
            assert carried is None or carried == structured, f"{name}: the text and structuredContent differ"
            if carried is None:  # a sentence: it must still name what the structure identifies
                for key in SCALARS_THE_TEXT_NAMES:
                    if isinstance(structured.get(key), (str, int)) and not isinstance(structured[key], bool):
                        assert str(structured[key]) in text, f"{name}: the text does not mention {key}"
        return result

    async def error(self, name: str, arguments: dict[str, Any] | None = None) -> str:
        """Call a tool that must fail; returns the error text."""
        result = await self.call(name, arguments, ok=False)
        assert result.is_error, f"{name} should have failed: {text_of(result)[:300]}"
        return text_of(result)


@dataclass
class Served:
    """A vendor module's emulator and its API root (the upstream's base_url)."""

    url: str
    emulator: Any


def assert_secrets_kept(proxy: ProxyEnv, *secrets: str) -> None:
    """No key in the proxy's stderr or in any file it keeps under its home."""
    stderr = proxy.stderr_text()
    for secret in secrets:
        assert secret not in stderr
        assert [str(p) for p in proxy.home.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()] == []


def whole_module_ran(request: pytest.FixtureRequest) -> bool:
    """True when every test of the calling module was selected (the coverage test means nothing otherwise)."""
    module = request.module
    defined = {name for name in dir(module) if name.startswith("test_")}
    selected = {getattr(item, "originalname", item.name) for item in request.session.items
                if getattr(item, "module", None) is module}
    return defined <= selected


@contextmanager
def served_and_checked(vendor: str, app: Any, checker: Any, check: Callable[[Any, Any], list[str]],
                       path: str = "") -> Iterator[Served]:
    """The emulator `app` on 127.0.0.1 for a module; when the module ends, every exchange it saw is checked
    against the vendor's spec."""
    from mcp_proxy.sandbox.asgi_thread import serve_in_thread

    spec = checker.load()
    server = serve_in_thread(app)
    served = Served(server.url + path, app.state.emulator)
    try:
        yield served
    finally:
        server.stop()
    problems = check(spec, served.emulator)
    assert not problems, f"exchanges that do not match the {vendor} spec:\n" + "\n".join(problems)
