"""Where tokens live: the OS keychain (through `SecretStore`), never a plain file unless the user
opted in to the 0600 file store.

Per upstream there are two records:
- the secret one in the keychain, entry `oauth:<key>`: access and refresh token, expiry, and a
  generation number that grows with every sign-in and refresh;
- a small non-secret one in `<data dir>/tokens/<key>.json`: who signed in, scopes, region, expiry.
  Start-up, `doctor` and `whoami` read it without touching the keychain (no unlock prompt, no D-Bus
  round trip on the serve path).

Windows Credential Manager refuses secrets over 2560 bytes (1280 UTF-16 characters). PagerDuty's
tokens fit easily; an MCP server's JWT access token may not, so long values are split over
`NAME#1..#N` entries, with a head entry naming the count and a hash that proves the parts belong
together.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mcp_proxy.config import SecretError, SecretStore
from mcp_proxy.fsutil import FileLock, atomic_write
from mcp_proxy.paths import Paths

CHUNK_CHARS = 1000  # well below Windows' 1280-character limit
_HEAD = "chunked:"


class SecretVault:
    """JSON values in the secret store, split into parts when long."""

    def __init__(self, store: SecretStore, paths: Paths) -> None:
        self.store = store
        self.paths = paths

    def _write_lock(self) -> FileLock | None:
        # The file store rewrites one JSON file: serialise writers across processes so none is lost.
        if self.store.backend != "file":
            return None
        return FileLock(self.paths.locks_dir / "secret-file-store.lock", timeout=15)

    def get_json(self, name: str) -> Any | None:
        for _ in range(5):
            head = self.store.get(name)
            if head is None:
                return None
            if not head.startswith(_HEAD):
                return _loads(head)
            count, digest = _parse_head(head)
            parts = [self.store.get(f"{name}#{i}") or "" for i in range(1, count + 1)]
            value = "".join(parts)
            if hashlib.sha256(value.encode()).hexdigest()[:16] == digest:
                return _loads(value)
            time.sleep(0.05)  # a writer is between parts and head: read again
        raise SecretError(f"the keychain entry {name!r} is damaged; sign in again to replace it")

    def put_json(self, name: str, value: Any) -> None:
        text = json.dumps(value, separators=(",", ":"))
        lock = self._write_lock()
        if lock is not None:
            lock.acquire()
        try:
            old = self.store.get(name)
            old_count = _parse_head(old)[0] if old and old.startswith(_HEAD) else 0
            if len(text) <= CHUNK_CHARS:
                self.store.set(name, text)
                count = 0
            else:
                parts = [text[i:i + CHUNK_CHARS] for i in range(0, len(text), CHUNK_CHARS)]
                for i, part in enumerate(parts, 1):
                    self.store.set(f"{name}#{i}", part)
                count = len(parts)
                self.store.set(name, f"{_HEAD}{count}:{hashlib.sha256(text.encode()).hexdigest()[:16]}")
            for i in range(count + 1, old_count + 1):
                self.store.delete(f"{name}#{i}")
        finally:
            if lock is not None:
                lock.release()

    def delete(self, name: str) -> bool:
        lock = self._write_lock()
        if lock is not None:
            lock.acquire()
        try:
            old = self.store.get(name)
            if old and old.startswith(_HEAD):
                for i in range(1, _parse_head(old)[0] + 1):
                    self.store.delete(f"{name}#{i}")
            return self.store.delete(name) if old is not None else False
        finally:
            if lock is not None:
                lock.release()


def _parse_head(head: str) -> tuple[int, str]:
    try:
        count, digest = head[len(_HEAD):].split(":", 1)
        return int(count), digest
    except ValueError:
        raise SecretError("a keychain entry of the proxy is damaged; sign in again to replace it") from None


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise SecretError("a keychain entry of the proxy is not readable; sign in again to replace it") from None


@dataclass(frozen=True)
class TokenRecord:
    """One upstream's tokens and what is known about them."""

    access_token: str
    refresh_token: str | None
    expires_at: float | None  # epoch seconds; None: the vendor gave no lifetime
    issued_at: float
    generation: int
    client_id: str
    scopes: tuple[str, ...] = ()  # granted
    requested: tuple[str, ...] = ()
    missing_scopes: tuple[str, ...] = ()
    identity_email: str | None = None
    identity_name: str | None = None
    region: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # non-secret ID-token claims worth keeping

    def __repr__(self) -> str:  # never show a token
        return (f"TokenRecord(generation={self.generation}, expires_at={self.expires_at}, "
                f"identity_email={self.identity_email!r}, scopes={self.scopes!r})")

    def with_(self, **changes: Any) -> TokenRecord:
        return replace(self, **changes)

    def secrets(self) -> tuple[str, ...]:
        """The values that must never appear in a log or an audit record."""
        return tuple(t for t in (self.access_token, self.refresh_token) if t)


@dataclass(frozen=True)
class TokenInfo:
    """The non-secret part, for `doctor`, `whoami` and start-up."""

    expires_at: float | None
    issued_at: float | None
    generation: int
    client_id: str | None
    scopes: tuple[str, ...]
    requested: tuple[str, ...]
    missing_scopes: tuple[str, ...]
    identity_email: str | None
    identity_name: str | None
    region: str | None
    has_refresh_token: bool
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. Atlassian's account_id


