"""The PagerDuty emulator over real HTTP for the tests: connectors pointed at it (`Sandbox`), and a check of
every exchange it saw against the vendor spec (`serve`, `check_exchanges`)."""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from mcp_proxy.config import UpstreamConfig
from mcp_proxy.config.secrets import SecretRef
from mcp_proxy.connectors.base import Connector, Credential
from mcp_proxy.connectors.pagerduty import build
from mcp_proxy.sandbox.pagerduty import Emulator, create_app
from tests._support.emulators import EmulatorSandbox, served_and_checked
from tests.pagerduty.spec_check import OpenApiChecker

ACCOUNT_KEY = "u+AcctKey0123456789a"  # 20 characters, like PagerDuty's keys
USER_KEY = "u+AliceKey012345678b"
BOB_KEY = "u+BobKey0123456789cd"
KEYS = {ACCOUNT_KEY: None, USER_KEY: "alice@example.com", BOB_KEY: "bob@example.com"}
TOKENS = {  # OAuth access tokens the stand-in validator accepts
    "pdus+_0XAliceAllScopes00001": {"user_id": "PALICE1", "scopes": [
        "incidents.read", "incidents.write", "services.read", "users.read", "schedules.read", "oncalls.read",
        "escalation_policies.read", "teams.read", "priorities.read"]},
    "pdus+_0XAliceReadOnly000002": {"user_id": "PALICE1", "scopes": ["incidents.read", "users.read"]},
    "pdus+_0XBobClassicWrite0003": {"user_id": "PBOB002", "scopes": ["write"]},
    "pdus+_0XAppTokenNoUser00004": {"user_id": None, "scopes": ["write"]},  # an app token: no user
}
USER = "alice@example.com"


def upstream_config(base_url: str | None, **overrides: Any) -> UpstreamConfig:
    values: dict[str, Any] = dict(key="pd", kind="pagerduty", base_url=base_url, call_timeout=6.0, max_retries=3,
                                  api_key=SecretRef("keyring", "pagerduty", "upstreams.pd.api_key"))
    values.update(overrides)
    return UpstreamConfig(**values)


def provider(value: str, scheme: str = "api_key"):
    async def provide() -> Credential:
        return Credential(scheme, value)
    return provide


def validate_bearer(token: str) -> dict[str, Any] | None:
    return TOKENS.get(token)


@dataclass
class Sandbox(EmulatorSandbox):
    emulator: Emulator

    def connector(self, key: str = ACCOUNT_KEY, *, scheme: str = "api_key", user_email: str | None = USER,
                  **cfg: Any) -> Connector:
        transport = cfg.pop("transport", None)
        return self.keep(build(upstream_config(cfg.pop("base_url", self.url), **cfg), provider(key, scheme),
                               user_email=user_email, transport=transport))


def check_exchanges(checker: OpenApiChecker, emulator: Emulator) -> list[str]:
    problems: list[str] = []
    for entry in emulator.log:
        body = json.loads(entry["body"]) if entry["body"] else None
        problems += checker.check_request(entry["method"], entry["path"], entry["query"], entry["headers"], body)
        problems += checker.check_response(entry["method"], entry["path"], entry["status"], entry["response"])
    return problems


def serve(spec: OpenApiChecker, **options: Any) -> AbstractContextManager[Sandbox]:
    options.setdefault("api_keys", KEYS)
    options.setdefault("bearer_validator", validate_bearer)
    return served_and_checked(create_app(**options), Sandbox, lambda box: check_exchanges(spec, box.emulator),
                              "PagerDuty")
