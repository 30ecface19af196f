"""The policy engine: the active document, sync, last known good, decisions.

Fail closed: once `[policy]` is configured, nothing upstream is allowed until a
valid document is active, and nothing once it has expired. A document that
fails verification is never activated; the previous good one stays active.

The policy never goes back in time: a document issued before the newest one ever activated from the same
source (the high-water mark, policy/store.py) is refused, from the cache or the network. Expiry is judged
against trusted time (mcp_proxy/trusted_time.py): the latest of the local clock, the newest `issued_at`
activated and the `Date` of the policy server's and the collector's answers, so setting the laptop's clock
back does not revive an expired document.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from mcp_proxy.policy import store as lkg
from mcp_proxy.policy.definition import ToolFacts
from mcp_proxy.policy.document import PolicyDocument, format_time
from mcp_proxy.policy.evaluate import Decision, Step, evaluate, toolset_rank
from mcp_proxy.policy.status import PolicyStatus, SyncReport
from mcp_proxy.policy.verify import DocumentChecker, Rejected
from mcp_proxy.trusted_time import TrustedTime

if TYPE_CHECKING:
    from pathlib import Path

    import anyio

    from mcp_proxy.config import PolicyConfig, SecretStore
    from mcp_proxy.paths import Paths

log = logging.getLogger(__name__)

MAX_SLEEP = 60.0  # the run loop wakes at least this often, so clock jumps (suspend) and expiry are noticed
NO_POLICY_RETRY = 5.0  # first retry after a failure while nothing is active
AHEAD_WARNING = 300.0  # an activated document issued this far ahead of the local clock: the clock is behind
UNGOVERNED = Decision(True, "ungoverned", "ungoverned",
                      "ungoverned: no [policy] is configured, so every tool is available")


@dataclass(frozen=True)
class Active:
    doc: PolicyDocument
    raw: bytes
    source: str
    etag: str | None
    signed: bool
    signer: str | None
    alg: str | None
    fetched_at: float
    from_cache: bool


class PolicyEngine:
    def __init__(self, config: PolicyConfig | None, paths: Paths, *, emit: Callable[[str, dict[str, Any]], object],
                 secret_store: SecretStore | None = None, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.paths = paths
        self._emit_hook = emit
        self.secret_store = secret_store
        self.clock = clock  # the local clock; expiry is judged against now(), which also counts trusted time
        self.trusted_time = TrustedTime(paths.data_dir, paths.locks_dir)
        self._active: Active | None = None
        self._problem = "no policy has been synced yet; run `mcp-access-proxy policy sync`"
        self.checker = DocumentChecker(config.public_keys if config is not None else ())
        self._last_sync: SyncReport | None = None
        self._reported_changes: set[tuple[str, str, str]] = set()
        self._last_rejected: str | None = None
        self._expired_noted: str | None = None
        self._known_facts: list[ToolFacts] = []
        self._failures = 0
        self._lock: anyio.Lock | None = None
        self._first_sync: anyio.Event | None = None  # made on the event loop: set when run() has tried once
        self.access_requests: dict[tuple[str, str], tuple[float, str]] = {}  # proxy_request_access, deduplicated

    # -- properties ------------------------------------------------------------
    def now(self) -> float:
        """The latest of the local clock and trusted time: what expiry is judged against."""
        return self.trusted_time.now(self.clock())

    @property
    def state_dir(self) -> Path:
        return self.paths.data_dir / "state"

    @property
    def governed(self) -> bool:
        return self.config is not None

    @property
    def revision(self) -> str | None:
        return self._active.doc.revision if self._active else None

    @property
    def document(self) -> PolicyDocument | None:
        return self._active.doc if self._active else None

    @property
    def problem(self) -> str | None:
        """Why nothing is allowed, or None when a valid, unexpired policy is active (or ungoverned)."""
        if not self.governed:
            return None
        if self._active is None:
            return self._problem
        if self._active.doc.expired(self.now()):
            return f"revision {self._active.doc.revision} expired at {format_time(self._active.doc.expires_at)}"
        return None

    def _emit(self, event: str, fields: dict[str, Any]) -> None:
        try:
            self._emit_hook(event, fields)
        except Exception:  # the audit hook must never break policy handling
            log.exception("could not record the %s event", event)

    def _reject(self, reason: str, raw: bytes | None, origin: str) -> None:
        digest = hashlib.sha256(raw or b"").hexdigest()
        if self._active is None:
            self._problem = f"the {origin} policy was refused: {reason}"
        if digest == self._last_rejected:  # the same bad document on every poll: record it once
            return
        self._last_rejected = digest
        log.warning("policy refused (%s): %s", origin, reason)
        self._emit("policy.rejected", {"reason": reason, "origin": origin, "policy.source": self._source_label(),
                                       "policy.active_revision": self.revision})

    def _activate(self, raw: bytes, etag: str | None, fetched_at: float, *, from_cache: bool,
                  newest: lkg.Mark | None = None) -> bool:
        """Verify and activate; False when it is the active document already. Raises Rejected, also for a
        document issued before `newest`, the high-water mark."""
        doc, signed, signer, alg = self.checker.check(raw)
        current = self._active
        if current is not None and current.raw == raw:
            self._active = Active(current.doc, raw, current.source, etag, signed, signer, alg, fetched_at,
                                  current.from_cache and from_cache)
            return False
        if not from_cache:
            if doc.expired(self.now()):
                raise Rejected(f"revision {doc.revision} expired at {format_time(doc.expires_at)}; "
                               "the administrator must publish one with a later expires_at")
            if current is not None and doc.issued_at < current.doc.issued_at:
                raise Rejected(f"revision {doc.revision} was issued before the active revision "
                               f"{current.doc.revision} ({format_time(doc.issued_at)} < "
                               f"{format_time(current.doc.issued_at)}); an older document is never re-activated")
        if newest is not None and doc.issued_at.timestamp() < newest.issued_at:
            raise Rejected(
                f"revision {doc.revision} was issued before revision {newest.revision}, the newest this laptop has "
                f"activated from this source ({format_time(doc.issued_at)} < {format_time(newest.issued_at)}); an "
                "older document is never re-activated; " + (
                    "the cached copy was replaced with an older one (by another program?), so it is not used, and "
                    "the next sync fetches the current document in full" if from_cache else
                    "the administrator must publish a document with a later issued_at"))
        self._active = Active(doc, raw, self.config.source if self.config else "", etag, signed, signer, alg,
                              fetched_at, from_cache)
        self.trusted_time.observe("policy.issued_at", doc.issued_at.timestamp())
        if doc.issued_at.timestamp() > self.clock() + AHEAD_WARNING:
            log.warning("policy revision %s was issued at %s, after this laptop's clock (%s): the clock is behind; "
                        "expiry is judged against the later time", doc.revision, format_time(doc.issued_at),
                        format_time(self.clock()))
        self._last_rejected = None
        self._expired_noted = None
        self._emit("policy.activated", {
            "policy.revision": doc.revision, "policy.source": self._source_label(), "policy.signer": signer,
            "policy.signed": signed, "policy.verified": signer is not None,
            "origin": "cache" if from_cache else "source",
            "policy.issued_at": format_time(doc.issued_at), "policy.expires_at": format_time(doc.expires_at),
            "policy.previous_revision": current.doc.revision if current else None})
        log.info("policy revision %s active (%s)", doc.revision, "from the cache" if from_cache else "fetched")
        self._note_expiry()
        if self._known_facts:
            self.check_definitions(self._known_facts)
        return True

    def _source_label(self) -> str | None:
        if self.config is None:
            return None
        from mcp_proxy.policy.source import describe

        return describe(self.config.source, self.paths)

    def _note_expiry(self) -> bool:
        """Record (once per revision) that the active document has expired; True when that happened now."""
        active = self._active
        if active is None or not active.doc.expired(self.now()) or self._expired_noted == active.doc.revision:
            return False
        self._expired_noted = active.doc.revision
        log.warning("policy revision %s expired at %s: no upstream tool is exposed", active.doc.revision,
                    format_time(active.doc.expires_at))
        self._emit("policy.expired", {"policy.revision": active.doc.revision,
                                      "policy.expires_at": format_time(active.doc.expires_at)})
        return True

    # -- loading and syncing ---------------------------------------------------
    def load_cached(self) -> None:
        """The last known good document from disk, verified again (signature, schema, expiry)."""
        if not self.governed:
            return
        try:
            cached = lkg.load(self.paths.policy_dir)
        except lkg.CacheError as exc:
            self._reject(str(exc), None, "cached")
            return
        if cached is None:
            return
        assert self.config is not None
        marks = lkg.load_marks(self.state_dir) or {}
        own = marks.get(cached.source)
        if own is None:  # a mark is written with every cached document: this one may have been put there
            self._reject("there is no high-water mark beside it (the proxy's state was deleted or damaged, or this "
                         "is the first start of a version that keeps one), so it may be an older document put "
                         "there; nothing is allowed until the policy source confirms a current one: run "
                         "`mcp-access-proxy policy sync`", cached.raw, "cached")
            return
        configured = marks.get(self.config.source)
        newest = max((m for m in (own, configured) if m is not None), key=lambda m: m.issued_at)
        # The ETag is trusted only with the document it came with (a new source gets a fresh GET too), so that a
        # 304 never keeps an older document swapped into the cache.
        digest = hashlib.sha256(cached.raw).hexdigest()
        etag = configured.etag if configured is not None and configured.sha256 == digest else None
        try:
            self._activate(cached.raw, etag, cached.fetched_at, from_cache=True, newest=newest)
        except Rejected as exc:
            self._reject(str(exc), cached.raw, "cached")

    def _available(self, facts: list[ToolFacts], user: str | None) -> set[str]:
        return {f.exposed_name for f in facts if self.decide(f, user).allowed}

    async def sync(self, *, facts: Iterable[ToolFacts] | None = None, user: str | None = None) -> SyncReport:
        """Fetch once; activate a valid new document; report what changed for `user` over `facts`."""
        import anyio

        from mcp_proxy.policy.source import FetchError, fetch

        if self.config is None:
            return SyncReport("ungoverned", "no [policy] in the config: every tool is available", at=self.clock())
        if self._lock is None:
            self._lock = anyio.Lock()
        known = list(facts) if facts is not None else self._known_facts
        async with self._lock:
            before = self._available(known, user)
            previous = self.revision
            etag = self._active.etag if self._active else None
            try:
                fetched = await fetch(self.config, self.paths, etag, self.secret_store)
            except FetchError as exc:
                await anyio.to_thread.run_sync(self.trusted_time.persist)  # what the collector told us, at least
                if self._active is None:
                    self._problem = f"the policy could not be fetched: {exc}"
                report = SyncReport("failed", str(exc), previous, previous, at=self.clock(),
                                    retry_after=exc.retry_after)
                self._last_sync = report
                return report
            self.trusted_time.observe_http_date("policy_server", fetched.date)
            if fetched.not_modified:
                self._note_expiry()
                report = SyncReport("not_modified", "the server says the policy is unchanged (304)", previous,
                                    previous, at=self.clock())
            else:
                assert fetched.body is not None
                marks = lkg.load_marks(self.state_dir) or {}
                try:
                    activated = self._activate(fetched.body, fetched.etag, self.clock(), from_cache=False,
                                               newest=marks.get(self.config.source))
                except Rejected as exc:
                    self._reject(str(exc), fetched.body, "fetched")
                    report = SyncReport("rejected", str(exc), previous, previous, at=self.clock())
                else:
                    self._save()
                    report = SyncReport("activated" if activated else "unchanged",
                                        f"revision {self.revision} activated" if activated
                                        else f"revision {self.revision} is already active", self.revision,
                                        previous, at=self.clock())
            await anyio.to_thread.run_sync(self.trusted_time.persist)  # the Date, and the issued_at activated
            after = self._available(known, user)
            report = replace(report, newly_available=tuple(sorted(after - before)),
                             no_longer_available=tuple(sorted(before - after)))
            self._last_sync = report
            return report

    def _save(self) -> None:
        active = self._active
        if active is None:
            return
        mark = lkg.Mark(active.doc.issued_at.timestamp(), active.doc.revision, hashlib.sha256(active.raw).hexdigest(),
                        active.etag)
        try:
            if not lkg.save_checked(self.paths.policy_dir, self.state_dir, self.paths.locks_dir,
                                    lkg.Cached(active.raw, active.source, active.etag, active.fetched_at), mark):
                log.info("another proxy process has activated a newer policy than revision %s; the cache keeps it",
                         active.doc.revision)
        except OSError as exc:  # the policy still applies in this process; it just will not survive a restart
            log.warning("could not cache the policy in %s (%s)", self.paths.policy_dir, exc.strerror or exc)

    def _next_delay(self, report: SyncReport) -> float:
        assert self.config is not None
        poll = max(self.config.poll_interval, 0.01)
        if report.ok:
            self._failures = 0
            delay = poll
        else:
            self._failures += 1
            if report.retry_after is not None:
                delay = max(report.retry_after, min(poll, 1.0))
            elif self.problem is None:  # a good policy is active: no hurry, spare the failing server
                delay = poll * min(2 ** self._failures, 8)
            else:  # nothing active: retry soon, then back off to the normal interval
                delay = min(poll, NO_POLICY_RETRY * 2 ** (self._failures - 1))
        return delay * random.uniform(0.8, 1.2)

    def _first_sync_event(self) -> anyio.Event:
        import anyio

        if self._first_sync is None:
            self._first_sync = anyio.Event()
        return self._first_sync

    async def wait_first_sync(self, timeout: float) -> None:
        """With no policy active yet (first start, nothing cached), wait up to `timeout` for run()'s first fetch,
        so that a client's first tools/list is not answered with nothing while the document is on its way."""
        import anyio

        if self.config is None or self._active is not None:
            return
        with anyio.move_on_after(timeout):
            await self._first_sync_event().wait()

    async def run(self, on_change: Callable[[], Awaitable[None]], stop: anyio.Event) -> None:
        """Poll until `stop`; call `on_change` after an activation or when the active policy expires."""
        import anyio

        if self.config is None:
            return
        first_sync = self._first_sync_event()
        next_sync = anyio.current_time()
        while not stop.is_set():
            changed = self._note_expiry()
            if anyio.current_time() >= next_sync:
                try:
                    report = await self.sync()
                except Exception:  # the loop must survive anything one sync does
                    log.exception("policy sync failed unexpectedly")
                    report = SyncReport("failed", "internal error", self.revision, self.revision)
                first_sync.set()
                changed = changed or report.changed
                next_sync = anyio.current_time() + self._next_delay(report)
            if changed:
                try:
                    await on_change()
                except Exception:
                    log.exception("the policy change handler failed")
            sleep = max(0.0, next_sync - anyio.current_time())
            active = self._active
            if active is not None and not active.doc.expired(self.now()):
                sleep = min(sleep, max(0.0, active.doc.expires_at.timestamp() - self.now()) + 0.01)
            with anyio.move_on_after(min(sleep, MAX_SLEEP)):
                await stop.wait()

    # -- decisions -------------------------------------------------------------
    def decide(self, facts: ToolFacts, user: str | None) -> Decision:
        if not self.governed:
            return UNGOVERNED
        return evaluate(self.document, facts, user, self.now(), no_policy_reason=self._problem)

    def explain(self, facts: ToolFacts, user: str | None) -> tuple[Decision, list[Step]]:
        trace: list[Step] = []
        if not self.governed:
            return UNGOVERNED, [Step("policy", None, "no [policy] in the config: the proxy is ungoverned")]
        decision = evaluate(self.document, facts, user, self.now(), no_policy_reason=self._problem, trace=trace)
        return decision, trace

    def argument_rules(self, key: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(fields to redact, fields to hash) in the audit record of a call of tool `key`, per the policy."""
        entry = self.document.tools.get(key) if self.document else None
        return (entry.redact, entry.hash) if entry else ((), ())

    def constraints_for(self, key: str) -> dict[str, tuple[Any, ...]] | None:
        """The argument constraints of tool `key` in the active document (policy/constraints.py), or None."""
        entry = self.document.tools.get(key) if self.document else None
        return dict(entry.constraints) if entry is not None and entry.constraints else None

    def toolset_rank(self, facts: ToolFacts, user: str | None) -> int:
        return toolset_rank(self.document, facts, user)

    def check_definitions(self, facts: Iterable[ToolFacts]) -> None:
        """Emit `tool.definition_changed` once per (key, approved hash, current hash) that differ."""
        self._known_facts = list(facts)
        doc = self.document
        if doc is None:
            return
        for f in self._known_facts:
            entry = doc.tools.get(f.key)
            if entry is None or entry.sha256 is None or entry.state == "disabled" or entry.sha256 == f.definition_hash:
                continue
            marker = (f.key, entry.sha256, f.definition_hash)
            if marker in self._reported_changes:
                continue
            self._reported_changes.add(marker)
            log.warning("the definition of %s changed since it was reviewed; it is pending review again", f.key)
            self._emit("tool.definition_changed", {
                "tool.key": f.key, "gen_ai.tool.name": f.exposed_name, "upstream": f.upstream,
                "approved_sha256": entry.sha256, "current_sha256": f.definition_hash, "policy.state": entry.state,
                "policy.revision": doc.revision})

    def status(self) -> PolicyStatus:
        if self.config is None:
            return PolicyStatus(governed=False, source=None)
        self.checker.keys()  # so that a key that cannot be used is among the warnings
        active, now = self._active, self.now()
        base = PolicyStatus(governed=True, source=self._source_label(), keys_configured=len(self.config.public_keys),
                            last_sync=self._last_sync, problem=self.problem, warnings=self.checker.warnings)
        if active is None:
            return base
        doc = active.doc
        return replace(
            base, revision=doc.revision, issued_at=format_time(doc.issued_at),
            expires_at=format_time(doc.expires_at), age_seconds=max(0.0, now - doc.issued_at.timestamp()),
            expired=doc.expired(now), signed=active.signed, verified_by=active.signer, algorithm=active.alg,
            etag=active.etag, fetched_at=format_time(active.fetched_at) if active.fetched_at else None,
            loaded_from="cache" if active.from_cache else "source", tool_entries=len(doc.tools))

