"""One policy, two backends: the same signed-off policy governs `og.*` whether the upstream is Opsgenie or
JSM Operations (the migration changes three lines of config, not the policy). Real proxy processes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mcp_proxy.sandbox.jsm import seed
from tests._support import opsgenie as og_support
from tests._support.jsm import JsmChecker
from tests._support.jsm import serve as serve_jsm
from tests._support.policy_process import policy_config, policy_doc
from tests._support.proxy import ProxyEnv, text_of
from tests.opsgenie.swagger_check import SwaggerChecker

pytestmark = pytest.mark.anyio

POLICY = {"og.list_alerts": {"state": "approved", "class": "read"},
          "og.get_alert": {"state": "approved", "class": "read"},
          "og.count_alerts": {"state": "pending"},
          "og.close_alert": {"state": "disabled"}}


async def _governed(tmp: Path, upstream: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    tmp.mkdir()
    proxy = ProxyEnv(tmp)
    policy = tmp / "policy.json"
    policy.write_text(json.dumps(policy_doc("r1", POLICY)))
    proxy.write({"og": upstream}, extra=policy_config(policy))
    async with proxy.client(env=proxy.env(**env)) as client:
        listed = sorted(t.name for t in (await client.list_tools()).tools if t.name.startswith("og_"))
        listing = await client.call_tool("og_list_alerts", {"query": "status:open", "limit": 5})
        reading = await client.call_tool("og_get_alert", {"identifier": "101", "identifierType": "tiny"})
        closing = await client.call_tool("og_close_alert", {"identifier": "101", "identifierType": "tiny"})
        counting = await client.call_tool("og_count_alerts", {})
        acking = await client.call_tool("og_acknowledge_alert", {"identifier": "101", "identifierType": "tiny"})
    return {"listed": listed, "listing": listing, "reading": reading,
            "refused": {"close": closing, "count": counting, "ack": acking}}


async def test_one_policy_governs_og_on_both_backends(tmp_path: Path) -> None:
    with og_support.serve(SwaggerChecker.load()) as og, serve_jsm(JsmChecker.load()) as jsm:
        opsgenie = await _governed(tmp_path / "opsgenie", {"kind": "opsgenie", "base_url": og.url, "call_timeout": 20,
                                                           "api_key": "env:OG_KEY"},
                                   {"OG_KEY": og_support.INTEGRATION_KEY})
        # The migration: api, email, api_token (and where the site is); the policy file is the same.
        jsm_side = await _governed(tmp_path / "jsm", {"kind": "opsgenie", "api": "jsm", "base_url": jsm.url,
                                                      "call_timeout": 20, "email": seed.EMAIL,
                                                      "api_token": "env:JSM_TOKEN", "cloud_id": seed.CLOUD_ID},
                                   {"JSM_TOKEN": seed.API_TOKEN})
        writes_seen = (og.requests("POST"), jsm.requests("POST"))
    assert opsgenie["listed"] == jsm_side["listed"]
    assert "og_list_alerts" in jsm_side["listed"] and "og_close_alert" not in jsm_side["listed"]
    for side in (opsgenie, jsm_side):
        assert not side["listing"].is_error and not side["reading"].is_error
        assert side["reading"].structured_content["tinyId"] == "101"
        for name, result in side["refused"].items():
            assert result.is_error, (name, text_of(result))
    for name in ("close", "count", "ack"):  # refused alike, and for the same reason
        texts = [text_of(side["refused"][name]).replace("JSM Operations", "Opsgenie") for side in (opsgenie, jsm_side)]
        assert texts[0] == texts[1], name
    assert writes_seen == ([], []), "nothing the policy refused reached either vendor"
