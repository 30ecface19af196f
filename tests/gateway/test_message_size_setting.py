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
