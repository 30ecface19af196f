"""Plan and apply one change to a client's config file: add, update or remove our entry.

The plan is computed in memory first, so `--dry-run` shows exactly the bytes a
real run would write. Applying keeps a timestamped backup, writes atomically,
and refuses if the client rewrote the file in between.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcp_proxy.clients import jsonedit
from mcp_proxy.clients.entry import looks_like_ours
from mcp_proxy.clients.table import ClientSpec
from mcp_proxy.errors import ProxyError

_BOM = "\ufeff"


class ClientConfigError(ProxyError):
    """A client's config file we must not touch; the message names the file, where, and the fix."""


@dataclass
class Plan:
    spec: ClientSpec
    path: Path
    name: str
    action: str  # "add" | "update" | "unchanged" | "remove" | "absent"
    old_text: str | None  # None when the file does not exist
    new_text: str | None
    replaced_foreign: Any = None  # the entry of another server that had our name, if we replace it

    @property
    def changed(self) -> bool:
        return self.new_text is not None and self.new_text != self.old_text

    def diff(self) -> str:
        import difflib

        before = (self.old_text or "").splitlines(keepends=True)
        after = (self.new_text if self.new_text is not None else self.old_text or "").splitlines(keepends=True)
        fromfile = str(self.path) if self.old_text is not None else "/dev/null"
        lines = difflib.unified_diff(before, after, fromfile=fromfile, tofile=str(self.path))
        return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def read_config_text(path: Path) -> tuple[str | None, bool]:
    """(text without BOM, had BOM); (None, False) when the file does not exist."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None, False
    except IsADirectoryError:
        raise ClientConfigError(
            f"{path} is a directory, not a config file; pass --config-file with the file's path") from None
    except OSError as exc:
        raise ClientConfigError(f"cannot read {path}: {exc.strerror}; check its permissions") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ClientConfigError(f"{path} is not UTF-8 text (byte {exc.start}); the file was left untouched. "
                                f"Save it as UTF-8 in an editor and run install again") from None
    if text.startswith(_BOM):
        return text[1:], True
    return text, False


def _malformed(spec: ClientSpec, path: Path, exc: ValueError) -> ClientConfigError:
    line, col, problem = getattr(exc, "line", "?"), getattr(exc, "column", "?"), getattr(exc, "problem", str(exc))
    if isinstance(exc, jsonedit.JsonSyntaxError):
        what = f"is not valid {'JSON (comments allowed)' if spec.jsonc else 'JSON'}"
        also = f" ({spec.display_name} cannot read it either)"
    else:
        what, also = "cannot be edited safely", ""
    return ClientConfigError(
        f"{path} {what}: line {line}, column {col}: {problem}.\n"
        f"The file was left untouched. Fix it in an editor{also}, or move it aside to start fresh, "
        f"then run install again.")


def plan_install(spec: ClientSpec, path: Path, name: str, entry_for: Any) -> Plan:
    """The change that puts our entry `name` into `path`.

    `entry_for(existing)` builds the entry, given the entry already under that
    name (or None), so that a user's additions to our entry survive an update.
    """
    text, _ = read_config_text(path)
    try:
        current = jsonedit.read_entries(text or "", spec.servers_key, spec.jsonc)
        existing = current.get(name)
        entry = entry_for(existing)
        if existing == entry:
            return Plan(spec, path, name, "unchanged", text, text)
        new = jsonedit.set_entry(text or "", spec.servers_key, name, entry, spec.jsonc)
    except (jsonedit.JsonSyntaxError, jsonedit.JsonShapeError) as exc:
        raise _malformed(spec, path, exc) from None
    foreign = existing if existing is not None and not looks_like_ours(existing) else None
    return Plan(spec, path, name, "update" if existing is not None else "add", text, new, foreign)


def plan_uninstall(spec: ClientSpec, path: Path, name: str) -> Plan:
    """The change that removes our entry `name`; refuses to remove another server's entry."""
    text, _ = read_config_text(path)
    if text is None:
        return Plan(spec, path, name, "absent", None, None)
    try:
        existing = jsonedit.read_entries(text, spec.servers_key, spec.jsonc).get(name)
        if existing is None:
            return Plan(spec, path, name, "absent", text, text)
        if not looks_like_ours(existing):
            command = (existing.get("command") or existing.get("url") or existing.get("serverUrl")
                       if isinstance(existing, dict) else None)
            raise ClientConfigError(
                f"the entry \"{name}\" in {path} does not start mcp-access-proxy (it runs {command!r}); "
                f"left untouched. Pass --name with the name of our entry, or remove that entry by hand if you are sure")
        new = jsonedit.remove_entry(text, spec.servers_key, name, spec.jsonc)
    except (jsonedit.JsonSyntaxError, jsonedit.JsonShapeError) as exc:
        raise _malformed(spec, path, exc) from None
    return Plan(spec, path, name, "remove", text, new)


def backup_path(path: Path, now: float | None = None) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    candidate = path.with_name(f"{path.name}.bak-{stamp}")
    n = 1
    while candidate.exists():
        candidate = path.with_name(f"{path.name}.bak-{stamp}-{n}")
        n += 1
    return candidate


def _default_mode() -> int:
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def apply(plan: Plan) -> Path | None:
    """Write the plan; returns the backup's path (None for a new file). Raises ClientConfigError."""
    if plan.new_text is None or not plan.changed:
        return None
    path = plan.path
    # Re-read right before writing: Claude Code and the IDEs rewrite these files while running.
    current, had_bom = read_config_text(path)
    if current != plan.old_text:
        raise ClientConfigError(f"{path} changed while we were editing it ({plan.spec.display_name} may be running and "
                                f"rewriting it); nothing was written. Run install again "
                                f"(quit the client first if it repeats)")
    # Lazily: the server imports this package for client_for_info.
    from mcp_proxy.fsutil import atomic_write, atomic_write_like

    data = ((_BOM if had_bom else "") + plan.new_text).encode("utf-8")
    backup = None
    # A dotfiles manager may link the config: write through the link, or we would replace it with a file.
    path = path.resolve() if path.is_symlink() else path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if plan.old_text is None:
            # mkstemp makes 0600; a new config file gets the usual umask-based mode.
            atomic_write(path, data, mode=_default_mode())
        else:
            # Configs hold tokens in their "env": the backup and the new file are exactly as private as the
            # original (its mode, not the umask's), and the backup is whole or absent, never half-written.
            with open(path, "rb") as fh:
                original, old_bytes = os.fstat(fh.fileno()), fh.read()
            backup = backup_path(path)
            atomic_write_like(backup, old_bytes, original)
            atomic_write_like(path, data, original)
    except OSError as exc:
        raise ClientConfigError(f"cannot write {path}: {exc.strerror}; check that its folder is writable "
                                f"(nothing was changed)") from None
    return backup
