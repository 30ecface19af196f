"""The files in client-configs/ are valid for their client and for the proxy."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mcp_proxy.clients import CLIENTS, looks_like_ours
from mcp_proxy.clients.jsonedit import JsonSyntaxError, parse
from mcp_proxy.config import load_config

EXAMPLES = Path(__file__).resolve().parents[2] / "client-configs"
JSON_FILES = {
    "claude-desktop.json": "claude-desktop",
    "claude-desktop.uvx.json": "claude-desktop",
    "cursor.json": "cursor",
    "cursor.uvx.json": "cursor",
    "vscode.mcp.json": "vscode",
    "claude-code.mcp.json": "claude-code",
    "windsurf.json": "windsurf",
    "windsurf.uvx.json": "windsurf",
}


def test_every_json_example_is_listed_and_explained():
    on_disk = {p.name for p in EXAMPLES.glob("*.json")}
    assert set(JSON_FILES) <= on_disk
    readme = (EXAMPLES / "README.md").read_text()
    for name in on_disk | {"proxy-config.example.toml"}:
        assert f"`{name}`" in readme, f"{name} is not explained in client-configs/README.md"


@pytest.mark.parametrize(("name", "client"), sorted(JSON_FILES.items()))
def test_json_example_has_the_client_shape(name, client):
    spec = CLIENTS[client]
    text = (EXAMPLES / name).read_text()
    doc = parse(text, spec.jsonc).value
    if not spec.jsonc:
        import json

        assert json.loads(text) == doc  # strict JSON, as the client reads it
    (entry,) = doc[spec.servers_key].values()
    assert set(doc) == {spec.servers_key}
    assert looks_like_ours(entry)
    assert os.path.isabs(entry["command"]) or entry["command"].startswith("${HOME}/")
    if spec.entry_type:
        assert entry["type"] == spec.entry_type
    if "uvx" in name or name.startswith("vscode"):
        text_args = " ".join(entry["args"]) + text
        assert "--from" in text_args and "mcp-access-proxy" in text_args
    config = [a for a in entry["args"] if a.endswith(".toml")]
    assert all(os.path.isabs(c) for c in config)


def test_vscode_example_needs_comments_and_strict_clients_would_refuse_it():
    text = (EXAMPLES / "vscode.mcp.json").read_text()
    with pytest.raises(JsonSyntaxError, match="comment"):
        parse(text, allow_comments=False)


def test_proxy_config_example_is_valid_and_has_every_vendor():
    config = load_config(EXAMPLES / "proxy-config.example.toml")
    kinds = {u.kind for u in config.upstreams.values()}
    assert kinds == {"pagerduty", "opsgenie", "statuspage", "uptimeobserver", "mcp"}
    assert config.upstreams["pd"].auth == "oauth" and config.upstreams["pd"].oauth is not None
    assert config.policy is not None and config.audit.collector
    assert {u.transport for u in config.upstreams.values() if u.kind == "mcp"} == {"streamable-http", "stdio"}


def test_every_key_in_the_proxy_config_example_is_commented():
    lines = (EXAMPLES / "proxy-config.example.toml").read_text().splitlines()
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or stripped.startswith("["):
            continue
        assert lines[i - 1].strip().startswith("#") or "#" in line, f"line {i + 1} has no comment: {line!r}"
