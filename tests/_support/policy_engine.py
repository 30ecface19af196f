"""Driving a PolicyEngine in the policy tests: signing keys, a clock the test sets, and a harness that builds
engines and records the events they emit."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from mcp_proxy.config import PolicyConfig
from mcp_proxy.paths import Paths
from mcp_proxy.policy import PolicyEngine
from mcp_proxy.policy.signature import load_private_key, sign_jws
from tests._support.policy_docs import NOW


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
