"""The approval policy: document, sync, signature, evaluation, definition pinning.

The proxy uses `PolicyEngine` (see engine.py); the proxy's own access tools are
in access_tools.py. Heavy modules (cryptography, httpx) are imported lazily.
"""

from __future__ import annotations

from mcp_proxy.policy.definition import ToolFacts, definition_hash
from mcp_proxy.policy.engine import PolicyEngine
from mcp_proxy.policy.evaluate import Decision, Step
from mcp_proxy.policy.status import PolicyStatus, SyncReport

__all__ = ["Decision", "PolicyEngine", "PolicyStatus", "Step", "SyncReport", "ToolFacts", "definition_hash"]
