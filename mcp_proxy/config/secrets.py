"""Secret references and the local secret store.

A config value `keyring:NAME` is read from the OS keychain (service
`mcp-access-proxy`), `env:NAME` from the environment. Values are resolved only
when used, never at load time, and never appear in messages.

Where no keychain backend works (headless Linux), `[secrets] store = "file"`
opts in to a 0600 JSON file in the user data dir. It is never chosen silently.
Several processes write that one file (`secret set`, token refreshes in every
running proxy), so each write is a read-modify-write under a cross-process lock,
replaced atomically: a rotated refresh token is never put back by a writer that
read the file before the rotation.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mcp_proxy.errors import SecretError

if TYPE_CHECKING:
    from types import ModuleType

KEYRING_SERVICE = "mcp-access-proxy"
# How long a writer waits for another one; writes take milliseconds, so this is only reached when a process hangs.
LOCK_TIMEOUT = 15.0
_FILE_WARNING = (
    "secrets are stored in a plain file (mode 0600) because [secrets] store = \"file\"; "
    "anyone who can read your account's files can read them"
)


class SecretStore:
    """Keychain-backed store, or an opt-in 0600 file store."""

    def __init__(self, backend: str = "keyring", file_path: Path | None = None, *, warn: bool = True) -> None:
        if backend not in ("keyring", "file"):
            raise ValueError(f"unknown secret store {backend!r}")
        self.backend = backend
        self.file_path = file_path
        self._lock = threading.Lock()
        self._warned = not warn  # `warn=False`: the caller made the choice itself (the sandbox), no warning

    # -- keyring -----------------------------------------------------------
    def _keyring(self) -> tuple[ModuleType, ModuleType]:  # imported lazily: keyring costs ~100 ms at start-up
        import keyring
        import keyring.errors

        return keyring, keyring.errors

    def keyring_available(self) -> tuple[bool, str]:
        """Whether a usable keychain backend exists, and its name."""
        try:
            keyring, _ = self._keyring()
            backend = keyring.get_keyring()
        except Exception as exc:  # noqa: BLE001 - any failure means "not available"
            return False, type(exc).__name__
        name = f"{type(backend).__module__}.{type(backend).__name__}"
        if "fail" in name.lower() or "null" in name.lower() or getattr(backend, "priority", 1) <= 0:
            return False, name
        return True, name

    # -- file --------------------------------------------------------------
    @property
    def lock_path(self) -> Path | None:
        """The file store's cross-process write lock (None for the keychain). Its own file, not the vault's
        `secret-file-store.lock`: the vault holds that one across several writes of this store, and these
        locks are not re-entrant, so the order is always vault lock, then this one."""
        if self.backend != "file" or self.file_path is None:
            return None
        return self.file_path.with_name(self.file_path.name + ".lock")

    @contextmanager
    def _writing(self) -> Iterator[dict[str, str]]:
        """The file's entries, to change in place; written back (atomically, 0600) when the block ends without
        an error. Threads of this process and other processes take turns."""
        from mcp_proxy.errors import LockTimeout
        from mcp_proxy.fsutil import FileLock

        assert self.lock_path is not None
        with self._lock:
            try:
                lock = FileLock(self.lock_path, timeout=LOCK_TIMEOUT)
                lock.acquire()
            except LockTimeout:
                raise SecretError(
                    f"another mcp-access-proxy process has been writing the secret file {self.file_path} for "
                    f"{LOCK_TIMEOUT:g} s; nothing was changed. Try again; if it repeats, stop any mcp-access-proxy "
                    "process that hangs") from None
            except OSError as exc:
                raise SecretError(
                    f"cannot lock the secret file {self.file_path} ({exc.strerror}); nothing was changed. "
                    f"Check that {self.lock_path.parent} is writable") from None
            try:
                data = self._read_file()
                yield data
                self._write_file(data)
            finally:
                lock.release()

    def _read_file(self) -> dict[str, str]:
        assert self.file_path is not None
        try:
            return json.loads(self.file_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise SecretError(
                f"the secret file {self.file_path} is unreadable ({type(exc).__name__}); "
                "delete it and store your secrets again with `mcp-access-proxy secret set NAME`"
            ) from None

    def _write_file(self, data: dict[str, str]) -> None:
        assert self.file_path is not None
        from mcp_proxy.fsutil import atomic_write

        atomic_write(self.file_path, json.dumps(data).encode("utf-8"), mode=0o600)

    def _warn_file(self) -> None:
        if not self._warned:
            self._warned = True
            print(f"mcp-access-proxy: WARNING: {_FILE_WARNING}", file=sys.stderr)

    # -- public ------------------------------------------------------------
    def get(self, name: str) -> str | None:
        if self.backend == "file":
            self._warn_file()
            with self._lock:
                return self._read_file().get(name)
        keyring, errors = self._keyring()
        try:
            return keyring.get_password(KEYRING_SERVICE, name)
        except (errors.KeyringError, OSError) as exc:  # OSError: the session bus is gone (jeepney)
            raise SecretError(self._no_keyring_message(exc)) from None

    def set(self, name: str, value: str) -> None:
        if self.backend == "file":
            self._warn_file()
            with self._writing() as data:
                data[name] = value
            return
        keyring, errors = self._keyring()
        try:
            keyring.set_password(KEYRING_SERVICE, name, value)
        except (errors.KeyringError, OSError) as exc:  # OSError: the session bus is gone (jeepney)
            raise SecretError(self._no_keyring_message(exc)) from None

    def delete(self, name: str) -> bool:
        if self.backend == "file":
            with self._writing() as data:
                existed = data.pop(name, None) is not None
            return existed
        keyring, errors = self._keyring()
        try:
            keyring.delete_password(KEYRING_SERVICE, name)
            return True
        except errors.PasswordDeleteError:
            return False
        except (errors.KeyringError, OSError) as exc:  # OSError: the session bus is gone (jeepney)
            raise SecretError(self._no_keyring_message(exc)) from None

    @staticmethod
    def _no_keyring_message(exc: Exception) -> str:
        return (
            f"the OS keychain is not available ({type(exc).__name__}). On a desktop, unlock your keychain; "
            "on a headless machine, either run a Secret Service (dbus-run-session + gnome-keyring-daemon --unlock) "
            'or opt in to the file store with [secrets] store = "file" in the config'
        )


@dataclass(frozen=True)
class SecretRef:
    """A reference to a secret: `keyring:NAME` or `env:NAME`. `where` is its config key path."""

    scheme: str
    name: str
    where: str

    @classmethod
    def parse(cls, raw: str, where: str) -> SecretRef | None:
        for scheme in ("keyring", "env"):
            prefix = scheme + ":"
            if raw.startswith(prefix) and len(raw) > len(prefix):
                return cls(scheme, raw[len(prefix):], where)
        return None

    def __str__(self) -> str:
        return f"{self.scheme}:{self.name}"

    def resolve(self, store: SecretStore, env: dict[str, str] | None = None) -> str:
        if self.scheme == "env":
            value = (os.environ if env is None else env).get(self.name)
            if not value:
                raise SecretError(
                    f"{self.where}: environment variable {self.name} is not set; "
                    f"set it in the environment the proxy starts in (for desktop clients: the server entry's \"env\")"
                )
            return value
        value = store.get(self.name)
        if not value:
            raise SecretError(
                f"{self.where}: no secret named {self.name!r} in the {store.backend} store; "
                f"store it with `mcp-access-proxy secret set {self.name}`"
            )
        return value
