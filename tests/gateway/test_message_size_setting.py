"""`[server] max_message_bytes`: the client-side message size limit the wire enforces (server/wire.py)."""

from __future__ import annotations

import pytest

from mcp_proxy.config import ConfigError, parse_config


def test_the_default_is_32_mib_and_it_can_be_set():
    assert parse_config({}).server.max_message_bytes == 32 * 1024 * 1024
    assert parse_config({"server": {"max_message_bytes": 1 << 20}}).server.max_message_bytes == 1 << 20


@pytest.mark.parametrize("value, words", [(1000, "at least"), ("big", "whole number"), (True, "whole number")])
def test_a_bad_value_names_the_key(value, words):
    with pytest.raises(ConfigError) as info:
        parse_config({"server": {"max_message_bytes": value}})
    assert "server.max_message_bytes" in str(info.value) and words in str(info.value)


def test_an_unknown_server_key_is_reported():
    with pytest.raises(ConfigError, match="server"):
        parse_config({"server": {"max_line": 5}})


def test_the_configured_limit_reaches_the_running_proxy(proxy):
    import json

    from tests._support.proxy import stdio_upstream
    from tests._support.wire import converse, initialize_line, spawn

    proxy.write({"f": stdio_upstream()}, extra="[server]\nmax_message_bytes = 65536\n")
    p = spawn(proxy)
    big = json.dumps({"jsonrpc": "2.0", "id": 9, "method": "tools/list", "params": {"_meta": {"x": "y" * 100_000}}})
    replies = converse(p, [initialize_line("2025-11-25"), big,
                           json.dumps({"jsonrpc": "2.0", "id": 2, "method": "ping"})], {1, 2})
    refused = [m for m in replies if m.get("id") is None and "error" in m]
    assert refused and "max_message_bytes" in refused[0]["error"]["message"]
    assert not any(m.get("id") == 9 for m in replies), "the over-limit request was skipped, not run"
