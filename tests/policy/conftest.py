"""Fixtures for the policy tests: keys, engines, a policy file and a local policy server. The documents, tools
and the engine harness live in tests/_support/policy_docs.py and tests/_support/policy_engine.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from mcp_proxy.paths import Paths
from mcp_proxy.policy.signature import generate_key_pair
from tests._support.policy_docs import make_doc
from tests._support.policy_engine import Clock, Harness, Keys


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
