"""Fixtures for the policy tests: keys, documents, tools, engines and a local policy server."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import pytest

from mcp_proxy.config import PolicyConfig
from mcp_proxy.paths import Paths
from mcp_proxy.policy import PolicyEngine, ToolFacts, definition_hash
from mcp_proxy.policy.signature import generate_key_pair, load_private_key, sign_jws

NOW = 1_800_000_000.0  # a fixed "now" for documents and clocks


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_doc(revision: str = "r1", *, issued: float = NOW - 3600, expires: float = NOW + 7 * 86400,
             **fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"schema": 1, "revision": revision, "issued_at": iso(issued), "expires_at": iso(expires),
                           "defaults": {"auto_approve": "none"}, "tools": {}}
    doc.update(fields)
    return doc


def tool(key: str, *, read_only: bool = False, description: str = "does a thing", destructive: bool = False,
         schema: dict | None = None) -> ToolFacts:
    upstream, name = key.split(".", 1)
    schema = schema or {"type": "object", "properties": {}}
    return ToolFacts(key=key, upstream=upstream, name=name, exposed_name=f"{upstream}_{name}",
                     definition_hash=definition_hash(name, description, schema), read_only=read_only,
                     destructive=destructive, description=description,
                     annotations={"readOnlyHint": True} if read_only else {})


def approved(facts: ToolFacts, cls: str = "read") -> dict[str, Any]:
    return {"state": "approved", "class": cls, "sha256": facts.definition_hash}


@dataclass
class Keys:
    ed_private: bytes
    ed_public: str
    es_private: bytes
    es_public: str
    other_private: bytes
    other_public: str

    def sign(self, doc: dict | bytes, private: bytes | None = None) -> bytes:
        payload = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
        return sign_jws(payload, load_private_key(private or self.ed_private)).encode()


@pytest.fixture(scope="session")
def keys() -> Keys:
    ed = generate_key_pair("EdDSA")
    es = generate_key_pair("ES256")
    other = generate_key_pair("EdDSA")
    return Keys(ed[0], ed[1].decode(), es[0], es[1].decode(), other[0], other[1].decode())


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    root = tmp_path / "home"
    return Paths(root / "config", root / "data", root / "cache", root / "logs")


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Harness:
    paths: Paths
    clock: Clock
    events: list[tuple[str, dict]] = field(default_factory=list)

    def emit(self, name: str, fields: dict) -> None:
        self.events.append((name, fields))

    def named(self, name: str) -> list[dict]:
        return [f for n, f in self.events if n == name]

    def engine(self, source: str, *, public_keys: tuple[str, ...] = (), poll_interval: float = 300.0,
               timeout: float = 2.0, headers: dict | None = None) -> PolicyEngine:
        config = PolicyConfig(source=source, public_keys=public_keys, poll_interval=poll_interval, timeout=timeout,
                              headers=headers or {})
        return PolicyEngine(config, self.paths, emit=self.emit, clock=self.clock)


@pytest.fixture
def harness(paths: Paths) -> Harness:
    return Harness(paths, Clock())


@pytest.fixture
def write_policy(tmp_path: Path) -> Callable[[dict | bytes], str]:
    path = tmp_path / "policy.json"

    def write(doc: dict | bytes) -> str:
        path.write_bytes(doc if isinstance(doc, bytes) else json.dumps(doc).encode())
        return str(path)

    return write


@pytest.fixture
def policy_server():
    """A running policy server emulator; yields (app, base_url)."""
    from mcp_proxy.sandbox.asgi_thread import serve_in_thread
    from mcp_proxy.sandbox.policy_server import create_app

    app = create_app(document=json.dumps(make_doc()).encode(), delay=3.0)
    server = serve_in_thread(app)
    try:
        yield app, server.url + "/policy.jws"
    finally:
        app.state.fault = None
        server.stop()


