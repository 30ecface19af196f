"""The [audit] keys: defaults, and each bad value reported with its key path and the fix."""

from __future__ import annotations

import pytest

from mcp_proxy.config import ConfigError
from mcp_proxy.config.load import parse_config


def test_defaults():
    audit = parse_config({}).audit
    assert (audit.durability, audit.group_commit_ms, audit.protocol, audit.gzip) == ("group", 5.0, "otlp-json", True)
    assert audit.batch_max_bytes == 1024 * 1024 and audit.max_retry_interval == 300.0


@pytest.mark.parametrize("table,where,fix", [
    ({"group_commit_ms": 5000}, "audit.group_commit_ms", "at most 1000"),
    ({"segment_max_bytes": 200000, "max_disk_bytes": 300000}, "audit.segment_max_bytes", "lower segment_max_bytes"),
    ({"push_interval": 10, "max_retry_interval": 5}, "audit.max_retry_interval", "at least audit.push_interval"),
    ({"batch_max_bytes": 10}, "audit.batch_max_bytes", "at least 1024"),
    ({"durability": "sometimes"}, "audit.durability", "fsync, group"),
    ({"protocol": "syslog"}, "audit.protocol", "otlp-json, otlp-protobuf, ndjson, splunk-hec"),
    ({"max_retry_intervall": 5}, "audit.max_retry_intervall", "did you mean 'max_retry_interval'"),
    ({"collector": "http://collector.example.com:4318"}, "audit.collector", "https"),
])
def test_bad_values_name_the_key_and_the_fix(table, where, fix):
    with pytest.raises(ConfigError) as info:
        parse_config({"audit": table})
    text = str(info.value)
    assert where in text and fix in text
