"""What the engine reports: the result of one sync, and the state of the policy."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from mcp_proxy.policy.document import format_time

SYNC_OK = ("activated", "unchanged", "not_modified", "ungoverned")


@dataclass(frozen=True)
class SyncReport:
    result: str  # activated | unchanged | not_modified | rejected | failed | ungoverned
    message: str
    revision: str | None = None  # the active revision after the sync
    previous_revision: str | None = None
    newly_available: tuple[str, ...] = ()
    no_longer_available: tuple[str, ...] = ()
    at: float = 0.0
    retry_after: float | None = None  # the server's Retry-After, for the poller

    @property
    def ok(self) -> bool:
        return self.result in SYNC_OK

    @property
    def changed(self) -> bool:
        return self.result == "activated"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["newly_available"] = list(self.newly_available)
        data["no_longer_available"] = list(self.no_longer_available)
        data["at"] = format_time(self.at) if self.at else None
        return data


@dataclass(frozen=True)
class PolicyStatus:
    governed: bool
    source: str | None
    revision: str | None = None
    issued_at: str | None = None
    expires_at: str | None = None
    age_seconds: float | None = None  # since issued_at
    expired: bool = False
    signed: bool = False
    verified_by: str | None = None  # key id of the configured key that verified it
    algorithm: str | None = None
    etag: str | None = None
    fetched_at: str | None = None
    loaded_from: str | None = None  # "source" or "cache"
    tool_entries: int = 0
    keys_configured: int = 0
    last_sync: SyncReport | None = None
    problem: str | None = None  # why nothing is allowed (no policy, refused, expired); None when fine
    warnings: tuple[str, ...] = field(default=())

    def summary(self) -> str:
        if not self.governed:
            return "ungoverned: no [policy] in the config, so every tool is exposed"
        if self.revision is None:
            return f"no valid policy from {self.source}: {self.problem}; no upstream tool is exposed"
        signature = (f"signed ({self.algorithm}) and verified by key {self.verified_by}" if self.verified_by
                     else "signed but not verified (no public_keys configured)" if self.signed
                     else "unsigned (no public_keys configured)")
        age = f"{self.age_seconds / 86400:.1f} days old" if self.age_seconds is not None else ""
        head = f"revision {self.revision} from {self.source}, issued {self.issued_at} ({age}), "
        if self.expired:
            return head + f"EXPIRED at {self.expires_at}: no upstream tool is exposed; {signature}"
        tail = f"expires {self.expires_at}; {signature}"
        if self.last_sync is not None and not self.last_sync.ok:
            tail += f"; last sync {self.last_sync.result}: {self.last_sync.message}"
        return head + tail

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["last_sync"] = self.last_sync.to_dict() if self.last_sync else None
        data["warnings"] = list(self.warnings)
        data["summary"] = self.summary()
        return data