Signature = tuple[int, int, int] | None  # see TokenStore.signature
NOT_LOOKED: Signature = (-1, -1, -1)  # no stored state has this signature: not looked at yet


class TokenStore:
    """The two records of one upstream."""

    def __init__(self, key: str, store: SecretStore, paths: Paths) -> None:
        self.key = key
        self.secret_name = f"oauth:{key}"
        self.vault = SecretVault(store, paths)
        self.meta_path: Path = paths.tokens_dir / f"{key}.json"
        # The digest of the last refresh token the vendor refused (see forget / refused_was).
        self.refused_path: Path = paths.tokens_dir / f"{key}.refused"

    def load(self) -> TokenRecord | None:
        """The stored record, or None. Raises SecretError when the keychain cannot be used."""
        secret = self.vault.get_json(self.secret_name)
        if not isinstance(secret, dict) or not secret.get("access_token"):
            return None
        meta = self._read_meta() or {}
        same = meta.get("generation") == secret.get("generation")
        return TokenRecord(
            access_token=str(secret["access_token"]),
            refresh_token=secret.get("refresh_token") or None,
            expires_at=_number(secret.get("expires_at")),
            issued_at=_number(secret.get("issued_at")) or 0.0,
            generation=int(secret.get("generation") or 0),
            client_id=str(secret.get("client_id") or ""),
            scopes=tuple(meta.get("scopes") or ()),
            requested=tuple(meta.get("requested") or ()),
            missing_scopes=tuple(meta.get("missing_scopes") or ()) if same else (),
            identity_email=meta.get("identity_email"),
            identity_name=meta.get("identity_name"),
            region=meta.get("region"),
            extra=dict(meta.get("extra") or {}),
        )

    def save(self, record: TokenRecord) -> None:
        # Keychain first: a reader that sees the new metadata finds the new token too.
        self.vault.put_json(self.secret_name, {
            "access_token": record.access_token, "refresh_token": record.refresh_token,
            "expires_at": record.expires_at, "issued_at": record.issued_at,
            "generation": record.generation, "client_id": record.client_id,
        })
        self._write_meta(record)

    def _write_meta(self, record: TokenRecord) -> None:
        meta = {
            "generation": record.generation, "expires_at": record.expires_at, "issued_at": record.issued_at,
            "client_id": record.client_id, "scopes": list(record.scopes), "requested": list(record.requested),
            "missing_scopes": list(record.missing_scopes), "identity_email": record.identity_email,
            "identity_name": record.identity_name, "region": record.region, "extra": record.extra,
            "has_refresh_token": bool(record.refresh_token), "store": self.vault.store.backend,
        }
        atomic_write(self.meta_path, json.dumps(meta, indent=1).encode("utf-8"), mode=0o600)

    def forget(self, refused: str | None = None) -> bool:
        """Remove the records. `refused`: the refresh token the vendor just refused, whose digest is kept,
        so that a process holding an unstored successor of it can tell that the removal was about the
        retired token, not a logout or a new sign-in (broker.py)."""
        existed = self.vault.delete(self.secret_name)
        for path in (self.meta_path, self.refused_path):
            try:
                path.unlink()
                existed = existed or path == self.meta_path
            except FileNotFoundError:
                pass
        if refused:
            atomic_write(self.refused_path, _digest(refused).encode("ascii"), mode=0o600)
        return existed

    def refused_was(self, refresh_token: str | None) -> bool:
        """Whether the last removal was the vendor refusing `refresh_token`."""
        if not refresh_token:
            return False
        try:
            return self.refused_path.read_text(encoding="ascii").strip() == _digest(refresh_token)
        except (OSError, ValueError):
            return False

    def signature(self) -> Signature:
        """What identifies the stored sign-in's state, from one stat of the small metadata file (no keychain
        access): every sign-in, refresh and sign-out rewrites or removes it, so a changed signature means "read
        the store again". None while nothing is stored."""
        try:
            st = os.stat(self.meta_path)
        except OSError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size

    def _read_meta(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def info(self) -> TokenInfo | None:
        """From the non-secret record only (no keychain access)."""
        meta = self._read_meta()
        if meta is None:
            return None
        return TokenInfo(
            expires_at=_number(meta.get("expires_at")), issued_at=_number(meta.get("issued_at")),
            generation=int(meta.get("generation") or 0), client_id=meta.get("client_id"),
            scopes=tuple(meta.get("scopes") or ()), requested=tuple(meta.get("requested") or ()),
            missing_scopes=tuple(meta.get("missing_scopes") or ()), identity_email=meta.get("identity_email"),
            identity_name=meta.get("identity_name"), region=meta.get("region"),
            has_refresh_token=bool(meta.get("has_refresh_token")),
            extra=dict(meta.get("extra") or {}) if isinstance(meta.get("extra"), dict) else {},
        )


def refresh_lock(paths: Paths, key: str, timeout: float | None = None) -> FileLock:
    """The cross-process lock every refresh, sign-in store and sign-out of upstream `key` holds, so that none
    of them writes over another's result."""
    return FileLock(paths.locks_dir / f"oauth-{key}.lock", timeout=timeout)


def _digest(token: str) -> str:
    # A refresh token is long and random: its SHA-256 reveals nothing and cannot be reversed.
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
