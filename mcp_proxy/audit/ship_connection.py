"""How the Shipper reaches the collector: the encoder, the resolved headers, the HTTP sender, and pausing.

A pause (a credential, address or configuration failure) stores in the state which failure it was and a
short fingerprint of the collector URL and header values in use; while paused, an automatic cycle sends
nothing unless the fingerprint changed or this process has not tried since the pause began (a restart).
`audit push` (force) always tries.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio

from mcp_proxy.audit.checkpoint import ShipState
from mcp_proxy.audit.ship_accounting import PushReport
from mcp_proxy.fsutil import atomic_write

if TYPE_CHECKING:
    from mcp_proxy.audit.encode import Encoder
    from mcp_proxy.audit.layout import Layout
    from mcp_proxy.audit.transport import Sender
    from mcp_proxy.config import AuditConfig, SecretStore

log = logging.getLogger(__name__)

PAUSE_HINT = "fix [audit] headers/collector, then run `mcp-access-proxy audit push`"


class Connection:
    """The part of the Shipper that holds the encoder and the sender."""

    cfg: AuditConfig
    layout: Layout
    store: SecretStore | None
    clock: Callable[[], float]
    _started: float
    _sender: Sender | None
    _fingerprint: str | None
    _encoder: Encoder | None
    _dirty: bool

    def _emit(self, event: str, fields: dict[str, Any]) -> None:
        raise NotImplementedError

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        raise NotImplementedError

    def _pause(self, state: ShipState, report: PushReport, status: int | None, detail: str,
               fingerprint: str | None) -> None:
        """Stop shipping until the config changes, the process restarts or `audit push` runs."""
        from mcp_proxy.audit.transport import endpoint_shown

        self._dirty = True
        url = endpoint_shown(self.cfg.collector or "", self.cfg.protocol)
        key = f"{status} {url}" if status else f"config {detail}"
        if state.paused_key != key:
            fields: dict[str, Any] = {"url.full": url, "audit.reason": f"{detail}; shipping is paused until "
                                                                      f"the config is fixed ({PAUSE_HINT})"}
            if status:
                fields["http.response.status_code"] = status
            self._emit("audit.ship_failed", fields)
        state.paused_key, state.paused_url, state.paused_fingerprint = key, url, fingerprint
        state.paused_since = self.clock()
        state.consecutive_failures += 1
        state.not_before = 0.0
        state.last_result, state.last_status, state.last_detail = "paused", status, detail
        report.result, report.status, report.detail, report.retry_in = "paused", status, detail, None

    async def _get_encoder(self, state: ShipState, report: PushReport) -> Encoder | None:
        if self._encoder is None:
            from mcp_proxy.audit.encode import ProtocolUnavailable, make_encoder

            try:
                self._encoder = await anyio.to_thread.run_sync(make_encoder, self.cfg.protocol)
            except ProtocolUnavailable as exc:
                self._pause(state, report, None, str(exc), f"protocol {self.cfg.protocol}")
                return None
        return self._encoder

    async def _get_sender(self, state: ShipState, report: PushReport, force: bool) -> Sender | None:
        paused = state.paused_key is not None
        if self._sender is not None and not paused:
            return self._sender
        headers, problem, fingerprint = await self._run(self._resolve_headers)
        if paused and not force and state.paused_fingerprint == fingerprint \
                and (state.paused_since or 0.0) >= self._started:
            # Paused, nothing changed since, and this process has tried already: no request.
            report.result, report.status, report.detail = "paused", state.last_status, state.last_detail or ""
            return None
        if problem is not None:
            self._pause(state, report, None, problem, fingerprint)
            return None
        if self._sender is None or fingerprint != self._fingerprint:
            old, self._sender = self._sender, await anyio.to_thread.run_sync(self._make_sender, headers)
            self._fingerprint = fingerprint
            if old is not None:
                await old.aclose()
        return self._sender

    def _resolve_headers(self) -> tuple[dict[str, str], str | None, str]:
        """In a worker thread (keychains block): the header values, the problem with them if any, and the
        fingerprint of what would be sent."""
        from mcp_proxy.audit.transport import HeaderProblem, check_headers, resolve_headers
        from mcp_proxy.config import SecretError

        try:
            headers, problem = resolve_headers(self.cfg.headers, self.store), None
        except SecretError as exc:
            headers, problem = {}, f"audit.headers: {exc}"
        else:
            try:
                check_headers(self.cfg.headers, headers)
            except HeaderProblem as exc:
                problem = str(exc)
        return headers, problem, self._fingerprint_of(headers, problem)

    def _fingerprint_of(self, headers: dict[str, str], problem: str | None) -> str:
        # Keyed with a random key kept beside state.json (0600), so that state.json alone (pasted into a
        # support ticket, say) cannot be used to guess a short header value offline.
        data = json.dumps([self.cfg.collector, self.cfg.protocol, sorted(headers.items()), problem if not headers
                           else None])
        return hmac.new(self._fingerprint_key(), data.encode(), hashlib.sha256).hexdigest()[:16]

    def _fingerprint_key(self) -> bytes:
        key = getattr(self, "_fp_key", None)
        if key is not None:
            return key
        path = self.layout.root / "fingerprint.key"
        try:
            key = path.read_bytes()
        except OSError:
            key = b""
        if len(key) < 32:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                atomic_write(path, secrets.token_bytes(32), mode=0o600)
                key = path.read_bytes()  # another process may have written its own just now: use the file's
            except OSError:  # unwritable: a key for this process still tells changes apart within it
                key = secrets.token_bytes(32)
        self._fp_key = key
        return key

    def _make_sender(self, headers: dict[str, str]) -> Sender:
        """In a worker thread: the first import of httpx takes a quarter of a second."""
        from mcp_proxy.audit.redact import Redactor
        from mcp_proxy.audit.transport import Sender, secret_parts

        redactor = Redactor()
        redactor.set_secrets(secret_parts(headers.values()))
        assert self.cfg.collector is not None
        return Sender(self.cfg.collector, self.cfg.protocol, headers, use_gzip=self.cfg.gzip,
                      scrub=redactor.scrub, clock=self.clock)
