"""The Opsgenie emulator over real HTTP for the tests: connectors pointed at it (`Sandbox`), and a check of
every exchange it saw against the vendor spec (`serve`, `check_exchanges`)."""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from mcp_proxy.config import UpstreamConfig
from mcp_proxy.config.secrets import SecretRef
from mcp_proxy.connectors.base import Connector, Credential
from mcp_proxy.connectors.opsgenie import build
from mcp_proxy.sandbox.opsgenie import Emulator, create_app
from tests._support.emulators import EmulatorSandbox, served_and_checked
from tests.opsgenie.swagger_check import SwaggerChecker

INTEGRATION_KEY = "0f5e1c9a-2b7d-4e8f-9a3c-integration01"
CONFIG_KEY = "7c2d9e4b-1a6f-4b3e-8d5c-configuration1"
USER = "alice@example.com"


def upstream_config(base_url: str | None, **overrides: Any) -> UpstreamConfig:
    values: dict[str, Any] = dict(key="og", kind="opsgenie", base_url=base_url, call_timeout=4.0, max_retries=3,
                                  api_key=SecretRef("keyring", "opsgenie", "upstreams.og.api_key"))
    values.update(overrides)
    return UpstreamConfig(**values)


def key_provider(key: str):
    async def provide() -> Credential:
        return Credential("api_key", key)
    return provide


@dataclass
class Sandbox(EmulatorSandbox):
    emulator: Emulator

    def connector(self, key: str = INTEGRATION_KEY, *, user_email: str | None = USER, **cfg: Any) -> Connector:
        return self.keep(build(upstream_config(cfg.pop("base_url", self.url), **cfg), key_provider(key),
                               user_email=user_email, transport=cfg.pop("transport", None)))


def check_exchanges(checker: SwaggerChecker, emulator: Emulator) -> list[str]:
    problems: list[str] = []
    for entry in emulator.log:
        body = json.loads(entry["body"]) if entry["body"] else None
        problems += checker.check_request(entry["method"], entry["path"], entry["query"], body)
        problems += checker.check_response(entry["method"], entry["path"], entry["status"], entry["response"])
    return problems


def serve(spec: SwaggerChecker, **options: Any) -> AbstractContextManager[Sandbox]:
    app = create_app(integration_keys=[INTEGRATION_KEY], config_keys=[CONFIG_KEY], **options)
    return served_and_checked(app, Sandbox, lambda box: check_exchanges(spec, box.emulator), "Opsgenie")
