"""The Statuspage emulator over real HTTP for the tests: connectors pointed at it (`Sandbox`), and a check of
every exchange it saw against the vendor spec (`serve`, `check_exchanges`)."""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from mcp_proxy.config import UpstreamConfig
from mcp_proxy.config.secrets import SecretRef
from mcp_proxy.connectors.base import Connector, Credential
from mcp_proxy.connectors.statuspage import build
from mcp_proxy.sandbox.statuspage import ORG, PAGE, Emulator, create_app
from tests._support.emulators import EmulatorSandbox, served_and_checked
from tests.statuspage.spec_check import OpenApiChecker

KEY = "sp0key1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1"  # 64 hex-ish, like Statuspage's
OTHER_KEY = "sp0other0key000000000000000000000000000000000000000000000000000"
FAST = 1000.0  # requests/s: tests do not wait for the 1/s default pacing unless they test it


def upstream_config(base_url: str | None, **overrides: Any) -> UpstreamConfig:
    values: dict[str, Any] = dict(key="sp", kind="statuspage", base_url=base_url, call_timeout=6.0, max_retries=3,
                                  page_id=PAGE, organization_id=ORG, rate_limit_per_second=FAST,
                                  api_key=SecretRef("keyring", "statuspage", "upstreams.sp.api_key"))
    values.update(overrides)
    return UpstreamConfig(**values)


def provider(value: str, scheme: str = "api_key"):
    async def provide() -> Credential:
        return Credential(scheme, value)
    return provide


@dataclass
class Sandbox(EmulatorSandbox):
    # url: the API root, the server's URL + /v1
    emulator: Emulator

    def connector(self, key: str = KEY, *, scheme: str = "api_key", **cfg: Any) -> Connector:
        transport = cfg.pop("transport", None)
        return self.keep(build(upstream_config(cfg.pop("base_url", self.url), **cfg), provider(key, scheme),
                               user_email="alice@example.com", transport=transport))


def check_exchanges(checker: OpenApiChecker, emulator: Emulator) -> list[str]:
    problems: list[str] = []
    for entry in emulator.log:
        try:
            body = json.loads(entry["body"]) if entry["body"] else None
        except ValueError:
            problems.append(f"{entry['method']} {entry['path']}: the body is not JSON")
            continue
        try:
            problems += checker.check_request(entry["method"], entry["path"], entry["query"], entry["headers"], body)
            problems += checker.check_response(entry["method"], entry["path"], entry["status"], entry["response"])
        except AssertionError as exc:  # no such operation
            problems.append(str(exc))
    return problems


def serve(spec: OpenApiChecker, **options: Any) -> AbstractContextManager[Sandbox]:
    options.setdefault("api_keys", (KEY, OTHER_KEY))
    return served_and_checked(create_app(**options), lambda url, emulator: Sandbox(url + "/v1", emulator),
                              lambda box: check_exchanges(spec, box.emulator), "Statuspage")
